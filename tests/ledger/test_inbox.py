"""The webhook inbox on both backends: idempotent storage, exclusive claims, recovery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from ledger.db import Ledger
from ledger.inbox import (
    IncomingDelivery,
    claim_deliveries,
    count_by_state,
    finish_delivery,
    get_delivery,
    oldest_pending_received_at,
    requeue_failed,
    requeue_processing,
    store_deliveries,
    store_delivery,
)
from ledger.models import DeliveryState, WebhookDelivery

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def delivery(
    delivery_id: str, payload: bytes = b'{"action":"opened"}', **fields: object
) -> IncomingDelivery:
    values: dict[str, object] = {
        "delivery_id": delivery_id,
        "event": "pull_request",
        "payload": payload,
        "received_at": NOW,
        "action": "opened",
        "installation_id": 1,
        "repository_full_name": "acme/widget",
    }
    values.update(fields)
    return IncomingDelivery(**values)  # type: ignore[arg-type]


async def test_new_delivery_is_stored_with_its_raw_payload(ledger: Ledger) -> None:
    body = b'{"zen": "\xe2\x9c\x93"}'

    assert await store_delivery(ledger, delivery("d1", body)) is True

    stored = await get_delivery(ledger, "d1")
    assert stored is not None
    assert stored.payload == body
    assert stored.state == DeliveryState.PENDING
    assert stored.received_at == NOW


async def test_redelivery_is_stored_once_and_keeps_the_first_payload(ledger: Ledger) -> None:
    assert await store_delivery(ledger, delivery("d1", b"first")) is True
    assert await store_delivery(ledger, delivery("d1", b"second")) is False

    stored = await get_delivery(ledger, "d1")
    assert stored is not None and stored.payload == b"first"
    assert (await count_by_state(ledger))[DeliveryState.PENDING] == 1


async def test_batch_flags_new_old_and_in_batch_duplicates(ledger: Ledger) -> None:
    await store_delivery(ledger, delivery("old"))

    flags = await store_deliveries(
        ledger, [delivery("a"), delivery("old"), delivery("b"), delivery("a")]
    )

    assert flags == [True, False, True, False]
    assert sum((await count_by_state(ledger)).values()) == 3


async def test_batch_larger_than_one_insert_chunk_stores_everything(ledger: Ledger) -> None:
    flags = await store_deliveries(ledger, [delivery(f"d{i}") for i in range(2_500)])

    assert flags == [True] * 2_500
    assert (await count_by_state(ledger))[DeliveryState.PENDING] == 2_500


async def test_concurrent_redeliveries_of_one_id_store_one_row(ledger: Ledger) -> None:
    results = await asyncio.gather(*(store_delivery(ledger, delivery("same")) for _ in range(8)))

    assert sorted(results) == [False] * 7 + [True]
    assert sum((await count_by_state(ledger)).values()) == 1


async def test_empty_batch_stores_nothing(ledger: Ledger) -> None:
    assert await store_deliveries(ledger, []) == []


async def test_naive_received_at_is_refused_and_nothing_stored(ledger: Ledger) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await store_delivery(ledger, delivery("naive", received_at=datetime(2026, 1, 1)))

    assert await get_delivery(ledger, "naive") is None


async def test_claim_takes_oldest_pending_first_and_counts_the_attempt(ledger: Ledger) -> None:
    await store_deliveries(ledger, [delivery(f"d{i}") for i in range(5)])

    claimed = await claim_deliveries(ledger, "w1", NOW, limit=3)

    assert [c.delivery_id for c in claimed] == ["d0", "d1", "d2"]
    assert all(c.attempts == 1 for c in claimed)
    counts = await count_by_state(ledger)
    assert counts[DeliveryState.PROCESSING] == 3
    assert counts[DeliveryState.PENDING] == 2
    assert (await claim_deliveries(ledger, "w2", NOW, limit=10))[0].delivery_id == "d3"


async def test_claim_on_empty_inbox_returns_nothing(ledger: Ledger) -> None:
    assert await claim_deliveries(ledger, "w1", NOW) == []


async def test_concurrent_claimers_never_share_a_delivery(
    database_url: str, ledger: Ledger
) -> None:
    await store_deliveries(ledger, [delivery(f"d{i:03d}") for i in range(300)])
    workers = [Ledger(database_url) for _ in range(4)]

    async def drain(db: Ledger, name: str) -> list[str]:
        mine: list[str] = []
        while batch := await claim_deliveries(db, name, NOW, limit=7):
            mine.extend(c.delivery_id for c in batch)
        return mine

    try:
        claimed = await asyncio.gather(*(drain(db, f"w{i}") for i, db in enumerate(workers)))
    finally:
        for db in workers:
            await db.close()

    everything = [delivery_id for batch in claimed for delivery_id in batch]
    assert len(everything) == len(set(everything)) == 300


@pytest.mark.postgres
async def test_postgres_claim_skips_rows_locked_by_another_claimer(
    postgres_url: str,
) -> None:
    from ledger.migrate import upgrade_async

    await upgrade_async(postgres_url)
    db = Ledger(postgres_url)
    try:
        await store_deliveries(db, [delivery(f"d{i}") for i in range(4)])
        async with db.engine.connect() as holder:
            # Another claimer's open transaction holds the two oldest rows.
            table = WebhookDelivery.__table__  # type: ignore[attr-defined]
            locked = await holder.execute(
                select(table.c.delivery_id).order_by(table.c.id).limit(2).with_for_update()
            )
            assert list(locked.scalars()) == ["d0", "d1"]
            # Without SKIP LOCKED this would wait for the holder forever.
            claimed = await asyncio.wait_for(claim_deliveries(db, "w2", NOW, limit=10), 30)
            await holder.execute(text("ROLLBACK"))
    finally:
        await db.close()

    assert [c.delivery_id for c in claimed] == ["d2", "d3"]


async def test_finish_records_outcome_once(ledger: Ledger) -> None:
    await store_deliveries(ledger, [delivery("ok"), delivery("skip"), delivery("bad")])
    claimed = {c.delivery_id: c for c in await claim_deliveries(ledger, "w1", NOW)}
    ok, skip, bad = claimed["ok"], claimed["skip"], claimed["bad"]
    later = NOW + timedelta(seconds=2)

    assert await finish_delivery(ledger, ok.id, DeliveryState.PROCESSED, later) is True
    assert await finish_delivery(ledger, skip.id, DeliveryState.IGNORED, later, "no handler")
    assert await finish_delivery(ledger, bad.id, DeliveryState.FAILED, later, "KeyError: 'pr'")
    assert await finish_delivery(ledger, ok.id, DeliveryState.FAILED, later) is False

    stored = await get_delivery(ledger, "bad")
    assert stored is not None
    assert stored.state == DeliveryState.FAILED
    assert stored.error == "KeyError: 'pr'"
    assert stored.processed_at == later
    counts = await count_by_state(ledger)
    assert (counts[DeliveryState.PROCESSED], counts[DeliveryState.IGNORED]) == (1, 1)


async def test_finish_by_another_worker_is_refused(ledger: Ledger) -> None:
    await store_delivery(ledger, delivery("d1"))
    (claimed,) = await claim_deliveries(ledger, "w1", NOW)

    assert not await finish_delivery(ledger, claimed.id, DeliveryState.PROCESSED, NOW, worker="w2")
    assert await finish_delivery(ledger, claimed.id, DeliveryState.PROCESSED, NOW, worker="w1")


async def test_finish_to_a_non_final_state_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="processed, ignored or failed"):
        await finish_delivery(ledger, 1, DeliveryState.PENDING, NOW)


async def test_requeue_at_start_returns_half_done_deliveries(ledger: Ledger) -> None:
    await store_deliveries(ledger, [delivery("a"), delivery("b"), delivery("c")])
    await claim_deliveries(ledger, "dead", NOW, limit=2)
    await claim_deliveries(ledger, "alive", NOW + timedelta(minutes=5), limit=1)

    assert await requeue_processing(ledger, claimed_before=NOW + timedelta(minutes=1)) == 2

    again = await claim_deliveries(ledger, "new", NOW, limit=10)
    assert [(c.delivery_id, c.attempts) for c in again] == [("a", 2), ("b", 2)]
    assert await requeue_processing(ledger, worker="alive") == 1


async def test_requeue_failed_respects_max_attempts(ledger: Ledger) -> None:
    await store_deliveries(ledger, [delivery("a")])
    (first,) = await claim_deliveries(ledger, "w", NOW)
    await finish_delivery(ledger, first.id, DeliveryState.FAILED, NOW, "boom")

    assert await requeue_failed(ledger, max_attempts=2) == 1
    (second,) = await claim_deliveries(ledger, "w", NOW)
    await finish_delivery(ledger, second.id, DeliveryState.FAILED, NOW, "boom")
    assert await requeue_failed(ledger, max_attempts=2) == 0


async def test_backlog_age_is_the_oldest_pending_arrival(ledger: Ledger) -> None:
    assert await oldest_pending_received_at(ledger) is None
    await store_deliveries(
        ledger,
        [
            delivery("new", received_at=NOW),
            delivery("old", received_at=NOW - timedelta(minutes=7)),
        ],
    )
    await claim_deliveries(ledger, "w", NOW, limit=1)  # takes "new" (stored first)

    assert await oldest_pending_received_at(ledger) == NOW - timedelta(minutes=7)


async def test_counts_list_every_state(ledger: Ledger) -> None:
    assert await count_by_state(ledger) == dict.fromkeys(DeliveryState, 0)


async def test_concurrent_batches_sharing_ids_in_opposite_orders_both_succeed(
    database_url: str, ledger: Ledger
) -> None:
    other = Ledger(database_url)
    try:
        for round_number in range(10):
            ids = [f"r{round_number}-{i:02d}" for i in range(40)]
            forward = [delivery(i) for i in ids]
            backward = [delivery(i) for i in reversed(ids)]
            first, second = await asyncio.gather(
                store_deliveries(ledger, forward), store_deliveries(other, backward)
            )
            # Each id is new for exactly one of the two batches.
            assert [a != b for a, b in zip(first, reversed(second), strict=True)] == [True] * 40
    finally:
        await other.close()
    assert (await count_by_state(ledger))[DeliveryState.PENDING] == 400
