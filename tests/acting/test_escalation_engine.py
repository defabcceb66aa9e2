"""The whole loop against the sim, as ``prsteward serve`` wires it: reconcile -> engine ->
executor -> ``open_job`` -> the job API -> the reference agent acts on the sim -> the done-oracle
reads the sim. Re-evaluating (a webhook redelivery, the next cycle, a restart) never opens a
second job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.engine import open_job_hook
from bot.escalation import Escalations, github_reader
from bot.jobs_api import JobsApi
from ledger import agents as agent_store
from ledger import jobs as job_store
from ledger.models import JobState
from sim.reference_agent import run_agent
from tests.acting.conftest import acting_scenario
from tests.acting.test_escalation_support import serving


async def test_engine_opens_one_job_and_an_honest_fix_closes_the_loop(
    acting_world: Callable[..., Awaitable[Any]],
) -> None:
    world = await acting_world(acting_scenario(), escalate=open_job_hook)
    await world.sync()
    await world.evaluate()
    for _ in range(2):  # the next cycles decide the same: no second job
        await world.sync()
        await world.evaluate()
    [row] = await job_store.list_jobs(world.db)
    assert row.number == 11 and row.job.state == JobState.QUEUED
    assert row.job.trigger_kind == "failing_ci"

    escalations = Escalations(
        world.db, read_pull=github_reader(world.app, world.db), clock=world.engine.clock
    )
    _agent, token = await agent_store.add_agent(world.db, "ref", await world.now())
    async with serving(JobsApi(escalations)) as url:
        [result] = await run_agent(url, token, world.server.base_url, "honest-fix")
    assert result.verdict is not None and result.verdict["state"] == "VERIFIED_DONE"

    # the fix is on GitHub: the next cycle sees green CI and escalates nothing more
    await world.sync()
    await world.evaluate()
    rows = await job_store.list_jobs(world.db)
    assert [r.job.state for r in rows] == [JobState.VERIFIED_DONE]


async def test_lie_then_cycles_do_not_pile_up_jobs(
    acting_world: Callable[..., Awaitable[Any]],
) -> None:
    world = await acting_world(acting_scenario(), escalate=open_job_hook)
    await world.sync()
    await world.evaluate()
    escalations = Escalations(
        world.db, read_pull=github_reader(world.app, world.db), clock=world.engine.clock
    )
    _agent, token = await agent_store.add_agent(world.db, "liar", await world.now())
    async with serving(JobsApi(escalations)) as url:
        for _ in range(3):
            await run_agent(url, token, world.server.base_url, "lie-done")
            await world.sync()
            await world.evaluate()
    rows = await job_store.list_jobs(world.db)
    # attempt 1 and its stop-loss re-queue (attempt 2 of 2); then nothing more
    assert [(r.job.attempt, r.job.state) for r in rows] == [
        (1, JobState.VERIFY_FAILED),
        (2, JobState.VERIFY_FAILED),
    ]
    assert all("done-claim-with-budget-left" in r.job.flags for r in rows)
