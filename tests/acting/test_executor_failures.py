"""GitHub refusing writes, end to end against the sim: a denied write is attempted once per
boundary, not every cycle; server errors are retried boundedly and recorded with GitHub's
status; a rate-limited write keeps its work for a later cycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ledger import candidates as ledger_candidates
from ledger.models import CandidateOutcome
from tests.acting.conftest import ActingWorld, acting_scenario
from tests.acting.test_executor_sim import CREATE, pull_id

World = Callable[..., Awaitable[ActingWorld]]


async def test_denied_write_is_attempted_once_not_every_cycle(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    await world.control.add_fault(
        "deny",
        path=r"/issues/\d+/comments$",
        method="POST",
        accepted_permissions="issues=write",
        count=-1,
    )
    await world.control.reset_accounting()

    for _ in range(4):
        await world.evaluate()

    requests = await world.requests()
    assert requests.get(CREATE) == 1, requests
    assert await world.writes() == {}
    rows = await ledger_candidates.list_candidates(world.db, await pull_id(world, 11))
    status = [r for r in rows if r.kind == "status_comment"]
    assert [r.outcome for r in status] == [CandidateOutcome.SUPPRESSED_BOUNDARY.value]
    repo_row = await world.db_repository()
    boundaries = await ledger_candidates.active_boundaries(world.db, 1, repo_row)
    assert set(boundaries) == {"comment"}
    assert boundaries["comment"].http_status == 403
    assert boundaries["comment"].message == "Resource not accessible by integration"
    assert boundaries["comment"].accepted_permissions == "issues=write"
    actions = await ledger_candidates.list_actions(world.db, await pull_id(world, 11))
    assert [(a.status, a.http_status) for a in actions] == [("failed", 403)]


async def test_server_errors_are_retried_boundedly_and_recorded_with_githubs_status(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    await world.control.add_fault(
        "status", path=r"/issues/\d+/comments$", method="POST", status=502, count=-1
    )
    await world.control.reset_accounting()

    for _ in range(5):
        await world.evaluate()

    # 4 attempts per cycle (the client's bounded retry), 3 cycles per candidate, then left failed.
    assert (await world.requests()).get(CREATE) == 12
    rows = await ledger_candidates.list_candidates(world.db, await pull_id(world, 11))
    status = [r for r in rows if r.kind == "status_comment"]
    assert [r.outcome for r in status] == [CandidateOutcome.FAILED.value]
    actions = await ledger_candidates.list_actions(world.db, await pull_id(world, 11))
    assert [(a.status, a.http_status) for a in actions] == [("failed", 502)] * 3
    assert all("502" in (a.error or "") for a in actions)


async def test_rate_limited_write_keeps_the_work_for_a_later_cycle(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    await world.control.add_fault(
        "secondary", path=r"/issues/\d+/comments$", method="POST", retry_after=600, count=1
    )
    first = await world.evaluate()
    assert first[0].stopped is not None and "rate limited" in first[0].stopped
    assert await world.bot_comments("acme/widgets", 11) == []

    world.app.installation(1).budget.blocked_until = None  # the wait is over
    await world.evaluate()
    assert len(await world.bot_comments("acme/widgets", 11)) == 1
    actions = await ledger_candidates.list_actions(world.db, await pull_id(world, 11))
    assert [(a.kind, a.status) for a in actions] == [("create_comment", "done")]
