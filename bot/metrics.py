"""``GET /metrics`` in Prometheus text format, derived from the ledger at scrape time.

Nothing is counted in process memory: each scrape runs the GROUP BY queries of
:func:`ledger.reporting.metrics_data` and hands the rows to a one-shot custom collector, so every
replica answers the same figures and a restart loses nothing. Counters of the append-only tables
(deliveries, candidates, decisions, spend) only grow and are exposed as counters; states that
move (jobs by state, open PRs by tier, rate-limit remaining) are gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger.db import Ledger
from ledger.reporting import MetricsData, metrics_data

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# issue 12 item 8: behind when a sweep is overdue by more than 3 cadences or a delivery waits
# longer than 5 minutes.
OVERDUE_CADENCES = 3
BACKLOG_LIMIT_SECONDS = 300.0


def behind_reasons(data: MetricsData, now: datetime, full_sweep_seconds: float) -> list[str]:
    """Why prsteward is behind (empty when it is not): overdue sweeps, an old webhook backlog."""
    reasons = []
    for repository, last_ok in sorted(data.sweeps_ok.items()):
        if last_ok is None:
            continue
        age = (now - last_ok).total_seconds()
        if age > OVERDUE_CADENCES * full_sweep_seconds:
            reasons.append(f"{repository}: last good sweep {age / 60:.0f} minutes ago")
    if data.oldest_pending_delivery is not None:
        waited = (now - data.oldest_pending_delivery).total_seconds()
        if waited > BACKLOG_LIMIT_SECONDS:
            reasons.append(f"webhook deliveries waiting {waited / 60:.0f} minutes")
    return reasons


class LedgerSnapshotCollector(Collector):
    """Yields the metric families of one ``MetricsData`` read."""

    def __init__(self, data: MetricsData, now: datetime, full_sweep_seconds: float) -> None:
        self.data = data
        self.now = now
        self.full_sweep_seconds = full_sweep_seconds

    def collect(self) -> Iterator[Metric]:
        data = self.data
        deliveries = CounterMetricFamily(
            "prsteward_webhook_deliveries",
            "Webhook deliveries stored, by event and inbox state.",
            labels=["event", "outcome"],
        )
        for (event, state), count in sorted(data.deliveries.items()):
            deliveries.add_metric([event, state], count)
        yield deliveries
        candidates = CounterMetricFamily(
            "prsteward_candidates",
            "Candidate actions proposed by the policies, by kind and outcome.",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), count in sorted(data.candidates.items()):
            candidates.add_metric([kind, outcome], count)
        yield candidates
        decisions = CounterMetricFamily(
            "prsteward_decisions", "Recorded decisions, by kind and rule.", labels=["kind", "rule"]
        )
        for (kind, rule), count in sorted(data.decisions.items()):
            decisions.add_metric([kind, rule], count)
        yield decisions
        yield CounterMetricFamily(  # issue 11: each job runs out at most once, announced once
            "prsteward_budget_exhausted",
            "Escalation jobs that ran out of budget while their trigger stood.",
            value=float(data.decisions.get(("job", "oracle.budget-exhausted"), 0)),
        )
        jobs = GaugeMetricFamily(
            "prsteward_escalation_jobs", "Escalation jobs by state.", labels=["state"]
        )
        for state, count in data.jobs.items():
            jobs.add_metric([state], count)
        yield jobs
        pulls = GaugeMetricFamily(
            "prsteward_open_pull_requests",
            "Open PRs by repository and tier.",
            labels=["repository", "tier"],
        )
        for (repository, tier), count in sorted(data.open_pulls.items()):
            pulls.add_metric([repository, tier], count)
        yield pulls
        tokens = CounterMetricFamily(
            "prsteward_spend_tokens", "Agent tokens spent, all time.", labels=["direction"]
        )
        tokens.add_metric(["in"], data.spend["tokens_in"])
        tokens.add_metric(["out"], data.spend["tokens_out"])
        yield tokens
        yield CounterMetricFamily(
            "prsteward_spend_dollars", "Agent dollars spent, all time.", value=data.spend["dollars"]
        )
        yield GaugeMetricFamily(
            "prsteward_spend_reserved_dollars",
            "Dollars reserved for running jobs and not yet spent or released.",
            value=data.spend["reserved_dollars"],
        )
        remaining = GaugeMetricFamily(
            "prsteward_github_rate_limit_remaining",
            "GitHub rate-limit remaining at the newest sample.",
            labels=["installation", "resource"],
        )
        limit = GaugeMetricFamily(
            "prsteward_github_rate_limit",
            "GitHub rate limit at the newest sample.",
            labels=["installation", "resource"],
        )
        requests = GaugeMetricFamily(
            "prsteward_github_requests_today",
            "GitHub requests made today (UTC), from the rate-limit samples.",
            labels=["installation", "resource"],
        )
        for sample in data.rate_limit:
            labels = [str(sample.installation_id), sample.resource]
            if sample.remaining is not None:
                remaining.add_metric(labels, sample.remaining)
            if sample.limit is not None:
                limit.add_metric(labels, sample.limit)
            requests.add_metric(labels, sample.requests_today)
        yield remaining
        yield limit
        yield requests
        sweep = GaugeMetricFamily(
            "prsteward_last_sweep_ok_age_seconds",
            "Seconds since the last successful sweep of each repository.",
            labels=["repository"],
        )
        for repository, last_ok in sorted(data.sweeps_ok.items()):
            if last_ok is not None:
                sweep.add_metric([repository], (self.now - last_ok).total_seconds())
        yield sweep
        backlog = 0.0
        if data.oldest_pending_delivery is not None:
            backlog = max(0.0, (self.now - data.oldest_pending_delivery).total_seconds())
        yield GaugeMetricFamily(
            "prsteward_webhook_backlog_age_seconds",
            "Age of the oldest webhook delivery still waiting to be processed (0: none).",
            value=backlog,
        )
        yield GaugeMetricFamily(
            "prsteward_behind",
            "1 when a sweep is overdue by more than 3 cadences or deliveries wait over 5 minutes.",
            value=1.0 if behind_reasons(data, self.now, self.full_sweep_seconds) else 0.0,
        )


async def render_metrics(
    db: Ledger,
    now: datetime | None = None,
    full_sweep_seconds: float = 3600.0,
) -> bytes:
    """The Prometheus exposition of the ledger, read now."""
    moment = now or datetime.now(UTC)
    data = await metrics_data(db, moment)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerSnapshotCollector(data, moment, full_sweep_seconds))
    return generate_latest(registry)


Clock = Callable[[], datetime]
