"""``/prsteward`` commands end to end against the sim (issue 12 item 6): a maintainer's command
works and is answered with a reaction or in the sticky comment; a non-maintainer's, another
bot's or the App's is recorded and does nothing; a comment runs once however often it is read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.commands import CommandDesk
from ledger.reporting import pull_history
from tests.lifecycle.conftest import LifecycleWorld, acting_scenario

World = Callable[..., Awaitable[LifecycleWorld]]
APP = "prsteward[bot]"
CONFIG = (
    "mode: act\nrisk:\n  allow-close: true\ndays-before-zombie: 100\n"
    "days-before-pr-remind: 1\ndays-before-pr-stale: 2\ndays-before-pr-close: 1\n"
    "cooldowns:\n  comment-hours: 1\n"
)
WAITING_ON_AUTHOR = {
    "number": 11,
    "title": "Fix crash",
    "author": "dave",
    "created": "-1h",
    "checks": {"ci": "failure"},
}
WAITING_ON_MAINTAINERS = {
    "number": 12,
    "title": "Add docs",
    "author": "carol",
    "created": "-1h",
    "checks": {"ci": "success"},
    "requested_reviewers": ["alice"],
}


def scenario(config: str = CONFIG, pulls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return acting_scenario(
        mode="",
        pulls=pulls or [WAITING_ON_AUTHOR],
        files={".github/prsteward.yml": config},
        collaborators={"alice": "admin", "bob": "write", "zoe": "read"},
    )


async def test_freeze_stops_the_gentle_steps_and_unfreeze_resumes_them(
    lifecycle_world: World,
) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    freeze = await world.comment(11, "alice", "Looks stuck.\n/prsteward freeze")
    await world.step()
    assert (await world.pull(11)).frozen
    assert world.reactions(freeze) == [f"{APP}:+1"]
    for _ in range(4):
        await world.step("1d")
    sim_pull = world.sim_pull(11)
    assert sim_pull.state == "open" and "lifecycle/stale" not in sim_pull.labels
    assert not [c for c in await world.bot_comments("acme/widgets", 11) if "remind" in c["body"]]

    await world.comment(11, "alice", "/prsteward unfreeze")
    await world.step()
    assert not (await world.pull(11)).frozen
    assert [c for c in await world.bot_comments("acme/widgets", 11) if "remind_author" in c["body"]]
    [first, second] = await world.commands(11)
    assert (first.command, first.accepted, first.author_login) == ("freeze", True, "alice")
    assert first.effect is not None and first.effect.startswith("frozen")
    assert (second.command, second.effect) == ("unfreeze", "unfrozen")
    history = await pull_history(world.db, "acme/widgets", 11)  # the PR's history page
    assert history is not None
    assert [(c["command"], c["effect"]) for c in history.commands] == [
        ("freeze", first.effect),
        ("unfreeze", "unfrozen"),
    ]


async def test_pause_suppresses_every_action_and_resume_lets_them_through(
    lifecycle_world: World,
) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    await world.comment(11, "alice", "/prsteward pause")
    await world.step()
    await world.step("2d")
    bodies = [c["body"] for c in await world.bot_comments("acme/widgets", 11)]
    assert not [b for b in bodies if "remind_author" in b]
    await world.comment(11, "alice", "/prsteward resume")
    await world.step()
    bodies = [c["body"] for c in await world.bot_comments("acme/widgets", 11)]
    assert [b for b in bodies if "remind_author" in b]


async def test_explain_and_unknown_answer_in_the_one_sticky_comment(
    lifecycle_world: World,
) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    before = len(await world.bot_comments("acme/widgets", 11))
    explain = await world.comment(11, "alice", "/prsteward explain")
    await world.step()
    await world.comment(11, "alice", "/prsteward frobnicate")
    await world.step()
    await world.comment(11, "bob", "/prsteward explain")
    await world.step()
    comments = await world.bot_comments("acme/widgets", 11)
    stickies = [c for c in comments if "<!-- prsteward:status -->" in c["body"]]
    assert len(stickies) == 1 and len(comments) <= before + 1, comments
    body = stickies[0]["body"]
    assert "whose turn: author" in body and "@bob" in body
    assert world.reactions(explain) == [f"{APP}:+1"]
    rows = await world.commands(11)
    assert [r.command for r in rows] == ["explain", "unknown", "explain"]
    assert rows[1].effect is not None and rows[1].effect.startswith("help line shown")
    # the status comment is not rewritten at once by the next decision
    await world.step()
    assert [
        c["body"]
        for c in await world.bot_comments("acme/widgets", 11)
        if "<!-- prsteward:status -->" in c["body"]
    ] == [body]


async def test_unknown_command_gets_the_help_line(lifecycle_world: World) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    await world.comment(11, "alice", "/prsteward frobnicate")
    await world.step()
    [sticky] = [
        c
        for c in await world.bot_comments("acme/widgets", 11)
        if "<!-- prsteward:status -->" in c["body"]
    ]
    assert "prsteward commands:" in sticky["body"] and "frobnicate" in sticky["body"]


async def test_a_command_comment_runs_once_however_often_it_is_read(
    lifecycle_world: World,
) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    await world.comment(11, "alice", "/prsteward freeze")
    await world.step()
    await world.comment(11, "alice", "/prsteward unfreeze")
    await world.step()
    # read again, also by a fresh process (empty caches): the freeze does not come back
    for _ in range(2):
        await world.step()
    world.engine.commands = CommandDesk(world.db, world.desk.client_for, world.desk.pacer)
    await world.control.reset_accounting()
    await world.step()
    assert not (await world.pull(11)).frozen
    assert [r.command for r in await world.commands(11)] == ["freeze", "unfreeze"]
    assert "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions" not in (
        await world.writes()
    )


async def test_escalate_is_a_manual_trigger_inside_the_caps(lifecycle_world: World) -> None:
    opened: list[str] = []

    async def escalate(db: Any, *, candidate: Any, **_: Any) -> int | None:
        opened.append(candidate.trigger.kind.value)
        return 7

    world = await lifecycle_world(scenario(pulls=[WAITING_ON_MAINTAINERS]), escalate=escalate)
    await world.step()
    await world.comment(12, "dave", "/prsteward escalate")  # no write access: nothing
    await world.step()
    assert opened == []
    ask = await world.comment(12, "alice", "/prsteward escalate")
    await world.step()
    assert opened == ["manual"]
    assert world.reactions(ask) == [f"{APP}:+1"]
    rows = await world.commands(12)
    assert rows[-1].effect is not None and rows[-1].effect.startswith("escalated"), rows[-1]
    await world.step()
    assert opened == ["manual"]  # once


async def test_escalate_while_paused_is_refused_with_the_reason(lifecycle_world: World) -> None:
    opened: list[str] = []

    async def escalate(db: Any, *, candidate: Any, **_: Any) -> int | None:
        opened.append(candidate.key)
        return 7

    world = await lifecycle_world(scenario(pulls=[WAITING_ON_MAINTAINERS]), escalate=escalate)
    await world.step()
    await world.comment(12, "alice", "/prsteward pause")
    ask = await world.comment(12, "alice", "/prsteward escalate")
    await world.step()
    assert opened == []
    assert world.reactions(ask) == [f"{APP}:confused"]
    rows = await world.commands(12)
    assert rows[-1].effect is not None and "command.paused" in rows[-1].effect
    [sticky] = [
        c
        for c in await world.bot_comments("acme/widgets", 12)
        if "<!-- prsteward:status -->" in c["body"]
    ]
    assert "not escalated" in sticky["body"]


async def test_refresh_marks_the_pull_dirty_and_asks_for_a_read_now(
    lifecycle_world: World,
) -> None:
    world = await lifecycle_world(scenario())
    await world.step()
    await world.comment(11, "alice", "/prsteward refresh")
    await world.sync()
    await world.evaluate()
    pull = await world.pull(11)
    assert pull.dirty and pull.dirty_reason == "command.refresh"
    assert world.refreshed == [("acme/widgets", 11)]
