"""Pull requests: the current snapshot of each, its append-only history, and the dirty set.

Webhooks ``mark_dirty``; the poller reads each dirty PR, ``record_snapshot``s it and then
``clear_dirty`` with the time its read started, so a webhook that arrives during the read
keeps the PR dirty for the next cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ledger._sql import model_defaults, rowcount, upsert_insert
from ledger.db import Ledger
from ledger.models import (
    Observation,
    ObservationSource,
    PullRequest,
    PullRequestStateValue,
    Repository,
    table_of,
)
from ledger.repositories import ensure_repository


@dataclass(frozen=True, slots=True)
class DirtyPull:
    repository: str  # "owner/name"
    number: int
    reason: str | None
    since: datetime | None


def _state_of(snapshot: dict[str, Any]) -> PullRequestStateValue:
    raw = str(snapshot.get("state") or "OPEN").lower()
    try:
        return PullRequestStateValue(raw)
    except ValueError:
        return PullRequestStateValue.OPEN


async def record_snapshot(
    db: Ledger,
    repository: str,
    number: int,
    snapshot: dict[str, Any],
    fingerprint: str,
    source: ObservationSource,
    now: datetime,
    delivery_id: str | None = None,
) -> bool:
    """Make ``snapshot`` (the JSON of a ``PullRequestSnapshot``) the PR's current state.

    Returns True, and appends an observation, only when ``fingerprint`` differs from the
    stored one (or the PR is new); an unchanged snapshot writes no observation and only moves
    ``last_observed_at``. The repository and PR rows are created when unknown. The PR's
    state (open/closed/merged), head SHA and ``closed_at`` follow the snapshot.
    """
    state = _state_of(snapshot)
    pr_table = table_of(PullRequest)
    async with db.transaction() as session:
        repository_id = await ensure_repository(session, db.backend, repository, now)
        await session.execute(
            upsert_insert(db.backend, pr_table)
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
        # Lock the row (PostgreSQL) so two writers of one PR serialise their compare-and-set.
        current = (
            await session.execute(
                select(pr_table.c.id, pr_table.c.fingerprint)
                .where(pr_table.c.repository_id == repository_id, pr_table.c.number == number)
                .with_for_update()
            )
        ).one()
        changed = bool(current.fingerprint != fingerprint)
        values: dict[str, Any] = {"last_observed_at": now}
        if changed:
            author = snapshot.get("author")
            values.update(
                snapshot=snapshot,
                fingerprint=fingerprint,
                state=state.value,
                head_sha=snapshot.get("head_sha"),
                base_sha=snapshot.get("base_sha"),
                node_id=snapshot.get("node_id") or None,
                author_login=author.get("login") if isinstance(author, dict) else None,
                last_changed_at=now,
                closed_at=None if state is PullRequestStateValue.OPEN else now,
            )
            session.add(
                Observation(
                    pull_request_id=current.id,
                    observed_at=now,
                    source=source.value,
                    delivery_id=delivery_id,
                    fingerprint=fingerprint,
                    head_sha=snapshot.get("head_sha"),
                    snapshot=snapshot,
                )
            )
        await session.execute(update(pr_table).where(pr_table.c.id == current.id).values(values))
    return changed


async def mark_dirty(
    db: Ledger, repository: str, numbers: Iterable[int], reason: str, now: datetime
) -> int:
    """Mark PRs to be read again on the next cycle (creating rows for PRs not seen yet);
    returns how many were marked. ``dirty_since`` becomes ``now`` on every mark."""
    wanted = sorted(set(numbers))
    if not wanted:
        return 0
    table = table_of(PullRequest)
    async with db.transaction() as session:
        repository_id = await ensure_repository(session, db.backend, repository, now)
        rows = [
            {
                **model_defaults(PullRequest),
                "repository_id": repository_id,
                "number": number,
                "first_seen_at": now,
                "dirty": True,
                "dirty_reason": reason,
                "dirty_since": now,
            }
            for number in wanted
        ]
        insert = upsert_insert(db.backend, table).values(rows)
        statement = insert.on_conflict_do_update(
            index_elements=["repository_id", "number"],
            set_={"dirty": True, "dirty_reason": reason, "dirty_since": now},
        )
        await session.execute(statement)
    return len(wanted)


async def list_dirty(
    db: Ledger, repository: str | None = None, limit: int | None = None
) -> list[DirtyPull]:
    """Dirty PRs, longest-waiting first; of one repository when given."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(repositories.full_name, pulls.number, pulls.dirty_reason, pulls.dirty_since)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(pulls.dirty.is_(True))
        .order_by(pulls.dirty_since, pulls.id)
    )
    if repository is not None:
        statement = statement.where(repositories.full_name == repository)
    if limit is not None:
        statement = statement.limit(limit)
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    return [DirtyPull(*row) for row in rows]


async def clear_dirty(
    db: Ledger, repository: str, numbers: Iterable[int], read_started_at: datetime
) -> int:
    """Clear the dirty flag of PRs that were read; only marks made at or before
    ``read_started_at`` are cleared (a newer webhook keeps the PR dirty). Returns how many."""
    wanted = sorted(set(numbers))
    if not wanted:
        return 0
    table = table_of(PullRequest)
    repositories = table_of(Repository).c
    repository_ids = select(repositories.id).where(repositories.full_name == repository)
    statement = (
        update(table)
        .where(
            table.c.repository_id.in_(repository_ids.scalar_subquery()),
            table.c.number.in_(wanted),
            table.c.dirty.is_(True),
            table.c.dirty_since <= read_started_at,
        )
        .values(dirty=False, dirty_reason=None, dirty_since=None)
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
    return rowcount(result)


async def get_pull(db: Ledger, repository: str, number: int) -> PullRequest | None:
    """The PR row, or None."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(PullRequest)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(repositories.full_name == repository, pulls.number == number)
    )
    async with db.read() as session:
        return (await session.execute(statement)).scalar_one_or_none()


async def list_open(db: Ledger, repository: str) -> list[PullRequest]:
    """Open PRs of a repository, by number (including ones marked dirty but not read yet)."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(PullRequest)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(
            repositories.full_name == repository,
            pulls.state == PullRequestStateValue.OPEN.value,
        )
        .order_by(pulls.number)
    )
    async with db.read() as session:
        return list((await session.execute(statement)).scalars().all())


async def close_unseen(
    db: Ledger,
    repository: str,
    seen_numbers: Iterable[int],
    sweep_started_at: datetime,
    now: datetime,
) -> list[int]:
    """After a COMPLETE full sweep: mark open PRs the sweep did not see as closed.

    PRs first seen after ``sweep_started_at`` are left alone (they may have been opened during
    the sweep). Returns the numbers closed. Never call it after a partial or failed sweep.
    """
    seen = set(seen_numbers)
    candidates = [
        pull
        for pull in await list_open(db, repository)
        if pull.number not in seen and pull.first_seen_at < sweep_started_at
    ]
    if not candidates:
        return []
    ids = [pull.id for pull in candidates]
    table = table_of(PullRequest)
    statement = (
        update(table)
        .where(table.c.id.in_(ids), table.c.state == PullRequestStateValue.OPEN.value)
        .values(state=PullRequestStateValue.CLOSED.value, closed_at=now)
    )
    async with db.transaction() as session:
        await session.execute(statement)
    return sorted(pull.number for pull in candidates)


async def list_observations(db: Ledger, repository: str, number: int) -> list[Observation]:
    """The PR's observations, oldest first."""
    observations = table_of(Observation)
    pulls, repositories = table_of(PullRequest), table_of(Repository)
    statement = (
        select(Observation)
        .join_from(observations, pulls)
        .join_from(pulls, repositories)
        .where(repositories.c.full_name == repository, pulls.c.number == number)
        .order_by(observations.c.observed_at, observations.c.id)
    )
    async with db.read() as session:
        return list((await session.execute(statement)).scalars().all())
