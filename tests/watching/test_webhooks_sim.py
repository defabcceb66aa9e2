"""Webhooks end to end: the sim signs and sends, prsteward's server stores and processes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.server import Server
from ledger import inbox, pulls
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import DeliveryState
from tests.watching.helpers import eventually, post_delivery

SimFactory = Callable[..., Awaitable[Any]]
EXAMPLES = (
    Path(__file__).parents[1]
    / "data"
    / "octokit-webhooks-examples"
    / "api.github.com"
    / "index.json"
)
DEADLINE = 5.0  # seconds; generous for 2 shared cores, measured latency is far lower


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


async def observations(db: Ledger, repo: str, number: int) -> int:
    return len(await pulls.list_observations(db, repo, number))


async def test_sim_deliveries_reach_the_ledger(sim_factory: SimFactory, db: Ledger) -> None:
    sim = await sim_factory()
    server = Server(db, webhook_secret=sim.webhook_secret, typed_parse=False, idle_poll_seconds=0.5)
    async with server.running() as url:
        await sim.control.configure_webhook(url=url + "/webhooks")
        opened = await sim.control.event(
            "open_pull", repo="acme/widgets", title="Hello", user="zed"
        )
        number = opened["number"]

        async def arrived() -> bool:
            row = await pulls.get_pull(db, "acme/widgets", number)
            return row is not None and row.snapshot is not None and row.dirty

        assert await eventually(arrived, DEADLINE)
        row = await pulls.get_pull(db, "acme/widgets", number)
        assert row is not None and row.snapshot["title"] == "Hello"  # type: ignore[index]

        await sim.control.event("label", repo="acme/widgets", pr=number, name="bug")

        async def labelled() -> bool:
            row = await pulls.get_pull(db, "acme/widgets", number)
            return row is not None and "bug" in (row.snapshot or {}).get("labels", [])

        assert await eventually(labelled, DEADLINE)
        await sim.control.event("merge", repo="acme/widgets", pr=number)

        async def merged() -> bool:
            row = await pulls.get_pull(db, "acme/widgets", number)
            return row is not None and row.state == "merged"

        assert await eventually(merged, DEADLINE)
        await sim.control.drain_webhooks()
    counts = await inbox.count_by_state(db)
    assert counts[DeliveryState.FAILED] == 0 and counts[DeliveryState.PENDING] == 0


async def test_sim_redeliveries__no_duplicate_observations(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim = await sim_factory()
    server = Server(db, webhook_secret=sim.webhook_secret, typed_parse=False, idle_poll_seconds=0.5)
    async with server.running() as url:
        await sim.control.configure_webhook(url=url + "/webhooks", duplicate_rate=1.0)
        opened = await sim.control.event(
            "open_pull", repo="acme/widgets", title="Twice", user="zed"
        )
        await sim.control.event(
            "edit", repo="acme/widgets", pr=opened["number"], title="Twice, edited"
        )
        await sim.control.drain_webhooks()
        deliveries = await sim.control.deliveries()
        guids = [d["guid"] for d in deliveries]
        assert len(guids) > len(set(guids))  # the sim really sent each one twice

        async def drained() -> bool:
            counts = await inbox.count_by_state(db)
            return counts[DeliveryState.PENDING] == 0 and counts[DeliveryState.PROCESSING] == 0

        assert await eventually(drained, DEADLINE)
    stored = await inbox.count_by_state(db)
    assert sum(stored.values()) == len(set(guids))
    assert server.intake.duplicates == len(guids) - len(set(guids))
    # opened + edited: one observation each, never one per copy
    assert await observations(db, "acme/widgets", opened["number"]) == 2


def example_deliveries() -> list[tuple[str, int, dict[str, Any]]]:
    index = json.loads(EXAMPLES.read_text())
    return [
        (entry["name"], i, example)
        for entry in index
        for i, example in enumerate(entry["examples"])
    ]


@pytest.mark.slow
async def test_every_octokit_example__2xx_and_no_worker_crash(db: Ledger) -> None:
    examples = example_deliveries()
    assert len(examples) == 329
    server = Server(db, webhook_secret="examples-secret", typed_parse=True, idle_poll_seconds=0.2)
    async with server.running() as url, httpx.AsyncClient(timeout=30) as client:
        statuses: dict[str, int] = {}
        for name, i, example in examples:
            response = await post_delivery(
                client, url, name, example, delivery=f"{name}-{i}", secret="examples-secret"
            )
            statuses[f"{name}-{i}"] = response.status_code
        assert {k: v for k, v in statuses.items() if v not in (200, 202)} == {}

        async def drained() -> bool:
            counts = await inbox.count_by_state(db)
            return counts[DeliveryState.PENDING] == 0 and counts[DeliveryState.PROCESSING] == 0

        assert await eventually(drained, 120)
        assert all(not task.done() for task in server.processor._tasks)  # workers alive
    counts = await inbox.count_by_state(db)
    failed = counts[DeliveryState.FAILED]
    assert failed == 0, [
        (d.delivery_id, d.error)
        for d in [await inbox.get_delivery(db, k) for k in statuses]
        if d is not None and d.state == DeliveryState.FAILED
    ][:5]
    assert counts[DeliveryState.PROCESSED] + counts[DeliveryState.IGNORED] == 329
    assert counts[DeliveryState.PROCESSED] > 50  # the PR-related ones did real work


@pytest.mark.postgres
async def test_postgres__webhooks_and_reconcile_end_to_end(
    sim_factory: SimFactory, postgres_url: str
) -> None:
    from bot.github import GitHubApp
    from bot.reconcile import Reconciler

    await upgrade_async(postgres_url)
    db = Ledger(postgres_url)
    try:
        sim = await sim_factory(scenario="sim/scenarios/small.yml")
        reconciler = Reconciler(
            GitHubApp(app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url), db
        )
        await reconciler.discover()
        first = {r.repository: r for r in await reconciler.run_cycle()}
        assert first["acme/widgets"].read == 11 and not first["acme/widgets"].errors
        server = Server(
            db, webhook_secret=sim.webhook_secret, typed_parse=False, idle_poll_seconds=0.5
        )
        async with server.running() as url:
            await sim.control.configure_webhook(url=url + "/webhooks", duplicate_rate=1.0)
            await sim.control.event("comment", repo="acme/widgets", pr=11, user="alice", body="hi")

            async def dirty() -> bool:
                row = await pulls.get_pull(db, "acme/widgets", 11)
                return row is not None and row.dirty

            assert await eventually(dirty, DEADLINE)
            await sim.control.drain_webhooks()
        second = {r.repository: r for r in await reconciler.run_cycle()}
        assert second["acme/widgets"].changed == [11]
        row = await pulls.get_pull(db, "acme/widgets", 11)
        assert row is not None and not row.dirty
        assert row.snapshot is not None and row.snapshot["comments"][-1]["body"] == "hi"
        counts = await inbox.count_by_state(db)
        assert counts[DeliveryState.FAILED] == 0
        assert sum(counts.values()) == 1  # sent twice, stored once
    finally:
        await db.close()
