"""Exactly once across crashes, end to end against the sim: a crash between the GitHub write and
the ledger commit never duplicates: the next run finds the comment by its marker and adopts it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import pytest

from bot.executor import Actions, BotComment
from ledger import candidates as ledger_candidates
from ledger import pulls
from tests.acting.conftest import ActingWorld, acting_scenario
from tests.acting.test_executor_sim import CREATE, pull_id

World = Callable[..., Awaitable[ActingWorld]]


class CrashAfterWrite:
    """Actions that crash right after GitHub accepted a comment (before the ledger commit)."""

    def __init__(self, inner: Actions) -> None:
        self.inner = inner

    async def bot_comments(self, repository: str, number: int) -> list[BotComment]:
        return await self.inner.bot_comments(repository, number)

    async def create_comment(self, repository: str, number: int, body: str) -> int:
        await self.inner.create_comment(repository, number, body)
        raise RuntimeError("process killed after the write")

    async def edit_comment(self, repository: str, comment_id: int, body: str) -> int:
        return await self.inner.edit_comment(repository, comment_id, body)

    async def add_label(self, repository: str, number: int, label: str) -> None:
        await self.inner.add_label(repository, number, label)

    async def remove_label(self, repository: str, number: int, label: str) -> None:
        await self.inner.remove_label(repository, number, label)

    async def rerun_failed_checks(
        self, repository: str, head_sha: str, check_names: Sequence[str]
    ) -> list[int]:
        return await self.inner.rerun_failed_checks(repository, head_sha, check_names)

    async def convert_to_draft(self, repository: str, node_id: str) -> None:
        await self.inner.convert_to_draft(repository, node_id)

    async def close_pull(self, repository: str, number: int) -> None:
        await self.inner.close_pull(repository, number)


async def test_crash_between_write_and_ledger_commit_finds_the_marker(acting_world: World) -> None:
    stale_pull = {
        "number": 11,
        "title": "Fix crash",
        "author": "dave",
        "created": "-20d",
        "updated": "-18d",
        "checks": {"ci": "failure"},
    }
    world = await acting_world(acting_scenario(mode="act", pulls=[stale_pull]))
    await world.sync()
    world.wrap_actions = CrashAfterWrite
    with pytest.raises(RuntimeError, match="killed"):
        await world.evaluate()
    assert len(await world.bot_comments("acme/widgets", 11)) == 1  # written, not recorded

    world.wrap_actions = None
    await world.sync()
    await world.control.reset_accounting()
    await world.evaluate()
    await world.evaluate()

    comments = await world.bot_comments("acme/widgets", 11)
    bodies = [c["body"] for c in comments]
    assert len(set(bodies)) == len(bodies), "a comment was posted twice"
    kinds = sorted(("status" if "prsteward:status" in b else "notice") for b in bodies)
    assert kinds == ["notice", "status"], bodies
    assert await world.writes() == {CREATE: 1}  # only the comment the crash never reached
    actions = await ledger_candidates.list_actions(world.db, await pull_id(world, 11))
    adopted = [a for a in actions if a.details.get("adopted")]
    assert len(adopted) == 1 and adopted[0].github_id == str(comments[0]["id"])


async def test_crash_after_sticky_create_adopts_it_by_marker(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    world.wrap_actions = CrashAfterWrite
    with pytest.raises(RuntimeError, match="killed"):
        await world.evaluate()
    world.wrap_actions = None
    await world.control.reset_accounting()
    await world.evaluate()

    assert await world.writes() == {}
    comments = await world.bot_comments("acme/widgets", 11)
    assert len(comments) == 1
    row = await pulls.get_pull(world.db, "acme/widgets", 11)
    assert row is not None and row.sticky_comment_id == comments[0]["id"]
