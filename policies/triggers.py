"""Triggers: the concrete reasons that may justify an agent session, each with a fingerprint.

A fingerprint names *this* occurrence of a trigger, so the same problem never escalates twice:
failing CI = head SHA + sorted failing check names; changes requested = the review id;
conflict = head + base SHA; stale metadata = a hash of the problems found; maintainer feedback =
the comment id. Never a trigger: the App itself in any spelling, other bots unless allowlisted,
users without write access.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from policies.config import Config, TriggerKind, bare_login
from policies.history import PullRequestHistory
from policies.snapshot import (
    WRITE_ASSOCIATIONS,
    Actor,
    CheckOutcome,
    Comment,
    Mergeable,
    PullRequestSnapshot,
)

COMMAND_PREFIX = "/prsteward"


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    fingerprint: str
    rule_id: str
    reason: str
    evidence: tuple[str, ...] = ()  # check names, review/comment ids: what the brief will cite
    at: datetime | None = None  # when the trigger appeared, when known
    actor: str | None = None


def digest(*parts: str) -> str:
    """A short stable hash of ``parts`` (order matters: sort before calling when it should not)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


# --- who counts ---------------------------------------------------------------------------------


def is_app(login: str, config: Config) -> bool:
    """The login is prsteward itself, in any spelling (``app/NAME``, ``NAME[bot]``, ``NAME``)."""
    return bare_login(login) in config.app_names


def is_bot(actor: Actor) -> bool:
    """A bot account (typed Bot, or a ``[bot]`` / ``app/`` login)."""
    if actor.is_bot:
        return True
    login = actor.login.lower()
    return login.endswith("[bot]") or login.startswith("app/")


def is_allowlisted_bot(actor: Actor, config: Config) -> bool:
    return bare_login(actor.login) in config.allowlisted_bot_names


def has_write_access(actor: Actor, config: Config, maintainers: frozenset[str]) -> bool:
    """OWNER/MEMBER/COLLABORATOR, or confirmed through the collaborator-permission API."""
    if actor.association in WRITE_ASSOCIATIONS:
        return True
    login = actor.login.lower()
    if login in config.maintainer_logins:
        return True
    return bool(maintainers) and login in {m.lower() for m in maintainers}


def is_trusted_voice(actor: Actor, config: Config, maintainers: frozenset[str]) -> bool:
    """May this actor's words trigger prsteward? Never the App; bots only when allowlisted;
    humans only with write access."""
    bare = bare_login(actor.login)
    if bare in config.app_names:
        return False
    if is_bot(actor):
        return bare in config.allowlisted_bot_names
    return has_write_access(actor, config, maintainers)


def is_human(actor: Actor, config: Config) -> bool:
    """A person, not a bot and not the App: only people move prsteward's timers."""
    if actor.is_bot:
        return False
    login = actor.login.lower()
    if login.endswith("[bot]") or login.startswith("app/"):
        return False
    return login not in config.app_names


_COMMAND_LINE = re.compile(r"^\s*/prsteward\b", re.IGNORECASE | re.MULTILINE)


def is_command(comment: Comment) -> bool:
    """A comment with a ``/prsteward ...`` line: handled by the command layer, never feedback."""
    body = comment.body
    return "/prsteward" in body.lower() and _COMMAND_LINE.search(body) is not None


# --- small named rules --------------------------------------------------------------------------


def is_flaky(check_name: str, config: Config) -> bool:
    """The check's name matches a configured flaky/transient pattern."""
    name = check_name.lower()
    return any(fnmatchcase(name, pattern.lower()) for pattern in config.flaky_check_patterns)


def failing_check_names(snapshot: PullRequestSnapshot) -> tuple[str, ...]:
    return tuple(sorted({c.name for c in snapshot.checks if c.outcome is CheckOutcome.FAILURE}))


def ci_fingerprint(snapshot: PullRequestSnapshot, names: tuple[str, ...] | None = None) -> str:
    """Head SHA + sorted failing check names (``names`` when already computed)."""
    failing = failing_check_names(snapshot) if names is None else names
    return digest("failing_ci", snapshot.head_sha, *failing)


def has_conflict(snapshot: PullRequestSnapshot) -> bool:
    return snapshot.mergeable is Mergeable.CONFLICTING


def _latest(times: Iterable[datetime | None]) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def author_last_action(snapshot: PullRequestSnapshot) -> datetime:
    """The author's last push, comment or review; never ``updatedAt`` (bots and labels bump it)."""
    login = snapshot.author.login
    latest = snapshot.created_at
    if snapshot.head_committed_at is not None and snapshot.head_committed_at > latest:
        latest = snapshot.head_committed_at
    for comment in snapshot.comments:
        if comment.created_at > latest and comment.author.login == login:
            latest = comment.created_at
    for review in snapshot.reviews:
        at = review.submitted_at
        if at is not None and at > latest and review.author.login == login:
            latest = at
    return latest


def last_human_activity(snapshot: PullRequestSnapshot, config: Config) -> datetime:
    """The last push, comment or review by any person (never a bot, never the App)."""
    latest = snapshot.created_at
    if snapshot.head_committed_at is not None and snapshot.head_committed_at > latest:
        latest = snapshot.head_committed_at
    for comment in snapshot.comments:
        if comment.created_at > latest and is_human(comment.author, config):
            latest = comment.created_at
    for review in snapshot.reviews:
        at = review.submitted_at
        if at is not None and at > latest and is_human(review.author, config):
            latest = at
    return latest


def app_last_action(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, config: Config
) -> datetime | None:
    """prsteward's last write on this PR: the ledger's record, or the App's newest comment."""
    return _latest(
        [history.last_bot_action_at]
        + [c.created_at for c in snapshot.comments if is_app(c.author.login, config)]
    )


def metadata_problems(snapshot: PullRequestSnapshot, config: Config) -> tuple[str, ...]:
    """The configured metadata checks that fail, in a stable order."""
    problems: list[str] = []
    body = snapshot.body.lower()
    for section in config.metadata.required_body_sections:
        if section.lower() not in body:
            problems.append(f"missing body section '{section}'")
    if config.metadata.referenced_issue_closed:
        problems += [
            f"referenced issue #{i.number} is closed"
            for i in sorted(snapshot.linked_issues, key=lambda i: i.number)
            if i.state.upper() == "CLOSED"
        ]
    if config.metadata.unticked_checklist:
        unticked = len(re.findall(r"^\s*[-*] \[ \]", snapshot.body, flags=re.MULTILINE))
        if unticked:
            problems.append(f"{unticked} checklist item(s) unticked")
    return tuple(problems)


# --- the triggers -------------------------------------------------------------------------------


def failing_ci_trigger(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, config: Config
) -> Trigger | None:
    """Failing checks at the head SHA. All-flaky failures are FLAKY_CI (one re-run first) until
    that fingerprint was re-run once."""
    names = failing_check_names(snapshot)
    if not names:
        return None
    fingerprint = ci_fingerprint(snapshot, names)
    at = _latest(c.completed_at for c in snapshot.failing_checks) or snapshot.head_committed_at
    evidence = tuple(
        f"{c.name}: {c.url or '-'}" for c in sorted(snapshot.failing_checks, key=lambda c: c.name)
    )
    all_flaky = all(is_flaky(n, config) for n in names)
    if all_flaky and fingerprint not in history.reruns:
        return Trigger(
            TriggerKind.FLAKY_CI,
            fingerprint,
            "trigger.flaky-ci",
            f"only flaky checks fail at {snapshot.head_sha[:7]} ({', '.join(names)}): re-run once first",
            evidence,
            at,
        )
    why = " (already re-run once)" if all_flaky else ""
    return Trigger(
        TriggerKind.FAILING_CI,
        fingerprint,
        "trigger.failing-ci",
        f"checks fail at {snapshot.head_sha[:7]}: {', '.join(names)}{why}",
        evidence,
        at,
    )


def changes_requested_trigger(
    snapshot: PullRequestSnapshot, config: Config, maintainers: frozenset[str]
) -> Trigger | None:
    """A trusted reviewer's latest review requests changes and the author has not pushed since."""
    if not any(r.state == "CHANGES_REQUESTED" for r in snapshot.reviews):
        return None
    latest_by_reviewer: dict[str, object] = {}
    for review in sorted(
        (r for r in snapshot.reviews if r.submitted_at is not None and r.state != "PENDING"),
        key=lambda r: (r.submitted_at, r.id),
    ):
        if review.state in {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}:
            latest_by_reviewer[review.author.login] = review
    pending = [
        r
        for r in snapshot.reviews
        if latest_by_reviewer.get(r.author.login) is r
        and r.state == "CHANGES_REQUESTED"
        and r.author.login != snapshot.author.login
        and is_trusted_voice(r.author, config, maintainers)
        and (
            snapshot.head_committed_at is None
            or (r.submitted_at or snapshot.created_at) > snapshot.head_committed_at
        )
    ]
    if not pending:
        return None
    review = max(pending, key=lambda r: (r.submitted_at or snapshot.created_at, r.id))
    return Trigger(
        TriggerKind.CHANGES_REQUESTED,
        digest("changes_requested", str(review.id)),
        "trigger.changes-requested",
        f"{review.author.login} requested changes (review {review.id}) after the last push",
        (f"review {review.id}",),
        review.submitted_at,
        review.author.login,
    )


def conflict_trigger(snapshot: PullRequestSnapshot) -> Trigger | None:
    """GitHub says the PR conflicts with its base."""
    if not has_conflict(snapshot):
        return None
    base = snapshot.base_sha or snapshot.base_ref
    return Trigger(
        TriggerKind.CONFLICT,
        digest("conflict", snapshot.head_sha, base),
        "trigger.conflict",
        f"merge conflict between {snapshot.head_sha[:7]} and {snapshot.base_ref} at {base[:7]}",
        (f"base {base}",),
        None,
    )


def stale_metadata_trigger(snapshot: PullRequestSnapshot, config: Config) -> Trigger | None:
    """Configured metadata checks (body sections, referenced issues, checklist) fail."""
    problems = metadata_problems(snapshot, config)
    if not problems:
        return None
    return Trigger(
        TriggerKind.STALE_METADATA,
        digest("stale_metadata", *problems),
        "trigger.stale-metadata",
        "PR metadata needs attention: " + "; ".join(problems),
        problems,
        None,
    )


def maintainer_feedback_trigger(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    maintainers: frozenset[str],
) -> Trigger | None:
    """A comment by someone with write access (not the author), newer than prsteward's last
    action and still unanswered (newer than the author's last push or comment), and not a
    ``/prsteward`` command."""
    since = app_last_action(snapshot, history, config)
    author_at = author_last_action(snapshot)
    if since is None or since < author_at:
        since = author_at
    feedback = [
        c
        for c in snapshot.comments
        if c.created_at > since
        and c.author.login != snapshot.author.login
        and is_trusted_voice(c.author, config, maintainers)
        and not is_command(c)
    ]
    if not feedback:
        return None
    newest = max(feedback, key=lambda c: (c.created_at, c.id))
    return Trigger(
        TriggerKind.MAINTAINER_FEEDBACK,
        digest("maintainer_feedback", str(newest.id)),
        "trigger.maintainer-feedback",
        f"{newest.author.login} commented (comment {newest.id}) after prsteward's last action",
        (f"comment {newest.id}",),
        newest.created_at,
        newest.author.login,
    )


def manual_trigger(history: PullRequestHistory) -> Trigger | None:
    """A maintainer asked with ``/prsteward escalate`` (the command layer checked write access)."""
    comment_id = history.commands.escalate_comment_id
    if comment_id is None:
        return None
    return Trigger(
        TriggerKind.MANUAL,
        digest("manual", str(comment_id)),
        "trigger.manual",
        f"a maintainer asked for an escalation (comment {comment_id})",
        (f"comment {comment_id}",),
    )


def find_triggers(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    maintainers: frozenset[str] = frozenset(),
) -> tuple[Trigger, ...]:
    """Every trigger present, in a fixed priority order (conflict first: CI depends on it)."""
    found = (
        conflict_trigger(snapshot),
        failing_ci_trigger(snapshot, history, config),
        changes_requested_trigger(snapshot, config, maintainers),
        maintainer_feedback_trigger(snapshot, history, config, maintainers),
        manual_trigger(history),
        stale_metadata_trigger(snapshot, config),
    )
    return tuple(t for t in found if t is not None)
