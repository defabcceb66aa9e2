"""Families: grouping, substitution, graduated responses and stops (policies/families.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.families import lane_members
from policies.config import Config, Families
from policies.families import (
    FamilyControl,
    FamilyState,
    SpendPoint,
    family_commands,
    find_families,
    is_substitution,
    render_issue,
    replay_arrivals,
)
from sim.families import counter_title_controls, different_code_controls, same_shape_family
from tests.factories import T0, make_actor, make_comment, make_maintainer, make_snapshot
from tests.families.helpers import members_of

REPO = "acme/lane"
CONFIG = Config()
NOW = T0 + timedelta(hours=2)


def families_of(members, controls=None, config=CONFIG, now=NOW):
    return find_families(REPO, members, controls or {}, config, now)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("S085: add x action", "S086: add x action", True),
        ("lane/s085-a_X_review_ack", "lane/s085-a_Y_review_ack", True),
        ("Fix parser crash", "Fix parser crash", False),
        ("Fix parser crash", "Add cache layer", False),
        ("a_X_review_ack", "a_Y_review_nack", False),
    ],
    ids=[
        "counter only -> substitution",
        "one slot -> substitution",
        "identical -> not a substitution",
        "different words -> no",
        "two slots -> no",
    ],
)
def test_is_substitution(a: str, b: str, expected: bool) -> None:
    assert is_substitution(a, b) is expected


def test_family_of_20_names_at_3_proposes_at_3_consolidates_at_5_stops_6_to_20() -> None:
    members = members_of(same_shape_family(1, count=20))
    (family,) = families_of(members)
    at = {r.rule_id: r.at_member for r in family.responses}
    assert at["family.name-invariant"] == 3
    assert at["family.propose-helper"] == 3
    assert at["family.consolidate"] == 5
    assert family.invariant == (
        "checks build, test green on `app/dashboard/panels.py`, `app/routes/actions.py`"
    )
    assert [v.number for v in family.verdicts if not v.stopped] == [1, 2, 3, 4, 5]
    assert {v.stop_rule_id for v in family.stopped_members} == {"family-substitution"}
    assert family.verdicts[5].substitution_of == 5
    assert family.state is FamilyState.STOPPED


def test_negative_controls_form_no_family() -> None:
    same_files = members_of(different_code_controls(1, count=20))
    counter_titles = members_of(counter_title_controls(21, count=20))
    assert families_of(same_files) == ()
    assert families_of(counter_titles) == ()
    mixed = families_of(same_files + counter_titles + members_of(same_shape_family(41, count=4)))
    assert [len(f.members) for f in mixed] == [4]


def test_not_substitution_after_consolidation_is_family_consolidation() -> None:
    specs = same_shape_family(1, count=7)
    for index, spec in enumerate(specs):
        spec["title"], spec["head_ref"] = f"Lane work {chr(65 + index)} {index * 'x'}", ""
    (family,) = families_of(members_of(specs))
    assert [v.stop_rule_id for v in family.verdicts] == [None] * 5 + ["family-consolidation"] * 2
    assert family.state is FamilyState.CONSOLIDATING


def test_substitution_after_is_configurable() -> None:
    config = CONFIG.model_copy(update={"families": Families(substitution_after=3)})
    (family,) = families_of(members_of(same_shape_family(1, count=6)), config=config)
    assert [v.stopped for v in family.verdicts] == [False, False, False, True, True, True]


def test_continue_releases_members_up_to_it_and_close_releases_all() -> None:
    members = members_of(same_shape_family(1, count=20))
    (family,) = families_of(members)
    continued = {family.key: FamilyControl(continued_at=members[9].created_at)}
    (after,) = families_of(members, continued)
    assert [v.number for v in after.stopped_members] == list(range(11, 21))
    closed = {family.key: FamilyControl(closed=True, closed_reason="issue closed")}
    (done,) = families_of(members, closed)
    assert done.stopped_members == () and done.state is FamilyState.CLOSED


def test_burn_ceiling_stops_every_member_until_continue() -> None:
    burn = (SpendPoint(NOW - timedelta(minutes=10), 1_500_000, 4.0),)
    members = members_of(same_shape_family(1, count=3), spend=burn, jobs=1)
    (family,) = families_of(members)
    assert {v.stop_rule_id for v in family.verdicts} == {"family-burn"}
    assert family.burn_tokens_last_hour == 4_500_000
    assert family.tokens_not_spent == 3 * 1_500_000
    assert family.tokens_not_spent_by_rule == {"family-burn": 3 * 1_500_000}
    assert "`family-burn` 4,500,000" in render_issue(family)
    (after,) = families_of(members, {family.key: FamilyControl(continued_at=NOW)})
    assert after.stopped_members == ()


def test_families_off_or_outside_window_find_nothing() -> None:
    members = members_of(same_shape_family(1, count=5))
    off = CONFIG.model_copy(update={"families": Families(enabled=False)})
    assert families_of(members, config=off) == ()
    assert families_of(members, now=NOW + timedelta(days=31)) == ()


def test_family_is_the_same_whatever_order_members_come_in() -> None:
    members = members_of(same_shape_family(1, count=8))
    assert families_of(members) == families_of(list(reversed(members)))


def test_issue_has_marker_matrix_gaps_and_the_question() -> None:
    members = members_of(same_shape_family(1, count=6))
    members[5] = replace(members[5], green_checks=("build",), failing_checks=("test",))
    (family,) = families_of(members)
    body = render_issue(family)
    assert body.startswith(f"<!-- prsteward:family:{family.key} -->")
    assert "| #6 | 2 | green | red |" in body
    assert "- #6: test failing" in body
    assert "What new truth does the next one buy that the last three did not?" in body
    assert render_issue(family) == body


def test_family_commands_only_from_maintainers() -> None:
    snapshot = make_snapshot(
        comments=(
            make_comment(body="/prsteward family continue", author=make_maintainer()),
            make_comment(body="/prsteward family close", author=make_actor("outsider"), id=2),
        )
    )
    assert [verb for verb, _ in family_commands(snapshot, CONFIG, frozenset())] == ["continue"]


def test_replay_88_same_shape_arrivals_families_on_and_off() -> None:
    members = members_of(same_shape_family(1, count=88, first_counter=1))
    on = replay_arrivals(REPO, members, CONFIG, 200_000)
    off = replay_arrivals(REPO, members, CONFIG, 200_000, families_on=False)
    assert (off.escalations_started, off.tokens_spent) == (88, 88 * 200_000)
    assert on.escalations_started == 5
    assert on.stopped == {"family-substitution": 83}
    assert on.tokens_not_spent == 83 * 200_000
    lane = lane_members(same_shape_family(1, count=88, first_counter=1), T0)
    assert replay_arrivals(REPO, lane, CONFIG, 200_000) == on
