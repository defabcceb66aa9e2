"""The done-oracle: verdicts come from GitHub's state; the claim is only recorded."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.config import TriggerKind
from policies.oracle import AgentClaim, ClaimedOutcome, JobStart, Verdict, verify
from policies.snapshot import CheckOutcome, Mergeable, PullRequestSnapshot, PullRequestState
from tests.factories import (
    HEAD_SHA,
    at,
    failing,
    make_actor,
    make_check,
    make_comment,
    make_config,
    make_snapshot,
)

FIX = "f" * 40
CI_START = JobStart(
    trigger_kind=TriggerKind.FAILING_CI,
    fingerprint="fp",
    start_head_sha=HEAD_SHA,
    started_at=at(1),
    budget_tokens=100_000,
    budget_dollars=2.0,
    failing_checks=("test",),
)
DONE = AgentClaim(ClaimedOutcome.DONE, (FIX,), tokens_used=30_000, dollars_spent=0.5)
GREEN_AT_FIX = make_snapshot(head_sha=FIX)


def verdict_of(
    start: JobStart, claim: AgentClaim, snapshot: PullRequestSnapshot, **kw: object
) -> tuple[Verdict, str, tuple[str, ...]]:
    result = verify(start, claim, snapshot, make_config(agent_logins=("fixer-agent",)), **kw)  # type: ignore[arg-type]
    return result.verdict, result.rule_id, result.flags


@pytest.mark.parametrize(
    ("claim", "snapshot", "expected"),
    [
        (DONE, GREEN_AT_FIX, (Verdict.VERIFIED_DONE, "oracle.verified", ())),
        (
            DONE,
            failing(GREEN_AT_FIX, "test"),
            (Verdict.VERIFY_FAILED, "oracle.not-done", ("done-claim-with-budget-left",)),
        ),
        (
            DONE,
            failing(GREEN_AT_FIX, "lint"),
            (Verdict.VERIFY_FAILED, "oracle.not-done", ("done-claim-with-budget-left",)),
        ),
        (
            replace(DONE, tokens_used=90_000),
            failing(GREEN_AT_FIX, "test"),
            (Verdict.VERIFY_FAILED, "oracle.not-done", ()),
        ),
        (
            replace(DONE, tokens_used=100_000),
            failing(GREEN_AT_FIX, "test"),
            (Verdict.BUDGET_EXHAUSTED, "oracle.budget-exhausted", ("budget-exhausted",)),
        ),
        (
            DONE,
            replace(GREEN_AT_FIX, checks=(make_check("test", CheckOutcome.PENDING),)),
            (Verdict.PENDING, "oracle.pending", ()),
        ),
        (
            DONE,
            replace(GREEN_AT_FIX, checks=(make_check("build"),)),
            (Verdict.PENDING, "oracle.pending", ()),
        ),
        (
            DONE,
            replace(
                GREEN_AT_FIX,
                checks=(make_check("test"), make_check("lint", CheckOutcome.PENDING)),
            ),
            (Verdict.PENDING, "oracle.pending", ()),
        ),
        (
            AgentClaim(ClaimedOutcome.DONE, ()),
            failing(make_snapshot(), "test"),
            (Verdict.VERIFY_FAILED, "oracle.not-done", ("done-claim-with-budget-left",)),
        ),
        (
            DONE,
            make_snapshot(head_sha="9" * 40),
            (Verdict.SUPERSEDED, "oracle.someone-else-pushed", ()),
        ),
        (
            AgentClaim(ClaimedOutcome.FAILED),
            make_snapshot(),
            (Verdict.SUPERSEDED, "oracle.cleared-by-itself", ()),
        ),
        (
            DONE,
            replace(GREEN_AT_FIX, state=PullRequestState.MERGED),
            (Verdict.SUPERSEDED, "oracle.pr-closed", ()),
        ),
        (
            AgentClaim(ClaimedOutcome.BLOCKED),
            failing(make_snapshot(), "test"),
            (
                Verdict.VERIFY_FAILED,
                "oracle.blocked-without-evidence",
                ("blocked-without-evidence",),
            ),
        ),
        (
            AgentClaim(
                ClaimedOutcome.BLOCKED, blocker_evidence=("https://ci.example/secret-missing",)
            ),
            failing(make_snapshot(), "test"),
            (Verdict.BLOCKED, "oracle.blocked", ()),
        ),
    ],
    ids=[
        "pushed head, fingerprinted checks green -> verified done",
        "done claim, check still red, 70% budget left -> verify failed + flagged",
        "fixed test but broke lint (new failure) -> verify failed",
        "done claim, 10% left -> verify failed, not flagged",
        "budget spent, still red -> budget exhausted",
        "checks still running -> pending",
        "fingerprinted check missing at the new head -> pending",
        "fixed check green, another still running -> pending (may be a new failure)",
        "claims done, pushed nothing -> verify failed",
        "someone else pushed -> superseded",
        "green at the starting SHA without a push -> superseded (cleared by itself)",
        "merged meanwhile -> superseded",
        "blocked without evidence -> rejected",
        "blocked with evidence -> blocked",
    ],
)
def test_ci_oracle(
    claim: AgentClaim, snapshot: PullRequestSnapshot, expected: tuple[Verdict, str, tuple[str, ...]]
) -> None:
    assert verdict_of(CI_START, claim, snapshot) == expected


def test_force_push_that_rewrites_history_fails() -> None:
    assert (
        verdict_of(CI_START, DONE, GREEN_AT_FIX, start_is_ancestor=False)[0]
        is Verdict.VERIFY_FAILED
    )
    assert (
        verdict_of(CI_START, DONE, GREEN_AT_FIX, start_is_ancestor=True)[0] is Verdict.VERIFIED_DONE
    )


CONFLICT_START = replace(CI_START, trigger_kind=TriggerKind.CONFLICT, failing_checks=())


@pytest.mark.parametrize(
    ("mergeable", "expected"),
    [
        (Mergeable.MERGEABLE, Verdict.VERIFIED_DONE),
        (Mergeable.CONFLICTING, Verdict.VERIFY_FAILED),
        (Mergeable.UNKNOWN, Verdict.PENDING),
    ],
    ids=["MERGEABLE -> done", "still CONFLICTING -> failed", "UNKNOWN -> pending"],
)
def test_conflict_oracle(mergeable: Mergeable, expected: Verdict) -> None:
    assert (
        verdict_of(CONFLICT_START, DONE, replace(GREEN_AT_FIX, mergeable=mergeable))[0] is expected
    )


REVIEW_START = replace(
    CI_START, trigger_kind=TriggerKind.CHANGES_REQUESTED, failing_checks=(), reviewer="maintainer"
)


@pytest.mark.parametrize(
    ("snapshot", "claim", "expected"),
    [
        (
            make_snapshot(
                head_sha=FIX, review_requests=("maintainer",), review_decision="CHANGES_REQUESTED"
            ),
            DONE,
            Verdict.VERIFIED_DONE,
        ),
        (
            make_snapshot(head_sha=FIX, review_requests=(), review_decision="CHANGES_REQUESTED"),
            DONE,
            Verdict.VERIFY_FAILED,
        ),
        (
            make_snapshot(review_requests=("maintainer",), review_decision="CHANGES_REQUESTED"),
            AgentClaim(ClaimedOutcome.DONE),
            Verdict.VERIFY_FAILED,
        ),
        (
            make_snapshot(
                review_requests=("maintainer",),
                comments=(
                    make_comment(make_actor("fixer-agent"), created_at=at(2), body="answered"),
                ),
            ),
            AgentClaim(ClaimedOutcome.DONE),
            Verdict.VERIFIED_DONE,
        ),
    ],
    ids=[
        "pushed and reviewer re-requested -> awaiting reviewer (done)",
        "pushed but reviewer not re-requested -> failed",
        "nothing pushed, nothing answered -> failed",
        "agent answered and reviewer requested -> awaiting reviewer (done)",
    ],
)
def test_review_oracle(snapshot: PullRequestSnapshot, claim: AgentClaim, expected: Verdict) -> None:
    assert verdict_of(REVIEW_START, claim, snapshot)[0] is expected


def test_failure_signature_names_what_still_fails() -> None:
    result = verify(CI_START, DONE, failing(GREEN_AT_FIX, "test", "lint"), make_config())
    assert result.failure_signature == "failing_ci: lint,test"


@settings(max_examples=60, deadline=None)
@given(
    spent_share=st.floats(min_value=0, max_value=0.999),
    outcomes=st.lists(st.sampled_from(list(CheckOutcome)), min_size=1, max_size=3),
    pushed=st.booleans(),
)
def test_spending_to_just_under_the_budget_and_claiming_done_changes_nothing(
    spent_share: float, outcomes: list[CheckOutcome], pushed: bool
) -> None:
    # Anti-gaming: the verdict follows GitHub; the claim and the spend never make it "done".
    checks = tuple(
        make_check(name, o) for name, o in zip(("test", "lint", "docs"), outcomes, strict=False)
    )
    snapshot = make_snapshot(head_sha=FIX if pushed else HEAD_SHA, checks=checks)
    claim = AgentClaim(
        ClaimedOutcome.DONE,
        (FIX,),
        tokens_used=int(spent_share * CI_START.budget_tokens),
        dollars_spent=spent_share * CI_START.budget_dollars,
    )
    verdict = verify(CI_START, claim, snapshot, make_config()).verdict
    # Done: pushed, the fingerprinted check ("test") green, every other check finished and
    # not failing.
    github_says_done = (
        pushed
        and outcomes[0] is CheckOutcome.SUCCESS
        and all(o in {CheckOutcome.SUCCESS, CheckOutcome.NEUTRAL} for o in outcomes[1:])
    )
    assert (verdict is Verdict.VERIFIED_DONE) == github_says_done
