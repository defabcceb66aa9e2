"""ledger/budgets.py and ledger/boundaries.py on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger import boundaries as ledger_boundaries
from ledger import budgets as ledger_budgets
from ledger import candidates as ledger_candidates
from ledger import jobs as job_store
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import JobState
from ledger.repositories import ensure_repository, get_repository
from tests.spend.helpers import seed_job

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


async def test_spend_rows_exhausted_total_and_watch_only(database_url: str) -> None:
    await upgrade_async(database_url)
    async with Ledger(database_url) as db:
        await seed_job(
            db,
            1,
            kind="failing_ci",
            size="S",
            state=JobState.VERIFIED_DONE,
            dollars=0.4,
            tokens=40_000,
            now=NOW,
        )
        await seed_job(
            db,
            2,
            kind="conflict",
            size="M",
            state=JobState.BUDGET_EXHAUSTED,
            dollars=3.0,
            tokens=300_000,
            now=NOW,
            flags=["budget-exhausted"],
        )
        rows = await ledger_budgets.job_spend_rows(db, "acme/widgets")
        assert [(r.trigger_kind, r.size_class, r.state) for r in rows] == [
            ("failing_ci", "S", "VERIFIED_DONE"),
            ("conflict", "M", "BUDGET_EXHAUSTED"),
        ]
        assert rows[0].spent_dollars == 0.4 and rows[0].spent_tokens == 40_000
        assert rows[1].flags == ("budget-exhausted",) and rows[1].budget_dollars == 3.0
        assert await ledger_budgets.job_spend_rows(db, "acme/other") == []
        assert await ledger_budgets.exhausted_total(db) == 1
        assert await ledger_budgets.last_maintainer_command(db, "acme/widgets") is None

        assert await ledger_budgets.record_watch_only(
            db, "acme/widgets", True, "low-return.demoted", "why", NOW
        )
        row = await get_repository(db, "acme/widgets")
        assert row is not None and row.watch_only and row.watch_only_reason == "why"
        assert await ledger_budgets.record_watch_only(
            db, "acme/widgets", False, "low-return.restored", "back", NOW
        )
        row = await get_repository(db, "acme/widgets")
        assert row is not None and not row.watch_only
        assert not await ledger_budgets.record_watch_only(db, "acme/nope", True, "r", "x", NOW)
        assert len(await job_store.list_jobs(db)) == 2


async def test_boundaries_listed_reported_once_counted_and_lifted(database_url: str) -> None:
    await upgrade_async(database_url)
    async with Ledger(database_url) as db:
        async with db.transaction() as session:
            widgets = await ensure_repository(session, db.backend, "acme/widgets", NOW)
            gadgets = await ensure_repository(session, db.backend, "acme/gadgets", NOW)
        first = await ledger_candidates.open_boundary(
            db,
            7,
            widgets,
            "comment",
            http_status=403,
            message="Resource not accessible by integration",
            accepted_permissions="issues=write",
            now=NOW,
        )
        again = await ledger_candidates.open_boundary(
            db,
            7,
            widgets,
            "comment",
            http_status=403,
            message="again",
            accepted_permissions=None,
            now=NOW,
        )
        assert again == first  # one boundary, however often GitHub says no
        await ledger_candidates.open_boundary(
            db,
            7,
            gadgets,
            "label",
            http_status=422,
            message="archived",
            accepted_permissions=None,
            now=NOW,
        )
        await ledger_boundaries.count_suppressed(db, first)
        rows = await ledger_boundaries.list_boundaries(db)
        assert [(r.repository, r.boundary.action_kind) for r in rows] == [
            ("acme/widgets", "comment"),
            ("acme/gadgets", "label"),
        ]
        assert rows[0].boundary.suppressed_count == 1
        assert len(await ledger_boundaries.unreported(db)) == 2
        assert await ledger_boundaries.mark_reported(db, first, NOW)
        assert not await ledger_boundaries.mark_reported(db, first, NOW)
        assert [r.boundary.id for r in await ledger_boundaries.unreported(db)] != [first]

        later = NOW + timedelta(hours=1)
        assert await ledger_boundaries.lift(db, "x", later, repositories=["acme/none"]) == 0
        assert await ledger_boundaries.lift(db, "x", later, kind="label") == 1
        assert (
            await ledger_boundaries.lift(
                db, "new permissions", later, installation_id=7, repositories=["acme/widgets"]
            )
            == 1
        )
        assert await ledger_boundaries.list_boundaries(db) == []
        lifted = await ledger_boundaries.list_boundaries(
            db, standing=False, repository="acme/widgets"
        )
        assert lifted[0].boundary.lifted_reason == "new permissions"


def test_a_grant_in_one_unit_gets_the_other_at_the_jobs_rate() -> None:
    from bot.budgets import grant_amounts

    assert grant_amounts(50_000, None, 300_000, 3.0) == (50_000, 0.5)  # /prsteward budget +50k
    assert grant_amounts(None, 1.5, 300_000, 3.0) == (150_000, 1.5)  # /prsteward budget +$1.5
    assert grant_amounts(10_000, 0.2, 300_000, 3.0) == (10_000, 0.2)  # both given: as given
