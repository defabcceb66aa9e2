"""Re-runs end to end against the sim: a failure of a check configured as flaky gets exactly one
re-run of its failed jobs (GitHub Actions' rerun-failed-jobs), recorded with the run ids."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ledger import candidates as ledger_candidates
from ledger import pulls
from tests.acting.conftest import ActingWorld, acting_scenario

World = Callable[..., Awaitable[ActingWorld]]
RERUN = "POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs"


async def test_flaky_check_is_rerun_once(acting_world: World) -> None:
    flaky = {
        "number": 12,
        "title": "Speed up",
        "author": "erin",
        "created": "-1d",
        "checks": {"ci": "failure"},
        "flaky": ["ci"],
    }
    config = "mode: act\nflaky-check-patterns: [ci]\n"
    world = await acting_world(
        acting_scenario(mode="", pulls=[flaky], files={".github/prsteward.yml": config})
    )
    await world.sync()
    await world.control.reset_accounting()

    await world.evaluate()
    await world.evaluate()

    writes = await world.writes()
    assert writes.get(RERUN) == 1, writes
    await world.control.advance("1h")  # the re-run finishes; the flaky check passes
    state = await world.control.state("acme/widgets")
    [pull] = [p for p in state["repositories"][0]["pulls"] if p["number"] == 12]
    assert {r["name"]: r["conclusion"] for r in pull["check_runs"]} == {"ci": "success"}
    row = await pulls.get_pull(world.db, "acme/widgets", 12)
    assert row is not None and row.id is not None
    actions = await ledger_candidates.list_actions(world.db, row.id)
    assert [(a.kind, a.status) for a in actions if a.kind == "rerun"] == [("rerun", "done")]
