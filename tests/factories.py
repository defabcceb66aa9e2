"""Factories with a default for every field, so each test changes only what its rule is about.

Shared by every test suite: keep the names and defaults stable. The defaults describe a healthy
open PR by an outside contributor, created ``T0``, with nothing wrong.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.config import Config
from policies.history import (
    CandidateRecord,
    Commands,
    JobRecord,
    JobState,
    NoticeRecord,
    PullRequestHistory,
    SpendSummary,
)
from policies.snapshot import (
    Actor,
    AuthorAssociation,
    CheckOutcome,
    CheckResult,
    Comment,
    LinkedIssue,
    Mergeable,
    PullRequestSnapshot,
    Review,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HEAD_SHA = "a" * 40
BASE_SHA = "b" * 40
APP_LOGIN = "prsteward"


def days(n: float) -> timedelta:
    return timedelta(days=n)


def at(day: float) -> datetime:
    """``day`` days after T0."""
    return T0 + days(day)


def make_actor(login: str = "contributor", **overrides: Any) -> Actor:
    values: dict[str, Any] = {
        "login": login,
        "is_bot": False,
        "association": AuthorAssociation.CONTRIBUTOR,
    }
    values.update(overrides)
    return Actor(**values)


def make_maintainer(login: str = "maintainer") -> Actor:
    return make_actor(login, association=AuthorAssociation.MEMBER)


def make_bot(login: str = "dependabot[bot]") -> Actor:
    return make_actor(login, is_bot=True, association=AuthorAssociation.NONE)


def make_app(spelling: str = f"{APP_LOGIN}[bot]") -> Actor:
    return make_actor(
        spelling, is_bot=spelling.endswith("[bot]"), association=AuthorAssociation.NONE
    )


def make_check(
    name: str = "build", outcome: CheckOutcome = CheckOutcome.SUCCESS, **overrides: Any
) -> CheckResult:
    values: dict[str, Any] = {
        "name": name,
        "outcome": outcome,
        "url": f"https://ci.example/{name}",
        "kind": "check_run",
        "completed_at": None if outcome is CheckOutcome.PENDING else T0 + timedelta(hours=1),
    }
    values.update(overrides)
    return CheckResult(**values)


_next_id = [1000]


def _fresh_id() -> int:
    _next_id[0] += 1
    return _next_id[0]


def make_comment(
    author: Actor | None = None,
    created_at: datetime | None = None,
    body: str = "looks good",
    **overrides: Any,
) -> Comment:
    values: dict[str, Any] = {
        "id": overrides.pop("id", None) or _fresh_id(),
        "author": author or make_maintainer(),
        "created_at": created_at or at(1),
        "body": body,
    }
    values.update(overrides)
    return Comment(**values)


def make_review(
    state: str = "CHANGES_REQUESTED",
    author: Actor | None = None,
    submitted_at: datetime | None = None,
    **overrides: Any,
) -> Review:
    values: dict[str, Any] = {
        "id": overrides.pop("id", None) or _fresh_id(),
        "author": author or make_maintainer(),
        "state": state,
        "submitted_at": submitted_at or at(1),
        "body": "",
    }
    values.update(overrides)
    return Review(**values)


def make_linked_issue(number: int = 7, state: str = "OPEN", **overrides: Any) -> LinkedIssue:
    values: dict[str, Any] = {
        "number": number,
        "state": state,
        "state_reason": None,
        "assignees": (),
    }
    values.update(overrides)
    return LinkedIssue(**values)


def make_snapshot(**overrides: Any) -> PullRequestSnapshot:
    """A healthy open PR: green, mergeable, review requested, pushed at T0."""
    values: dict[str, Any] = {
        "repository": "acme/widgets",
        "number": 1,
        "title": "Fix the widget",
        "author": make_actor("contributor"),
        "created_at": T0,
        "updated_at": T0,
        "head_sha": HEAD_SHA,
        "head_ref": "fix-widget",
        "base_ref": "main",
        "base_sha": BASE_SHA,
        "node_id": "PR_1",
        "body": "Fixes the widget.",
        "is_draft": False,
        "labels": (),
        "milestone": None,
        "assignees": (),
        "review_requests": ("maintainer",),
        "mergeable": Mergeable.MERGEABLE,
        "merge_state_status": "BLOCKED",
        "review_decision": "REVIEW_REQUIRED",
        "checks_state": "SUCCESS",
        "checks": (make_check("build"), make_check("test")),
        "reviews": (),
        "comments": (),
        "linked_issues": (),
        "auto_merge_enabled": False,
        "head_committed_at": T0,
        "additions": 10,
        "deletions": 2,
        "changed_files": 1,
        "changed_paths": ("src/widget.py",),
        "partial": False,
    }
    values.update(overrides)
    return PullRequestSnapshot(**values)


def failing(snapshot: PullRequestSnapshot, *names: str) -> PullRequestSnapshot:
    """The same snapshot with ``names`` failing at its head."""
    checks = tuple(c for c in snapshot.checks if c.name not in names) + tuple(
        make_check(n, CheckOutcome.FAILURE) for n in names
    )
    return replace(snapshot, checks=checks, checks_state="FAILURE")


def make_job(
    trigger_kind: str = "failing_ci",
    fingerprint: str = "fp-1",
    state: JobState = JobState.VERIFY_FAILED,
    created_at: datetime | None = None,
    **overrides: Any,
) -> JobRecord:
    values: dict[str, Any] = {
        "trigger_kind": trigger_kind,
        "fingerprint": fingerprint,
        "state": state,
        "created_at": created_at or at(0),
        "finished_at": None,
        "pull_number": 1,
        "dollars_spent": 1.0,
        "tokens_spent": 50_000,
        "dollars_budget": 3.0,
        "tokens_budget": 300_000,
        "failure_signature": None,
        "check_names": (),
        "files": (),
        "size_class": None,
    }
    values.update(overrides)
    return JobRecord(**values)


def make_candidate_record(
    key: str, kind: str = "escalate", outcome: str = "posted", when: datetime | None = None
) -> CandidateRecord:
    return CandidateRecord(key=key, kind=kind, outcome=outcome, at=when or at(0))


def make_notice(kind: str = "remind_author", when: datetime | None = None) -> NoticeRecord:
    return NoticeRecord(kind=kind, at=when or at(0))


def make_history(**overrides: Any) -> PullRequestHistory:
    values: dict[str, Any] = {
        "candidates": (),
        "jobs": (),
        "repository_jobs": (),
        "last_bot_action_at": None,
        "last_comment_at": None,
        "tier": None,
        "tier_since": None,
        "notices": (),
        "reruns": (),
        "commands": Commands(),
        "sticky_comment_id": None,
        "sticky_content_hash": None,
        "labels_added_by_bot": (),
    }
    values.update(overrides)
    return PullRequestHistory(**values)


def make_spend(**overrides: Any) -> SpendSummary:
    """Nothing spent anywhere (all known)."""
    values: dict[str, Any] = {
        "pr_dollars": 0.0,
        "repository_today_dollars": 0.0,
        "installation_today_dollars": 0.0,
        "installation_last_hour_dollars": 0.0,
        "pr_tokens": 0,
    }
    values.update(overrides)
    return SpendSummary(**values)


def make_config(**overrides: Any) -> Config:
    """The built-in defaults, in act mode, with the App named ``prsteward``."""
    values: dict[str, Any] = {"mode": "act", "app_logins": (APP_LOGIN,)}
    values.update(overrides)
    return Config.model_validate(values)
