"""Spend read back per job, exhaustion counts, and low-return demotions (issue 11).

- :func:`job_spend_rows`: every escalation job with its allocated budget and what it spent (one
  query), for the per trigger kind / size class figures of ``bot/budgets.py``;
- :func:`exhausted_total`: how many jobs ever ran out of budget (``prsteward_budget_exhausted_total``);
- :func:`record_watch_only`: a repository demoted to watch-only (or restored), with a ``decision``
  row (kind ``low_return``) carrying the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from ledger.db import Ledger
from ledger.models import (
    Decision,
    EscalationJob,
    JobState,
    MaintainerCommand,
    Repository,
    Spend,
    SpendKind,
    table_of,
)
from ledger.repositories import set_watch_only

_jobs = table_of(EscalationJob)
_spend = table_of(Spend)
_repositories = table_of(Repository)
_decisions = table_of(Decision)
_commands = table_of(MaintainerCommand)

LOW_RETURN_KIND = "low_return"


@dataclass(frozen=True, slots=True)
class JobSpendRow:
    job_id: int
    repository: str
    trigger_kind: str
    trigger_fingerprint: str
    size_class: str | None
    state: str
    created_at: datetime
    updated_at: datetime
    budget_dollars: float
    budget_tokens: int
    spent_dollars: float
    spent_tokens: int
    flags: tuple[str, ...] = field(default=())


async def job_spend_rows(db: Ledger, repository: str | None = None) -> list[JobSpendRow]:
    """Every job (of one repository when given), oldest first, with its spend summed."""
    spent = (
        select(
            _spend.c.job_id.label("job_id"),
            func.coalesce(
                func.sum(case((_spend.c.kind == SpendKind.SPEND.value, _spend.c.dollars), else_=0)),
                0,
            ).label("dollars"),
            func.coalesce(
                func.sum(
                    case(
                        (
                            _spend.c.kind == SpendKind.SPEND.value,
                            _spend.c.tokens_in + _spend.c.tokens_out,
                        ),
                        else_=0,
                    )
                ),
                0,
            ).label("tokens"),
        )
        .group_by(_spend.c.job_id)
        .subquery()
    )
    statement = (
        select(
            _jobs.c.id,
            _repositories.c.full_name,
            _jobs.c.trigger_kind,
            _jobs.c.trigger_fingerprint,
            _jobs.c.size_class,
            _jobs.c.state,
            _jobs.c.created_at,
            _jobs.c.updated_at,
            _jobs.c.budget_dollars,
            _jobs.c.budget_tokens,
            spent.c.dollars,
            spent.c.tokens,
            _jobs.c.flags,
        )
        .join_from(_jobs, _repositories, _jobs.c.repository_id == _repositories.c.id)
        .join_from(_jobs, spent, spent.c.job_id == _jobs.c.id, isouter=True)
        .order_by(_jobs.c.id)
    )
    if repository is not None:
        statement = statement.where(_repositories.c.full_name == repository)
    async with db.transaction() as session:
        rows = (await session.execute(statement)).all()
    return [
        JobSpendRow(
            job_id=int(r[0]),
            repository=str(r[1]),
            trigger_kind=str(r[2]),
            trigger_fingerprint=str(r[3]),
            size_class=r[4],
            state=str(r[5]),
            created_at=r[6],
            updated_at=r[7],
            budget_dollars=float(r[8] or 0.0),
            budget_tokens=int(r[9] or 0),
            spent_dollars=float(r[10] or 0.0),
            spent_tokens=int(r[11] or 0),
            flags=tuple(str(f) for f in (r[12] or ())),
        )
        for r in rows
    ]


async def exhausted_total(db: Ledger) -> int:
    """Jobs that ever moved to BUDGET_EXHAUSTED (a job row moves there at most once)."""
    statement = select(func.count()).where(
        _decisions.c.kind == "job", _decisions.c.to_value == JobState.BUDGET_EXHAUSTED.value
    )
    async with db.transaction() as session:
        return int((await session.execute(statement)).scalar_one())


async def last_maintainer_command(db: Ledger, repository: str) -> datetime | None:
    """When a maintainer's ``/prsteward`` command was last accepted in the repository."""
    statement = (
        select(func.max(_commands.c.at))
        .join_from(_commands, _repositories, _commands.c.repository_id == _repositories.c.id)
        .where(_repositories.c.full_name == repository, _commands.c.accepted.is_(True))
    )
    async with db.transaction() as session:
        value: Any = (await session.execute(statement)).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def record_watch_only(
    db: Ledger,
    repository: str,
    watch_only: bool,
    rule_id: str,
    reason: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> bool:
    """Demote (``watch_only=True``) or restore the repository and append a ``decision`` row
    (kind ``low_return``) with the reason. False when the repository is unknown."""
    async with db.transaction() as session:
        found = (
            await session.execute(
                select(_repositories.c.id, _repositories.c.watch_only).where(
                    _repositories.c.full_name == repository
                )
            )
        ).one_or_none()
    if found is None:
        return False
    repository_id, before = int(found[0]), bool(found[1])
    await set_watch_only(db, repository, watch_only, reason if watch_only else None, now)
    async with db.transaction() as session:
        session.add(
            Decision(
                repository_id=repository_id,
                kind=LOW_RETURN_KIND,
                rule_id=rule_id,
                reason=reason[:2000],
                from_value="watch-only" if before else "normal",
                to_value="watch-only" if watch_only else "normal",
                details=details or {},
                decided_at=now,
            )
        )
    return True
