"""What the ledger remembers about one PR (and its repository), handed to the policies as data.

Plain frozen values: the ledger builds them, the policies only read them. Nothing here reads a
clock or a database. Times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class JobState(StrEnum):
    """An escalation job's state; the same strings as the ledger's ``JobState``."""

    DETECTED = "DETECTED"
    SUPPRESSED = "SUPPRESSED"
    QUEUED = "QUEUED"
    LEASED = "LEASED"
    RUNNING = "RUNNING"
    CLAIMED_DONE = "CLAIMED_DONE"
    VERIFYING = "VERIFYING"
    VERIFIED_DONE = "VERIFIED_DONE"
    VERIFY_FAILED = "VERIFY_FAILED"
    NEEDS_HUMAN = "NEEDS_HUMAN"
    BLOCKED = "BLOCKED"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    SUPERSEDED = "SUPERSEDED"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    CANCELLED = "CANCELLED"


# A job in one of these states is still working (or waiting to): no second job on the same PR.
IN_FLIGHT_STATES = frozenset(
    {
        JobState.DETECTED,
        JobState.QUEUED,
        JobState.LEASED,
        JobState.RUNNING,
        JobState.CLAIMED_DONE,
        JobState.VERIFYING,
    }
)
# States that count as a failed verification for the circuit breaker.
FAILED_VERIFICATION_STATES = frozenset(
    {JobState.VERIFY_FAILED, JobState.BUDGET_EXHAUSTED, JobState.NEEDS_HUMAN}
)
# States that never count as an attempt (the job never ran).
NOT_ATTEMPTED_STATES = frozenset({JobState.SUPPRESSED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """A candidate the policies proposed earlier, and what became of it."""

    key: str
    kind: str
    outcome: str  # pending | posted | escalated | suppressed_* | shadow | failed
    at: datetime


# Outcomes that mean "done on GitHub": the same key is then a duplicate. Shadow is not: a switch
# to act mode must still perform (and wait for) what shadow mode only recorded.
DONE_OUTCOMES = frozenset({"posted", "escalated"})


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One escalation job on this PR (or, in ``repository_jobs``, in this repository)."""

    trigger_kind: str
    fingerprint: str
    state: JobState
    created_at: datetime
    finished_at: datetime | None = None
    pull_number: int | None = None
    dollars_spent: float = 0.0
    tokens_spent: int = 0
    dollars_budget: float | None = None
    tokens_budget: int | None = None
    failure_signature: str | None = None  # what failed, as the oracle named it
    check_names: tuple[str, ...] = ()  # the failing checks the job was about
    files: tuple[str, ...] = ()  # the files the job touched
    size_class: str | None = None

    @property
    def shape(self) -> str:
        """Trigger kind, failing checks and files: what makes two escalations 'the same'."""
        checks = ",".join(sorted(self.check_names)) or "-"
        files = ",".join(sorted(self.files)) or "-"
        return f"{self.trigger_kind}[checks={checks}; files={files}]"


@dataclass(frozen=True, slots=True)
class NoticeRecord:
    """A notice prsteward posted on the PR (remind, draft, stale/close notice, reviewer reminder)."""

    kind: str  # a CandidateKind value
    at: datetime


@dataclass(frozen=True, slots=True)
class Commands:
    """Maintainer commands in effect on this PR (``/prsteward freeze|pause|escalate``)."""

    frozen: bool = False
    paused: bool = False
    escalate_comment_id: int | None = None  # a pending /prsteward escalate, by comment id


@dataclass(frozen=True, slots=True)
class PullRequestHistory:
    """Everything the ledger knows about one PR that the snapshot does not say."""

    candidates: tuple[CandidateRecord, ...] = ()
    jobs: tuple[JobRecord, ...] = ()  # this PR's jobs, oldest first
    repository_jobs: tuple[JobRecord, ...] = ()  # recent jobs in the repository, oldest first
    last_bot_action_at: datetime | None = None  # prsteward's last write on this PR
    last_comment_at: datetime | None = None  # prsteward's last new comment on this PR
    tier: str | None = None
    tier_since: datetime | None = None
    notices: tuple[NoticeRecord, ...] = ()
    reruns: tuple[str, ...] = ()  # trigger fingerprints already re-run once
    commands: Commands = Commands()
    sticky_comment_id: int | None = None
    sticky_content_hash: str | None = None
    labels_added_by_bot: tuple[str, ...] = ()

    def done_keys(self) -> frozenset[str]:
        """Candidate keys already performed on GitHub (posted or escalated)."""
        return frozenset(c.key for c in self.candidates if c.outcome in DONE_OUTCOMES)

    def last_notice(self, kind: str) -> NoticeRecord | None:
        found = [n for n in self.notices if n.kind == kind]
        return max(found, key=lambda n: n.at) if found else None


EMPTY_HISTORY = PullRequestHistory()


@dataclass(frozen=True, slots=True)
class SpendSummary:
    """Dollars (and tokens) already spent, per scope. None = unknown, and unknown fails closed."""

    pr_dollars: float | None = None
    repository_today_dollars: float | None = None
    installation_today_dollars: float | None = None
    installation_last_hour_dollars: float | None = None
    pr_tokens: int | None = None


UNKNOWN_SPEND = SpendSummary()
NO_SPEND = SpendSummary(0.0, 0.0, 0.0, 0.0, 0)
