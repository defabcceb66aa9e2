"""Helpers for tests/spend: seed finished jobs, wire escalations to a world, route sim webhooks."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.apply import Applier
from bot.escalation import Escalations, github_reader, open_job
from bot.handlers import Event, default_router
from ledger import agents as agent_store
from ledger import jobs as job_store
from ledger import spend as spend_ledger
from ledger.db import Ledger
from ledger.models import Agent, JobState, SpendKind


async def seed_job(
    db: Ledger,
    number: int,
    *,
    kind: str,
    size: str,
    state: JobState,
    dollars: float,
    tokens: int,
    now: datetime,
    repository: str = "acme/widgets",
    flags: list[str] | None = None,
) -> int:
    """A finished job on a bare PR row: QUEUED -> LEASED -> CLAIMED_DONE -> VERIFYING -> state,
    with its spend recorded and its reservation released."""
    job, _ = await job_store.create_job(
        db,
        job_store.NewJob(
            repository=repository,
            number=number,
            trigger_kind=kind,
            trigger_fingerprint=f"seed-{number}",
            budget_tokens=300_000,
            budget_dollars=3.0,
            max_attempts=2,
            start_head_sha="0" * 40,
            size_class=size,
        ),
        now,
        lambda _id, _attempt: {},
    )
    assert job is not None and job.id is not None
    for target in (JobState.LEASED, JobState.CLAIMED_DONE, JobState.VERIFYING, state):
        assert await job_store.move(db, job.id, target, "seed", "seeded history", now)
    async with db.transaction() as session:
        await spend_ledger.add(
            session, job, SpendKind.SPEND, now, tokens_in=tokens, dollars=dollars, note="seed"
        )
        await spend_ledger.release_outstanding(session, job, now, "seed")
        if flags:
            await job_store.set_flags(session, job.id, flags)
    return job.id


def escalations_for(world: Any) -> Escalations:
    """The job service on a world's App (the oracle re-reads the sim)."""
    return Escalations(world.db, read_pull=github_reader(world.app, world.db))


async def agent(db: Ledger, name: str, now: datetime) -> Agent:
    row, _token = await agent_store.add_agent(db, name, now)
    return row


async def route_last_webhook(world: Any, event: str, now: datetime) -> list[Any]:
    """Hand the sim's newest delivery of ``event`` to prsteward's handlers and applier, as the
    webhook server does; returns the effects."""
    delivery = next(d for d in reversed(world.server.sim.webhooks.log) if d.event == event)
    effects = default_router().dispatch(
        Event(name=event, delivery_id=delivery.guid, payload=json.loads(delivery.body))
    )
    await Applier(world.db).apply(effects, delivery_id=delivery.guid, now=now)
    return list(effects)


__all__ = ["agent", "escalations_for", "open_job", "route_last_webhook", "seed_job"]
