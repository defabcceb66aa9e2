"""Pull requests on both backends: snapshots, observations only on change, the dirty set."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from ledger.db import Ledger
from ledger.models import ObservationSource, PullRequestStateValue
from ledger.pulls import (
    clear_dirty,
    close_unseen,
    get_pull,
    list_dirty,
    list_observations,
    list_open,
    mark_dirty,
    record_snapshot,
)
from ledger.repositories import get_repository
from tests.ledger.helpers import NOW, REPO, snapshot


async def record(
    ledger: Ledger, number: int, fingerprint: str, at: datetime = NOW, **fields: Any
) -> bool:
    return await record_snapshot(
        ledger, REPO, number, snapshot(number, **fields), fingerprint, ObservationSource.POLL, at
    )


async def test_first_snapshot_creates_repository_pr_and_one_observation(ledger: Ledger) -> None:
    assert await record(ledger, 7, "f1") is True

    pull = await get_pull(ledger, REPO, 7)
    assert pull is not None
    assert (pull.state, pull.head_sha, pull.fingerprint) == ("open", "a" * 40, "f1")
    assert pull.author_login == "dev"
    assert pull.snapshot == snapshot(7)
    assert pull.first_seen_at == NOW
    assert await get_repository(ledger, REPO) is not None
    assert len(await list_observations(ledger, REPO, 7)) == 1


async def test_unchanged_snapshot_writes_no_observation(ledger: Ledger) -> None:
    await record(ledger, 7, "f1")

    changed = await record(ledger, 7, "f1", at=NOW + timedelta(minutes=5))

    assert changed is False
    assert len(await list_observations(ledger, REPO, 7)) == 1
    pull = await get_pull(ledger, REPO, 7)
    assert pull is not None
    assert pull.last_observed_at == NOW + timedelta(minutes=5)
    assert pull.last_changed_at == NOW


async def test_changed_fingerprint_appends_observation_and_updates_current(ledger: Ledger) -> None:
    await record(ledger, 7, "f1")

    changed = await record_snapshot(
        ledger,
        REPO,
        7,
        snapshot(7, head_sha="b" * 40),
        "f2",
        ObservationSource.WEBHOOK,
        NOW + timedelta(minutes=1),
        delivery_id="d-9",
    )

    assert changed is True
    history = await list_observations(ledger, REPO, 7)
    assert [(o.fingerprint, o.source, o.delivery_id) for o in history] == [
        ("f1", "poll", None),
        ("f2", "webhook", "d-9"),
    ]
    pull = await get_pull(ledger, REPO, 7)
    assert pull is not None and pull.head_sha == "b" * 40


async def test_concurrent_identical_snapshots_write_one_observation(ledger: Ledger) -> None:
    results = await asyncio.gather(*(record(ledger, 7, "f1") for _ in range(6)))

    assert sorted(results) == [False] * 5 + [True]
    assert len(await list_observations(ledger, REPO, 7)) == 1


async def test_merged_snapshot_closes_and_reopen_clears_closed_at(ledger: Ledger) -> None:
    await record(ledger, 7, "f1")
    await record(ledger, 7, "f2", at=NOW + timedelta(hours=1), state="MERGED")

    merged = await get_pull(ledger, REPO, 7)
    assert merged is not None
    assert (merged.state, merged.closed_at) == ("merged", NOW + timedelta(hours=1))
    assert await list_open(ledger, REPO) == []

    await record(ledger, 7, "f3", at=NOW + timedelta(hours=2), state="OPEN")
    reopened = await get_pull(ledger, REPO, 7)
    assert reopened is not None and (reopened.state, reopened.closed_at) == ("open", None)


async def test_mark_dirty_creates_unknown_prs_and_lists_oldest_first(ledger: Ledger) -> None:
    await record(ledger, 7, "f1")

    assert await mark_dirty(ledger, REPO, [7], "check_run completed", NOW) == 1
    assert await mark_dirty(ledger, REPO, [9, 9], "pull_request opened", NOW + timedelta(1)) == 1
    await mark_dirty(ledger, "acme/other", [1], "push", NOW + timedelta(2))

    dirty = await list_dirty(ledger)
    assert [(d.repository, d.number, d.reason) for d in dirty] == [
        (REPO, 7, "check_run completed"),
        (REPO, 9, "pull_request opened"),
        ("acme/other", 1, "push"),
    ]
    assert [d.number for d in await list_dirty(ledger, repository="acme/other")] == [1]
    assert len(await list_dirty(ledger, limit=2)) == 2
    assert [p.number for p in await list_open(ledger, REPO)] == [7, 9]


async def test_clear_dirty_keeps_marks_newer_than_the_read(ledger: Ledger) -> None:
    await mark_dirty(ledger, REPO, [1, 2], "webhook", NOW)
    read_started = NOW + timedelta(seconds=10)
    await mark_dirty(ledger, REPO, [2], "webhook during the read", NOW + timedelta(seconds=20))

    assert await clear_dirty(ledger, REPO, [1, 2], read_started) == 1

    assert [(d.number, d.reason) for d in await list_dirty(ledger)] == [
        (2, "webhook during the read")
    ]


async def test_clear_dirty_touches_only_the_named_repository(ledger: Ledger) -> None:
    await mark_dirty(ledger, REPO, [1], "webhook", NOW)
    await mark_dirty(ledger, "acme/other", [1], "webhook", NOW)

    assert await clear_dirty(ledger, REPO, [1], NOW) == 1
    assert [d.repository for d in await list_dirty(ledger)] == ["acme/other"]


async def test_close_unseen_closes_only_prs_missing_from_a_full_sweep(ledger: Ledger) -> None:
    for number in (1, 2, 3):
        await record(ledger, number, f"f{number}")
    sweep_started = NOW + timedelta(minutes=1)
    # Opened while the sweep ran: not in its results, but must stay open.
    await mark_dirty(ledger, REPO, [4], "pull_request opened", NOW + timedelta(minutes=2))

    closed = await close_unseen(
        ledger,
        REPO,
        seen_numbers=[1, 3],
        sweep_started_at=sweep_started,
        now=NOW + timedelta(minutes=3),
    )

    assert closed == [2]
    assert [p.number for p in await list_open(ledger, REPO)] == [1, 3, 4]
    pull = await get_pull(ledger, REPO, 2)
    assert pull is not None
    assert pull.state == PullRequestStateValue.CLOSED
    assert pull.closed_at == NOW + timedelta(minutes=3)


async def test_list_open_is_per_repository_and_by_number(ledger: Ledger) -> None:
    await record(ledger, 10, "a")
    await record(ledger, 2, "b")
    await record_snapshot(ledger, "acme/other", 5, snapshot(5), "c", ObservationSource.POLL, NOW)

    assert [p.number for p in await list_open(ledger, REPO)] == [2, 10]
    assert await list_open(ledger, "acme/unknown") == []
