"""A bot that watches itself (issue 12 item 8): ``/readyz`` reports the sweep age per
installation, the webhook backlog and the rate-limit reserve, and fails (503, with the reason)
when a sweep is overdue by more than 3 cadences or deliveries wait more than 5 minutes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.report import build_report, render_markdown
from bot.selfcheck import SelfCheck, judge
from bot.server import Server
from ledger.selfcheck import HealthRead, RateSample, SweepState
from tests.lifecycle.conftest import LifecycleWorld, acting_scenario

World = Callable[..., Awaitable[LifecycleWorld]]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0


def read(
    swept_ago: timedelta | None = timedelta(minutes=10),
    added_ago: timedelta = timedelta(days=1),
    waiting: timedelta | None = None,
) -> HealthRead:
    return HealthRead(
        sweeps=(
            SweepState(
                1, "acme/widgets", None if swept_ago is None else NOW - swept_ago, NOW - added_ago
            ),
            SweepState(1, "acme/gadgets", NOW - timedelta(minutes=5), NOW - added_ago),
        ),
        pending_deliveries=0 if waiting is None else 3,
        oldest_pending_at=None if waiting is None else NOW - waiting,
        rate=(RateSample(1, "graphql", 5000, 200, NOW),),
    )


@pytest.mark.parametrize(
    ("health", "behind"),
    [
        (read(), ()),
        (read(swept_ago=timedelta(hours=3)), ()),
        (read(swept_ago=timedelta(hours=3, minutes=5)), ("acme/widgets last swept 185 min ago",)),
        (read(swept_ago=None, added_ago=timedelta(hours=1)), ()),
        (read(swept_ago=None, added_ago=timedelta(hours=4)), ("acme/widgets never swept",)),
        (read(waiting=timedelta(minutes=4)), ()),
        (read(waiting=timedelta(minutes=6)), ("3 webhook deliveries waiting, the oldest 6 min",)),
    ],
    ids=[
        "swept 10 min ago -> ok",
        "swept 3 cadences ago -> ok",
        "swept over 3 cadences ago -> behind",
        "never swept, added 1 cadence ago -> ok",
        "never swept, added 4 cadences ago -> behind",
        "deliveries waiting 4 min -> ok",
        "deliveries waiting 6 min -> behind",
    ],
)
def test_judge(health: HealthRead, behind: tuple[str, ...]) -> None:
    result = judge(health, NOW, HOUR)
    assert len(result.behind) == len(behind), result.behind
    for got, wanted in zip(result.behind, behind, strict=True):
        assert wanted in got
    assert result.summary_line().startswith(
        "prsteward is behind" if behind else "prsteward is keeping"
    )
    figures = result.as_json()
    assert figures["rate_limit_reserve"][0]["remaining"] == 200
    assert figures["rate_limit_reserve"][0]["low"] is True
    assert figures["sweeps"][0]["installation"] == 1


async def _readyz(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            response = await client.get(f"{url}/readyz")
            if "workers starting" not in response.json()["problems"]:
                return response
            await __import__("asyncio").sleep(0.05)
    return response


async def test_readyz_fails_when_the_sweep_is_overdue(lifecycle_world: World) -> None:
    world = await lifecycle_world(acting_scenario())
    await world.sync()
    later = [timedelta(0)]  # the reconciler stamps sweeps with the wall clock: move the check's
    check = SelfCheck(world.db, cadence_seconds=HOUR, clock=lambda: datetime.now(UTC) + later[0])
    server = Server(world.db, webhook_secret="s")
    server.health = check.readiness
    async with server.running() as url:
        fresh = await _readyz(url)
        assert fresh.status_code == 200, fresh.json()
        figures = fresh.json()["health"]
        assert figures["sweeps"][0]["installation"] == 1
        assert figures["webhook_backlog"]["pending"] == 0

        later[0] = timedelta(minutes=181)  # no sweep for more than 3 cadences
        late = await _readyz(url)
        assert late.status_code == 503
        [reason] = late.json()["problems"]
        assert reason.startswith("behind: installation 1: acme/widgets last swept 181 min ago")
        assert (await check.check()).summary_line().startswith("prsteward is behind")
        report = await build_report(world.db, datetime.now(UTC) + later[0])
        assert "**prsteward is behind:** installation 1: acme/widgets" in render_markdown(report)

        later[0] = timedelta(0)
        await world.sync()  # caught up
        assert (await _readyz(url)).status_code == 200
