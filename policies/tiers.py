"""Tiers and whose turn it is: small named rules over one snapshot.

The tier diagram is drawn once, in docs/policies.md#tiers::

    closed   <- the PR is not open
    exempt   <- exempt label/author/milestone/assignee, draft, frozen, or not in only-labels
    closing  <- linked issue closed as not planned, or the author's silence (while it is the
                author's turn) passed days-before-pr-stale, or the close notice is out
    zombie   <- conflicting or failing, and no human activity for days-before-zombie
    signal   <- a trigger is present
    active   <- otherwise: healthy, waiting for review or CI

Each rule returns its verdict with a rule id and a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from policies.config import Config, GentleStep, TriggerKind
from policies.history import NoticeRecord, PullRequestHistory
from policies.snapshot import CheckOutcome, PullRequestSnapshot, PullRequestState
from policies.triggers import (
    Trigger,
    author_last_action,
    has_conflict,
    is_command,
    is_trusted_voice,
    last_human_activity,
)

DAY = timedelta(days=1)


class Tier(StrEnum):
    ACTIVE = "active"
    SIGNAL = "signal"
    ZOMBIE = "zombie"
    CLOSING = "closing"
    EXEMPT = "exempt"
    CLOSED = "closed"


class Turn(StrEnum):
    AUTHOR = "author"
    MAINTAINERS = "maintainers"
    CI = "ci"
    NOBODY = "nobody"


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """Whose move it is, and the event that made it so."""

    turn: Turn
    rule_id: str
    reason: str
    at: datetime | None = None  # when the event happened, when known
    # On the author's turn: where the stale clock starts (see ``author_silence_start``).
    silence_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class TierVerdict:
    tier: Tier
    rule_id: str
    reason: str


def days_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier) / DAY


def is_authors_draft(snapshot: PullRequestSnapshot, history: PullRequestHistory) -> bool:
    """A draft the author chose. A PR prsteward converted to draft (a gentle step) is still
    waiting on its author, so its steps go on."""
    return snapshot.is_draft and history.last_notice("convert_to_draft") is None


# --- exemptions ---------------------------------------------------------------------------------


def exemption(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, config: Config
) -> tuple[str, str] | None:
    """(rule id, reason) when the PR is exempt from lifecycle and escalation, else None."""
    if history.commands.frozen:
        return "exempt.frozen", "a maintainer froze this PR (/prsteward freeze)"
    labels = snapshot.labels
    if labels:
        if config.labels.frozen in labels:
            return "exempt.frozen", f"labelled {config.labels.frozen}"
        exempt_labels = sorted(set(labels) & set(config.exempt_pr_labels))
        if exempt_labels:
            return "exempt.label", f"labelled {', '.join(exempt_labels)} (exempt-pr-labels)"
    if config.exempt_pr_authors and snapshot.author.login.lower() in {
        a.lower() for a in config.exempt_pr_authors
    }:
        return "exempt.author", f"author {snapshot.author.login} is in exempt-pr-authors"
    if snapshot.milestone is not None and (
        config.exempt_all_pr_milestones or snapshot.milestone in config.exempt_pr_milestones
    ):
        return "exempt.milestone", f"in milestone {snapshot.milestone}"
    if config.exempt_all_pr_assignees and snapshot.assignees:
        return "exempt.assignees", "has assignees (exempt-all-pr-assignees)"
    exempt_assignees = (
        sorted(set(snapshot.assignees) & set(config.exempt_pr_assignees))
        if snapshot.assignees and config.exempt_pr_assignees
        else []
    )
    if exempt_assignees:
        return (
            "exempt.assignees",
            f"assigned to {', '.join(exempt_assignees)} (exempt-pr-assignees)",
        )
    if config.exempt_draft_pr and is_authors_draft(snapshot, history):
        return "exempt.draft", "draft PR (exempt-draft-pr)"
    missing = [label for label in config.only_labels if label not in labels]
    if missing:
        return "exempt.only-labels", f"lacks {', '.join(missing)} (only-labels)"
    return None


def intent_to_merge(
    snapshot: PullRequestSnapshot, config: Config, maintainers: frozenset[str]
) -> str | None:
    """Why this PR must never be closed (approved, auto-merge, maintainer-owned linked issue)."""
    if snapshot.review_decision == "APPROVED":
        return "approved"
    if snapshot.auto_merge_enabled:
        return "auto-merge is enabled"
    confirmed = {m.lower() for m in maintainers | set(config.maintainers)}
    for issue in snapshot.linked_issues:
        owners = [a for a in issue.assignees if a.lower() in confirmed]
        if issue.state.upper() == "OPEN" and owners:
            return f"linked open issue #{issue.number} is assigned to maintainer {owners[0]}"
    return None


# --- whose turn ---------------------------------------------------------------------------------


def whose_turn(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    triggers: tuple[Trigger, ...],
    maintainers: frozenset[str] = frozenset(),
) -> TurnEvent:
    """Author, maintainers, CI or nobody, with the event that made it so (issue 12 item 1)."""
    if snapshot.state is not PullRequestState.OPEN:
        return TurnEvent(Turn.NOBODY, "turn.closed", f"PR is {snapshot.state.value.lower()}")
    if is_authors_draft(snapshot, history):
        return TurnEvent(Turn.NOBODY, "turn.draft", "draft: the author is still working")
    exempt = exemption(snapshot, history, config)
    if exempt is not None:
        return TurnEvent(Turn.NOBODY, "turn.exempt", exempt[1])
    by_kind = {t.kind: t for t in triggers}
    author_at = author_last_action(snapshot)

    def authors_turn(
        rule_id: str, reason: str, at: datetime | None, starts_clock: bool = True
    ) -> TurnEvent:
        start = at if starts_clock and at is not None and at > author_at else author_at
        return TurnEvent(Turn.AUTHOR, rule_id, reason, at, start)

    if config.labels.waiting_on_author in snapshot.labels:
        return authors_turn(
            "turn.waiting-label", f"labelled {config.labels.waiting_on_author}", None
        )
    for kind in (TriggerKind.CONFLICT, TriggerKind.FAILING_CI, TriggerKind.FLAKY_CI):
        if kind in by_kind:
            trigger = by_kind[kind]
            # A check re-run (by a bot, on the same head) must not restart the author's clock:
            # for CI and conflicts the clock is the author's own last action.
            return authors_turn(f"turn.{kind.value}", trigger.reason, trigger.at, False)
    if TriggerKind.CHANGES_REQUESTED in by_kind:
        trigger = by_kind[TriggerKind.CHANGES_REQUESTED]
        return authors_turn("turn.changes-requested", trigger.reason, trigger.at)
    questions = [
        c
        for c in snapshot.comments
        if c.created_at > author_at
        and c.author.login != snapshot.author.login
        and is_trusted_voice(c.author, config, maintainers)
        and not is_command(c)
    ]
    if questions:
        newest = max(questions, key=lambda c: (c.created_at, c.id))
        return authors_turn(
            "turn.maintainer-comment",
            f"{newest.author.login} commented after the author's last action",
            newest.created_at,
        )
    if any(c.outcome is CheckOutcome.PENDING for c in snapshot.checks) or (
        snapshot.checks_state in {"PENDING", "EXPECTED"}
    ):
        return TurnEvent(Turn.CI, "turn.ci-pending", "checks are still running", author_at)
    if snapshot.review_requests:
        who = ", ".join(snapshot.review_requests)
        reason = f"review requested from {who}"
    else:
        reason = "the author moved last; waiting for a maintainer"
    return TurnEvent(Turn.MAINTAINERS, "turn.maintainers", reason, author_at)


def author_silence_start(snapshot: PullRequestSnapshot, turn: TurnEvent) -> datetime:
    """Where the stale clock starts: the author's last action, or the moment the turn passed to
    the author if that came later (a PR that waited on maintainers is not stale on arrival)."""
    if turn.silence_start is not None:
        return turn.silence_start  # whose_turn worked it out already
    start = author_last_action(snapshot)
    if turn.at is not None and turn.at > start:
        return turn.at
    return start


# --- tiers --------------------------------------------------------------------------------------


def not_planned_issue(snapshot: PullRequestSnapshot) -> int | None:
    """A linked issue closed as not planned: the PR's reason to exist is gone."""
    for issue in sorted(snapshot.linked_issues, key=lambda i: i.number):
        if issue.state.upper() == "CLOSED" and (issue.state_reason or "").upper() == "NOT_PLANNED":
            return issue.number
    return None


def is_zombie(snapshot: PullRequestSnapshot, config: Config, now: datetime) -> bool:
    """Conflicting or failing, and no person has pushed, commented or reviewed for
    days-before-zombie."""
    if not (has_conflict(snapshot) or snapshot.failing_checks):
        return False
    return days_between(last_human_activity(snapshot, config), now) >= config.days_before_zombie


def current_close_notice(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    silence_start: datetime,
) -> NoticeRecord | None:
    """The close notice of the current stale episode: posted during this silence, or still
    marked by the stale label (an author reply that leaves the turn with the author delays the
    close, it does not forget the notice). Once the stale label is gone (the turn passed to the
    maintainers, or a person removed it) an older notice no longer counts."""
    notice = history.last_notice("close_notice")
    if notice is None:
        return None
    if notice.at >= silence_start or config.stale_pr_label in snapshot.labels:
        return notice
    return None


def is_closing_by_silence(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    turn: TurnEvent,
    now: datetime,
    maintainers: frozenset[str],
) -> bool:
    """The author has been silent past days-before-pr-stale while it is their turn (or the close
    notice is already out), and nothing says the PR is meant to merge."""
    if turn.turn is not Turn.AUTHOR or GentleStep.STALE not in config.gentle_steps:
        return False
    if intent_to_merge(snapshot, config, maintainers) is not None:
        return False
    start = author_silence_start(snapshot, turn)
    if current_close_notice(snapshot, history, config, start) is not None:
        return True
    return days_between(start, now) >= config.days_before_pr_stale


def classify(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    triggers: tuple[Trigger, ...],
    turn: TurnEvent,
    now: datetime,
    maintainers: frozenset[str] = frozenset(),
) -> TierVerdict:
    """The PR's tier; the first rule that holds wins (see the diagram above)."""
    if snapshot.state is not PullRequestState.OPEN:
        return TierVerdict(Tier.CLOSED, "tier.closed", f"PR is {snapshot.state.value.lower()}")
    exempt = exemption(snapshot, history, config)
    if exempt is not None:
        return TierVerdict(Tier.EXEMPT, exempt[0], exempt[1])
    issue = not_planned_issue(snapshot)
    if issue is not None and intent_to_merge(snapshot, config, maintainers) is None:
        return TierVerdict(
            Tier.CLOSING, "tier.closing.not-planned", f"linked issue #{issue} closed as not planned"
        )
    if is_closing_by_silence(snapshot, history, config, turn, now, maintainers):
        silent = days_between(author_silence_start(snapshot, turn), now)
        return TierVerdict(
            Tier.CLOSING,
            "tier.closing.author-silent",
            f"waiting on the author for {silent:.0f} days (days-before-pr-stale "
            f"{config.days_before_pr_stale:g})",
        )
    if is_zombie(snapshot, config, now):
        quiet = days_between(last_human_activity(snapshot, config), now)
        return TierVerdict(
            Tier.ZOMBIE,
            "tier.zombie",
            f"conflicting or failing with no human activity for {quiet:.0f} days "
            f"(days-before-zombie {config.days_before_zombie:g}): watch only",
        )
    if triggers:
        kinds = ", ".join(t.kind.value for t in triggers)
        return TierVerdict(Tier.SIGNAL, "tier.signal", f"triggers present: {kinds}")
    return TierVerdict(Tier.ACTIVE, "tier.active", "healthy: waiting for review or CI")
