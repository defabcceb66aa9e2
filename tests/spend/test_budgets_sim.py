"""Budgets sized by the work and learned from verified-done history, end to end against the sim:
the engine reads the ledger's history of the repository, the triage sizes the job, open_job
records it; failed jobs never raise the learned budget. The spend report per trigger kind and
size class."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.budgets import render_spend_table, spend_report
from bot.report import build_report, render_markdown, report_json
from ledger import jobs as job_store
from ledger.models import JobState
from tests.acting.conftest import ActingWorld, acting_scenario
from tests.spend.helpers import open_job, seed_job

World = Callable[..., Awaitable[ActingWorld]]


async def test_budget_follows_verified_history_and_ignores_failed_jobs(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act"), escalate=open_job)
    now = await world.now()
    number = 100
    # Failed jobs first (they spent a lot), then 3 verified-done jobs per size class: the
    # circuit breaker stays closed (the last verifications passed).
    for size in ("S", "M", "L"):
        number += 1
        await seed_job(
            world.db,
            number,
            kind="failing_ci",
            size=size,
            state=JobState.VERIFY_FAILED,
            dollars=2.9,
            tokens=290_000,
            now=now,
            flags=["done-claim-with-budget-left"],
        )
    for size in ("S", "M", "L"):
        for _ in range(3):
            number += 1
            await seed_job(
                world.db,
                number,
                kind="failing_ci",
                size=size,
                state=JobState.VERIFIED_DONE,
                dollars=0.4,
                tokens=40_000,
                now=now,
            )

    await world.sync()
    await world.evaluate()

    [row] = await job_store.list_jobs(world.db, repository="acme/widgets", number=11)
    job = row.job
    assert job.state == JobState.QUEUED and job.trigger_kind == "failing_ci"
    assert job.size_class in {"S", "M", "L"}
    # p75 of the verified spend (40k tokens, $0.40) x margin 1.25; the failed 290k never count
    assert (job.budget_tokens, job.budget_dollars) == (50_000, 0.5)
    assert job.brief["budget"]["source"] == f"learned:{job.size_class}:n=3"

    stats = {(s.trigger_kind, s.size_class): s for s in await spend_report(world.db)}
    small = stats[("failing_ci", "S")]
    assert (small.jobs, small.verified_done) == (4, 3)
    assert small.median_dollars == 0.4 and small.p90_dollars == 2.9
    assert small.utilisation is not None and abs(small.utilisation - 0.4 / 3.0) < 1e-9
    assert small.done_claims_rejected_with_budget_left == 1
    table = "\n".join(render_spend_table(list(stats.values())))
    assert "| failing_ci | S | 4 | 3 (75%) | $0.40 | $2.90 | 13% | 1 |" in table
    report = await build_report(world.db, now)  # `prsteward report`: the same section
    assert "| failing_ci | S | 4 | 3 (75%) | $0.40 | $2.90 | 13% | 1 |" in render_markdown(report)
    by_class = report_json(report)["spend_by_trigger_and_size"]
    assert {(r["trigger_kind"], r["size_class"]) for r in by_class} >= {("failing_ci", "S")}
    await _dashboard_shows_the_spend_table(world)


async def _dashboard_shows_the_spend_table(world: ActingWorld) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from bot.dashboard import Dashboard

    app = web.Application()
    now = await world.now()
    Dashboard(world.db, host="127.0.0.1", token=None, clock=lambda: now).mount(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        page = await (await client.get("/")).text()
    finally:
        await client.close()
    assert "Spend by trigger and size" in page
    assert "<td>failing_ci</td><td>S</td><td>4</td><td>3 (75%)</td>" in page.replace("\n", "")


async def test_without_history_the_class_default_applies(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode="act"), escalate=open_job)
    now = await world.now()
    for number in (201, 202, 203):  # failed only: they never make a learned budget
        await seed_job(
            world.db,
            number,
            kind="failing_ci",
            size="S",
            state=JobState.VERIFY_FAILED,
            dollars=0.1,
            tokens=10_000,
            now=now,
        )
    for number in (204, 205, 206):  # closes the circuit breaker; another trigger kind
        await seed_job(
            world.db,
            number,
            kind="conflict",
            size="S",
            state=JobState.VERIFIED_DONE,
            dollars=0.1,
            tokens=10_000,
            now=now,
        )
    await world.sync()
    await world.evaluate()
    [row] = await job_store.list_jobs(world.db, repository="acme/widgets", number=11)
    assert row.job.brief["budget"]["source"] == f"default:{row.job.size_class}"
