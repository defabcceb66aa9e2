"""Push and command delivery over the same job record: a signed POST to an agent-runner, a
local command with the job on stdin and a wall-clock limit. The done-oracle still decides."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.agent_delivery import (
    SIGNATURE_HEADER,
    CommandDelivery,
    EscalationWorker,
    PushDelivery,
    parse_report,
    verify_signature,
)
from bot.escalation import Escalations, open_job
from ledger import jobs as job_store
from ledger import spend as spend_ledger
from ledger.db import Ledger
from ledger.models import JobState
from policies.snapshot import CheckOutcome, PullRequestSnapshot
from policies.triage import decide
from tests.acting.test_escalation_support import fresh_sqlite_ledger
from tests.factories import (
    T0,
    failing,
    make_check,
    make_config,
    make_history,
    make_snapshot,
    make_spend,
)

NOW = T0 + timedelta(days=1)
FIXED_SHA = "f" * 40


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = await fresh_sqlite_ledger(tmp_path / "ledger.db")
    yield ledger
    await ledger.close()


class FakeGitHub:
    """What the oracle reads: the PR as GitHub shows it now."""

    def __init__(self, snapshot: PullRequestSnapshot) -> None:
        self.snapshot = snapshot
        self.reads = 0

    async def __call__(self, repository: str, number: int) -> PullRequestSnapshot | None:
        self.reads += 1
        return self.snapshot


async def queued(db: Ledger) -> tuple[int, PullRequestSnapshot]:
    config = make_config()
    snapshot = failing(make_snapshot(), "test")
    decision = decide(snapshot, make_history(), config, make_spend(), NOW)
    [candidate] = decision.escalations
    job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    assert job_id is not None
    return job_id, snapshot


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "agent.py"
    path.write_text(body)
    return [sys.executable, str(path)]


async def test_command_gets_the_brief_on_stdin_and_its_stdout_is_the_report(
    db: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRSTEWARD_WEBHOOK_SECRET", "s3cret-webhook")
    job_id, snapshot = await queued(db)
    github = FakeGitHub(snapshot)  # CI still red: a done-claim must not pass
    seen = tmp_path / "seen.json"
    command = script(
        tmp_path,
        "import json, os, sys\n"
        "job = json.load(sys.stdin)\n"
        f"open({str(seen)!r}, 'w').write(json.dumps({{'job': job, 'env': dict(os.environ)}}))\n"
        "print('thinking...')\n"
        "print(json.dumps({'outcome': 'done', 'tokens_in': 100, 'dollars': 0.2}))\n",
    )
    service = Escalations(db, read_pull=github, clock=lambda: NOW)
    outcome = await CommandDelivery(service, command, timeout=20).deliver_one()
    assert outcome is not None and outcome.state == JobState.VERIFY_FAILED
    assert "done-claim-with-budget-left" in outcome.flags and github.reads == 1
    got = json.loads(seen.read_text())
    assert got["job"]["job_id"] == job_id
    assert got["job"]["brief"]["trigger"]["kind"] == "failing_ci"
    assert "s3cret-webhook" not in json.dumps(got["env"])
    assert set(got["env"]) <= {"PATH", "HOME", "LANG", "PRSTEWARD_JOB_ID", "LC_CTYPE"}
    assert got["env"]["PRSTEWARD_JOB_ID"] == str(job_id)
    [attempt] = await job_store.attempts_of(db, job_id)
    assert attempt.delivery == "command" and attempt.claimed_outcome == "done"
    assert (await spend_ledger.job_spend(db, job_id)).spent_dollars == pytest.approx(0.2)


async def test_command_past_its_wall_clock_limit_is_a_crashed_attempt(
    db: Ledger, tmp_path: Path
) -> None:
    job_id, snapshot = await queued(db)
    command = script(tmp_path, "import time\ntime.sleep(30)\n")
    service = Escalations(db, read_pull=FakeGitHub(snapshot), clock=lambda: NOW)
    outcome = await CommandDelivery(service, command, timeout=0.5).deliver_one()
    assert outcome is not None and outcome.state == JobState.LEASE_EXPIRED
    assert outcome.requeued_job_id is not None  # attempt 1 of 2 counted; one more allowed
    job = await job_store.get_job(db, job_id)
    assert job is not None and job.state == JobState.LEASE_EXPIRED
    sums = await spend_ledger.job_spend(db, job_id)
    assert sums.spent_dollars == pytest.approx(job.budget_dollars or 0)  # fail closed


@pytest.fixture
async def runner() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """An agent-runner that checks the signature and answers with an honest report."""
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature("runner-secret", body, request.headers.get(SIGNATURE_HEADER)):
            return web.Response(status=401)
        job = json.loads(body)
        received.append(job)
        return web.json_response(
            {"outcome": "done", "pushed_shas": [FIXED_SHA], "tokens_in": 10, "dollars": 0.5}
        )

    app = web.Application()
    app.router.add_post("/run", handle)
    app_runner = web.AppRunner(app, access_log=None)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/run", received
    await app_runner.cleanup()


async def test_push_is_signed_and_the_fix_is_verified_on_github(
    db: Ledger, runner: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = runner
    job_id, snapshot = await queued(db)
    fixed = replace(
        snapshot,
        head_sha=FIXED_SHA,
        checks=(make_check("build"), make_check("test", CheckOutcome.SUCCESS)),
        checks_state="SUCCESS",
    )
    service = Escalations(db, read_pull=FakeGitHub(fixed), clock=lambda: NOW)
    worker = EscalationWorker(service, [PushDelivery(service, url, "runner-secret", timeout=10)])
    [outcome] = await worker.run_once()
    assert outcome.job_id == job_id and outcome.state == JobState.VERIFIED_DONE
    assert [job["job_id"] for job in received] == [job_id]
    assert await worker.run_once() == []  # nothing left to deliver


async def test_push_with_a_wrong_secret_is_refused_and_the_attempt_counts(
    db: Ledger, runner: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = runner
    _job_id, snapshot = await queued(db)
    service = Escalations(db, read_pull=FakeGitHub(snapshot), clock=lambda: NOW)
    outcome = await PushDelivery(service, url, "wrong-secret", timeout=10).deliver_one()
    assert received == []
    assert outcome is not None and outcome.state == JobState.LEASE_EXPIRED


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (b'{"outcome": "done"}', {"outcome": "done"}),
        (b'log line\n{"outcome": "failed"}\n', {"outcome": "failed"}),
        (b"no json here", None),
        (b"[1, 2]", None),
    ],
    ids=["json -> report", "log then json -> last json line", "text -> none", "array -> none"],
)
def test_parse_report(stdout: bytes, expected: dict[str, Any] | None) -> None:
    assert parse_report(stdout) == expected
