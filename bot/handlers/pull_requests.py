"""``pull_request`` (every action): record what the payload says and read the PR again."""

from __future__ import annotations

from collections.abc import Mapping

from bot.handlers import Event, Router
from bot.handlers.effects import Effect, Ignore, ObservePullRequest


def on_pull_request(event: Event) -> list[Effect]:
    pull = event.payload.get("pull_request")
    repo = event.repository
    if not isinstance(pull, Mapping) or repo is None or not isinstance(pull.get("number"), int):
        return [Ignore("pull_request event without a pull_request or repository")]
    return [ObservePullRequest(repo, pull, reason=f"pull_request.{event.action or '?'}")]


def register(router: Router) -> None:
    router.register("pull_request")(on_pull_request)
