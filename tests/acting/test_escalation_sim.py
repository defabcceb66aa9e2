"""Escalation end to end against the sim: a failing-CI PR gives exactly one job; the reference
agent leases it over the job API; prsteward reads GitHub (the sim) to decide the outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.jobs_api import JobsApi
from ledger import jobs as job_store
from ledger import spend as spend_ledger
from ledger.db import Ledger
from ledger.models import JobState
from sim.reference_agent import run_agent
from tests.acting.test_escalation_support import (
    Stack,
    failing_ci_scenario,
    fresh_sqlite_ledger,
    make_stack,
    serving,
)

SimFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = await fresh_sqlite_ledger(tmp_path / "ledger.db")
    yield ledger
    await ledger.close()


@pytest.fixture
async def stack(sim_factory: SimFactory, db: Ledger) -> Stack:
    sim = await sim_factory(scenario=failing_ci_scenario())
    return await make_stack(sim, db)


async def test_failing_ci_gives_exactly_one_job_across_cycles_and_restarts(
    stack: Stack, db: Ledger
) -> None:
    first = await stack.escalate()
    assert first is not None
    # the next cycles (webhook redeliveries, a restarted process) decide the same again
    assert await stack.escalate() is None
    restarted = await make_stack(stack.sim, db)
    assert await restarted.escalate() is None
    [row] = await job_store.list_jobs(db)
    assert row.job.state == JobState.QUEUED and row.job.trigger_kind == "failing_ci"
    assert [c["name"] for c in row.job.brief["evidence"]["failing_checks"]] == ["ci"]


async def test_honest_fix_is_verified_done_by_reading_the_sim(stack: Stack, db: Ledger) -> None:
    job_id = await stack.escalate()
    token = await stack.agent("honest")
    async with serving(JobsApi(stack.escalations)) as url:
        [result] = await run_agent(url, token, stack.sim.base_url, "honest-fix", max_jobs=1)
    assert result.job_id == job_id and result.pushed_shas
    assert result.verdict is not None and result.verdict["state"] == "VERIFIED_DONE"
    job = await job_store.get_job(db, job_id)  # type: ignore[arg-type]
    assert job is not None and job.state == JobState.VERIFIED_DONE
    state = await stack.sim.control.state("acme/widgets")
    [pull] = state["repositories"][0]["pulls"]
    assert pull["head_sha"] == result.pushed_shas[0] and pull["rollup"] == "SUCCESS"
    path = [t.to_state for t in await job_store.job_transitions(db, job_id)]  # type: ignore[arg-type]
    assert path == [
        "DETECTED",
        "QUEUED",
        "LEASED",
        "RUNNING",
        "CLAIMED_DONE",
        "VERIFYING",
        "VERIFIED_DONE",
    ]
    sums = await spend_ledger.job_spend(db, job_id)  # type: ignore[arg-type]
    assert sums.spent_dollars > 0 and sums.outstanding_dollars == 0


async def test_lying_agent_is_caught_flagged_and_requeued_once(stack: Stack, db: Ledger) -> None:
    job_id = await stack.escalate()
    token = await stack.agent("liar")
    async with serving(JobsApi(stack.escalations)) as url:
        [lie] = await run_agent(url, token, stack.sim.base_url, "lie-done", max_jobs=1)
        assert lie.verdict is not None and lie.verdict["state"] == "VERIFY_FAILED"
        assert "done-claim-with-budget-left" in lie.verdict["flags"]
        job = await job_store.get_job(db, job_id)  # type: ignore[arg-type]
        assert job is not None and job.state == JobState.VERIFY_FAILED
        assert "done-claim-with-budget-left" in job.flags
        # stop-loss allows one more attempt (max-attempts-per-trigger 2), then no more
        retry_id = lie.verdict["requeued_job_id"]
        assert retry_id is not None
        [again] = await run_agent(url, token, stack.sim.base_url, "lie-done", max_jobs=1)
        assert again.job_id == retry_id and again.verdict is not None
        assert (
            again.verdict["state"] == "VERIFY_FAILED" and again.verdict["requeued_job_id"] is None
        )
        assert await run_agent(url, token, stack.sim.base_url, "lie-done") == []
    # the sim's CI is still red: the claim changed nothing on GitHub
    state = await stack.sim.control.state("acme/widgets")
    assert state["repositories"][0]["pulls"][0]["rollup"] == "FAILURE"
