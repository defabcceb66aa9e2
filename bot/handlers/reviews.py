"""Reviews, review comments, review threads and PR conversation comments: read the PR again."""

from __future__ import annotations

from bot.handlers import Event, Router, get
from bot.handlers.effects import Effect, Ignore, MarkDirty


def on_review_activity(event: Event) -> list[Effect]:
    number = get(event.payload, "pull_request", "number")
    repo = event.repository
    if not isinstance(number, int) or repo is None:
        return [Ignore(f"{event.name} without a pull request number")]
    return [MarkDirty(repo, (number,), reason=f"{event.name}.{event.action or '?'}")]


def on_issue_comment(event: Event) -> list[Effect]:
    issue = get(event.payload, "issue")
    number = get(issue, "number")
    repo = event.repository
    if get(issue, "pull_request") is None:
        return [Ignore("comment on an issue, not a pull request")]
    if not isinstance(number, int) or repo is None:
        return [Ignore("issue_comment without an issue number")]
    return [MarkDirty(repo, (number,), reason=f"issue_comment.{event.action or '?'}")]


def register(router: Router) -> None:
    for name in (
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
    ):
        router.register(name)(on_review_activity)
    router.register("issue_comment")(on_issue_comment)
