"""Stop-loss: the caps that keep a looping or failing agent from burning money.

Attempts are counted per PR and trigger kind, never per head SHA: each failed fix makes a new SHA
(and a new fingerprint), so SHA dedupe alone never stops a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from policies.config import Config, TriggerKind
from policies.history import (
    FAILED_VERIFICATION_STATES,
    IN_FLIGHT_STATES,
    NOT_ATTEMPTED_STATES,
    JobRecord,
    JobState,
    PullRequestHistory,
)
from policies.snapshot import PullRequestSnapshot
from policies.triggers import Trigger

WORKFLOW_DIRS = (".github/workflows/", ".github/actions/")


class Block(StrEnum):
    """Why an escalation may not run; maps onto the candidate's suppression."""

    DUPLICATE = "duplicate"
    IN_FLIGHT = "in_flight"
    COOLDOWN = "cooldown"
    STOP_LOSS = "stop_loss"
    NEEDS_HUMAN = "needs_human"
    CONSOLIDATE = "consolidate"
    CIRCUIT_BREAKER = "circuit_breaker"
    RISK = "risk"


@dataclass(frozen=True, slots=True)
class StopLossHit:
    block: Block
    rule_id: str
    reason: str


def attempted(jobs: tuple[JobRecord, ...]) -> tuple[JobRecord, ...]:
    """Jobs that ran (or were about to): suppressed and cancelled ones never count."""
    return tuple(j for j in jobs if j.state not in NOT_ATTEMPTED_STATES)


def attempts_since_verified(jobs: tuple[JobRecord, ...], kind: str) -> int:
    """Attempts at ``kind`` on this PR since its last verified fix, whatever the SHA."""
    count = 0
    for job in attempted(jobs):
        if job.trigger_kind != kind:
            continue
        count = 0 if job.state is JobState.VERIFIED_DONE else count + 1
    return count


def touches_workflows(snapshot: PullRequestSnapshot) -> bool:
    """The PR changes CI workflow files: a human-gated risk class."""
    return any(path.startswith(WORKFLOW_DIRS) for path in snapshot.changed_paths)


def same_failure_repeated(jobs: tuple[JobRecord, ...], limit: int) -> str | None:
    """The last ``limit`` finished jobs failed with one and the same signature."""
    finished = [j for j in attempted(jobs) if j.state not in IN_FLIGHT_STATES]
    last = finished[-limit:]
    if len(last) < limit or any(j.state is JobState.VERIFIED_DONE for j in last):
        return None
    signatures = {j.failure_signature for j in last}
    if len(signatures) == 1 and None not in signatures:
        return last[-1].failure_signature
    return None


def repeated_shape(jobs: tuple[JobRecord, ...], kind: str, limit: int) -> str | None:
    """The last ``limit`` jobs share one shape (kind, checks, files) and none was verified."""
    last = list(attempted(jobs))[-limit:]
    if len(last) < limit or any(j.state is JobState.VERIFIED_DONE for j in last):
        return None
    shapes = {j.shape for j in last}
    if len(shapes) == 1 and last[-1].trigger_kind == kind:
        return last[-1].shape
    return None


def circuit_open(repository_jobs: tuple[JobRecord, ...], limit: int) -> bool:
    """The repository's last ``limit`` verifications all failed."""
    verdicts = [
        j
        for j in repository_jobs
        if j.state is JobState.VERIFIED_DONE or j.state in FAILED_VERIFICATION_STATES
    ]
    last = verdicts[-limit:]
    return len(last) == limit and all(j.state in FAILED_VERIFICATION_STATES for j in last)


def escalation_block(
    trigger: Trigger,
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    now: datetime,
) -> StopLossHit | None:
    """The first rule that forbids escalating ``trigger`` now, or None."""
    caps = config.stop_loss
    jobs = history.jobs
    if touches_workflows(snapshot) and not config.risk.allow_workflow_files:
        return StopLossHit(
            Block.RISK,
            "risk.workflow-files",
            "the PR touches workflow files; opt in with risk.allow-workflow-files",
        )
    if not jobs and not history.repository_jobs:
        return None  # nothing ever escalated here: no cap can bind (cooldown needs a job too)
    if any(j.fingerprint == trigger.fingerprint for j in jobs):
        return StopLossHit(
            Block.DUPLICATE, "dedupe.escalation", "this trigger fingerprint was escalated already"
        )
    if any(j.state in IN_FLIGHT_STATES for j in jobs):
        return StopLossHit(
            Block.IN_FLIGHT, "stop-loss.in-flight", "another job on this PR is still running"
        )
    signature = same_failure_repeated(jobs, caps.same_failure_signature_limit)
    if signature is not None:
        return StopLossHit(
            Block.NEEDS_HUMAN,
            "stop-loss.same-failure",
            f"the same failure ({signature}) {caps.same_failure_signature_limit} times in a row: "
            "needs a human",
        )
    attempts = attempts_since_verified(jobs, trigger.kind.value)
    if attempts >= caps.max_attempts_per_trigger:
        return StopLossHit(
            Block.STOP_LOSS,
            "stop-loss.attempts",
            f"{attempts} attempts at {trigger.kind.value} on this PR without a verified fix "
            f"(max-attempts-per-trigger {caps.max_attempts_per_trigger})",
        )
    if trigger.kind is TriggerKind.CHANGES_REQUESTED:
        cycles = sum(
            1 for j in attempted(jobs) if j.trigger_kind == TriggerKind.CHANGES_REQUESTED.value
        )
        if cycles >= caps.max_review_fix_cycles:
            return StopLossHit(
                Block.STOP_LOSS,
                "stop-loss.review-cycles",
                f"{cycles} review-fix cycles already (max-review-fix-cycles "
                f"{caps.max_review_fix_cycles})",
            )
    recent = [j for j in attempted(jobs) if now - j.created_at < timedelta(hours=24)]
    if len(recent) >= caps.max_escalations_per_pr_per_day:
        return StopLossHit(
            Block.STOP_LOSS,
            "stop-loss.per-day",
            f"{len(recent)} escalations on this PR in 24 h (max-escalations-per-pr-per-day "
            f"{caps.max_escalations_per_pr_per_day})",
        )
    for scope, scope_jobs in (("PR", jobs), ("repository", history.repository_jobs)):
        shape = repeated_shape(scope_jobs, trigger.kind.value, caps.repeated_shape_limit)
        if shape is not None:
            return StopLossHit(
                Block.CONSOLIDATE,
                "stop-loss.repeated-shape",
                f"{caps.repeated_shape_limit} escalations in this {scope} share the shape "
                f"{shape} and never cleared: consolidate the family",
            )
    if circuit_open(history.repository_jobs, caps.circuit_breaker_failed_verifications):
        return StopLossHit(
            Block.CIRCUIT_BREAKER,
            "stop-loss.circuit-breaker",
            f"the repository's last {caps.circuit_breaker_failed_verifications} verifications "
            "failed: circuit breaker open",
        )
    last_job = max((j.created_at for j in attempted(jobs)), default=None)
    cooldown = timedelta(minutes=config.cooldowns.escalation_minutes)
    if last_job is not None and now - last_job < cooldown:
        return StopLossHit(
            Block.COOLDOWN,
            "cooldown.escalation",
            f"last escalation on this PR was less than {config.cooldowns.escalation_minutes:g} "
            "minutes ago",
        )
    return None
