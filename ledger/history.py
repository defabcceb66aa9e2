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

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.db import READ_ONLY, Ledger
from ledger.models import (
    Action,
    Candidate,
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
async def _reading(db: Ledger) -> AsyncIterator[AsyncSession]:
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


async def _jobs(
    session: Any, statement: Select[tuple[EscalationJob, int]]
) -> list[tuple[EscalationJob, int]]:
    return [(row[0], int(row[1])) for row in (await session.execute(statement)).all()]


async def load_history(db: Ledger, key: PullKey, now: datetime) -> PullRequestHistory:
    """Everything the ledger knows about this PR that the snapshot does not say."""
    candidates_t, actions_t = table_of(Candidate).c, table_of(Action).c
    jobs_t, spend_t, pulls_t = table_of(EscalationJob).c, table_of(Spend).c, table_of(PullRequest).c
    attempts_t, commands_t = table_of(EscalationAttempt).c, table_of(MaintainerCommand).c
    async with _reading(db) as session:
        pull = await session.get(PullRequest, key.pull_request_id)
        candidate_rows = (
            await session.execute(
                select(
                    candidates_t.id,
                    candidates_t.dedupe_key,
                    candidates_t.kind,
                    candidates_t.outcome,
                    candidates_t.created_at,
                    candidates_t.decided_at,
                    candidates_t.details,
                )
                .where(candidates_t.pull_request_id == key.pull_request_id)
                .order_by(candidates_t.id)
            )
        ).all()
        action_rows = (
            await session.execute(
                select(Action)
                .where(
                    actions_t.pull_request_id == key.pull_request_id,
                    actions_t.status == ACTION_DONE,
                )
                .order_by(actions_t.performed_at, actions_t.id)
            )
        ).scalars()
        actions = list(action_rows)
        number_of = select(pulls_t.number).where(pulls_t.id == jobs_t.pull_request_id)
        pr_jobs = await _jobs(
            session,
            select(EscalationJob, number_of.scalar_subquery())
            .where(jobs_t.pull_request_id == key.pull_request_id)
            .order_by(jobs_t.created_at, jobs_t.id),
        )
        repo_jobs = await _jobs(
            session,
            select(EscalationJob, number_of.scalar_subquery())
            .where(
                jobs_t.repository_id == key.repository_id,
                jobs_t.created_at >= now - REPOSITORY_JOBS_WINDOW,
            )
            .order_by(jobs_t.created_at.desc(), jobs_t.id.desc())
            .limit(REPOSITORY_JOBS_LIMIT),
        )
        repo_jobs.reverse()
        job_ids = sorted({job.id for job, _ in pr_jobs + repo_jobs if job.id is not None})
        spent: dict[int, tuple[float, int]] = {}
        last_attempt: dict[int, EscalationAttempt] = {}
        if job_ids:
            spend_rows = await session.execute(
                select(
                    spend_t.job_id,
                    _committed(spend_t.kind, spend_t.dollars),
                    _committed(spend_t.kind, spend_t.tokens_in + spend_t.tokens_out),
                )
                .where(spend_t.job_id.in_(job_ids))
                .group_by(spend_t.job_id)
            )
            spent = {int(r[0]): (float(r[1]), int(r[2])) for r in spend_rows.all()}
            attempts = await session.execute(
                select(EscalationAttempt)
                .where(attempts_t.job_id.in_(job_ids))
                .order_by(attempts_t.started_at, attempts_t.id)
            )
            for attempt in attempts.scalars():
                last_attempt[attempt.job_id] = attempt
        escalate = await session.execute(
            select(commands_t.comment_id)
            .where(
                commands_t.pull_request_id == key.pull_request_id,
                commands_t.command == "escalate",
                commands_t.accepted.is_(True),
                commands_t.effect.is_(None),
            )
            .order_by(commands_t.at.desc())
            .limit(1)
        )
        escalate_comment_id = escalate.scalar_one_or_none()

    def record(job: EscalationJob, number: int) -> JobRecord:
        job_id = job.id if job.id is not None else -1
        return _job_record(job, number, spent.get(job_id, (0.0, 0)), last_attempt.get(job_id))

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
        jobs=tuple(record(job, number) for job, number in pr_jobs),
        repository_jobs=tuple(record(job, number) for job, number in repo_jobs),
        last_bot_action_at=_latest(a.performed_at for a in actions),
        last_comment_at=_latest(a.performed_at for a in actions if a.kind in NEW_COMMENT_ACTIONS),
        tier=pull.tier if pull is not None else None,
        tier_since=pull.tier_since if pull is not None else None,
        notices=notices,
        reruns=reruns,
        commands=Commands(
            frozen=bool(pull is not None and pull.frozen),
            paused=bool(pull is not None and pull.paused),
            escalate_comment_id=int(escalate_comment_id) if escalate_comment_id else None,
        ),
        sticky_comment_id=pull.sticky_comment_id if pull is not None else None,
        sticky_content_hash=sticky_hash,
        labels_added_by_bot=tuple(labels),
    )


def _latest(moments: Any) -> datetime | None:
    found: Sequence[datetime] = list(moments)
    return max(found) if found else None


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def load_spend(db: Ledger, key: PullKey, now: datetime) -> SpendSummary:
    """Dollars committed per scope: this PR, the repository today (UTC), the installation today
    and in the last hour. The installation scopes are None (unknown, which fails closed) when the
    repository has no installation."""
    spend_t = table_of(Spend).c
    dollars = _committed(spend_t.kind, spend_t.dollars)
    tokens = _committed(spend_t.kind, spend_t.tokens_in + spend_t.tokens_out)
    today = _start_of_day(now)
    async with _reading(db) as session:
        pr = (
            await session.execute(
                select(dollars, tokens).where(spend_t.pull_request_id == key.pull_request_id)
            )
        ).one()
        repo_today = (
            await session.execute(
                select(dollars).where(
                    spend_t.repository_id == key.repository_id, spend_t.at >= today
                )
            )
        ).scalar_one()
        installation_today: Any = None
        installation_hour: Any = None
        if key.installation_id is not None:
            installation_today = (
                await session.execute(
                    select(dollars).where(
                        spend_t.installation_id == key.installation_id, spend_t.at >= today
                    )
                )
            ).scalar_one()
            installation_hour = (
                await session.execute(
                    select(dollars).where(
                        spend_t.installation_id == key.installation_id,
                        spend_t.at >= now - timedelta(hours=1),
                    )
                )
            ).scalar_one()
    return SpendSummary(
        pr_dollars=float(pr[0]),
        repository_today_dollars=float(repo_today),
        installation_today_dollars=(
            float(installation_today) if installation_today is not None else None
        ),
        installation_last_hour_dollars=(
            float(installation_hour) if installation_hour is not None else None
        ),
        pr_tokens=int(pr[1]),
    )
