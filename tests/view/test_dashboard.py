"""The dashboard and /metrics: every page renders the ledger; auth follows the bound address."""

from __future__ import annotations

import base64

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.dashboard import COOKIE, Dashboard, is_loopback
from ledger.db import Ledger
from tests.view.fill import NOW

PAGES = ["/", "/repos/acme/widgets", "/repos/acme/widgets/pulls/3", "/jobs", "/jobs?state=QUEUED"]


async def _client(db: Ledger, host: str, token: str | None) -> TestClient:
    app = web.Application()
    Dashboard(db, host=host, token=token, clock=lambda: NOW).mount(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
    ids=lambda v: str(v),
)
def test_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


async def test_every_page_renders_the_ledger_on_loopback(filled: Ledger) -> None:
    client = await _client(filled, "127.0.0.1", None)
    try:
        for path in PAGES:
            response = await client.get(path)
            assert response.status == 200, path
            assert response.headers["Content-Type"].startswith("text/html")
            assert "script-src" not in response.headers["Content-Security-Policy"]
            assert "<script" not in await response.text()
        overview = await (await client.get("/")).text()
        assert "acme/widgets" in overview and "<svg" in overview
        assert "12 proposed: 4 posted" in overview
        assert "stoploss.circuit-breaker" in overview
        repo = await (await client.get("/repos/acme/widgets")).text()
        assert ">#2<" in repo and ">#6<" not in repo
        assert ">#6<" in await (await client.get("/repos/acme/widgets?closed=1")).text()
        pull = await (await client.get("/repos/acme/widgets/pulls/3")).text()
        assert "VERIFIED_DONE" in pull and "$8.50" in pull and "status_comment" in pull
        jobs = await (await client.get("/jobs?state=QUEUED")).text()
        assert "acme/widgets#1" in jobs and "acme/widgets#3" not in jobs
        assert (await client.get("/repos/acme/nothing")).status == 404
        assert (await client.get("/repos/acme/widgets/pulls/999")).status == 404
    finally:
        await client.close()


async def test_empty_ledger_pages_render(ledger: Ledger) -> None:
    client = await _client(ledger, "127.0.0.1", None)
    try:
        for path in ["/", "/jobs", "/metrics"]:
            assert (await client.get(path)).status == 200, path
        assert "nothing has been watched" in await (await client.get("/")).text()
    finally:
        await client.close()


async def test_html_is_escaped(sqlite_url: str) -> None:
    from ledger.migrate import upgrade_async
    from ledger.models import PullRequest, Repository

    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    async with ledger.transaction() as session:
        repo = Repository(full_name="acme/x", created_at=NOW, updated_at=NOW)
        session.add(repo)
        await session.flush()
        session.add(
            PullRequest(
                repository_id=repo.id,  # type: ignore[arg-type]
                number=1,
                snapshot={"title": "<img src=x onerror=alert(1)>"},
                tier="active",
                first_seen_at=NOW,
            )
        )
    client = await _client(ledger, "127.0.0.1", None)
    try:
        text = await (await client.get("/repos/acme/x")).text()
        assert "<img src=x" not in text and "&lt;img src=x" in text
    finally:
        await client.close()
        await ledger.close()


async def test_non_loopback_without_token_refuses(filled_sqlite: Ledger) -> None:
    client = await _client(filled_sqlite, "0.0.0.0", None)
    try:
        for path in [*PAGES, "/metrics"]:
            response = await client.get(path)
            assert response.status == 403, path
            assert "PRSTEWARD_DASHBOARD_TOKEN" in await response.text()
    finally:
        await client.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
async def test_token_bearer_basic_and_query_cookie(filled_sqlite: Ledger, host: str) -> None:
    token = "s3cret-token"
    client = await _client(filled_sqlite, host, token)
    try:
        assert (await client.get("/")).status == 401
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/", headers={"Authorization": "Bearer wrong"})).status == 401
        ok = await client.get("/", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200
        basic = base64.b64encode(f"admin:{token}".encode()).decode()
        assert (
            await client.get("/jobs", headers={"Authorization": f"Basic {basic}"})
        ).status == 200
        bad_basic = base64.b64encode(b"admin:nope").decode()
        assert (
            await client.get("/jobs", headers={"Authorization": f"Basic {bad_basic}"})
        ).status == 401
        assert (await client.get("/?token=wrong", allow_redirects=False)).status == 401
        once = await client.get("/jobs?state=QUEUED&token=" + token, allow_redirects=False)
        assert once.status == 303
        assert once.headers["Location"] == "/jobs?state=QUEUED"  # the token leaves the URL
        cookie = once.cookies[COOKIE]
        assert token not in cookie.value and cookie["httponly"]
        # The client's jar now holds the cookie: later pages need nothing else.
        assert (await client.get("/repos/acme/widgets")).status == 200
        assert (await client.get("/metrics")).status == 200
    finally:
        await client.close()


async def test_metrics_exposition(filled: Ledger) -> None:
    client = await _client(filled, "127.0.0.1", None)
    try:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    finally:
        await client.close()
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert (
        samples[
            (
                "prsteward_webhook_deliveries_total",
                (("event", "pull_request"), ("outcome", "processed")),
            )
        ]
        == 3
    )
    assert (
        samples[("prsteward_candidates_total", (("kind", "status_comment"), ("outcome", "posted")))]
        == 4
    )
    assert samples[("prsteward_escalation_jobs", (("state", "QUEUED"),))] == 1
    assert (
        samples[
            ("prsteward_open_pull_requests", (("repository", "acme/widgets"), ("tier", "signal")))
        ]
        == 2
    )
    assert samples[("prsteward_spend_dollars_total", ())] == 8.5
    assert (
        samples[
            (
                "prsteward_github_rate_limit_remaining",
                (("installation", "1"), ("resource", "graphql")),
            )
        ]
        == 4200
    )
    assert (
        samples[
            (
                "prsteward_decisions_total",
                (("kind", "stop_loss"), ("rule", "stoploss.max-attempts")),
            )
        ]
        == 1
    )
    # The pending delivery was received 5 minutes before NOW: not yet "behind".
    assert samples[("prsteward_behind", ())] == 0
