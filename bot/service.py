"""Wiring for ``prsteward serve`` and ``prsteward reconcile``: settings in, running parts out.

Kept out of ``bot/cli.py`` so tests can start the same thing in process::

    service = await Service.open(settings)       # runs migrations, opens the ledger
    async with service.server.running(host, port) as url: ...
    results = await service.reconcile_once(repo="acme/widgets")
    await service.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.commands import desk_for_app
from bot.dashboard import Dashboard
from bot.engine import Engine, engine_for_app
from bot.github import GitHubApp, GitHubError, app_from_settings
from bot.poller import Poller, wants_full_sweep
from bot.reconcile import Reconciler, RepoResult, RepositoryFilter
from bot.recovery import DeliveryRecoverer
from bot.selfcheck import SelfCheck
from bot.server import Background, Server
from bot.settings import Settings
from ledger.db import Ledger
from ledger.migrate import upgrade_async

log = logging.getLogger("prsteward.service")

INSECURE_WARNING = (
    "prsteward: WARNING: PRSTEWARD_INSECURE_NO_WEBHOOK_SECRET=1: webhook signatures are NOT "
    "checked; anyone who can reach /webhooks can feed this process. Never in production."
)


class ServiceConfigError(Exception):
    """The settings do not allow starting (message says which variable to set)."""


def webhook_secret_of(settings: Settings) -> str | None:
    """The secret, or None when running insecurely on purpose; refuses otherwise."""
    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value()
    if settings.insecure_no_webhook_secret:
        return None
    raise ServiceConfigError(
        "prsteward: refusing to start without PRSTEWARD_WEBHOOK_SECRET "
        "(set PRSTEWARD_INSECURE_NO_WEBHOOK_SECRET=1 to accept unsigned webhooks, for local use only)"
    )


@dataclass
class Service:
    settings: Settings
    db: Ledger
    app: GitHubApp | None
    reconciler: Reconciler | None
    poller: Poller | None
    repository_filter: RepositoryFilter
    engine: Engine | None = None  # decides and acts after each reconcile cycle

    @classmethod
    async def open(cls, settings: Settings, *, need_app: bool = False) -> Service:
        """Migrate and open the ledger; build the App client when credentials are set."""
        try:
            has_app = settings.app_id is not None and bool(settings.private_key_pem())
        except OSError as error:
            raise ServiceConfigError(
                f"prsteward: bad setting PRSTEWARD_PRIVATE_KEY_PATH: cannot read "
                f"{settings.private_key_path}: {error.strerror or error}"
            ) from None
        if need_app and not has_app:
            raise ServiceConfigError(
                "prsteward: PRSTEWARD_APP_ID and PRSTEWARD_PRIVATE_KEY_PATH "
                "(or PRSTEWARD_PRIVATE_KEY) are needed to talk to GitHub"
            )
        app: GitHubApp | None = None
        if has_app:
            try:
                app = app_from_settings(settings)
            except GitHubError as error:
                raise ServiceConfigError(f"prsteward: {error}") from None
        await upgrade_async(settings.database_url)
        db = Ledger(settings.database_url)
        repository_filter = RepositoryFilter.from_text(
            settings.repository_allowlist, settings.repository_ignorelist
        )
        reconciler: Reconciler | None = None
        poller: Poller | None = None
        engine: Engine | None = None
        if app is not None:
            reconciler = Reconciler(app, db, repository_allowed=repository_filter)
            poller = Poller(
                reconciler,
                db,
                interval=settings.poll_interval_seconds,
                full_interval=settings.full_sweep_interval_seconds,
                recovery_interval=settings.recovery_interval_seconds,
            )
            # Missed-delivery recovery on the poller leader (issue 13, bot/recovery.py).
            poller.recovery = DeliveryRecoverer(
                app, db, pace_seconds=settings.recovery_pace_seconds
            )
            engine = engine_for_app(app, db)
            engine.commands = desk_for_app(  # /prsteward commands (issue 12)
                app, db, pacer=engine.executor.pacer if engine.executor else None, poller=poller
            )
            poller.after_cycle.append(engine.after_reconcile)
            # The optional summary issue (issue 7 item 2), after the engine has acted.
            from bot.summary import SummaryPoster

            summary = SummaryPoster(
                db,
                client_for=app.installation,
                pacer=engine.executor.pacer if engine.executor else None,
                cadence_seconds=settings.full_sweep_interval_seconds,
            )
            poller.after_cycle.append(summary.after_cycle)
        return cls(settings, db, app, reconciler, poller, repository_filter, engine)

    def build_server(self) -> Server:
        background: list[Background] = [self.poller] if self.poller is not None else []
        server = Server(
            self.db,
            webhook_secret=webhook_secret_of(self.settings),
            repository_allowed=self.repository_filter,
            on_repositories_added=self.poller.sweep_soon if self.poller is not None else None,
            typed_parse=self.settings.typed_webhook_parse,
            workers=self.settings.webhook_workers,
            background=background,
        )
        server.health = SelfCheck(  # /readyz fails while prsteward is behind (issue 12)
            self.db, cadence_seconds=self.settings.full_sweep_interval_seconds
        ).readiness
        server.mounts.append(self.build_dashboard().mount)  # GET /, /repos/..., /jobs, /metrics
        from bot.jobs_api import attach_escalations

        attach_escalations(self, server)  # /api/jobs/* and the escalation worker
        return server

    def build_dashboard(self) -> Dashboard:
        """The read-only dashboard and /metrics (bot/dashboard.py), on ``settings.host``."""
        token = self.settings.dashboard_token
        return Dashboard(
            self.db,
            host=self.settings.host,
            token=token.get_secret_value() if token is not None else None,
            full_sweep_seconds=self.settings.full_sweep_interval_seconds,
        )

    async def reconcile_once(self, repo: str | None = None, full: bool = False) -> list[RepoResult]:
        if self.reconciler is None:
            raise ServiceConfigError("prsteward: no GitHub App credentials")
        await self.reconciler.discover()
        now = datetime.now(UTC)
        interval = timedelta(seconds=self.settings.full_sweep_interval_seconds)
        results = await self.reconciler.run_cycle(
            only=repo,
            full=True if full else (lambda row: wants_full_sweep(row, now, interval, set())),
        )
        if self.engine is not None:
            await self.engine.after_reconcile(results)
        return results

    async def close(self) -> None:
        await self.db.close()


async def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT: stop accepting, finish in-flight work, release the leader lock."""
    secret = webhook_secret_of(settings)  # refuse before touching anything
    if secret is None:
        print(INSECURE_WARNING, file=sys.stderr)  # noqa: T201 - said at every start, on purpose
        log.warning(INSECURE_WARNING)
    service = await Service.open(settings)
    tune_garbage_collection()
    if service.poller is None:
        log.warning("no GitHub App credentials: serving webhooks only, no polling")
    server = service.build_server()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with server.running(settings.host, settings.port) as url:
            log.info("prsteward serving on %s (webhooks at %s/webhooks)", url, url)
            print(f"prsteward: serving on {url}", file=sys.stderr, flush=True)  # noqa: T201
            await stop.wait()
            log.info("stopping")
            # At once: /readyz fails and new deliveries get 503 (GitHub marks them failed; the
            # recovery pass after restart asks for them again). In-flight requests finish their
            # store and acknowledgement while the server shuts down (issue 13).
            server.stopping = True
            server.intake.accepting = False
            watchdog = loop.call_later(STOP_DEADLINE_SECONDS, _stop_overdue)
        watchdog.cancel()
    finally:
        await service.close()


def tune_garbage_collection() -> None:
    """For a long-running process, once its start-up is done: what start-up loaded (modules,
    settings, the ORM's tables) lives as long as the process, so ``gc.freeze`` takes it out of
    every later collection; and the youngest generation is collected every 20,000 allocations
    rather than 700. A sweep decodes GraphQL answers of ~5,000 objects per page and builds a
    snapshot per PR; at 700 that set off collections over and over, ~6% of a sweep's CPU.
    Nothing here leaks: the generations are still collected, only less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


STOP_DEADLINE_SECONDS = 9.0  # SIGTERM -> exit within 10 s (issue 13)


def _stop_overdue() -> None:
    """Graceful stop took too long: say what was still running, then exit. Safe: every
    acknowledged delivery was committed before its acknowledgement, a PostgreSQL leader lock
    dies with its connection, and job leases expire by themselves."""
    import os

    for task in asyncio.all_tasks():
        if not task.done():
            frames = task.get_stack()[-4:]
            where = "; ".join(f"{f.f_code.co_filename}:{f.f_lineno}" for f in frames)
            log.error("still running at the stop deadline: %s at %s", task.get_name(), where)
    log.error("stop overdue after %.0f s: exiting now", STOP_DEADLINE_SECONDS)
    logging.shutdown()
    os._exit(0)
