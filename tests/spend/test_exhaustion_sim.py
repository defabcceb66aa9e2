"""Exhaustion asks, end to end against the sim: a job that spends its budget while CI is still
red becomes BUDGET_EXHAUSTED, is announced once (a line in the sticky comment, the metric) and
waits; ``/prsteward budget +50k`` from a maintainer re-queues it exactly once, recorded as a
grant, however often the command comment is read again (redelivery, a restarted desk); nothing
else re-opens it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.budgets import ExhaustionAnnouncer, budget_granter, sticky_line_writer
from bot.commands import CommandDesk
from bot.executor import GitHubActions
from bot.metrics import render_metrics
from ledger import jobs as job_store
from ledger import spend as spend_ledger
from ledger.models import JobState, Spend, SpendKind
from tests.lifecycle.conftest import LifecycleWorld, acting_scenario
from tests.spend.helpers import agent, escalations_for, open_job

World = Callable[..., Awaitable[LifecycleWorld]]


async def grant_rows(world: LifecycleWorld) -> list[Spend]:
    from sqlalchemy import select

    async with world.db.transaction() as session:
        rows = await session.execute(select(Spend).where(Spend.kind == SpendKind.GRANT.value))
        return list(rows.scalars().all())


async def test_exhaustion_waits_for_a_grant_and_the_grant_requeues_exactly_once(
    lifecycle_world: World,
) -> None:
    world = await lifecycle_world(acting_scenario(mode="act"), escalate=open_job)
    escalations = escalations_for(world)
    world.desk.grant_budget = budget_granter(escalations)
    await world.step()
    [row] = await job_store.list_jobs(world.db, number=11)
    job = row.job
    assert job.state == JobState.QUEUED and job.id is not None

    worker = await agent(world.db, "worker", await world.now())
    leased = await escalations.lease(worker)
    assert leased is not None and leased["job_id"] == job.id
    outcome = await escalations.report(
        worker,
        job.id,
        {
            "outcome": "failed",
            "tokens_in": job.budget_tokens,
            "dollars": job.budget_dollars,
        },
    )
    assert outcome.state == JobState.BUDGET_EXHAUSTED.value, outcome

    # announced once: one line in the sticky comment, however often the announcer runs
    async def actions_for(_repository: str) -> GitHubActions:
        return GitHubActions(world.app.installation(1))

    announcer = ExhaustionAnnouncer(world.db, sticky_line_writer(actions_for, world.db))
    assert await announcer(await world.now()) == [job.id]
    assert await announcer(await world.now()) == []
    stickies = [
        c for c in await world.bot_comments("acme/widgets", 11) if "budget exhausted" in c["body"]
    ]
    assert len(stickies) == 1 and stickies[0]["body"].count("budget exhausted") == 1
    assert "/prsteward budget +50k" in stickies[0]["body"]
    metrics = (await render_metrics(world.db)).decode()
    assert "prsteward_budget_exhausted_total 1.0" in metrics

    # it waits: more cycles, housekeeping and a new decision open nothing
    await world.step()
    await escalations.tick()
    await world.step()
    assert [r.job.id for r in await job_store.list_jobs(world.db, number=11)] == [job.id]
    assert await escalations.lease(worker) is None

    # someone without write access cannot grant
    await world.comment(11, "dave", "/prsteward budget +50k")
    await world.step()
    assert len(await job_store.list_jobs(world.db, number=11)) == 1

    # a maintainer grants: queued again once, recorded as a grant in the spend ledger
    await world.comment(11, "alice", "/prsteward budget +50k")
    await world.step()
    rows = await job_store.list_jobs(world.db, number=11)
    assert len(rows) == 2
    again = rows[-1].job
    assert again.state == JobState.QUEUED and again.attempt == job.attempt + 1
    assert again.budget_tokens == 50_000
    rate = (job.budget_dollars or 0.0) / (job.budget_tokens or 1)
    assert again.budget_dollars == round(50_000 * rate, 4)  # dollars at the job's own rate
    [grant] = await grant_rows(world)
    assert grant.job_id == job.id and grant.tokens_in == 50_000
    commands = await world.commands(11)
    assert commands[-1].effect is not None and "re-queued as job" in commands[-1].effect

    # the command comment read again (a redelivery), by a restarted desk too: nothing more
    await world.step()
    desk = CommandDesk(world.db, world.desk.client_for, world.desk.pacer)
    desk.grant_budget = budget_granter(escalations)
    world.engine.commands = desk
    await world.step()
    # a second grant on the same exhausted job (CLI) re-queues nothing
    second = await escalations.grant(job.id, 10_000, 0.1, "a maintainer (CLI)")
    assert second.requeued_job_id is None
    assert len(await job_store.list_jobs(world.db, number=11)) == 2
    assert len(await grant_rows(world)) == 1
    sums = await spend_ledger.job_spend(world.db, job.id)
    assert sums.granted_tokens == 50_000
