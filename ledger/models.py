"""The ledger's tables. Every row prsteward keeps lives in one of these.

Conventions:
- states and kinds are stored as plain strings (the ``StrEnum`` classes below name the known
  values), so a new state needs no schema change;
- every datetime is ``UTCDateTime`` (timezone-aware UTC in, timezone-aware UTC out);
- JSON documents are SQLAlchemy ``JSON`` (SQL NULL for None); raw payloads are bytes;
- append-only tables (observation, spend, decision, api_usage) are never updated by the code;
  counters are derived from them, never stored.

Change a table only together with a new Alembic revision in ``ledger/migrations/versions``
(``tests/ledger/test_migrations.py`` fails when the two disagree).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Index, LargeBinary, MetaData, Table, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from ledger.types import BigId, JSONValue, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The ledger's own metadata, separate from SQLModel's default, so nothing else that happens
# to define an SQLModel table ends up in our migrations.
ledger_registry = registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))
metadata = ledger_registry.metadata


class LedgerTable(SQLModel, registry=ledger_registry):
    """Base of every ledger table."""


# --- known values ------------------------------------------------------------------------------


class DeliveryState(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class ObservationSource(StrEnum):
    POLL = "poll"
    WEBHOOK = "webhook"


class PullRequestStateValue(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class CandidateOutcome(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    ESCALATED = "escalated"
    SUPPRESSED_DUPLICATE = "suppressed_duplicate"
    SUPPRESSED_BUDGET = "suppressed_budget"
    SUPPRESSED_COOLDOWN = "suppressed_cooldown"
    SUPPRESSED_BOUNDARY = "suppressed_boundary"
    SUPPRESSED_PAUSED = "suppressed_paused"
    SUPPRESSED_FAMILY = "suppressed_family"
    SHADOW = "shadow"
    FAILED = "failed"


class JobState(StrEnum):
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


class SpendKind(StrEnum):
    RESERVATION = "reservation"
    SPEND = "spend"
    GRANT = "grant"
    RELEASE = "release"


# --- installations and repositories ------------------------------------------------------------


class Installation(LedgerTable, table=True):
    """A GitHub App installation; ``id`` is GitHub's installation id."""

    __tablename__ = "installation"

    id: int = Field(sa_type=BigId, primary_key=True, sa_column_kwargs={"autoincrement": False})
    account_login: str = Field(index=True)
    account_type: str = "Organization"  # Organization | User
    suspended: bool = False
    permissions: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    events: list[str] = Field(default_factory=list, sa_type=JSONValue)
    mode: str | None = None  # shadow | act, when set for the whole installation
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Repository(LedgerTable, table=True):
    """A repository of an installation, with its config and poll state."""

    __tablename__ = "repository"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    full_name: str = Field(unique=True)  # "owner/name"
    github_id: int | None = Field(default=None, sa_type=BigId, index=True)
    installation_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="installation.id", index=True
    )
    default_branch: str = "main"
    archived: bool = False
    private: bool = False
    # Allowlist/ignorelist outcome and removal from the installation.
    ignored: bool = False
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The last valid config stays in force; a bad one is recorded next to it.
    config: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    config_sha: str | None = None
    config_loaded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    config_error: str | None = None
    config_error_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    config_error_reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Low-return repositories are demoted to watch-only as a whole.
    watch_only: bool = False
    watch_only_reason: str | None = None
    watch_only_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    summary_issue_number: int | None = None
    # Poll state: the cheap change check, then the full sweep.
    poll_etag: str | None = None
    poll_last_modified: str | None = None
    last_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_sweep_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_sweep_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_sweep_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


# --- pull requests and their history -----------------------------------------------------------


class PullRequest(LedgerTable, table=True):
    """The current state of one PR: its latest snapshot and what the policies made of it."""

    __tablename__ = "pull_request"

    __table_args__ = (
        UniqueConstraint("repository_id", "number"),
        # push events: base ref -> open PRs (issue 13, indexed lookups)
        Index(None, "repository_id", "base_ref"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    repository_id: int = Field(sa_type=BigId, foreign_key="repository.id")
    number: int
    node_id: str | None = None
    state: str = Field(default=PullRequestStateValue.OPEN, index=True)
    head_sha: str | None = Field(default=None, index=True)
    base_sha: str | None = None
    # The snapshot's base branch (None: written before revision 0002; read the snapshot).
    base_ref: str | None = None
    author_login: str | None = None
    snapshot: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    fingerprint: str | None = None
    # Hex digest of the GraphQL node ``snapshot`` was normalised from, bound to ``fingerprint``
    # (bot/reconcile.py bound_node_digest), so a restarted reconciler need not normalise an
    # unchanged node again. Written with snapshot and fingerprint; None when they came from
    # anything else (a webhook).
    node_digest: str | None = None
    tier: str | None = None
    tier_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    whose_turn: str | None = None
    whose_turn_reason: str | None = None
    # Maintainer switches (/prsteward freeze, pause).
    frozen: bool = False
    paused: bool = False
    sticky_comment_id: int | None = Field(default=None, sa_type=BigId)
    # Set by webhooks: read this PR again on the next cycle.
    dirty: bool = Field(default=False, index=True)
    dirty_reason: str | None = None
    dirty_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_observed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Observation(LedgerTable, table=True):
    """Append-only: a snapshot that differed from the previous one (by fingerprint)."""

    __tablename__ = "observation"

    __table_args__ = (Index(None, "pull_request_id", "observed_at"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    pull_request_id: int = Field(sa_type=BigId, foreign_key="pull_request.id")
    observed_at: datetime = Field(sa_type=UTCDateTime)
    source: str  # ObservationSource
    delivery_id: str | None = None
    fingerprint: str
    head_sha: str | None = None
    snapshot: dict[str, Any] = Field(sa_type=JSONValue)


class PullRequestIssue(LedgerTable, table=True):
    """Issue -> PRs that reference it (closing references of the latest snapshot), so an
    ``issues`` event finds its PRs by index. Rewritten whenever the PR's fingerprint changes."""

    __tablename__ = "pull_request_issue"

    __table_args__ = (
        UniqueConstraint("pull_request_id", "issue_number"),
        Index(None, "repository_id", "issue_number"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    repository_id: int = Field(sa_type=BigId, foreign_key="repository.id")
    pull_request_id: int = Field(sa_type=BigId, foreign_key="pull_request.id")
    issue_number: int


class CodeFingerprint(LedgerTable, table=True):
    """A PR's code-motion fingerprint at one head SHA, computed once per SHA (issue 14)."""

    __tablename__ = "code_fingerprint"

    __table_args__ = (UniqueConstraint("repository_id", "head_sha"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    repository_id: int = Field(sa_type=BigId, foreign_key="repository.id")
    pull_request_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="pull_request.id", index=True
    )
    head_sha: str
    surfaces: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    skeleton: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    computed_at: datetime = Field(sa_type=UTCDateTime)


class Family(LedgerTable, table=True):
    """A same-shape family of PRs and jobs in a repository (issue 14)."""

    __tablename__ = "family"

    __table_args__ = (UniqueConstraint("repository_id", "family_key"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    repository_id: int = Field(sa_type=BigId, foreign_key="repository.id")
    family_key: str
    state: str = "forming"
    state_reason: str | None = None
    tracking_issue_number: int | None = None
    members: list[Any] = Field(default_factory=list, sa_type=JSONValue)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


# --- webhook inbox -----------------------------------------------------------------------------


class WebhookDelivery(LedgerTable, table=True):
    """The inbox: one row per ``X-GitHub-Delivery``; a redelivery is the same row."""

    __tablename__ = "webhook_delivery"

    __table_args__ = (Index(None, "state", "id"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    delivery_id: str = Field(unique=True)
    event: str
    action: str | None = None
    installation_id: int | None = Field(default=None, sa_type=BigId)
    repository_full_name: str | None = None
    received_at: datetime = Field(sa_type=UTCDateTime)
    payload: bytes = Field(sa_type=LargeBinary)
    state: str = DeliveryState.PENDING
    attempts: int = 0
    worker: str | None = None
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = None


class DeliveryRecovery(LedgerTable, table=True):
    """A redelivery prsteward asked GitHub for (issue 13); each GitHub delivery at most once."""

    __tablename__ = "delivery_recovery"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    github_delivery_id: int = Field(sa_type=BigId, unique=True)
    guid: str = Field(index=True)
    event: str | None = None
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    github_status: str | None = None
    requested_at: datetime = Field(sa_type=UTCDateTime)
    http_status: int | None = None
    error: str | None = None


# --- decisions, candidates, actions ------------------------------------------------------------


class Decision(LedgerTable, table=True):
    """Append-only: tier changes, stop-loss and other explained decisions."""

    __tablename__ = "decision"

    __table_args__ = (Index(None, "pull_request_id", "decided_at"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    repository_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="repository.id", index=True
    )
    pull_request_id: int | None = Field(default=None, sa_type=BigId, foreign_key="pull_request.id")
    kind: str = Field(index=True)  # tier | stop_loss | whose_turn | config | family | ...
    rule_id: str
    reason: str
    from_value: str | None = None
    to_value: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    decided_at: datetime = Field(sa_type=UTCDateTime)


class Candidate(LedgerTable, table=True):
    """Every action the policies proposed, and what became of it."""

    __tablename__ = "candidate"

    __table_args__ = (Index(None, "pull_request_id", "created_at"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    dedupe_key: str = Field(index=True)
    repository_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="repository.id", index=True
    )
    pull_request_id: int | None = Field(default=None, sa_type=BigId, foreign_key="pull_request.id")
    kind: str  # comment | label | rerun | close | remind | escalate | ...
    rule_id: str
    reason: str
    outcome: str = Field(default=CandidateOutcome.PENDING, index=True)
    outcome_reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    created_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Action(LedgerTable, table=True):
    """What was actually done on GitHub for a candidate."""

    __tablename__ = "action"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    candidate_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="candidate.id", index=True
    )
    repository_id: int | None = Field(default=None, sa_type=BigId, foreign_key="repository.id")
    pull_request_id: int | None = Field(default=None, sa_type=BigId, foreign_key="pull_request.id")
    kind: str
    github_id: str | None = None  # the id GitHub returned (comment id, ...), as text
    status: str  # started | done | failed
    http_status: int | None = None
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    performed_at: datetime = Field(sa_type=UTCDateTime)


# --- escalations and spend ---------------------------------------------------------------------


class EscalationJob(LedgerTable, table=True):
    """A bounded job handed to an agent; see ``JobState`` for its life cycle."""

    __tablename__ = "escalation_job"

    __table_args__ = (
        UniqueConstraint(
            "repository_id",
            "pull_request_id",
            "trigger_fingerprint",
            "attempt",
            name="uq_escalation_job_trigger_attempt",
        ),
        Index(None, "state", "lease_expires_at"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    repository_id: int = Field(sa_type=BigId, foreign_key="repository.id")
    pull_request_id: int = Field(sa_type=BigId, foreign_key="pull_request.id", index=True)
    candidate_id: int | None = Field(default=None, sa_type=BigId, foreign_key="candidate.id")
    family_id: int | None = Field(default=None, sa_type=BigId, foreign_key="family.id")
    trigger_kind: str
    trigger_fingerprint: str
    size_class: str | None = None
    state: str = Field(default=JobState.DETECTED)
    state_reason: str | None = None
    brief: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    budget_tokens: int | None = Field(default=None, sa_type=BigId)
    budget_dollars: float | None = None
    attempt: int = 1
    max_attempts: int = 2
    start_head_sha: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    announced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    flags: list[str] = Field(default_factory=list, sa_type=JSONValue)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class EscalationAttempt(LedgerTable, table=True):
    """One run of an agent on a job: what it claimed, and what the done-oracle found."""

    __tablename__ = "escalation_attempt"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    job_id: int = Field(sa_type=BigId, foreign_key="escalation_job.id", index=True)
    agent_id: int | None = Field(default=None, sa_type=BigId, foreign_key="agent.id")
    delivery: str | None = None  # pull | push | command
    started_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_outcome: str | None = None  # done | failed | blocked
    report: dict[str, Any] | None = Field(default=None, sa_type=JSONValue)
    pushed_shas: list[str] = Field(default_factory=list, sa_type=JSONValue)
    verdict: str | None = None
    verdict_reason: str | None = None
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Spend(LedgerTable, table=True):
    """Append-only money and tokens; every counter is a sum over these rows."""

    __tablename__ = "spend"

    __table_args__ = (
        Index(None, "repository_id", "at"),
        Index(None, "installation_id", "at"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    job_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="escalation_job.id", index=True
    )
    attempt_id: int | None = Field(default=None, sa_type=BigId, foreign_key="escalation_attempt.id")
    repository_id: int | None = Field(default=None, sa_type=BigId, foreign_key="repository.id")
    pull_request_id: int | None = Field(default=None, sa_type=BigId, foreign_key="pull_request.id")
    installation_id: int | None = Field(default=None, sa_type=BigId)
    kind: str  # SpendKind
    tokens_in: int = Field(default=0, sa_type=BigId)
    tokens_out: int = Field(default=0, sa_type=BigId)
    tokens_cached_in: int = Field(default=0, sa_type=BigId)
    dollars: float = 0.0
    model: str | None = None
    note: str | None = None
    at: datetime = Field(sa_type=UTCDateTime)


class Agent(LedgerTable, table=True):
    """An agent allowed to lease jobs; only a hash of its bearer token is kept."""

    __tablename__ = "agent"

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    name: str = Field(unique=True)
    token_hash: str = Field(unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- limits, boundaries, commands --------------------------------------------------------------


class ApiUsage(LedgerTable, table=True):
    """Append-only rate-limit samples per installation and resource (core, graphql, ...)."""

    __tablename__ = "api_usage"

    __table_args__ = (Index(None, "installation_id", "resource", "sampled_at"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    installation_id: int | None = Field(default=None, sa_type=BigId)
    resource: str
    limit: int | None = None  # "limit" is quoted by SQLAlchemy; ledger/watching.py uses it
    remaining: int | None = None
    used: int | None = None
    cost: int | None = None
    reset_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    requests: int = 0
    sampled_at: datetime = Field(sa_type=UTCDateTime)


class PermissionBoundary(LedgerTable, table=True):
    """A write GitHub denied: that action kind is not attempted there until lifted."""

    __tablename__ = "permission_boundary"

    __table_args__ = (
        Index("ix_permission_boundary_scope", "installation_id", "repository_id", "action_kind"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    installation_id: int | None = Field(default=None, sa_type=BigId)
    repository_id: int | None = Field(default=None, sa_type=BigId, foreign_key="repository.id")
    action_kind: str
    http_status: int | None = None
    message: str
    accepted_permissions: str | None = None  # x-accepted-github-permissions, verbatim
    since: datetime = Field(sa_type=UTCDateTime)
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    suppressed_count: int = 0
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_reason: str | None = None


class MaintainerCommand(LedgerTable, table=True):
    """A ``/prsteward ...`` command from a PR comment; each comment is handled once."""

    __tablename__ = "maintainer_command"

    __table_args__ = (UniqueConstraint("repository_id", "comment_id"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    repository_id: int = Field(sa_type=BigId, foreign_key="repository.id")
    pull_request_id: int | None = Field(default=None, sa_type=BigId, foreign_key="pull_request.id")
    comment_id: int = Field(sa_type=BigId)
    author_login: str
    command: str
    args: list[str] = Field(default_factory=list, sa_type=JSONValue)
    accepted: bool
    reason: str | None = None
    effect: str | None = None
    at: datetime = Field(sa_type=UTCDateTime)


ALL_TABLES = tuple(metadata.sorted_tables)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model, whose ``.c`` columns type-check in SQL expressions."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]
