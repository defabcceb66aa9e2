"""Missed-delivery recovery (issue 13): ask GitHub again for the webhooks we never stored.

GitHub never redelivers a failed delivery by itself. An App can list its own deliveries
(``GET /app/hook/deliveries``, App JWT, newest first, cursor pagination through ``Link``) and ask
for one again (``POST /app/hook/deliveries/{id}/attempts``). One pass:

1. Walk the list newest first, one page (100 attempts) at a time. For each page, one ledger
   query says which GUIDs are already in the inbox and one which were already asked for.
2. Stop at the horizon: ``since`` when given; else ``margin`` (10 min) before the newest listed
   delivery that IS in the inbox and is older than every missed one seen (the anchor; times
   are GitHub's, so clocks never mix: new deliveries stored since a restart do not hide the
   outage behind them); else GitHub's retention (3 days before the newest listed delivery).
3. A GUID is missed when it is not in the inbox, its newest attempt failed (not OK, not still
   pending) and it was never asked for. Missed GUIDs are asked for oldest first (the events
   replay in their original order), ``pace_seconds`` apart, each at most once: the
   ``delivery_recovery`` row is written before the request and completed with the answer.
4. The redeliveries arrive through the normal intake (same GUID): stored, acknowledged,
   processed once; a duplicate attempt dedupes on the GUID.

The poller's leader runs it at start and every ``recovery_interval``
(``PRSTEWARD_RECOVERY_INTERVAL_SECONDS``, 5 min), ``PRSTEWARD_RECOVERY_PACE_SECONDS`` (0.1 s)
between redelivery requests; ``prsteward deliveries recover [--since ...]`` runs one pass by hand.
``python -m bench --only recovery`` measures a 500-event outage end to end (bench/recovery.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.github import GitHubApp, GitHubError, RateLimited
from ledger import inbox
from ledger import recovery as ledger_recovery
from ledger.db import Ledger

log = logging.getLogger("prsteward.recovery")

RETENTION = timedelta(days=3)  # GitHub keeps deliveries 3 days
MARGIN = timedelta(minutes=10)  # walk this far past the anchor (slow deliveries fail late)
PER_PAGE = 100
CHUNK = 25  # redeliveries recorded per ledger transaction
OK_STATUSES = frozenset({"ok"})
PENDING_STATUSES = frozenset({"pending", "queued", "in progress"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ListedDelivery:
    """One attempt as ``GET /app/hook/deliveries`` lists it."""

    id: int
    guid: str
    event: str | None
    action: str | None
    status: str
    status_code: int
    delivered_at: datetime | None
    redelivery: bool

    @classmethod
    def parse(cls, item: Mapping[str, Any]) -> ListedDelivery | None:
        delivery_id, guid = item.get("id"), item.get("guid")
        if not isinstance(delivery_id, int) or not isinstance(guid, str) or not guid:
            return None
        code = item.get("status_code")
        return cls(
            id=delivery_id,
            guid=guid,
            event=item.get("event") if isinstance(item.get("event"), str) else None,
            action=item.get("action") if isinstance(item.get("action"), str) else None,
            status=str(item.get("status") or ""),
            status_code=code if isinstance(code, int) else 0,
            delivered_at=_time(item.get("delivered_at")),
            redelivery=bool(item.get("redelivery")),
        )

    @property
    def ok(self) -> bool:
        return self.status.lower() in OK_STATUSES or 200 <= self.status_code < 300

    @property
    def pending(self) -> bool:
        return self.status.lower() in PENDING_STATUSES


@dataclass(slots=True)
class Requested:
    """One redelivery asked for."""

    github_delivery_id: int
    guid: str
    event: str | None
    delivered_at: datetime | None
    http_status: int | None
    error: str | None = None

    def describe(self) -> str:
        when = self.delivered_at.isoformat() if self.delivered_at else "?"
        answer = f"HTTP {self.http_status}" if self.http_status is not None else "no answer"
        extra = f" ({self.error})" if self.error else ""
        return f"{self.guid} {self.event or '?'} delivered {when} #{self.github_delivery_id}: {answer}{extra}"


@dataclass(slots=True)
class RecoveryReport:
    started_at: datetime
    finished_at: datetime | None = None
    horizon: datetime | None = None
    stopped_by: str = ""  # end | horizon | rate-limited | error
    pages: int = 0
    listed: int = 0  # attempts listed
    missed: int = 0  # GUIDs found missing (failed, not in the inbox)
    already_requested: int = 0  # missing but asked for before (never asked twice)
    requested: list[Requested] = field(default_factory=list)
    github_requests: int = 0
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def seconds(self) -> float | None:
        """How long the pass took (listing, ledger queries and redelivery requests)."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def describe(self) -> str:
        verb = "would ask for" if self.dry_run else "asked for"
        horizon = self.horizon.isoformat() if self.horizon else "retention"
        took = f" in {self.seconds:.2f} s" if self.seconds is not None else ""
        lines = [
            f"listed {self.listed} delivery attempts in {self.pages} pages back to {horizon} "
            f"(stopped by {self.stopped_by}); {self.missed} missed, "
            f"{self.already_requested} asked for before; {verb} {len(self.requested)} "
            f"redeliveries; {self.github_requests} GitHub requests{took}"
        ]
        lines.extend(f"  {r.describe()}" for r in self.requested)
        lines.extend(f"  error: {e}" for e in self.errors)
        return "\n".join(lines)


class DeliveryRecoverer:
    def __init__(
        self,
        app: GitHubApp,
        db: Ledger,
        *,
        pace_seconds: float = 0.1,
        margin: timedelta = MARGIN,
        max_redeliveries: int = 5000,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.db = db
        self.pace_seconds = pace_seconds
        self.margin = margin
        self.max_redeliveries = max_redeliveries
        self.clock = clock
        self._sleep = sleep
        self.last_report: RecoveryReport | None = None
        self._lock = asyncio.Lock()
        # GitHub's time of the newest delivery a complete pass listed: the next pass needs to
        # look only ``margin`` past it (in memory: after a restart the anchor rule applies).
        self._covered_until: datetime | None = None
        self._pending_cover: datetime | None = None

    async def recover(
        self, since: datetime | None = None, *, dry_run: bool = False
    ) -> RecoveryReport:
        """One pass (see the module doc); never raises for GitHub trouble (it is in the report)."""
        async with self._lock:
            report = RecoveryReport(started_at=self.clock(), dry_run=dry_run, horizon=since)
            client = self.app.app
            sent_before = client.requests_sent
            try:
                self._pending_cover = None
                missed = await self._walk(report, since)
                if not dry_run:
                    await self._redeliver(report, missed)
                    if since is None and self._pending_cover is not None:
                        self._covered_until = self._pending_cover
                else:
                    report.requested = [
                        Requested(d.id, d.guid, d.event, d.delivered_at, None) for d in missed
                    ]
            except RateLimited as error:
                report.stopped_by = "rate-limited"
                report.errors.append(str(error))
            except GitHubError as error:
                report.stopped_by = report.stopped_by or "error"
                report.errors.append(str(error))
            report.github_requests = client.requests_sent - sent_before
            report.finished_at = self.clock()
            self.last_report = report
            if report.requested or report.errors:
                log.info("delivery recovery: %s", report.describe())
            return report

    async def _walk(self, report: RecoveryReport, since: datetime | None) -> list[ListedDelivery]:
        client = self.app.app
        url: str | None = "/app/hook/deliveries"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        decided: set[str] = set()  # GUIDs whose newest attempt was seen
        missed: dict[str, ListedDelivery] = {}
        horizon = since
        retention_floor: datetime | None = None
        covered = (
            self._covered_until - self.margin
            if since is None and self._covered_until is not None
            else None
        )
        newest: datetime | None = None
        while url:
            response = await client.request("GET", url, params=params)
            report.pages += 1
            if response.status_code >= 400:
                raise GitHubError(
                    f"GET /app/hook/deliveries: HTTP {response.status_code}",
                    status=response.status_code,
                )
            body = response.json()
            items = (
                [
                    d
                    for d in (ListedDelivery.parse(i) for i in body if isinstance(i, Mapping))
                    if d is not None
                ]
                if isinstance(body, list)
                else []
            )
            report.listed += len(items)
            guids = [d.guid for d in items]
            in_inbox = await inbox.known_delivery_ids(self.db, guids)
            asked = await ledger_recovery.requested_guids(self.db, guids)
            reached_horizon = False
            for delivery in items:
                when = delivery.delivered_at
                if retention_floor is None and when is not None:
                    retention_floor = when - RETENTION
                    newest = when
                if when is not None:
                    if covered is not None and when < covered:
                        reached_horizon = True  # the previous pass saw everything older
                        break
                    if horizon is not None and when < horizon:
                        reached_horizon = True
                        break
                    if retention_floor is not None and when < retention_floor:
                        reached_horizon = True
                        break
                if delivery.guid in in_inbox:
                    if horizon is None and when is not None:
                        horizon = when - self.margin  # the anchor
                        report.horizon = horizon
                    continue
                if delivery.guid in decided:
                    continue  # an older attempt of a GUID already judged by its newest one
                decided.add(delivery.guid)
                if delivery.ok or delivery.pending:
                    continue
                if delivery.guid in asked:
                    report.already_requested += 1
                    continue
                missed[delivery.guid] = delivery
                if since is None:
                    # Missed deliveries older than the anchor (prsteward came back and new
                    # deliveries arrived before this pass): find a stored one older still.
                    horizon = None
            if reached_horizon:
                report.stopped_by = "horizon"
                break
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries its own query
            if not url:
                report.stopped_by = "end"
        report.missed = len(missed)
        if newest is not None:
            self._pending_cover = newest
        # Oldest first: the events replay in the order they happened.
        ordered = sorted(
            missed.values(),
            key=lambda d: (d.delivered_at or datetime.min.replace(tzinfo=UTC), d.id),
        )
        return ordered[: self.max_redeliveries]

    async def _redeliver(self, report: RecoveryReport, missed: list[ListedDelivery]) -> None:
        """Ask for each missed delivery, ``CHUNK`` at a time: one transaction records the chunk
        before any of it is asked for (at most once), one records GitHub's answers."""
        client = self.app.app
        first = True
        for start in range(0, len(missed), CHUNK):
            chunk = missed[start : start + CHUNK]
            recorded = await ledger_recovery.begin_requests(
                self.db,
                [
                    ledger_recovery.PlannedRequest(
                        d.id, d.guid, d.event, d.delivered_at, d.status[:200]
                    )
                    for d in chunk
                ],
                self.clock(),
            )
            answers: list[tuple[int, int | None, str | None]] = []
            try:
                for delivery in chunk:
                    request_id = recorded.get(delivery.guid)
                    if request_id is None:
                        report.already_requested += 1
                        continue
                    if not first and self.pace_seconds > 0:
                        await self._sleep(self.pace_seconds)
                    first = False
                    requested = Requested(
                        delivery.id, delivery.guid, delivery.event, delivery.delivered_at, None
                    )
                    report.requested.append(requested)
                    try:
                        response = await client.request(
                            "POST", f"/app/hook/deliveries/{delivery.id}/attempts", write=True
                        )
                    except GitHubError as error:
                        requested.error = str(error)[:200]
                        answers.append((request_id, error.status, requested.error))
                        raise
                    requested.http_status = response.status_code
                    if response.status_code >= 400:
                        requested.error = response.text[:200]
                    answers.append((request_id, response.status_code, requested.error))
            finally:
                # Recorded but not asked (stopped by an error): said so, never asked again.
                asked = {row_id for row_id, _, _ in answers}
                answers.extend(
                    (row_id, None, "not sent: the pass stopped first")
                    for row_id in recorded.values()
                    if row_id not in asked
                )
                await ledger_recovery.finish_requests(self.db, answers)
