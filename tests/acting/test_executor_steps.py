"""Gentle steps end to end against the sim: a PR waiting on its author goes remind -> stale notice
+ label -> close, each step written once however often it is evaluated, the close with its
comment."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.acting.conftest import ActingWorld, acting_scenario

World = Callable[..., Awaitable[ActingWorld]]
CREATE = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
LABEL = "POST /repos/{owner}/{repo}/issues/{issue_number}/labels"
CLOSE = "PATCH /repos/{owner}/{repo}/pulls/{pull_number}"


async def test_gentle_steps_each_written_once_then_close_with_comment(acting_world: World) -> None:
    waiting = {
        "number": 11,
        "title": "Fix crash",
        "author": "dave",
        "created": "-1d",
        "checks": {"ci": "failure"},
    }
    config = (
        "mode: act\nrisk:\n  allow-close: true\ndays-before-zombie: 100\n"
        "days-before-pr-remind: 1\ndays-before-pr-stale: 2\ndays-before-pr-close: 1\n"
        "cooldowns:\n  comment-hours: 1\n"
    )
    world = await acting_world(
        acting_scenario(mode="", pulls=[waiting], files={".github/prsteward.yml": config})
    )
    await world.sync()
    await world.evaluate()
    await world.control.reset_accounting()
    for _ in range(4):  # a day at a time, two evaluations a day
        await world.control.advance("1d")
        await world.sync()
        await world.evaluate()
        await world.evaluate()

    writes = await world.writes()
    state = await world.control.state("acme/widgets", closed=True)
    [pull] = [p for p in state["repositories"][0]["pulls"] if p["number"] == 11]
    assert pull["state"] == "CLOSED"
    assert "lifecycle/stale" in pull["labels"]
    bodies = [c["body"] for c in await world.bot_comments("acme/widgets", 11)]
    kinds = [
        next(k for k in ("remind_author", "close_notice", ":close:", "status") if k in b)
        for b in bodies
    ]
    assert sorted(kinds).count("remind_author") == 1, bodies
    assert sorted(kinds).count("close_notice") == 1, bodies
    assert sorted(kinds).count(":close:") == 1, bodies
    assert writes.get(CLOSE) == 1 and writes.get(LABEL) == 1, writes
