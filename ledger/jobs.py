"""Escalation jobs: one row per attempt at one trigger, moved only along legal transitions.

The life cycle (issue 6)::

    DETECTED -> SUPPRESSED                       (shadow mode, budget, ...: recorded as would-be)
    DETECTED -> QUEUED -> LEASED -> RUNNING -> CLAIMED_DONE -> VERIFYING -> VERIFIED_DONE
                                                             VERIFYING -> VERIFY_FAILED | BLOCKED
                                                                        | BUDGET_EXHAUSTED
                                                                        | SUPERSEDED | NEEDS_HUMAN
    LEASED | RUNNING -> LEASE_EXPIRED            (the agent stopped heart-beating)
    RUNNING -> NEEDS_HUMAN                       (stopped: spend grows, GitHub shows no progress)
    QUEUED | LEASED | RUNNING -> CANCELLED | SUPERSEDED
    VERIFYING -> CLAIMED_DONE                    (GitHub not finished yet: verify again later)

A re-queue is a NEW row for the same trigger fingerprint with ``attempt + 1``; rows in a final
state never move again. Every transition is a compare-and-set (``UPDATE ... WHERE state IN
(legal sources)``) and appends a ``decision`` row (kind ``job``) with its reason, so the whole
history of a job can be read back with :func:`job_transitions`.

The unique key is (repository, PR, trigger fingerprint, attempt): a webhook redelivery or a
restart that proposes the same escalation again finds the row and creates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import spend
from ledger._sql import rowcount
from ledger.db import Ledger
from ledger.models import (
    Decision,
    EscalationAttempt,
    EscalationJob,
    JobState,
    PullRequest,
    Repository,
    table_of,
)
from ledger.repositories import ensure_repository

S = JobState

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.DETECTED: frozenset({S.SUPPRESSED, S.QUEUED, S.CANCELLED}),
    S.QUEUED: frozenset({S.LEASED, S.CANCELLED, S.SUPERSEDED}),
    S.LEASED: frozenset({S.RUNNING, S.CLAIMED_DONE, S.LEASE_EXPIRED, S.CANCELLED, S.SUPERSEDED}),
    S.RUNNING: frozenset(
        {S.CLAIMED_DONE, S.LEASE_EXPIRED, S.CANCELLED, S.SUPERSEDED, S.NEEDS_HUMAN}
    ),  # NEEDS_HUMAN: stopped for no progress (spend grows, GitHub shows nothing)
    S.CLAIMED_DONE: frozenset({S.VERIFYING, S.CANCELLED}),
    S.VERIFYING: frozenset(
        {
            S.VERIFIED_DONE,
            S.VERIFY_FAILED,
            S.BLOCKED,
            S.BUDGET_EXHAUSTED,
            S.SUPERSEDED,
            S.NEEDS_HUMAN,
            S.CLAIMED_DONE,  # GitHub has not finished (checks pending): verify again later
        }
    ),
}
"""Legal moves. ``CLAIMED_DONE`` holds every report (done, failed or blocked): the claim is
recorded on the attempt, and only the oracle's verdict leaves it."""

FINAL_STATES = frozenset(
    {
        S.SUPPRESSED,
        S.VERIFIED_DONE,
        S.VERIFY_FAILED,
        S.NEEDS_HUMAN,
        S.BLOCKED,
        S.BUDGET_EXHAUSTED,
        S.SUPERSEDED,
        S.LEASE_EXPIRED,
        S.CANCELLED,
    }
)
ACTIVE_STATES = frozenset({S.DETECTED, S.QUEUED, S.LEASED, S.RUNNING, S.CLAIMED_DONE, S.VERIFYING})
NOT_ATTEMPTED = frozenset({S.SUPPRESSED, S.CANCELLED})


class IllegalTransition(ValueError):
    """A move the life cycle does not allow (or the job was not in the expected state)."""


def legal(source: JobState | str, target: JobState | str) -> bool:
    """Whether ``source -> target`` is a legal move."""
    return JobState(target) in TRANSITIONS.get(JobState(source), frozenset())


def sources_of(target: JobState) -> frozenset[JobState]:
    """The states from which ``target`` can be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


@dataclass(frozen=True, slots=True)
class NewJob:
    """What ``create_job`` needs; the caller (``bot.escalation``) fills it from the decision."""

    repository: str
    number: int
    trigger_kind: str
    trigger_fingerprint: str
    budget_tokens: int
    budget_dollars: float
    max_attempts: int
    start_head_sha: str
    candidate_id: int | None = None
    size_class: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    job_id: int
    from_state: str | None
    to_state: str
    rule_id: str
    reason: str
    at: datetime


_jobs = table_of(EscalationJob)
_attempts = table_of(EscalationAttempt)


async def _record(
    session: AsyncSession,
    job: EscalationJob | dict[str, Any],
    source: str | None,
    target: str,
    rule_id: str,
    reason: str,
    now: datetime,
) -> None:
    get = job.get if isinstance(job, dict) else lambda k: getattr(job, k)
    session.add(
        Decision(
            repository_id=get("repository_id"),
            pull_request_id=get("pull_request_id"),
            kind="job",
            rule_id=rule_id,
            reason=reason,
            from_value=source,
            to_value=target,
            details={"job_id": get("id")},
            decided_at=now,
        )
    )


async def _pull_id(
    session: AsyncSession, backend: str, repository: str, number: int, now: datetime
) -> tuple[int, int]:
    """(repository id, PR id), creating bare rows when unknown; the PR row is locked on
    PostgreSQL so two openers of one PR serialise."""
    from ledger._sql import model_defaults, upsert_insert

    repository_id = await ensure_repository(session, backend, repository, now)
    pulls = table_of(PullRequest)
    await session.execute(
        upsert_insert(backend, pulls)
        .values(
            {
                **model_defaults(PullRequest),
                "repository_id": repository_id,
                "number": number,
                "first_seen_at": now,
            }
        )
        .on_conflict_do_nothing(index_elements=["repository_id", "number"])
    )
    pull_id = (
        await session.execute(
            select(pulls.c.id)
            .where(pulls.c.repository_id == repository_id, pulls.c.number == number)
            .with_for_update()
        )
    ).scalar_one()
    return repository_id, int(pull_id)


async def create_job(
    db: Ledger,
    new: NewJob,
    now: datetime,
    make_brief: Callable[[int, int], dict[str, Any]],
    *,
    suppress_reason: str | None = None,
    suppress_rule_id: str = "escalation.suppressed",
) -> tuple[EscalationJob | None, int]:
    """Create the job as DETECTED, then move it to QUEUED (or SUPPRESSED with
    ``suppress_reason``), in one transaction. ``make_brief(job_id, attempt)`` (pure) gives the
    brief. A QUEUED job's budget is reserved in the spend ledger in the same transaction, so no
    job is ever leasable without its reservation.

    Returns ``(job, attempts_before)``; ``job`` is None when this trigger fingerprint already has
    a job that was attempted (or is still active) on this PR — a redelivery, a restart or a
    second replica proposing the same escalation creates nothing. A trigger that was only
    SUPPRESSED before (shadow mode) may be opened for real later.

    ``attempt`` is 1 + the attempted jobs of the same trigger kind on this PR since its last
    verified fix (the stop-loss count); a SUPPRESSED (would-be) job is attempt 0.
    """
    async with db.transaction() as session:
        repository_id, pull_id = await _pull_id(
            session, db.backend, new.repository, new.number, now
        )
        rows = (
            await session.execute(
                select(
                    _jobs.c.trigger_fingerprint,
                    _jobs.c.trigger_kind,
                    _jobs.c.state,
                    _jobs.c.attempt,
                )
                .where(_jobs.c.pull_request_id == pull_id)
                .order_by(_jobs.c.id)
            )
        ).all()
        same = [r for r in rows if r.trigger_fingerprint == new.trigger_fingerprint]
        if any(JobState(r.state) not in NOT_ATTEMPTED for r in same):
            return None, 0
        if suppress_reason is None and any(JobState(r.state) in ACTIVE_STATES for r in rows):
            return None, 0  # one agent per PR at a time
        if suppress_reason is not None and same:
            return None, 0  # already recorded as would-be: once is enough
        before = 0
        for r in rows:
            if r.trigger_kind != new.trigger_kind or JobState(r.state) in NOT_ATTEMPTED:
                continue
            before = 0 if r.state == S.VERIFIED_DONE else before + 1
        # A would-be (suppressed) job is attempt 0: it never ran, and it leaves 1 free.
        attempt = 0 if suppress_reason is not None else before + 1
        job = EscalationJob(
            repository_id=repository_id,
            pull_request_id=pull_id,
            candidate_id=new.candidate_id,
            trigger_kind=new.trigger_kind,
            trigger_fingerprint=new.trigger_fingerprint,
            size_class=new.size_class,
            state=S.DETECTED.value,
            state_reason="proposed by the policies",
            brief={},
            budget_tokens=new.budget_tokens,
            budget_dollars=new.budget_dollars,
            attempt=attempt,
            max_attempts=new.max_attempts,
            start_head_sha=new.start_head_sha,
            created_at=now,
            updated_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(job)
                await session.flush()
        except IntegrityError:
            return None, 0
        job.brief = make_brief(int(job.id or 0), attempt)
        await _record(
            session, job, None, S.DETECTED, "escalation.detected", "proposed by the policies", now
        )
        if suppress_reason is not None:
            target, rule_id, reason = S.SUPPRESSED, suppress_rule_id, suppress_reason
        else:
            target, rule_id, reason = (
                S.QUEUED,
                "escalation.queued",
                f"queued, attempt {attempt} of {new.max_attempts}",
            )
        job.state, job.state_reason, job.updated_at = target.value, reason, now
        await _record(session, job, S.DETECTED, target, rule_id, reason, now)
        if target is S.QUEUED:
            await spend.reserve(session, job, now)
        await session.flush()
        return job, before


async def transition(
    session: AsyncSession,
    job_id: int,
    target: JobState,
    rule_id: str,
    reason: str,
    now: datetime,
    *,
    expect: JobState | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """Move ``job_id`` to ``target`` inside the caller's transaction, only from a legal source
    (and only from ``expect`` when given). Returns False when the job was not in such a state
    (someone else moved it first); never moves a job illegally. ``values`` are extra columns."""
    sources = sources_of(target)
    if expect is not None:
        if expect not in sources:
            raise IllegalTransition(f"{expect} -> {target} is not a legal move")
        sources = frozenset({expect})
    current = (
        (await session.execute(select(_jobs).where(_jobs.c.id == job_id))).mappings().one_or_none()
    )
    if current is None or JobState(current["state"]) not in sources:
        return False
    result = await session.execute(
        update(_jobs)
        .where(_jobs.c.id == job_id, _jobs.c.state == current["state"])
        .values(state=target.value, state_reason=reason, updated_at=now, **(values or {}))
    )
    if rowcount(result) != 1:
        return False
    await _record(session, dict(current), current["state"], target, rule_id, reason, now)
    return True


async def move(
    db: Ledger,
    job_id: int,
    target: JobState,
    rule_id: str,
    reason: str,
    now: datetime,
    *,
    expect: JobState | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """:func:`transition` in its own transaction."""
    async with db.transaction() as session:
        return await transition(
            session, job_id, target, rule_id, reason, now, expect=expect, values=values
        )


async def extend_lease(
    session: AsyncSession, job_id: int, owner: str, expires: datetime, now: datetime
) -> bool:
    """Move the lease of a RUNNING job held by ``owner`` to ``expires``."""
    result = await session.execute(
        update(_jobs)
        .where(
            _jobs.c.id == job_id,
            _jobs.c.state == S.RUNNING.value,
            _jobs.c.lease_owner == owner,
        )
        .values(lease_expires_at=expires, heartbeat_at=now, updated_at=now)
    )
    return rowcount(result) == 1


async def set_flags(session: AsyncSession, job_id: int, flags: list[str]) -> None:
    """Replace the job's flags (inside the caller's transaction)."""
    await session.execute(update(_jobs).where(_jobs.c.id == job_id).values(flags=flags))


async def note(db: Ledger, job_id: int, rule_id: str, reason: str, now: datetime) -> None:
    """Append an explained note to the job's history without moving it (from == to)."""
    async with db.transaction() as session:
        job = await session.get(EscalationJob, job_id)
        if job is not None:
            await _record(session, job, job.state, job.state, rule_id, reason, now)


async def requeue(
    db: Ledger,
    job_id: int,
    brief: dict[str, Any],
    start_head_sha: str,
    now: datetime,
    *,
    budget_tokens: int | None = None,
    budget_dollars: float | None = None,
    reason: str | None = None,
) -> EscalationJob | None:
    """A new QUEUED attempt (``attempt + 1``, same trigger fingerprint) after ``job_id`` ended
    in a final state, with its budget reserved. None when it exists already (the unique key),
    when ``job_id`` is not final, or when another job on the PR is in flight."""
    async with db.transaction() as session:
        old = await session.get(EscalationJob, job_id)
        if old is None or JobState(old.state) not in FINAL_STATES:
            return None
        active = (
            await session.execute(
                select(func.count()).where(
                    _jobs.c.pull_request_id == old.pull_request_id,
                    _jobs.c.state.in_(sorted(s.value for s in ACTIVE_STATES)),
                )
            )
        ).scalar_one()
        if active:
            return None
        job = EscalationJob(
            repository_id=old.repository_id,
            pull_request_id=old.pull_request_id,
            candidate_id=old.candidate_id,
            family_id=old.family_id,
            trigger_kind=old.trigger_kind,
            trigger_fingerprint=old.trigger_fingerprint,
            size_class=old.size_class,
            state=S.DETECTED.value,
            state_reason=f"re-queue of job {job_id}",
            brief={},
            budget_tokens=old.budget_tokens if budget_tokens is None else budget_tokens,
            budget_dollars=old.budget_dollars if budget_dollars is None else budget_dollars,
            attempt=old.attempt + 1,
            max_attempts=old.max_attempts,
            start_head_sha=start_head_sha,
            created_at=now,
            updated_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(job)
                await session.flush()
        except IntegrityError:
            return None
        job.brief = {**brief, "job_id": job.id}
        reason = reason or f"re-queue of job {job_id} ({old.state})"
        await _record(session, job, None, S.DETECTED, "escalation.requeue", reason, now)
        job.state = S.QUEUED.value
        job.state_reason = f"queued, attempt {job.attempt} of {job.max_attempts}"
        await _record(session, job, S.DETECTED, S.QUEUED, "escalation.requeue", reason, now)
        await spend.reserve(session, job, now)
        await session.flush()
        return job


async def get_job(db: Ledger, job_id: int) -> EscalationJob | None:
    async with db.transaction() as session:
        return await session.get(EscalationJob, job_id)


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job with its repository name and PR number, for listings and the engine."""

    job: EscalationJob
    repository: str
    number: int


async def list_jobs(
    db: Ledger,
    *,
    repository: str | None = None,
    number: int | None = None,
    states: frozenset[JobState] | None = None,
    limit: int | None = None,
) -> list[JobRow]:
    """Jobs, oldest first, optionally of one repository / PR / set of states."""
    repositories, pulls = table_of(Repository), table_of(PullRequest)
    statement = (
        select(EscalationJob, repositories.c.full_name, pulls.c.number)
        .join_from(_jobs, pulls, _jobs.c.pull_request_id == pulls.c.id)
        .join_from(pulls, repositories, pulls.c.repository_id == repositories.c.id)
        .order_by(_jobs.c.id)
    )
    if repository is not None:
        statement = statement.where(repositories.c.full_name == repository)
    if number is not None:
        statement = statement.where(pulls.c.number == number)
    if states is not None:
        statement = statement.where(_jobs.c.state.in_(sorted(s.value for s in states)))
    if limit is not None:
        statement = statement.limit(limit)
    async with db.transaction() as session:
        rows = (await session.execute(statement)).all()
    return [JobRow(row[0], row[1], row[2]) for row in rows]


async def job_location(db: Ledger, job_id: int) -> JobRow | None:
    """The job with its repository name and PR number."""
    repositories, pulls = table_of(Repository), table_of(PullRequest)
    statement = (
        select(EscalationJob, repositories.c.full_name, pulls.c.number)
        .join_from(_jobs, pulls, _jobs.c.pull_request_id == pulls.c.id)
        .join_from(pulls, repositories, pulls.c.repository_id == repositories.c.id)
        .where(_jobs.c.id == job_id)
    )
    async with db.transaction() as session:
        row = (await session.execute(statement)).one_or_none()
    return None if row is None else JobRow(row[0], row[1], row[2])


async def job_transitions(db: Ledger, job_id: int) -> list[Transition]:
    """Every state change of a job, oldest first, with its reason."""
    decisions = table_of(Decision)
    statement = (
        select(Decision)
        .where(decisions.c.kind == "job")
        .order_by(decisions.c.decided_at, decisions.c.id)
    )
    async with db.transaction() as session:
        rows = (await session.execute(statement)).scalars().all()
    return [
        Transition(job_id, d.from_value, d.to_value or "", d.rule_id, d.reason, d.decided_at)
        for d in rows
        if d.details.get("job_id") == job_id
    ]


# --- leases ------------------------------------------------------------------------------------


async def lease_next(
    db: Ledger, agent_id: int, owner: str, ttl: timedelta, now: datetime, delivery: str = "pull"
) -> tuple[EscalationJob, EscalationAttempt] | None:
    """Lease the oldest QUEUED job to ``owner`` and open its attempt; None when none is queued.

    On PostgreSQL the row is picked with ``FOR UPDATE SKIP LOCKED``, so concurrent leasers never
    get the same job; on SQLite the write transaction (BEGIN IMMEDIATE) serialises them.
    """
    for _ in range(5):  # a lost compare-and-set (another leaser won): pick again
        leased = await _lease_one(db, agent_id, owner, ttl, now, delivery)
        if not isinstance(leased, bool):
            return leased
    return None


async def _lease_one(
    db: Ledger, agent_id: int, owner: str, ttl: timedelta, now: datetime, delivery: str
) -> tuple[EscalationJob, EscalationAttempt] | bool | None:
    """One try: the lease, None when nothing is queued, False when another leaser won."""
    async with db.transaction() as session:
        picked = (
            await session.execute(
                select(_jobs.c.id)
                .where(_jobs.c.state == S.QUEUED.value)
                .order_by(_jobs.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if picked is None:
            return None
        moved = await transition(
            session,
            int(picked),
            S.LEASED,
            "lease.granted",
            f"leased to {owner} for {int(ttl.total_seconds())} s",
            now,
            expect=S.QUEUED,
            values={"lease_owner": owner, "lease_expires_at": now + ttl, "heartbeat_at": now},
        )
        if not moved:
            return False
        attempt = EscalationAttempt(
            job_id=int(picked), agent_id=agent_id, delivery=delivery, started_at=now
        )
        session.add(attempt)
        await session.flush()
        job = await session.get(EscalationJob, int(picked), populate_existing=True)
        assert job is not None
        return job, attempt


async def current_attempt(session: AsyncSession, job_id: int) -> EscalationAttempt | None:
    """The job's newest attempt."""
    return (
        await session.execute(
            select(EscalationAttempt)
            .where(_attempts.c.job_id == job_id)
            .order_by(_attempts.c.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def attempts_of(db: Ledger, job_id: int) -> list[EscalationAttempt]:
    async with db.transaction() as session:
        return list(
            (
                await session.execute(
                    select(EscalationAttempt)
                    .where(_attempts.c.job_id == job_id)
                    .order_by(_attempts.c.id)
                )
            )
            .scalars()
            .all()
        )


async def expired_leases(db: Ledger, now: datetime) -> list[int]:
    """Ids of LEASED/RUNNING jobs whose lease ran out."""
    statement = select(_jobs.c.id).where(
        _jobs.c.state.in_([S.LEASED.value, S.RUNNING.value]),
        _jobs.c.lease_expires_at < now,
    )
    async with db.transaction() as session:
        return [int(i) for i in (await session.execute(statement)).scalars().all()]


async def count_by_state(db: Ledger) -> dict[str, int]:
    statement = select(_jobs.c.state, func.count()).group_by(_jobs.c.state)
    async with db.transaction() as session:
        return {str(s): int(n) for s, n in (await session.execute(statement)).all()}


async def unannounced(db: Ledger, states: frozenset[JobState]) -> list[JobRow]:
    """Jobs in ``states`` not announced yet (BUDGET_EXHAUSTED, NEEDS_HUMAN, ...), oldest first:
    what the sticky comment / summary should say once."""
    rows = await list_jobs(db, states=states)
    return [row for row in rows if row.job.announced_at is None]


async def mark_announced(db: Ledger, job_id: int, now: datetime) -> bool:
    """Record that the job's state was announced; True only for the first caller."""
    async with db.transaction() as session:
        result = await session.execute(
            update(_jobs)
            .where(_jobs.c.id == job_id, _jobs.c.announced_at.is_(None))
            .values(announced_at=now)
        )
    return rowcount(result) == 1
