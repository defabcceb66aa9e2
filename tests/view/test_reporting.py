"""ledger/reporting.py: the report's figures, counted by hand from tests/view/fill.py."""

from __future__ import annotations

import pytest

from ledger.db import Ledger
from ledger.reporting import (
    daily_spend,
    escalation_jobs,
    gather_report,
    metrics_data,
    pull_history,
    repository_pulls,
    tiers_over_time,
)
from tests.view.fill import DAY, NOW


async def test_empty_ledger_gives_an_empty_report(ledger: Ledger) -> None:
    report = await gather_report(ledger, NOW)
    assert report.repositories == ()
    assert report.open_total == 0
    assert report.jobs_by_state == {}
    assert report.spend_today.dollars == 0.0 and report.spend_week.tokens == 0
    assert report.candidates.proposed == 0
    assert report.stop_loss == () and report.api_usage == ()


async def test_queue_by_tier_per_repository_counts_open_prs_only(filled: Ledger) -> None:
    report = await gather_report(filled, NOW)
    queues = {q.repository: q for q in report.repositories}
    assert list(queues) == ["acme/gadgets", "acme/widgets"]
    assert queues["acme/widgets"].tiers == {"signal": 2, "closing": 1, "zombie": 1, "active": 1}
    assert queues["acme/widgets"].open_total == 5
    assert queues["acme/gadgets"].tiers == {"active": 1, "exempt": 1}
    assert queues["acme/widgets"].mode == "act" and queues["acme/gadgets"].mode == "shadow"
    assert report.tiers_total()["signal"] == 2 and report.open_total == 7


async def test_waiting_on_maintainers_longest_first_with_days(filled: Ledger) -> None:
    report = await gather_report(filled, NOW)
    waiting = [(w.repository, w.number, round(w.days(NOW))) for w in report.waiting_on_maintainers]
    assert waiting == [("acme/gadgets", 10, 10), ("acme/widgets", 3, 4)]
    assert report.waiting_on_maintainers_total == 2


async def test_trigger_waiting_is_a_signal_pr_without_a_job_in_flight(filled: Ledger) -> None:
    report = await gather_report(filled, NOW)
    assert [(t.repository, t.number) for t in report.triggers_waiting] == [("acme/widgets", 2)]
    assert report.triggers_waiting[0].reason == "CI failing: unit-tests"
    assert report.triggers_waiting_total == 1


async def test_jobs_spend_candidates_stop_loss_and_api(filled: Ledger) -> None:
    report = await gather_report(filled, NOW)
    assert report.jobs_by_state == {"QUEUED": 1, "VERIFIED_DONE": 1, "VERIFY_FAILED": 1}
    assert (report.spend_today.dollars, report.spend_today.tokens) == (1.5, 1200)
    assert report.spend_today.reserved_dollars == 2.0
    assert (report.spend_week.dollars, report.spend_week.tokens) == (3.5, 3500)
    assert [(s.repository, s.week.dollars) for s in report.spend_by_repository] == [
        ("acme/widgets", 3.5)
    ]
    counts = report.candidates
    assert (counts.proposed, counts.posted, counts.escalated, counts.shadow) == (12, 4, 1, 1)
    assert counts.suppressed == {"budget": 3, "duplicate": 2}
    assert [(s.repository, s.number, s.rule_id) for s in report.stop_loss] == [
        ("acme/widgets", 4, "stoploss.circuit-breaker"),
        ("acme/widgets", 5, "stoploss.max-attempts"),
    ]
    (api,) = report.api_usage
    assert (api.resource, api.limit, api.remaining, api.requests_today) == (
        "graphql",
        5000,
        4200,
        5,
    )


async def test_repository_page_pull_history_and_jobs(filled: Ledger) -> None:
    queue, pulls = await repository_pulls(filled, "acme/widgets")
    assert queue is not None and queue.open_total == 5
    assert [p.number for p in pulls][:2] == [2, 1]  # signal first, newest first
    assert 6 not in [p.number for p in pulls]
    assert await repository_pulls(filled, "acme/nothing") == (None, [])
    history = await pull_history(filled, "acme/widgets", 3)
    assert history is not None
    assert len(history.candidates) == 12 and len(history.observations) == 1
    assert len(history.jobs) == 1 and len(history.actions) == 1
    assert history.spend_total.dollars == 8.5  # all time, this PR
    assert await pull_history(filled, "acme/widgets", 999) is None
    jobs = await escalation_jobs(filled)
    assert {(j.number, j.state) for j in jobs} == {
        (1, "QUEUED"),
        (3, "VERIFIED_DONE"),
        (4, "VERIFY_FAILED"),
    }
    assert next(j for j in jobs if j.number == 3).dollars_spent == 8.5
    assert [j.number for j in await escalation_jobs(filled, state="QUEUED")] == [1]


async def test_time_series(filled: Ledger) -> None:
    spend = await daily_spend(filled, NOW, days=14)
    assert len(spend) == 14 and spend[-1][1] == 1.5 and spend[-4][1] == 2.0
    assert sum(v for _, v in spend) == pytest.approx(8.5)
    series = await tiers_over_time(filled, NOW, days=7)
    assert len(series) == 7
    assert series[-1][1].get("signal") == 2  # today: widgets#1 (no history) + widgets#2
    # widgets#2 was active 3 days ago, before it turned signal yesterday.
    three_days_ago = series[-4]
    assert three_days_ago[0] < NOW - 2 * DAY
    assert three_days_ago[1].get("signal") == 1


async def test_metrics_data(filled: Ledger) -> None:
    data = await metrics_data(filled, NOW)
    assert data.deliveries[("pull_request", "processed")] == 3
    assert data.candidates[("status_comment", "posted")] == 4
    assert data.decisions[("stop_loss", "stoploss.circuit-breaker")] == 1
    assert data.jobs["QUEUED"] == 1
    assert data.open_pulls[("acme/widgets", "signal")] == 2
    assert data.spend["dollars"] == 8.5
    assert data.oldest_pending_delivery is not None


async def test_a_wait_found_at_first_sight_is_a_lower_bound(filled: Ledger) -> None:
    from sqlalchemy import update

    from ledger.models import Decision

    async with filled.transaction() as session:  # gadgets#10 was already waiting when first seen
        await session.execute(
            update(Decision)
            .where(Decision.kind == "whose_turn", Decision.rule_id == "turn.review-requested")
            .where(Decision.decided_at == NOW - 10 * DAY)
            .values(from_value=None)
        )
    report = await gather_report(filled, NOW)
    texts = {w.number: (w.at_least, w.days_text(NOW)) for w in report.waiting_on_maintainers}
    assert texts == {10: (True, "10+ days"), 3: (False, "4 days")}
