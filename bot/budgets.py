"""Spend that learns, exhaustion that asks, low-return repositories (issue 11), in the loop.

The pure parts are ``policies/sizing.py`` (size classes, learned budgets: the triage puts the
budget on each ESCALATE candidate and ``bot.escalation.open_job`` records its size class) and
``policies/progress.py`` (no-progress stops, in ``Escalations.heartbeat``). This module wires the
rest:

- :func:`spend_report` / :func:`render_spend_table`: per trigger kind and size class, jobs,
  verified-done rate, median and p90 spend, utilisation of verified jobs, done-claims rejected
  with budget left (for ``bot/report.py`` and the dashboard);
- :func:`handle_budget_command`: ``/prsteward budget +50k`` (or ``+$5``) from a maintainer with
  write access grants more to the PR's BUDGET_EXHAUSTED job through ``Escalations.grant``: the
  grant is a ``grant`` row in the spend ledger and the job is queued again once (a redelivered
  comment, a second command or the CLI find it already re-queued);
- :class:`ExhaustionAnnouncer`: each BUDGET_EXHAUSTED job is announced once
  (``ledger.jobs.mark_announced``): a line in the PR's sticky status comment in act mode
  (through the executor's ``GitHubActions``), a warning in the log; the counter
  ``prsteward_budget_exhausted_total`` is read from the ledger by ``bot/metrics.py``;
- :func:`review_low_return`: a repository whose circuit breaker is open and whose maintainers did
  nothing for ``stop-loss.low-return-idle-days`` is demoted to watch-only (a ``low_return``
  decision with the reason); the next maintainer action there restores it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger import budgets as ledger_budgets
from ledger import jobs as job_store
from ledger import pulls, repositories
from ledger.budgets import JobSpendRow
from ledger.db import Ledger
from ledger.models import JobState
from policies.config import Config
from policies.history import JobRecord
from policies.history import JobState as PolicyJobState
from policies.sizing import REJECTED_WITH_BUDGET_FLAG, SpendStats, spend_stats
from policies.snapshot import AuthorAssociation, snapshot_from_json
from policies.stoploss import circuit_open

log = logging.getLogger("prsteward.budgets")

FINISHED = frozenset(
    {
        JobState.VERIFIED_DONE,
        JobState.VERIFY_FAILED,
        JobState.NEEDS_HUMAN,
        JobState.BLOCKED,
        JobState.BUDGET_EXHAUSTED,
        JobState.SUPERSEDED,
        JobState.LEASE_EXPIRED,
    }
)
MAINTAINER_ASSOCIATIONS = frozenset(
    {AuthorAssociation.OWNER, AuthorAssociation.MEMBER, AuthorAssociation.COLLABORATOR}
)


# --- the report ---------------------------------------------------------------------------------


def _record(row: JobSpendRow) -> JobRecord:
    return JobRecord(
        trigger_kind=row.trigger_kind,
        fingerprint=f"{row.trigger_fingerprint}#{row.job_id}",  # one record per job
        state=PolicyJobState(row.state),
        created_at=row.created_at,
        finished_at=row.updated_at,
        dollars_spent=row.spent_dollars,
        tokens_spent=row.spent_tokens,
        dollars_budget=row.budget_dollars,
        tokens_budget=row.budget_tokens,
        size_class=row.size_class,
    )


def stats_from_rows(rows: Iterable[JobSpendRow]) -> tuple[SpendStats, ...]:
    """Per (trigger kind, size class) over the finished jobs (attempts that ran)."""
    finished = [r for r in rows if JobState(r.state) in FINISHED]
    flags = {f"{r.trigger_fingerprint}#{r.job_id}": r.flags for r in finished}
    return spend_stats([_record(r) for r in finished], flags)


async def spend_report(db: Ledger, repository: str | None = None) -> tuple[SpendStats, ...]:
    """The per trigger kind and size class figures (one ledger read)."""
    return stats_from_rows(await ledger_budgets.job_spend_rows(db, repository))


def spend_rows_json(stats: Sequence[SpendStats]) -> list[dict[str, Any]]:
    return [
        {
            "trigger_kind": s.trigger_kind,
            "size_class": s.size_class,
            "jobs": s.jobs,
            "verified_done": s.verified_done,
            "verified_rate": round(s.verified_rate, 4),
            "median_dollars": round(s.median_dollars, 4),
            "p90_dollars": round(s.p90_dollars, 4),
            "utilisation": None if s.utilisation is None else round(s.utilisation, 4),
            "done_claims_rejected_with_budget_left": s.done_claims_rejected_with_budget_left,
        }
        for s in stats
    ]


SPEND_CLASS_COLUMNS = (
    "trigger",
    "size",
    "jobs",
    "verified done",
    "median",
    "p90",
    "utilisation (verified)",
    "done-claims rejected with budget left",
)


def spend_class_cells(stats: Sequence[SpendStats]) -> list[list[str]]:
    """One row of text cells per (trigger kind, size class), in SPEND_CLASS_COLUMNS order."""
    return [
        [
            s.trigger_kind,
            s.size_class,
            str(s.jobs),
            f"{s.verified_done} ({s.verified_rate:.0%})",
            f"${s.median_dollars:.2f}",
            f"${s.p90_dollars:.2f}",
            "-" if s.utilisation is None else f"{s.utilisation:.0%}",
            str(s.done_claims_rejected_with_budget_left),
        ]
        for s in stats
    ]


def render_spend_table(stats: Sequence[SpendStats]) -> list[str]:
    """Markdown lines: '### Spend by trigger and size' and one row per group."""
    lines = ["### Spend by trigger and size", ""]
    if not stats:
        return [*lines, "No finished escalation jobs yet."]
    lines.append("| " + " | ".join(SPEND_CLASS_COLUMNS) + " |")
    lines.append("|" + "---|" * len(SPEND_CLASS_COLUMNS))
    lines += ["| " + " | ".join(cells) + " |" for cells in spend_class_cells(stats)]
    return lines


# --- grants -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantResult:
    job_id: int | None
    requeued_job_id: int | None
    effect: str


def grant_amounts(
    tokens: int | None, dollars: float | None, budget_tokens: int, budget_dollars: float
) -> tuple[int, float]:
    """A grant in tokens only (``+50k``) gets dollars at the job's own rate, and the other way
    round (``+$5``): a grant never leaves the new attempt with a zero budget on one axis."""
    t, d = max(0, tokens or 0), max(0.0, dollars or 0.0)
    if t and not d and budget_tokens > 0:
        d = round(t * budget_dollars / budget_tokens, 4)
    elif d and not t and budget_dollars > 0:
        t = int(d * budget_tokens / budget_dollars)
    return t, d


async def handle_budget_command(
    escalations: Any,
    repository: str,
    number: int,
    tokens: int | None,
    dollars: float | None,
    by: str,
) -> GrantResult:
    """``/prsteward budget +N`` on a PR, from a maintainer with write access (the command desk
    checked that and records each comment once): grant more to the PR's newest
    BUDGET_EXHAUSTED job. ``escalations`` is the process's ``bot.escalation.Escalations``.
    Returns the effect text for the command's record."""
    from bot.escalation import ReportError

    rows = await job_store.list_jobs(
        escalations.db,
        repository=repository,
        number=number,
        states=frozenset({JobState.BUDGET_EXHAUSTED}),
    )
    if not rows:
        return GrantResult(None, None, "no job on this PR is waiting for budget: nothing granted")
    job = rows[-1].job
    job_id = int(job.id or 0)
    t, d = grant_amounts(tokens, dollars, job.budget_tokens or 0, job.budget_dollars or 0.0)
    try:
        outcome = await escalations.grant(job_id, t, d, by)
    except ReportError as error:
        return GrantResult(job_id, None, f"not granted: {error}")
    if outcome.requeued_job_id is None:
        return GrantResult(job_id, None, f"job {job_id}: {outcome.reason}")
    return GrantResult(
        job_id,
        outcome.requeued_job_id,
        f"granted {t} tokens and ${d:.2f} to job {job_id}: re-queued as job "
        f"{outcome.requeued_job_id}",
    )


# --- exhaustion announcements ------------------------------------------------------------------

StickyLine = Callable[[str, int, str], Awaitable[None]]
"""``(repository, number, line)``: put one line in the PR's sticky status comment."""


def exhausted_line(job_id: int, kind: str, spent: float, budget: float) -> str:
    return (
        f"- budget exhausted: escalation job {job_id} ({kind}) spent ${spent:.2f} of "
        f"${budget:.2f} and the trigger still stands; it waits. A maintainer can grant more with "
        f"`/prsteward budget +50k` (or `prsteward jobs grant {job_id} --tokens N --dollars D`)."
    )


@dataclass
class ExhaustionAnnouncer:
    """Announces each BUDGET_EXHAUSTED job once. ``sticky`` writes the line in act mode;
    ``acting(repository)`` says whether the repository is in act mode (default: its stored
    config says ``mode: act`` and it is neither archived nor watch-only)."""

    db: Ledger
    sticky: StickyLine | None = None
    announced: int = 0

    async def _acting(self, repository: str) -> bool:
        row = await repositories.get_repository(self.db, repository)
        if row is None or row.archived or row.watch_only or not row.config:
            return False
        return bool(row.config.get("mode") == "act")

    async def __call__(self, now: datetime) -> list[int]:
        done: list[int] = []
        for row in await job_store.unannounced(self.db, frozenset({JobState.BUDGET_EXHAUSTED})):
            job = row.job
            job_id = int(job.id or 0)
            if not await job_store.mark_announced(self.db, job_id, now):
                continue  # another replica announced it
            from ledger import spend as spend_ledger

            sums = await spend_ledger.job_spend(self.db, job_id)
            line = exhausted_line(
                job_id,
                job.trigger_kind,
                sums.spent_dollars,
                (job.budget_dollars or 0.0) + sums.granted_dollars,
            )
            log.warning("%s#%s: %s", row.repository, row.number, line)
            done.append(job_id)
            self.announced += 1
            if self.sticky is not None and await self._acting(row.repository):
                try:
                    await self.sticky(row.repository, row.number, line)
                except Exception as error:  # noqa: BLE001 - announced in the log and metrics
                    log.warning("announcing job %s on GitHub failed: %s", job_id, error)
        return done


def sticky_line_writer(actions_for: Callable[[str], Awaitable[Any]], db: Ledger) -> StickyLine:
    """A :data:`StickyLine` through the executor's ``GitHubActions`` (``actions_for(repository)``
    gives them for the repository's installation): the PR's sticky status comment (found by its
    id in the ledger or by its marker) gets the line appended once; without one, the sticky is
    created with the line."""
    from bot.executor import STICKY_MARKER, marked

    async def write(repository: str, number: int, line: str) -> None:
        actions = await actions_for(repository)
        comments = await actions.bot_comments(repository, number)
        pull = await pulls.get_pull(db, repository, number)
        known = pull.sticky_comment_id if pull is not None else None
        sticky = next(
            (c for c in comments if c.id == known or STICKY_MARKER in c.body),
            None,
        )
        if sticky is None:
            body = marked(line, f"{repository}#{number}:budget-exhausted", sticky=True)
            await actions.create_comment(repository, number, body)
            return
        if line in sticky.body:
            return
        text, sep, markers = sticky.body.partition(STICKY_MARKER)
        body = f"{text.rstrip()}\n{line}\n\n{sep}{markers}" if sep else f"{sticky.body}\n{line}"
        await actions.edit_comment(repository, sticky.id, body)

    return write


# --- low-return repositories -------------------------------------------------------------------


async def last_maintainer_action(db: Ledger, repository: str) -> datetime | None:
    """The latest thing a maintainer did on any PR the ledger knows in the repository: an
    accepted ``/prsteward`` command, a review or comment by an OWNER/MEMBER/COLLABORATOR."""
    moments: list[datetime] = []
    command = await ledger_budgets.last_maintainer_command(db, repository)
    if command is not None:
        moments.append(command)
    for pull in await pulls.list_open(db, repository):
        if pull.snapshot is None:
            continue
        snapshot = snapshot_from_json(pull.snapshot)
        for review in snapshot.reviews:
            if (
                review.submitted_at is not None
                and not review.author.is_bot
                and review.author.association in MAINTAINER_ASSOCIATIONS
            ):
                moments.append(review.submitted_at)
        for comment in snapshot.comments:
            if not comment.author.is_bot and comment.author.association in MAINTAINER_ASSOCIATIONS:
                moments.append(comment.created_at)
    return max(moments) if moments else None


@dataclass(frozen=True, slots=True)
class LowReturnVerdict:
    repository: str
    watch_only: bool
    changed: bool
    reason: str


async def review_low_return(
    db: Ledger, repository: str, config: Config, now: datetime
) -> LowReturnVerdict:
    """Demote the repository to watch-only when its circuit breaker is open and no maintainer
    acted for ``stop-loss.low-return-idle-days``; restore a demoted one on the next maintainer
    action after its demotion. Each change is a ``low_return`` decision with its reason."""
    row = await repositories.get_repository(db, repository)
    if row is None:
        return LowReturnVerdict(repository, False, False, "unknown repository")
    last = await last_maintainer_action(db, repository)
    if row.watch_only:
        since = row.watch_only_since
        if last is not None and (since is None or last > since):
            reason = f"a maintainer acted at {last.isoformat()}: restored"
            await ledger_budgets.record_watch_only(
                db, repository, False, "low-return.restored", reason, now
            )
            return LowReturnVerdict(repository, False, True, reason)
        return LowReturnVerdict(repository, True, False, row.watch_only_reason or "watch-only")
    caps = config.stop_loss
    records = tuple(_record(r) for r in await ledger_budgets.job_spend_rows(db, repository))
    if not circuit_open(records, caps.circuit_breaker_failed_verifications):
        return LowReturnVerdict(repository, False, False, "the circuit breaker is closed")
    idle = timedelta(days=caps.low_return_idle_days)
    since = last if last is not None else row.created_at  # never acted: idle since first seen
    if now - since < idle:
        what = f"a maintainer acted at {last.isoformat()}" if last else "watched only recently"
        return LowReturnVerdict(repository, False, False, what)
    reason = (
        f"low return: the last {caps.circuit_breaker_failed_verifications} verifications failed "
        f"(circuit breaker open) and no maintainer acted for {caps.low_return_idle_days} days"
        + (f" (last at {last.isoformat()})" if last is not None else "")
        + ": watch-only until a maintainer acts here"
    )
    await ledger_budgets.record_watch_only(
        db,
        repository,
        True,
        "low-return.demoted",
        reason,
        now,
        {"last_maintainer_action": last.isoformat() if last else None},
    )
    return LowReturnVerdict(repository, True, True, reason)


def flagged_rejections(rows: Iterable[JobSpendRow]) -> int:
    """Done-claims rejected with budget left, over all jobs."""
    return sum(1 for r in rows if REJECTED_WITH_BUDGET_FLAG in r.flags)


def budget_granter(
    escalations: Any,
) -> Callable[[str, int, int | None, float | None, str], Awaitable[str]]:
    """``CommandDesk.grant_budget`` on the process's ``Escalations``."""

    async def grant(
        repository: str, number: int, tokens: int | None, dollars: float | None, by: str
    ) -> str:
        result = await handle_budget_command(escalations, repository, number, tokens, dollars, by)
        return result.effect

    return grant


@dataclass
class LowReturnReview:
    """Runs :func:`review_low_return` over every watched repository at most once per
    ``interval`` (from ``Escalations.tick``); ``config_for(repository)`` gives its config."""

    db: Ledger
    config_for: Callable[[str], Awaitable[Config]]
    interval: timedelta = timedelta(hours=1)
    last_run: datetime | None = None

    async def __call__(self, now: datetime) -> list[LowReturnVerdict]:
        if self.last_run is not None and now - self.last_run < self.interval:
            return []
        self.last_run = now
        changed: list[LowReturnVerdict] = []
        for row in await repositories.list_repositories(self.db):
            if row.ignored:
                continue
            verdict = await review_low_return(
                self.db, row.full_name, await self.config_for(row.full_name), now
            )
            if verdict.changed:
                log.warning("%s: %s", row.full_name, verdict.reason)
                changed.append(verdict)
        return changed
