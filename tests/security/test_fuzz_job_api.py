"""Fuzzing the agents' job API (bot/jobs_api.py) as the agent holding the lease: random
heartbeat and report bodies, random job ids, never a 5xx and never a crash.

Examples: ``PRSTEWARD_TEST_FUZZ_EXAMPLES`` (default 60 in CI; more on demand).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.escalation import Escalations
from bot.jobs_api import JobsApi
from ledger import agents as agent_store
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from tests.acting.test_escalation_postgres import NOW, queue_jobs
from tests.acting.test_escalation_support import serving

T = TypeVar("T")
EXAMPLES = int(os.environ.get("PRSTEWARD_TEST_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JOBS = 40


@dataclass
class Api:
    url: str
    token: str
    loop: asyncio.AbstractEventLoop
    current: list[int] = field(default_factory=list)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('jobs') / 'ledger.db'}"
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        await upgrade_async(url)
        db = Ledger(url)
        try:
            await queue_jobs(db, JOBS)
            _agent, token = await agent_store.add_agent(db, "fuzzer", NOW)
            async with serving(JobsApi(Escalations(db, clock=lambda: NOW))) as base:
                ready.update(url=base, token=token)
                started.set()
                await stop.wait()
        finally:
            await db.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(120)
    yield Api(ready["url"], ready["token"], loop)
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=16,
)
REPORTS = st.fixed_dictionaries(
    {},
    optional={
        "outcome": st.one_of(st.sampled_from(["done", "failed", "blocked", "DONE", ""]), JSON),
        "tokens_in": st.one_of(st.integers(min_value=-(10**20), max_value=10**20), JSON),
        "tokens_out": st.one_of(st.integers(), JSON),
        "dollars": st.one_of(st.floats(allow_nan=True, allow_infinity=True), JSON),
        "pushed_shas": st.one_of(st.lists(st.text(max_size=45), max_size=3), JSON),
        "blocker_evidence": JSON,
        "model": JSON,
        "summary": JSON,
    },
)
BODIES = st.one_of(
    REPORTS.map(lambda r: json.dumps(r).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


VALID_REPORT = json.dumps(
    {"outcome": "failed", "tokens_in": 100, "tokens_out": 20, "dollars": 0.05, "summary": "no"}
).encode()


@FUZZ
@example(endpoint="heartbeat", body=b'{"tokens_in": 5}', job="current")
@example(endpoint="report", body=VALID_REPORT, job="current")
@example(endpoint="report", body=b'{"outcome": "done", "dollars": NaN}', job="current")
@given(
    endpoint=st.sampled_from(["heartbeat", "report", "show"]),
    body=BODIES,
    job=st.one_of(st.just("current"), st.integers(min_value=0, max_value=10**12)),
)
def test_random_job_calls__never_5xx(api: Api, endpoint: str, body: bytes, job: Any) -> None:
    with httpx.Client(base_url=api.url, timeout=60) as client:
        auth = {"Authorization": f"Bearer {api.token}"}
        if not api.current:
            leased = client.post("/api/jobs/lease", headers=auth)
            assert leased.status_code in {200, 204}, leased.text
            if leased.status_code == 200:
                api.current.append(int(leased.json()["job_id"]))
        job_id = (api.current[-1] if api.current else 1) if job == "current" else job
        if endpoint == "show":
            response = client.get(f"/api/jobs/{job_id}", headers=auth)
        else:
            response = client.post(f"/api/jobs/{job_id}/{endpoint}", content=body, headers=auth)
        assert response.status_code < 500, (endpoint, body[:200], response.text[:500])
        if endpoint == "report" and response.status_code == 200:
            api.current.clear()  # the job has a verdict: lease the next one
