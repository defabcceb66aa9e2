"""``/prsteward`` commands through the webhook path, end to end: the sim delivers the signed
``issue_comment`` to prsteward's server, the PR is marked dirty, the poller's cycle reads it and
the engine takes the command. Redelivering every webhook (same delivery ids) and running the
cycle again never runs a command twice: an unfreeze after a freeze stays in force."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.server import Server
from tests.acting.test_executor_webhooks import cycle
from tests.lifecycle.conftest import LifecycleWorld, acting_scenario
from tests.lifecycle.test_commands_sim import APP, WAITING_ON_AUTHOR

World = Callable[..., Awaitable[LifecycleWorld]]
REACTION = "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"


async def test_a_redelivered_command_comment_does_not_run_twice(lifecycle_world: World) -> None:
    world = await lifecycle_world(acting_scenario(mode="act", pulls=[WAITING_ON_AUTHOR]))
    server = Server(
        world.db, webhook_secret="sim-webhook-secret", typed_parse=False, idle_poll_seconds=0.05
    )
    async with server.running() as url:
        await world.control.configure_webhook(url=f"{url}/webhooks")
        await world.sync()
        await cycle(world.world)

        freeze = await world.comment(11, "alice", "/prsteward freeze")
        await cycle(world.world)
        assert (await world.pull(11)).frozen
        assert world.reactions(freeze) == [f"{APP}:+1"]
        unfreeze = await world.comment(11, "alice", "/prsteward unfreeze")
        await cycle(world.world)
        assert not (await world.pull(11)).frozen
        assert world.reactions(unfreeze) == [f"{APP}:+1"]

        await world.control.reset_accounting()
        deliveries = await world.control.deliveries()
        assert any(d["event"] == "issue_comment" for d in deliveries), deliveries
        for delivery in deliveries:
            response = await world.app.app.request(
                "POST", f"/app/hook/deliveries/{delivery['id']}/attempts", write=True
            )
            assert response.status_code == 202
        for _ in range(2):
            await cycle(world.world)

        assert not (await world.pull(11)).frozen
        assert [(r.command, r.accepted) for r in await world.commands(11)] == [
            ("freeze", True),
            ("unfreeze", True),
        ]
        assert REACTION not in await world.writes()
