"""Graceful stop (issue 13): SIGTERM to `prsteward serve` under webhook load. /readyz fails at
once, new deliveries get 503 (GitHub marks them failed; recovery asks for them later), every
acknowledged delivery is in the ledger, nothing is left claimed, and the process exits."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from ledger import inbox
from ledger.db import Ledger
from ledger.models import DeliveryState
from tests.watching.helpers import delivery_headers, eventually
from tests.watching.test_cli import PRSTEWARD, clean_env, free_port, write_env_file

SimFactory = Callable[..., Awaitable[Any]]
CONNECTIONS = 16


async def test_sigterm_under_load_loses_no_acknowledged_delivery(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory()
    await write_env_file(sim, tmp_path)
    port = free_port()
    database = f"sqlite:///{tmp_path}/ledger.db"
    env = clean_env(
        PRSTEWARD_DATABASE_URL=database,
        PRSTEWARD_PORT=str(port),
        PRSTEWARD_TYPED_WEBHOOK_PARSE="false",
    )
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        *PRSTEWARD,
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=log_file,
        stderr=log_file,
    )
    url = f"http://127.0.0.1:{port}"
    acked: set[str] = set()
    refused_503 = 0
    sent = 0
    stop_sending = asyncio.Event()
    body = json.dumps({"action": "created", "zen": "load"}).encode()

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal refused_503, sent
        while not stop_sending.is_set():
            guid = str(uuid.uuid4())
            headers = delivery_headers("star", body, guid, sim.webhook_secret)
            try:
                response = await client.post(url + "/webhooks", content=body, headers=headers)
            except httpx.TransportError:
                await asyncio.sleep(0.01)  # the listener is gone: GitHub would log a failure
                continue
            sent += 1
            if response.status_code in (200, 202):
                acked.add(guid)
            elif response.status_code == 503:
                refused_503 += 1

    try:
        async with httpx.AsyncClient(timeout=30) as client:

            async def ready() -> bool:
                try:
                    return (await client.get(url + "/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            assert await eventually(ready, 90, 0.2)
            senders = [asyncio.create_task(sender(client)) for _ in range(CONNECTIONS)]
            assert await eventually(lambda: _true(len(acked) >= 300), 60, 0.05)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.3)
            try:
                readiness = (await client.get(url + "/readyz")).status_code
            except httpx.TransportError:
                readiness = None  # already closed: not ready either
            assert readiness != 200
            await asyncio.wait_for(process.wait(), 60)
            exited = time.monotonic() - signalled
            stop_sending.set()
            await asyncio.gather(*senders)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log_file.close()
    assert process.returncode == 0, log_path.read_text()[-3000:]
    db = Ledger(database)
    try:
        stored = await inbox.known_delivery_ids(db, sorted(acked))
        counts = await inbox.count_by_state(db)
    finally:
        await db.close()
    assert stored == acked  # every acknowledged delivery is in the ledger
    assert counts[DeliveryState.PROCESSING] == 0  # nothing left claimed
    print(
        f"\nSIGTERM under load: {len(acked)} acknowledged (all stored), {refused_503} answered "
        f"503 while stopping, {sent} answered in all; exited {exited:.2f} s after SIGTERM"
    )


async def _true(value: bool) -> bool:
    return value
