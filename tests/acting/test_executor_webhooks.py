"""Webhooks to GitHub writes, end to end: the sim delivers signed webhooks to prsteward's
server, the poller reads the dirty PRs, the engine decides and the executor writes. Redelivering
every webhook (GitHub's redelivery API, same delivery ids) and running the cycle again never
posts a second comment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bot.server import Server
from ledger import inbox
from ledger.models import DeliveryState
from tests.acting.conftest import ActingWorld, acting_scenario

World = Callable[..., Awaitable[ActingWorld]]
CREATE = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
GREEN_PULL = {
    "number": 11,
    "title": "Fix crash",
    "author": "dave",
    "created": "-1d",
    "checks": {"ci": "success"},
}


async def inbox_idle(world: ActingWorld) -> None:
    """Wait until the server's inbox workers have handled every stored delivery."""
    await world.control.drain_webhooks()
    for _ in range(400):
        counts = await inbox.count_by_state(world.db)
        if not counts.get(DeliveryState.PENDING) and not counts.get(DeliveryState.PROCESSING):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"inbox never drained: {counts}")


async def cycle(world: ActingWorld) -> list[Any]:
    """What the poller does each interval: reconcile, then the engine's hook."""
    await inbox_idle(world)
    results = await world.reconciler.run_cycle()
    return await world.engine.after_reconcile(results)


async def test_redelivered_webhooks_and_repeated_cycles_never_double_post(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act", pulls=[GREEN_PULL]))
    server = Server(
        world.db, webhook_secret="sim-webhook-secret", typed_parse=False, idle_poll_seconds=0.05
    )
    async with server.running() as url:
        await world.control.configure_webhook(url=f"{url}/webhooks")
        await world.sync()
        first = await cycle(world)
        assert all(e.mode == "act" for e in first)
        assert await world.bot_comments("acme/widgets", 11) == []  # green: nothing to say

        # CI fails: webhooks mark the PR dirty, the next cycle reads it and posts once.
        await world.control.event("ci", repo="acme/widgets", pr=11, conclusion="failure")
        await cycle(world)
        comments = await world.bot_comments("acme/widgets", 11)
        assert len(comments) == 1 and "failing_ci" in comments[0]["body"]

        # Every delivery again, through GitHub's redelivery API (same X-GitHub-Delivery).
        await world.control.reset_accounting()
        deliveries = await world.control.deliveries()
        assert deliveries
        for delivery in deliveries:
            response = await world.app.app.request(
                "POST", f"/app/hook/deliveries/{delivery['id']}/attempts", write=True
            )
            assert response.status_code == 202
        for _ in range(3):
            await cycle(world)

        assert len(await world.bot_comments("acme/widgets", 11)) == 1
        writes = await world.writes()
        assert CREATE not in writes, writes
        redelivered = [d for d in await world.control.deliveries() if d["redelivery"]]
        assert len(redelivered) == len(deliveries)
        assert all(d["status_code"] in (200, 202) for d in redelivered)
