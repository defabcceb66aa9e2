"""Fuzzing ``POST /webhooks`` with random bodies, headers and signatures: never a 5xx, never a
worker crash; a wrong or missing signature is 401 and stores nothing; a signed body that is not
a JSON object, or missing headers, is 400 and stores nothing; an oversized body is 413, also
when it comes chunked without a Content-Length.

The real server (bot/server.py on a SQLite ledger, its inbox workers running) runs in a
background thread; hypothesis drives it over HTTP. Examples per property:
``PRSTEWARD_TEST_FUZZ_EXAMPLES`` (default 60 in CI; more on demand).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.server import Server
from bot.webhooks import MAX_BODY_BYTES
from ledger import inbox
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import DeliveryState
from tests.watching.helpers import SECRET, sign

T = TypeVar("T")
EXAMPLES = int(os.environ.get("PRSTEWARD_TEST_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EVENTS = [
    "pull_request",
    "pull_request_review",
    "issue_comment",
    "check_run",
    "check_suite",
    "status",
    "push",
    "installation",
    "installation_repositories",
    "issues",
    "ping",
    "nonsense",
]


@dataclass
class Running:
    url: str
    loop: asyncio.AbstractEventLoop
    db: Ledger
    server: Server

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def stored(self) -> int:
        return sum(self.run(inbox.count_by_state(self.db)).values())

    def has(self, delivery_id: str) -> bool:
        return self.run(inbox.get_delivery(self.db, delivery_id)) is not None


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'ledger.db'}"
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        await upgrade_async(url)
        db = Ledger(url)
        server = Server(db, webhook_secret=SECRET, typed_parse=True, idle_poll_seconds=0.1)
        try:
            async with server.running() as base:
                ready.update(url=base, db=db, server=server)
                started.set()
                await stop.wait()
        finally:
            await db.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(120)
    yield Running(ready["url"], loop, ready["db"], ready["server"])
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as http:
        yield http


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
# Payload-shaped objects: the keys handlers read, with values of any type.
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "action": JSON,
        "number": JSON,
        "installation": st.one_of(JSON, st.fixed_dictionaries({"id": JSON})),
        "repository": st.one_of(
            JSON, st.fixed_dictionaries({"full_name": JSON, "id": JSON, "name": JSON})
        ),
        "pull_request": st.one_of(JSON, st.dictionaries(st.text(max_size=12), JSON)),
        "issue": JSON,
        "comment": JSON,
        "check_run": JSON,
        "check_suite": JSON,
        "sha": JSON,
        "ref": JSON,
        "sender": JSON,
        "repositories_added": JSON,
        "repositories_removed": JSON,
    },
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda value: json.dumps(value).encode()),
    PAYLOADS.map(lambda value: json.dumps(value).encode()),
)
# What an HTTP client can send as a header value (printable ASCII, no surrounding spaces).
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)


@dataclass(frozen=True)
class Attempt:
    body: bytes
    event: str | None
    delivery: str | None
    signature: str  # "good" | "none" | "other body" | "wrong secret" | "garbage"
    garbage: str


ATTEMPTS = st.builds(
    Attempt,
    body=BODIES,
    event=st.one_of(st.none(), st.sampled_from(EVENTS), HEADER_TEXT),
    delivery=st.one_of(st.none(), st.just("uuid"), HEADER_TEXT, st.just("x" * 300)),
    signature=st.sampled_from(["good", "good", "none", "other body", "wrong secret", "garbage"]),
    garbage=HEADER_TEXT,
)


def headers_for(attempt: Attempt) -> tuple[dict[str, str], str | None]:
    headers = {"Content-Type": "application/json"}
    delivery = str(uuid.uuid4()) if attempt.delivery == "uuid" else attempt.delivery
    if attempt.event is not None:
        headers["X-GitHub-Event"] = attempt.event
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    signature = {
        "good": sign(attempt.body),
        "none": None,
        "other body": sign(attempt.body + b" "),
        "wrong secret": sign(attempt.body, "not the secret"),
        "garbage": attempt.garbage,
    }[attempt.signature]
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return headers, delivery


def is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False


@FUZZ
@given(ATTEMPTS)
def test_random_deliveries__never_5xx_and_only_signed_objects_stored(
    running: Running, client: httpx.Client, attempt: Attempt
) -> None:
    headers, delivery = headers_for(attempt)
    before = running.stored()
    response = client.post(running.url + "/webhooks", content=attempt.body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text)
    assert response.status_code in {200, 202, 400, 401}, response.status_code
    assert response.headers["content-type"].startswith("application/json")
    signed = attempt.signature == "good" or (
        attempt.signature == "garbage" and attempt.garbage == sign(attempt.body)
    )
    if not signed:
        assert response.status_code == 401
        assert running.stored() == before  # nothing stored
        return
    complete = bool(attempt.event) and bool(delivery) and len(delivery or "") <= 200
    if not complete or not is_json_object(attempt.body):
        assert response.status_code == 400, response.text
        assert "error" in response.json()
        assert running.stored() == before
        return
    assert response.status_code in {200, 202}
    assert delivery is not None and running.has(delivery)


def test_after_the_fuzzing__workers_alive_and_nothing_failed(
    running: Running, client: httpx.Client
) -> None:
    body = json.dumps({"zen": "still here", "hook_id": 1}).encode()
    delivery = str(uuid.uuid4())
    response = client.post(
        running.url + "/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(body),
        },
    )
    assert response.status_code == 200

    async def drained() -> dict[DeliveryState, int]:
        for _ in range(600):
            counts = await inbox.count_by_state(running.db)
            if counts[DeliveryState.PENDING] + counts[DeliveryState.PROCESSING] == 0:
                return counts
            await asyncio.sleep(0.1)
        raise AssertionError(f"not drained: {counts}")

    counts = running.run(drained())
    assert counts[DeliveryState.FAILED] == 0, running.run(_failures(running.db))
    assert running.server.processor.failed == 0
    row = running.run(inbox.get_delivery(running.db, delivery))
    assert row is not None and row.state in {"processed", "ignored"}


async def _failures(db: Ledger) -> list[tuple[str, str | None]]:
    from tests.reliability.ledger_dump import dump_tables

    tables = await dump_tables(db.url)
    return [
        (row["event"], row["error"])
        for row in tables.get("webhook_delivery", [])
        if row["state"] == "failed"
    ][:10]


def test_oversized_chunked_body__413_and_nothing_stored(
    running: Running, client: httpx.Client
) -> None:
    """No Content-Length to refuse early: the size limit holds while reading."""
    before = running.stored()
    chunk = b"x" * (1024 * 1024)

    def stream() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            yield chunk

    try:
        response = client.post(
            running.url + "/webhooks",
            content=stream(),
            headers={
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
            },
        )
    except httpx.TransportError:
        pytest.fail("the server dropped the connection instead of answering 413")
    assert response.status_code == 413
    assert running.stored() == before


def test_body_exactly_at_the_limit_is_not_413(running: Running, client: httpx.Client) -> None:
    body = b" " * MAX_BODY_BYTES  # JSON whitespace only: signed, so 400 (not an object)
    response = client.post(
        running.url + "/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body),
        },
    )
    assert response.status_code == 400
