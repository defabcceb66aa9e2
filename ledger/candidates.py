"""Candidates, the actions performed for them, and the permission boundaries that stop them.

A candidate row is written only when something changed, so a quiet cycle writes nothing:

- ``sync_candidates`` compares each proposal of a decision with the latest row of the same
  dedupe key on that PR. The same outcome again writes nothing; a different one appends a row
  (the history of a key stays readable: ``shadow`` -> ``pending`` -> ``posted`` ->
  ``suppressed_duplicate``). A proposal that wants performing reuses a ``pending`` or ``failed``
  row (a retry, bounded by its failed actions) instead of appending one.
- ``record_action`` appends what was done on GitHub (with GitHub's id, or its status and
  message) and moves the candidate to its outcome in the same transaction.
- A denied write opens a :class:`PermissionBoundary` (``open_boundary``); while it stands the
  engine records the candidates of that action kind as ``suppressed_boundary`` (counted once per
  candidate) instead of asking GitHub again every cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from ledger.db import Ledger
from ledger.history import PullKey, read_session
from ledger.models import (
    Action,
    Candidate,
    CandidateOutcome,
    PermissionBoundary,
    PullRequest,
    table_of,
)

PENDING = CandidateOutcome.PENDING.value
FAILED = CandidateOutcome.FAILED.value
DONE_OUTCOMES = frozenset({CandidateOutcome.POSTED.value, CandidateOutcome.ESCALATED.value})
MAX_ATTEMPTS = 3  # failed actions per candidate before it is left failed for good


@dataclass(frozen=True, slots=True)
class Proposal:
    """One candidate of a decision, with the outcome to record unless it is performed.

    ``outcome`` is ``pending`` when the candidate should be performed now; otherwise ``shadow``
    or ``suppressed_<why>``. ``boundary_id``: the boundary that suppressed it, if any.
    """

    key: str
    kind: str
    rule_id: str
    reason: str
    outcome: str
    outcome_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    boundary_id: int | None = None
    repeatable: bool = False  # may be performed again after it was posted (the sticky edit)


@dataclass(frozen=True, slots=True)
class ToPerform:
    """A candidate row to hand to the executor."""

    candidate_id: int
    key: str
    attempts: int  # failed actions so far


@dataclass(frozen=True, slots=True)
class SyncResult:
    to_perform: tuple[ToPerform, ...]
    written: tuple[tuple[str, str], ...]  # (key, outcome) rows appended this cycle


async def _latest(
    session: Any, key: PullKey, keys: list[str]
) -> tuple[dict[str, tuple[int, str]], dict[int, int]]:
    """The latest row (id, outcome) of each key on the PR, and failed actions per retryable row."""
    candidates_t, actions_t = table_of(Candidate).c, table_of(Action).c
    rows = (
        await session.execute(
            select(candidates_t.id, candidates_t.dedupe_key, candidates_t.outcome)
            .where(
                candidates_t.pull_request_id == key.pull_request_id,
                candidates_t.dedupe_key.in_(keys),
            )
            .order_by(candidates_t.id)
        )
    ).all()
    latest: dict[str, tuple[int, str]] = {}
    for row in rows:
        latest[row.dedupe_key] = (int(row.id), str(row.outcome))
    retry_ids = [cid for cid, outcome in latest.values() if outcome in (PENDING, FAILED)]
    failures: dict[int, int] = {}
    if retry_ids:
        counted = await session.execute(
            select(actions_t.candidate_id, func.count())
            .where(actions_t.candidate_id.in_(retry_ids), actions_t.status == "failed")
            .group_by(actions_t.candidate_id)
        )
        failures = {int(r[0]): int(r[1]) for r in counted.all()}
    return latest, failures


def _plan(
    proposals: Sequence[Proposal],
    latest: dict[str, tuple[int, str]],
    failures: dict[int, int],
    max_attempts: int,
) -> tuple[list[ToPerform | Proposal], bool]:
    """In proposal order: an existing row to perform again, or a proposal to insert (performed
    when pending). Returns the plan and whether it inserts anything."""
    plan: list[ToPerform | Proposal] = []
    inserts = False
    seen: dict[str, str] = {}
    for proposal in proposals:
        current = latest.get(proposal.key)
        if proposal.key in seen:
            continue  # the same key twice in one decision: once is enough
        seen[proposal.key] = proposal.outcome
        if proposal.outcome == PENDING:
            if current is not None and current[1] in DONE_OUTCOMES and not proposal.repeatable:
                continue  # performed already (the policies call it a duplicate next time)
            if current is not None and current[1] in (PENDING, FAILED):
                attempts = failures.get(current[0], 0)
                if attempts < max_attempts:
                    plan.append(ToPerform(current[0], proposal.key, attempts))
                continue
        elif current is not None and current[1] == proposal.outcome:
            continue  # nothing changed: a quiet cycle writes nothing
        plan.append(proposal)
        inserts = True
    return plan, inserts


async def sync_candidates(
    db: Ledger,
    key: PullKey,
    proposals: Sequence[Proposal],
    now: datetime,
    max_attempts: int = MAX_ATTEMPTS,
) -> SyncResult:
    """Record the proposals of one decision (writing only what changed) and return the rows to
    perform. Reads first in a read-only transaction; opens a write transaction (and decides
    again inside it) only when there is something to insert."""
    if not proposals:
        return SyncResult((), ())
    keys = sorted({p.key for p in proposals})
    async with read_session(db) as session:
        latest, failures = await _latest(session, key, keys)
    plan, inserts = _plan(proposals, latest, failures, max_attempts)
    if not inserts:
        return SyncResult(tuple(p for p in plan if isinstance(p, ToPerform)), ())
    boundaries_t = table_of(PermissionBoundary)
    to_perform: list[ToPerform] = []
    written: list[tuple[str, str]] = []
    async with db.transaction() as session:
        latest, failures = await _latest(session, key, keys)
        plan, _ = _plan(proposals, latest, failures, max_attempts)
        for item in plan:
            if isinstance(item, ToPerform):
                to_perform.append(item)
                continue
            inserted = Candidate(
                dedupe_key=item.key,
                repository_id=key.repository_id,
                pull_request_id=key.pull_request_id,
                kind=item.kind,
                rule_id=item.rule_id,
                reason=item.reason,
                outcome=item.outcome,
                outcome_reason=item.outcome_reason,
                details=item.details,
                created_at=now,
                decided_at=None if item.outcome == PENDING else now,
            )
            session.add(inserted)
            await session.flush()
            assert inserted.id is not None
            written.append((item.key, item.outcome))
            if item.outcome == PENDING:
                to_perform.append(ToPerform(inserted.id, item.key, 0))
            if item.boundary_id is not None:
                await session.execute(
                    update(boundaries_t)
                    .where(boundaries_t.c.id == item.boundary_id)
                    .values(suppressed_count=boundaries_t.c.suppressed_count + 1)
                )
    return SyncResult(tuple(to_perform), tuple(written))


async def get_candidate(db: Ledger, candidate_id: int) -> Candidate | None:
    async with db.transaction() as session:
        return await session.get(Candidate, candidate_id)


async def list_candidates(db: Ledger, pull_request_id: int) -> list[Candidate]:
    """A PR's candidate rows, oldest first."""
    columns = table_of(Candidate).c
    statement = (
        select(Candidate).where(columns.pull_request_id == pull_request_id).order_by(columns.id)
    )
    async with db.transaction() as session:
        return list((await session.execute(statement)).scalars().all())


async def list_actions(db: Ledger, pull_request_id: int) -> list[Action]:
    """A PR's action rows, oldest first."""
    columns = table_of(Action).c
    statement = (
        select(Action).where(columns.pull_request_id == pull_request_id).order_by(columns.id)
    )
    async with db.transaction() as session:
        return list((await session.execute(statement)).scalars().all())


async def done_action_for_key(
    db: Ledger, pull_request_id: int, dedupe_key: str, kind: str | None = None
) -> Action | None:
    """The action (of ``kind``, when given) that already performed this key on this PR (any of
    its candidate rows)."""
    actions_t, candidates_t = table_of(Action).c, table_of(Candidate).c
    statement = (
        select(Action)
        .join_from(table_of(Action), table_of(Candidate))
        .where(
            candidates_t.pull_request_id == pull_request_id,
            candidates_t.dedupe_key == dedupe_key,
            actions_t.status == "done",
            *([actions_t.kind == kind] if kind is not None else []),
        )
        .order_by(actions_t.id.desc())
        .limit(1)
    )
    async with db.transaction() as session:
        return (await session.execute(statement)).scalars().first()


async def record_action(
    db: Ledger,
    key: PullKey,
    candidate_id: int | None,
    *,
    kind: str,
    status: str,
    now: datetime,
    github_id: str | None = None,
    http_status: int | None = None,
    error: str | None = None,
    details: dict[str, Any] | None = None,
    outcome: str | None = None,
    outcome_reason: str | None = None,
    sticky_comment_id: int | None = None,
) -> int:
    """Append an action (``done`` with GitHub's id, or ``failed`` with GitHub's status and
    message) and, in the same transaction, move the candidate to ``outcome`` and remember the
    PR's sticky comment id. Returns the action's id."""
    action = Action(
        candidate_id=candidate_id,
        repository_id=key.repository_id,
        pull_request_id=key.pull_request_id,
        kind=kind,
        github_id=github_id,
        status=status,
        http_status=http_status,
        error=error[:2000] if error else error,
        details=details or {},
        performed_at=now,
    )
    async with db.transaction() as session:
        session.add(action)
        if candidate_id is not None and outcome is not None:
            await _set_outcome(session, candidate_id, outcome, outcome_reason, now)
        if sticky_comment_id is not None:
            pulls_t = table_of(PullRequest)
            await session.execute(
                update(pulls_t)
                .where(pulls_t.c.id == key.pull_request_id)
                .values(sticky_comment_id=sticky_comment_id)
            )
        await session.flush()
        assert action.id is not None
        return action.id


async def _set_outcome(
    session: Any, candidate_id: int, outcome: str, reason: str | None, now: datetime
) -> None:
    candidates_t = table_of(Candidate)
    await session.execute(
        update(candidates_t)
        .where(candidates_t.c.id == candidate_id)
        .values(outcome=outcome, outcome_reason=reason, decided_at=now)
    )


async def set_outcome(
    db: Ledger,
    candidate_id: int,
    outcome: str,
    reason: str | None,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Move a candidate to ``outcome`` without an action (escalated, or left pending with a
    reason); ``details`` are merged into its details."""
    async with db.transaction() as session:
        await _set_outcome(session, candidate_id, outcome, reason, now)
        if details:
            row = await session.get(Candidate, candidate_id)
            if row is not None:
                row.details = {**(row.details or {}), **details}


# --- permission boundaries ------------------------------------------------------------------------


def _in_scope(installation_id: int | None, repository_id: int) -> Any:
    columns = table_of(PermissionBoundary).c
    return (
        columns.lifted_at.is_(None),
        or_(
            columns.repository_id == repository_id,
            (columns.repository_id.is_(None)) & (columns.installation_id == installation_id),
        ),
    )


async def active_boundaries(
    db: Ledger, installation_id: int | None, repository_id: int
) -> dict[str, PermissionBoundary]:
    """Boundaries standing for this repository (or its whole installation), by action kind."""
    columns = table_of(PermissionBoundary).c
    statement = (
        select(PermissionBoundary)
        .where(*_in_scope(installation_id, repository_id))
        .order_by(columns.id)
    )
    async with db.transaction() as session:
        rows = (await session.execute(statement)).scalars().all()
    return {row.action_kind: row for row in rows}


async def open_boundary(
    db: Ledger,
    installation_id: int | None,
    repository_id: int,
    action_kind: str,
    *,
    http_status: int | None,
    message: str,
    accepted_permissions: str | None,
    now: datetime,
) -> int:
    """Record that GitHub denied ``action_kind`` in this repository; returns the boundary's id
    (the standing one when there is already one)."""
    columns = table_of(PermissionBoundary).c
    async with db.transaction() as session:
        standing = (
            await session.execute(
                select(columns.id).where(
                    columns.lifted_at.is_(None),
                    columns.repository_id == repository_id,
                    columns.action_kind == action_kind,
                )
            )
        ).scalar_one_or_none()
        if standing is not None:
            return int(standing)
        row = PermissionBoundary(
            installation_id=installation_id,
            repository_id=repository_id,
            action_kind=action_kind,
            http_status=http_status,
            message=message[:2000],
            accepted_permissions=accepted_permissions,
            since=now,
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def lift_boundary(db: Ledger, boundary_id: int, reason: str, now: datetime) -> bool:
    """Lift one standing boundary (its action is tried again). Returns whether it stood."""
    table = table_of(PermissionBoundary)
    statement = (
        update(table)
        .where(table.c.id == boundary_id, table.c.lifted_at.is_(None))
        .values(lifted_at=now, lifted_reason=reason)
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0) > 0


async def lift_boundaries(
    db: Ledger,
    installation_id: int,
    reason: str,
    now: datetime,
    repository_id: int | None = None,
) -> int:
    """Lift the standing boundaries of an installation (or of one repository): the installation
    changed (``new_permissions_accepted``) or a maintainer cleared them. Returns how many."""
    table = table_of(PermissionBoundary)
    statement = update(table).where(
        table.c.lifted_at.is_(None), table.c.installation_id == installation_id
    )
    if repository_id is not None:
        statement = statement.where(table.c.repository_id == repository_id)
    async with db.transaction() as session:
        result = await session.execute(statement.values(lifted_at=now, lifted_reason=reason))
    return int(getattr(result, "rowcount", 0) or 0)
