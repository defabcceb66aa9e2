"""Backfill on install (issue 13): repositories added to an installation are swept at once, and
only they; removed ones stop being swept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.github import GitHubApp
from bot.poller import Poller
from bot.reconcile import Reconciler
from bot.server import Server
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from tests.watching.helpers import eventually

SimFactory = Callable[..., Awaitable[Any]]
DOWN_URL = "http://127.0.0.1:9/webhooks"


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


async def test_added_repositories_swept_at_once_removed_not_swept(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim = await sim_factory()
    control = sim.control
    app = GitHubApp(app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url)
    poller = Poller(Reconciler(app, db), db, interval=3600, leader_retry=0.1)
    server = Server(
        db,
        webhook_secret=sim.webhook_secret,
        typed_parse=False,
        idle_poll_seconds=0.2,
        on_repositories_added=poller.sweep_soon,
        background=[poller],
    )
    async with server.running() as url:
        assert await eventually(lambda: _true(poller.cycles >= 1), 30)
        # While nothing reaches prsteward: a new installation whose repository has 3 PRs.
        await control.configure_webhook(url=DOWN_URL)
        await control.event("install", installation=2, account="globex", repositories=["gears"])
        for i in range(3):
            await control.event("open_pull", repo="globex/gears", title=f"PR {i}", user="zed")
        await control.event(
            "installation_repositories", installation=2, removed=["gears"], added=[]
        )
        await control.drain_webhooks()
        # Now reachable: the repository is added again; its PRs come from a sweep, not webhooks.
        await control.configure_webhook(url=url + "/webhooks")
        await control.event(
            "installation_repositories", installation=2, added=["gears"], removed=[]
        )

        async def swept() -> bool:
            done = poller.backfills >= 1
            return done and len(await pulls.open_numbers(db, "globex/gears")) == 3

        assert await eventually(swept, 60)
        assert {r.repository for r in poller.last_backfill} == {"globex/gears"}
        assert [r.mode for r in poller.last_backfill] == ["full"]
        assert poller.cycles == 1  # the hourly cycle did not run again

        # Removed: no longer a target of any sweep.
        await control.event(
            "installation_repositories", installation=2, removed=["gears"], added=[]
        )

        async def removed() -> bool:
            row = await repositories.get_repository(db, "globex/gears")
            return row is not None and row.removed_at is not None

        assert await eventually(removed, 30)
        targets = {t.full_name for t in await poller.reconciler.known_targets()}
        assert "globex/gears" not in targets and "acme/widgets" in targets


async def _true(value: bool) -> bool:
    return value


async def test_cli_deliveries_recover_prints_what_it_asked_for(
    sim_factory: SimFactory, tmp_path: Any
) -> None:
    from tests.watching.test_cli import clean_env, run, write_env_file

    sim = await sim_factory()
    await write_env_file(sim, tmp_path)
    await sim.control.configure_webhook(url=DOWN_URL)
    await sim.control.event("open_pull", repo="acme/widgets", title="Hi", user="zed")
    await sim.control.drain_webhooks()
    env = clean_env(PRSTEWARD_DATABASE_URL=f"sqlite:///{tmp_path}/ledger.db")
    code, out, err = await run(
        ["deliveries", "recover", "--since", "2d", "--dry-run"], tmp_path, env
    )
    assert code == 0, err
    assert "would ask for 1 redeliveries" in out and "pull_request" in out
    code, out, err = await run(["deliveries", "recover", "--pace", "0"], tmp_path, env)
    assert code == 0, err
    assert "asked for 1 redeliveries" in out and "HTTP 202" in out
    code, out, err = await run(["deliveries", "recover"], tmp_path, env)
    assert code == 0, err
    assert "asked for 0 redeliveries" in out and "1 asked for before" in out
    code, _, err = await run(["deliveries", "recover", "--since", "yesterday"], tmp_path, env)
    assert code == 2 and "--since" in err
