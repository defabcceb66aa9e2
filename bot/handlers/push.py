"""``push``: a branch moved. PRs based on it must have their mergeability read again."""

from __future__ import annotations

from bot.handlers import Event, Router
from bot.handlers.effects import Effect, Ignore, MarkDirtyByBase, MarkDirtyBySha

BRANCH_PREFIX = "refs/heads/"
ZERO_SHA = "0" * 40


def on_push(event: Event) -> list[Effect]:
    repo = event.repository
    ref = event.payload.get("ref")
    if repo is None or not isinstance(ref, str):
        return [Ignore("push without ref or repository")]
    if not ref.startswith(BRANCH_PREFIX):
        return [Ignore(f"push to {ref}, not a branch")]
    if event.payload.get("deleted"):
        return [Ignore("branch deleted")]
    branch = ref.removeprefix(BRANCH_PREFIX)
    effects: list[Effect] = [MarkDirtyByBase(repo, branch, "push: base moved")]
    after = event.payload.get("after")
    if isinstance(after, str) and after and after != ZERO_SHA:
        effects.append(MarkDirtyBySha(repo, after, "push: head moved"))
    return effects


def register(router: Router) -> None:
    router.register("push")(on_push)
