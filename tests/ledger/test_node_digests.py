"""Node digests on both backends: stored with the snapshot they belong to, cleared by a snapshot
that did not come from a GraphQL node, and read back by ``known_nodes`` for a restarted
reconciler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from ledger.db import Ledger
from ledger.models import ObservationSource
from ledger.pulls import (
    KnownNode,
    SnapshotItem,
    close_unseen,
    get_pull,
    known_nodes,
    list_observations,
    record_snapshot,
    record_snapshots,
)
from tests.ledger.helpers import NOW, REPO, snapshot


async def poll(
    ledger: Ledger,
    items: list[SnapshotItem],
    at: datetime = NOW,
    repository: str = REPO,
) -> list[int]:
    return await record_snapshots(ledger, repository, items, ObservationSource.POLL, at)


def item(number: int, fingerprint: str, digest: str | None, **fields: Any) -> SnapshotItem:
    return SnapshotItem(number, snapshot(number, **fields), fingerprint, node_digest=digest)


@contextmanager
def statements_run(ledger: Ledger) -> Iterator[list[str]]:
    """The SQL statements the ledger runs inside the block."""
    seen: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(ledger.engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(ledger.engine.sync_engine, "before_cursor_execute", remember)


async def stored_digest(ledger: Ledger, number: int) -> str | None:
    pull = await get_pull(ledger, REPO, number)
    assert pull is not None
    return pull.node_digest


async def test_digest_written_on_insert_and_with_a_changed_snapshot(ledger: Ledger) -> None:
    assert await poll(ledger, [item(7, "f1", "d1"), item(8, "f8", None)]) == [7, 8]
    assert await stored_digest(ledger, 7) == "d1"
    assert await stored_digest(ledger, 8) is None

    changed = await poll(ledger, [item(7, "f2", "d2", title="Renamed")], NOW + timedelta(1))

    assert changed == [7]
    pull = await get_pull(ledger, REPO, 7)
    assert pull is not None
    assert (pull.fingerprint, pull.node_digest, pull.snapshot) == (
        "f2",
        "d2",
        snapshot(7, title="Renamed"),
    )


async def test_only_the_digest_changed__stored_with_that_nodes_snapshot_no_observation(
    ledger: Ledger,
) -> None:
    await poll(ledger, [item(7, "f1", "d1"), item(8, "f8", None)])

    # Only updated_at moved (not in the fingerprint), and #8 is read from a node the first time.
    later = "2026-11-23T11:30:00+00:00"
    changed = await poll(
        ledger,
        [item(7, "f1", "d2", updated_at=later), item(8, "f8", "d8")],
        NOW + timedelta(minutes=5),
    )

    assert changed == []
    pull = await get_pull(ledger, REPO, 7)
    assert pull is not None and pull.snapshot is not None
    assert (pull.node_digest, pull.fingerprint) == ("d2", "f1")
    assert pull.snapshot["updated_at"] == later  # the digest's node, not the first one
    assert pull.last_observed_at == NOW + timedelta(minutes=5)
    assert pull.last_changed_at == NOW
    assert await stored_digest(ledger, 8) == "d8"
    assert len(await list_observations(ledger, REPO, 7)) == 1


async def test_steady_state__same_digest_adds_no_statement_and_encodes_nothing(
    ledger: Ledger,
) -> None:
    numbers = range(1, 31)
    await poll(ledger, [item(n, f"f{n}", f"d{n}") for n in numbers])
    encoded: list[int] = []

    def lazy(number: int) -> Any:
        def encode() -> dict[str, Any]:
            encoded.append(number)
            return snapshot(number)

        return encode

    def steady() -> list[SnapshotItem]:
        return [SnapshotItem(n, lazy(n), f"f{n}", node_digest=f"d{n}") for n in numbers]

    with statements_run(ledger) as steady_statements:
        assert await poll(ledger, steady(), NOW + timedelta(minutes=1)) == []
    # The same page without digests: what the ledger did before digests existed.
    without = [SnapshotItem(n, lazy(n), f"f{n}") for n in numbers]
    with statements_run(ledger) as plain_statements:
        assert await poll(ledger, without, NOW + timedelta(minutes=2)) == []

    assert encoded == []
    assert len(steady_statements) == len(plain_statements)
    assert not any("node_digest=" in s.replace(" ", "") for s in steady_statements)


async def test_a_write_without_digest_that_changes_the_snapshot_clears_it(
    ledger: Ledger,
) -> None:
    await poll(ledger, [item(7, "f1", "d1"), item(8, "f8", "d8")])

    # A webhook's partial snapshot that changed the fingerprint: the digest no longer belongs.
    await record_snapshots(
        ledger,
        REPO,
        [SnapshotItem(7, snapshot(7, title="From a webhook", partial=True), "webhook-fp")],
        ObservationSource.WEBHOOK,
        NOW + timedelta(minutes=1),
        mark_open_dirty="pull_request.edited",
    )
    # One that did not change it: the stored snapshot is still the node's, so is the digest.
    await record_snapshots(
        ledger,
        REPO,
        [SnapshotItem(8, snapshot(8), "f8")],
        ObservationSource.WEBHOOK,
        NOW + timedelta(minutes=1),
        mark_open_dirty="pull_request.labeled",
    )
    # record_snapshot (one PR, no node) changing #8 clears it too.
    assert await stored_digest(ledger, 8) == "d8"
    await record_snapshot(
        ledger, REPO, 8, snapshot(8, title="x"), "f8b", ObservationSource.POLL, NOW
    )

    assert await stored_digest(ledger, 7) is None
    assert await stored_digest(ledger, 8) is None
    assert set(await known_nodes(ledger, REPO)) == set()


async def test_known_nodes__the_facts_of_every_open_pr_with_a_digest(ledger: Ledger) -> None:
    await poll(
        ledger,
        [
            item(1, "f1", "d1"),
            item(2, "f2", "d2", state="MERGED"),  # closed PRs pile up: not loaded
            item(3, "f3", None),  # not from a node
            item(4, "f4", "d4", updated_at="2026-11-20T08:15:30+00:00", mergeable="UNKNOWN"),
            item(5, "f5", "d5", mergeable="CONFLICTING"),
            item(6, "f6", "d6"),
        ],
    )
    await poll(ledger, [item(1, "other", "dx")], repository="acme/other")
    await close_unseen(ledger, REPO, [1, 2, 3, 4, 5], NOW + timedelta(hours=1), NOW)  # #6

    known = await known_nodes(ledger, REPO)

    updated = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert known == {
        1: KnownNode("d1", "f1", updated, "OPEN", "MERGEABLE"),
        4: KnownNode("d4", "f4", datetime(2026, 11, 20, 8, 15, 30, tzinfo=UTC), "OPEN", "UNKNOWN"),
        5: KnownNode("d5", "f5", updated, "OPEN", "CONFLICTING"),
    }
    assert known[4].updated_at.tzinfo is not None
    assert await known_nodes(ledger, "acme/unknown") == {}
