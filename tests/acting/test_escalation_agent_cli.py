"""``python -m sim.reference_agent``: the demo's way to run the reference agent, as a process
(token from the environment, one JSON line per job)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.jobs_api import JobsApi
from ledger import jobs as job_store
from ledger.db import Ledger
from ledger.models import JobState
from tests.acting.test_escalation_support import (
    failing_ci_scenario,
    fresh_sqlite_ledger,
    make_stack,
    serving,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = await fresh_sqlite_ledger(tmp_path / "ledger.db")
    yield ledger
    await ledger.close()


async def run_cli(*args: str, token: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRSTEWARD_")}
    env["PRSTEWARD_AGENT_TOKEN"] = token
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sim.reference_agent",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_cli_fixes_the_job_and_prints_what_prsteward_decided(
    sim_factory: Callable[..., Awaitable[Any]], db: Ledger
) -> None:
    stack = await make_stack(await sim_factory(scenario=failing_ci_scenario()), db)
    job_id = await stack.escalate()
    token = await stack.agent("cli")
    async with serving(JobsApi(stack.escalations)) as url:
        code, out, err = await run_cli(
            "--prsteward", url, "--sim", stack.sim.base_url, "--behaviour", "honest-fix",
            "--idle-exit", token=token,
        )  # fmt: skip
        bad, _out, bad_err = await run_cli(
            "--prsteward", url, "--sim", stack.sim.base_url, "--idle-exit", token="wrong",
        )  # fmt: skip
    assert code == 0, err
    [line] = out.splitlines()
    result = json.loads(line)
    assert result["job_id"] == job_id and result["verdict"]["state"] == "VERIFIED_DONE"
    job = await job_store.get_job(db, job_id)  # type: ignore[arg-type]
    assert job is not None and job.state == JobState.VERIFIED_DONE
    assert bad != 0 and "401" in bad_err


def test_mix_is_reproducible_per_seed_and_covers_the_behaviours() -> None:
    import random

    from sim.reference_agent import BEHAVIOURS, choose

    def picks(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [choose("mix", rng) for _ in range(60)]

    assert picks(7) == picks(7) and picks(7) != picks(8)
    assert set(picks(7)) == set(BEHAVIOURS) - {"crash"}
    with pytest.raises(Exception, match="behaviour"):
        choose("teleport", random.Random(0))
