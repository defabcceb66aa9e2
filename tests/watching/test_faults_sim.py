"""GitHub's bad days, from the sim: bounded retries, honoured back-off, work kept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.github import GitHubApp
from bot.reconcile import Reconciler
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async

SimFactory = Callable[..., Awaitable[Any]]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


async def setup(sim_factory: SimFactory, db: Ledger) -> tuple[Any, Reconciler, Sleeps]:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    sleeps = Sleeps()
    app = GitHubApp(
        app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url, sleep=sleeps
    )
    reconciler = Reconciler(app, db)
    await reconciler.discover()
    return sim, reconciler, sleeps


async def test_burst_of_5xx__retried_and_the_sweep_completes(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim, reconciler, sleeps = await setup(sim_factory, db)
    await sim.control.add_fault("status", path="^/graphql$", count=2, status=502)
    results = await reconciler.run_cycle(only="acme/widgets")
    assert results[0].errors == [] and results[0].read == 11
    assert len(sleeps.calls) == 2
    accounting = await sim.control.accounting()
    assert sum(accounting["faults_injected"].values()) == 2


async def test_5xx_forever__bounded_attempts_error_recorded_work_kept(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim, reconciler, _ = await setup(sim_factory, db)
    await reconciler.run_cycle(only="acme/widgets")
    await pulls.mark_dirty(db, "acme/widgets", [11], "check_run.completed", datetime.now(UTC))
    await sim.control.reset_accounting()
    await sim.control.add_fault("status", path="^/graphql$", count=-1, status=503)
    results = await reconciler.run_cycle(only="acme/widgets")
    assert results[0].errors and "503" in results[0].errors[0]
    accounting = await sim.control.accounting()
    assert accounting["requests"]["POST /graphql"] == reconciler.app.policy.max_attempts
    row = await pulls.get_pull(db, "acme/widgets", 11)
    assert row is not None and row.dirty  # kept for the next cycle
    await sim.control.clear_faults()
    again = await reconciler.run_cycle(only="acme/widgets")
    assert again[0].errors == [] and again[0].read == 1
    row = await pulls.get_pull(db, "acme/widgets", 11)
    assert row is not None and not row.dirty


async def test_secondary_limit_long_retry_after__rescheduled_not_hammered(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim, reconciler, sleeps = await setup(sim_factory, db)
    await sim.control.add_fault(
        "secondary", path="^/graphql$", count=1, status=403, retry_after=600
    )
    results = await reconciler.run_cycle(only="acme/widgets")
    assert results[0].rescheduled_until is not None
    assert sleeps.calls == []  # no sleeping inside the request
    accounting = await sim.control.accounting()
    assert accounting["requests"]["POST /graphql"] == 1
    # Until then, the installation is left alone: no request at all.
    await sim.control.reset_accounting()
    skipped = await reconciler.run_cycle(only="acme/widgets")
    assert skipped[0].mode == "skipped" and skipped[0].rescheduled_until is not None
    assert sum((await sim.control.accounting())["requests"].values()) == 0
    row = await repositories.get_repository(db, "acme/widgets")
    assert row is not None and row.last_sweep_ok_at is None  # the sweep is still owed


async def test_secondary_limit_short_retry_after__waited_then_done(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim, reconciler, sleeps = await setup(sim_factory, db)
    await sim.control.add_fault("secondary", path="^/graphql$", count=1, status=429, retry_after=3)
    results = await reconciler.run_cycle(only="acme/widgets")
    assert results[0].errors == [] and results[0].read == 11
    assert sleeps.calls == [3.0]


async def test_graphql_points_exhausted__rate_limited_until_reset(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim, reconciler, _ = await setup(sim_factory, db)
    await sim.control.set_limits(graphql_points_per_hour=5)
    results = await reconciler.run_cycle(only="acme/widgets")
    assert results[0].rescheduled_until is not None
    assert any("GraphQL rate limit" in e for e in results[0].errors)
