"""GitHub's bad days, end to end against the sim, with real sleeps and the real poller.

tests/watching/test_faults_sim.py checks the retry decisions with a fake sleep; here the
back-off is checked where it matters, in the sim's own request timeline
(``sim.accounting.timeline``: arrival time, endpoint, injected fault): no request to GitHub
inside a retry-after window, then polling resumes and nothing is lost (the ledger ends equal
to the sim).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.github import GitHubApp, RetryPolicy
from bot.poller import Poller
from bot.reconcile import Reconciler
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from tests.watching.helpers import eventually

SimFactory = Callable[..., Awaitable[Any]]
GRAPHQL = "POST /graphql"


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


class MovableClock:
    """Wall time plus an offset the test moves (the sim's clock is moved alongside)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def app_for(sim: Any, **options: Any) -> GitHubApp:
    return GitHubApp(
        app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url, **options
    )


def github_requests(sim: Any, since: float = 0.0) -> list[tuple[float, str, str]]:
    """The sim's timeline after ``since``, without the App-JWT discovery calls."""
    return [
        entry
        for entry in sim.sim.accounting.timeline
        if entry[0] > since and " /app/" not in entry[1]
    ]


def fault_times(sim: Any, kind: str) -> list[float]:
    return [at for at, _endpoint, fault in sim.sim.accounting.timeline if fault == kind]


async def ledger_matches_sim(db: Ledger, sim: Any, repository: str) -> bool:
    """Every open PR the sim has is open in the ledger with the same title and head."""
    (repo,) = (await sim.control.state(repository))["repositories"]
    expected = {
        int(p["number"]): (p["title"], p["head_sha"]) for p in repo["pulls"] if p["state"] == "OPEN"
    }
    found = {
        row.number: ((row.snapshot or {}).get("title"), row.head_sha)
        for row in await pulls.list_open(db, repository)
    }
    return found == expected


async def test_429_retry_after__next_request_waits_the_whole_window(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    reconciler = Reconciler(app_for(sim), db)
    await reconciler.discover()
    await sim.control.add_fault("secondary", path="^/graphql$", count=1, status=429, retry_after=2)

    results = await reconciler.run_cycle(only="acme/widgets", full=True)

    assert results[0].errors == [] and results[0].read == 11
    (limited,) = fault_times(sim, "secondary")
    after = [at for at, endpoint, _ in github_requests(sim, limited)]
    assert after, "the sweep never retried"
    assert min(after) - limited >= 2.0  # nothing inside the retry-after window


async def test_403_long_retry_after__poller_leaves_github_alone_then_resumes(
    sim_factory: SimFactory, db: Ledger
) -> None:
    """A retry-after longer than a request may wait: the installation is rescheduled, the
    poller keeps cycling without sending anything to GitHub, then sweeps when it may."""
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    reconciler = Reconciler(app_for(sim, policy=RetryPolicy(max_inline_wait=1.0)), db)
    poller = Poller(reconciler, db, interval=0.3, full_interval=3600)
    await sim.control.add_fault("secondary", path="^/graphql$", count=1, status=403, retry_after=4)
    await poller.start()
    try:

        async def swept() -> bool:
            row = await repositories.get_repository(db, "acme/widgets")
            return row is not None and row.last_sweep_ok_at is not None

        assert await eventually(swept, 90, 0.1)
    finally:
        await poller.stop()
    (limited,) = fault_times(sim, "secondary")
    inside = [e for e in github_requests(sim, limited) if e[0] < limited + 4.0]
    assert inside == [], f"requests inside the retry-after window: {inside}"
    assert github_requests(sim, limited + 4.0), "polling never resumed"
    assert await ledger_matches_sim(db, sim, "acme/widgets")
    assert await ledger_matches_sim(db, sim, "acme/gadgets")


async def test_timeouts__retried_within_the_timeout_and_the_sweep_completes(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    reconciler = Reconciler(
        app_for(sim, timeout=1.0, policy=RetryPolicy(base_delay=0.1, max_delay=0.5)), db
    )
    await reconciler.discover()
    await sim.control.add_fault("hang", path="^/graphql$", count=2, seconds=3)

    results = await reconciler.run_cycle(only="acme/widgets", full=True)

    assert results[0].errors == [] and results[0].read == 11
    assert len(fault_times(sim, "hang")) == 2
    assert await ledger_matches_sim(db, sim, "acme/widgets")


async def test_bad_day_under_the_running_poller__nothing_lost(
    sim_factory: SimFactory, db: Ledger
) -> None:
    """5xx bursts, a timeout and a 429 while the poller runs and PRs change: the poller never
    dies and the ledger ends equal to the sim, the changes included."""
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    reconciler = Reconciler(
        app_for(sim, timeout=1.0, policy=RetryPolicy(base_delay=0.1, max_delay=0.5)), db
    )
    poller = Poller(reconciler, db, interval=0.3, full_interval=3600)
    await poller.start()
    try:
        assert await eventually(lambda: ledger_matches_sim(db, sim, "acme/widgets"), 90, 0.2)
        # Everything fails for a while (more 5xx than one request's retries) ...
        await sim.control.add_fault("status", path="^/(graphql|repos/)", count=6, status=502)
        await sim.control.add_fault("hang", path="^/graphql$", count=1, seconds=3)
        await sim.control.add_fault(
            "secondary", path="^/graphql$", count=1, status=429, retry_after=1
        )
        # ... while PRs change on GitHub; the webhooks are lost, the poller marks nothing dirty:
        # only the cheap check (a 304 when nothing changed) can see them.
        await sim.control.event("edit", repo="acme/widgets", pr=10, title="Add docs (v2)")
        await sim.control.event("close", repo="acme/widgets", pr=17)
        await sim.control.event("open_pull", repo="acme/widgets", title="Late PR", author="zed")
        for number in (10, 17):
            await pulls.mark_dirty(db, "acme/widgets", [number], "test", datetime.now(UTC))

        async def caught_up() -> bool:
            if sim.sim.faults and any(f.count != 0 for f in sim.sim.faults):
                return False
            return await ledger_matches_sim(db, sim, "acme/widgets")

        assert await eventually(caught_up, 120, 0.2)
    finally:
        await poller.stop()
    faults = (await sim.control.accounting())["faults_injected"]
    assert sum(faults.values()) == 8, faults
    row = await pulls.get_pull(db, "acme/widgets", 17)
    assert row is not None and row.state != "open"


async def test_primary_limit_exhausted__no_request_until_reset_then_resumes(
    sim_factory: SimFactory, db: Ledger
) -> None:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    clock = MovableClock()
    reconciler = Reconciler(app_for(sim, clock=clock), db, clock=clock)
    await reconciler.discover()
    assert (await reconciler.run_cycle(only="acme/widgets", full=True))[0].errors == []
    # Someone else with the same installation (another tool) spends the whole REST hour.
    await sim.control.set_limits(rest_per_hour=3)
    await sim.control.reset_accounting()  # new windows, with the new limit
    other = app_for(sim).installation(1)
    for _ in range(3):
        assert (await other.request("GET", "/repos/acme/widgets/pulls")).status_code == 200
    await sim.control.event("edit", repo="acme/widgets", pr=10, title="Add docs (v2)")
    await pulls.mark_dirty(db, "acme/widgets", [10], "test", clock())

    first = await reconciler.run_cycle(only="acme/widgets")
    assert first[0].rescheduled_until is not None
    assert first[0].rescheduled_until > clock() + timedelta(minutes=30)  # the reset, not a retry
    assert (await sim.control.accounting())["rate_limited"]  # GitHub said so once
    blocked_from = datetime.now(UTC).timestamp()
    for _ in range(3):  # cycles during the block: skipped, nothing sent
        skipped = await reconciler.run_cycle(only="acme/widgets")
        assert skipped[0].rescheduled_until is not None
    assert github_requests(sim, blocked_from) == []
    row = await pulls.get_pull(db, "acme/widgets", 10)
    assert row is not None and row.dirty  # the work is kept

    await sim.control.advance("61m")  # the sim's hour is over ...
    clock.offset = timedelta(minutes=61)  # ... and prsteward's
    resumed = await reconciler.run_cycle(only="acme/widgets")
    assert resumed[0].errors == [], resumed[0].errors
    row = await pulls.get_pull(db, "acme/widgets", 10)
    assert row is not None and not row.dirty
    assert (row.snapshot or {}).get("title") == "Add docs (v2)"


async def test_mergeable_unknown__read_again_until_github_knows(
    sim_factory: SimFactory, db: Ledger
) -> None:
    """After a base move GitHub answers mergeable UNKNOWN ("ask again later") and sends no
    webhook when it knows: the PR must be read again, not left UNKNOWN until the full sweep."""
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    reconciler = Reconciler(app_for(sim), db)
    await reconciler.discover()
    await reconciler.run_cycle(only="acme/widgets", full=True)
    await sim.control.event("base_moved", repo="acme/widgets", conflicts=[10])
    await pulls.mark_dirty(db, "acme/widgets", [10], "push to main", datetime.now(UTC))

    await reconciler.run_cycle(only="acme/widgets")
    row = await pulls.get_pull(db, "acme/widgets", 10)
    assert row is not None and (row.snapshot or {}).get("mergeable") == "UNKNOWN"

    await sim.control.advance("2m")  # GitHub has computed it: CONFLICTING, no webhook
    await asyncio.sleep(0.01)
    await reconciler.run_cycle(only="acme/widgets")
    row = await pulls.get_pull(db, "acme/widgets", 10)
    assert row is not None and (row.snapshot or {}).get("mergeable") == "CONFLICTING"
    assert not row.dirty
