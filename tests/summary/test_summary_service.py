"""``prsteward serve`` wiring: the summary runs after each poller cycle (issue 7 item 2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.service import Service
from bot.settings import Settings
from bot.summary import scope_marker
from tests.summary.conftest import acting_scenario

CONFIG = "mode: act\nsummary:\n  enabled: true\n"


async def test_the_poller_cycle_keeps_the_summary_issue(
    sim_factory: Callable[..., Awaitable[Any]], sqlite_url: str
) -> None:
    server = await sim_factory(acting_scenario(mode="", files={".github/prsteward.yml": CONFIG}))
    settings = Settings(
        database_url=sqlite_url,
        app_id=server.app_id,
        private_key=server.private_key_pem,
        github_api_url=server.base_url,
        webhook_secret="s",
    )
    service = await Service.open(settings)
    try:
        assert service.poller is not None
        hooks = [getattr(h, "__self__", None) for h in service.poller.after_cycle]
        assert any(type(h).__name__ == "SummaryPoster" for h in hooks)
        await service.poller.cycle()
        await service.poller.cycle()  # nothing changed or due: no second write
        repo = server.sim.state.repo("acme", "widgets")
        marked = [i for i in repo.issues.values() if scope_marker("acme/widgets") in i.body]
        assert len(marked) == 1
        writes = (await server.control.accounting())["writes"]
        assert writes.get("POST /repos/{owner}/{repo}/issues") == 1
        assert writes.get("PATCH /repos/{owner}/{repo}/issues/{issue_number}") is None
    finally:
        await service.close()
