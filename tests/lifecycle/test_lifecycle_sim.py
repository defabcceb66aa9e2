"""Whose turn, gentle steps and never closing intent to merge, against the sim (issue 12 item 9):
a PR waiting on maintainers for a year is never staled or closed; a PR waiting on its author
goes through each gentle step once and closes after the configured time, and bot comments and
label churn do not move its timers; approved and auto-merge PRs never close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.lifecycle.conftest import LifecycleWorld, acting_scenario

World = Callable[..., Awaitable[LifecycleWorld]]
STEPS = (
    "mode: act\nrisk:\n  allow-close: true\ndays-before-zombie: 1000\n"
    "days-before-pr-remind: 1\ndays-before-pr-stale: 2\ndays-before-pr-close: 1\n"
    "days-before-reviewer-reminder: 7\ncooldowns:\n  comment-hours: 1\n"
)


def failing(number: int, author: str, **extra: Any) -> dict[str, Any]:
    return {
        "number": number,
        "title": f"Change {number}",
        "author": author,
        "created": "-1h",
        "checks": {"ci": "failure"},
        **extra,
    }


def scenario(pulls: list[dict[str, Any]], config: str = STEPS) -> dict[str, Any]:
    return acting_scenario(mode="", pulls=pulls, files={".github/prsteward.yml": config})


def kinds_of(bodies: list[str]) -> list[str]:
    """The gentle-step kind of each of prsteward's comments (by its idempotency marker)."""
    found = []
    for body in bodies:
        for kind in ("remind_author", "close_notice", ":close:", "reviewer_reminder"):
            if kind in body:
                found.append(kind)
    return found


async def test_waiting_on_maintainers_for_a_year_is_never_staled_or_closed(
    lifecycle_world: World,
) -> None:
    waiting = {
        "number": 12,
        "title": "Add docs",
        "author": "carol",
        "created": "-1h",
        "checks": {"ci": "success"},
        "requested_reviewers": ["alice"],
    }
    world = await lifecycle_world(scenario([waiting]))
    await world.step()
    for _ in range(8):  # 368 days
        await world.step("46d")
        pull = world.sim_pull(12)
        assert pull.state == "open" and "lifecycle/stale" not in pull.labels
    bodies = [c["body"] for c in await world.bot_comments("acme/widgets", 12)]
    assert kinds_of(bodies) == ["reviewer_reminder"], bodies  # one reminder, nothing else
    assert (await world.pull(12)).whose_turn == "maintainers"


async def test_gentle_steps_once_each_and_churn_moves_no_timer(lifecycle_world: World) -> None:
    """Two PRs waiting on their authors; one gets bot comments (another bot, the App's name) and
    label churn every day. Both take each step on the same day, once, and close together."""
    world = await lifecycle_world(scenario([failing(11, "dave"), failing(13, "erin")]))
    await world.step()
    days: dict[int, dict[str, int]] = {11: {}, 13: {}}
    for day in range(1, 7):
        await world.control.advance("1d")
        await world.control.event(
            "comment",
            repo="acme/widgets",
            pr=13,
            user="ci-bot[bot]",
            user_type="Bot",
            body="Coverage report: 81%",
        )
        await world.control.event(
            "comment",
            repo="acme/widgets",
            pr=13,
            user="prsteward[bot]",
            user_type="Bot",
            body="status",
        )
        label = "label" if day % 2 else "unlabel"
        await world.control.event(label, repo="acme/widgets", pr=13, user="alice", name="bug")
        await world.step()
        await world.step()  # evaluated twice a day: still once
        for number in (11, 13):
            bodies = [c["body"] for c in await world.bot_comments("acme/widgets", number)]
            for kind in kinds_of(bodies):
                days[number].setdefault(kind, day)
            assert all(kinds_of(bodies).count(k) == 1 for k in kinds_of(bodies)), bodies
    assert days[11] == days[13], days
    # remind after 1 day of silence, notice + label after 2, close 1 day after the notice
    assert days[11] == {"remind_author": 1, "close_notice": 2, ":close:": 3}, days
    for number in (11, 13):
        pull = world.sim_pull(number)
        assert pull.state == "closed" and "lifecycle/stale" in pull.labels
