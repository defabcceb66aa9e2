"""The done-oracle: did the agent's job really work? Decided from GitHub's state, never the claim.

Inputs: the job's starting state (what the trigger was), the agent's claim (recorded, not
trusted) and a fresh snapshot read after the report. Output: one verdict with a rule id, a reason,
flags and, for failures, a signature the stop-loss compares across attempts.

    failing CI      pushed SHA is the head, after the starting SHA; the fingerprinted checks are
                    green and nothing else fails
    conflict        mergeable is MERGEABLE
    review/comment  the PR is awaiting the reviewer again (pushed or answered, reviewer
                    re-requested); only the reviewer's own action clears the trigger itself
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from policies.config import Config, TriggerKind, bare_login
from policies.snapshot import CheckOutcome, Mergeable, PullRequestSnapshot, PullRequestState
from policies.triggers import is_app, metadata_problems

BUDGET_LEFT_FLAG_THRESHOLD = 0.20  # a false done-claim with > 20% budget left is flagged


class Verdict(StrEnum):
    VERIFIED_DONE = "VERIFIED_DONE"
    VERIFY_FAILED = "VERIFY_FAILED"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    BLOCKED = "BLOCKED"
    SUPERSEDED = "SUPERSEDED"
    PENDING = "PENDING"  # GitHub has not finished (checks running, mergeability unknown): ask later


class ClaimedOutcome(StrEnum):
    DONE = "done"
    BLOCKED = "blocked"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobStart:
    """What the job was about when it started."""

    trigger_kind: TriggerKind
    fingerprint: str
    start_head_sha: str
    started_at: datetime
    budget_tokens: int
    budget_dollars: float
    failing_checks: tuple[str, ...] = ()  # the fingerprinted checks (failing CI)
    reviewer: str | None = None  # who requested changes / gave feedback


@dataclass(frozen=True, slots=True)
class AgentClaim:
    """The agent's report: recorded, never trusted."""

    outcome: ClaimedOutcome
    pushed_shas: tuple[str, ...] = ()
    tokens_used: int = 0
    dollars_spent: float = 0.0
    blocker_evidence: tuple[str, ...] = ()  # links, error text: what makes a block checkable


@dataclass(frozen=True, slots=True)
class OracleVerdict:
    verdict: Verdict
    rule_id: str
    reason: str
    flags: tuple[str, ...] = ()
    failure_signature: str | None = None


class _Cleared(StrEnum):
    YES = "yes"
    NO = "no"
    PENDING = "pending"


def budget_used(start: JobStart, claim: AgentClaim) -> float:
    """The larger of the token and dollar fractions spent (0 budget counts as fully spent)."""
    tokens = claim.tokens_used / start.budget_tokens if start.budget_tokens > 0 else 1.0
    dollars = claim.dollars_spent / start.budget_dollars if start.budget_dollars > 0 else 1.0
    return max(0.0, tokens, dollars)


def _ci_cleared(start: JobStart, snapshot: PullRequestSnapshot) -> tuple[_Cleared, str]:
    by_name = {c.name: c.outcome for c in snapshot.checks}
    failing = sorted(n for n, o in by_name.items() if o is CheckOutcome.FAILURE)
    if failing:
        return _Cleared.NO, "failing_ci: " + ",".join(failing)
    watched = start.failing_checks or tuple(by_name)
    # Any check still running may yet be a new failure: wait for all of them.
    pending = [n for n in watched if by_name.get(n) is None] + [
        n for n, o in by_name.items() if o is CheckOutcome.PENDING
    ]
    if pending:
        return _Cleared.PENDING, "checks not finished: " + ",".join(sorted(pending))
    not_green = [n for n in watched if by_name.get(n) is not CheckOutcome.SUCCESS]
    if not_green:
        return _Cleared.NO, "not green: " + ",".join(sorted(not_green))
    return _Cleared.YES, "the fingerprinted checks are green and nothing fails"


def _awaiting_reviewer(
    start: JobStart, claim: AgentClaim, snapshot: PullRequestSnapshot, config: Config
) -> tuple[_Cleared, str]:
    pushed = snapshot.head_sha != start.start_head_sha and snapshot.head_sha in claim.pushed_shas
    answered = any(
        c.created_at > start.started_at
        and (bare_login(c.author.login) in config.agent_names or is_app(c.author.login, config))
        for c in snapshot.comments
    )
    if not (pushed or answered):
        return _Cleared.NO, "review_feedback: neither a push nor an answer since the job started"
    if start.trigger_kind is TriggerKind.CHANGES_REQUESTED and start.reviewer is not None:
        re_requested = start.reviewer in snapshot.review_requests
        if not re_requested and snapshot.review_decision == "CHANGES_REQUESTED":
            return _Cleared.NO, f"review_feedback: {start.reviewer} was not re-requested"
    return _Cleared.YES, "awaiting the reviewer: only the reviewer's own action closes it"


def trigger_cleared(
    start: JobStart, claim: AgentClaim, snapshot: PullRequestSnapshot, config: Config
) -> tuple[_Cleared, str]:
    """Does GitHub show the job's trigger as handled?"""
    kind = start.trigger_kind
    if kind in {TriggerKind.FAILING_CI, TriggerKind.FLAKY_CI}:
        return _ci_cleared(start, snapshot)
    if kind is TriggerKind.CONFLICT:
        if snapshot.mergeable is Mergeable.MERGEABLE:
            return _Cleared.YES, "mergeable is MERGEABLE"
        if snapshot.mergeable is Mergeable.UNKNOWN:
            return _Cleared.PENDING, "mergeability is still being computed"
        return _Cleared.NO, "conflict: still CONFLICTING"
    if kind is TriggerKind.STALE_METADATA:
        problems = metadata_problems(snapshot, config)
        if problems:
            return _Cleared.NO, "stale_metadata: " + "; ".join(problems)
        return _Cleared.YES, "the metadata checks pass"
    return _awaiting_reviewer(start, claim, snapshot, config)


_NEEDS_PUSH = frozenset({TriggerKind.FAILING_CI, TriggerKind.FLAKY_CI, TriggerKind.CONFLICT})


def verify(
    start: JobStart,
    claim: AgentClaim,
    snapshot: PullRequestSnapshot,
    config: Config,
    start_is_ancestor: bool | None = None,
) -> OracleVerdict:
    """Decide the job's outcome from GitHub's state. ``start_is_ancestor``: whether the starting
    SHA is an ancestor of the head (the compare API), when the shell asked; None = not asked."""
    used = budget_used(start, claim)
    left = max(0.0, 1.0 - used)
    if snapshot.state is not PullRequestState.OPEN:
        return OracleVerdict(
            Verdict.SUPERSEDED, "oracle.pr-closed", f"the PR is {snapshot.state.value.lower()}"
        )
    moved = snapshot.head_sha != start.start_head_sha
    if moved and snapshot.head_sha not in claim.pushed_shas:
        return OracleVerdict(
            Verdict.SUPERSEDED,
            "oracle.someone-else-pushed",
            f"the head {snapshot.head_sha[:7]} was not pushed by the agent",
        )
    cleared, detail = trigger_cleared(start, claim, snapshot, config)
    if claim.outcome is ClaimedOutcome.BLOCKED:
        if claim.blocker_evidence:
            return OracleVerdict(
                Verdict.BLOCKED,
                "oracle.blocked",
                "blocked, with evidence: " + claim.blocker_evidence[0],
            )
        return OracleVerdict(
            Verdict.VERIFY_FAILED,
            "oracle.blocked-without-evidence",
            "a blocked claim without evidence is rejected",
            ("blocked-without-evidence",),
            "blocked-without-evidence",
        )
    if cleared is _Cleared.YES and not moved and start.trigger_kind in _NEEDS_PUSH:
        return OracleVerdict(
            Verdict.SUPERSEDED,
            "oracle.cleared-by-itself",
            f"the trigger cleared without a push: {detail}",
        )
    if cleared is _Cleared.YES and start.trigger_kind in _NEEDS_PUSH and start_is_ancestor is False:
        return OracleVerdict(
            Verdict.VERIFY_FAILED,
            "oracle.history-rewritten",
            "the head does not descend from the starting SHA (force-push)",
            ("history-rewritten",),
            "history-rewritten",
        )
    if cleared is _Cleared.YES:
        if claim.outcome is ClaimedOutcome.DONE:
            return OracleVerdict(Verdict.VERIFIED_DONE, "oracle.verified", detail)
        # The agent gave up but GitHub says it worked: still done; note the odd claim.
        return OracleVerdict(
            Verdict.VERIFIED_DONE, "oracle.verified", detail, ("claim-disagrees-with-github",)
        )
    if cleared is _Cleared.PENDING:  # spent or not, GitHub decides once it has finished
        return OracleVerdict(Verdict.PENDING, "oracle.pending", detail)
    if used >= 1.0:
        return OracleVerdict(
            Verdict.BUDGET_EXHAUSTED,
            "oracle.budget-exhausted",
            f"budget spent ({used:.0%}) and the trigger still stands: {detail}",
            ("budget-exhausted",),
            detail,
        )
    flags: tuple[str, ...] = ()
    if claim.outcome is ClaimedOutcome.DONE and left > BUDGET_LEFT_FLAG_THRESHOLD:
        flags = ("done-claim-with-budget-left",)
    reason = f"not done: {detail}"
    if (
        claim.outcome is ClaimedOutcome.DONE
        and moved is False
        and start.trigger_kind in _NEEDS_PUSH
    ):
        reason = f"claimed done but nothing was pushed; {detail}"
    return OracleVerdict(Verdict.VERIFY_FAILED, "oracle.not-done", reason, flags, detail)
