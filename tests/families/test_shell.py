"""Which PRs are worth a diff read, and how a family stop reaches the decision (bot/families.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.families import matters, suppress_stopped
from policies.config import Config
from policies.families import find_families
from policies.history import NO_SPEND, JobRecord, JobState, PullRequestHistory
from policies.snapshot import CheckOutcome, CheckResult
from policies.triage import decide
from sim.families import same_shape_family
from tests.factories import T0, make_actor, make_bot, make_snapshot
from tests.families.helpers import members_of

FAILING = (CheckResult("lint", CheckOutcome.FAILURE),)
JOB = JobRecord("failing_ci", "f", JobState.VERIFY_FAILED, T0)


@pytest.mark.parametrize(
    ("author", "checks", "jobs", "config", "expected"),
    [
        (make_bot("lane[bot]"), (), (), Config(), True),
        (make_actor("agent7"), (), (), Config(agent_logins=("agent7",)), True),
        (make_actor("dev"), (), (), Config(), False),
        (make_actor("dev"), (), (JOB,), Config(), True),
        (make_actor("dev"), FAILING, (), Config(), True),
    ],
    ids=[
        "bot author -> read",
        "configured agent account -> read",
        "person, nothing to escalate -> not read",
        "person, a job in its history -> read",
        "person, an escalation proposed now -> read",
    ],
)
def test_matters(author, checks, jobs, config, expected) -> None:
    snapshot = make_snapshot(
        author=author, checks=checks, checks_state="FAILURE" if checks else None
    )
    history = PullRequestHistory(jobs=jobs)
    decision = decide(snapshot, PullRequestHistory(), config, NO_SPEND, T0 + timedelta(hours=1))
    assert matters(snapshot, config, history, decision) is expected


def test_stop_suppresses_only_the_escalation_with_the_rule_id() -> None:
    members = members_of(same_shape_family(1, count=6))
    families = find_families("acme/widgets", members, {}, Config(), T0 + timedelta(hours=1))
    snapshot = make_snapshot(number=6, checks=FAILING, checks_state="FAILURE")
    decision = decide(snapshot, PullRequestHistory(), Config(), NO_SPEND, T0 + timedelta(hours=1))
    assert decision.escalations
    gated = suppress_stopped(decision, families)
    assert gated.escalations == ()
    (stopped,) = [c for c in gated.candidates if c.kind.value == "escalate"]
    assert (stopped.suppressed.value, stopped.suppressed_rule_id) == (
        "family",
        "family-substitution",
    )
    assert gated.notes[-1].startswith("family-substitution:")
    assert suppress_stopped(decision, ()) is decision


def test_a_maintainers_manual_escalation_is_never_stopped() -> None:
    from policies.history import Commands

    members = members_of(same_shape_family(1, count=6))
    families = find_families("acme/widgets", members, {}, Config(), T0 + timedelta(hours=1))
    history = PullRequestHistory(commands=Commands(escalate_comment_id=99))
    snapshot = make_snapshot(number=6)
    decision = decide(snapshot, history, Config(), NO_SPEND, T0 + timedelta(hours=1))
    assert [c.trigger.kind.value for c in decision.escalations] == ["manual"]
    assert suppress_stopped(decision, families).escalations == decision.escalations
