"""Ledger pieces of issue 13 and the batched writes (SQLite; PostgreSQL runs in the e2e tests):
record_snapshots per page, indexed lookups, batched finish, redelivery requests at most once,
jobs of removed repositories cancelled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger import inbox, jobs, pulls
from ledger import recovery as ledger_recovery
from ledger.db import Ledger
from ledger.inbox import Finished, IncomingDelivery
from ledger.migrate import upgrade_async
from ledger.models import DeliveryState, EscalationJob, JobState, ObservationSource
from ledger.watching import open_numbers_linking_issue, open_numbers_with_base

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REPO = "acme/widgets"


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


def item(n: int, fp: str, base: str = "main", issues: tuple[int, ...] = (), **more: Any) -> Any:
    snapshot = {
        "number": n,
        "state": "OPEN",
        "base_ref": base,
        "head_sha": f"h{n}",
        "linked_issues": [{"number": i, "state": "OPEN"} for i in issues],
        **more,
    }
    return pulls.SnapshotItem(n, snapshot, fp)


async def test_record_snapshots_one_page_only_changes_observed(db: Ledger) -> None:
    page = [item(n, f"a{n}", issues=(100,) if n % 2 else ()) for n in range(1, 201)]
    changed = await pulls.record_snapshots(db, REPO, page, ObservationSource.POLL, NOW)
    assert changed == list(range(1, 201))
    later = NOW + timedelta(minutes=1)
    again = [item(n, f"a{n}") if n != 7 else item(7, "b7", base="dev") for n in range(1, 201)]
    assert await pulls.record_snapshots(db, REPO, again, ObservationSource.POLL, later) == [7]
    assert len(await pulls.list_observations(db, REPO, 7)) == 2
    assert len(await pulls.list_observations(db, REPO, 8)) == 1
    row = await pulls.get_pull(db, REPO, 8)
    assert row is not None and row.last_observed_at == later and row.last_changed_at == NOW
    # Indexed lookups follow the latest snapshot (7 moved to dev and lost its issue link).
    assert await open_numbers_with_base(db, REPO, "dev") == [7]
    assert 7 not in await open_numbers_with_base(db, REPO, "main")
    linking = await open_numbers_linking_issue(db, REPO, 100)
    assert linking == [n for n in range(1, 201, 2) if n != 7]
    # A closed PR leaves the lookups.
    await pulls.record_snapshots(
        db, REPO, [item(9, "c9", state="CLOSED")], ObservationSource.POLL, later
    )
    assert 9 not in await open_numbers_linking_issue(db, REPO, 100)
    assert await pulls.open_numbers(db, REPO) == [n for n in range(1, 201) if n != 9]


async def test_record_snapshots_marks_open_dirty_in_the_same_transaction(db: Ledger) -> None:
    await pulls.record_snapshots(
        db,
        REPO,
        [item(1, "x"), item(2, "y", state="MERGED")],
        ObservationSource.WEBHOOK,
        NOW,
        mark_open_dirty="pull_request.edited",
    )
    assert [(d.number, d.reason) for d in await pulls.list_dirty(db)] == [
        (1, "pull_request.edited")
    ]


async def test_finish_deliveries_one_transaction_only_own_processing_rows(db: Ledger) -> None:
    await inbox.store_deliveries(
        db, [IncomingDelivery(f"d{i}", "ping", b"{}", NOW) for i in range(5)]
    )
    claimed = await inbox.claim_deliveries(db, "w1", NOW, limit=4)
    finished = [Finished(c.id, DeliveryState.PROCESSED) for c in claimed[:3]]
    finished.append(Finished(claimed[3].id, DeliveryState.FAILED, "boom"))
    assert await inbox.finish_deliveries(db, finished, NOW, worker="w2") == 0  # not w2's
    assert await inbox.finish_deliveries(db, finished, NOW, worker="w1") == 4
    counts = await inbox.count_by_state(db)
    assert counts[DeliveryState.PROCESSED] == 3 and counts[DeliveryState.FAILED] == 1
    assert counts[DeliveryState.PENDING] == 1
    assert await inbox.known_delivery_ids(db, ["d0", "d4", "zz"]) == {"d0", "d4"}
    assert await inbox.count_deliveries(db) == 5


async def test_redelivery_requested_at_most_once_per_guid(db: Ledger) -> None:
    first = await ledger_recovery.begin_request(db, 11, "guid-a", NOW, event="push")
    assert first is not None
    assert await ledger_recovery.begin_request(db, 12, "guid-a", NOW) is None  # same GUID
    assert await ledger_recovery.begin_request(db, 11, "guid-b", NOW) is None  # same attempt
    await ledger_recovery.finish_request(db, first, 202)
    assert await ledger_recovery.requested_guids(db, ["guid-a", "guid-c"]) == {"guid-a"}
    rows = await ledger_recovery.list_requests(db)
    assert [(r.guid, r.http_status) for r in rows] == [("guid-a", 202)]


async def test_jobs_of_removed_repositories_cancelled_with_reason(db: Ledger) -> None:
    await pulls.record_snapshots(db, REPO, [item(1, "x")], ObservationSource.POLL, NOW)
    await pulls.record_snapshots(db, "acme/other", [item(1, "x")], ObservationSource.POLL, NOW)
    ids = {}
    for name, state in ((REPO, JobState.QUEUED), ("acme/other", JobState.QUEUED)):
        row = await pulls.get_pull(db, name, 1)
        assert row is not None and row.id is not None
        async with db.transaction() as session:
            job = EscalationJob(
                repository_id=row.repository_id,
                pull_request_id=row.id,
                trigger_kind="failing_ci",
                trigger_fingerprint="fp",
                state=state.value,
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(job)
            await session.flush()
            ids[name] = job.id
    cancelled = await ledger_recovery.cancel_jobs_of_repositories(
        db, [REPO], "the repository was removed from the installation", NOW
    )
    assert cancelled == [ids[REPO]]
    gone = await jobs.get_job(db, ids[REPO])
    kept = await jobs.get_job(db, ids["acme/other"])
    assert gone is not None and gone.state == JobState.CANCELLED.value
    assert gone.state_reason == "the repository was removed from the installation"
    assert kept is not None and kept.state == JobState.QUEUED.value
