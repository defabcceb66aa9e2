"""The spend ledger: append-only reservations, spends, grants and releases.

Every counter is a sum over rows, never stored:

- a job's budget is RESERVED before it is launched (one ``reservation`` row);
- what an agent reports (or, for a crashed attempt, what it last reported, else the whole
  reservation: fail closed) is a ``spend`` row;
- when an attempt ends, its reservation is ``release``d;
- a maintainer's ``grant`` raises a job's budget.

Committed money = spend + reservation - release: an outstanding reservation counts against every
budget scope until it is released, so two jobs launched at once cannot both spend the same dollar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.db import Ledger
from ledger.models import EscalationJob, PullRequest, Repository, Spend, SpendKind, table_of

_spend = table_of(Spend)


@dataclass(frozen=True, slots=True)
class JobSpend:
    """Sums for one job."""

    reserved_dollars: float = 0.0
    reserved_tokens: int = 0
    released_dollars: float = 0.0
    released_tokens: int = 0
    spent_dollars: float = 0.0
    spent_tokens_in: int = 0
    spent_tokens_out: int = 0
    granted_dollars: float = 0.0
    granted_tokens: int = 0

    @property
    def outstanding_dollars(self) -> float:
        """Reserved and not yet released."""
        return max(0.0, self.reserved_dollars - self.released_dollars)

    @property
    def spent_tokens(self) -> int:
        return self.spent_tokens_in + self.spent_tokens_out


@dataclass(frozen=True, slots=True)
class ScopeSpend:
    """Committed dollars (spend + outstanding reservations) per budget scope."""

    pr_dollars: float
    repository_today_dollars: float
    installation_today_dollars: float
    installation_last_hour_dollars: float
    pr_tokens: int


async def reserve(
    session: AsyncSession, job: EscalationJob, now: datetime, note: str = "budget reserved"
) -> None:
    """Reserve the job's budget (inside the caller's transaction)."""
    session.add(
        Spend(
            job_id=job.id,
            repository_id=job.repository_id,
            pull_request_id=job.pull_request_id,
            installation_id=await _installation_of(session, job.repository_id),
            kind=SpendKind.RESERVATION.value,
            tokens_in=job.budget_tokens or 0,
            dollars=job.budget_dollars or 0.0,
            note=note,
            at=now,
        )
    )


async def _installation_of(session: AsyncSession, repository_id: int) -> int | None:
    repositories = table_of(Repository)
    found = await session.execute(
        select(repositories.c.installation_id).where(repositories.c.id == repository_id)
    )
    value = found.scalar_one_or_none()
    return None if value is None else int(value)


async def add(
    session: AsyncSession,
    job: EscalationJob,
    kind: SpendKind,
    now: datetime,
    *,
    attempt_id: int | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
    tokens_cached_in: int = 0,
    dollars: float = 0.0,
    model: str | None = None,
    note: str | None = None,
) -> None:
    """Append one row for ``job`` (inside the caller's transaction). Amounts are never negative:
    a release is a positive amount of kind ``release``."""
    session.add(
        Spend(
            job_id=job.id,
            attempt_id=attempt_id,
            repository_id=job.repository_id,
            pull_request_id=job.pull_request_id,
            installation_id=await _installation_of(session, job.repository_id),
            kind=kind.value,
            tokens_in=max(0, tokens_in),
            tokens_out=max(0, tokens_out),
            tokens_cached_in=max(0, tokens_cached_in),
            dollars=max(0.0, dollars),
            model=model,
            note=note,
            at=now,
        )
    )


async def release_outstanding(
    session: AsyncSession, job: EscalationJob, now: datetime, note: str
) -> None:
    """Release whatever is still reserved for ``job`` (nothing when already released)."""
    sums = await job_spend_in(session, int(job.id or 0))
    dollars = sums.outstanding_dollars
    tokens = max(0, sums.reserved_tokens - sums.released_tokens)
    if dollars > 0 or tokens > 0:
        await add(
            session, job, SpendKind.RELEASE, now, tokens_in=tokens, dollars=dollars, note=note
        )


def _sum(kind: SpendKind, column: Any) -> Any:
    return func.coalesce(func.sum(case((_spend.c.kind == kind.value, column), else_=0)), 0)


async def job_spend_in(session: AsyncSession, job_id: int) -> JobSpend:
    row = (
        await session.execute(
            select(
                _sum(SpendKind.RESERVATION, _spend.c.dollars),
                _sum(SpendKind.RESERVATION, _spend.c.tokens_in),
                _sum(SpendKind.RELEASE, _spend.c.dollars),
                _sum(SpendKind.RELEASE, _spend.c.tokens_in),
                _sum(SpendKind.SPEND, _spend.c.dollars),
                _sum(SpendKind.SPEND, _spend.c.tokens_in),
                _sum(SpendKind.SPEND, _spend.c.tokens_out),
                _sum(SpendKind.GRANT, _spend.c.dollars),
                _sum(SpendKind.GRANT, _spend.c.tokens_in),
            ).where(_spend.c.job_id == job_id)
        )
    ).one()
    return JobSpend(
        float(row[0]),
        int(row[1]),
        float(row[2]),
        int(row[3]),
        float(row[4]),
        int(row[5]),
        int(row[6]),
        float(row[7]),
        int(row[8]),
    )


async def job_spend(db: Ledger, job_id: int) -> JobSpend:
    async with db.transaction() as session:
        return await job_spend_in(session, job_id)


def _committed() -> Any:
    signed = case(
        (_spend.c.kind == SpendKind.SPEND.value, _spend.c.dollars),
        (_spend.c.kind == SpendKind.RESERVATION.value, _spend.c.dollars),
        (_spend.c.kind == SpendKind.RELEASE.value, -_spend.c.dollars),
        else_=0.0,
    )
    return func.coalesce(func.sum(signed), 0.0)


async def scope_spend(db: Ledger, repository: str, number: int, now: datetime) -> ScopeSpend:
    """Committed dollars for the budget scopes of one PR (today = the last 24 h)."""
    repositories, pulls = table_of(Repository), table_of(PullRequest)
    day, hour = now - timedelta(hours=24), now - timedelta(hours=1)
    async with db.transaction() as session:
        found = (
            await session.execute(
                select(repositories.c.id, repositories.c.installation_id, pulls.c.id)
                .join_from(
                    repositories, pulls, pulls.c.repository_id == repositories.c.id, isouter=True
                )
                .where(repositories.c.full_name == repository)
                .where((pulls.c.number == number) | pulls.c.number.is_(None))
            )
        ).first()
        if found is None:
            return ScopeSpend(0.0, 0.0, 0.0, 0.0, 0)
        repository_id, installation_id, pull_id = found

        async def total(*where: Any) -> float:
            value = (await session.execute(select(_committed()).where(*where))).scalar_one()
            return float(value or 0.0)

        pr_dollars = await total(_spend.c.pull_request_id == pull_id) if pull_id else 0.0
        tokens = (
            await session.execute(
                select(func.coalesce(func.sum(_spend.c.tokens_in + _spend.c.tokens_out), 0)).where(
                    _spend.c.pull_request_id == pull_id, _spend.c.kind == SpendKind.SPEND.value
                )
            )
        ).scalar_one()
        repo_day = await total(_spend.c.repository_id == repository_id, _spend.c.at >= day)
        if installation_id is None:
            inst_day, inst_hour = (
                repo_day,
                await total(_spend.c.repository_id == repository_id, _spend.c.at >= hour),
            )
        else:
            inst_day = await total(_spend.c.installation_id == installation_id, _spend.c.at >= day)
            inst_hour = await total(
                _spend.c.installation_id == installation_id, _spend.c.at >= hour
            )
    return ScopeSpend(pr_dollars, repo_day, inst_day, inst_hour, int(tokens or 0))
