"""Queries the watching side needs beyond ``ledger.pulls``: which open PRs a webhook's sha,
base branch or issue touches, and API usage samples. Owned by the watching engineer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from ledger.db import Ledger
from ledger.models import ApiUsage, PullRequest, PullRequestStateValue, Repository, table_of


async def open_numbers_with_head(db: Ledger, repository: str, sha: str) -> list[int]:
    """Numbers of the open PRs of ``repository`` whose head commit is ``sha``."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(pulls.number)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(
            repositories.full_name == repository,
            pulls.head_sha == sha,
            pulls.state == PullRequestStateValue.OPEN.value,
        )
        .order_by(pulls.number)
    )
    async with db.transaction() as session:
        return [int(n) for n in (await session.execute(statement)).scalars().all()]


async def record_api_usage(
    db: Ledger,
    installation_id: int | None,
    resource: str,
    now: datetime,
    *,
    limit: int | None,
    remaining: int | None,
    used: int | None,
    reset_at: datetime | None,
    cost: int | None = None,
    requests: int = 0,
) -> None:
    """Append one rate-limit sample (after a reconcile cycle)."""
    values = {
        "installation_id": installation_id,
        "resource": resource,
        "limit": limit,
        "remaining": remaining,
        "used": used,
        "cost": cost,
        "reset_at": reset_at,
        "requests": requests,
        "sampled_at": now,
    }
    async with db.transaction() as session:
        await session.execute(insert(table_of(ApiUsage)).values(values))


async def ping(db: Ledger) -> bool:
    """True when the ledger answers a trivial query (readiness)."""
    async with db.transaction() as session:
        return bool((await session.execute(select(1))).scalar_one() == 1)


async def list_api_usage(db: Ledger, installation_id: int | None = None) -> list[ApiUsage]:
    """Rate-limit samples, oldest first; of one installation when given."""
    columns = table_of(ApiUsage).c
    statement = select(ApiUsage).order_by(columns.sampled_at, columns.id)
    if installation_id is not None:
        statement = statement.where(columns.installation_id == installation_id)
    async with db.transaction() as session:
        return list((await session.execute(statement)).scalars().all())
