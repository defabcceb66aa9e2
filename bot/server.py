"""The HTTP server: ``POST /webhooks``, ``GET /healthz``, ``GET /readyz``.

In-process use (tests, bench)::

    server = Server(db, webhook_secret="s", typed_parse=False)
    async with server.running(host="127.0.0.1", port=0) as url:
        ...  # POST f"{url}/webhooks"

``build_app()`` gives the bare aiohttp application when you run it yourself; the intake, the
inbox workers and (optionally) the poller start and stop with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from aiohttp import web

from bot.apply import Applier
from bot.handlers import Router, default_router
from bot.webhooks import MAX_BODY_BYTES, Intake, Processor
from ledger.db import Ledger
from ledger.watching import ping

log = logging.getLogger("prsteward.server")


class Background(Protocol):
    """Something that runs next to the server (the poller)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Server:
    def __init__(
        self,
        db: Ledger,
        *,
        webhook_secret: str | None,
        router: Router | None = None,
        applier: Applier | None = None,
        repository_allowed: Callable[[str], bool] | None = None,
        on_repositories_added: Callable[[list[str]], None] | None = None,
        typed_parse: bool = False,
        workers: int = 2,
        writers: int | None = None,
        background: list[Background] | None = None,
        idle_poll_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.router = router or default_router()
        self.applier = applier or Applier(
            db,
            repository_allowed=repository_allowed or (lambda _name: True),
            on_repositories_added=on_repositories_added,
        )
        single_process = db.backend == "sqlite"
        self.single_process = single_process
        self.processor = Processor(
            db,
            self.router,
            self.applier,
            workers=workers,
            typed_parse=typed_parse,
            idle_poll_seconds=idle_poll_seconds,
        )
        self.intake: Intake = Intake(
            db,
            webhook_secret,
            writers=writers or (1 if single_process else 2),
            on_stored=self.processor.wake,
        )
        self.processor.give_way = self.intake.quiet
        db.defer_checkpoint = self.intake.busy_recently
        self.background = background or []
        self._background_after_bind = False
        self.stopping = False
        # Extra routes on the same app (the dashboard and /metrics): each is called with the app.
        self.mounts: list[Callable[[web.Application], None]] = []
        # Self-health (issue 12 item 8, bot/selfcheck.py): reasons to fail /readyz, and figures.
        self.health: Callable[[], Awaitable[tuple[list[str], dict[str, Any]]]] | None = None

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES + 1)
        app.router.add_post("/webhooks", self.intake.handle)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        for mount in self.mounts:
            mount(app)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        await self.intake.start()
        # The workers start in the background: the intake stores while the parser warms up.
        self._processor_start = asyncio.create_task(
            self.processor.start(requeue_all=self.single_process)
        )
        if not self._background_after_bind:
            await self._start_background()

    async def _start_background(self) -> None:
        for item in self.background:
            await item.start()

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.stopping = True
        await self.intake.stop()
        for item in reversed(self.background):
            await item.stop()
        if not self._processor_start.done():
            self._processor_start.cancel()
        # Await it while the ledger is still open: a start cancelled inside a ledger call
        # cleans its connection up on the way out, and left to the loop's close it can hang.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._processor_start
        await self.processor.stop()

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        problems: list[str] = []
        if self.stopping or not self.intake.accepting:
            problems.append("stopping")
        if not self.processor.ready.is_set():
            problems.append("workers starting")
        try:
            await asyncio.wait_for(ping(self.db), 2)
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            problems.append(f"ledger: {error.__class__.__name__}")
        body: dict[str, Any] = {}
        if self.health is not None and not problems:
            try:
                behind, body["health"] = await asyncio.wait_for(self.health(), 5)
                problems += behind
            except Exception as error:  # noqa: BLE001 - an unreadable health is not ready
                problems.append(f"health: {error.__class__.__name__}")
        status = 503 if problems else 200
        return web.json_response(
            {"ready": not problems, "problems": problems, **body}, status=status
        )

    @asynccontextmanager
    async def running(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on ``host:port`` (0 = any free port); yields the base URL."""
        # The poller starts only once the port is bound: its first recovery pass asks GitHub to
        # redeliver what was missed, and those redeliveries must find someone listening.
        self._background_after_bind = True
        runner = web.AppRunner(self.build_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
            await self._start_background()
        except BaseException:
            await runner.cleanup()
            raise
        server: Any = site._server
        sockets: Any = server.sockets if server is not None else []
        bound = sockets[0].getsockname()[1] if sockets else port
        try:
            yield f"http://{host}:{bound}"
        finally:
            await runner.cleanup()
