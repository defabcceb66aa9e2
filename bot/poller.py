"""The poller: runs reconciliation cycles on a schedule (APScheduler 3.11 ``AsyncIOScheduler``)
in exactly one process.

Leadership: ``ledger.leader.LeaderLock`` (a PostgreSQL advisory lock on a dedicated connection;
always granted on SQLite). A replica that is not the leader retries every ``leader_retry``
seconds and takes over when the leader's connection dies. The scheduler runs only while the lock
is held.

Each cycle: rediscover installations and repositories when due, then reconcile every watched
repository: a full sweep when the last complete one is older than ``full_interval`` (or the
repository was just added), else the cheap change check plus the dirty PRs. When the rate
budget runs low the interval stretches (``RateBudget.poll_delay_factor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.github import GitHubError
from bot.reconcile import Reconciler, RepoResult
from bot.recovery import DeliveryRecoverer, RecoveryReport
from ledger.db import Ledger
from ledger.leader import LeaderLock
from ledger.models import Repository
from ledger.watching import record_api_usage

log = logging.getLogger("prsteward.poller")

CYCLE_JOB = "reconcile-cycle"
RECOVERY_JOB = "delivery-recovery"
BACKFILL_JOB = "backfill"


def utcnow() -> datetime:
    return datetime.now(UTC)


def wants_full_sweep(
    row: Repository | None, now: datetime, full_interval: timedelta, backfill: set[str]
) -> bool:
    """A repository needs a full sweep when it was just added, never swept completely, or its
    last complete sweep is older than ``full_interval``."""
    if row is None or row.full_name in backfill or row.last_sweep_ok_at is None:
        return True
    return now - row.last_sweep_ok_at >= full_interval


class Poller:
    def __init__(
        self,
        reconciler: Reconciler,
        db: Ledger,
        *,
        interval: float = 60.0,
        full_interval: float = 3600.0,
        discover_interval: float = 600.0,
        leader_retry: float = 15.0,
        clock: Callable[[], datetime] = utcnow,
        recovery: DeliveryRecoverer | None = None,
        recovery_interval: float = 300.0,
    ) -> None:
        self.reconciler = reconciler
        # Missed-delivery recovery (issue 13): at leadership start, then every
        # ``recovery_interval`` seconds; None disables it.
        self.recovery = recovery
        self.recovery_interval = recovery_interval
        self.last_recovery: RecoveryReport | None = None
        self.backfills = 0  # backfill passes run (tests, /metrics)
        self.last_backfill: list[RepoResult] = []
        self._reconcile_lock = asyncio.Lock()  # one reconcile pass at a time (cycle, backfill)
        self.db = db
        self.interval = interval
        self.full_interval = timedelta(seconds=full_interval)
        self.discover_interval = timedelta(seconds=discover_interval)
        self.leader_retry = leader_retry
        self.clock = clock
        self.leader = LeaderLock(db)
        self.scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._backfill: set[str] = set()
        self._last_discover: datetime | None = None
        self._factor = 1.0
        self._sent: dict[int, int] = {}
        self.cycles = 0
        self.last_results: list[RepoResult] = []
        self.cycle_done = asyncio.Event()
        self._cycle_task: asyncio.Task[object] | None = None  # the cycle running now, if any
        self._jobs_running: set[asyncio.Task[object]] = set()  # recovery and backfill passes
        # Called with each cycle's results (e.g. the engine evaluates the PRs that changed).
        self.after_cycle: list[Callable[[list[RepoResult]], Awaitable[object]]] = []

    @property
    def is_leader(self) -> bool:
        return self.leader.held

    async def start(self) -> None:
        self._task = asyncio.create_task(self._lead(), name="poller-leadership")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop leading: start no new cycle, let a running one finish (up to ``timeout``; then
        the scheduler's shutdown cancels it, logged as a cycle cut short), then release the
        lock."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                self.scheduler.pause()
        running = {t for t in {self._cycle_task, *self._jobs_running} if t is not None}
        running = {t for t in running if not t.done()}
        if running:
            # A redelivery request in hand or a page being recorded finishes first.
            await asyncio.wait(running, timeout=timeout)
        self._stop_scheduler()
        await self.leader.release()

    def sweep_soon(self, repositories: list[str]) -> None:
        """Repositories just added to an installation (``installation`` created,
        ``installation_repositories`` added): a full sweep of exactly those, now, in a one-off
        backfill pass (each repository still goes through the installation's rate budget).
        On a replica that does not lead, the leader's next cycle sweeps them fully (they have
        never been swept)."""
        self._backfill.update(repositories)
        if self.scheduler is not None and self.scheduler.running:
            with contextlib.suppress(Exception):
                self.scheduler.add_job(
                    self.backfill,
                    id=BACKFILL_JOB,
                    next_run_time=datetime.now(UTC),
                    replace_existing=True,
                    max_instances=1,
                    misfire_grace_time=None,
                )

    async def backfill(self) -> list[RepoResult]:
        """Full sweep of the repositories waiting for their first sweep (never raises)."""
        self._track()
        async with self._reconcile_lock:
            names = set(self._backfill)
            if not names:
                return []
            try:
                results = await self.reconciler.run_cycle(names=names, full=True)
            except Exception:
                log.exception("backfill of %s failed", ", ".join(sorted(names)))
                return []
            done = {r.repository for r in results if not r.errors}
            # Not known yet (an installation the ledger has not seen): the next cycle discovers.
            missing = names - {r.repository for r in results}
            if missing:
                self._last_discover = None
            self._backfill -= done
            self.backfills += 1
            self.last_backfill = results
            for result in results:
                log.info("backfill: %s", result.describe())
        for hook in self.after_cycle:
            try:
                await hook(results)
            except Exception:
                log.exception("after-cycle hook failed")
        return results

    async def recover_deliveries(self) -> RecoveryReport | None:
        """One missed-delivery recovery pass (the scheduled job); never raises."""
        if self.recovery is None:
            return None
        self._track()
        try:
            report = await self.recovery.recover()
        except Exception:
            log.exception("delivery recovery failed")
            return None
        self.last_recovery = report
        return report

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._jobs_running.add(task)
            task.add_done_callback(self._jobs_running.discard)

    async def _lead(self) -> None:
        while True:
            try:
                leading = await self.leader.try_acquire()
            except Exception as error:  # noqa: BLE001 - the ledger blipped; try again later
                log.warning("leader election failed: %r", error)
                leading = False
            if leading and self.scheduler is None:
                log.info("this process leads the poller")
                self._start_scheduler()
            elif not leading and self.scheduler is not None:
                log.warning("lost poller leadership; stopping the scheduler")
                self._stop_scheduler()
            await asyncio.sleep(self.leader_retry)

    def _start_scheduler(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self.cycle,
            IntervalTrigger(seconds=self.interval, timezone=UTC),
            id=CYCLE_JOB,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        if self.recovery is not None:
            scheduler.add_job(
                self.recover_deliveries,
                IntervalTrigger(seconds=self.recovery_interval, timezone=UTC),
                id=RECOVERY_JOB,
                next_run_time=datetime.now(UTC),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        if self._backfill:
            scheduler.add_job(
                self.backfill, id=BACKFILL_JOB, next_run_time=datetime.now(UTC), max_instances=1
            )
        scheduler.start()
        self.scheduler = scheduler

    def _stop_scheduler(self) -> None:
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=False)
            self.scheduler = None

    async def cycle(self) -> list[RepoResult]:
        """One reconciliation cycle (the scheduled job); never raises."""
        self._cycle_task = asyncio.current_task()
        try:
            async with self._reconcile_lock:
                return await self._cycle()
        except asyncio.CancelledError:
            # Shutting down: stop() gave the cycle its grace period, then the scheduler's
            # shutdown cancelled it. Each page is its own transaction and what was not read
            # stays due, so this is no error (the scheduler would log a traceback as one).
            log.info("reconcile cycle cut short by shutdown: the next cycle resumes")
            return []

    async def _cycle(self) -> list[RepoResult]:
        now = self.clock()
        backfill = set(self._backfill)
        try:
            discover = self._last_discover is None or now - self._last_discover >= (
                self.discover_interval
            )
            if discover:
                try:
                    await self.reconciler.discover()
                    self._last_discover = now
                except GitHubError as error:
                    log.warning("discovering installations failed: %s", error)
            results = await self.reconciler.run_cycle(
                full=lambda row: wants_full_sweep(row, now, self.full_interval, backfill)
            )
        except Exception:
            log.exception("reconcile cycle failed")
            results = []
        self._backfill -= backfill
        await self._record_usage(now)
        self.cycles += 1
        self.last_results = results
        for result in results:
            if result.read or result.errors or result.closed:
                log.info("%s", result.describe())
        for hook in self.after_cycle:
            try:
                await hook(results)
            except Exception:
                log.exception("after-cycle hook failed")
        self._adapt_interval()
        self.cycle_done.set()
        return results

    async def _record_usage(self, now: datetime) -> None:
        """One rate-limit sample per installation and resource after each cycle; ``requests``
        is what this process sent for the installation since the previous sample."""
        for client in self.reconciler.app.installations:
            sent = client.requests_sent - self._sent.get(client.installation_id, 0)
            self._sent[client.installation_id] = client.requests_sent
            for resource, bucket in (
                ("core", client.budget.rest),
                ("graphql", client.budget.graphql),
            ):
                try:
                    await record_api_usage(
                        self.db,
                        client.installation_id,
                        resource,
                        now,
                        limit=bucket.limit,
                        remaining=bucket.remaining,
                        used=bucket.used,
                        reset_at=bucket.reset_at,
                        requests=sent if resource == "core" else 0,
                    )
                except Exception as error:  # noqa: BLE001 - a sample is not worth a cycle
                    log.debug("recording API usage failed: %r", error)

    def _adapt_interval(self) -> None:
        """Stretch the interval while any installation's budget is low."""
        factor = max(
            (c.budget.poll_delay_factor() for c in self.reconciler.app.installations),
            default=1.0,
        )
        if factor == self._factor or self.scheduler is None:
            return
        self._factor = factor
        log.info("rate budget: polling every %.0fs", self.interval * factor)
        with contextlib.suppress(Exception):
            self.scheduler.reschedule_job(
                CYCLE_JOB,
                trigger=IntervalTrigger(seconds=self.interval * factor, timezone=UTC),
            )
