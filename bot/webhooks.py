"""Durable webhook intake and the workers that drain the inbox.

``POST /webhooks``, in this order:
1. body larger than 25 MB -> 413 (Content-Length checked first, then the bytes read);
2. ``X-Hub-Signature-256`` checked in constant time -> 401 and a security log line without the
   payload; nothing stored;
3. missing ``X-GitHub-Event`` / ``X-GitHub-Delivery``, or a body that is not a JSON object
   -> 400; nothing stored;
4. the raw delivery is stored in the ledger inbox keyed by ``X-GitHub-Delivery`` (group commit:
   concurrent deliveries share one transaction) and only then acknowledged: 202 when new,
   200 for a redelivery (not processed twice). Storage down -> 503 (GitHub shows it failed).

Workers claim stored deliveries after the acknowledgement, parse them (typed model when it fits,
the raw dict always), run the router's handlers and apply their effects. A crash between store
and process loses nothing: at start, deliveries left ``processing`` are put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic_core
from aiohttp import web
from githubkit import webhooks as gk_webhooks

from bot.apply import Applier
from bot.handlers import Event, Router
from ledger import inbox
from ledger.db import Ledger
from ledger.inbox import ClaimedDelivery, IncomingDelivery
from ledger.models import DeliveryState

log = logging.getLogger("prsteward.webhooks")
security_log = logging.getLogger("prsteward.security")

MAX_BODY_BYTES = 25 * 1024 * 1024
MAX_FAILED_ATTEMPTS = 5
STALE_CLAIM = timedelta(minutes=5)


def utcnow() -> datetime:
    return datetime.now(UTC)


class BadDelivery(ValueError):
    """A delivery that can never be processed (not JSON, not an object)."""


# --- pure pieces ------------------------------------------------------------------------------


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of ``X-Hub-Signature-256`` (``sha256=<hex>``)."""
    if not header or not header.startswith("sha256="):
        return False
    try:
        return bool(gk_webhooks.verify(secret, body, header))
    except (ValueError, TypeError):
        return False


def decode_payload(body: bytes) -> dict[str, Any]:
    """The JSON object of a delivery, or :class:`BadDelivery` saying why not."""
    try:
        # pydantic-core's parser (already a dependency) takes half the time of the stdlib's on
        # a 30 KB payload; what it refuses, the stdlib decides (a BOM, a lone surrogate).
        payload = pydantic_core.from_json(body)
    except ValueError:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError) as error:
            raise BadDelivery(f"body is not JSON: {error.__class__.__name__}") from None
    if not isinstance(payload, dict):
        raise BadDelivery("body is JSON but not an object")
    return payload


def _summary(payload: dict[str, Any]) -> tuple[str | None, int | None, str | None]:
    action = payload.get("action")
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    repo = payload.get("repository")
    full_name = repo.get("full_name") if isinstance(repo, dict) else None
    return (
        action if isinstance(action, str) else None,
        installation_id if isinstance(installation_id, int) else None,
        full_name if isinstance(full_name, str) else None,
    )


def parse_event(
    name: str, delivery_id: str, body: bytes, *, typed_events: frozenset[str] = frozenset()
) -> Event:
    """The raw dict always; githubkit's typed model too when ``name`` is in ``typed_events``
    and the model accepts the payload. A typed-model rejection never drops the delivery."""
    payload = decode_payload(body)
    typed: Any = None
    if name in typed_events:
        try:
            typed = gk_webhooks.parse(name, body)
        except Exception as error:  # noqa: BLE001 - any model mismatch falls back to the dict
            log.debug(
                "typed parse of %s %s failed (%s); using the raw payload",
                name,
                delivery_id,
                error.__class__.__name__,
            )
    return Event(name=name, delivery_id=delivery_id, payload=payload, typed=typed)


def warm_up_parser(events: frozenset[str]) -> None:
    """Build githubkit's lazy models once (the first parse of a type takes seconds)."""
    for name in sorted(events):
        with contextlib.suppress(Exception):
            gk_webhooks.parse(name, b'{"action": "warm-up"}')


# --- intake -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    delivery: IncomingDelivery
    done: asyncio.Future[bool]


class Intake:
    """The ``POST /webhooks`` handler with group commit."""

    def __init__(
        self,
        db: Ledger,
        secret: str | None,
        *,
        writers: int = 1,
        batch_max: int = 500,
        on_stored: Any = None,
    ) -> None:
        self.db = db
        self._secret = secret
        self.writers = writers
        self.batch_max = batch_max
        self.on_stored = on_stored
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.accepting = True
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self.in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._last_request_end = 0.0
        # How long the intake must have had nothing in flight before it counts as quiet: under
        # a burst, answers follow one another closer than this, so processing waits it out.
        self.quiet_period = 0.02

    def busy_recently(self) -> bool:
        """A request is in flight, or one ended less than ``quiet_period`` ago."""
        if self.in_flight:
            return True
        return asyncio.get_running_loop().time() - self._last_request_end < self.quiet_period

    async def quiet(self, timeout: float) -> None:
        """Return once no request has been in flight for ``quiet_period`` seconds, or after
        ``timeout`` seconds at the latest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (now := loop.time()) < deadline:
            if self.in_flight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), deadline - now)
                continue
            idle_for = now - self._last_request_end
            if idle_for >= self.quiet_period:
                return
            await asyncio.sleep(min(self.quiet_period - idle_for, deadline - now))

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"webhook-writer-{i}")
            for i in range(self.writers)
        ]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting; let requests in flight (reading their body, waiting for their
        commit) finish and queued deliveries commit (up to ``timeout``), then stop the writers.
        A delivery still queued after that was never stored: it is answered 503, never 2xx."""
        self.accepting = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self.in_flight > 0 or not self._queue.empty()) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._fail_queued()

    def _fail_queued(self) -> None:
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.done.done():
                pending.done.set_exception(RuntimeError("stopping: not stored"))

    async def _writer(self) -> None:
        writer = inbox.InboxWriter(self.db)
        try:
            while True:
                first = await self._queue.get()
                batch = [first]
                while len(batch) < self.batch_max and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                try:
                    flags = await writer.store([p.delivery for p in batch])
                except Exception as error:  # noqa: BLE001 - answer every waiter, keep writing
                    log.error("storing %d deliveries failed: %r", len(batch), error)
                    for pending in batch:
                        if not pending.done.done():
                            pending.done.set_exception(error)
                    continue
                for pending, flag in zip(batch, flags, strict=True):
                    if not pending.done.done():
                        pending.done.set_result(flag)
                if self.on_stored is not None and any(flags):
                    self.on_stored()
        finally:
            await writer.close()

    def _reject(self, request: web.Request, status: int, reason: str) -> web.Response:
        self.rejected += 1
        return web.json_response({"error": reason}, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self._quiet.clear()
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._last_request_end = asyncio.get_running_loop().time()
                self._quiet.set()

    async def _handle(self, request: web.Request) -> web.Response:
        if not self.accepting:
            # Stopping: refuse (GitHub logs a failed delivery; recovery asks for it after the
            # restart) and close the connection, so keep-alive clients cannot hold the
            # shutdown open.
            refused = web.json_response({"error": "shutting down"}, status=503)
            refused.force_close()
            return refused
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            return self._reject(request, 413, "payload larger than 25 MB")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject(request, 413, "payload larger than 25 MB")
        if len(body) > MAX_BODY_BYTES:
            return self._reject(request, 413, "payload larger than 25 MB")
        event = request.headers.get("X-GitHub-Event", "")
        delivery_id = request.headers.get("X-GitHub-Delivery", "")
        if self._secret is not None and not signature_ok(
            self._secret, body, request.headers.get("X-Hub-Signature-256")
        ):
            security_log.warning(
                "webhook rejected: bad or missing X-Hub-Signature-256 "
                "(delivery=%.64s event=%.64s remote=%s bytes=%d)",
                delivery_id,
                event,
                request.remote,
                len(body),
            )
            return self._reject(request, 401, "bad or missing signature")
        if not event or not delivery_id or len(delivery_id) > 200 or len(event) > 100:
            return self._reject(request, 400, "X-GitHub-Event and X-GitHub-Delivery are required")
        try:
            payload = decode_payload(body)
        except BadDelivery as error:
            return self._reject(request, 400, str(error))
        action, installation_id, repository = _summary(payload)
        pending = _Pending(
            IncomingDelivery(
                delivery_id=delivery_id,
                event=event,
                payload=body,
                received_at=utcnow(),
                action=action,
                installation_id=installation_id,
                repository_full_name=repository,
            ),
            asyncio.get_running_loop().create_future(),
        )
        await self._queue.put(pending)
        if not self._tasks:
            self._fail_queued()  # the writers are gone (stopping): not stored, so not acked
        try:
            new = await pending.done
        except Exception:  # noqa: BLE001 - the ledger is down: say so, GitHub marks it failed
            return web.json_response({"error": "could not store the delivery"}, status=503)
        if event == "ping":
            return web.json_response({"pong": True, "zen": payload.get("zen")}, status=200)
        if not new:
            self.duplicates += 1
            return web.json_response({"duplicate": True, "delivery": delivery_id}, status=200)
        self.stored += 1
        return web.json_response({"stored": True, "delivery": delivery_id}, status=202)


# --- processing ---------------------------------------------------------------------------------


class Processor:
    """Workers that drain the inbox: claim, parse, route, apply, finish."""

    def __init__(
        self,
        db: Ledger,
        router: Router,
        applier: Applier,
        *,
        workers: int = 2,
        batch: int = 20,
        typed_parse: bool = True,
        idle_poll_seconds: float = 1.0,
        name: str | None = None,
    ) -> None:
        self.db = db
        self.router = router
        self.applier = applier
        self.workers = workers
        self.batch = batch
        self.typed_events = router.events if typed_parse else frozenset()
        self.idle_poll_seconds = idle_poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.processed = 0
        self.failed = 0
        self.ready = asyncio.Event()
        # Acknowledging beats processing (GitHub gives up on a delivery after 10 s; the inbox
        # lets processing lag): before each delivery a worker waits for a moment with no
        # request in flight, at most ``max_yield_seconds``, so a saturated intake still lets
        # each worker through about once a second and the backlog cannot starve for ever.
        self.give_way: Callable[[float], Awaitable[None]] | None = None
        self.max_yield_seconds = 1.0
        self.maintenance_seconds = 60.0
        self._stopping = False
        self._maintenance: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self, *, requeue_all: bool) -> None:
        """Put back what was left processing (all of it on a single-process ledger, only stale
        claims when replicas share it), warm the parser up, then start the workers."""
        claimed_before = None if requeue_all else utcnow() - STALE_CLAIM
        requeued = await inbox.requeue_processing(self.db, claimed_before=claimed_before)
        if requeued:
            log.info("re-queued %d deliveries left processing", requeued)
        requeued_failed = await inbox.requeue_failed(self.db, MAX_FAILED_ATTEMPTS)
        if requeued_failed:
            log.info("re-queued %d failed deliveries for another attempt", requeued_failed)
        if self.typed_events:
            await asyncio.to_thread(warm_up_parser, self.typed_events)
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._run(i), name=f"webhook-worker-{i}")
            for i in range(self.workers)
        ]
        self._maintenance = asyncio.create_task(self._maintain(), name="webhook-maintenance")
        self.ready.set()
        self.wake()

    async def stop(self, timeout: float = 5.0) -> None:
        """Let each worker finish the delivery in hand (up to ``timeout``), hand back what it
        had claimed but not started, then stop."""
        self._stopping = True
        self.wake()
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
            self._maintenance = None
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []

    async def _maintain(self) -> None:
        """Every ``maintenance_seconds``: put back claims a dead replica left behind, and give
        failed deliveries another attempt (bounded by ``MAX_FAILED_ATTEMPTS``)."""
        while not self._stopping:
            await asyncio.sleep(self.maintenance_seconds)
            try:
                stale = await inbox.requeue_processing(
                    self.db, claimed_before=utcnow() - STALE_CLAIM
                )
                retried = await inbox.requeue_failed(self.db, MAX_FAILED_ATTEMPTS)
            except Exception as error:  # noqa: BLE001 - try again next time
                log.warning("inbox maintenance failed: %r", error)
                continue
            if stale or retried:
                log.info("inbox: re-queued %d stale claims, %d failed deliveries", stale, retried)
                self.wake()

    async def _run(self, index: int) -> None:
        worker = f"{self.name}:{index}"
        while not self._stopping:
            try:
                claimed = await inbox.claim_deliveries(self.db, worker, utcnow(), self.batch)
            except Exception as error:  # noqa: BLE001 - the ledger blipped: wait, try again
                log.warning("claiming deliveries failed: %r", error)
                await asyncio.sleep(self.idle_poll_seconds)
                continue
            if not claimed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_poll_seconds)
                continue
            finished: list[inbox.Finished] = []
            for delivery in claimed:
                if self._stopping:
                    break
                await self._give_way()
                state, note = await self._process_one(delivery)
                finished.append(inbox.Finished(delivery.id, state, note))
            await self._finish(finished, worker)
        # Claimed but not started: back to pending for whoever runs next.
        with contextlib.suppress(Exception):
            await inbox.requeue_processing(self.db, worker=worker)

    async def _give_way(self) -> None:
        if self.give_way is not None:
            await self.give_way(self.max_yield_seconds)

    async def _finish(self, finished: list[inbox.Finished], worker: str) -> None:
        """One transaction for the batch's final states (processing is idempotent: if this is
        lost, the claims go stale and are processed again)."""
        if not finished:
            return
        try:
            await inbox.finish_deliveries(self.db, finished, utcnow(), worker=worker)
        except Exception as error:  # noqa: BLE001 - left processing; re-queued later
            log.warning("recording %d finished deliveries failed: %r", len(finished), error)
        for item in finished:
            if item.state is DeliveryState.FAILED:
                self.failed += 1
            else:
                self.processed += 1

    async def process(self, delivery: ClaimedDelivery, worker: str) -> DeliveryState:
        """Process one claimed delivery; never raises (a failure is recorded on the row)."""
        state, note = await self._process_one(delivery)
        await self._finish([inbox.Finished(delivery.id, state, note)], worker)
        return state

    async def _process_one(self, delivery: ClaimedDelivery) -> tuple[DeliveryState, str | None]:
        """Parse, route and apply one delivery; its final state and note (never raises)."""
        state = DeliveryState.FAILED
        note: str | None = None
        try:
            event = parse_event(
                delivery.event,
                delivery.delivery_id,
                delivery.payload,
                typed_events=self.typed_events,
            )
            effects = self.router.dispatch(event)
            applied = await self.applier.apply(
                effects, delivery_id=delivery.delivery_id, now=utcnow()
            )
            if applied.only_ignored:
                state, note = DeliveryState.IGNORED, "; ".join(applied.ignored)[:500]
            else:
                state = DeliveryState.PROCESSED
        except BadDelivery as error:
            state, note = DeliveryState.IGNORED, str(error)
        except Exception as error:
            state, note = DeliveryState.FAILED, f"{error.__class__.__name__}: {error}"[:500]
            log.exception(
                "processing delivery %s (%s) failed", delivery.delivery_id, delivery.event
            )
        return state, note
