"""Read-only queries for the maintainer view: the report, the dashboard, the metrics, the summary.

Nothing here writes. Every function takes a ``Ledger`` and ``now`` (never reads a clock), runs in
one read-only transaction and returns plain frozen values, so the report, the dashboard and
``/metrics`` show the same figures. Counters are derived from the append-only tables at read
time; nothing is stored twice.

Definitions used by every view:
- *spent* is the sum of ``spend`` rows of kind ``spend``; *reserved* is reservations minus
  releases (money set aside for running jobs, not yet spent);
- *today* starts at 00:00 UTC of ``now``; *this week* is the last 7 days (``now - 7d``);
- a *trigger waiting* is an open PR in tier ``signal`` with no escalation job in flight;
- *proposed* candidates are all candidates; *posted* and *escalated* reached GitHub or an
  agent; ``suppressed_*`` outcomes are counted by reason; *shadow* is what shadow mode recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.db import READ_ONLY, Ledger
from ledger.families import FamilySummary
from ledger.models import (
    Action,
    ApiUsage,
    Candidate,
    Decision,
    EscalationAttempt,
    EscalationJob,
    JobState,
    MaintainerCommand,
    Observation,
    PullRequest,
    PullRequestStateValue,
    Repository,
    Spend,
    SpendKind,
    WebhookDelivery,
    table_of,
)
from policies.sizing import SpendStats

IN_FLIGHT_JOB_STATES = (
    JobState.DETECTED.value,
    JobState.QUEUED.value,
    JobState.LEASED.value,
    JobState.RUNNING.value,
    JobState.CLAIMED_DONE.value,
    JobState.VERIFYING.value,
)
TIER_ORDER = ("signal", "closing", "zombie", "active", "exempt", "unknown")
TURN_ORDER = ("author", "maintainers", "ci", "nobody", "unknown")


# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepositoryQueue:
    """One repository's open PRs by tier and by whose turn."""

    repository: str
    repository_id: int
    open_total: int
    tiers: dict[str, int]
    turns: dict[str, int]
    mode: str | None  # from the repository's config (shadow | act), None when unknown
    watch_only: bool
    config: dict[str, Any] | None
    config_error: str | None
    last_sweep_ok_at: datetime | None


@dataclass(frozen=True, slots=True)
class WaitingPull:
    """An open PR waiting on one party, and since when."""

    repository: str
    number: int
    title: str
    tier: str | None
    whose_turn: str
    reason: str | None
    since: datetime
    # True when the wait began before prsteward first saw the PR (its first evaluation already
    # found it waiting): ``since`` is then a lower bound of the wait, shown as "N+ days".
    at_least: bool = False

    def days(self, now: datetime) -> float:
        return max(0.0, (now - self.since) / timedelta(days=1))

    def days_text(self, now: datetime) -> str:
        days = round(self.days(now))
        return f"{days}{'+' if self.at_least else ''} day{'' if days == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class TriggerWaiting:
    repository: str
    number: int
    title: str
    since: datetime | None
    reason: str | None  # the latest tier decision's reason, when recorded


@dataclass(frozen=True, slots=True)
class SpendTotals:
    tokens_in: int = 0
    tokens_out: int = 0
    dollars: float = 0.0
    reserved_dollars: float = 0.0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass(frozen=True, slots=True)
class RepositorySpend:
    repository: str
    today: SpendTotals
    week: SpendTotals


@dataclass(frozen=True, slots=True)
class ApiUsageLatest:
    """The newest rate-limit sample of one installation and resource, plus today's use."""

    installation_id: int | None
    resource: str
    limit: int | None
    remaining: int | None
    used: int | None
    reset_at: datetime | None
    sampled_at: datetime
    requests_today: int
    cost_today: int


@dataclass(frozen=True, slots=True)
class StopLossDecision:
    repository: str | None
    number: int | None
    rule_id: str
    reason: str
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class CandidateCounts:
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def proposed(self) -> int:
        return sum(self.by_outcome.values())

    @property
    def posted(self) -> int:
        return self.by_outcome.get("posted", 0)

    @property
    def escalated(self) -> int:
        return self.by_outcome.get("escalated", 0)

    @property
    def shadow(self) -> int:
        return self.by_outcome.get("shadow", 0)

    @property
    def suppressed(self) -> dict[str, int]:
        """Suppressed candidates by reason (``suppressed_budget`` -> ``budget``)."""
        return {
            outcome.removeprefix("suppressed_"): count
            for outcome, count in sorted(self.by_outcome.items())
            if outcome.startswith("suppressed_")
        }


@dataclass(frozen=True, slots=True)
class ReportData:
    generated_at: datetime
    repositories: tuple[RepositoryQueue, ...]
    waiting_on_maintainers: tuple[WaitingPull, ...]
    waiting_on_maintainers_total: int
    triggers_waiting: tuple[TriggerWaiting, ...]
    triggers_waiting_total: int
    jobs_by_state: dict[str, int]
    spend_today: SpendTotals
    spend_week: SpendTotals
    spend_by_repository: tuple[RepositorySpend, ...]
    api_usage: tuple[ApiUsageLatest, ...]
    candidates: CandidateCounts
    stop_loss: tuple[StopLossDecision, ...]
    families: tuple[FamilySummary, ...] = ()  # same-shape families (issue 14, ledger/families.py)
    behind: tuple[str, ...] = ()  # why prsteward is behind (bot/selfcheck.py); empty: not
    # per trigger kind and size class (issue 11, bot/budgets.py: spend_report)
    spend_classes: tuple[SpendStats, ...] = ()
    boundaries: tuple[str, ...] = ()  # standing permission boundaries (issue 11, bot/boundaries.py)

    @property
    def open_total(self) -> int:
        return sum(r.open_total for r in self.repositories)

    def tiers_total(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for repo in self.repositories:
            for tier, count in repo.tiers.items():
                totals[tier] = totals.get(tier, 0) + count
        return totals


# --- helpers -------------------------------------------------------------------------------------


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _ordered(counts: dict[str, int], order: tuple[str, ...]) -> dict[str, int]:
    known = {key: counts[key] for key in order if key in counts}
    rest = {key: counts[key] for key in sorted(counts) if key not in known}
    return known | rest


@asynccontextmanager
async def reading(db: Ledger) -> AsyncIterator[AsyncConnection]:
    """One read-only transaction (a plain BEGIN on SQLite: never blocks writers)."""
    async with db.engine.connect() as connection:
        await connection.execution_options(**READ_ONLY)
        async with connection.begin():
            yield connection


def _title(snapshot: dict[str, Any] | None) -> str:
    if not snapshot:
        return ""
    return str(snapshot.get("title") or "")


# --- queries -------------------------------------------------------------------------------------


async def _queues(session: AsyncConnection) -> list[RepositoryQueue]:
    repos = table_of(Repository).c
    pulls = table_of(PullRequest).c
    repo_rows = (
        await session.execute(
            select(
                repos.id,
                repos.full_name,
                repos.watch_only,
                repos.config,
                repos.config_error,
                repos.last_sweep_ok_at,
            )
            .where(repos.removed_at.is_(None), repos.ignored.is_(False))
            .order_by(repos.full_name)
        )
    ).all()
    counts = (
        await session.execute(
            select(pulls.repository_id, pulls.tier, pulls.whose_turn, func.count())
            .where(pulls.state == PullRequestStateValue.OPEN.value)
            .group_by(pulls.repository_id, pulls.tier, pulls.whose_turn)
        )
    ).all()
    tiers: dict[int, dict[str, int]] = {}
    turns: dict[int, dict[str, int]] = {}
    for repository_id, tier, turn, count in counts:
        per_tier = tiers.setdefault(int(repository_id), {})
        per_tier[tier or "unknown"] = per_tier.get(tier or "unknown", 0) + int(count)
        per_turn = turns.setdefault(int(repository_id), {})
        per_turn[turn or "unknown"] = per_turn.get(turn or "unknown", 0) + int(count)
    out = []
    for repository_id, name, watch_only, config, config_error, last_ok in repo_rows:
        rid = int(repository_id)
        per_tier = _ordered(tiers.get(rid, {}), TIER_ORDER)
        mode = config.get("mode") if isinstance(config, dict) else None
        out.append(
            RepositoryQueue(
                repository=str(name),
                repository_id=rid,
                open_total=sum(per_tier.values()),
                tiers=per_tier,
                turns=_ordered(turns.get(rid, {}), TURN_ORDER),
                mode=str(mode) if mode is not None else None,
                watch_only=bool(watch_only),
                config=config if isinstance(config, dict) else None,
                config_error=config_error,
                last_sweep_ok_at=last_ok,
            )
        )
    return out


async def _waiting_on(
    session: AsyncConnection, turn: str, limit: int
) -> tuple[list[WaitingPull], int]:
    """Open PRs whose turn is ``turn``, longest wait first; since = the latest ``whose_turn``
    decision that moved the PR to ``turn`` (else when the PR last changed, else first seen)."""
    pulls = table_of(PullRequest).c
    repos = table_of(Repository).c
    decisions = table_of(Decision).c
    moved = (
        select(
            decisions.pull_request_id,
            func.max(decisions.decided_at).label("at"),
            func.max(case((decisions.from_value.is_not(None), 1), else_=0)).label("observed"),
        )
        .where(decisions.kind == "whose_turn", decisions.to_value == turn)
        .group_by(decisions.pull_request_id)
        .subquery()
    )
    since = func.coalesce(moved.c.at, pulls.last_changed_at, pulls.first_seen_at)
    where = and_(pulls.state == PullRequestStateValue.OPEN.value, pulls.whose_turn == turn)
    total = (
        await session.execute(select(func.count()).select_from(table_of(PullRequest)).where(where))
    ).scalar_one()
    rows = (
        await session.execute(
            select(
                repos.full_name,
                pulls.number,
                pulls.snapshot,
                pulls.tier,
                pulls.whose_turn_reason,
                since.label("since"),
                moved.c.observed,
            )
            .select_from(table_of(PullRequest))
            .join(table_of(Repository), repos.id == pulls.repository_id)
            .outerjoin(moved, moved.c.pull_request_id == pulls.id)
            .where(where)
            .order_by(since, repos.full_name, pulls.number)
            .limit(limit)
        )
    ).all()
    return [
        WaitingPull(
            repository=str(name),
            number=int(number),
            title=_title(snapshot),
            tier=tier,
            whose_turn=turn,
            reason=reason,
            since=at,
            at_least=not observed,
        )
        for name, number, snapshot, tier, reason, at, observed in rows
    ], int(total)


async def _triggers_waiting(
    session: AsyncConnection, limit: int
) -> tuple[list[TriggerWaiting], int]:
    pulls = table_of(PullRequest).c
    repos = table_of(Repository).c
    jobs = table_of(EscalationJob).c
    decisions = table_of(Decision).c
    in_flight = (
        select(jobs.pull_request_id).where(jobs.state.in_(IN_FLIGHT_JOB_STATES)).scalar_subquery()
    )
    where = and_(
        pulls.state == PullRequestStateValue.OPEN.value,
        pulls.tier == "signal",
        pulls.id.not_in(in_flight),
    )
    total = (
        await session.execute(select(func.count()).select_from(table_of(PullRequest)).where(where))
    ).scalar_one()
    latest_tier = (
        select(decisions.pull_request_id, func.max(decisions.id).label("id"))
        .where(decisions.kind == "tier", decisions.to_value == "signal")
        .group_by(decisions.pull_request_id)
        .subquery()
    )
    tier_reason = table_of(Decision).alias("tier_reason")
    rows = (
        await session.execute(
            select(
                repos.full_name,
                pulls.number,
                pulls.snapshot,
                pulls.tier_since,
                tier_reason.c.reason,
            )
            .select_from(table_of(PullRequest))
            .join(table_of(Repository), repos.id == pulls.repository_id)
            .outerjoin(latest_tier, latest_tier.c.pull_request_id == pulls.id)
            .outerjoin(tier_reason, tier_reason.c.id == latest_tier.c.id)
            .where(where)
            .order_by(pulls.tier_since, repos.full_name, pulls.number)
            .limit(limit)
        )
    ).all()
    return [
        TriggerWaiting(str(name), int(number), _title(snapshot), since, reason)
        for name, number, snapshot, since, reason in rows
    ], int(total)


async def _jobs_by_state(session: AsyncConnection) -> dict[str, int]:
    jobs = table_of(EscalationJob).c
    rows = (await session.execute(select(jobs.state, func.count()).group_by(jobs.state))).all()
    order = tuple(state.value for state in JobState)
    return _ordered({str(state): int(count) for state, count in rows}, order)


def _spend_columns() -> tuple[Any, ...]:
    spend = table_of(Spend).c
    is_spend = spend.kind == SpendKind.SPEND.value
    return (
        func.coalesce(func.sum(_case(is_spend, spend.tokens_in)), 0),
        func.coalesce(func.sum(_case(is_spend, spend.tokens_out)), 0),
        func.coalesce(func.sum(_case(is_spend, spend.dollars)), 0.0),
        func.coalesce(
            func.sum(_case(spend.kind == SpendKind.RESERVATION.value, spend.dollars)), 0.0
        ),
        func.coalesce(func.sum(_case(spend.kind == SpendKind.RELEASE.value, spend.dollars)), 0.0),
    )


def _case(condition: Any, value: Any) -> Any:
    return case((condition, value), else_=0)


def _totals(row: Any) -> SpendTotals:
    tokens_in, tokens_out, dollars, reserved, released = row
    return SpendTotals(
        tokens_in=int(tokens_in or 0),
        tokens_out=int(tokens_out or 0),
        dollars=round(float(dollars or 0.0), 6),
        reserved_dollars=round(max(0.0, float(reserved or 0.0) - float(released or 0.0)), 6),
    )


async def spend_between(
    session: AsyncConnection, start: datetime | None, end: datetime | None = None
) -> SpendTotals:
    spend = table_of(Spend).c
    statement = select(*_spend_columns())
    if start is not None:
        statement = statement.where(spend.at >= start)
    if end is not None:
        statement = statement.where(spend.at < end)
    return _totals((await session.execute(statement)).one())


async def _spend_by_repository(
    session: AsyncConnection, today: datetime, week: datetime
) -> list[RepositorySpend]:
    spend = table_of(Spend).c
    repos = table_of(Repository).c
    out = []
    rows_today = (
        await session.execute(
            select(spend.repository_id, *_spend_columns())
            .where(spend.at >= today)
            .group_by(spend.repository_id)
        )
    ).all()
    rows_week = (
        await session.execute(
            select(spend.repository_id, *_spend_columns())
            .where(spend.at >= week)
            .group_by(spend.repository_id)
        )
    ).all()
    names = {
        int(i): str(n) for i, n in (await session.execute(select(repos.id, repos.full_name))).all()
    }
    today_by = {row[0]: _totals(row[1:]) for row in rows_today}
    week_by = {row[0]: _totals(row[1:]) for row in rows_week}
    for repository_id in sorted(set(week_by) | set(today_by), key=lambda i: (i is None, i or 0)):
        name = names.get(repository_id, "(no repository)") if repository_id else "(no repository)"
        out.append(
            RepositorySpend(
                str(name),
                today_by.get(repository_id, SpendTotals()),
                week_by.get(repository_id, SpendTotals()),
            )
        )
    return out


async def _api_usage(session: AsyncConnection, today: datetime) -> list[ApiUsageLatest]:
    usage = table_of(ApiUsage).c
    newest = (
        select(usage.installation_id, usage.resource, func.max(usage.id).label("id"))
        .group_by(usage.installation_id, usage.resource)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                usage.installation_id,
                usage.resource,
                usage.limit,
                usage.remaining,
                usage.used,
                usage.reset_at,
                usage.sampled_at,
            )
            .join(newest, newest.c.id == usage.id)
            .order_by(usage.installation_id, usage.resource)
        )
    ).all()
    sums = (
        await session.execute(
            select(
                usage.installation_id,
                usage.resource,
                func.coalesce(func.sum(usage.requests), 0),
                func.coalesce(func.sum(usage.cost), 0),
            )
            .where(usage.sampled_at >= today)
            .group_by(usage.installation_id, usage.resource)
        )
    ).all()
    today_by = {(i, r): (int(req), int(cost)) for i, r, req, cost in sums}
    return [
        ApiUsageLatest(
            installation_id=None if inst is None else int(inst),
            resource=str(resource),
            limit=limit,
            remaining=remaining,
            used=used,
            reset_at=reset_at,
            sampled_at=sampled_at,
            requests_today=today_by.get((inst, resource), (0, 0))[0],
            cost_today=today_by.get((inst, resource), (0, 0))[1],
        )
        for inst, resource, limit, remaining, used, reset_at, sampled_at in rows
    ]


async def _candidates(session: AsyncConnection, since: datetime | None = None) -> CandidateCounts:
    candidates = table_of(Candidate).c
    by_outcome_q = select(candidates.outcome, func.count()).group_by(candidates.outcome)
    by_kind_q = select(candidates.kind, func.count()).group_by(candidates.kind)
    if since is not None:
        by_outcome_q = by_outcome_q.where(candidates.created_at >= since)
        by_kind_q = by_kind_q.where(candidates.created_at >= since)
    by_outcome = {str(o): int(c) for o, c in (await session.execute(by_outcome_q)).all()}
    by_kind = {str(k): int(c) for k, c in (await session.execute(by_kind_q)).all()}
    return CandidateCounts(dict(sorted(by_outcome.items())), dict(sorted(by_kind.items())))


async def _stop_loss(session: AsyncConnection, limit: int) -> list[StopLossDecision]:
    decisions = table_of(Decision).c
    repos = table_of(Repository).c
    pulls = table_of(PullRequest).c
    rows = (
        await session.execute(
            select(
                repos.full_name,
                pulls.number,
                decisions.rule_id,
                decisions.reason,
                decisions.decided_at,
            )
            .select_from(table_of(Decision))
            .outerjoin(table_of(Repository), repos.id == decisions.repository_id)
            .outerjoin(table_of(PullRequest), pulls.id == decisions.pull_request_id)
            .where(decisions.kind == "stop_loss")
            .order_by(decisions.decided_at.desc(), decisions.id.desc())
            .limit(limit)
        )
    ).all()
    return [
        StopLossDecision(name, None if number is None else int(number), rule, reason, at)
        for name, number, rule, reason, at in rows
    ]


async def gather_report(
    db: Ledger, now: datetime, *, list_limit: int = 20, stop_loss_limit: int = 10
) -> ReportData:
    """Everything ``prsteward report`` shows, from one consistent read of the ledger."""
    today = start_of_day(now)
    week = now - timedelta(days=7)
    async with reading(db) as session:
        queues = await _queues(session)
        waiting, waiting_total = await _waiting_on(session, "maintainers", list_limit)
        triggers, triggers_total = await _triggers_waiting(session, list_limit)
        jobs = await _jobs_by_state(session)
        spend_today = await spend_between(session, today)
        spend_week = await spend_between(session, week)
        by_repo = await _spend_by_repository(session, today, week)
        api = await _api_usage(session, today)
        candidates = await _candidates(session)
        stop_loss = await _stop_loss(session, stop_loss_limit)
    return ReportData(
        generated_at=now,
        repositories=tuple(queues),
        waiting_on_maintainers=tuple(waiting),
        waiting_on_maintainers_total=waiting_total,
        triggers_waiting=tuple(triggers),
        triggers_waiting_total=triggers_total,
        jobs_by_state=jobs,
        spend_today=spend_today,
        spend_week=spend_week,
        spend_by_repository=tuple(by_repo),
        api_usage=tuple(api),
        candidates=candidates,
        stop_loss=tuple(stop_loss),
    )


# --- dashboard pages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullRow:
    """One PR in a repository's queue page."""

    number: int
    title: str
    author: str | None
    state: str
    tier: str | None
    tier_since: datetime | None
    whose_turn: str | None
    whose_turn_reason: str | None
    frozen: bool
    paused: bool
    last_changed_at: datetime | None
    last_observed_at: datetime | None


async def repository_pulls(
    db: Ledger, repository: str, *, include_closed: bool = False, limit: int = 500
) -> tuple[RepositoryQueue | None, list[PullRow]]:
    """One repository's queue (None when unknown) and its PRs, most urgent tier first."""
    pulls = table_of(PullRequest).c
    repos = table_of(Repository).c
    order = case({tier: index for index, tier in enumerate(TIER_ORDER)}, value=pulls.tier, else_=9)
    async with reading(db) as session:
        queue = next((q for q in await _queues(session) if q.repository == repository), None)
        if queue is None:
            return None, []
        statement = (
            select(
                pulls.number,
                pulls.snapshot,
                pulls.author_login,
                pulls.state,
                pulls.tier,
                pulls.tier_since,
                pulls.whose_turn,
                pulls.whose_turn_reason,
                pulls.frozen,
                pulls.paused,
                pulls.last_changed_at,
                pulls.last_observed_at,
            )
            .join(table_of(Repository), repos.id == pulls.repository_id)
            .where(repos.full_name == repository)
            .order_by(order, pulls.number.desc())
            .limit(limit)
        )
        if not include_closed:
            statement = statement.where(pulls.state == PullRequestStateValue.OPEN.value)
        rows = (await session.execute(statement)).all()
    return queue, [
        PullRow(
            number=int(number),
            title=_title(snapshot),
            author=author,
            state=str(state),
            tier=tier,
            tier_since=tier_since,
            whose_turn=turn,
            whose_turn_reason=turn_reason,
            frozen=bool(frozen),
            paused=bool(paused),
            last_changed_at=changed,
            last_observed_at=observed,
        )
        for (
            number,
            snapshot,
            author,
            state,
            tier,
            tier_since,
            turn,
            turn_reason,
            frozen,
            paused,
            changed,
            observed,
        ) in rows
    ]


@dataclass(frozen=True, slots=True)
class PullHistory:
    """Everything the ledger knows about one PR, oldest first within each list."""

    repository: str
    pull: PullRow
    head_sha: str | None
    snapshot: dict[str, Any] | None
    observations: tuple[dict[str, Any], ...]
    decisions: tuple[dict[str, Any], ...]
    candidates: tuple[dict[str, Any], ...]
    actions: tuple[dict[str, Any], ...]
    jobs: tuple[dict[str, Any], ...]
    attempts: tuple[dict[str, Any], ...]
    spend: tuple[dict[str, Any], ...]
    spend_total: SpendTotals
    commands: tuple[dict[str, Any], ...] = ()  # /prsteward commands and their effect (issue 12)


def _rows(result: Any) -> tuple[dict[str, Any], ...]:
    return tuple(dict(row._mapping) for row in result.all())


async def pull_history(
    db: Ledger, repository: str, number: int, *, limit: int = 200
) -> PullHistory | None:
    """One PR's history (the newest ``limit`` rows of each kind), or None when unknown."""
    pulls = table_of(PullRequest).c
    repos = table_of(Repository).c
    async with reading(db) as session:
        row = (
            await session.execute(
                select(table_of(PullRequest))
                .join(table_of(Repository), repos.id == pulls.repository_id)
                .where(repos.full_name == repository, pulls.number == number)
            )
        ).first()
        if row is None:
            return None
        pr = dict(row._mapping)
        pr_id = pr["id"]
        obs = table_of(Observation).c
        observations = _rows(
            await session.execute(
                select(obs.id, obs.observed_at, obs.source, obs.delivery_id, obs.head_sha)
                .where(obs.pull_request_id == pr_id)
                .order_by(obs.observed_at.desc(), obs.id.desc())
                .limit(limit)
            )
        )
        dec = table_of(Decision).c
        decisions = _rows(
            await session.execute(
                select(
                    dec.id,
                    dec.decided_at,
                    dec.kind,
                    dec.rule_id,
                    dec.reason,
                    dec.from_value,
                    dec.to_value,
                )
                .where(dec.pull_request_id == pr_id)
                .order_by(dec.decided_at.desc(), dec.id.desc())
                .limit(limit)
            )
        )
        cand = table_of(Candidate).c
        candidates = _rows(
            await session.execute(
                select(
                    cand.id,
                    cand.created_at,
                    cand.kind,
                    cand.rule_id,
                    cand.reason,
                    cand.outcome,
                    cand.outcome_reason,
                    cand.decided_at,
                )
                .where(cand.pull_request_id == pr_id)
                .order_by(cand.created_at.desc(), cand.id.desc())
                .limit(limit)
            )
        )
        act = table_of(Action).c
        actions = _rows(
            await session.execute(
                select(
                    act.id,
                    act.performed_at,
                    act.kind,
                    act.status,
                    act.http_status,
                    act.error,
                    act.github_id,
                )
                .where(act.pull_request_id == pr_id)
                .order_by(act.performed_at.desc(), act.id.desc())
                .limit(limit)
            )
        )
        job = table_of(EscalationJob).c
        jobs = _rows(
            await session.execute(
                select(
                    job.id,
                    job.created_at,
                    job.updated_at,
                    job.trigger_kind,
                    job.state,
                    job.state_reason,
                    job.attempt,
                    job.max_attempts,
                    job.budget_dollars,
                    job.budget_tokens,
                )
                .where(job.pull_request_id == pr_id)
                .order_by(job.created_at.desc(), job.id.desc())
                .limit(limit)
            )
        )
        att = table_of(EscalationAttempt).c
        attempts = _rows(
            await session.execute(
                select(
                    att.id,
                    att.job_id,
                    att.started_at,
                    att.ended_at,
                    att.claimed_outcome,
                    att.verdict,
                    att.verdict_reason,
                )
                .join(table_of(EscalationJob), job.id == att.job_id)
                .where(job.pull_request_id == pr_id)
                .order_by(att.started_at.desc(), att.id.desc())
                .limit(limit)
            )
        )
        sp = table_of(Spend).c
        spend = _rows(
            await session.execute(
                select(
                    sp.id,
                    sp.at,
                    sp.kind,
                    sp.job_id,
                    sp.tokens_in,
                    sp.tokens_out,
                    sp.dollars,
                    sp.model,
                    sp.note,
                )
                .where(sp.pull_request_id == pr_id)
                .order_by(sp.at.desc(), sp.id.desc())
                .limit(limit)
            )
        )
        spend_total = _totals(
            (
                await session.execute(select(*_spend_columns()).where(sp.pull_request_id == pr_id))
            ).one()
        )
        mc = table_of(MaintainerCommand).c
        commands = _rows(
            await session.execute(
                select(mc.at, mc.comment_id, mc.author_login, mc.command, mc.args, mc.accepted)
                .add_columns(mc.reason, mc.effect)
                .where(mc.pull_request_id == pr_id)
                .order_by(mc.at, mc.id)
                .limit(limit)
            )
        )
    snapshot = pr.get("snapshot")
    return PullHistory(
        repository=repository,
        pull=PullRow(
            number=int(pr["number"]),
            title=_title(snapshot),
            author=pr["author_login"],
            state=str(pr["state"]),
            tier=pr["tier"],
            tier_since=pr["tier_since"],
            whose_turn=pr["whose_turn"],
            whose_turn_reason=pr["whose_turn_reason"],
            frozen=bool(pr["frozen"]),
            paused=bool(pr["paused"]),
            last_changed_at=pr["last_changed_at"],
            last_observed_at=pr["last_observed_at"],
        ),
        head_sha=pr["head_sha"],
        snapshot=snapshot if isinstance(snapshot, dict) else None,
        observations=observations,
        decisions=decisions,
        candidates=candidates,
        actions=actions,
        jobs=jobs,
        attempts=attempts,
        spend=spend,
        spend_total=spend_total,
        commands=commands,
    )


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    repository: str
    number: int
    trigger_kind: str
    state: str
    state_reason: str | None
    attempt: int
    max_attempts: int
    budget_dollars: float | None
    dollars_spent: float
    created_at: datetime
    updated_at: datetime


async def escalation_jobs(
    db: Ledger, *, state: str | None = None, limit: int = 200
) -> list[JobRow]:
    """The newest escalation jobs (optionally in one state), with what each has spent."""
    job = table_of(EscalationJob).c
    repos = table_of(Repository).c
    pulls = table_of(PullRequest).c
    sp = table_of(Spend).c
    spent = (
        select(sp.job_id, func.sum(sp.dollars).label("dollars"))
        .where(sp.kind == SpendKind.SPEND.value)
        .group_by(sp.job_id)
        .subquery()
    )
    statement = (
        select(
            job.id,
            repos.full_name,
            pulls.number,
            job.trigger_kind,
            job.state,
            job.state_reason,
            job.attempt,
            job.max_attempts,
            job.budget_dollars,
            spent.c.dollars,
            job.created_at,
            job.updated_at,
        )
        .select_from(table_of(EscalationJob))
        .join(table_of(Repository), repos.id == job.repository_id)
        .join(table_of(PullRequest), pulls.id == job.pull_request_id)
        .outerjoin(spent, spent.c.job_id == job.id)
        .order_by(job.updated_at.desc(), job.id.desc())
        .limit(limit)
    )
    if state is not None:
        statement = statement.where(job.state == state)
    async with reading(db) as session:
        rows = (await session.execute(statement)).all()
    return [
        JobRow(
            id=int(i),
            repository=str(name),
            number=int(number),
            trigger_kind=str(kind),
            state=str(st),
            state_reason=reason,
            attempt=int(attempt),
            max_attempts=int(max_attempts),
            budget_dollars=budget,
            dollars_spent=round(float(dollars or 0.0), 6),
            created_at=created,
            updated_at=updated,
        )
        for (
            i,
            name,
            number,
            kind,
            st,
            reason,
            attempt,
            max_attempts,
            budget,
            dollars,
            created,
            updated,
        ) in rows
    ]


# --- time series (charts) ------------------------------------------------------------------------


async def daily_spend(db: Ledger, now: datetime, days: int = 14) -> list[tuple[datetime, float]]:
    """Dollars spent per UTC day, the last ``days`` days (oldest first, zero-filled)."""
    sp = table_of(Spend).c
    first = start_of_day(now) - timedelta(days=days - 1)
    async with reading(db) as session:
        rows = (
            await session.execute(
                select(sp.at, sp.dollars).where(sp.kind == SpendKind.SPEND.value, sp.at >= first)
            )
        ).all()
    buckets = {first + timedelta(days=i): 0.0 for i in range(days)}
    for at, dollars in rows:
        day = start_of_day(at)
        if day in buckets:
            buckets[day] += float(dollars or 0.0)
    return [(day, round(value, 6)) for day, value in sorted(buckets.items())]


async def tiers_over_time(
    db: Ledger, now: datetime, days: int = 14, repository: str | None = None
) -> list[tuple[datetime, dict[str, int]]]:
    """Open PRs by tier at the end of each of the last ``days`` UTC days.

    Rebuilt from the append-only ``tier`` decisions (``to_value``) and each PR's ``closed_at``;
    a PR with no tier decision yet counts under its current tier from when it was first seen.
    """
    dec = table_of(Decision).c
    pulls = table_of(PullRequest).c
    repos = table_of(Repository).c
    async with reading(db) as session:
        pr_statement = select(
            pulls.id, pulls.tier, pulls.first_seen_at, pulls.closed_at, pulls.state
        ).join(table_of(Repository), repos.id == pulls.repository_id)
        dec_statement = (
            select(dec.pull_request_id, dec.decided_at, dec.to_value)
            .where(dec.kind == "tier", dec.pull_request_id.is_not(None))
            .order_by(dec.decided_at, dec.id)
        )
        if repository is not None:
            pr_statement = pr_statement.where(repos.full_name == repository)
            dec_statement = dec_statement.join(
                table_of(Repository), repos.id == dec.repository_id
            ).where(repos.full_name == repository)
        prs = (await session.execute(pr_statement)).all()
        changes = (await session.execute(dec_statement)).all()
    by_pr: dict[int, list[tuple[datetime, str]]] = {}
    for pr_id, at, to_value in changes:
        by_pr.setdefault(int(pr_id), []).append((at, str(to_value or "unknown")))
    ends = [start_of_day(now) + timedelta(days=1 - days + i) for i in range(days)]
    ends[-1] = now
    series: list[tuple[datetime, dict[str, int]]] = []
    for end in ends:
        counts: dict[str, int] = {}
        for pr_id, tier, first_seen, closed_at, state in prs:
            if first_seen > end:
                continue
            if closed_at is not None and closed_at <= end:
                continue
            if closed_at is None and state != PullRequestStateValue.OPEN.value and end == now:
                continue
            history = by_pr.get(int(pr_id))
            if history:
                known = [value for at, value in history if at <= end]
                if not known:
                    continue
                current = known[-1]
            else:
                current = str(tier or "unknown")
            if current == "closed":
                continue
            counts[current] = counts.get(current, 0) + 1
        series.append((end, _ordered(counts, TIER_ORDER)))
    return series


# --- metrics (Prometheus, derived at scrape time) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricsData:
    deliveries: dict[tuple[str, str], int]  # (event, state) -> count
    candidates: dict[tuple[str, str], int]  # (kind, outcome) -> count
    decisions: dict[tuple[str, str], int]  # (kind, rule_id) -> count
    jobs: dict[str, int]  # state -> count
    open_pulls: dict[tuple[str, str], int]  # (repository, tier) -> count
    spend: dict[str, float]  # tokens_in, tokens_out, dollars, reserved_dollars (all time)
    rate_limit: tuple[ApiUsageLatest, ...]
    sweeps_ok: dict[str, datetime | None]  # repository -> last successful sweep
    oldest_pending_delivery: datetime | None


async def metrics_data(db: Ledger, now: datetime) -> MetricsData:
    """Counters for ``GET /metrics``, each one a GROUP BY over the ledger."""
    wd = table_of(WebhookDelivery).c
    cand = table_of(Candidate).c
    dec = table_of(Decision).c
    async with reading(db) as session:
        deliveries = {
            (str(event), str(state)): int(count)
            for event, state, count in (
                await session.execute(
                    select(wd.event, wd.state, func.count()).group_by(wd.event, wd.state)
                )
            ).all()
        }
        oldest = (
            await session.execute(select(func.min(wd.received_at)).where(wd.state == "pending"))
        ).scalar_one()
        candidates = {
            (str(kind), str(outcome)): int(count)
            for kind, outcome, count in (
                await session.execute(
                    select(cand.kind, cand.outcome, func.count()).group_by(cand.kind, cand.outcome)
                )
            ).all()
        }
        decisions = {
            (str(kind), str(rule)): int(count)
            for kind, rule, count in (
                await session.execute(
                    select(dec.kind, dec.rule_id, func.count()).group_by(dec.kind, dec.rule_id)
                )
            ).all()
        }
        jobs = await _jobs_by_state(session)
        queues = await _queues(session)
        totals = await spend_between(session, None)
        api = await _api_usage(session, start_of_day(now))
    return MetricsData(
        deliveries=deliveries,
        candidates=candidates,
        decisions=decisions,
        jobs=jobs,
        open_pulls={(q.repository, tier): count for q in queues for tier, count in q.tiers.items()},
        spend={
            "tokens_in": float(totals.tokens_in),
            "tokens_out": float(totals.tokens_out),
            "dollars": totals.dollars,
            "reserved_dollars": totals.reserved_dollars,
        },
        rate_limit=tuple(api),
        sweeps_ok={q.repository: q.last_sweep_ok_at for q in queues},
        oldest_pending_delivery=oldest,
    )


# --- the shadow run (issue 12 item 7) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WouldDo:
    """One action shadow mode recorded instead of performing: what, where, why, at what cost."""

    repository: str
    number: int
    title: str
    kind: str
    label: str | None
    rule_id: str
    reason: str
    budget_dollars: float | None
    budget_tokens: int | None
    since: datetime


async def would_do(db: Ledger, *, limit: int = 2000) -> list[WouldDo]:
    """What shadow mode would have done, now: each open PR's candidates whose latest record is
    ``shadow`` (a key later performed, suppressed or dropped is not listed)."""
    cand = table_of(Candidate).c
    pulls = table_of(PullRequest).c
    repos = table_of(Repository).c
    latest = (
        select(func.max(cand.id).label("id"))
        .group_by(cand.pull_request_id, cand.dedupe_key)
        .subquery()
    )
    statement = (
        select(
            repos.full_name,
            pulls.number,
            pulls.snapshot,
            cand.kind,
            cand.rule_id,
            cand.reason,
            cand.details,
            cand.created_at,
        )
        .select_from(table_of(Candidate))
        .join(latest, latest.c.id == cand.id)
        .join(table_of(PullRequest), pulls.id == cand.pull_request_id)
        .join(table_of(Repository), repos.id == pulls.repository_id)
        .where(
            cand.outcome == "shadow",
            pulls.state == PullRequestStateValue.OPEN.value,
        )
        .order_by(repos.full_name, pulls.number, cand.id)
        .limit(limit)
    )
    async with reading(db) as session:
        rows = (await session.execute(statement)).all()
    out = []
    for name, number, snapshot, kind, rule_id, reason, details, created in rows:
        info = details if isinstance(details, dict) else {}
        budget = info.get("budget") if isinstance(info.get("budget"), dict) else {}
        assert isinstance(budget, dict)
        dollars = budget.get("dollars")
        tokens = budget.get("tokens")
        label = info.get("label")
        out.append(
            WouldDo(
                repository=str(name),
                number=int(number),
                title=_title(snapshot),
                kind=str(kind),
                label=str(label) if label is not None else None,
                rule_id=str(rule_id),
                reason=str(reason),
                budget_dollars=float(dollars) if isinstance(dollars, int | float) else None,
                budget_tokens=int(tokens) if isinstance(tokens, int) else None,
                since=created,
            )
        )
    return out


async def first_seen(db: Ledger) -> datetime | None:
    """When the ledger first saw a PR (None when it has none): the start of its history."""
    pulls = table_of(PullRequest).c
    async with reading(db) as session:
        value: datetime | None = (
            await session.execute(select(func.min(pulls.first_seen_at)))
        ).scalar_one()
    return value
