"""Missed-delivery recovery and removed repositories (issue 13): the ledger side.

Every redelivery prsteward asks GitHub for is one ``delivery_recovery`` row, written BEFORE the
request is sent (so a crash between the two never asks twice) and completed with GitHub's answer.
A delivery GUID is asked for at most once, whatever attempt ids GitHub lists for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update

from ledger import jobs
from ledger._sql import chunks, upsert_insert
from ledger.db import Ledger
from ledger.models import (
    DeliveryRecovery,
    EscalationJob,
    JobState,
    PullRequest,
    Repository,
    table_of,
)

_CHUNK = 500


async def requested_guids(db: Ledger, guids: Sequence[str]) -> set[str]:
    """Which of these delivery GUIDs a redelivery was already asked for."""
    wanted = sorted(set(guids))
    if not wanted:
        return set()
    column = table_of(DeliveryRecovery).c.guid
    found: set[str] = set()
    async with db.read() as session:
        for part in chunks(wanted, _CHUNK):
            found.update(
                str(g)
                for g in (await session.execute(select(column).where(column.in_(part))))
                .scalars()
                .all()
            )
    return found


async def begin_request(
    db: Ledger,
    github_delivery_id: int,
    guid: str,
    now: datetime,
    *,
    event: str | None = None,
    delivered_at: datetime | None = None,
    github_status: str | None = None,
) -> int | None:
    """Record that a redelivery of ``github_delivery_id`` is about to be asked for; the row's
    id, or None when this GUID (or attempt id) was asked for before (then do not ask again)."""
    table = table_of(DeliveryRecovery)
    async with db.transaction() as session:
        seen = (
            await session.execute(select(table.c.id).where(table.c.guid == guid).limit(1))
        ).scalar_one_or_none()
        if seen is not None:
            return None
        inserted = (
            await session.execute(
                upsert_insert(db.backend, table)
                .values(
                    github_delivery_id=github_delivery_id,
                    guid=guid,
                    event=event,
                    delivered_at=delivered_at,
                    github_status=github_status,
                    requested_at=now,
                )
                .on_conflict_do_nothing(index_elements=["github_delivery_id"])
                .returning(table.c.id)
            )
        ).scalar_one_or_none()
    return int(inserted) if inserted is not None else None


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """A redelivery about to be asked for (for :func:`begin_requests`)."""

    github_delivery_id: int
    guid: str
    event: str | None = None
    delivered_at: datetime | None = None
    github_status: str | None = None


async def begin_requests(
    db: Ledger, planned: Sequence[PlannedRequest], now: datetime
) -> dict[str, int]:
    """:func:`begin_request` for a chunk in ONE transaction: GUID -> row id for those recorded
    now; GUIDs (or attempt ids) asked for before, or twice in ``planned``, are left out."""
    table = table_of(DeliveryRecovery)
    first: dict[str, PlannedRequest] = {}
    for item in planned:
        first.setdefault(item.guid, item)
    if not first:
        return {}
    recorded: dict[str, int] = {}
    async with db.transaction() as session:
        seen = set(
            (await session.execute(select(table.c.guid).where(table.c.guid.in_(sorted(first)))))
            .scalars()
            .all()
        )
        rows = [
            {
                "github_delivery_id": item.github_delivery_id,
                "guid": item.guid,
                "event": item.event,
                "delivered_at": item.delivered_at,
                "github_status": item.github_status,
                "requested_at": now,
            }
            for guid, item in first.items()
            if guid not in seen
        ]
        for part in chunks(rows, _CHUNK):
            result = await session.execute(
                upsert_insert(db.backend, table)
                .values(part)
                .on_conflict_do_nothing(index_elements=["github_delivery_id"])
                .returning(table.c.id, table.c.guid)
            )
            recorded.update({str(guid): int(row_id) for row_id, guid in result.all()})
    return recorded


async def finish_requests(
    db: Ledger, answers: Sequence[tuple[int, int | None, str | None]]
) -> None:
    """:func:`finish_request` for many ``(row id, http status, error)`` in one transaction."""
    if not answers:
        return
    table = table_of(DeliveryRecovery)
    async with db.transaction() as session:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(http_status=bindparam("_status"), error=bindparam("_error")),
            [
                {"_id": row_id, "_status": status, "_error": error[:500] if error else None}
                for row_id, status, error in answers
            ],
        )


async def finish_request(
    db: Ledger, request_id: int, http_status: int | None, error: str | None = None
) -> None:
    """GitHub's answer to a redelivery request (``http_status`` None: no answer)."""
    table = table_of(DeliveryRecovery)
    async with db.transaction() as session:
        await session.execute(
            update(table)
            .where(table.c.id == request_id)
            .values(http_status=http_status, error=error[:500] if error else None)
        )


async def list_requests(db: Ledger, since: datetime | None = None) -> list[DeliveryRecovery]:
    """Redelivery requests, oldest first (of those made at or after ``since`` when given)."""
    columns = table_of(DeliveryRecovery).c
    statement = select(DeliveryRecovery).order_by(columns.requested_at, columns.id)
    if since is not None:
        statement = statement.where(columns.requested_at >= since)
    async with db.read() as session:
        return list((await session.execute(statement)).scalars().all())


async def cancel_jobs_of_repositories(
    db: Ledger, full_names: Sequence[str], reason: str, now: datetime
) -> list[int]:
    """Cancel the open escalation jobs of these repositories (removed from the installation):
    every active job that may legally move to CANCELLED does, with ``reason``. Returns their ids."""
    if not full_names:
        return []
    job_columns = table_of(EscalationJob).c
    repositories = table_of(Repository).c
    pull_columns = table_of(PullRequest).c
    cancellable = sorted(s.value for s in jobs.sources_of(JobState.CANCELLED))
    statement = (
        select(job_columns.id)
        .select_from(table_of(EscalationJob))
        .join(table_of(PullRequest), pull_columns.id == job_columns.pull_request_id)
        .join(table_of(Repository), repositories.id == pull_columns.repository_id)
        .where(
            repositories.full_name.in_(sorted(set(full_names))),
            job_columns.state.in_(cancellable),
        )
        .order_by(job_columns.id)
    )
    async with db.read() as session:
        ids = [int(i) for i in (await session.execute(statement)).scalars().all()]
    cancelled: list[int] = []
    for job_id in ids:
        async with db.transaction() as session:
            if await jobs.transition(
                session, job_id, JobState.CANCELLED, "recovery.repository_removed", reason, now
            ):
                cancelled.append(job_id)
    return cancelled
