"""Tiers and whose turn: one case per arrow of the diagram in docs/policies.md#tiers."""

from __future__ import annotations

from datetime import datetime

import pytest

from policies.history import Commands, NoticeRecord
from policies.snapshot import CheckOutcome, Mergeable, PullRequestSnapshot, PullRequestState
from policies.tiers import Tier, Turn, author_silence_start, whose_turn
from policies.triage import decide
from policies.triggers import author_last_action, find_triggers
from tests.factories import (
    T0,
    at,
    failing,
    make_actor,
    make_app,
    make_bot,
    make_check,
    make_comment,
    make_config,
    make_history,
    make_linked_issue,
    make_maintainer,
    make_review,
    make_snapshot,
    make_spend,
)


def tier_of(snapshot: PullRequestSnapshot, now: datetime, **history: object) -> Tier:
    return decide(snapshot, make_history(**history), make_config(), make_spend(), now).tier.tier


@pytest.mark.parametrize(
    ("snapshot", "now", "history", "expected"),
    [
        (make_snapshot(), at(1), {}, Tier.ACTIVE),
        (make_snapshot(state=PullRequestState.MERGED), at(1), {}, Tier.CLOSED),
        (make_snapshot(state=PullRequestState.CLOSED), at(1), {}, Tier.CLOSED),
        (make_snapshot(labels=("lifecycle/frozen",)), at(500), {}, Tier.EXEMPT),
        (make_snapshot(is_draft=True), at(500), {}, Tier.EXEMPT),
        (make_snapshot(), at(500), {"commands": Commands(frozen=True)}, Tier.EXEMPT),
        (failing(make_snapshot(), "test"), at(1), {}, Tier.SIGNAL),
        (make_snapshot(mergeable=Mergeable.CONFLICTING), at(1), {}, Tier.SIGNAL),
        (failing(make_snapshot(), "test"), at(31), {}, Tier.ZOMBIE),
        (make_snapshot(mergeable=Mergeable.CONFLICTING), at(31), {}, Tier.ZOMBIE),
        (
            failing(
                make_snapshot(comments=(make_comment(make_maintainer(), created_at=at(30)),)),
                "test",
            ),
            at(31),
            {},
            Tier.SIGNAL,
        ),
        (
            failing(
                make_snapshot(comments=(make_comment(make_bot(), created_at=at(30)),)),
                "test",
            ),
            at(31),
            {},
            Tier.ZOMBIE,
        ),
        (failing(make_snapshot(), "test"), at(61), {}, Tier.CLOSING),
        (make_snapshot(), at(365), {}, Tier.ACTIVE),
        (
            make_snapshot(
                linked_issues=(make_linked_issue(state="CLOSED", state_reason="NOT_PLANNED"),)
            ),
            at(1),
            {},
            Tier.CLOSING,
        ),
        (
            make_snapshot(
                review_decision="APPROVED",
                linked_issues=(make_linked_issue(state="CLOSED", state_reason="NOT_PLANNED"),),
            ),
            at(1),
            {},
            Tier.ACTIVE,
        ),
        (
            failing(make_snapshot(review_decision="APPROVED"), "test"),
            at(90),
            {},
            Tier.ZOMBIE,
        ),
        (
            make_snapshot(labels=("waiting-on-author",)),
            at(45),
            {"notices": (NoticeRecord("close_notice", at(40)),)},
            Tier.CLOSING,
        ),
    ],
    ids=[
        "healthy, waiting for review -> active",
        "merged -> closed",
        "closed -> closed",
        "frozen label, a year idle -> exempt",
        "draft -> exempt",
        "/prsteward freeze -> exempt",
        "failing CI, fresh -> signal",
        "conflict, fresh -> signal",
        "failing, no human activity 31d -> zombie",
        "conflict, no human activity 31d -> zombie",
        "failing 31d but a maintainer spoke yesterday -> signal",
        "failing 31d, only a bot spoke -> zombie (bots are not activity)",
        "failing, author silent 61d -> closing",
        "waiting on maintainers a year -> active (never stale)",
        "linked issue closed as not planned -> closing",
        "not planned but approved -> active (intent to merge)",
        "failing and approved, 90d -> zombie, never closing",
        "close notice out, still author's turn -> closing",
    ],
)
def test_tiers(
    snapshot: PullRequestSnapshot, now: datetime, history: dict[str, object], expected: Tier
) -> None:
    assert tier_of(snapshot, now, **history) is expected


@pytest.mark.parametrize(
    ("snapshot", "expected_turn", "expected_rule"),
    [
        (make_snapshot(), Turn.MAINTAINERS, "turn.maintainers"),
        (make_snapshot(review_requests=()), Turn.MAINTAINERS, "turn.maintainers"),
        (make_snapshot(is_draft=True), Turn.NOBODY, "turn.draft"),
        (make_snapshot(labels=("lifecycle/frozen",)), Turn.NOBODY, "turn.exempt"),
        (make_snapshot(state=PullRequestState.MERGED), Turn.NOBODY, "turn.closed"),
        (failing(make_snapshot(), "test"), Turn.AUTHOR, "turn.failing_ci"),
        (make_snapshot(mergeable=Mergeable.CONFLICTING), Turn.AUTHOR, "turn.conflict"),
        (make_snapshot(reviews=(make_review(),)), Turn.AUTHOR, "turn.changes-requested"),
        (
            make_snapshot(comments=(make_comment(make_maintainer(), body="why this?"),)),
            Turn.AUTHOR,
            "turn.maintainer-comment",
        ),
        (
            make_snapshot(
                comments=(
                    make_comment(make_maintainer(), created_at=at(1), body="why this?"),
                    make_comment(make_actor("contributor"), created_at=at(2), body="because"),
                )
            ),
            Turn.MAINTAINERS,
            "turn.maintainers",
        ),
        (
            make_snapshot(comments=(make_comment(make_actor("rando"), body="ping?"),)),
            Turn.MAINTAINERS,
            "turn.maintainers",
        ),
        (
            make_snapshot(comments=(make_comment(make_app(), body="status"),)),
            Turn.MAINTAINERS,
            "turn.maintainers",
        ),
        (make_snapshot(labels=("waiting-on-author",)), Turn.AUTHOR, "turn.waiting-label"),
        (
            make_snapshot(checks=(make_check("build", CheckOutcome.PENDING),)),
            Turn.CI,
            "turn.ci-pending",
        ),
    ],
    ids=[
        "green, mergeable, review requested -> maintainers",
        "green, no reviewer requested -> maintainers",
        "draft -> nobody",
        "exempt -> nobody",
        "merged -> nobody",
        "failing CI -> author",
        "conflict -> author",
        "changes requested -> author",
        "maintainer question after author's last action -> author",
        "author answered last -> maintainers",
        "question from a user without write access -> maintainers",
        "the App's own comment -> maintainers (never moves the turn)",
        "waiting-on-author label -> author",
        "checks pending -> ci",
    ],
)
def test_whose_turn(snapshot: PullRequestSnapshot, expected_turn: Turn, expected_rule: str) -> None:
    config = make_config()
    history = make_history()
    triggers = find_triggers(snapshot, history, config)
    event = whose_turn(snapshot, history, config, triggers)
    assert (event.turn, event.rule_id) == (expected_turn, expected_rule)


def test_author_clock_ignores_updated_at_bots_and_the_app() -> None:
    snapshot = make_snapshot(
        updated_at=at(100),
        comments=(
            make_comment(make_bot(), created_at=at(50)),
            make_comment(make_app(), created_at=at(60)),
            make_comment(make_maintainer(), created_at=at(70)),
        ),
    )
    assert author_last_action(snapshot) == T0


def test_silence_starts_when_the_turn_passed_to_the_author() -> None:
    # The PR waited on maintainers for 200 days; changes were requested yesterday.
    snapshot = make_snapshot(reviews=(make_review(submitted_at=at(200)),))
    config = make_config()
    triggers = find_triggers(snapshot, make_history(), config)
    event = whose_turn(snapshot, make_history(), config, triggers)
    assert author_silence_start(snapshot, event) == at(200)
    assert tier_of(snapshot, at(201)) is Tier.SIGNAL


@pytest.mark.parametrize(
    ("snapshot", "config_overrides", "expected_rule"),
    [
        (make_snapshot(milestone="v2"), {"exempt-pr-milestones": ["v2"]}, "exempt.milestone"),
        (make_snapshot(milestone="v2"), {"exempt-all-pr-milestones": True}, "exempt.milestone"),
        (make_snapshot(milestone="v3"), {"exempt-pr-milestones": ["v2"]}, None),
        (make_snapshot(assignees=("bob",)), {"exempt-all-pr-assignees": True}, "exempt.assignees"),
        (make_snapshot(assignees=("bob",)), {"exempt-pr-assignees": ["bob"]}, "exempt.assignees"),
        (make_snapshot(assignees=("bob",)), {"exempt-pr-assignees": ["eve"]}, None),
        (make_snapshot(), {"exempt-pr-authors": ["Contributor"]}, "exempt.author"),
        (make_snapshot(labels=("security",)), {"exempt-pr-labels": ["security"]}, "exempt.label"),
        (make_snapshot(), {"only-labels": ["bot-managed"]}, "exempt.only-labels"),
        (make_snapshot(labels=("bot-managed",)), {"only-labels": ["bot-managed"]}, None),
        (make_snapshot(is_draft=True), {"exempt-draft-pr": False}, None),
    ],
    ids=[
        "milestone listed -> exempt",
        "any milestone with exempt-all-pr-milestones -> exempt",
        "other milestone -> not exempt",
        "assignee with exempt-all-pr-assignees -> exempt",
        "listed assignee -> exempt",
        "unlisted assignee -> not exempt",
        "exempt author, any case -> exempt",
        "exempt label -> exempt",
        "lacks an only-labels label -> exempt",
        "has the only-labels label -> not exempt",
        "draft with exempt-draft-pr false -> not exempt",
    ],
)
def test_exemptions(
    snapshot: PullRequestSnapshot, config_overrides: dict[str, object], expected_rule: str | None
) -> None:
    decision = decide(
        snapshot, make_history(), make_config(**config_overrides), make_spend(), at(1)
    )
    if expected_rule is None:
        assert decision.tier.tier is not Tier.EXEMPT
    else:
        assert (decision.tier.tier, decision.tier.rule_id) == (Tier.EXEMPT, expected_rule)
