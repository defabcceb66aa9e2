"""The poller: one leader per ledger, scheduled cycles, immediate sweeps of new repositories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.github import GitHubApp
from bot.poller import Poller, wants_full_sweep
from bot.reconcile import Reconciler
from ledger import pulls
from ledger.db import Ledger
from ledger.leader import LeaderLock
from ledger.migrate import upgrade_async
from ledger.models import Repository
from ledger.watching import list_api_usage
from tests.watching.helpers import eventually

SimFactory = Callable[..., Awaitable[Any]]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def repo_row(**fields: Any) -> Repository:
    defaults: dict[str, Any] = {"full_name": "acme/widgets", "created_at": NOW, "updated_at": NOW}
    return Repository(**(defaults | fields))


@pytest.mark.parametrize(
    ("row", "backfill", "expected"),
    [
        (None, set(), True),
        (repo_row(last_sweep_ok_at=None), set(), True),
        (repo_row(last_sweep_ok_at=NOW - timedelta(minutes=5)), set(), False),
        (repo_row(last_sweep_ok_at=NOW - timedelta(hours=2)), set(), True),
        (repo_row(last_sweep_ok_at=NOW - timedelta(minutes=5)), {"acme/widgets"}, True),
    ],
    ids=[
        "unknown repository -> full",
        "never swept completely -> full",
        "swept 5 min ago -> cheap check",
        "swept 2 h ago -> full",
        "just added to the installation -> full",
    ],
)
def test_wants_full_sweep(row: Repository | None, backfill: set[str], expected: bool) -> None:
    assert wants_full_sweep(row, NOW, timedelta(hours=1), backfill) is expected


async def test_two_leaders_on_postgres__one_leads_other_takes_over(postgres_url: str) -> None:
    first_db, second_db = Ledger(postgres_url), Ledger(postgres_url)
    first, second = LeaderLock(first_db), LeaderLock(second_db)
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.try_acquire()  # holding it again is fine
        await first.release()
        assert await second.try_acquire()
        assert not await first.try_acquire()
        await second.release()  # a graceful stop hands over at the next retry
        assert await first.try_acquire()
    finally:
        await first.release()
        await second.release()
        await first_db.close()
        await second_db.close()


async def test_leader_connection_killed__lock_lost_and_retaken(postgres_url: str) -> None:
    from sqlalchemy import text

    db, other_db = Ledger(postgres_url), Ledger(postgres_url)
    lock, other = LeaderLock(db), LeaderLock(other_db)
    try:
        assert await lock.try_acquire()
        async with other_db.engine.connect() as admin:
            await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND objid = :key"
                ),
                {"key": lock.key},
            )
            await admin.commit()
        assert not await lock.still_held()
        assert await other.try_acquire()
    finally:
        await other.release()
        await db.close()
        await other_db.close()


async def test_sqlite__always_leader(sqlite_url: str) -> None:
    db = Ledger(sqlite_url)
    try:
        assert await LeaderLock(db).try_acquire()
    finally:
        await db.close()


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


async def test_poller_runs_cycles_and_sweeps_added_repositories_at_once(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    app = GitHubApp(app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url)
    poller = Poller(Reconciler(app, db), db, interval=3600, leader_retry=0.1)
    await poller.start()
    try:

        async def first_cycle() -> bool:
            return poller.cycles >= 1

        assert await eventually(first_cycle, 30)
        assert poller.is_leader
        assert len(await pulls.list_open(db, "acme/widgets")) == 11
        # A new PR appears; the next cycle is an hour away, but the repository is "added" again.
        await sim.control.event("open_pull", repo="acme/widgets", title="Late", user="zed")
        poller.sweep_soon(["acme/widgets"])

        async def backfilled() -> bool:
            return poller.backfills >= 1

        assert await eventually(backfilled, 30)
        # Exactly the added repositories are swept (issue 13), not a whole cycle.
        assert poller.cycles == 1
        modes = {r.repository: r.mode for r in poller.last_backfill}
        assert modes == {"acme/widgets": "full"}
        assert len(await pulls.list_open(db, "acme/widgets")) == 12
        samples = await list_api_usage(db)
        assert {(s.installation_id, s.resource) for s in samples} == {(1, "core"), (1, "graphql")}
        assert sum(s.requests for s in samples) >= 4  # change checks and GraphQL pages
        assert min(s.remaining for s in samples if s.resource == "graphql") < 5000
    finally:
        await poller.stop()
    assert not poller.is_leader


async def test_stop_during_a_long_cycle__cut_short_quietly_not_an_error(
    sim_factory: SimFactory, db: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio
    import logging

    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    app = GitHubApp(app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url)
    poller = Poller(Reconciler(app, db), db, interval=3600, leader_retry=0.1)
    in_hook = asyncio.Event()

    async def slow_hook(_results: object) -> None:  # an engine still evaluating at shutdown
        in_hook.set()
        await asyncio.sleep(3600)

    poller.after_cycle.append(slow_hook)
    caplog.set_level(logging.INFO)
    await poller.start()
    await asyncio.wait_for(in_hook.wait(), 30)
    await poller.stop(timeout=0.2)
    await asyncio.sleep(0.1)  # the cancelled job's end is reported on the next loop turns
    assert not poller.is_leader
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert any("cut short by shutdown" in r.getMessage() for r in caplog.records)
