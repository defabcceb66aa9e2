"""The executor end to end against the sim: exactly one sticky comment, edited in place; shadow
mode writes nothing; re-runs and crashes never double-post; a denied write is attempted once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ledger import candidates as ledger_candidates
from ledger import pulls
from ledger.models import CandidateOutcome
from tests.acting.conftest import ActingWorld, acting_scenario

World = Callable[..., Awaitable[ActingWorld]]
CREATE = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
EDIT = "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}"


async def pull_id(world: ActingWorld, number: int) -> int:
    row = await pulls.get_pull(world.db, "acme/widgets", number)
    assert row is not None and row.id is not None
    return row.id


async def test_failing_ci_in_act_mode_gets_one_sticky_comment_edited_in_place(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    await world.control.reset_accounting()

    results = await world.evaluate()

    assert [r.number for r in results] == [11]
    assert await world.writes() == {CREATE: 1}
    comments = await world.bot_comments("acme/widgets", 11)
    assert len(comments) == 1
    assert "<!-- prsteward:status -->" in comments[0]["body"]
    assert "failing_ci" in comments[0]["body"]
    sticky_id = comments[0]["id"]
    row = await pulls.get_pull(world.db, "acme/widgets", 11)
    assert row is not None and row.sticky_comment_id == sticky_id

    # The next change (CI goes green) edits the same comment; it never posts a second one.
    await world.control.event("ci", repo="acme/widgets", pr=11, conclusion="success")
    await world.sync()
    await world.control.reset_accounting()
    await world.evaluate()

    assert await world.writes() == {EDIT: 1}
    comments = await world.bot_comments("acme/widgets", 11)
    assert [c["id"] for c in comments] == [sticky_id]
    assert "failing_ci" not in comments[0]["body"]


async def test_rerunning_the_engine_never_double_posts_and_writes_nothing(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    first = await world.evaluate()
    assert not first[0].quiet
    actions_after_first = len(
        await ledger_candidates.list_actions(world.db, await pull_id(world, 11))
    )

    for _ in range(3):
        await world.sync()  # the sweep now sees prsteward's own comment
        await world.control.reset_accounting()
        again = await world.evaluate()
        assert await world.writes() == {}
        assert again[0].quiet, again[0]

    assert len(await world.bot_comments("acme/widgets", 11)) == 1
    actions = await ledger_candidates.list_actions(world.db, await pull_id(world, 11))
    assert len(actions) == actions_after_first == 1


async def test_shadow_mode_writes_nothing_to_github_but_records_would_be_actions(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="shadow"))
    await world.sync()
    await world.control.reset_accounting()

    results = await world.evaluate()

    assert results[0].mode == "shadow"
    accounting = await world.control.accounting()
    assert accounting["writes"] == {}
    assert accounting["totals"]["writes"] == 0
    rows = await ledger_candidates.list_candidates(world.db, await pull_id(world, 11))
    assert {(r.kind, r.outcome) for r in rows} == {
        ("status_comment", CandidateOutcome.SHADOW.value),
        ("escalate", CandidateOutcome.SHADOW.value),
    }
    status = next(r for r in rows if r.kind == "status_comment")
    assert "failing_ci" in status.details["body"]  # the would-be comment, for the shadow report

    # A second shadow cycle is quiet: nothing new in the ledger either.
    again = await world.evaluate()
    assert again[0].quiet
    assert len(await ledger_candidates.list_candidates(world.db, await pull_id(world, 11))) == 2
