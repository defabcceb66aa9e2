"""Low-return repositories against the sim: escalations keep failing verification (circuit
breaker open) and no maintainer acted for ``stop-loss.low-return-idle-days``: the repository is
demoted to watch-only with the reason recorded; the next maintainer action restores it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from bot.budgets import LowReturnReview, review_low_return
from bot.escalation import stored_config
from ledger.models import Decision, JobState
from ledger.repositories import get_repository
from policies.config import Config
from tests.acting.conftest import ActingWorld, acting_scenario
from tests.spend.helpers import seed_job

World = Callable[..., Awaitable[ActingWorld]]


async def low_return_decisions(world: ActingWorld) -> list[Decision]:
    async with world.db.transaction() as session:
        rows = await session.execute(select(Decision).where(Decision.kind == "low_return"))
        return list(rows.scalars().all())


async def test_low_return_repository_is_demoted_and_restored_by_a_maintainer(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    now = await world.now()
    for number in (301, 302, 303):
        await seed_job(
            world.db,
            number,
            kind="failing_ci",
            size="S",
            state=JobState.VERIFY_FAILED,
            dollars=0.5,
            tokens=50_000,
            now=now,
        )
    config = Config.model_validate({"mode": "act", "stop-loss": {"low-return-idle-days": 7}})

    # the circuit breaker is open, but the repository was only just seen: not yet
    assert not (await review_low_return(world.db, "acme/widgets", config, now)).changed
    await world.control.advance("8d")  # no maintainer action for 8 days (the limit is 7)
    now = await world.now()
    verdict = await review_low_return(world.db, "acme/widgets", config, now)
    assert verdict.watch_only and verdict.changed
    row = await get_repository(world.db, "acme/widgets")
    assert row is not None and row.watch_only
    assert "circuit breaker open" in (row.watch_only_reason or "")
    [decision] = await low_return_decisions(world)
    assert decision.rule_id == "low-return.demoted" and decision.to_value == "watch-only"

    # watch-only: nothing is written any more
    await world.control.reset_accounting()
    [evaluation] = await world.evaluate()
    assert evaluation.mode == "shadow"
    assert await world.writes() == {}

    # reviewing again changes nothing; a maintainer comments: restored
    assert not (await review_low_return(world.db, "acme/widgets", config, now)).changed
    await world.control.advance("1h")
    await world.control.event("comment", repo="acme/widgets", pr=11, user="alice", body="Looking")
    await world.sync()
    verdict = await review_low_return(world.db, "acme/widgets", config, await world.now())
    assert verdict.changed and not verdict.watch_only
    row = await get_repository(world.db, "acme/widgets")
    assert row is not None and not row.watch_only
    assert [d.rule_id for d in await low_return_decisions(world)] == [
        "low-return.demoted",
        "low-return.restored",
    ]
    # a recent maintainer action keeps it: the breaker alone does not demote
    assert not (
        await review_low_return(world.db, "acme/widgets", config, await world.now())
    ).changed


async def test_closed_circuit_is_never_demoted_and_the_review_is_throttled(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.sync()
    now = await world.now()

    async def config_for(repository: str) -> Config:
        return await stored_config(world.db, repository)

    review = LowReturnReview(world.db, config_for)
    assert await review(now) == []
    row = await get_repository(world.db, "acme/widgets")
    assert row is not None and not row.watch_only
    assert review.last_run == now
