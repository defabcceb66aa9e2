"""Webhook deliveries: signed like GitHub's, sent in order by one background task, and logged per
App so ``GET /app/hook/deliveries`` and redelivery (``POST .../attempts``) work as on GitHub.

A delivery fails (and stays in the log as failed) when no target is set, the target is down,
answers non-2xx, or takes longer than ``timeout_seconds`` (GitHub: 10 s). Faults can drop a
delivery (logged as failed, never sent) or duplicate it (sent twice, the second flagged as a
redelivery with the same ``X-GitHub-Delivery``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from sim.state import SimClock, iso

log = logging.getLogger("sim.webhooks")

HOOK_ID = 424242


def sign(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Delivery:
    """One attempt, as GitHub's hook-delivery object (``id`` is per attempt, ``guid`` per event)."""

    id: int
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    body: bytes
    headers: dict[str, str]
    redelivery: bool
    delivered_at: datetime
    status: str = "pending"
    status_code: int = 0
    duration: float = 0.0
    response_body: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)

    def item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": iso(self.delivered_at),
            "redelivery": self.redelivery,
            "duration": round(self.duration, 3),
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "repository_id": self.repository_id,
            "throttled_at": None,
        }

    def detail(self, url: str | None) -> dict[str, Any]:
        return {
            **self.item(),
            "url": url or "",
            "request": {"headers": self.headers, "payload": json.loads(self.body)},
            "response": {"headers": self.response_headers, "payload": self.response_body},
        }


@dataclass(slots=True)
class WebhookConfig:
    url: str | None = None
    secret: str = ""
    timeout_seconds: float = 10.0
    drop_next: int = 0  # the next N deliveries are dropped (logged failed, not sent)
    duplicate_next: int = 0  # the next N deliveries are sent twice (same guid)
    drop_rate: float = 0.0  # probability, with ``seed``
    duplicate_rate: float = 0.0
    seed: int = 1
    app_id: int | None = None  # sent as X-GitHub-Hook-Installation-Target-ID


class WebhookSender:
    def __init__(self, clock: SimClock, config: WebhookConfig) -> None:
        self.clock = clock
        self.config = config
        self.log: list[Delivery] = []
        self.by_id: dict[int, Delivery] = {}
        self._next_id = 1
        self._queue: asyncio.Queue[Delivery] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._random = random.Random(config.seed)
        self.emitted = 0
        self._pending = 0  # queued or being sent

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._session = aiohttp.ClientSession()
        self._worker = asyncio.create_task(self._run(), name="sim-webhooks")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._session is not None:
            await self._session.close()

    async def drain(self, timeout: float = 30.0) -> int:
        """Wait until every queued delivery has been attempted; returns how many are pending."""
        if self._queue is None:
            return 0
        deadline = time.monotonic() + timeout
        while self._pending > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return self._pending

    # ------------------------------------------------------------------ emitting
    def emit(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        installation_id: int | None,
        repository_id: int | None,
    ) -> Delivery:
        """Queue one new event. The body is serialised now, so later changes do not leak in."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        guid = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        delivery = self._new_attempt(
            guid,
            event,
            payload.get("action"),
            installation_id,
            repository_id,
            body,
            redelivery=False,
        )
        self.emitted += 1
        drop = self.config.drop_next > 0 or (
            self.config.drop_rate > 0 and self._random.random() < self.config.drop_rate
        )
        if self.config.drop_next > 0:
            self.config.drop_next -= 1
        if drop:
            delivery.status = "Dropped by sim fault"
            delivery.status_code = 0
            return delivery
        self._enqueue(delivery)
        duplicate = self.config.duplicate_next > 0 or (
            self.config.duplicate_rate > 0 and self._random.random() < self.config.duplicate_rate
        )
        if self.config.duplicate_next > 0:
            self.config.duplicate_next -= 1
        if duplicate:
            self.redeliver(delivery.id)
        return delivery

    def redeliver(self, delivery_id: int) -> Delivery | None:
        original = self.by_id.get(delivery_id)
        if original is None:
            return None
        attempt = self._new_attempt(
            original.guid,
            original.event,
            original.action,
            original.installation_id,
            original.repository_id,
            original.body,
            redelivery=True,
        )
        self._enqueue(attempt)
        return attempt

    def _new_attempt(
        self,
        guid: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repository_id: int | None,
        body: bytes,
        *,
        redelivery: bool,
    ) -> Delivery:
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/sim",
            "X-GitHub-Delivery": guid,
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            # For an App's webhook the "installation target" is the App itself.
            "X-GitHub-Hook-Installation-Target-ID": str(self.config.app_id or ""),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
        }
        if self.config.secret:
            headers["X-Hub-Signature-256"] = sign(self.config.secret, body)
        delivery = Delivery(
            id=self._next_id,
            guid=guid,
            event=event,
            action=action,
            installation_id=installation_id,
            repository_id=repository_id,
            body=body,
            headers=headers,
            redelivery=redelivery,
            delivered_at=self.clock.now(),
        )
        self._next_id += 1
        self.log.append(delivery)
        self.by_id[delivery.id] = delivery
        return delivery

    def _enqueue(self, delivery: Delivery) -> None:
        if self._queue is None:
            delivery.status = "Sim not started"
            return
        self._pending += 1
        self._queue.put_nowait(delivery)

    # ------------------------------------------------------------------ sending
    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            try:
                await self._send(delivery)
            except Exception as error:  # noqa: BLE001 - a failed delivery is data, not a crash
                delivery.status = f"Delivery error: {error!r}"
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _send(self, delivery: Delivery) -> None:
        url = self.config.url
        delivery.delivered_at = self.clock.now()
        if not url:
            delivery.status = "No webhook URL configured"
            return
        assert self._session is not None
        started = time.monotonic()
        try:
            async with self._session.post(
                url,
                data=delivery.body,
                headers=delivery.headers,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
            ) as response:
                delivery.response_body = (await response.text())[:2000]
                delivery.response_headers = dict(response.headers)
                delivery.status_code = response.status
                delivery.status = (
                    "OK"
                    if 200 <= response.status < 300
                    else f"Invalid HTTP Response: {response.status}"
                )
        except TimeoutError:
            delivery.status = "timed out"
        except aiohttp.ClientError as error:
            delivery.status = f"failed to connect to host: {error.__class__.__name__}"
        finally:
            delivery.duration = time.monotonic() - started

    # ------------------------------------------------------------------ reading
    def page(self, per_page: int, cursor: int | None) -> tuple[list[Delivery], int | None]:
        """Newest first; ``cursor`` is the id to continue below. Returns (page, next cursor)."""
        newest_first = reversed(self.log)
        items = [d for d in newest_first if cursor is None or d.id < cursor]
        page = items[:per_page]
        next_cursor = page[-1].id if len(items) > per_page else None
        return page, next_cursor

    def reset(self) -> None:
        self.log.clear()
        self.by_id.clear()
        self.emitted = 0
