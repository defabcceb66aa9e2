"""``issues``: a closed (or reopened, deleted) issue changes the PRs that reference it."""

from __future__ import annotations

from bot.handlers import Event, Router, get
from bot.handlers.effects import Effect, Ignore, MarkDirty, MarkDirtyByIssue

RELEVANT = frozenset({"closed", "reopened", "deleted", "transferred"})


def on_issues(event: Event) -> list[Effect]:
    number = get(event.payload, "issue", "number")
    repo = event.repository
    if not isinstance(number, int) or repo is None:
        return [Ignore("issues event without an issue number")]
    if get(event.payload, "issue", "pull_request") is not None:
        return [MarkDirty(repo, (number,), f"issues.{event.action}")]  # a PR seen as an issue
    if event.action not in RELEVANT:
        return [Ignore(f"issues.{event.action}")]
    return [MarkDirtyByIssue(repo, number, f"issues.{event.action}")]


def register(router: Router) -> None:
    router.register("issues")(on_issues)
