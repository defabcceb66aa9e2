"""bot.github: auth, retry policy and budget, at the client layer only (respx)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.github import (
    GitHubApp,
    GitHubError,
    GitHubUnavailable,
    GiveUp,
    RateBudget,
    RateLimited,
    Reschedule,
    Retry,
    RetryPolicy,
    retry_decision,
)

API = "http://gh.test"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()


@pytest.fixture(scope="module")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_app(private_key: str, sleeps: Sleeps | None = None) -> GitHubApp:
    return GitHubApp(
        app_id=42, private_key=private_key, api_url=API, sleep=sleeps or Sleeps(), clock=lambda: NOW
    )


def token_route(router: respx.MockRouter, installation_id: int = 7) -> respx.Route:
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return router.post(f"{API}/app/installations/{installation_id}/access_tokens").respond(
        201, json={"token": "ghs_secret", "expires_at": expires}
    )


# --- pure retry decisions ---------------------------------------------------------------------


def decide(
    status: int | None, headers: dict[str, str] | None = None, attempt: int = 1, body: str = ""
):
    return retry_decision(
        status=status, headers=headers or {}, body=body, attempt=attempt, now=NOW, policy=POLICY
    )


def test_200__final() -> None:
    assert decide(200) is None


def test_404__final_not_retried() -> None:
    assert decide(404) is None


def test_403_without_rate_limit_signs__final() -> None:
    assert decide(403, body='{"message": "Resource not accessible by integration"}') is None


def test_500_first_attempt__retry_with_backoff() -> None:
    decision = decide(500)
    assert isinstance(decision, Retry) and 0 < decision.delay <= POLICY.base_delay


def test_500_last_attempt__give_up() -> None:
    assert isinstance(decide(502, attempt=POLICY.max_attempts), GiveUp)


def test_timeout__retry() -> None:
    assert isinstance(decide(None), Retry)


def test_429_retry_after_short__retry_that_long() -> None:
    decision = decide(429, {"Retry-After": "3"})
    assert isinstance(decision, Retry) and decision.delay == 3


def test_403_retry_after_long__reschedule_not_sleep() -> None:
    decision = decide(403, {"retry-after": "600"})
    assert isinstance(decision, Reschedule)
    assert decision.until == NOW + timedelta(seconds=600)


def test_primary_limit_exhausted__reschedule_at_reset() -> None:
    reset = int((NOW + timedelta(minutes=40)).timestamp())
    decision = decide(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
    assert isinstance(decision, Reschedule)
    assert decision.until == datetime.fromtimestamp(reset, UTC)


def test_secondary_limit_without_headers__at_least_a_minute() -> None:
    decision = decide(403, body='{"message": "You have exceeded a secondary rate limit"}')
    assert isinstance(decision, Retry) and decision.delay >= 60


# --- budget -------------------------------------------------------------------------------


def test_budget_reads_headers_and_keeps_reserve() -> None:
    budget = RateBudget(reserve=0.1)
    budget.observe_headers({"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "600"})
    assert budget.may_spend("rest", 50, NOW)
    budget.observe_headers({"x-ratelimit-remaining": "520"})
    assert not budget.may_spend("rest", 50, NOW)  # would dip into the 500 kept for writes
    assert budget.may_spend("rest", 50, NOW, write=True)


def test_budget_graphql_rate_limit_object() -> None:
    budget = RateBudget()
    budget.observe_graphql(
        {"limit": 5000, "remaining": 100, "resetAt": "2026-11-23T13:00:00Z", "cost": 11}
    )
    assert not budget.may_spend("graphql", 11, NOW)
    assert budget.may_spend("graphql", 11, datetime(2026, 11, 23, 13, 0, 1, tzinfo=UTC))
    assert budget.poll_delay_factor() > 1.0


def test_budget_full__normal_speed() -> None:
    assert RateBudget().poll_delay_factor() == 1.0


# --- client over HTTP (respx) ----------------------------------------------------------------


@respx.mock
async def test_installation_token_fetched_once_and_used(private_key: str) -> None:
    tokens = token_route(respx.mock)
    pulls = respx.get(f"{API}/repos/o/r/pulls").respond(200, json=[])
    client = make_app(private_key).installation(7)
    await client.request("GET", "/repos/o/r/pulls")
    await client.request("GET", "/repos/o/r/pulls")
    assert tokens.call_count == 1
    assert pulls.calls[0].request.headers["authorization"] == "token ghs_secret"
    app_jwt = tokens.calls[0].request.headers["authorization"].removeprefix("Bearer ")
    assert jwt.decode(app_jwt, options={"verify_signature": False})["iss"] == "42"


@respx.mock
async def test_installation_token_refused__final_error_not_the_requests_answer(
    private_key: str,
) -> None:
    tokens = respx.post(f"{API}/app/installations/7/access_tokens").respond(
        404, json={"message": "Not Found"}
    )
    pulls = respx.get(f"{API}/repos/o/r/pulls").respond(200, json=[])
    sleeps = Sleeps()
    with pytest.raises(GitHubError, match="installation token refused: HTTP 404") as caught:
        await make_app(private_key, sleeps).installation(7).request("GET", "/repos/o/r/pulls")
    assert caught.value.status == 404
    assert tokens.call_count == 1 and not pulls.called and sleeps.calls == []


@respx.mock
async def test_installation_token_5xx__retried_then_the_request_goes(private_key: str) -> None:
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tokens = respx.post(f"{API}/app/installations/7/access_tokens").mock(
        side_effect=[
            httpx.Response(502),
            httpx.Response(201, json={"token": "ghs_secret", "expires_at": expires}),
        ]
    )
    pulls = respx.get(f"{API}/repos/o/r/pulls").respond(200, json=[])
    sleeps = Sleeps()
    client = make_app(private_key, sleeps).installation(7)
    response = await client.request("GET", "/repos/o/r/pulls")
    assert response.status_code == 200 and tokens.call_count == 2 and len(sleeps.calls) == 1
    assert pulls.calls[0].request.headers["authorization"] == "token ghs_secret"


@respx.mock
async def test_a_cookie_set_by_an_answer_is_never_sent_back(private_key: str) -> None:
    token_route(respx.mock)
    route = respx.get(f"{API}/x").respond(
        200, json={}, headers={"set-cookie": "session=abc; Path=/"}
    )
    client = make_app(private_key).installation(7)
    await client.request("GET", "/x")
    await client.request("GET", "/x")
    assert "cookie" not in route.calls[1].request.headers


@respx.mock
async def test_graphql_goes_to_root_graphql(private_key: str) -> None:
    token_route(respx.mock)
    route = respx.post(f"{API}/graphql").respond(
        200,
        json={"data": {"rateLimit": {"cost": 1, "remaining": 4999, "limit": 5000}, "x": 1}},
    )
    client = make_app(private_key).installation(7)
    result = await client.graphql("query { x }", {"a": 1})
    assert route.called
    assert json.loads(route.calls[0].request.content)["variables"] == {"a": 1}
    assert result.cost == 1 and client.budget.graphql.remaining == 4999


@respx.mock
async def test_graphql_with_path_prefix(private_key: str) -> None:
    respx.post(f"{API}/prefix/app/installations/7/access_tokens").respond(
        201,
        json={
            "token": "t",
            "expires_at": (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    route = respx.post(f"{API}/prefix/graphql").respond(200, json={"data": {}})
    app = GitHubApp(app_id=1, private_key=private_key, api_url=API + "/prefix", sleep=Sleeps())
    await app.installation(7).graphql("query { x }")
    assert route.called


@respx.mock
async def test_graphql_rate_limited_error__raises_rate_limited(private_key: str) -> None:
    token_route(respx.mock)
    respx.post(f"{API}/graphql").respond(
        200,
        json={"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]},
        headers={"x-ratelimit-reset": str(int((NOW + timedelta(minutes=5)).timestamp()))},
    )
    client = make_app(private_key).installation(7)
    with pytest.raises(RateLimited) as caught:
        await client.graphql("query { x }")
    assert caught.value.until == NOW + timedelta(minutes=5)


@respx.mock
async def test_graphql_partial_data__kept_with_errors(private_key: str) -> None:
    token_route(respx.mock)
    respx.post(f"{API}/graphql").respond(
        200,
        json={
            "data": {"repository": {"pr1": {"number": 1}, "pr9": None}},
            "errors": [{"type": "NOT_FOUND", "path": ["repository", "pr9"]}],
        },
    )
    result = await make_app(private_key).installation(7).graphql("query { x }")
    assert result.data["repository"]["pr1"] == {"number": 1}
    assert result.errors[0]["type"] == "NOT_FOUND"


@respx.mock
async def test_5xx_then_ok__retried_with_sleep(private_key: str) -> None:
    token_route(respx.mock)
    route = respx.get(f"{API}/x").mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(200, json={})]
    )
    sleeps = Sleeps()
    response = await make_app(private_key, sleeps).installation(7).request("GET", "/x")
    assert response.status_code == 200 and route.call_count == 3
    assert len(sleeps.calls) == 2


@respx.mock
async def test_5xx_forever__bounded(private_key: str) -> None:
    token_route(respx.mock)
    route = respx.get(f"{API}/x").respond(500)
    with pytest.raises(GitHubUnavailable):
        await make_app(private_key).installation(7).request("GET", "/x")
    assert route.call_count == POLICY.max_attempts


@respx.mock
async def test_timeout__retried_then_unavailable(private_key: str) -> None:
    token_route(respx.mock)
    route = respx.get(f"{API}/x").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(GitHubUnavailable):
        await make_app(private_key).installation(7).request("GET", "/x")
    assert route.call_count == POLICY.max_attempts


@respx.mock
async def test_primary_limit__raises_until_and_blocks_further_requests(private_key: str) -> None:
    token_route(respx.mock)
    reset = int((NOW + timedelta(minutes=30)).timestamp())
    route = respx.get(f"{API}/x").respond(
        403,
        json={"message": "API rate limit exceeded"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    sleeps = Sleeps()
    client = make_app(private_key, sleeps).installation(7)
    with pytest.raises(RateLimited):
        await client.request("GET", "/x")
    with pytest.raises(RateLimited):
        await client.request("GET", "/x")
    assert route.call_count == 1 and sleeps.calls == []


@respx.mock
async def test_conditional_request__304_returned_as_is(private_key: str) -> None:
    token_route(respx.mock)
    route = respx.get(f"{API}/repos/o/r/pulls").respond(304)
    response = (
        await make_app(private_key)
        .installation(7)
        .request("GET", "/repos/o/r/pulls", headers={"If-None-Match": '"abc"'})
    )
    assert response.status_code == 304
    assert route.calls[0].request.headers["if-none-match"] == '"abc"'


@respx.mock
async def test_rest_pagination_follows_link(private_key: str) -> None:
    respx.get(f"{API}/app/installations", params={"per_page": "100"}).respond(
        200, json=[{"id": 1}], headers={"Link": f'<{API}/app/installations?page=2>; rel="next"'}
    )
    respx.get(f"{API}/app/installations", params={"page": "2"}).respond(200, json=[{"id": 2}])
    assert [i["id"] for i in await make_app(private_key).list_installations()] == [1, 2]


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers 200 to everything; the first request waits until released; counts closes."""

    def __init__(self) -> None:
        import asyncio

        self.release = asyncio.Event()
        self.calls = 0
        self.closed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls == 1:
            await self.release.wait()
        if self.closed:
            raise httpx.ReadError("the pool was closed under an in-flight request")
        return httpx.Response(200, json=[], request=request)

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_finished_request_never_closes_the_shared_pool(private_key: str) -> None:
    """The App and each installation have their own client, all on one pool: a client closing
    (an installation's, or githubkit's own) must not close the pool, or a request still in
    flight is cut off (ReadError, retry). Only the App closes it."""
    import asyncio

    transport = RecordingTransport()
    sleeps = Sleeps()
    app = GitHubApp(
        app_id=42,
        private_key=private_key,
        api_url=API,
        sleep=sleeps,
        clock=lambda: NOW,
        transport=transport,
    )
    slow = asyncio.create_task(app.app.request("GET", "/app/hook/deliveries"))
    while transport.calls == 0:
        await asyncio.sleep(0)
    assert (await app.app.request("GET", "/app/installations")).status_code == 200
    transport.release.set()
    assert (await slow).status_code == 200
    assert transport.closed == 0 and sleeps.calls == [] and app.app.requests_sent == 2
    await app.aclose()
    assert transport.closed == 1
