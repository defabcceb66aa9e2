"""No-progress detection for running jobs (issue 11 item 3). Pure.

Budget is a secondary signal; GitHub's state is the primary one. A job whose reported spend keeps
growing across heartbeats while GitHub shows no new commit, no check change and no new comment is
flagged ``no-progress``, and stopped at the first heartbeat past half its budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from policies.budgets import JobBudget

NO_PROGRESS_FLAG = "no-progress"
STOP_AT_BUDGET_SHARE = 0.5
MIN_SILENT_HEARTBEATS = 2  # spend must grow across at least this many heartbeats


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One heartbeat: what the agent reports spent, and what GitHub shows at that moment."""

    at: datetime
    dollars_spent: float
    tokens_used: int
    head_sha: str
    checks_fingerprint: str  # e.g. a hash of (check name, outcome) pairs at the head
    comment_count: int


@dataclass(frozen=True, slots=True)
class ProgressVerdict:
    stop: bool
    flags: tuple[str, ...]
    rule_id: str
    reason: str


def _observable(beat: Heartbeat) -> tuple[str, str, int]:
    return beat.head_sha, beat.checks_fingerprint, beat.comment_count


def budget_share(beat: Heartbeat, budget: JobBudget) -> float:
    tokens = beat.tokens_used / budget.tokens if budget.tokens > 0 else 1.0
    dollars = beat.dollars_spent / budget.dollars if budget.dollars > 0 else 1.0
    return max(tokens, dollars)


def check_progress(heartbeats: Sequence[Heartbeat], budget: JobBudget) -> ProgressVerdict:
    """Judge the newest heartbeat against the last one where GitHub showed a change."""
    if not heartbeats:
        return ProgressVerdict(False, (), "progress.none-yet", "no heartbeat yet")
    latest = heartbeats[-1]
    changed_at = 0
    for index in range(1, len(heartbeats)):
        if _observable(heartbeats[index]) != _observable(heartbeats[index - 1]):
            changed_at = index
    silent = heartbeats[changed_at:]
    grew = [
        later
        for earlier, later in pairwise(silent)
        if later.dollars_spent > earlier.dollars_spent or later.tokens_used > earlier.tokens_used
    ]
    share = budget_share(latest, budget)
    if len(grew) < MIN_SILENT_HEARTBEATS:
        return ProgressVerdict(
            False, (), "progress.ok", f"GitHub shows activity; {share:.0%} of the budget spent"
        )
    reason = f"spend grew across {len(grew)} heartbeats with no new commit, check change or comment"
    if share > STOP_AT_BUDGET_SHARE:
        return ProgressVerdict(
            True,
            (NO_PROGRESS_FLAG,),
            "progress.stop",
            f"{reason}; {share:.0%} of the budget spent: stop",
        )
    return ProgressVerdict(False, (NO_PROGRESS_FLAG,), "progress.flagged", reason)
