"""Queries the watching side needs beyond ``ledger.pulls``: which open PRs a webhook's sha,
base branch or issue touches, and API usage samples. Owned by the watching engineer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, or_, select

from ledger.db import Ledger
from ledger.models import (
    ApiUsage,
    PullRequest,
    PullRequestIssue,
    PullRequestStateValue,
    Repository,
    table_of,
)


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
    async with db.read() as session:
        return [int(n) for n in (await session.execute(statement)).scalars().all()]


async def open_numbers_with_base(db: Ledger, repository: str, base_ref: str) -> list[int]:
    """Numbers of the open PRs of ``repository`` whose base branch is ``base_ref`` (indexed on
    ``(repository_id, base_ref)``; rows written before revision 0002 have no ``base_ref`` and
    are checked through their snapshot)."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(pulls.number, pulls.base_ref, pulls.snapshot)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(
            repositories.full_name == repository,
            pulls.state == PullRequestStateValue.OPEN.value,
            or_(pulls.base_ref == base_ref, pulls.base_ref.is_(None)),
        )
        .order_by(pulls.number)
    )
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    return [
        int(row.number)
        for row in rows
        if row.base_ref == base_ref
        or (row.base_ref is None and (row.snapshot or {}).get("base_ref") == base_ref)
    ]


async def open_numbers_linking_issue(db: Ledger, repository: str, issue_number: int) -> list[int]:
    """Numbers of the open PRs of ``repository`` whose latest snapshot references issue
    ``issue_number`` (closing references; indexed on ``(repository_id, issue_number)``)."""
    pulls, links, repositories = (
        table_of(PullRequest).c,
        table_of(PullRequestIssue).c,
        table_of(Repository).c,
    )
    statement = (
        select(pulls.number)
        .select_from(table_of(PullRequestIssue))
        .join(table_of(PullRequest), pulls.id == links.pull_request_id)
        .join(table_of(Repository), repositories.id == links.repository_id)
        .where(
            repositories.full_name == repository,
            links.issue_number == issue_number,
            pulls.state == PullRequestStateValue.OPEN.value,
        )
        .order_by(pulls.number)
        .distinct()
    )
    async with db.read() as session:
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
