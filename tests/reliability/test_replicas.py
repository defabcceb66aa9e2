"""Two `prsteward serve` processes on one PostgreSQL ledger, polling the sim: exactly one poller
leader, the other takes over within 60 s of a kill -9; deliveries spread over both (some sent
to both) are processed once; jobs leased through both job APIs at once are leased once."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from bot.escalation import open_job
from ledger import agents as agent_store
from ledger import inbox
from ledger import jobs as job_store
from ledger.db import Ledger
from ledger.leader import POLLER_LOCK_KEY
from ledger.migrate import upgrade_async
from ledger.models import DeliveryState
from policies.triage import decide
from tests.acting.test_escalation_postgres import NOW
from tests.factories import failing, make_config, make_history, make_snapshot, make_spend
from tests.reliability.ledger_dump import dump_tables
from tests.reliability.serve import ServeProcess, sign, sim_env, size_from_env
from tests.watching.helpers import eventually
from tests.watching.test_webhook_server import PR_PAYLOAD

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SimFactory = Callable[..., Awaitable[Any]]
DELIVERIES = size_from_env("REPLICA_DELIVERIES", 300)
JOBS = 12
LEADS = "this process leads the poller"


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def lock_holders(url: str) -> list[int]:
    """Backend pids holding the poller's advisory lock (bigint key: classid 0, objsubid 1)."""
    conn = await asyncpg.connect(dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = 0 AND objid = $1 AND objsubid = 1",
            POLLER_LOCK_KEY,
        )
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows]


def leaders(servers: list[ServeProcess]) -> list[ServeProcess]:
    return [s for s in servers if s.running and LEADS in s.logs()]


async def queue_jobs(db: Ledger, count: int) -> set[int]:
    """Queued escalation jobs on a repository the sim does not have (so the replicas' own
    escalation workers, which re-read GitHub, leave them queued)."""
    ids: set[int] = set()
    config = make_config()
    for number in range(1, count + 1):
        snapshot = failing(make_snapshot(repository="acme/jobs", number=number), "test")
        decision = decide(snapshot, make_history(), config, make_spend(), NOW)
        [candidate] = decision.escalations
        job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
        assert job_id is not None
        ids.add(job_id)
    return ids


def body_for(number: int) -> bytes:
    payload = copy.deepcopy(PR_PAYLOAD)
    payload["installation"] = {"id": 1}
    payload["repository"] = {"full_name": "acme/spread", "id": 77}
    payload["number"] = payload["pull_request"]["number"] = number
    return json.dumps(payload).encode()


async def post(client: httpx.AsyncClient, url: str, delivery: str, body: bytes, secret: str) -> int:
    response = await client.post(
        url + "/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(body, secret),
        },
    )
    return response.status_code


async def test_two_replicas_one_leader_takeover_deliveries_and_jobs_once(
    sim_factory: SimFactory, postgres_url: str, tmp_path: Path
) -> None:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    await upgrade_async(postgres_url)
    settings = {
        **sim_env(sim, tmp_path),
        "PRSTEWARD_DATABASE_URL": postgres_url,
        "PRSTEWARD_POLL_INTERVAL_SECONDS": "1",
    }
    servers = [ServeProcess(tmp_path / name, dict(settings)) for name in ("a", "b")]
    for server in servers:
        server.start()
    try:
        for server in servers:
            await server.wait_ready()

        # --- exactly one leader
        assert await eventually(lambda: _one(leaders(servers)), 60, 0.2)
        assert len(await lock_holders(postgres_url)) == 1
        await asyncio.sleep(3)  # a few retry rounds later: still one
        assert len(leaders(servers)) == 1 and len(await lock_holders(postgres_url)) == 1

        # --- deliveries spread over both, every 10th sent to both
        statuses: dict[str, list[int]] = {}
        async with httpx.AsyncClient(timeout=60) as client:
            semaphore = asyncio.Semaphore(16)

            async def deliver(index: int) -> None:
                delivery, body = str(uuid.uuid4()), body_for(1000 + index)
                targets = servers if index % 10 == 0 else [servers[index % 2]]
                async with semaphore:
                    statuses[delivery] = sorted(
                        await asyncio.gather(
                            *(
                                post(client, s.url, delivery, body, sim.webhook_secret)
                                for s in targets
                            )
                        )
                    )

            await asyncio.gather(*(deliver(i) for i in range(DELIVERIES)))
        assert all(codes in ([202], [200, 202]) for codes in statuses.values()), Counter(
            tuple(c) for c in statuses.values()
        )

        async def drained() -> bool:
            async with Ledger(postgres_url) as db:
                counts = await inbox.count_by_state(db)
            return counts[DeliveryState.PENDING] + counts[DeliveryState.PROCESSING] == 0

        assert await eventually(drained, 300, 0.5)
        tables = await dump_tables(postgres_url)
        rows = [r for r in tables["webhook_delivery"] if r["delivery_id"] in statuses]
        assert len(rows) == DELIVERIES
        assert Counter(r["state"] for r in rows) == {DeliveryState.PROCESSED.value: DELIVERIES}
        observed = Counter(
            o["delivery_id"] for o in tables["observation"] if o["delivery_id"] in statuses
        )
        assert observed == dict.fromkeys(statuses, 1)  # each delivery's effect, once

        # --- jobs leased through both job APIs at once: each once
        async with Ledger(postgres_url) as db:
            queued = await queue_jobs(db, JOBS)
            tokens = [(await agent_store.add_agent(db, f"agent-{i}", NOW))[1] for i in range(4)]
        leased: list[int] = []
        async with httpx.AsyncClient(timeout=60) as client:

            async def drain(server: ServeProcess, token: str) -> None:
                while True:
                    response = await client.post(
                        server.url + "/api/jobs/lease",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if response.status_code == 204:
                        return
                    assert response.status_code == 200, response.text
                    leased.append(int(response.json()["job_id"]))

            await asyncio.gather(*(drain(servers[i % 2], token) for i, token in enumerate(tokens)))
        assert sorted(leased) == sorted(queued)  # every job once, none twice
        async with Ledger(postgres_url) as db:
            for job_id in queued:
                assert len(await job_store.attempts_of(db, job_id)) == 1

        # --- kill -9 the leader: the other takes over within 60 s and polls
        (leader,) = leaders(servers)
        (follower,) = [s for s in servers if s is not leader]
        before = await lock_holders(postgres_url)
        leader.kill9()
        assert await eventually(lambda: _leads(follower), 60, 0.2), follower.logs()[-3000:]
        after = await lock_holders(postgres_url)
        assert len(after) == 1 and after != before
        await sim.control.reset_accounting()
        await sim.control.event("edit", repo="acme/widgets", pr=10, title="Seen by the new leader")

        async def polled() -> bool:
            accounting = await sim.control.accounting()
            return accounting["requests"].get("POST /graphql", 0) > 0

        assert await eventually(polled, 60, 0.2)
        assert await asyncio.to_thread(follower.stop) == 0, follower.logs()[-3000:]
    finally:
        for server in servers:
            if server.running:
                server.kill9()
    for server in servers:
        logs = server.logs()
        at = logs.find("Traceback")
        assert at < 0, logs[max(0, at - 1500) : at + 2500]
        assert sim.webhook_secret not in logs


async def _one(found: list[ServeProcess]) -> bool:
    return len(found) == 1


async def _leads(server: ServeProcess) -> bool:
    return LEADS in server.logs()
