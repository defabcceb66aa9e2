"""Never close intent to merge, against the sim (issue 12 item 3): an approved PR and a PR with
auto-merge enabled, both waiting on their authors for over a week, are at most reminded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from ledger import pulls
from ledger.models import ObservationSource
from policies.snapshot import snapshot_from_json, snapshot_to_json
from tests.lifecycle.conftest import LifecycleWorld
from tests.lifecycle.test_lifecycle_sim import failing, kinds_of, scenario

World = Callable[..., Awaitable[LifecycleWorld]]


async def test_approved_and_auto_merge_pulls_are_never_closed(lifecycle_world: World) -> None:
    approved = failing(14, "grace", reviews=[{"user": "alice", "state": "APPROVED"}])
    world = await lifecycle_world(scenario([approved, failing(15, "heidi")]))

    async def auto_merge_on() -> None:  # the sim has no auto-merge: set it on the read snapshot
        row = await world.pull(15)
        assert row.snapshot is not None
        snapshot = replace(snapshot_from_json(row.snapshot), auto_merge_enabled=True)
        await pulls.record_snapshot(
            world.db,
            "acme/widgets",
            15,
            snapshot_to_json(snapshot),
            "auto-merge-" + snapshot.fingerprint(),
            ObservationSource.POLL,
            await world.now(),
        )

    await world.sync()
    await auto_merge_on()
    await world.evaluate()
    for _ in range(8):
        await world.control.advance("1d")
        await world.sync()
        await auto_merge_on()
        await world.evaluate()
    for number in (14, 15):
        assert world.sim_pull(number).state == "open"
        bodies = [c["body"] for c in await world.bot_comments("acme/widgets", number)]
        assert ":close:" not in "".join(bodies) and "close_notice" not in "".join(bodies)
        assert kinds_of(bodies) == ["remind_author"], bodies  # at most reminded
