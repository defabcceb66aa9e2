"""Permission boundaries recorded once, against the sim: a write GitHub denies with 403
"Resource not accessible by integration" (+ x-accepted-github-permissions) is attempted once per
boundary, not per cycle (the sim's accounting shows it), reported once, and the boundary lifts
when the installation accepts new permissions (``installation`` new_permissions_accepted)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bot.boundaries import clear, is_boundary, report_new
from bot.handlers.effects import LiftBoundaries
from ledger import boundaries as ledger_boundaries
from sim.objects import INSTALLATION_PERMISSIONS
from tests.acting.conftest import ActingWorld, acting_scenario
from tests.acting.test_executor_sim import CREATE
from tests.spend.helpers import route_last_webhook

World = Callable[..., Awaitable[ActingWorld]]
TWO_RED_PULLS = [
    {
        "number": number,
        "title": f"Fix crash {number}",
        "author": "dave",
        "created": "-2d",
        "checks": {"ci": "failure", "lint": "success"},
    }
    for number in (11, 12)
]


@pytest.mark.parametrize(
    ("status", "message", "boundary"),
    [
        (403, "Resource not accessible by integration", True),
        (404, "Not Found", True),  # the installation lost the repository
        (410, "Issues are disabled for this repo", True),
        (422, "Repository was archived so is read-only.", True),
        (422, "Unable to create comment because issue is locked.", True),
        (422, "Validation Failed", False),
        (403, "You have exceeded a secondary rate limit.", False),
        (403, "API rate limit exceeded for installation ID 1.", False),
        (502, "Server Error", False),
    ],
)
def test_which_refusals_are_boundaries(status: int, message: str, boundary: bool) -> None:
    assert is_boundary(status, message) is boundary


async def test_denied_write_is_attempted_once_per_boundary_and_lifts_on_new_permissions(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act", pulls=TWO_RED_PULLS))
    world.server.sim.state.installations[1].permissions = {
        **INSTALLATION_PERMISSIONS,
        "issues": "read",
        "pull_requests": "read",
    }
    await world.sync()
    await world.control.add_fault(
        "deny",
        path=r"/issues/\d+/comments$",
        method="POST",
        count=-1,
        accepted_permissions="issues=write",
    )
    await world.control.reset_accounting()

    for _ in range(4):
        await world.sync()
        await world.evaluate()

    assert (await world.requests()).get(CREATE) == 1  # once, not once per cycle or per PR
    [row] = await ledger_boundaries.list_boundaries(world.db)
    boundary = row.boundary
    assert row.repository == "acme/widgets" and boundary.installation_id == 1
    assert boundary.action_kind == "comment" and boundary.http_status == 403
    assert boundary.message == "Resource not accessible by integration"
    assert boundary.accepted_permissions == "issues=write"
    assert boundary.suppressed_count >= 1  # PR 12's status comment, never attempted
    now = await world.now()
    [line] = await report_new(world.db, now)  # reported once
    assert "comment denied" in line and "issues=write" in line
    assert await report_new(world.db, now) == []
    from bot.report import build_report, render_markdown

    markdown = render_markdown(await build_report(world.db, now))
    assert "### Permission boundaries" in markdown and "issues=write" in markdown

    # the installation accepts the permission: the webhook lifts the boundary
    await world.control.clear_faults()
    await world.control.event(
        "new_permissions_accepted", installation=1, permissions={"issues": "write"}
    )
    effects = await route_last_webhook(world, "installation", now)
    assert any(isinstance(e, LiftBoundaries) for e in effects)
    assert await ledger_boundaries.list_boundaries(world.db) == []
    [lifted] = await ledger_boundaries.list_boundaries(world.db, standing=False)
    assert "new_permissions_accepted" in (lifted.boundary.lifted_reason or "")

    await world.sync()
    await world.evaluate()
    assert (await world.requests()).get(CREATE) == 3  # tried again, once per PR
    assert len(await world.bot_comments("acme/widgets", 11)) == 1
    assert len(await world.bot_comments("acme/widgets", 12)) == 1


async def test_a_maintainer_clears_a_boundary(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    await world.control.add_fault("deny", path=r"/issues/\d+/comments$", method="POST", count=1)
    await world.evaluate()
    await world.evaluate()
    assert len(await ledger_boundaries.list_boundaries(world.db)) == 1
    assert len(await world.bot_comments("acme/widgets", 11)) == 0
    assert await clear(world.db, await world.now(), repository="acme/widgets", kind="comment") == 1
    await world.evaluate()
    assert len(await world.bot_comments("acme/widgets", 11)) == 1


async def test_an_archived_repository_is_watched_read_only(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode="act", archived=True))
    await world.control.reset_accounting()
    await world.sync()
    [evaluation] = await world.evaluate()
    assert evaluation.mode == "shadow"  # read, decided, recorded; never written
    assert evaluation.decision.candidates
    assert await world.writes() == {}
