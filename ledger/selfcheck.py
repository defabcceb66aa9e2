"""What prsteward needs to know about its own health (issue 12 item 8), read cheaply.

Three small reads, for ``/readyz`` and the dashboard: the last successful sweep of each watched
repository (grouped by installation by the caller), the webhook deliveries still waiting, and
the newest rate-limit sample per installation and resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ledger.db import Ledger
from ledger.models import (
    ApiUsage,
    DeliveryState,
    Installation,
    Repository,
    WebhookDelivery,
    table_of,
)


@dataclass(frozen=True, slots=True)
class SweepState:
    installation_id: int | None
    repository: str
    last_sweep_ok_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RateSample:
    installation_id: int | None
    resource: str
    limit: int | None
    remaining: int | None
    sampled_at: datetime


@dataclass(frozen=True, slots=True)
class HealthRead:
    sweeps: tuple[SweepState, ...]
    pending_deliveries: int
    oldest_pending_at: datetime | None
    rate: tuple[RateSample, ...]


async def read_health(db: Ledger) -> HealthRead:
    """Sweeps of the watched repositories, the webhook backlog, the newest rate samples."""
    repos, inst = table_of(Repository).c, table_of(Installation).c
    wd, usage = table_of(WebhookDelivery).c, table_of(ApiUsage).c
    newest = (
        select(func.max(usage.id).label("id"))
        .group_by(usage.installation_id, usage.resource)
        .subquery()
    )
    async with db.read() as session:
        sweep_rows = (
            await session.execute(
                select(
                    repos.installation_id, repos.full_name, repos.last_sweep_ok_at, repos.created_at
                )
                .select_from(table_of(Repository))
                .outerjoin(table_of(Installation), inst.id == repos.installation_id)
                .where(
                    repos.removed_at.is_(None),
                    repos.ignored.is_(False),
                    repos.archived.is_(False),
                    inst.removed_at.is_(None),
                    inst.suspended.is_(False),
                )
                .order_by(repos.full_name)
            )
        ).all()
        backlog = (
            await session.execute(
                select(func.count(), func.min(wd.received_at)).where(
                    wd.state == DeliveryState.PENDING.value
                )
            )
        ).one()
        rate_rows = (
            await session.execute(
                select(
                    usage.installation_id,
                    usage.resource,
                    usage.limit,
                    usage.remaining,
                    usage.sampled_at,
                )
                .join(newest, newest.c.id == usage.id)
                .order_by(usage.installation_id, usage.resource)
            )
        ).all()
    return HealthRead(
        sweeps=tuple(SweepState(r[0], r[1], r[2], r[3]) for r in sweep_rows),
        pending_deliveries=int(backlog[0] or 0),
        oldest_pending_at=backlog[1],
        rate=tuple(RateSample(r[0], r[1], r[2], r[3], r[4]) for r in rate_rows),
    )
