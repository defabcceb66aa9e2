"""Escalation jobs in the ledger: open_job from a decision, the state machine, the unique key,
shadow mode, budget reservation, leases, reports and lease expiry (no GitHub needed here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.escalation import Escalations, ReportError, open_job
from ledger import agents as agent_store
from ledger import jobs as job_store
from ledger import spend as spend_ledger
from ledger.db import Ledger
from ledger.models import JobState
from policies.snapshot import CheckOutcome
from policies.triage import decide
from tests.acting.test_escalation_support import fresh_sqlite_ledger
from tests.factories import T0, failing, make_config, make_history, make_snapshot, make_spend

NOW = T0 + timedelta(days=1)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = await fresh_sqlite_ledger(tmp_path / "ledger.db")
    yield ledger
    await ledger.close()


def escalation(mode: str = "act", **snapshot_overrides: object):  # type: ignore[no-untyped-def]
    snapshot = failing(make_snapshot(**snapshot_overrides), "test")
    config = make_config(mode=mode)
    decision = decide(snapshot, make_history(), config, make_spend(), NOW)
    [candidate] = decision.escalations
    return decision, candidate, snapshot, config


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        (JobState.DETECTED, JobState.QUEUED, True),
        (JobState.DETECTED, JobState.SUPPRESSED, True),
        (JobState.QUEUED, JobState.LEASED, True),
        (JobState.LEASED, JobState.RUNNING, True),
        (JobState.RUNNING, JobState.CLAIMED_DONE, True),
        (JobState.CLAIMED_DONE, JobState.VERIFYING, True),
        (JobState.VERIFYING, JobState.VERIFIED_DONE, True),
        (JobState.RUNNING, JobState.LEASE_EXPIRED, True),
        (JobState.QUEUED, JobState.VERIFIED_DONE, False),
        (JobState.CLAIMED_DONE, JobState.VERIFIED_DONE, False),
        (JobState.SUPPRESSED, JobState.QUEUED, False),
        (JobState.VERIFY_FAILED, JobState.QUEUED, False),
        (JobState.LEASE_EXPIRED, JobState.RUNNING, False),
    ],
    ids=lambda v: str(v),
)
def test_transition_table(source: JobState, target: JobState, ok: bool) -> None:
    assert job_store.legal(source, target) is ok


async def test_act_mode_candidate_queues_one_job_with_reserved_budget(db: Ledger) -> None:
    decision, candidate, snapshot, config = escalation()
    job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    assert job_id is not None
    job = await job_store.get_job(db, job_id)
    assert job is not None and job.state == JobState.QUEUED
    assert (job.attempt, job.max_attempts) == (1, config.stop_loss.max_attempts_per_trigger)
    assert job.brief["attempt"] == {"n": 1, "of": job.max_attempts}
    assert job.size_class == candidate.budget.size_class  # type: ignore[union-attr]
    assert job.brief["job_id"] == job_id
    sums = await spend_ledger.job_spend(db, job_id)
    assert sums.reserved_dollars == candidate.budget.dollars  # type: ignore[union-attr]
    assert sums.outstanding_dollars == candidate.budget.dollars  # type: ignore[union-attr]
    history = [(t.from_state, t.to_state) for t in await job_store.job_transitions(db, job_id)]
    assert history == [(None, "DETECTED"), ("DETECTED", "QUEUED")]


async def test_same_candidate_twice_opens_one_job(db: Ledger) -> None:
    decision, candidate, snapshot, config = escalation()
    first = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    again = await open_job(
        db, decision, candidate, snapshot, NOW + timedelta(minutes=5), config=config
    )
    assert first is not None and again is None
    assert len(await job_store.list_jobs(db)) == 1


async def test_shadow_mode_records_would_be_job_without_reservation(db: Ledger) -> None:
    decision, candidate, snapshot, config = escalation(mode="shadow")
    job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    assert job_id is not None
    job = await job_store.get_job(db, job_id)
    assert job is not None and job.state == JobState.SUPPRESSED and job.attempt == 0
    assert "shadow" in (job.state_reason or "")
    assert (await spend_ledger.job_spend(db, job_id)).reserved_dollars == 0
    # nothing to lease
    agent, _token = await agent_store.add_agent(db, "a1", NOW)
    assert await Escalations(db, clock=lambda: NOW).lease(agent) is None
    # a redelivery in shadow mode records nothing new; act mode later opens it for real
    assert await open_job(db, decision, candidate, snapshot, NOW, config=config) is None
    act = replace(decision, mode="act")
    real = await open_job(db, act, candidate, snapshot, NOW, config=make_config())
    assert real is not None and real != job_id
    real_job = await job_store.get_job(db, real)
    assert real_job is not None and real_job.state == JobState.QUEUED and real_job.attempt == 1


async def test_suppressed_candidate_opens_nothing(db: Ledger) -> None:
    decision, candidate, snapshot, config = escalation()
    suppressed = candidate.suppress(candidate.suppressed or "budget", "budget.pr", "no money")  # type: ignore[arg-type]
    assert await open_job(db, decision, suppressed, snapshot, NOW, config=config) is None


async def test_lease_heartbeat_report_moves_only_along_legal_edges(db: Ledger) -> None:
    decision, candidate, snapshot, config = escalation()
    job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    a1, _ = await agent_store.add_agent(db, "a1", NOW)
    a2, _ = await agent_store.add_agent(db, "a2", NOW)
    service = Escalations(db, clock=lambda: NOW)
    leased = await service.lease(a1)
    assert leased is not None and leased["job_id"] == job_id
    assert await service.lease(a2) is None  # one job, leased once
    with pytest.raises(ReportError):
        await service.heartbeat(a2, job_id)  # type: ignore[arg-type]
    await service.heartbeat(a1, job_id)  # type: ignore[arg-type]
    job = await job_store.get_job(db, job_id)  # type: ignore[arg-type]
    assert job is not None and job.state == JobState.RUNNING
    with pytest.raises(ReportError) as bad:
        await service.report(a1, job_id, {"outcome": "maybe"})  # type: ignore[arg-type]
    assert bad.value.status == 400
    # no GitHub reader: the claim is recorded and the job waits for verification
    outcome = await service.report(
        a1,
        job_id,
        {"outcome": "done", "tokens_in": 1000, "tokens_out": 200, "dollars": 0.4},  # type: ignore[arg-type]
    )
    assert outcome.state == JobState.CLAIMED_DONE
    sums = await spend_ledger.job_spend(db, job_id)  # type: ignore[arg-type]
    assert sums.spent_dollars == pytest.approx(0.4) and sums.outstanding_dollars == 0
    with pytest.raises(ReportError):
        await service.report(a1, job_id, {"outcome": "done"})  # type: ignore[arg-type]


async def test_expired_lease_counts_charges_and_requeues_until_caps(db: Ledger) -> None:
    decision, candidate, snapshot, config = escalation()
    job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    agent, _ = await agent_store.add_agent(db, "crashy", NOW)
    clock = [NOW]
    service = Escalations(db, clock=lambda: clock[0], lease_ttl=timedelta(minutes=1))
    assert await service.lease(agent) is not None
    await service.heartbeat(agent, job_id, {"dollars": 0.25, "tokens_in": 500})  # type: ignore[arg-type]
    clock[0] = NOW + timedelta(minutes=5)
    [expired] = await service.expire_leases()
    assert expired.state == JobState.LEASE_EXPIRED and expired.requeued_job_id is not None
    sums = await spend_ledger.job_spend(db, job_id)  # type: ignore[arg-type]
    assert sums.spent_dollars == pytest.approx(0.25) and sums.outstanding_dollars == 0
    retry = await job_store.get_job(db, expired.requeued_job_id)
    assert retry is not None and retry.state == JobState.QUEUED and retry.attempt == 2
    assert retry.brief["attempt"] == {"n": 2, "of": 2}
    # the second attempt crashes silently: charged its whole reservation, no third attempt
    assert await service.lease(agent) is not None
    clock[0] = NOW + timedelta(minutes=10)
    [second] = await service.expire_leases()
    assert second.requeued_job_id is None
    retry_sums = await spend_ledger.job_spend(db, retry.id)  # type: ignore[arg-type]
    assert retry_sums.spent_dollars == pytest.approx(retry.budget_dollars or 0)
    assert await service.lease(agent) is None


async def test_tokens_are_stored_as_hashes_only(db: Ledger) -> None:
    agent, token = await agent_store.add_agent(db, "a1", NOW)
    assert token not in agent.token_hash and agent.token_hash == agent_store.hash_token(token)
    assert (await agent_store.authenticate(db, token)) is not None
    assert await agent_store.authenticate(db, token + "x") is None
    assert await agent_store.authenticate(db, "") is None


class FakeGitHub:
    """The PR as GitHub shows it now; tests change ``snapshot`` between reads."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot

    async def __call__(self, repository: str, number: int) -> Any:
        return self.snapshot


async def leased_and_running(
    db: Ledger, github: FakeGitHub, alerts: list[str] | None = None
) -> tuple[Escalations, Any, int]:
    decision, candidate, snapshot, config = escalation()
    job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    assert job_id is not None
    agent, _ = await agent_store.add_agent(db, "a1", NOW)
    service = Escalations(
        db,
        read_pull=github,
        clock=lambda: NOW,
        on_alert=(lambda kind, _job, _msg: alerts.append(kind)) if alerts is not None else None,
    )
    assert await service.lease(agent) is not None
    return service, agent, job_id


async def test_budget_spent_without_the_trigger_clearing_is_budget_exhausted_with_alert(
    db: Ledger,
) -> None:
    _decision, _candidate, snapshot, _config = escalation()
    alerts: list[str] = []
    service, agent, job_id = await leased_and_running(db, FakeGitHub(snapshot), alerts)
    job = await job_store.get_job(db, job_id)
    assert job is not None
    outcome = await service.report(
        agent, job_id, {"outcome": "failed", "dollars": job.budget_dollars, "tokens_in": 10}
    )
    assert outcome.state == JobState.BUDGET_EXHAUSTED
    assert alerts == ["budget_exhausted"]
    assert outcome.requeued_job_id is None  # waits for a maintainer's grant


async def test_checks_still_running_waits_and_the_next_tick_verifies(db: Ledger) -> None:
    _decision, _candidate, snapshot, _config = escalation()
    github = FakeGitHub(snapshot)
    service, agent, job_id = await leased_and_running(db, github)
    pushed = "e" * 40
    github.snapshot = replace(
        snapshot,
        head_sha=pushed,
        checks=tuple(replace(c, outcome=CheckOutcome.PENDING) for c in snapshot.checks),
        checks_state="PENDING",
    )
    outcome = await service.report(
        agent, job_id, {"outcome": "done", "pushed_shas": [pushed], "dollars": 0.5}
    )
    assert outcome.state == JobState.CLAIMED_DONE  # GitHub has not finished: ask later
    assert (await service.tick())["verified"] == 0
    github.snapshot = replace(
        github.snapshot,
        checks=tuple(replace(c, outcome=CheckOutcome.SUCCESS) for c in snapshot.checks),
        checks_state="SUCCESS",
    )
    assert (await service.tick())["verified"] == 1
    job = await job_store.get_job(db, job_id)
    assert job is not None and job.state == JobState.VERIFIED_DONE
    path = [t.to_state for t in await job_store.job_transitions(db, job_id)]
    assert path.count("VERIFYING") == 3 and path[-1] == "VERIFIED_DONE"


async def test_unreadable_github_leaves_the_claim_waiting(db: Ledger) -> None:
    _decision, _candidate, snapshot, _config = escalation()

    async def broken(repository: str, number: int) -> Any:
        raise RuntimeError("GitHub is down")

    service, agent, job_id = await leased_and_running(db, FakeGitHub(snapshot))
    service.read_pull = broken
    outcome = await service.report(agent, job_id, {"outcome": "done"})
    assert outcome.state == JobState.CLAIMED_DONE and "GitHub is down" in outcome.reason


async def test_a_grant_requeues_an_exhausted_job_exactly_once(db: Ledger) -> None:
    _decision, _candidate, snapshot, _config = escalation()
    service, agent, job_id = await leased_and_running(db, FakeGitHub(snapshot))
    job = await job_store.get_job(db, job_id)
    assert job is not None
    with pytest.raises(ReportError):
        await service.grant(job_id, 1000, 1.0, "alice")  # not exhausted yet
    beat = await service.heartbeat(agent, job_id, {"dollars": job.budget_dollars})
    assert beat["stop"] is True and beat["budget_used"] >= 1.0
    await service.report(agent, job_id, {"outcome": "failed", "dollars": job.budget_dollars})
    first = await service.grant(job_id, 50_000, 1.5, "alice")
    again = await service.grant(job_id, 50_000, 1.5, "alice")  # a redelivered command
    assert first.requeued_job_id is not None and again.requeued_job_id is None
    retry = await job_store.get_job(db, first.requeued_job_id)
    assert retry is not None and retry.state == JobState.QUEUED
    assert (retry.budget_tokens, retry.budget_dollars) == (50_000, 1.5)
    assert retry.brief["budget"]["tokens"] == 50_000 and retry.brief["budget"]["dollars"] == 1.5
    assert (await spend_ledger.job_spend(db, job_id)).granted_dollars == pytest.approx(1.5)
    assert (await spend_ledger.job_spend(db, retry.id)).reserved_dollars == pytest.approx(1.5)  # type: ignore[arg-type]


async def store(db: Ledger, snapshot: Any) -> None:
    from ledger import pulls
    from ledger.models import ObservationSource
    from policies.snapshot import snapshot_to_json

    await pulls.record_snapshot(
        db,
        snapshot.repository,
        snapshot.number,
        snapshot_to_json(snapshot),
        snapshot.fingerprint(),
        ObservationSource.POLL,
        NOW,
    )


@pytest.mark.parametrize(
    "change",
    ["checks green again (re-run passed)", "someone pushed", "PR closed"],
)
async def test_queued_job_that_github_already_answered_is_cancelled_before_launch(
    db: Ledger, change: str
) -> None:
    from policies.snapshot import PullRequestState

    decision, candidate, snapshot, config = escalation()
    job_id = await open_job(db, decision, candidate, snapshot, NOW, config=config)
    await store(db, snapshot)
    service = Escalations(db, clock=lambda: NOW)
    assert await service.supersede_stale_queued() == []  # still failing: stays queued
    if change.startswith("checks"):
        now_seen = replace(
            snapshot,
            checks=tuple(replace(c, outcome=CheckOutcome.SUCCESS) for c in snapshot.checks),
            checks_state="SUCCESS",
        )
    elif change == "someone pushed":
        now_seen = replace(snapshot, head_sha="d" * 40)
    else:
        now_seen = replace(snapshot, state=PullRequestState.CLOSED)
    await store(db, now_seen)
    agent, _ = await agent_store.add_agent(db, "a1", NOW)
    assert await service.lease(agent) is None  # superseded, never handed out
    job = await job_store.get_job(db, job_id)  # type: ignore[arg-type]
    # never launched: cancelled (not an attempt for the stop-loss), saying why
    assert job is not None and job.state == JobState.CANCELLED
    assert (job.state_reason or "").startswith("superseded before launch")
    assert (await spend_ledger.job_spend(db, job_id)).outstanding_dollars == 0  # type: ignore[arg-type]


async def test_spend_growing_without_github_progress_is_flagged_then_stopped(db: Ledger) -> None:
    _decision, _candidate, snapshot, _config = escalation()
    await store(db, snapshot)
    alerts: list[str] = []
    service, agent, job_id = await leased_and_running(db, FakeGitHub(snapshot), alerts)
    job = await job_store.get_job(db, job_id)
    assert job is not None and job.budget_dollars
    budget = job.budget_dollars
    answers = []
    for share in (0.1, 0.2, 0.3, 0.45, 0.6):
        answers.append(await service.heartbeat(agent, job_id, {"dollars": budget * share}))
        if answers[-1].get("state") == JobState.NEEDS_HUMAN:
            break
    assert "flags" not in answers[0] and "flags" not in answers[1]
    assert answers[2]["flags"] == ["no-progress"] and answers[2]["stop"] is False
    assert answers[-1]["stop"] is True and answers[-1]["state"] == JobState.NEEDS_HUMAN
    assert len(answers) == 5  # stopped at the first heartbeat past half the budget
    job = await job_store.get_job(db, job_id)
    assert job is not None and job.state == JobState.NEEDS_HUMAN and "no-progress" in job.flags
    assert alerts == ["no_progress"]
    sums = await spend_ledger.job_spend(db, job_id)
    assert sums.spent_dollars == pytest.approx(budget * 0.6) and sums.outstanding_dollars == 0
    assert await service.lease(agent) is None  # not re-queued


async def test_spend_growing_while_github_moves_is_progress(db: Ledger) -> None:
    _decision, _candidate, snapshot, _config = escalation()
    await store(db, snapshot)
    service, agent, job_id = await leased_and_running(db, FakeGitHub(snapshot))
    job = await job_store.get_job(db, job_id)
    assert job is not None and job.budget_dollars
    for n, share in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        # the agent pushes between beats: GitHub (the ledger's snapshot) shows a new head
        await store(db, replace(snapshot, head_sha=f"{n:x}" * 40))
        answer = await service.heartbeat(agent, job_id, {"dollars": job.budget_dollars * share})
        assert "flags" not in answer and answer["stop"] is False


@pytest.mark.parametrize(
    ("descends", "state"),
    [
        (True, JobState.VERIFIED_DONE),
        (None, JobState.VERIFIED_DONE),
        (False, JobState.VERIFY_FAILED),
    ],
    ids=["head descends -> verified", "ancestry unknown -> verified", "force-push -> rejected"],
)
async def test_a_green_head_that_rewrote_history_is_rejected(
    db: Ledger, descends: bool | None, state: JobState
) -> None:
    _decision, _candidate, snapshot, _config = escalation()
    pushed = "b" * 40
    green = replace(
        snapshot,
        head_sha=pushed,
        checks=tuple(replace(c, outcome=CheckOutcome.SUCCESS) for c in snapshot.checks),
        checks_state="SUCCESS",
    )
    service, agent, job_id = await leased_and_running(db, FakeGitHub(green))
    asked: list[tuple[str, str, str]] = []

    async def ancestry(repository: str, start: str, head: str) -> bool | None:
        asked.append((repository, start, head))
        return descends

    service.ancestry = ancestry
    outcome = await service.report(agent, job_id, {"outcome": "done", "pushed_shas": [pushed]})
    assert outcome.state == state
    assert asked == [("acme/widgets", snapshot.head_sha, pushed)]


async def test_exhausted_jobs_are_announced_once(db: Ledger) -> None:
    _decision, _candidate, snapshot, _config = escalation()
    service, agent, job_id = await leased_and_running(db, FakeGitHub(snapshot))
    job = await job_store.get_job(db, job_id)
    assert job is not None
    await service.report(agent, job_id, {"outcome": "failed", "dollars": job.budget_dollars})
    exhausted = frozenset({JobState.BUDGET_EXHAUSTED})
    assert [r.job.id for r in await job_store.unannounced(db, exhausted)] == [job_id]
    assert await job_store.mark_announced(db, job_id, NOW) is True
    assert await job_store.mark_announced(db, job_id, NOW) is False  # a second replica
    assert await job_store.unannounced(db, exhausted) == []


def test_reports_are_bounded_and_redacted() -> None:
    from bot.escalation import Report

    token = "ghs_" + "B" * 36
    report = Report.parse(
        {
            "outcome": "BLOCKED",
            "blocker_evidence": [f"the secret {token} is missing", "  ", "x" * 5000],
            "pushed_shas": ["a" * 40] * 80,
            "summary": f"used {token}",
        }
    )
    assert report.outcome.value == "blocked"
    assert token not in str(report.as_json())
    assert len(report.blocker_evidence) == 2 and len(report.blocker_evidence[1]) == 1000
    assert len(report.pushed_shas) == 50
    for bad in ({"outcome": "done", "tokens_in": -1}, {"outcome": "done", "dollars": "1"}, {}):
        with pytest.raises(ReportError):
            Report.parse(bad)
