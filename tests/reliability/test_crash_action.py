"""kill -9 `prsteward serve` (act mode, polling the sim) while its comment write is in flight:
GitHub (the sim) completes the write, the ledger never hears of it; after the restart the
executor finds its marker instead of posting again: one comment on the PR, one POST ever."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.acting.conftest import acting_scenario
from tests.reliability.serve import ServeProcess, sim_env
from tests.watching.helpers import eventually

pytestmark = pytest.mark.slow
SimFactory = Callable[..., Awaitable[Any]]
CREATE = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
HOLD_SECONDS = 4


def bot_comments(sim: Any, number: int) -> list[Any]:
    repo = sim.sim.state.repo("acme", "widgets")
    return sorted(
        (
            c
            for c in repo.comments.values()
            if c.issue_number == number and c.user.endswith("[bot]")
        ),
        key=lambda c: c.id,
    )


async def test_kill_during_comment_write__no_duplicate_after_restart(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(scenario=acting_scenario(mode="act"))
    # GitHub is slow to answer the comment POST: the request has arrived, the answer has not.
    await sim.control.add_fault(
        "delay", path=r"/issues/11/comments$", method="POST", count=1, seconds=HOLD_SECONDS
    )
    server = ServeProcess(
        tmp_path / "serve",
        {
            **sim_env(sim, tmp_path),
            "PRSTEWARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
            "PRSTEWARD_POLL_INTERVAL_SECONDS": "1",
        },
    )
    server.start()
    try:

        async def write_in_flight() -> bool:
            return any(fault == "delay" for _, _, fault in sim.sim.accounting.timeline)

        assert await eventually(write_in_flight, 120, 0.05), server.logs()[-3000:]
        server.kill9()  # the comment POST is being answered right now
        assert bot_comments(sim, 11) == []  # not written yet ...

        async def written() -> bool:
            return len(bot_comments(sim, 11)) == 1

        assert await eventually(written, HOLD_SECONDS + 10, 0.1)  # ... GitHub finished it

        server.start()
        await server.wait_ready()

        async def quiet_cycles_done() -> bool:
            # After the restart: the engine evaluated PR 11 again (it reads its comments)
            # and a few more cycles ran.
            reads = [
                at
                for at, endpoint, _ in sim.sim.accounting.timeline
                if endpoint == "GET /repos/{owner}/{repo}/issues/{issue_number}/comments"
            ]
            return len(reads) >= 1 and "prsteward serving" in server.logs().split("serve-2")[-1]

        assert await eventually(quiet_cycles_done, 120, 0.2), server.logs()[-3000:]
        await asyncio.sleep(5)  # a few more 1 s cycles: none may post again
        assert await asyncio.to_thread(server.stop) == 0, server.logs()[-3000:]
    finally:
        if server.running:
            server.kill9()
    comments = bot_comments(sim, 11)
    assert len(comments) == 1, [c.body for c in comments]
    accounting = await sim.control.accounting()
    assert accounting["requests"].get(CREATE) == 1, accounting["requests"]
    logs = server.logs()
    assert sim.webhook_secret not in logs
