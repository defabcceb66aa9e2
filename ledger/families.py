"""Families' rows (issue 14): code-motion fingerprints, cached once per head SHA, and family rows.

``code_fingerprint`` holds one row per (repository, head SHA): a SHA's diff never changes, so it is
read from GitHub and fingerprinted once. ``family`` holds one row per (repository, family key)
with its state, members, the maintainers' answers and the tracking issue's number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from ledger._sql import upsert_insert
from ledger.db import Ledger
from ledger.models import (
    CodeFingerprint,
    Decision,
    EscalationJob,
    Family,
    PullRequest,
    Repository,
    Spend,
    SpendKind,
    table_of,
)


async def get_fingerprint(db: Ledger, repository_id: int, head_sha: str) -> CodeFingerprint | None:
    """The cached fingerprint of ``head_sha`` in the repository, if computed."""
    columns = table_of(CodeFingerprint).c
    statement = select(CodeFingerprint).where(
        columns.repository_id == repository_id, columns.head_sha == head_sha
    )
    async with db.read() as session:
        return (await session.execute(statement)).scalars().first()


async def save_fingerprint(
    db: Ledger,
    repository_id: int,
    pull_request_id: int | None,
    head_sha: str,
    surfaces: dict[str, Any],
    skeleton: dict[str, Any],
    now: datetime,
    *,
    replace: bool = False,
) -> bool:
    """Store a fingerprint once per (repository, head SHA); False when it was there already.
    ``replace``: overwrite it (the fingerprint rules changed: ``FINGERPRINT_VERSION``)."""
    values = {
        "repository_id": repository_id,
        "pull_request_id": pull_request_id,
        "head_sha": head_sha,
        "surfaces": surfaces,
        "skeleton": skeleton,
        "computed_at": now,
    }
    insert = upsert_insert(db.backend, table_of(CodeFingerprint)).values(values)
    statement = (
        insert.on_conflict_do_update(
            index_elements=["repository_id", "head_sha"],
            set_={"surfaces": surfaces, "skeleton": skeleton, "computed_at": now},
        )
        if replace
        else insert.on_conflict_do_nothing(index_elements=["repository_id", "head_sha"])
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))


async def count_fingerprints(db: Ledger, repository_id: int | None = None) -> int:
    columns = table_of(CodeFingerprint).c
    statement = select(func.count()).select_from(table_of(CodeFingerprint))
    if repository_id is not None:
        statement = statement.where(columns.repository_id == repository_id)
    async with db.read() as session:
        return int((await session.execute(statement)).scalar_one())


@dataclass(slots=True)
class MemberRow:
    """A PR with its latest fingerprint, its escalation jobs and their token spend."""

    pull: PullRequest
    fingerprint: CodeFingerprint
    jobs: int = 0
    spend: list[tuple[datetime, int, float]] = field(default_factory=list)  # (at, tokens, $)


async def repository_members(db: Ledger, repository_id: int) -> list[MemberRow]:
    """Every PR of the repository that has a fingerprint (its latest one), oldest PR first."""
    fingerprints = table_of(CodeFingerprint).c
    async with db.read() as session:
        rows = (
            (
                await session.execute(
                    select(CodeFingerprint)
                    .where(
                        fingerprints.repository_id == repository_id,
                        fingerprints.pull_request_id.is_not(None),
                    )
                    .order_by(fingerprints.computed_at, fingerprints.id)
                )
            )
            .scalars()
            .all()
        )
        latest: dict[int, CodeFingerprint] = {}
        for row in rows:
            assert row.pull_request_id is not None
            latest[row.pull_request_id] = row
        if not latest:
            return []
        ids = sorted(latest)
        pull_columns = table_of(PullRequest).c
        pulls = (
            (await session.execute(select(PullRequest).where(pull_columns.id.in_(ids))))
            .scalars()
            .all()
        )
        jobs = table_of(EscalationJob).c
        job_counts = {
            int(pull_id): int(count)
            for pull_id, count in (
                await session.execute(
                    select(jobs.pull_request_id, func.count())
                    .where(jobs.pull_request_id.in_(ids))
                    .group_by(jobs.pull_request_id)
                )
            ).all()
        }
        spend = table_of(Spend).c
        spent: dict[int, list[tuple[datetime, int, float]]] = {}
        for pull_id, at, tokens_in, tokens_out, dollars in (
            await session.execute(
                select(
                    spend.pull_request_id,
                    spend.at,
                    spend.tokens_in,
                    spend.tokens_out,
                    spend.dollars,
                )
                .where(spend.pull_request_id.in_(ids), spend.kind == SpendKind.SPEND.value)
                .order_by(spend.at, spend.id)
            )
        ).all():
            spent.setdefault(int(pull_id), []).append(
                (at, int(tokens_in or 0) + int(tokens_out or 0), float(dollars or 0.0))
            )
    out = [
        MemberRow(pull, latest[pull.id], job_counts.get(pull.id, 0), spent.get(pull.id, []))
        for pull in pulls
        if pull.id is not None
    ]
    return sorted(out, key=lambda m: (m.pull.first_seen_at, m.pull.number))


# --- family rows --------------------------------------------------------------------------------


async def list_families(db: Ledger, repository_id: int | None = None) -> list[Family]:
    columns = table_of(Family).c
    statement = select(Family).order_by(columns.repository_id, columns.created_at, columns.id)
    if repository_id is not None:
        statement = statement.where(columns.repository_id == repository_id)
    async with db.read() as session:
        return list((await session.execute(statement)).scalars().all())


async def upsert_family(
    db: Ledger,
    repository_id: int,
    family_key: str,
    *,
    state: str,
    state_reason: str,
    members: list[Any],
    details: dict[str, Any],
    now: datetime,
) -> Family:
    """Create or update the family row (``details`` merged key by key over the stored ones)."""
    columns = table_of(Family).c
    async with db.transaction() as session:
        row = (
            (
                await session.execute(
                    select(Family).where(
                        columns.repository_id == repository_id, columns.family_key == family_key
                    )
                )
            )
            .scalars()
            .first()
        )
        if row is None:
            row = Family(
                repository_id=repository_id,
                family_key=family_key,
                state=state,
                state_reason=state_reason,
                members=members,
                details=details,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            return row
        merged = {**(row.details or {}), **details}
        if (row.state, row.state_reason, row.members, row.details) != (
            state,
            state_reason,
            members,
            merged,
        ):
            row.state, row.state_reason = state, state_reason
            row.members, row.details, row.updated_at = members, merged, now
        return row


async def set_family_details(
    db: Ledger,
    family_id: int,
    now: datetime,
    *,
    tracking_issue_number: int | None = None,
    **details: Any,
) -> None:
    """Merge ``details`` into the family's; set its tracking issue when given."""
    async with db.transaction() as session:
        row = await session.get(Family, family_id)
        if row is None:
            return
        row.details = {**(row.details or {}), **details}
        if tracking_issue_number is not None:
            row.tracking_issue_number = tracking_issue_number
        row.updated_at = now


async def close_family(db: Ledger, family_id: int, reason: str, now: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(table_of(Family))
            .where(table_of(Family).c.id == family_id)
            .values(state="closed", state_reason=reason, updated_at=now)
        )


async def record_family_decision(
    db: Ledger,
    repository_id: int,
    pull_request_id: int | None,
    rule_id: str,
    reason: str,
    now: datetime,
    details: dict[str, Any],
) -> None:
    """Append a ``family`` decision (a response reached, a stop, a maintainer's answer)."""
    async with db.transaction() as session:
        session.add(
            Decision(
                repository_id=repository_id,
                pull_request_id=pull_request_id,
                kind="family",
                rule_id=rule_id,
                reason=reason,
                details=details,
                decided_at=now,
            )
        )


@dataclass(frozen=True, slots=True)
class FamilySummary:
    """One family as the report and the dashboard show it."""

    repository: str
    key: str
    state: str
    state_reason: str | None
    members: tuple[int, ...]
    surfaces: tuple[str, ...]
    tokens: int
    dollars: float
    median_tokens_per_member: float
    tokens_not_spent: int
    stopped: int
    tracking_issue_number: int | None
    updated_at: datetime

    @property
    def tokens_per_member(self) -> float:
        return self.tokens / len(self.members) if self.members else 0.0


async def family_summaries(db: Ledger, limit: int = 50) -> tuple[FamilySummary, ...]:
    """The most recently changed families of every repository, newest first."""
    columns, repositories = table_of(Family).c, table_of(Repository).c
    statement = (
        select(Family, repositories.full_name)
        .join_from(table_of(Family), table_of(Repository))
        .order_by(columns.updated_at.desc(), columns.id.desc())
        .limit(limit)
    )
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    out: list[FamilySummary] = []
    for family, full_name in rows:
        details: dict[str, Any] = family.details or {}
        out.append(
            FamilySummary(
                repository=str(full_name),
                key=family.family_key,
                state=family.state,
                state_reason=family.state_reason,
                members=tuple(int(n) for n in family.members),
                surfaces=tuple(str(s) for s in details.get("surfaces", ())),
                tokens=int(details.get("tokens", 0)),
                dollars=float(details.get("dollars", 0.0)),
                median_tokens_per_member=float(details.get("median_tokens_per_member", 0.0)),
                tokens_not_spent=int(details.get("tokens_not_spent", 0)),
                stopped=len(details.get("stopped", ())),
                tracking_issue_number=family.tracking_issue_number,
                updated_at=family.updated_at,
            )
        )
    return tuple(out)


async def close_family_for_issue(
    db: Ledger, repository: str, issue_number: int, reason: str, now: datetime
) -> bool:
    """The family whose tracking issue is ``issue_number`` is closed (for an ``issues.closed``
    webhook); False when no open family has that issue."""
    families, repositories = table_of(Family).c, table_of(Repository).c
    async with db.transaction() as session:
        found = (
            await session.execute(
                select(families.id)
                .join_from(table_of(Family), table_of(Repository))
                .where(
                    repositories.full_name == repository,
                    families.tracking_issue_number == issue_number,
                    families.state != "closed",
                )
            )
        ).scalar_one_or_none()
        if found is None:
            return False
        await session.execute(
            update(table_of(Family))
            .where(families.id == found)
            .values(state="closed", state_reason=reason, updated_at=now)
        )
        return True
