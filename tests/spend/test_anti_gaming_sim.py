"""Anti-gaming against the sim: budget is a secondary signal, GitHub's gates the primary one.
An agent that spends to 85% and claims done while CI is red is rejected; a job whose spend
grows across heartbeats while GitHub shows nothing new is flagged no-progress and stopped at
the first heartbeat past half its budget."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import jobs as job_store
from ledger import spend as spend_ledger
from ledger.db import Ledger
from ledger.models import JobState
from tests.acting.test_escalation_support import (
    Stack,
    failing_ci_scenario,
    fresh_sqlite_ledger,
    make_stack,
)
from tests.spend.helpers import agent

SimFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = await fresh_sqlite_ledger(tmp_path / "ledger.db")
    yield ledger
    await ledger.close()


@pytest.fixture
async def stack(sim_factory: SimFactory, db: Ledger) -> Stack:
    return await make_stack(await sim_factory(scenario=failing_ci_scenario()), db)


def share(job: Any, fraction: float) -> dict[str, Any]:
    return {
        "tokens_in": int((job.budget_tokens or 0) * fraction),
        "dollars": round((job.budget_dollars or 0.0) * fraction, 6),
    }


async def test_spending_to_85_percent_then_claiming_done_is_still_rejected(
    stack: Stack, db: Ledger
) -> None:
    job_id = await stack.escalate()
    assert job_id is not None
    job = await job_store.get_job(db, job_id)
    assert job is not None
    worker = await agent(db, "liar", job.created_at)
    assert await stack.escalations.lease(worker) is not None
    shas = []
    for fraction in (0.3, 0.6, 0.85):  # it pushes (GitHub shows activity), CI stays red
        pushed = await stack.sim.control.event(
            "push", repo="acme/widgets", pr=1, user="prsteward-agent"
        )
        shas.append(pushed["sha"])
        await stack.sim.control.event("ci", repo="acme/widgets", pr=1, conclusion="failure")
        await stack.read()
        beat = await stack.escalations.heartbeat(worker, job_id, share(job, fraction))
        assert not beat["stop"] and "flags" not in beat, beat
    outcome = await stack.escalations.report(
        worker, job_id, {"outcome": "done", "pushed_shas": shas, **share(job, 0.85)}
    )
    # the oracle read the sim: CI is red on the agent's head, so the claim changes nothing
    assert outcome.state == JobState.VERIFY_FAILED.value, outcome
    state = await stack.sim.control.state("acme/widgets")
    pull = state["repositories"][0]["pulls"][0]
    assert pull["head_sha"] == shas[-1] and pull["rollup"] == "FAILURE"
    sums = await spend_ledger.job_spend(db, job_id)
    assert sums.outstanding_dollars == 0


async def test_a_lying_agent_at_85_percent_without_heartbeats_is_rejected(
    stack: Stack, db: Ledger
) -> None:
    job_id = await stack.escalate()
    assert job_id is not None
    job = await job_store.get_job(db, job_id)
    assert job is not None
    worker = await agent(db, "liar", job.created_at)
    assert await stack.escalations.lease(worker) is not None
    outcome = await stack.escalations.report(
        worker, job_id, {"outcome": "done", **share(job, 0.85)}
    )
    assert outcome.state == JobState.VERIFY_FAILED.value, outcome
    assert "claimed done but nothing was pushed" in outcome.reason
    # 15% left: not the "budget left" flag (that is for > 20%), but rejected all the same
    assert "done-claim-with-budget-left" not in outcome.flags


async def test_no_progress_is_flagged_then_stopped_at_the_first_beat_past_half(
    stack: Stack, db: Ledger
) -> None:
    job_id = await stack.escalate()
    assert job_id is not None
    job = await job_store.get_job(db, job_id)
    assert job is not None
    worker = await agent(db, "spinner", job.created_at)
    assert await stack.escalations.lease(worker) is not None
    answers = []
    for fraction in (0.1, 0.2, 0.3, 0.45, 0.55, 0.7):
        try:
            answers.append(await stack.escalations.heartbeat(worker, job_id, share(job, fraction)))
        except Exception as error:
            answers.append({"error": str(error)})
    assert [a.get("stop", False) for a in answers[:4]] == [False, False, False, False]
    assert "no-progress" in answers[2]["flags"]  # spend grew across 2 silent beats
    assert answers[4]["stop"] is True and answers[4]["state"] == JobState.NEEDS_HUMAN.value
    assert "error" in answers[5]  # stopped: no more heartbeats
    stopped = await job_store.get_job(db, job_id)
    assert stopped is not None and stopped.state == JobState.NEEDS_HUMAN
    assert "no-progress" in stopped.flags
    # charged its last heartbeat's spend; never re-queued
    sums = await spend_ledger.job_spend(db, job_id)
    assert abs(sums.spent_dollars - share(job, 0.55)["dollars"]) < 1e-6
    assert sums.outstanding_dollars == 0
    assert len(await job_store.list_jobs(db)) == 1


async def test_tokens_without_dollars_are_priced_from_the_price_table(
    sim_factory: SimFactory, db: Ledger
) -> None:
    from policies.config import Config

    config = Config.model_validate(
        {
            "mode": "act",
            "app_logins": ["prsteward"],
            "prices": {"big-model": {"input": 3.0, "cached-input": 0.3, "output": 15.0}},
        }
    )
    stack = await make_stack(await sim_factory(scenario=failing_ci_scenario()), db, config)
    job_id = await stack.escalate()
    assert job_id is not None
    job = await job_store.get_job(db, job_id)
    assert job is not None
    worker = await agent(db, "priced", job.created_at)
    assert await stack.escalations.lease(worker) is not None
    await stack.escalations.report(
        worker,
        job_id,
        {"outcome": "failed", "tokens_in": 10_000, "tokens_out": 2_000, "model": "big-model"},
    )
    sums = await spend_ledger.job_spend(db, job_id)
    assert abs(sums.spent_dollars - (10_000 * 3.0 + 2_000 * 15.0) / 1_000_000) < 1e-9
