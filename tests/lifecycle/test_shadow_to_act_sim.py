"""A shadow run you can review (issue 12 item 7), against the sim: what ``prsteward report
--would`` lists in shadow mode is exactly what act mode then does; switching to act does not
replay the backlog at once (writes are paced) and a close still waits its full grace period from
the switch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.report import render_would_markdown
from ledger import commands as ledger_commands
from ledger.reporting import would_do
from tests.lifecycle.conftest import LifecycleWorld, acting_scenario

World = Callable[..., Awaitable[LifecycleWorld]]
CONFIG = (
    "mode: {mode}\nrisk:\n  allow-close: true\ndays-before-zombie: 1000\n"
    "days-before-pr-remind: 1\ndays-before-pr-stale: 3\ndays-before-pr-close: 5\n"
    "days-before-reviewer-reminder: 7\ncooldowns:\n  comment-hours: 1\n"
)
PULLS = [
    {
        "number": 11,
        "title": "Fix crash",
        "author": "dave",
        "created": "-3d",
        "checks": {"ci": "failure"},
    },
    {
        "number": 12,
        "title": "Add docs",
        "author": "carol",
        "created": "-10d",
        "checks": {"ci": "success"},
        "requested_reviewers": ["alice"],
    },
    {
        "number": 13,
        "title": "Refactor",
        "author": "frank",
        "created": "-2d",
        "mergeable": "CONFLICTING",
        "checks": {"ci": "success"},
    },
]


async def switch_to_act(world: LifecycleWorld) -> None:
    world.set_file("acme/widgets", ".github/prsteward.yml", CONFIG.format(mode="act"))
    await world.loader.refresh("acme/widgets", await world.now())


def performed(world: LifecycleWorld, results: list[Any]) -> set[tuple[int, str, str | None]]:
    done = set()
    for evaluation in results:
        by_key = {c.key: c for c in evaluation.decision.candidates}
        for item in evaluation.performed:
            if item.outcome in ("posted", "escalated"):
                candidate = by_key[item.key]
                done.add((evaluation.number, candidate.kind.value, candidate.label))
    return done


async def test_the_shadow_list_is_what_act_mode_then_does(lifecycle_world: World) -> None:
    jobs: list[str] = []

    async def escalate(db: Any, *, candidate: Any, **_: Any) -> int | None:
        jobs.append(candidate.key)
        return len(jobs)

    world = await lifecycle_world(
        acting_scenario(
            mode="", pulls=PULLS, files={".github/prsteward.yml": CONFIG.format(mode="shadow")}
        ),
        escalate=escalate,
    )
    await world.step()
    await world.step()
    assert await world.bot_comments("acme/widgets", 11) == [] and jobs == []
    would = await would_do(world.db)
    listed = {(w.number, w.kind, w.label) for w in would}
    kinds = {kind for _, kind, _ in listed}
    assert {"remind_author", "reviewer_reminder", "add_label", "escalate"} <= kinds, listed
    markdown = render_would_markdown(would)
    assert "acme/widgets" in markdown and "escalate" in markdown and "$" in markdown

    await switch_to_act(world)
    await world.sync()
    results = await world.evaluate()
    assert performed(world, results) == listed
    assert await would_do(world.db) == []  # nothing left that only shadow mode recorded
    assert world.pacer_time.slept, "writes after the switch are paced"
    repository_id = await world.db_repository()
    assert await ledger_commands.acting_since(world.db, repository_id) == await world.now()


async def test_a_close_waits_its_full_grace_period_from_the_switch(
    lifecycle_world: World,
) -> None:
    silent = {
        "number": 11,
        "title": "Old fix",
        "author": "dave",
        "created": "-60d",
        "checks": {"ci": "failure"},
    }
    world = await lifecycle_world(
        acting_scenario(
            mode="", pulls=[silent], files={".github/prsteward.yml": CONFIG.format(mode="shadow")}
        )
    )
    for _ in range(3):  # long past every threshold, in shadow mode
        await world.step("1d")
    assert {w.kind for w in await would_do(world.db)} <= {"remind_author", "status_comment"}

    await switch_to_act(world)
    await world.step()
    closed_on = None
    for day in range(1, 10):
        await world.step("1d")
        if world.sim_pull(11).state == "closed":
            closed_on = day
            break
    # remind on the switch, the notice 2 days later (stale - remind), the close 5 days after it
    assert closed_on == 7, closed_on
