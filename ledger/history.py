"""What the ledger remembers about one PR, as the frozen values ``policies/`` decides from.

``load_history`` builds a :class:`policies.history.PullRequestHistory` from the candidate, action,
escalation-job, spend and command rows of one PR (and the recent jobs of its repository);
``load_spend`` builds the :class:`policies.history.SpendSummary` the budgets check. Both only
read, in one read-only transaction each.

Spend convention (shared with ``ledger/spend.py``): money committed = ``spend`` rows plus
``reservation`` rows minus ``release`` rows; ``grant`` rows raise a job's budget and are not
spend. A reservation is released (a ``release`` row of the same amount) when the real spend is
recorded, so an attempt that crashed keeps counting its reservation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.db import READ_ONLY, Ledger
from ledger.models import (
    Action,
    Candidate,
    Decision,
    EscalationAttempt,
    EscalationJob,
    MaintainerCommand,
    PullRequest,
    Spend,
    SpendKind,
    table_of,
)
from policies.history import (
    CandidateRecord,
    Commands,
    JobRecord,
    JobState,
    NoticeRecord,
    PullRequestHistory,
    SpendSummary,
)

# Candidate kinds whose posting is a notice the gentle steps count (policies.triage names them).
NOTICE_KINDS = frozenset(
    {"remind_author", "convert_to_draft", "close_notice", "reviewer_reminder", "close"}
)
# Action kinds (GitHub operations) that put a new comment on the PR.
NEW_COMMENT_ACTIONS = frozenset({"create_comment"})
ACTION_DONE = "done"
REPOSITORY_JOBS_WINDOW = timedelta(days=30)
REPOSITORY_JOBS_LIMIT = 50
TERMINAL_JOB_STATES = frozenset(
    {
        JobState.VERIFIED_DONE,
        JobState.VERIFY_FAILED,
        JobState.NEEDS_HUMAN,
        JobState.BLOCKED,
        JobState.BUDGET_EXHAUSTED,
        JobState.SUPERSEDED,
        JobState.LEASE_EXPIRED,
        JobState.CANCELLED,
        JobState.SUPPRESSED,
    }
)


@dataclass(frozen=True, slots=True)
class PullKey:
    """The ledger ids of one PR and of its repository (and installation, when known)."""

    pull_request_id: int
    repository_id: int
    installation_id: int | None = None


@asynccontextmanager
async def read_session(db: Ledger) -> AsyncIterator[AsyncSession]:
    """One read-only transaction (a plain BEGIN on SQLite: never blocks writers)."""
    async with db.engine.connect() as connection:
        await connection.execution_options(**READ_ONLY)
        async with connection.begin(), AsyncSession(bind=connection) as session:
            yield session


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()


def _job_state(raw: str) -> JobState:
    try:
        return JobState(raw)
    except ValueError:
        return JobState.CANCELLED  # an unknown state never counts as in flight


def _job_record(
    job: EscalationJob,
    pull_number: int | None,
    spent: tuple[float, int],
    attempt: EscalationAttempt | None,
) -> JobRecord:
    """The brief's ``check_names`` / ``files`` (or ``evidence.checks``) give the job's shape;
    the last attempt's verdict reason is its failure signature."""
    brief = job.brief or {}
    evidence = brief.get("evidence") if isinstance(brief.get("evidence"), dict) else {}
    checks = _strings(brief.get("check_names")) or _strings((evidence or {}).get("checks"))
    files = _strings(brief.get("files")) or _strings((evidence or {}).get("files"))
    state = _job_state(job.state)
    signature = brief.get("failure_signature")
    if not isinstance(signature, str):
        signature = attempt.verdict_reason if attempt is not None else None
    return JobRecord(
        trigger_kind=job.trigger_kind,
        fingerprint=job.trigger_fingerprint,
        state=state,
        created_at=job.created_at,
        finished_at=job.updated_at if state in TERMINAL_JOB_STATES else None,
        pull_number=pull_number,
        dollars_spent=spent[0],
        tokens_spent=spent[1],
        dollars_budget=job.budget_dollars,
        tokens_budget=job.budget_tokens,
        failure_signature=signature,
        check_names=checks,
        files=files,
        size_class=job.size_class,
    )


def _committed(kind_column: Any, amount: Any) -> Any:
    """spend + reservation - release, as one SQL sum."""
    return func.coalesce(
        func.sum(
            case(
                (kind_column.in_([SpendKind.SPEND.value, SpendKind.RESERVATION.value]), amount),
                (kind_column == SpendKind.RELEASE.value, -amount),
                else_=0,
            )
        ),
        0,
    )


CHUNK = 400  # ids per IN (...) list


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


@dataclass(frozen=True, slots=True)
class PullView:
    """What the engine needs from the ledger about one PR besides its snapshot."""

    history: PullRequestHistory
    spend: SpendSummary
    last_notes: tuple[str, ...] | None  # the stop-loss notes last recorded (None: never)


async def load_views(
    db: Ledger,
    repository_id: int,
    installation_id: int | None,
    pull_request_ids: Sequence[int],
    now: datetime,
) -> dict[int, PullView]:
    """History, spend and last stop-loss notes of many PRs of one repository, in one read-only
    transaction and a fixed number of queries (not a number per PR)."""
    ids = sorted(set(pull_request_ids))
    if not ids:
        return {}
    candidates_t, actions_t = table_of(Candidate).c, table_of(Action).c
    jobs_t, spend_t, pulls_t = table_of(EscalationJob).c, table_of(Spend).c, table_of(PullRequest).c
    attempts_t, commands_t = table_of(EscalationAttempt).c, table_of(MaintainerCommand).c
    decisions_t = table_of(Decision).c
    pull_rows: dict[int, PullRequest] = {}
    candidate_rows: dict[int, list[Any]] = {i: [] for i in ids}
    actions: dict[int, list[Action]] = {i: [] for i in ids}
    pr_jobs: dict[int, list[tuple[EscalationJob, int]]] = {i: [] for i in ids}
    escalate_comment: dict[int, int] = {}
    last_notes: dict[int, tuple[str, ...]] = {}
    pr_spend: dict[int, tuple[float, int]] = {}
    async with read_session(db) as session:
        number_of = select(pulls_t.number).where(pulls_t.id == jobs_t.pull_request_id)
        for chunk in _chunks(ids):
            for pull in (
                await session.execute(select(PullRequest).where(pulls_t.id.in_(chunk)))
            ).scalars():
                assert pull.id is not None
                pull_rows[pull.id] = pull
            rows = await session.execute(
                select(
                    candidates_t.pull_request_id,
                    candidates_t.dedupe_key,
                    candidates_t.kind,
                    candidates_t.outcome,
                    candidates_t.created_at,
                    candidates_t.decided_at,
                )
                .where(candidates_t.pull_request_id.in_(chunk))
                .order_by(candidates_t.id)
            )
            for row in rows.all():
                candidate_rows[int(row.pull_request_id)].append(row)
            done = await session.execute(
                select(Action)
                .where(actions_t.pull_request_id.in_(chunk), actions_t.status == ACTION_DONE)
                .order_by(actions_t.performed_at, actions_t.id)
            )
            for action in done.scalars():
                if action.pull_request_id is not None:
                    actions[action.pull_request_id].append(action)
            jobs = await session.execute(
                select(EscalationJob, number_of.scalar_subquery())
                .where(jobs_t.pull_request_id.in_(chunk))
                .order_by(jobs_t.created_at, jobs_t.id)
            )
            for job_row in jobs.all():
                pr_jobs[job_row[0].pull_request_id].append((job_row[0], int(job_row[1])))
            commands = await session.execute(
                select(commands_t.pull_request_id, commands_t.comment_id)
                .where(
                    commands_t.pull_request_id.in_(chunk),
                    commands_t.command == "escalate",
                    commands_t.accepted.is_(True),
                    commands_t.effect.is_(None),
                )
                .order_by(commands_t.at, commands_t.id)
            )
            for command in commands.all():
                escalate_comment[int(command[0])] = int(command[1])
            notes = await session.execute(
                select(decisions_t.pull_request_id, decisions_t.details)
                .where(decisions_t.pull_request_id.in_(chunk), decisions_t.kind == "stop_loss")
                .order_by(decisions_t.decided_at, decisions_t.id)
            )
            for note in notes.all():
                details = note[1] if isinstance(note[1], dict) else {}
                last_notes[int(note[0])] = tuple(str(n) for n in details.get("notes") or ())
            sums = await session.execute(
                select(
                    spend_t.pull_request_id,
                    _committed(spend_t.kind, spend_t.dollars),
                    _committed(spend_t.kind, spend_t.tokens_in + spend_t.tokens_out),
                )
                .where(spend_t.pull_request_id.in_(chunk))
                .group_by(spend_t.pull_request_id)
            )
            pr_spend.update({int(r[0]): (float(r[1]), int(r[2])) for r in sums.all()})
        repo_jobs = [
            (row[0], int(row[1]))
            for row in (
                await session.execute(
                    select(EscalationJob, number_of.scalar_subquery())
                    .where(
                        jobs_t.repository_id == repository_id,
                        jobs_t.created_at >= now - REPOSITORY_JOBS_WINDOW,
                    )
                    .order_by(jobs_t.created_at.desc(), jobs_t.id.desc())
                    .limit(REPOSITORY_JOBS_LIMIT)
                )
            ).all()
        ]
        repo_jobs.reverse()
        job_ids = sorted(
            {job.id for job, _ in repo_jobs if job.id is not None}
            | {job.id for jobs_of in pr_jobs.values() for job, _ in jobs_of if job.id is not None}
        )
        spent: dict[int, tuple[float, int]] = {}
        last_attempt: dict[int, EscalationAttempt] = {}
        for chunk in _chunks(job_ids):
            spend_rows = await session.execute(
                select(
                    spend_t.job_id,
                    _committed(spend_t.kind, spend_t.dollars),
                    _committed(spend_t.kind, spend_t.tokens_in + spend_t.tokens_out),
                )
                .where(spend_t.job_id.in_(chunk))
                .group_by(spend_t.job_id)
            )
            spent.update({int(r[0]): (float(r[1]), int(r[2])) for r in spend_rows.all()})
            attempts = await session.execute(
                select(EscalationAttempt)
                .where(attempts_t.job_id.in_(chunk))
                .order_by(attempts_t.started_at, attempts_t.id)
            )
            for attempt in attempts.scalars():
                last_attempt[attempt.job_id] = attempt
        scopes = await _scope_spend(session, repository_id, installation_id, now)

    def record(job: EscalationJob, number: int) -> JobRecord:
        job_id = job.id if job.id is not None else -1
        return _job_record(job, number, spent.get(job_id, (0.0, 0)), last_attempt.get(job_id))

    repository_jobs = tuple(record(job, number) for job, number in repo_jobs)
    views: dict[int, PullView] = {}
    for pull_id in ids:
        history = _history(
            pull_rows.get(pull_id),
            candidate_rows[pull_id],
            actions[pull_id],
            tuple(record(job, number) for job, number in pr_jobs[pull_id]),
            repository_jobs,
            escalate_comment.get(pull_id),
        )
        dollars, tokens = pr_spend.get(pull_id, (0.0, 0))
        spend = SpendSummary(
            pr_dollars=dollars,
            repository_today_dollars=scopes[0],
            installation_today_dollars=scopes[1],
            installation_last_hour_dollars=scopes[2],
            pr_tokens=tokens,
        )
        views[pull_id] = PullView(history, spend, last_notes.get(pull_id))
    return views


def _history(
    pull: PullRequest | None,
    candidate_rows: Sequence[Any],
    actions: Sequence[Action],
    jobs: tuple[JobRecord, ...],
    repository_jobs: tuple[JobRecord, ...],
    escalate_comment_id: int | None,
) -> PullRequestHistory:
    records = tuple(
        CandidateRecord(
            key=row.dedupe_key,
            kind=row.kind,
            outcome=row.outcome,
            at=row.decided_at or row.created_at,
        )
        for row in candidate_rows
    )
    notices = tuple(
        NoticeRecord(kind=str(a.details.get("candidate_kind")), at=a.performed_at)
        for a in actions
        if a.details.get("candidate_kind") in NOTICE_KINDS
    )
    reruns = tuple(
        str(a.details["fingerprint"])
        for a in actions
        if a.kind == "rerun" and isinstance(a.details.get("fingerprint"), str)
    )
    sticky_hash: str | None = None
    labels: list[str] = []
    for action in actions:
        if action.details.get("candidate_kind") == "status_comment":
            found = action.details.get("content_hash")
            sticky_hash = found if isinstance(found, str) else sticky_hash
        label = action.details.get("label")
        if action.kind == "add_label" and isinstance(label, str) and label not in labels:
            labels.append(label)
        elif action.kind == "remove_label" and label in labels:
            labels.remove(str(label))
    return PullRequestHistory(
        candidates=records,
        jobs=jobs,
        repository_jobs=repository_jobs,
        last_bot_action_at=_latest(a.performed_at for a in actions),
        last_comment_at=_latest(a.performed_at for a in actions if a.kind in NEW_COMMENT_ACTIONS),
        tier=pull.tier if pull is not None else None,
        tier_since=pull.tier_since if pull is not None else None,
        notices=notices,
        reruns=reruns,
        commands=Commands(
            frozen=bool(pull is not None and pull.frozen),
            paused=bool(pull is not None and pull.paused),
            escalate_comment_id=escalate_comment_id,
        ),
        sticky_comment_id=pull.sticky_comment_id if pull is not None else None,
        sticky_content_hash=sticky_hash,
        labels_added_by_bot=tuple(labels),
    )


async def load_history(db: Ledger, key: PullKey, now: datetime) -> PullRequestHistory:
    """Everything the ledger knows about this PR that the snapshot does not say."""
    views = await load_views(db, key.repository_id, key.installation_id, [key.pull_request_id], now)
    return views[key.pull_request_id].history


def _latest(moments: Any) -> datetime | None:
    found: Sequence[datetime] = list(moments)
    return max(found) if found else None


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def _scope_spend(
    session: AsyncSession, repository_id: int, installation_id: int | None, now: datetime
) -> tuple[float, float | None, float | None]:
    """Committed dollars: the repository today (UTC), the installation today and in the last
    hour (None, unknown, when the repository has no installation: fails closed)."""
    spend_t = table_of(Spend).c
    dollars = _committed(spend_t.kind, spend_t.dollars)
    today = _start_of_day(now)
    repo_today = (
        await session.execute(
            select(dollars).where(spend_t.repository_id == repository_id, spend_t.at >= today)
        )
    ).scalar_one()
    if installation_id is None:
        return float(repo_today), None, None
    installation_today = (
        await session.execute(
            select(dollars).where(spend_t.installation_id == installation_id, spend_t.at >= today)
        )
    ).scalar_one()
    installation_hour = (
        await session.execute(
            select(dollars).where(
                spend_t.installation_id == installation_id,
                spend_t.at >= now - timedelta(hours=1),
            )
        )
    ).scalar_one()
    return float(repo_today), float(installation_today), float(installation_hour)


async def load_spend(db: Ledger, key: PullKey, now: datetime) -> SpendSummary:
    """Dollars committed per scope: this PR, the repository today (UTC), the installation today
    and in the last hour. The installation scopes are None (unknown, which fails closed) when the
    repository has no installation."""
    views = await load_views(db, key.repository_id, key.installation_id, [key.pull_request_id], now)
    return views[key.pull_request_id].spend
