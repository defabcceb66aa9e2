"""CI signals: ``check_run``, ``check_suite``, ``status``, ``workflow_run``.

Checks changing do not bump a PR's ``updatedAt``, so the cheap change check cannot see them:
these events are how the poller learns which PRs to read again. ``status`` carries only a sha.
"""

from __future__ import annotations

from bot.handlers import Event, Router, get, pr_numbers
from bot.handlers.effects import Effect, Ignore, MarkDirty, MarkDirtyBySha


def _by_object(event: Event, key: str) -> list[Effect]:
    repo = event.repository
    obj = get(event.payload, key)
    if repo is None or obj is None:
        return [Ignore(f"{event.name} without {key} or repository")]
    reason = f"{event.name}.{event.action or '?'}"
    effects: list[Effect] = []
    numbers = pr_numbers(get(obj, "pull_requests"))
    if numbers:
        effects.append(MarkDirty(repo, numbers, reason))
    sha = get(obj, "head_sha")
    if isinstance(sha, str) and sha:
        effects.append(MarkDirtyBySha(repo, sha, reason))
    return effects or [Ignore(f"{event.name} names no PR and no sha")]


def on_check_run(event: Event) -> list[Effect]:
    return _by_object(event, "check_run")


def on_check_suite(event: Event) -> list[Effect]:
    return _by_object(event, "check_suite")


def on_workflow_run(event: Event) -> list[Effect]:
    return _by_object(event, "workflow_run")


def on_status(event: Event) -> list[Effect]:
    repo = event.repository
    sha = event.payload.get("sha")
    if repo is None or not isinstance(sha, str) or not sha:
        return [Ignore("status without sha or repository")]
    return [MarkDirtyBySha(repo, sha, f"status.{event.payload.get('state') or '?'}")]


def register(router: Router) -> None:
    router.register("check_run")(on_check_run)
    router.register("check_suite")(on_check_suite)
    router.register("status")(on_status)
    router.register("workflow_run")(on_workflow_run)
