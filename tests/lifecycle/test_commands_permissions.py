"""Who may command prsteward (issue 12 item 6): only people with write access. The author, a
read-only collaborator, other bots and the App itself (in any spelling) are recorded and ignored;
a CONTRIBUTOR with write access is confirmed through the collaborator-permission API, once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.lifecycle.conftest import LifecycleWorld
from tests.lifecycle.test_commands_sim import APP, CONFIG, scenario

World = Callable[..., Awaitable[LifecycleWorld]]


@pytest.mark.parametrize(
    ("user", "extra"),
    [
        ("dave", {}),  # the author, no write access
        ("zoe", {}),  # read access only
        ("ci-bot[bot]", {"user_type": "Bot"}),  # another bot
        (APP, {"user_type": "Bot"}),  # the App itself
        ("PrSteward", {"association": "MEMBER"}),  # the App's name, any case, even as a member
    ],
    ids=[
        "author -> ignored",
        "read access -> ignored",
        "other bot -> ignored",
        "app -> ignored",
        "app name as member -> ignored",
    ],
)
async def test_commands_from_others_are_recorded_and_ignored(
    lifecycle_world: World, user: str, extra: dict[str, Any]
) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    ids = [
        await world.comment(11, user, f"/prsteward {verb}", **extra)
        for verb in ("freeze", "pause", "explain", "escalate")
    ]
    await world.step()
    pull = await world.pull(11)
    assert not pull.frozen and not pull.paused
    rows = await world.commands(11)
    assert [(r.command, r.accepted) for r in rows] == [
        ("freeze", False),
        ("pause", False),
        ("explain", False),
        ("escalate", False),
    ]
    assert all(r.effect is not None and r.effect.startswith("ignored") for r in rows)
    assert all(world.reactions(i) == [] for i in ids)
    bodies = [c["body"] for c in await world.bot_comments("acme/widgets", 11)]
    assert not any("`/prsteward explain`** (@" in b for b in bodies)


async def test_a_contributor_with_write_access_is_confirmed_through_the_api_once(
    lifecycle_world: World,
) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    pause = await world.comment(11, "bob", "/prsteward pause", association="CONTRIBUTOR")
    await world.step()
    assert (await world.pull(11)).paused
    assert world.reactions(pause) == [f"{APP}:+1"]
    await world.comment(11, "bob", "/prsteward resume", association="CONTRIBUTOR")
    await world.step()
    assert not (await world.pull(11)).paused
    assert world.desk.permissions.lookups == 1  # cached


async def test_shadow_mode_applies_switches_and_writes_nothing(lifecycle_world: World) -> None:
    world = await lifecycle_world(scenario(config=CONFIG.replace("mode: act", "mode: shadow")))
    await world.step()
    freeze = await world.comment(11, "alice", "/prsteward freeze")
    explain = await world.comment(11, "alice", "/prsteward explain")
    await world.step()
    assert (await world.pull(11)).frozen
    assert world.reactions(freeze) == [] and world.reactions(explain) == []
    assert await world.bot_comments("acme/widgets", 11) == []
    rows = await world.commands(11)
    assert rows[1].effect is not None and rows[1].effect.startswith("shadow:")
