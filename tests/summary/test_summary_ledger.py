"""ledger/summary.py on SQLite and PostgreSQL: the summary's state folded from its decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger import summary as ledger_summary
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import Candidate
from ledger.repositories import ensure_repository, get_repository

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


async def test_summary_state_folds_creating_created_edited_shadow_lost(database_url: str) -> None:
    await upgrade_async(database_url)
    async with Ledger(database_url) as db:
        async with db.transaction() as session:
            rid = await ensure_repository(session, db.backend, "acme/widgets", NOW)
            session.add(
                Candidate(
                    dedupe_key="k",
                    repository_id=rid,
                    kind="comment",
                    rule_id="r",
                    reason="x",
                    outcome="posted",
                    created_at=NOW,
                )
            )
        scope = "acme/widgets"
        assert await ledger_summary.summary_state(db, scope) == ledger_summary.SummaryState(scope)
        await ledger_summary.record_summary(
            db, scope, "summary.creating", "c", NOW, repository_id=rid
        )
        state = await ledger_summary.summary_state(db, scope)
        assert state.creating and state.issue_number is None
        await ledger_summary.record_summary(
            db,
            scope,
            "summary.created",
            "c",
            NOW,
            repository_id=rid,
            details={"issue_number": 7, "hash": "h1"},
            issue_number=7,
        )
        later = NOW + timedelta(hours=1)
        await ledger_summary.record_summary(
            db,
            scope,
            "summary.edited",
            "e",
            later,
            repository_id=rid,
            details={"issue_number": 7, "hash": "h2"},
        )
        state = await ledger_summary.summary_state(db, scope)
        assert (state.issue_number, state.body_hash, state.written_at, state.creating) == (
            7,
            "h2",
            later,
            False,
        )
        assert state.writes == 2
        row = await get_repository(db, scope)
        assert row is not None and row.summary_issue_number == 7
        # Another scope is separate; shadow records keep only a hash and a time.
        await ledger_summary.record_summary(
            db, "org:acme/.github", "summary.shadow", "s", later, details={"hash": "s1"}
        )
        org = await ledger_summary.summary_state(db, "org:acme/.github")
        assert (org.shadow_hash, org.shadow_at, org.issue_number) == ("s1", later, None)
        await ledger_summary.record_summary(db, scope, "summary.lost", "gone", later, details={})
        assert (await ledger_summary.summary_state(db, scope)).issue_number is None
        assert await ledger_summary.candidate_outcomes(db, (rid,)) == {"posted": 1}
        assert await ledger_summary.candidate_outcomes(db, (rid + 1000,)) == {}
