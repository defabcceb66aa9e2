"""The summary issue against the sim (issue 7 item 2): one issue, edited in place at most every
N minutes and only when its body changed; nothing written in shadow mode; "prsteward is behind"
when the sweep is overdue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.summary import SummaryPoster, scope_marker
from ledger import summary as ledger_summary
from ledger.repositories import get_repository
from tests.summary.conftest import ActingWorld, acting_scenario

World = Callable[..., Awaitable[ActingWorld]]
CONFIG = "mode: {mode}\nsummary:\n  enabled: true\n  min-interval-minutes: 60\n{extra}"
PULLS = [
    {"number": 11, "title": "Fix crash", "author": "dave", "created": "-3d",
     "checks": {"ci": "failure"}},
    {"number": 12, "title": "Add docs", "author": "carol", "created": "-10d",
     "checks": {"ci": "success"}, "requested_reviewers": ["alice"]},
]


async def start(acting_world: World, mode: str = "act", extra: str = "") -> tuple[ActingWorld, SummaryPoster]:
    world = await acting_world(
        acting_scenario(
            mode="", pulls=PULLS,
            files={".github/prsteward.yml": CONFIG.format(mode=mode, extra=extra)},
        )
    )
    await world.sync()
    await world.evaluate()
    poster = SummaryPoster(
        world.db,
        client_for=world.app.installation,
        pacer=world.executor.pacer,
        clock=lambda: world.server.sim.clock.now(),
    )
    return world, poster


def summary_writes(writes: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in writes.items() if "issues" in k}


def sim_issues(world: ActingWorld, repository: str = "acme/widgets") -> list[Any]:
    owner, name = repository.split("/")
    return list(world.server.sim.state.repo(owner, name).issues.values())


async def test_probe(acting_world: World) -> None:
    world, poster = await start(acting_world)
    print(await poster.run())
    print(await world.writes())
    for issue in sim_issues(world):
        print(issue.number, issue.title)
        print(issue.body)
