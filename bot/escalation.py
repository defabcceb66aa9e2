"""Escalation jobs in the loop: open them from decisions, hand them out, and verify reports
against GitHub with the done-oracle (``policies.oracle``), never on the agent's word.

The engine calls one function per proposed ESCALATE candidate::

    job_id = await open_job(db, decision, candidate, snapshot, now, config=config)

Everything after that is :class:`Escalations`:

- ``lease`` / ``heartbeat`` / ``report``: the pull API (``bot/jobs_api.py``) and the push and
  command deliveries (``bot/agent_delivery.py``) all go through them. Heartbeats carry the spend
  so far, judged by ``policies.progress`` (no-progress: flagged, then stopped);
- ``verify``: re-read the PR from GitHub (``github_reader``; ``github_ancestry`` for
  force-pushes), ask ``policies.oracle``, record the verdict, re-queue when the stop-loss allows;
- ``grant``: a maintainer's grant re-queues a BUDGET_EXHAUSTED job once;
- ``tick``: expire leases (a crashed attempt counts and is charged), cancel queued jobs GitHub
  already answered, re-verify jobs GitHub had not finished with, announce BUDGET_EXHAUSTED jobs
  once (``announce``: ``bot.budgets.ExhaustionAnnouncer``).

The life cycle and its legal moves live in ``ledger/jobs.py``; docs/agents.md draws it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger import jobs as job_store
from ledger import pulls, repositories
from ledger import spend as spend_ledger
from ledger.db import Ledger
from ledger.models import Agent, EscalationJob, JobState, ObservationSource, SpendKind
from policies.brief import build_brief, next_attempt_brief, redact
from policies.budgets import JobBudget
from policies.config import Config, TriggerKind
from policies.oracle import (
    AgentClaim,
    ClaimedOutcome,
    JobStart,
    OracleVerdict,
    Verdict,
    trigger_cleared,
    verify,
)
from policies.progress import Heartbeat, ProgressVerdict, budget_share, check_progress
from policies.sizing import dollars_for
from policies.snapshot import PullRequestSnapshot, snapshot_from_json, snapshot_to_json
from policies.triage import Candidate, CandidateKind, Decision

log = logging.getLogger("prsteward.escalation")

DEFAULT_LEASE_TTL = timedelta(minutes=10)
MAX_PUSHED_SHAS = 50
MAX_EVIDENCE = 20

SHADOW_REASON = "shadow mode: recorded as would-be, no agent is launched"


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- opening a job -----------------------------------------------------------------------------


async def open_job(
    db: Ledger,
    decision: Decision,
    candidate: Candidate,
    snapshot: PullRequestSnapshot,
    now: datetime,
    *,
    config: Config | None = None,
    candidate_id: int | None = None,
) -> int | None:
    """Record one proposed ESCALATE candidate as an escalation job; returns its id.

    - act mode: DETECTED -> QUEUED, with the budget reserved in the spend ledger (same
      transaction), ready to be leased by an agent;
    - shadow mode (``decision.mode == "shadow"``): DETECTED -> SUPPRESSED "shadow mode": recorded
      as would-be; no agent is ever launched for it;
    - returns None (and creates nothing) when the candidate is not a proposed escalation, when
      this trigger fingerprint already has a job on the PR (a webhook redelivery, a restart, a
      second replica), or when another job on the PR is still in flight.

    ``config`` supplies the stop-loss cap (``max-attempts-per-trigger``) for "attempt n of m"
    (default: the repository's config stored in the ledger); ``candidate_id`` links the job to
    the engine's candidate row. The signature fits ``bot.executor.EscalationHook``.
    """
    if candidate.kind is not CandidateKind.ESCALATE or not candidate.proposed:
        return None
    trigger, budget = candidate.trigger, candidate.budget
    if trigger is None or budget is None:
        return None
    config = config or await stored_config(db, snapshot.repository)
    max_attempts = max(1, config.stop_loss.max_attempts_per_trigger)

    def make_brief(job_id: int, attempt: int) -> dict[str, Any]:
        return build_brief(
            trigger=trigger,
            snapshot=snapshot,
            budget=budget,
            attempt=attempt,
            max_attempts=max_attempts,
            started_at=now,
            job_id=job_id,
        )

    shadow = decision.mode != "act"
    job, _before = await job_store.create_job(
        db,
        job_store.NewJob(
            repository=snapshot.repository,
            number=snapshot.number,
            trigger_kind=trigger.kind.value,
            trigger_fingerprint=trigger.fingerprint,
            budget_tokens=budget.tokens,
            budget_dollars=budget.dollars,
            max_attempts=max_attempts,
            start_head_sha=snapshot.head_sha,
            candidate_id=candidate_id,
            size_class=budget.size_class,
        ),
        now,
        make_brief,
        suppress_reason=SHADOW_REASON if shadow else None,
        suppress_rule_id="mode.shadow",
    )
    if job is None:
        return None
    log.info(
        "escalation job %s %s: %s#%s %s (%s)",
        job.id,
        job.state,
        snapshot.repository,
        snapshot.number,
        trigger.kind.value,
        job.state_reason,
    )
    return job.id


async def stored_config(db: Ledger, repository: str) -> Config:
    """The repository's last valid config from the ledger, else the defaults."""
    row = await repositories.get_repository(db, repository)
    if row is None or not row.config:
        return Config()
    try:
        return Config.model_validate(row.config)
    except ValueError:
        log.warning("%s: stored config no longer validates; using defaults", repository)
        return Config()


# --- reading GitHub ----------------------------------------------------------------------------

PullReader = Callable[[str, int], Awaitable[PullRequestSnapshot | None]]
"""Re-reads one PR from GitHub (``repository``, ``number``) -> a fresh snapshot, or None."""


def github_reader(app: Any, db: Ledger) -> PullReader:
    """A :data:`PullReader` on the App client (``bot.github.GitHubApp``): one GraphQL
    ``pull_requests_by_number`` query, normalised like the reconciler does and recorded in the
    ledger as a poll observation. Raises ``bot.github.GitHubError`` on trouble."""
    from bot.github import GitHubError
    from bot.queries import pull_requests_by_number
    from policies.normalize import from_graphql

    async def read(repository: str, number: int) -> PullRequestSnapshot | None:
        row = await repositories.get_repository(db, repository)
        if row is None or row.installation_id is None:
            raise GitHubError(f"{repository}: no installation known")
        owner, name = repository.split("/", 1)
        client = app.installation(row.installation_id)
        answer = await client.graphql(
            pull_requests_by_number([number]), {"owner": owner, "name": name}
        )
        repo = answer.data.get("repository")
        node = repo.get(f"pr{number}") if isinstance(repo, Mapping) else None
        if not isinstance(node, Mapping):
            return None
        snapshot = from_graphql(repository, node)
        await pulls.record_snapshot(
            db,
            repository,
            number,
            snapshot_to_json(snapshot),
            snapshot.fingerprint(),
            ObservationSource.POLL,
            utcnow(),
        )
        return snapshot

    return read


Ancestry = Callable[[str, str, str], Awaitable[bool | None]]
"""``(repository, start_sha, head_sha)`` -> does the head descend from the start? None: unknown."""


def github_ancestry(app: Any, db: Ledger) -> Ancestry:
    """An :data:`Ancestry` on GitHub's compare API (``GET /repos/{o}/{r}/compare/A...B``): one
    REST request; ``ahead``/``identical`` -> True, ``behind``/``diverged`` -> False (history was
    rewritten: a force-push), anything else (an error, no such endpoint) -> None."""

    async def descends(repository: str, start: str, head: str) -> bool | None:
        row = await repositories.get_repository(db, repository)
        if row is None or row.installation_id is None:
            return None
        client = app.installation(row.installation_id)
        response = await client.request("GET", f"/repos/{repository}/compare/{start}...{head}")
        if response.status_code != 200:
            return None
        try:
            status = response.json().get("status")
        except ValueError:
            return None
        if status in {"ahead", "identical"}:
            return True
        if status in {"behind", "diverged"}:
            return False
        return None

    return descends


# --- reports -----------------------------------------------------------------------------------


class ReportError(ValueError):
    """A report or heartbeat the API refuses (wrong job, not the lease holder, bad field)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Report:
    """An agent's report, validated and bounded; token-shaped strings in its text redacted.
    Recorded as given otherwise; never trusted."""

    outcome: ClaimedOutcome
    tokens_in: int = 0
    tokens_out: int = 0
    dollars: float = 0.0
    pushed_shas: tuple[str, ...] = ()
    blocker_evidence: tuple[str, ...] = ()
    model: str | None = None
    summary: str = ""

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Report:
        """From JSON; raises ReportError(400) naming the bad field."""
        raw = body.get("outcome")
        try:
            outcome = ClaimedOutcome(str(raw).lower())
        except ValueError:
            raise ReportError("outcome: one of done, failed, blocked", 400) from None

        def count(name: str) -> int:
            value = body.get(name, 0) or 0
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ReportError(f"{name}: a whole number >= 0", 400)
            return value

        dollars = body.get("dollars", 0) or 0
        if isinstance(dollars, bool) or not isinstance(dollars, int | float) or dollars < 0:
            raise ReportError("dollars: a number >= 0", 400)
        shas = body.get("pushed_shas") or []
        evidence = body.get("blocker_evidence") or []
        if not isinstance(shas, list) or not all(isinstance(s, str) for s in shas):
            raise ReportError("pushed_shas: a list of commit SHAs", 400)
        if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
            raise ReportError("blocker_evidence: a list of strings", 400)
        model = body.get("model")
        summary = body.get("summary") or ""
        return cls(
            outcome,
            count("tokens_in"),
            count("tokens_out"),
            float(dollars),
            tuple(s.strip()[:64] for s in shas[:MAX_PUSHED_SHAS] if s.strip()),
            tuple(redact(e.strip()[:1000]) for e in evidence[:MAX_EVIDENCE] if e.strip()),
            str(model)[:100] if model else None,
            redact(str(summary)[:4000]),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "dollars": self.dollars,
            "pushed_shas": list(self.pushed_shas),
            "blocker_evidence": list(self.blocker_evidence),
            "model": self.model,
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a job after a report (or a verification pass)."""

    job_id: int
    state: str
    reason: str
    flags: tuple[str, ...] = ()
    requeued_job_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "state": self.state,
            "reason": self.reason,
            "flags": list(self.flags),
            "requeued_job_id": self.requeued_job_id,
        }


_VERDICT_STATE = {
    Verdict.VERIFIED_DONE: JobState.VERIFIED_DONE,
    Verdict.VERIFY_FAILED: JobState.VERIFY_FAILED,
    Verdict.BUDGET_EXHAUSTED: JobState.BUDGET_EXHAUSTED,
    Verdict.BLOCKED: JobState.BLOCKED,
    Verdict.SUPERSEDED: JobState.SUPERSEDED,
}

# Re-queued (a new attempt) when the caps allow: the trigger still stands and nobody else acted.
REQUEUE_STATES = frozenset({JobState.VERIFY_FAILED, JobState.LEASE_EXPIRED})


MAX_HEARTBEATS = 50  # kept per attempt


def _heartbeat(data: Mapping[str, Any]) -> Heartbeat:
    return Heartbeat(
        at=datetime.fromisoformat(str(data["at"])),
        dollars_spent=float(data.get("dollars", 0.0) or 0.0),
        tokens_used=int(data.get("tokens_in", 0) or 0) + int(data.get("tokens_out", 0) or 0),
        head_sha=str(data.get("head_sha", "")),
        checks_fingerprint=str(data.get("checks", "")),
        comment_count=int(data.get("comments", 0) or 0),
    )


def job_start(job: EscalationJob, budget_tokens: int, budget_dollars: float) -> JobStart:
    """The oracle's view of what the job was about, from the job row and its brief."""
    brief = job.brief or {}
    accept = brief.get("acceptance") or {}
    return JobStart(
        trigger_kind=TriggerKind(job.trigger_kind),
        fingerprint=job.trigger_fingerprint,
        start_head_sha=job.start_head_sha or "",
        started_at=job.created_at,
        budget_tokens=budget_tokens,
        budget_dollars=budget_dollars,
        failing_checks=tuple(accept.get("checks_success") or ()),
        reviewer=accept.get("re_request_reviewer"),
    )


def requeue_allowed(job: EscalationJob, flags: tuple[str, ...]) -> tuple[bool, str]:
    """Stop-loss for a re-queue: attempts left, and no repeat of a rejected blocked claim."""
    if job.attempt >= job.max_attempts:
        return False, (
            f"attempt {job.attempt} of {job.max_attempts}: no attempts left "
            "(max-attempts-per-trigger)"
        )
    if "no-progress" in flags:
        return False, "a job flagged no-progress is not retried"
    if "blocked-without-evidence" in flags:
        return False, "a blocked claim without evidence is not retried"
    return True, f"re-queued as attempt {job.attempt + 1} of {job.max_attempts}"


@dataclass
class Escalations:
    """The job service: one per process, shared by the pull API and the deliveries."""

    db: Ledger
    read_pull: PullReader | None = None
    config_for: Callable[[str], Config] | None = None  # default: the config in the ledger
    lease_ttl: timedelta = DEFAULT_LEASE_TTL
    clock: Callable[[], datetime] = utcnow
    on_alert: Callable[[str, int, str], None] | None = None  # (kind, job id, message)
    ancestry: Ancestry | None = None  # force-push detection; None: not asked
    # Announces BUDGET_EXHAUSTED jobs once (``bot.budgets.ExhaustionAnnouncer``); run by tick.
    announce: Callable[[datetime], Awaitable[Any]] | None = None
    # Demotes low-return repositories to watch-only (``bot.budgets.LowReturnReview``); by tick.
    review_repositories: Callable[[datetime], Awaitable[Any]] | None = None

    # -- leases

    async def lease(self, agent: Agent, delivery: str = "pull") -> dict[str, Any] | None:
        """Lease the oldest queued job to ``agent``; the job document, or None."""
        await self.expire_leases()
        await self.supersede_stale_queued()
        leased = await job_store.lease_next(
            self.db, int(agent.id or 0), agent.name, self.lease_ttl, self.clock(), delivery
        )
        if leased is None:
            return None
        job, attempt = leased
        located = await job_store.job_location(self.db, int(job.id or 0))
        assert located is not None
        return {
            "job_id": job.id,
            "attempt_id": attempt.id,
            "repository": located.repository,
            "number": located.number,
            "state": job.state,
            "lease_expires_at": job.lease_expires_at.isoformat() if job.lease_expires_at else None,
            "lease_ttl_seconds": int(self.lease_ttl.total_seconds()),
            "brief": job.brief,
        }

    async def _held(self, agent: Agent, job_id: int) -> EscalationJob:
        job = await job_store.get_job(self.db, job_id)
        if job is None:
            raise ReportError(f"no job {job_id}", 404)
        if job.lease_owner != agent.name:
            raise ReportError(f"job {job_id} is not leased to {agent.name}", 409)
        if job.state not in {JobState.LEASED, JobState.RUNNING}:
            raise ReportError(f"job {job_id} is {job.state}: its lease is over", 409)
        return job

    async def _observed(self, job_id: int) -> dict[str, Any]:
        """What GitHub shows for the job's PR, as the ledger last saw it (webhooks and polls keep
        it fresh): the head, a fingerprint of the checks, and how many comments/reviews."""
        located = await job_store.job_location(self.db, job_id)
        stored = (
            await pulls.get_pull(self.db, located.repository, located.number)
            if located is not None
            else None
        )
        if stored is None or stored.snapshot is None:
            return {"head_sha": "", "checks": "", "comments": 0}
        snapshot = snapshot_from_json(stored.snapshot)
        checks = sorted(f"{c.name}={c.outcome.value}" for c in snapshot.checks)
        return {
            "head_sha": snapshot.head_sha,
            "checks": hashlib.sha256("\n".join(checks).encode()).hexdigest()[:16],
            "comments": len(snapshot.comments) + len(snapshot.reviews),
        }

    async def heartbeat(
        self, agent: Agent, job_id: int, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Extend the lease (LEASED -> RUNNING on the first beat). The spend so far may be
        reported (``tokens_in``, ``tokens_out``, ``dollars``): it is kept on the attempt (a
        crash after it is charged what it said), and judged by ``policies.progress``: spend
        growing while GitHub shows no new commit, check change or comment is flagged
        ``no-progress``, and past half the budget the job is stopped (NEEDS_HUMAN)."""
        job = await self._held(agent, job_id)
        now = self.clock()
        body = body or {}
        progress = {
            k: body[k]
            for k in ("tokens_in", "tokens_out", "dollars")
            if isinstance(body.get(k), int | float) and not isinstance(body.get(k), bool)
        }
        observed = await self._observed(job_id) if progress else {}
        sums = await spend_ledger.job_spend(self.db, job_id)
        budget = JobBudget(
            (job.budget_tokens or 0) + sums.granted_tokens,
            (job.budget_dollars or 0.0) + sums.granted_dollars,
        )
        verdict: ProgressVerdict | None = None
        expires = now + self.lease_ttl
        async with self.db.transaction() as session:
            if job.state == JobState.LEASED:
                moved = await job_store.transition(
                    session,
                    job_id,
                    JobState.RUNNING,
                    "lease.heartbeat",
                    f"{agent.name} started working",
                    now,
                    expect=JobState.LEASED,
                    values={"lease_expires_at": expires, "heartbeat_at": now},
                )
            else:
                moved = await job_store.extend_lease(session, job_id, agent.name, expires, now)
            if not moved:
                raise ReportError(f"job {job_id}: the lease is over", 409)
            attempt = await job_store.current_attempt(session, job_id)
            if attempt is not None and progress:
                report = dict(attempt.report or {})
                report["heartbeat"] = progress
                beats = [*list(report.get("heartbeats") or [])[-(MAX_HEARTBEATS - 1) :]]
                beats.append({"at": now.isoformat(), **progress, **observed})
                report["heartbeats"] = beats
                attempt.report = report
                verdict = check_progress([_heartbeat(b) for b in beats], budget)
                if verdict.flags and not set(verdict.flags) <= set(job.flags or []):
                    flags = sorted({*(job.flags or []), *verdict.flags})
                    await job_store.set_flags(session, job_id, flags)
                    job.flags = flags
        answer: dict[str, Any] = {"job_id": job_id, "lease_expires_at": expires.isoformat()}
        if progress:
            share = budget_share(_heartbeat({"at": now.isoformat(), **progress}), budget)
            answer["budget_used"] = round(share, 4)
            answer["stop"] = share >= 1.0  # spent: report now; the oracle decides
        if verdict is not None and verdict.flags:
            answer["flags"] = list(verdict.flags)
        if verdict is not None and verdict.stop:
            await self._stop(job, verdict.rule_id, verdict.reason)
            answer.update(stop=True, state=JobState.NEEDS_HUMAN.value, reason=verdict.reason)
        return answer

    async def _stop(self, job: EscalationJob, rule_id: str, reason: str) -> None:
        """RUNNING -> NEEDS_HUMAN (no progress): the attempt counts, is charged its last
        heartbeat's spend, its reservation is released; it is not re-queued."""
        job_id = int(job.id or 0)
        now = self.clock()
        async with self.db.transaction() as session:
            if not await job_store.transition(
                session,
                job_id,
                JobState.NEEDS_HUMAN,
                rule_id,
                reason,
                now,
                expect=JobState.RUNNING,
                values={"lease_expires_at": None},
            ):
                return
            attempt = await job_store.current_attempt(session, job_id)
            beat = ((attempt.report or {}).get("heartbeat") or {}) if attempt else {}
            if attempt is not None:
                attempt.ended_at = now
                attempt.verdict = JobState.NEEDS_HUMAN.value
                attempt.verdict_reason = reason
            await spend_ledger.add(
                session,
                job,
                SpendKind.SPEND,
                now,
                attempt_id=attempt.id if attempt else None,
                tokens_in=int(beat.get("tokens_in", 0)),
                tokens_out=int(beat.get("tokens_out", 0)),
                dollars=float(beat.get("dollars", 0.0)),
                note="stopped for no progress: its last heartbeat's spend",
            )
            await spend_ledger.release_outstanding(session, job, now, "stopped: no progress")
        self._alert("no_progress", job_id, reason)

    async def _config(self, repository: str) -> Config:
        if self.config_for is not None:
            return self.config_for(repository)
        return await stored_config(self.db, repository)

    async def _priced(self, report: Report, job_id: int) -> Report:
        """A report that names its ``model`` and gives tokens but no dollars is priced with the
        configured price table (``prices``: dollars per million tokens), so learned budgets and
        every budget scope see real money."""
        if report.dollars > 0 or not report.model or not (report.tokens_in or report.tokens_out):
            return report
        located = await job_store.job_location(self.db, job_id)
        if located is None:
            return report
        price = (await self._config(located.repository)).prices.get(report.model)
        if price is None:
            return report
        dollars = dollars_for(price, report.tokens_in, report.tokens_out)
        return replace(report, dollars=round(dollars, 6))

    async def report(self, agent: Agent, job_id: int, body: Mapping[str, Any]) -> Outcome:
        """Record the agent's claim and spend, release the reservation, then verify against
        GitHub. The claim is recorded as given; only the oracle's verdict moves the job on."""
        report = Report.parse(body)
        job = await self._held(agent, job_id)
        report = await self._priced(report, job_id)
        now = self.clock()
        async with self.db.transaction() as session:
            moved = await job_store.transition(
                session,
                job_id,
                JobState.CLAIMED_DONE,
                "report.received",
                f"{agent.name} reports {report.outcome.value} (a claim, to be verified)",
                now,
                values={"lease_expires_at": None},
            )
            if not moved:
                raise ReportError(f"job {job_id}: the lease is over", 409)
            attempt = await job_store.current_attempt(session, job_id)
            attempt_id = attempt.id if attempt is not None else None
            if attempt is not None:
                attempt.ended_at = now
                attempt.claimed_outcome = report.outcome.value
                attempt.report = {**(attempt.report or {}), **report.as_json()}
                attempt.pushed_shas = list(report.pushed_shas)
            await spend_ledger.add(
                session,
                job,
                SpendKind.SPEND,
                now,
                attempt_id=attempt_id,
                tokens_in=report.tokens_in,
                tokens_out=report.tokens_out,
                dollars=report.dollars,
                model=report.model,
                note=f"reported by {agent.name}",
            )
            await spend_ledger.release_outstanding(session, job, now, "attempt reported")
        return await self.verify(job_id)

    # -- verification

    async def verify(self, job_id: int) -> Outcome:
        """CLAIMED_DONE -> VERIFYING -> the oracle's verdict, from a fresh read of the PR.

        GitHub unreadable or not finished (checks pending) -> back to CLAIMED_DONE, verified
        again by :meth:`tick`. VERIFY_FAILED is re-queued only when the stop-loss allows."""
        now = self.clock()
        if not await job_store.move(
            self.db,
            job_id,
            JobState.VERIFYING,
            "oracle.reading",
            "reading the PR from GitHub",
            now,
            expect=JobState.CLAIMED_DONE,
        ):
            job = await job_store.get_job(self.db, job_id)
            state = job.state if job is not None else "missing"
            return Outcome(job_id, state, "not waiting for verification")
        located = await job_store.job_location(self.db, job_id)
        assert located is not None
        job = located.job
        snapshot: PullRequestSnapshot | None = None
        problem = "no GitHub reader configured"
        if self.read_pull is not None:
            try:
                snapshot = await self.read_pull(located.repository, located.number)
                problem = "the PR was not found on GitHub"
            except Exception as error:  # noqa: BLE001 - any read failure means "verify later"
                problem = f"GitHub read failed: {error.__class__.__name__}: {error}"[:300]
        if snapshot is None:
            await job_store.move(
                self.db,
                job_id,
                JobState.CLAIMED_DONE,
                "oracle.unreadable",
                problem + "; will verify again",
                self.clock(),
                expect=JobState.VERIFYING,
            )
            return Outcome(job_id, JobState.CLAIMED_DONE.value, problem)
        attempts = await job_store.attempts_of(self.db, job_id)
        last = attempts[-1] if attempts else None
        claim_data = (last.report or {}) if last is not None else {}
        sums = await spend_ledger.job_spend(self.db, job_id)
        claim = AgentClaim(
            outcome=ClaimedOutcome(
                last.claimed_outcome if last and last.claimed_outcome else "failed"
            ),
            pushed_shas=tuple(last.pushed_shas if last is not None else ()),
            tokens_used=sums.spent_tokens,
            dollars_spent=sums.spent_dollars,
            blocker_evidence=tuple(claim_data.get("blocker_evidence") or ()),
        )
        start = job_start(
            job,
            (job.budget_tokens or 0) + sums.granted_tokens,
            (job.budget_dollars or 0.0) + sums.granted_dollars,
        )
        config = (
            self.config_for(located.repository)
            if self.config_for is not None
            else await stored_config(self.db, located.repository)
        )
        descends: bool | None = None
        if (
            self.ancestry is not None
            and start.start_head_sha
            and snapshot.head_sha != start.start_head_sha
            and snapshot.head_sha in claim.pushed_shas
        ):
            try:
                descends = await self.ancestry(
                    located.repository, start.start_head_sha, snapshot.head_sha
                )
            except Exception as error:  # noqa: BLE001 - unknown ancestry is "not asked"
                log.info("job %s: ancestry unknown: %s", job_id, error)
        verdict = verify(start, claim, snapshot, config, start_is_ancestor=descends)
        return await self._record_verdict(job, last, verdict, snapshot)

    async def _record_verdict(
        self,
        job: EscalationJob,
        attempt: Any,
        verdict: OracleVerdict,
        snapshot: PullRequestSnapshot,
    ) -> Outcome:
        job_id = int(job.id or 0)
        now = self.clock()
        if verdict.verdict is Verdict.PENDING:
            await job_store.move(
                self.db,
                job_id,
                JobState.CLAIMED_DONE,
                verdict.rule_id,
                verdict.reason + "; will verify again",
                now,
                expect=JobState.VERIFYING,
            )
            return Outcome(job_id, JobState.CLAIMED_DONE.value, verdict.reason)
        target = _VERDICT_STATE[verdict.verdict]
        flags = sorted({*(job.flags or []), *verdict.flags})
        async with self.db.transaction() as session:
            await job_store.transition(
                session,
                job_id,
                target,
                verdict.rule_id,
                verdict.reason,
                now,
                expect=JobState.VERIFYING,
                values={"flags": flags},
            )
            current = await job_store.current_attempt(session, job_id)
            if current is not None:
                current.verdict = verdict.verdict.value
                current.verdict_reason = verdict.reason
                current.verified_at = now
                if verdict.failure_signature is not None:
                    current.report = {
                        **(current.report or {}),
                        "failure_signature": verdict.failure_signature,
                    }
        if verdict.verdict is Verdict.BUDGET_EXHAUSTED:
            self._alert("budget_exhausted", job_id, verdict.reason)
        if "done-claim-with-budget-left" in verdict.flags:
            self._alert("false_done_claim", job_id, verdict.reason)
        requeued: int | None = None
        if target in REQUEUE_STATES:
            requeued = await self._maybe_requeue(job, tuple(flags), snapshot, verdict.reason)
        log.info("job %s: %s (%s) %s", job_id, target.value, verdict.rule_id, verdict.reason)
        return Outcome(job_id, target.value, verdict.reason, tuple(flags), requeued)

    def _alert(self, kind: str, job_id: int, message: str) -> None:
        log.warning("ALERT %s job %s: %s", kind, job_id, message)
        if self.on_alert is not None:
            self.on_alert(kind, job_id, message)

    async def _maybe_requeue(
        self,
        job: EscalationJob,
        flags: tuple[str, ...],
        snapshot: PullRequestSnapshot | None,
        why: str,
    ) -> int | None:
        allowed, reason = requeue_allowed(job, flags)
        if not allowed:
            await job_store.note(
                self.db, int(job.id or 0), "stop-loss.no-requeue", reason, self.clock()
            )
            return None
        if snapshot is not None and snapshot.state.value != "OPEN":
            return None
        head = snapshot.head_sha if snapshot is not None else (job.start_head_sha or "")
        brief = next_attempt_brief(job.brief or {}, job.attempt + 1, job.max_attempts, head, why)
        new = await job_store.requeue(self.db, int(job.id or 0), brief, head, self.clock())
        return None if new is None else new.id

    # -- grants

    async def grant(self, job_id: int, tokens: int, dollars: float, by: str) -> Outcome:
        """A maintainer grants more budget to a BUDGET_EXHAUSTED job: the grant is recorded in
        the spend ledger and the job is queued again ONCE, as a new attempt with the granted
        amounts as its budget (even past max-attempts: a person decided). A second grant on
        the same job re-queues nothing."""
        if tokens < 0 or dollars < 0 or (tokens == 0 and dollars == 0):
            raise ReportError("a grant needs tokens or dollars > 0", 400)
        job = await job_store.get_job(self.db, job_id)
        if job is None:
            raise ReportError(f"no job {job_id}", 404)
        if job.state != JobState.BUDGET_EXHAUSTED:
            raise ReportError(f"job {job_id} is {job.state}, not BUDGET_EXHAUSTED", 409)
        from bot.budgets import grant_amounts  # tokens only: dollars at the job's own rate

        tokens, dollars = grant_amounts(
            tokens, dollars, job.budget_tokens or 0, job.budget_dollars or 0.0
        )
        now = self.clock()
        brief = next_attempt_brief(
            {
                **(job.brief or {}),
                "budget": {
                    "tokens": tokens,
                    "dollars": round(dollars, 4),
                    "source": f"grant by {by}",
                    "size_class": job.size_class,
                },
            },
            job.attempt + 1,
            job.max_attempts,
            job.start_head_sha or "",
            f"the budget ran out; {by} granted {tokens} tokens and ${dollars:.2f} more",
        )
        new = await job_store.requeue(
            self.db,
            job_id,
            brief,
            job.start_head_sha or "",
            now,
            budget_tokens=tokens,
            budget_dollars=dollars,
            reason=f"{by} granted {tokens} tokens and ${dollars:.2f}",
        )
        if new is None:
            return Outcome(job_id, job.state, "already re-queued once (or another job runs)")
        async with self.db.transaction() as session:
            await spend_ledger.add(  # on the exhausted job; the new attempt's budget is the grant
                session,
                job,
                SpendKind.GRANT,
                now,
                tokens_in=tokens,
                dollars=dollars,
                note=f"granted by {by}: re-queued as job {new.id}",
            )
        return Outcome(job_id, job.state, f"re-queued as job {new.id}", (), new.id)

    # -- housekeeping

    async def expire_leases(self) -> list[Outcome]:
        """LEASED/RUNNING jobs past their lease -> LEASE_EXPIRED (see :meth:`abandon`)."""
        out: list[Outcome] = []
        for job_id in await job_store.expired_leases(self.db, self.clock()):
            outcome = await self.abandon(job_id, "stopped heart-beating")
            if outcome is not None:
                out.append(outcome)
        return out

    async def abandon(self, job_id: int, why: str) -> Outcome | None:
        """End a LEASED/RUNNING attempt that will not report (lease expired, the command
        timed out, the runner failed): LEASE_EXPIRED. The attempt still counts, and is charged
        what it last reported in a heartbeat, else its whole reservation (fail closed).
        Re-queued when the caps allow. None when the job was not leased any more."""
        now = self.clock()
        async with self.db.transaction() as session:
            job = await session.get(EscalationJob, job_id)
            if job is None:
                return None
            owner = job.lease_owner
            moved = await job_store.transition(
                session,
                job_id,
                JobState.LEASE_EXPIRED,
                "lease.expired",
                f"{owner}: {why}; the attempt counts",
                now,
            )
            if not moved:
                return None
            attempt = await job_store.current_attempt(session, job_id)
            beat = ((attempt.report or {}).get("heartbeat") or {}) if attempt else {}
            if attempt is not None:
                attempt.ended_at = now
                attempt.verdict = JobState.LEASE_EXPIRED.value
                attempt.verdict_reason = why
            sums = await spend_ledger.job_spend_in(session, job_id)
            if beat:
                await spend_ledger.add(
                    session,
                    job,
                    SpendKind.SPEND,
                    now,
                    attempt_id=attempt.id if attempt else None,
                    tokens_in=int(beat.get("tokens_in", 0)),
                    tokens_out=int(beat.get("tokens_out", 0)),
                    dollars=float(beat.get("dollars", 0.0)),
                    note="crashed attempt: its last heartbeat's spend",
                )
            else:
                await spend_ledger.add(
                    session,
                    job,
                    SpendKind.SPEND,
                    now,
                    attempt_id=attempt.id if attempt else None,
                    tokens_in=sums.reserved_tokens - sums.released_tokens,
                    dollars=sums.outstanding_dollars,
                    note="crashed attempt, spend unknown: charged its reservation",
                )
            await spend_ledger.release_outstanding(
                session, job, now, "attempt ended without a report"
            )
        requeued = await self._maybe_requeue(job, tuple(job.flags or ()), None, why)
        return Outcome(job_id, JobState.LEASE_EXPIRED.value, why, (), requeued)

    async def supersede_stale_queued(self) -> list[Outcome]:
        """QUEUED jobs the ledger's latest snapshot already answers: the PR was closed, someone
        pushed, or the trigger cleared by itself. No agent is launched for them: they become
        CANCELLED (rule ``escalation.superseded-before-launch``), which the stop-loss does not
        count as an attempt, and their reservation is released."""
        out: list[Outcome] = []
        queued = await job_store.list_jobs(self.db, states=frozenset({JobState.QUEUED}))
        for row in queued:
            stored = await pulls.get_pull(self.db, row.repository, row.number)
            if stored is None or stored.snapshot is None:
                continue
            snapshot = snapshot_from_json(stored.snapshot)
            job = row.job
            reason: str | None = None
            if snapshot.state.value != "OPEN":
                reason = f"the PR is {snapshot.state.value.lower()}"
            elif job.start_head_sha and snapshot.head_sha != job.start_head_sha:
                reason = f"someone pushed {snapshot.head_sha[:7]} before an agent started"
            else:
                start = job_start(job, job.budget_tokens or 0, job.budget_dollars or 0.0)
                claim = AgentClaim(ClaimedOutcome.FAILED)
                config = (
                    self.config_for(row.repository)
                    if self.config_for is not None
                    else await stored_config(self.db, row.repository)
                )
                cleared, detail = trigger_cleared(start, claim, snapshot, config)
                if cleared.value == "yes" and start.trigger_kind in {
                    TriggerKind.FAILING_CI,
                    TriggerKind.FLAKY_CI,
                    TriggerKind.CONFLICT,
                    TriggerKind.STALE_METADATA,
                }:
                    reason = f"the trigger cleared by itself: {detail}"
            if reason is None:
                continue
            now = self.clock()
            async with self.db.transaction() as session:
                if await job_store.transition(
                    session,
                    int(job.id or 0),
                    JobState.CANCELLED,
                    "escalation.superseded-before-launch",
                    f"superseded before launch: {reason}",
                    now,
                    expect=JobState.QUEUED,
                ):
                    await spend_ledger.release_outstanding(session, job, now, "superseded")
                    out.append(Outcome(int(job.id or 0), JobState.CANCELLED.value, reason))
        return out

    async def tick(self) -> dict[str, int]:
        """One housekeeping pass: expire leases, supersede queued jobs GitHub already
        answered, verify jobs waiting on GitHub."""
        expired = await self.expire_leases()
        await self.supersede_stale_queued()
        if self.announce is not None:
            await self.announce(self.clock())
        if self.review_repositories is not None:
            await self.review_repositories(self.clock())
        verified = 0
        for row in await job_store.list_jobs(
            self.db, states=frozenset({JobState.CLAIMED_DONE}), limit=50
        ):
            outcome = await self.verify(int(row.job.id or 0))
            verified += outcome.state != JobState.CLAIMED_DONE.value
        return {"expired": len(expired), "verified": verified}
