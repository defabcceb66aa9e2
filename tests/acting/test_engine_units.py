"""Engine units over a SQLite ledger with an in-memory ``Actions``: tier and whose-turn changes
recorded once, the history handed to the policies, shadow -> act, and write pacing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.engine import Engine, permissions_satisfy
from bot.executor import WritePacer
from ledger import candidates as ledger_candidates
from ledger import decisions, history, pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import CandidateOutcome
from policies.config import Config
from policies.snapshot import Mergeable
from tests.acting.conftest import FakeTime
from tests.acting.test_engine_ledger import (
    NOW,
    REPO,
    MemoryActions,
    engine_with,
    observe,
    setup,
)
from tests.factories import failing, make_snapshot


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


async def test_tier_and_turn_changes_are_recorded_once_each(db: Ledger) -> None:
    snapshot = failing(make_snapshot(), "test")
    await setup(db, snapshot, mode="shadow")
    engine = Engine(db, None, None, clock=lambda: NOW)
    await engine.evaluate_pull(REPO, 1, NOW)
    await engine.evaluate_pull(REPO, 1, NOW)
    pull = await pulls.get_pull(db, REPO, 1)
    assert pull is not None and pull.id is not None and pull.tier == "signal"
    tiers = await decisions.list_decisions(db, pull_request_id=pull.id, kind="tier")
    assert [(d.from_value, d.to_value) for d in tiers] == [(None, "signal")]

    await observe(db, make_snapshot())  # green again
    await engine.evaluate_pull(REPO, 1, NOW)
    await engine.evaluate_pull(REPO, 1, NOW)
    tiers = await decisions.list_decisions(db, pull_request_id=pull.id, kind="tier")
    assert [(d.from_value, d.to_value) for d in tiers] == [(None, "signal"), ("signal", "active")]
    turns = await decisions.list_decisions(db, pull_request_id=pull.id, kind="whose_turn")
    assert [d.to_value for d in turns] == ["author", "maintainers"]


async def test_history_reflects_what_was_done(db: Ledger) -> None:
    await setup(db, make_snapshot(mergeable=Mergeable.CONFLICTING, checks_state="FAILURE"))
    engine = engine_with(db, MemoryActions())
    evaluation = await engine.evaluate_pull(REPO, 1, NOW)
    assert evaluation is not None
    pull = await pulls.get_pull(db, REPO, 1)
    repository = await repositories.get_repository(db, REPO)
    assert pull is not None and pull.id is not None and repository is not None
    assert repository.id is not None
    past = await history.load_history(db, history.PullKey(pull.id, repository.id, 1), NOW)
    assert past.labels_added_by_bot == ("needs-rebase",)
    assert past.sticky_comment_id == pull.sticky_comment_id is not None
    assert past.sticky_content_hash is not None
    assert past.last_comment_at == NOW and past.last_bot_action_at == NOW
    assert {c.outcome for c in past.candidates} >= {"posted"}
    assert past.tier == "signal"
    spend = await history.load_spend(db, history.PullKey(pull.id, repository.id, 1), NOW)
    assert spend.pr_dollars == 0.0 and spend.installation_last_hour_dollars == 0.0


async def test_shadow_then_act_performs_what_shadow_recorded(db: Ledger) -> None:
    await setup(db, failing(make_snapshot(), "test"), mode="shadow")
    actions = MemoryActions()
    engine = engine_with(db, actions)
    shadow = await engine.evaluate_pull(REPO, 1, NOW)
    assert shadow is not None and actions.calls == []
    would = {(k, o) for k, o in shadow.candidates_written}
    assert {o for _k, o in would} == {CandidateOutcome.SHADOW.value}

    await repositories.record_config(
        db, REPO, Config(mode="act").model_dump(by_alias=True, mode="json"), None, NOW
    )
    acted = await engine.evaluate_pull(REPO, 1, NOW)
    assert acted is not None
    assert {p.key for p in acted.performed} == {k for k, _o in would}
    assert actions.calls == ["create_comment"]


def test_pacer_spaces_writes_and_caps_content_creation() -> None:
    import asyncio

    time = FakeTime()
    pacer = WritePacer(clock=time, sleep=time.sleep)

    async def run() -> None:
        for _ in range(3):
            await pacer.wait(1, content_creating=False)
        await pacer.wait(2, content_creating=False)  # another installation: no wait
        assert time.slept == [1.0, 1.0]
        time.slept.clear()
        cheap = WritePacer(min_interval=0.0, per_minute=80, clock=time, sleep=time.sleep)
        for _ in range(81):
            await cheap.wait(1, content_creating=True)
        assert time.slept == [60.0]  # the 81st waits for the first to leave the window

    asyncio.run(run())


async def test_sticky_comment_follows_state_back_and_forth(db: Ledger) -> None:
    """red -> green -> red -> green at the same head: the status text repeats, and the sticky
    comment must still show the current state each time (never a stale 'failing')."""
    red, green = failing(make_snapshot(), "test"), make_snapshot()
    await setup(db, red)
    actions = MemoryActions()
    engine = engine_with(db, actions)
    for snapshot in (red, green, red, green):
        await observe(db, snapshot)
        await engine.evaluate_pull(REPO, 1, NOW)
        [body] = actions.comments.values()
        assert ("checks fail" in body) is (snapshot is red), body
    assert actions.calls == ["create_comment", "edit_comment", "edit_comment", "edit_comment"]


@pytest.mark.parametrize(
    ("accepted", "granted", "expected"),
    [
        ("issues=write", {"issues": "write"}, "issues=write"),
        ("issues=write", {"issues": "read"}, None),
        ("issues=write", {"issues": "admin"}, "issues=write"),
        ("contents=read,issues=write", {"issues": "write"}, None),
        ("repository_projects=write; issues=write", {"issues": "write"}, "issues=write"),
        (None, {"issues": "write"}, None),
        ("", {"issues": "write"}, None),
    ],
    ids=[
        "write needed, write granted -> lift",
        "write needed, read granted -> stand",
        "admin covers write -> lift",
        "a set needs all its permissions -> stand",
        "any one set is enough -> lift",
        "no header -> stand (until cleared)",
        "empty header -> stand",
    ],
)
def test_permissions_satisfy(
    accepted: str | None, granted: dict[str, str], expected: str | None
) -> None:
    assert permissions_satisfy(accepted, granted) == expected


async def test_boundary_lifts_once_the_installation_has_the_named_permission(db: Ledger) -> None:
    await setup(db, make_snapshot(mergeable=Mergeable.CONFLICTING))
    await repositories.upsert_installation(db, 1, "acme", NOW, permissions={"issues": "read"})
    actions = MemoryActions()
    actions.deny.add("add_label")  # denied with x-accepted-github-permissions: issues=write
    engine = engine_with(db, actions)
    await engine.evaluate_pull(REPO, 1, NOW)
    await engine.evaluate_pull(REPO, 1, NOW)
    assert actions.calls.count("add_label") == 1

    # new_permissions_accepted: the installation row now carries issues=write.
    later = NOW + timedelta(minutes=5)
    await repositories.upsert_installation(db, 1, "acme", later, permissions={"issues": "write"})
    actions.deny.clear()
    await engine.evaluate_pull(REPO, 1, NOW)
    await engine.evaluate_pull(REPO, 1, NOW)
    assert actions.calls.count("add_label") == 2
    assert actions.labels == {"needs-rebase"}
    repository = await repositories.get_repository(db, REPO)
    assert repository is not None and repository.id is not None
    assert await ledger_candidates.active_boundaries(db, 1, repository.id) == {}
