"""ledger/families.py on SQLite and PostgreSQL: fingerprints once per head SHA, members with their
spend, family rows merged in place, summaries for the report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from ledger import families as ledger_families
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import EscalationJob, ObservationSource, Spend
from policies.snapshot import snapshot_to_json
from tests.factories import T0, make_snapshot


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(database_url)
    db = Ledger(database_url)
    try:
        yield db
    finally:
        await db.close()


async def seed(db: Ledger, numbers: list[int]) -> tuple[int, dict[int, int]]:
    for number in numbers:
        snapshot = make_snapshot(repository="acme/lane", number=number, head_sha=f"{number:040d}")
        await pulls.record_snapshot(
            db,
            "acme/lane",
            number,
            snapshot_to_json(snapshot),
            str(number),
            ObservationSource.POLL,
            T0,
        )
    row = await repositories.get_repository(db, "acme/lane")
    assert row is not None and row.id is not None
    ids = {}
    for number in numbers:
        pull = await pulls.get_pull(db, "acme/lane", number)
        assert pull is not None and pull.id is not None
        ids[number] = pull.id
    return row.id, ids


async def test_fingerprint_stored_once_per_head_sha(ledger: Ledger) -> None:
    repo_id, ids = await seed(ledger, [1])
    sha = f"{1:040d}"
    first = await ledger_families.save_fingerprint(
        ledger, repo_id, ids[1], sha, {"paths": ["a.py"]}, {"skeleton_hash": "x"}, T0
    )
    again = await ledger_families.save_fingerprint(
        ledger, repo_id, ids[1], sha, {"paths": ["b.py"]}, {"skeleton_hash": "y"}, T0
    )
    assert (first, again) == (True, False)
    stored = await ledger_families.get_fingerprint(ledger, repo_id, sha)
    assert stored is not None and stored.surfaces == {"paths": ["a.py"]}
    assert await ledger_families.count_fingerprints(ledger, repo_id) == 1


async def test_members_carry_latest_fingerprint_jobs_and_spend(ledger: Ledger) -> None:
    repo_id, ids = await seed(ledger, [1, 2])
    for number, sha in ((1, "old"), (1, "new"), (2, "two")):
        await ledger_families.save_fingerprint(
            ledger, repo_id, ids[number], sha, {"paths": []}, {"skeleton_hash": sha}, T0
        )
    async with ledger.transaction() as session:
        job = EscalationJob(
            repository_id=repo_id,
            pull_request_id=ids[1],
            trigger_kind="failing_ci",
            trigger_fingerprint="f",
            created_at=T0,
            updated_at=T0,
        )
        session.add(job)
        await session.flush()
        session.add(
            Spend(
                job_id=job.id,
                repository_id=repo_id,
                pull_request_id=ids[1],
                kind="spend",
                tokens_in=1000,
                tokens_out=500,
                dollars=0.5,
                at=T0 + timedelta(minutes=5),
            )
        )
    members = await ledger_families.repository_members(ledger, repo_id)
    assert [(m.pull.number, m.fingerprint.head_sha, m.jobs) for m in members] == [
        (1, "new", 1),
        (2, "two", 0),
    ]
    assert members[0].spend == [(T0 + timedelta(minutes=5), 1500, 0.5)]


async def test_family_rows_merge_details_and_summarise(ledger: Ledger) -> None:
    repo_id, _ = await seed(ledger, [1])
    common = {"state_reason": "r", "members": [1, 2]}
    first = await ledger_families.upsert_family(
        ledger, repo_id, "k", state="named", details={"continued_at": "x"}, now=T0, **common
    )
    await ledger_families.upsert_family(
        ledger,
        repo_id,
        "k",
        state="stopped",
        details={"tokens": 10, "stopped": [2]},
        now=T0,
        **common,
    )
    assert first.id is not None
    await ledger_families.set_family_details(ledger, first.id, T0, tracking_issue_number=7)
    (row,) = await ledger_families.list_families(ledger, repo_id)
    assert row.state == "stopped" and row.tracking_issue_number == 7
    assert row.details == {"continued_at": "x", "tokens": 10, "stopped": [2]}
    (summary,) = await ledger_families.family_summaries(ledger)
    assert (summary.repository, summary.tokens, summary.stopped) == ("acme/lane", 10, 1)
    await ledger_families.close_family(ledger, first.id, "issue closed", T0)
    (closed,) = await ledger_families.list_families(ledger, repo_id)
    assert (closed.state, closed.state_reason) == ("closed", "issue closed")


async def test_fingerprint_replaced_when_its_rules_changed(ledger: Ledger) -> None:
    repo_id, ids = await seed(ledger, [1])
    sha = f"{1:040d}"
    await ledger_families.save_fingerprint(
        ledger, repo_id, ids[1], sha, {"paths": ["a.py"]}, {"version": 0}, T0
    )
    replaced = await ledger_families.save_fingerprint(
        ledger, repo_id, ids[1], sha, {"paths": ["b.py"]}, {"version": 1}, T0, replace=True
    )
    stored = await ledger_families.get_fingerprint(ledger, repo_id, sha)
    assert replaced and stored is not None and stored.skeleton == {"version": 1}
    assert await ledger_families.count_fingerprints(ledger, repo_id) == 1


async def test_closing_the_tracking_issue_closes_the_family(ledger: Ledger) -> None:
    repo_id, _ = await seed(ledger, [1])
    row = await ledger_families.upsert_family(
        ledger, repo_id, "k", state="stopped", state_reason="r", members=[1], details={}, now=T0
    )
    assert row.id is not None
    await ledger_families.set_family_details(ledger, row.id, T0, tracking_issue_number=9)
    assert not await ledger_families.close_family_for_issue(ledger, "acme/lane", 8, "x", T0)
    assert await ledger_families.close_family_for_issue(ledger, "acme/lane", 9, "closed", T0)
    assert not await ledger_families.close_family_for_issue(ledger, "acme/lane", 9, "again", T0)
    (closed,) = await ledger_families.list_families(ledger, repo_id)
    assert (closed.state, closed.state_reason) == ("closed", "closed")
