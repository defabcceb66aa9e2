"""The webhook inbox: store first, acknowledge, process later, never twice.

The intake stores each delivery (``store_delivery`` or, batched, ``store_deliveries``) and only
then answers 2xx. Workers ``claim_deliveries``, process them, and ``finish_delivery``. At start,
``requeue_processing`` puts back what a crashed worker left half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._sql import chunks, rowcount, upsert_insert
from ledger.db import Ledger
from ledger.models import DeliveryState, WebhookDelivery, table_of

log = logging.getLogger("prsteward.inbox")

# Rows per INSERT: 10 columns each stays far below SQLite's and asyncpg's parameter limits.
_INSERT_CHUNK = 1000
_FINAL_STATES = {DeliveryState.PROCESSED, DeliveryState.IGNORED, DeliveryState.FAILED}


@dataclass(frozen=True, slots=True)
class IncomingDelivery:
    """A webhook delivery as received, before it is stored."""

    delivery_id: str  # X-GitHub-Delivery
    event: str  # X-GitHub-Event
    payload: bytes  # the raw body, exactly as signed
    received_at: datetime
    action: str | None = None
    installation_id: int | None = None
    repository_full_name: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A stored delivery a worker now owns (state ``processing``)."""

    id: int
    delivery_id: str
    event: str
    action: str | None
    installation_id: int | None
    repository_full_name: str | None
    payload: bytes
    received_at: datetime
    attempts: int  # including this one


def _row(delivery: IncomingDelivery) -> dict[str, object]:
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository_full_name": delivery.repository_full_name,
        "received_at": delivery.received_at,
        "payload": delivery.payload,
        "state": DeliveryState.PENDING.value,
        "attempts": 0,
    }


async def store_delivery(db: Ledger, delivery: IncomingDelivery) -> bool:
    """Store one delivery; True when it is new, False for a redelivery (nothing is stored)."""
    return (await store_deliveries(db, [delivery]))[0]


async def store_deliveries(db: Ledger, deliveries: Sequence[IncomingDelivery]) -> list[bool]:
    """Store many deliveries (group commit); one flag per input, in order. See
    :func:`store_deliveries_on`, which this runs on a connection of its own."""
    async with db.write_turn(), db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return await store_deliveries_on(autocommit, deliveries)


@functools.cache
def _store_statement(backend: str) -> Any:
    # Built once per dialect: constructing the statement costs more than executing it.
    table = table_of(WebhookDelivery)
    return (
        upsert_insert(backend, table)
        .on_conflict_do_nothing(index_elements=["delivery_id"])
        .returning(table.c.delivery_id)
    )


async def store_deliveries_on(
    connection: AsyncConnection, deliveries: Sequence[IncomingDelivery]
) -> list[bool]:
    """Store many deliveries on ``connection``, which must be in AUTOCOMMIT: each chunk of up
    to ``_INSERT_CHUNK`` rows is ONE ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` statement,
    atomic and durable by itself, so a batch costs one round trip instead of BEGIN, INSERT and
    COMMIT (on this kind of machine each round trip that wakes the database costs ~0.25 ms of
    CPU). When this returns, the rows are committed: only then may the intake acknowledge.

    A flag is True when that input was stored now, False when its delivery id was already in
    the inbox or appeared earlier in the same batch. Concurrent intakes racing on one delivery
    id store it exactly once (the unique index decides).
    """
    if not deliveries:
        return []
    statement = _store_statement(connection.dialect.name)
    # One global order: two statements sharing delivery ids cannot then wait on each other's
    # uncommitted rows in opposite orders (a deadlock on PostgreSQL). Within a batch the ids
    # (and so the claim order) follow the delivery id, not arrival; received_at keeps the
    # arrival time.
    rows = sorted((_row(d) for d in deliveries), key=lambda row: str(row["delivery_id"]))
    inserted: set[str] = set()
    for part in chunks(rows, _INSERT_CHUNK):
        result = await connection.execute(statement, part)
        inserted.update(result.scalars().all())
    flags = []
    for delivery in deliveries:
        if delivery.delivery_id in inserted:
            flags.append(True)
            inserted.discard(delivery.delivery_id)  # a second copy in the batch is a duplicate
        else:
            flags.append(False)
    return flags


class InboxWriter:
    """One connection held for storing batches (the webhook intake's writer task owns one).

    The connection is in AUTOCOMMIT, so a batch is a single statement: one round trip, with no
    pool checkout, connection ping, BEGIN or COMMIT around it. A batch that fails is tried once
    more on a fresh connection (a restarted database leaves the held one dead); if that fails
    too the error is raised and the next batch starts on a fresh connection again.
    """

    def __init__(self, db: Ledger) -> None:
        self.db = db
        self._connection: AsyncConnection | None = None

    async def store(self, deliveries: Sequence[IncomingDelivery]) -> list[bool]:
        """:func:`store_deliveries_on` the held connection; flags as it gives them."""
        try:
            return await self._store(deliveries)
        except Exception as error:  # noqa: BLE001 - a dead connection: once more, fresh
            log.warning(
                "storing %d deliveries failed (%r); retrying on a fresh connection",
                len(deliveries),
                error,
            )
            await self.close()
            try:
                return await self._store(deliveries)
            except BaseException:
                await self.close()
                raise

    async def _store(self, deliveries: Sequence[IncomingDelivery]) -> list[bool]:
        if self._connection is None:
            connection = await self.db.engine.connect()
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with self.db.write_turn():
            return await store_deliveries_on(self._connection, deliveries)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(connection.close())


async def claim_deliveries(
    db: Ledger, worker: str, now: datetime, limit: int = 50
) -> list[ClaimedDelivery]:
    """Move up to ``limit`` pending deliveries, oldest first, to ``processing`` for ``worker``.

    Each delivery is claimed by at most one worker: on PostgreSQL the candidates are locked
    with FOR UPDATE SKIP LOCKED, so concurrent claimers take disjoint sets without waiting;
    on SQLite the claim is one UPDATE inside a write-locked (IMMEDIATE) transaction.
    Returns the claimed deliveries ordered by arrival; ``attempts`` counts this claim.
    """
    table = table_of(WebhookDelivery)
    model = table.c
    pending = (
        select(model.id)
        .where(model.state == DeliveryState.PENDING.value)
        .order_by(model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(table)
        .where(model.id.in_(pending))
        .values(
            state=DeliveryState.PROCESSING.value,
            worker=worker,
            claimed_at=now,
            attempts=model.attempts + 1,
            error=None,
        )
        .returning(
            model.id,
            model.delivery_id,
            model.event,
            model.action,
            model.installation_id,
            model.repository_full_name,
            model.payload,
            model.received_at,
            model.attempts,
        )
    )
    async with db.transaction() as session:
        rows = (await session.execute(statement)).all()
    claimed = [ClaimedDelivery(*row) for row in rows]
    return sorted(claimed, key=lambda delivery: delivery.id)


async def finish_delivery(
    db: Ledger,
    id: int,
    state: DeliveryState,
    now: datetime,
    error: str | None = None,
    worker: str | None = None,
) -> bool:
    """Record the end of processing: ``processed``, ``ignored`` (with why in ``error``) or
    ``failed`` (with the error). Only a delivery still in ``processing`` (and, when ``worker``
    is given, claimed by that worker) changes; returns whether it did.
    """
    if state not in _FINAL_STATES:
        raise ValueError(f"finish_delivery needs processed, ignored or failed, not {state!r}")
    table = table_of(WebhookDelivery)
    model = table.c
    conditions = [model.id == id, model.state == DeliveryState.PROCESSING.value]
    if worker is not None:
        conditions.append(model.worker == worker)
    statement = (
        update(table).where(*conditions).values(state=state.value, processed_at=now, error=error)
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
    return rowcount(result) > 0


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of one claimed delivery's processing (for :func:`finish_deliveries`)."""

    id: int
    state: DeliveryState
    error: str | None = None


async def finish_deliveries(
    db: Ledger, finished: Sequence[Finished], now: datetime, worker: str | None = None
) -> int:
    """:func:`finish_delivery` for a worker's whole claimed batch in ONE transaction (one
    UPDATE per final state and error text). Only rows still ``processing`` (and claimed by
    ``worker`` when given) change; returns how many did. Safe because processing is
    idempotent: if this never commits, the claims go stale and the deliveries run again."""
    for item in finished:
        if item.state not in _FINAL_STATES:
            raise ValueError(f"finish needs processed, ignored or failed, not {item.state!r}")
    if not finished:
        return 0
    table = table_of(WebhookDelivery)
    model = table.c
    groups: dict[tuple[str, str | None], list[int]] = {}
    for item in finished:
        groups.setdefault((item.state.value, item.error), []).append(item.id)
    changed = 0
    async with db.transaction() as session:
        for (state, error), ids in sorted(
            groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        ):
            for part in chunks(sorted(ids), _INSERT_CHUNK):
                conditions = [model.id.in_(part), model.state == DeliveryState.PROCESSING.value]
                if worker is not None:
                    conditions.append(model.worker == worker)
                result = await session.execute(
                    update(table)
                    .where(*conditions)
                    .values(state=state, processed_at=now, error=error)
                )
                changed += rowcount(result)
    return changed


async def newest_received_at(db: Ledger) -> datetime | None:
    """When the newest stored delivery arrived, or None for an empty inbox."""
    model = table_of(WebhookDelivery).c
    async with db.read() as session:
        value = (await session.execute(select(func.max(model.received_at)))).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def known_delivery_ids(db: Ledger, delivery_ids: Sequence[str]) -> set[str]:
    """Which of these ``X-GitHub-Delivery`` ids (GUIDs) are already in the inbox."""
    wanted = sorted(set(delivery_ids))
    if not wanted:
        return set()
    column = table_of(WebhookDelivery).c.delivery_id
    found: set[str] = set()
    async with db.read() as session:
        for part in chunks(wanted, _INSERT_CHUNK):
            rows = (await session.execute(select(column).where(column.in_(part)))).scalars()
            found.update(str(r) for r in rows)
    return found


async def count_deliveries(db: Ledger, delivery_ids: Sequence[str] | None = None) -> int:
    """How many inbox rows there are (of these delivery ids when given)."""
    column = table_of(WebhookDelivery).c.delivery_id
    statement = select(func.count()).select_from(table_of(WebhookDelivery))
    if delivery_ids is not None:
        statement = statement.where(column.in_(sorted(set(delivery_ids))))
    async with db.read() as session:
        return int((await session.execute(statement)).scalar_one())


async def requeue_processing(
    db: Ledger, claimed_before: datetime | None = None, worker: str | None = None
) -> int:
    """Put deliveries left in ``processing`` back to ``pending``; returns how many.

    Run at start. With several replicas sharing one PostgreSQL, bound it (``claimed_before``
    an old enough time, or ``worker`` the dead worker's name) so that live workers keep theirs.
    """
    table = table_of(WebhookDelivery)
    model = table.c
    conditions = [model.state == DeliveryState.PROCESSING.value]
    if claimed_before is not None:
        conditions.append(model.claimed_at < claimed_before)
    if worker is not None:
        conditions.append(model.worker == worker)
    statement = update(table).where(*conditions).values(state=DeliveryState.PENDING.value)
    async with db.transaction() as session:
        result = await session.execute(statement)
    return rowcount(result)


async def requeue_failed(db: Ledger, max_attempts: int) -> int:
    """Put ``failed`` deliveries with fewer than ``max_attempts`` attempts back to ``pending``."""
    table = table_of(WebhookDelivery)
    model = table.c
    statement = (
        update(table)
        .where(model.state == DeliveryState.FAILED.value, model.attempts < max_attempts)
        .values(state=DeliveryState.PENDING.value)
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
    return rowcount(result)


async def count_by_state(db: Ledger) -> dict[DeliveryState, int]:
    """How many deliveries are in each state (every state present, zero when none)."""
    table = table_of(WebhookDelivery)
    model = table.c
    statement = select(model.state, func.count()).group_by(model.state)
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    counts = dict.fromkeys(DeliveryState, 0)
    for state, count in rows:
        counts[DeliveryState(state)] = int(count)
    return counts


async def oldest_pending_received_at(db: Ledger) -> datetime | None:
    """When the oldest still-pending delivery arrived (the backlog's age), or None."""
    table = table_of(WebhookDelivery)
    model = table.c
    statement = select(func.min(model.received_at)).where(
        model.state == DeliveryState.PENDING.value
    )
    async with db.read() as session:
        value = (await session.execute(statement)).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


async def get_delivery(db: Ledger, delivery_id: str) -> WebhookDelivery | None:
    """The stored row for an ``X-GitHub-Delivery`` id, or None."""
    column = table_of(WebhookDelivery).c.delivery_id
    statement = select(WebhookDelivery).where(column == delivery_id)
    async with db.read() as session:
        return (await session.execute(statement)).scalar_one_or_none()
