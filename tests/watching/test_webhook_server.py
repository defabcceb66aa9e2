"""POST /webhooks against a real ledger (SQLite), in process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.handlers import Event, default_router
from bot.handlers.effects import Effect
from bot.server import Server
from ledger import inbox, pulls
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import DeliveryState
from tests.watching.helpers import SECRET, eventually, post_delivery, sign

PR_PAYLOAD: dict[str, Any] = {
    "action": "opened",
    "number": 5,
    "installation": {"id": 99},
    "repository": {"full_name": "acme/widgets", "id": 1},
    "pull_request": {
        "number": 5,
        "node_id": "PR_5",
        "state": "open",
        "title": "Add a thing",
        "body": "secret-looking body text",
        "user": {"login": "octocat", "type": "User"},
        "author_association": "CONTRIBUTOR",
        "created_at": "2026-11-01T00:00:00Z",
        "updated_at": "2026-11-02T00:00:00Z",
        "draft": False,
        "head": {"ref": "feature", "sha": "a" * 40},
        "base": {"ref": "main", "sha": "b" * 40},
        "labels": [],
    },
}


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


@pytest.fixture
async def served(db: Ledger) -> AsyncIterator[tuple[str, Server]]:
    server = Server(db, webhook_secret=SECRET, typed_parse=False, idle_poll_seconds=0.2)
    async with server.running() as url:
        yield url, server


async def counts(db: Ledger) -> dict[DeliveryState, int]:
    return await inbox.count_by_state(db)


async def test_signed_pull_request__202_then_pr_in_ledger(
    served: tuple[str, Server], db: Ledger
) -> None:
    url, _ = served
    async with httpx.AsyncClient() as client:
        response = await post_delivery(client, url, "pull_request", PR_PAYLOAD, delivery="d-1")
    assert response.status_code == 202

    async def arrived() -> bool:
        row = await pulls.get_pull(db, "acme/widgets", 5)
        return row is not None and row.snapshot is not None

    assert await eventually(arrived)
    row = await pulls.get_pull(db, "acme/widgets", 5)
    assert row is not None and row.dirty and row.head_sha == "a" * 40
    observations = await pulls.list_observations(db, "acme/widgets", 5)
    assert [o.delivery_id for o in observations] == ["d-1"]
    # A worker records its deliveries' outcome after applying them, in a transaction of its own
    # (Processor._finish): the PR can be in the ledger a moment before the delivery says so.
    assert await eventually(lambda: _processed(db, "d-1"))
    stored = await inbox.get_delivery(db, "d-1")
    assert stored is not None and stored.state == DeliveryState.PROCESSED


async def test_redelivery__acknowledged_not_processed_twice(
    served: tuple[str, Server], db: Ledger
) -> None:
    url, _ = served
    async with httpx.AsyncClient() as client:
        first = await post_delivery(client, url, "pull_request", PR_PAYLOAD, delivery="d-2")
        assert await eventually(lambda: _processed(db, "d-2"))
        again = await post_delivery(client, url, "pull_request", PR_PAYLOAD, delivery="d-2")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] is True
    assert len(await pulls.list_observations(db, "acme/widgets", 5)) == 1
    assert sum((await counts(db)).values()) == 1


async def _processed(db: Ledger, delivery_id: str) -> bool:
    row = await inbox.get_delivery(db, delivery_id)
    return row is not None and row.state in (DeliveryState.PROCESSED, DeliveryState.IGNORED)


async def test_wrong_signature__401_nothing_stored_and_log_has_no_payload(
    served: tuple[str, Server], db: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = served
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient() as client:
        wrong = await post_delivery(
            client, url, "pull_request", PR_PAYLOAD, secret="not the secret"
        )
        missing = await post_delivery(client, url, "pull_request", PR_PAYLOAD, secret=None)
    assert wrong.status_code == 401 and missing.status_code == 401
    assert sum((await counts(db)).values()) == 0
    security = [r for r in caplog.records if r.name == "prsteward.security"]
    assert len(security) == 2
    assert all("secret-looking" not in r.getMessage() for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_signed_but_not_json__400_nothing_stored(
    served: tuple[str, Server], db: Ledger
) -> None:
    url, _ = served
    async with httpx.AsyncClient() as client:
        not_json = await post_delivery(client, url, "pull_request", b"{not json")
        not_object = await post_delivery(client, url, "pull_request", b"[1, 2]")
        not_utf8 = await post_delivery(client, url, "pull_request", b"\xff\xfe")
    assert [r.status_code for r in (not_json, not_object, not_utf8)] == [400, 400, 400]
    assert "not JSON" in not_json.json()["error"]
    assert sum((await counts(db)).values()) == 0


async def test_missing_delivery_header__400(served: tuple[str, Server]) -> None:
    url, _ = served
    body = b"{}"
    async with httpx.AsyncClient() as client:
        response = await client.post(
            url + "/webhooks",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body)},
        )
    assert response.status_code == 400


async def test_oversized_body__413_nothing_stored(served: tuple[str, Server], db: Ledger) -> None:
    url, _ = served
    body = b'{"a": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    async with httpx.AsyncClient(timeout=60) as client:
        response = await post_delivery(client, url, "push", body)
    assert response.status_code == 413
    assert sum((await counts(db)).values()) == 0


async def test_ping__answered(served: tuple[str, Server]) -> None:
    url, _ = served
    async with httpx.AsyncClient() as client:
        response = await post_delivery(
            client, url, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1}
        )
    assert response.status_code == 200 and response.json()["pong"] is True


async def test_unknown_event__2xx_recorded_ignored(served: tuple[str, Server], db: Ledger) -> None:
    url, _ = served
    async with httpx.AsyncClient() as client:
        response = await post_delivery(
            client, url, "star", {"action": "created"}, delivery="d-star"
        )
    assert response.status_code == 202
    assert await eventually(lambda: _processed(db, "d-star"))
    row = await inbox.get_delivery(db, "d-star")
    assert row is not None and row.state == DeliveryState.IGNORED
    assert row.error is not None and "no handler for star.created" in row.error


async def test_status_event__marks_pr_with_that_head_dirty(
    served: tuple[str, Server], db: Ledger
) -> None:
    url, _ = served
    async with httpx.AsyncClient() as client:
        await post_delivery(client, url, "pull_request", PR_PAYLOAD, delivery="d-pr")
        assert await eventually(lambda: _processed(db, "d-pr"))
        await pulls.clear_dirty(db, "acme/widgets", [5], _far_future())
        assert not (await pulls.get_pull(db, "acme/widgets", 5)).dirty  # type: ignore[union-attr]
        status = {
            "sha": "a" * 40,
            "state": "failure",
            "context": "ci",
            "repository": {"full_name": "acme/widgets"},
        }
        await post_delivery(client, url, "status", status, delivery="d-status")
        assert await eventually(lambda: _processed(db, "d-status"))
    row = await pulls.get_pull(db, "acme/widgets", 5)
    assert row is not None and row.dirty and row.dirty_reason == "status.failure"


def _far_future() -> Any:
    from datetime import UTC, datetime

    return datetime(2100, 1, 1, tzinfo=UTC)


async def test_many_concurrent_deliveries__all_stored_once(
    served: tuple[str, Server], db: Ledger
) -> None:
    import asyncio

    url, _server = served
    async with httpx.AsyncClient() as client:
        responses = await asyncio.gather(
            *[
                post_delivery(client, url, "star", {"action": "created"}, delivery=f"c-{i % 40}")
                for i in range(80)
            ]
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) == 40 and statuses.count(200) == 40
    assert sum((await counts(db)).values()) == 40


async def test_handler_crash__delivery_failed_worker_survives(db: Ledger) -> None:
    router = default_router()

    def explode(_event: Event) -> list[Effect]:
        raise RuntimeError("boom")

    router.register("star")(explode)
    server = Server(
        db, webhook_secret=SECRET, router=router, typed_parse=False, idle_poll_seconds=0.2
    )
    async with server.running() as url, httpx.AsyncClient() as client:
        await post_delivery(client, url, "star", {"action": "created"}, delivery="boom-1")
        await post_delivery(client, url, "pull_request", PR_PAYLOAD, delivery="after-boom")
        assert await eventually(lambda: _processed(db, "after-boom"))
        assert await eventually(lambda: _state_is(db, "boom-1", DeliveryState.FAILED))
    row = await inbox.get_delivery(db, "boom-1")
    assert row is not None and "boom" in (row.error or "")


async def _state_is(db: Ledger, delivery_id: str, state: DeliveryState) -> bool:
    row = await inbox.get_delivery(db, delivery_id)
    return row is not None and row.state == state


async def test_left_processing__requeued_and_processed_at_start(db: Ledger) -> None:
    import json
    from datetime import UTC, datetime

    from ledger.inbox import IncomingDelivery

    body = json.dumps(PR_PAYLOAD).encode()
    await inbox.store_delivery(
        db, IncomingDelivery("crashed-1", "pull_request", body, datetime.now(UTC), "opened")
    )
    claimed = await inbox.claim_deliveries(db, "dead-worker", datetime.now(UTC))
    assert [c.delivery_id for c in claimed] == ["crashed-1"]
    server = Server(db, webhook_secret=SECRET, typed_parse=False, idle_poll_seconds=0.2)
    async with server.running():
        assert await eventually(lambda: _processed(db, "crashed-1"))


async def test_healthz_and_readyz(served: tuple[str, Server]) -> None:
    url, server = served
    async with httpx.AsyncClient() as client:
        assert (await client.get(url + "/healthz")).status_code == 200
        await server.processor.ready.wait()
        ready = await client.get(url + "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


async def test_typed_parse_rejects__raw_dict_still_used() -> None:
    from bot.webhooks import parse_event

    event = parse_event(
        "status", "x", b'{"sha": "abc", "state": "success"}', typed_events=frozenset({"status"})
    )
    assert event.typed is None and event.payload["sha"] == "abc"


def octokit_example(name: str, index: int) -> Any:
    import json
    from pathlib import Path

    path = Path(__file__).parents[1] / "data/octokit-webhooks-examples/api.github.com/index.json"
    return next(e for e in json.loads(path.read_text()) if e["name"] == name)["examples"][index]


async def test_typed_parse_fits__typed_model_kept() -> None:
    import json

    from bot.webhooks import parse_event

    example = octokit_example("push", 1)
    body = json.dumps(example).encode()
    event = parse_event("push", "x", body, typed_events=frozenset({"push"}))
    assert event.typed is not None and event.typed.ref == example["ref"]
    untyped = parse_event("push", "x", body)
    assert untyped.typed is None and untyped.payload == example


async def test_real_example_the_typed_model_rejects__dict_used() -> None:
    import json

    from bot.webhooks import parse_event

    example = octokit_example("status", 0)  # lacks verification.verified_at, now required
    event = parse_event(
        "status", "x", json.dumps(example).encode(), typed_events=frozenset({"status"})
    )
    assert event.typed is None and event.payload["sha"] == example["sha"]


async def test_stop_mid_batch__nothing_left_processing_and_restart_finishes(db: Ledger) -> None:
    import asyncio

    router = default_router()
    started = asyncio.Event()

    async def slow_apply(*_args: Any, **_kwargs: Any) -> Any:
        started.set()
        await asyncio.sleep(0.05)
        from bot.apply import Applied

        return Applied(ignored=["slow"])

    server = Server(db, webhook_secret=SECRET, router=router, idle_poll_seconds=0.2, workers=1)
    server.applier.apply = slow_apply  # type: ignore[method-assign]
    async with server.running() as url, httpx.AsyncClient() as client:
        for i in range(30):
            await post_delivery(client, url, "star", {"action": "created"}, delivery=f"s-{i}")
        await started.wait()
    counts = await inbox.count_by_state(db)
    assert counts[DeliveryState.PROCESSING] == 0
    assert counts[DeliveryState.PENDING] > 0  # the stop really interrupted the backlog
    assert counts[DeliveryState.PENDING] + counts[DeliveryState.IGNORED] == 30

    again = Server(db, webhook_secret=SECRET, idle_poll_seconds=0.2)
    async with again.running():

        async def all_done() -> bool:
            return (await inbox.count_by_state(db))[DeliveryState.IGNORED] == 30

        assert await eventually(all_done)


async def test_failed_delivery__retried_by_maintenance(db: Ledger) -> None:
    router = default_router()
    calls: list[str] = []

    def flaky(event: Event) -> list[Effect]:
        calls.append(event.delivery_id)
        if len(calls) == 1:
            raise RuntimeError("transient")
        return []

    router.register("star")(flaky)
    server = Server(db, webhook_secret=SECRET, router=router, idle_poll_seconds=0.1)
    server.processor.maintenance_seconds = 0.2
    async with server.running() as url, httpx.AsyncClient() as client:
        await post_delivery(client, url, "star", {"action": "created"}, delivery="flaky-1")
        assert await eventually(lambda: _state_is(db, "flaky-1", DeliveryState.PROCESSED))
    row = await inbox.get_delivery(db, "flaky-1")
    assert row is not None and row.attempts == 2 and calls == ["flaky-1", "flaky-1"]
