"""Two agent workers on PostgreSQL never lease the same job (FOR UPDATE SKIP LOCKED), and one
escalation proposed by two replicas at once opens one job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.escalation import Escalations, open_job
from ledger import agents as agent_store
from ledger import jobs as job_store
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import JobState
from policies.triage import decide
from tests.factories import T0, failing, make_config, make_history, make_snapshot, make_spend

pytestmark = pytest.mark.postgres
NOW = T0 + timedelta(days=1)
PULLS = 12


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(postgres_url)
    ledger = Ledger(postgres_url)
    yield ledger
    await ledger.close()


async def queue_jobs(db: Ledger, count: int) -> set[int]:
    ids: set[int] = set()
    config = make_config()
    for number in range(1, count + 1):
        snapshot = failing(make_snapshot(number=number), "test")
        decision = decide(snapshot, make_history(), config, make_spend(), NOW)
        [candidate] = decision.escalations
        job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
        assert job_id is not None
        ids.add(job_id)
    return ids


async def test_two_workers_never_lease_the_same_job(pg: Ledger, postgres_url: str) -> None:
    queued = await queue_jobs(pg, PULLS)
    other = Ledger(postgres_url)  # a second process: its own engine and connections
    try:
        a1, _ = await agent_store.add_agent(pg, "w1", NOW)
        a2, _ = await agent_store.add_agent(pg, "w2", NOW)
        workers = [
            (Escalations(pg, clock=lambda: NOW), a1),
            (Escalations(other, clock=lambda: NOW), a2),
        ]

        async def drain(service: Escalations, agent: object) -> list[int]:
            got: list[int] = []
            while (job := await service.lease(agent)) is not None:  # type: ignore[arg-type]
                got.append(int(job["job_id"]))
            return got

        results = await asyncio.gather(*(drain(s, a) for s, a in workers for _ in range(3)))
    finally:
        await other.close()
    leased = [job_id for batch in results for job_id in batch]
    assert sorted(leased) == sorted(queued)  # every job once, none twice
    assert len(set(leased)) == len(leased)
    rows = await job_store.list_jobs(pg)
    assert all(r.job.state == JobState.LEASED for r in rows)
    assert len(await job_store.attempts_of(pg, rows[0].job.id)) == 1  # type: ignore[arg-type]


async def test_concurrent_open_of_one_candidate_opens_one_job(
    pg: Ledger, postgres_url: str
) -> None:
    config = make_config()
    snapshot = failing(make_snapshot(), "test")
    decision = decide(snapshot, make_history(), config, make_spend(), NOW)
    [candidate] = decision.escalations
    other = Ledger(postgres_url)
    try:
        opened = await asyncio.gather(
            *(
                open_job(db, decision, candidate, snapshot, NOW, config=config)
                for db in (pg, other, pg, other)
            )
        )
    finally:
        await other.close()
    assert len([o for o in opened if o is not None]) == 1
    assert len(await job_store.list_jobs(pg)) == 1


async def test_life_cycle_on_postgres_lease_expiry_requeue_report_verify(pg: Ledger) -> None:
    from dataclasses import replace

    from policies.snapshot import CheckOutcome

    [job_id] = await queue_jobs(pg, 1)
    snapshot = failing(make_snapshot(number=1), "test")
    agent, _ = await agent_store.add_agent(pg, "w", NOW)
    clock = [NOW]
    pushed = "c" * 40
    fixed = replace(
        snapshot,
        head_sha=pushed,
        checks=tuple(replace(c, outcome=CheckOutcome.SUCCESS) for c in snapshot.checks),
        checks_state="SUCCESS",
    )

    async def github(repository: str, number: int) -> object:
        return fixed

    service = Escalations(
        pg,
        read_pull=github,
        clock=lambda: clock[0],
        lease_ttl=timedelta(minutes=1),  # type: ignore[arg-type]
    )
    assert await service.lease(agent) is not None
    clock[0] = NOW + timedelta(minutes=5)
    [expired] = await service.expire_leases()
    assert expired.requeued_job_id is not None
    leased = await service.lease(agent)
    assert leased is not None and leased["job_id"] == expired.requeued_job_id
    await service.heartbeat(agent, expired.requeued_job_id, {"dollars": 0.1})
    outcome = await service.report(
        agent, expired.requeued_job_id, {"outcome": "done", "pushed_shas": [pushed], "dollars": 0.3}
    )
    assert outcome.state == JobState.VERIFIED_DONE
    states = {r.job.id: r.job.state for r in await job_store.list_jobs(pg)}
    assert states == {
        job_id: JobState.LEASE_EXPIRED,
        expired.requeued_job_id: JobState.VERIFIED_DONE,
    }
