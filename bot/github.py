"""The GitHub client layer: App JWT + installation tokens (githubkit), an explicit timeout on
every request, and our own bounded retry policy.

- githubkit's own retry is off (``auto_retry=False``): it would sleep up to an hour inside a
  request. Here a request waits at most ``max_inline_wait`` in total; a longer wait raises
  :class:`RateLimited` with ``until`` so the caller reschedules and keeps the work.
- githubkit's HTTP cache is off (its key ignores the token); conditional requests are explicit
  (``If-None-Match`` / ``If-Modified-Since``) and a 304 comes back as a 304.
- Each installation has a :class:`RateBudget` fed by ``x-ratelimit-*`` headers and GraphQL
  ``rateLimit``; polling asks it before spending and keeps a reserve for writes.
- Tokens are cached per client (not process-wide) until one minute before they expire.

The retry decision (:func:`retry_decision`) is a pure function, tested from recorded headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RequestFailed

from policies import json_codec

log = logging.getLogger("prsteward.github")

# A cookie policy that accepts none (see InstallationClient._http).
_NO_COOKIES = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- errors -----------------------------------------------------------------------------------


class GitHubError(Exception):
    """A GitHub request failed for good (after the retries the policy allows)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(GitHubError):
    """GitHub asked us to wait longer than a request may wait. Reschedule at ``until``;
    the work is kept by the caller."""

    def __init__(self, until: datetime, *, reason: str, status: int | None = None) -> None:
        super().__init__(f"rate limited until {until.isoformat()} ({reason})", status=status)
        self.until = until
        self.reason = reason


class GitHubUnavailable(GitHubError):
    """5xx answers or timeouts outlasted the retries."""


class GraphQLError(GitHubError):
    """A GraphQL answer with errors and no usable data."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e.get("message", e)) for e in errors[:3]))
        self.errors = errors


# --- retry policy (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4  # first try + 3 retries
    base_delay: float = 1.0  # seconds; doubled per attempt
    max_delay: float = 30.0
    max_inline_wait: float = 60.0  # a longer wait becomes RateLimited(until)
    secondary_min_wait: float = 60.0  # docs: no retry-after and no reset -> at least a minute


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


@dataclass(frozen=True, slots=True)
class Reschedule:
    until: datetime
    reason: str


Decision = Retry | GiveUp | Reschedule | None  # None: the answer is final (success or 4xx)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = _header(headers, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def is_rate_limit_answer(status: int, headers: Mapping[str, str], body: str) -> bool:
    """403/429 is a rate limit when it says so: retry-after, remaining 0, or the message."""
    if status not in (403, 429):
        return False
    if status == 429 or _header(headers, "retry-after") is not None:
        return True
    if _header(headers, "x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in body.lower()


def retry_decision(
    *,
    status: int | None,
    headers: Mapping[str, str],
    body: str,
    attempt: int,
    now: datetime,
    policy: RetryPolicy,
) -> Decision:
    """What to do after attempt number ``attempt`` (1-based) got ``status`` (None = timeout or
    connection error). Honour retry-after; else the reset time; else back off exponentially."""
    backoff = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    if status is None or status >= 500:
        what = "timeout or connection error" if status is None else f"HTTP {status}"
        if attempt >= policy.max_attempts:
            return GiveUp(f"{what} after {attempt} attempts")
        return Retry(backoff * (0.5 + random.random() / 2), what)
    if is_rate_limit_answer(status, headers, body):
        retry_after = _int_header(headers, "retry-after")
        reset = _int_header(headers, "x-ratelimit-reset")
        if retry_after is not None:
            wait = float(max(retry_after, 0))
            reason = f"HTTP {status} retry-after {retry_after}s"
        elif _header(headers, "x-ratelimit-remaining") == "0" and reset is not None:
            wait = max(0.0, (datetime.fromtimestamp(reset, UTC) - now).total_seconds())
            reason = f"HTTP {status} primary limit, resets at {reset}"
        else:
            wait = max(policy.secondary_min_wait, backoff)
            reason = f"HTTP {status} secondary limit"
        wait = max(wait, backoff if attempt > 1 else 0.0)
        if wait > policy.max_inline_wait or attempt >= policy.max_attempts:
            return Reschedule(now + timedelta(seconds=max(wait, 1.0)), reason)
        return Retry(wait, reason)
    return None


# --- budget ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Bucket:
    limit: int = 5000
    remaining: int = 5000
    reset_at: datetime | None = None
    used: int = 0

    def fraction_left(self) -> float:
        return self.remaining / self.limit if self.limit else 0.0


@dataclass(slots=True)
class RateBudget:
    """What is left of one installation's hourly limits, from the last answers seen.

    ``reserve`` (a fraction of the limit) is kept for writes: reads stop there. Below
    ``slow_below`` polling should slow down (``poll_delay_factor``).
    """

    reserve: float = 0.10
    slow_below: float = 0.25
    rest: Bucket = field(default_factory=Bucket)
    graphql: Bucket = field(default_factory=Bucket)
    blocked_until: datetime | None = None

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        resource = _header(headers, "x-ratelimit-resource") or "core"
        bucket = self.graphql if resource == "graphql" else self.rest
        limit = _int_header(headers, "x-ratelimit-limit")
        remaining = _int_header(headers, "x-ratelimit-remaining")
        reset = _int_header(headers, "x-ratelimit-reset")
        used = _int_header(headers, "x-ratelimit-used")
        if limit is not None:
            bucket.limit = limit
        if remaining is not None:
            bucket.remaining = remaining
        if reset is not None:
            bucket.reset_at = datetime.fromtimestamp(reset, UTC)
        if used is not None:
            bucket.used = used

    def observe_graphql(self, rate_limit: Mapping[str, Any] | None) -> None:
        if not rate_limit:
            return
        bucket = self.graphql
        if isinstance(rate_limit.get("limit"), int):
            bucket.limit = rate_limit["limit"]
        if isinstance(rate_limit.get("remaining"), int):
            bucket.remaining = rate_limit["remaining"]
        if isinstance(rate_limit.get("used"), int):
            bucket.used = rate_limit["used"]
        reset = rate_limit.get("resetAt")
        if isinstance(reset, str):
            with contextlib.suppress(ValueError):
                bucket.reset_at = datetime.fromisoformat(reset.replace("Z", "+00:00"))

    def block(self, until: datetime) -> None:
        if self.blocked_until is None or until > self.blocked_until:
            self.blocked_until = until

    def _bucket(self, kind: str) -> Bucket:
        return self.graphql if kind == "graphql" else self.rest

    def may_spend(self, kind: str, cost: int, now: datetime, *, write: bool = False) -> bool:
        """Reads leave ``reserve`` of the limit for writes; nothing is spent while blocked."""
        if self.blocked_until is not None and now < self.blocked_until:
            return False
        bucket = self._bucket(kind)
        if bucket.reset_at is not None and now >= bucket.reset_at:
            return True  # a new window has started
        keep = 0 if write else int(bucket.limit * self.reserve)
        return bucket.remaining - cost >= keep

    def resume_at(self, kind: str, now: datetime) -> datetime:
        """When spending on ``kind`` makes sense again."""
        candidates = [now + timedelta(minutes=1)]
        if self.blocked_until is not None and self.blocked_until > now:
            candidates.append(self.blocked_until)
        bucket = self._bucket(kind)
        if bucket.reset_at is not None and bucket.reset_at > now:
            candidates.append(bucket.reset_at)
        return max(candidates)

    def poll_delay_factor(self) -> float:
        """1.0 normally; grows as the scarcer bucket drops below ``slow_below``."""
        left = min(self.rest.fraction_left(), self.graphql.fraction_left())
        if left >= self.slow_below:
            return 1.0
        return min(8.0, self.slow_below / max(left, 0.01))


# --- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphQLResult:
    data: dict[str, Any]
    errors: list[dict[str, Any]]
    cost: int | None


def _response_text(response: httpx.Response) -> str:
    try:
        return response.text[:2000]
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""


class InstallationClient:
    """Requests as one installation, with the retry policy and the budget applied."""

    def __init__(
        self,
        gh: GitHub[Any],
        installation_id: int,
        *,
        policy: RetryPolicy,
        sleep: Sleep,
        clock: Clock,
    ) -> None:
        self.gh = gh
        self.installation_id = installation_id
        self.budget = RateBudget()
        self.policy = policy
        self._sleep = sleep
        self._clock = clock
        self.requests_sent = 0
        self._client: httpx.AsyncClient | None = None

    async def _http(self) -> httpx.AsyncClient:
        """This installation's one HTTP client, made on first use and kept until :meth:`aclose`.

        It is the client githubkit makes for ``gh`` (its auth flow and token cache, headers,
        timeout, the App's shared transport), but githubkit's ``arequest`` makes one per request
        and closes it afterwards: in a first sweep that making and closing, and each new
        client's cookie jar, were about a fifth of the HTTP layer's CPU."""
        if self._client is None:
            self._client = await self.gh._create_async_client()
            # GitHub's API sets no cookies we need; never carry one from answer to request.
            self._client.cookies.jar.set_policy(_NO_COOKIES)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client (the shared transport stays open: the App closes it)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        client = await self._http()
        request = client.build_request(method, url, params=params, json=json, headers=headers)
        # githubkit's throttler: at most 100 requests in flight (GitHub's secondary limit)
        async with self.gh.config.throttler.async_acquire(request):
            return await client.send(request)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        write: bool = False,
    ) -> httpx.Response:
        """Send one request; 2xx/3xx/4xx come back as the raw response, 5xx/timeouts and rate
        limits are retried within the policy, else raise."""
        now = self._clock()
        if self.budget.blocked_until is not None and now < self.budget.blocked_until:
            raise RateLimited(self.budget.blocked_until, reason="blocked by an earlier answer")
        attempt = 0
        while True:
            attempt += 1
            status: int | None
            response: httpx.Response | None = None
            token_refusal: httpx.Response | None = None
            try:
                self.requests_sent += 1
                response = await self._send(method, url, params, json, headers)
                status = response.status_code
            except httpx.HTTPError as error:  # timeouts, connection failures
                status = None
                log.info("github request %s %s failed: %r", method, url, error)
            except RequestFailed as error:
                # githubkit's auth flow asked for an installation token (none cached, or it
                # expires within a minute) and was refused: retried like any answer (a 5xx, a
                # rate limit), and when final it is not passed off as ``url``'s answer.
                token_refusal = error.response.raw_response
                response, status = token_refusal, token_refusal.status_code
            except GitHubException as error:  # auth set-up errors etc.: final
                raise GitHubError(f"{method} {url}: {error!r}") from error
            if response is not None and token_refusal is None:  # (the App's budget, not ours)
                self.budget.observe_headers(response.headers)
            decision = retry_decision(
                status=status,
                headers=response.headers if response is not None else {},
                # only an error's text is read (a rate-limit message): decoding a sweep's
                # 140 KB answers to text for nothing was ~2% of its CPU
                body=_response_text(response)
                if response is not None and response.status_code >= 400
                else "",
                attempt=attempt,
                now=self._clock(),
                policy=self.policy,
            )
            if decision is None:
                assert response is not None
                if token_refusal is not None:
                    raise GitHubError(
                        f"{method} {url}: installation token refused: HTTP {status}",
                        status=status,
                    )
                return response
            if isinstance(decision, Reschedule):
                self.budget.block(decision.until)
                log.warning(
                    "github %s %s: %s; rescheduling at %s",
                    method,
                    url,
                    decision.reason,
                    decision.until.isoformat(),
                )
                raise RateLimited(decision.until, reason=decision.reason, status=status)
            if isinstance(decision, GiveUp):
                raise GitHubUnavailable(f"{method} {url}: {decision.reason}", status=status)
            log.info(
                "github %s %s: %s; retry in %.1fs", method, url, decision.reason, decision.delay
            )
            await self._sleep(decision.delay)

    async def graphql(
        self, query: str, variables: Mapping[str, Any] | None = None
    ) -> GraphQLResult:
        """POST {root}/graphql. Partial data with errors (e.g. a PR number that does not exist)
        is returned with its errors; a rate-limit error raises RateLimited."""
        response = await self.request(
            "POST", "/graphql", json={"query": query, "variables": dict(variables or {})}
        )
        if response.status_code >= 400:
            raise GitHubError(
                f"GraphQL HTTP {response.status_code}: {_response_text(response)[:200]}",
                status=response.status_code,
            )
        try:
            payload = json_codec.loads(response.content)  # a sweep's biggest answers
        except ValueError as error:
            raise GitHubError("GraphQL answer is not JSON") from error
        if not isinstance(payload, dict):
            raise GitHubError("GraphQL answer is not an object")
        errors = [e for e in payload.get("errors") or [] if isinstance(e, dict)]
        if any(e.get("type") in ("RATE_LIMIT", "RATE_LIMITED") for e in errors):
            reset = _int_header(response.headers, "x-ratelimit-reset")
            until = (
                datetime.fromtimestamp(reset, UTC)
                if reset
                else self._clock() + timedelta(minutes=1)
            )
            self.budget.block(until)
            raise RateLimited(until, reason="GraphQL rate limit", status=200)
        data = payload.get("data")
        if not isinstance(data, dict):
            raise GraphQLError(errors or [{"message": "no data"}])
        rate = data.get("rateLimit")
        if isinstance(rate, dict):
            self.budget.observe_graphql(rate)
        cost = rate.get("cost") if isinstance(rate, dict) else None
        return GraphQLResult(data=data, errors=errors, cost=cost if isinstance(cost, int) else None)

    async def paginate_rest(
        self, url: str, *, params: Mapping[str, Any] | None = None, key: str | None = None
    ) -> list[Any]:
        """Follow ``Link: rel="next"`` pages; ``key`` picks a list out of an object answer."""
        items: list[Any] = []
        next_url: str | None = url
        query: Mapping[str, Any] | None = {"per_page": 100, **(params or {})}
        while next_url:
            response = await self.request("GET", next_url, params=query)
            if response.status_code >= 400:
                raise GitHubError(
                    f"GET {next_url}: HTTP {response.status_code}", status=response.status_code
                )
            body = response.json()
            page = body.get(key, []) if key and isinstance(body, dict) else body
            items.extend(page if isinstance(page, list) else [])
            next_url = response.links.get("next", {}).get("url")
            query = None  # the next link carries its own query
        return items


class SharedTransport(httpx.AsyncBaseTransport):
    """The App's one connection pool, lent to every client: the App's, each installation's
    (:meth:`InstallationClient._http`) and any githubkit makes for itself.

    Closing an ``httpx.AsyncClient`` closes its transport: with a plain shared transport one
    client closing would drop the pool's connections, cutting off the requests still in
    flight on them (ReadError, then a retry: a second request, and for a write possibly a
    second effect). Only :meth:`GitHubApp.aclose` closes this one."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """A per-request client closing: keep the pool open."""

    async def close_pool(self) -> None:
        await self.inner.aclose()


class GitHubApp:
    """The App: JWT-authenticated calls and one :class:`InstallationClient` per installation."""

    def __init__(
        self,
        *,
        app_id: int,
        private_key: str,
        api_url: str = "https://api.github.com",
        timeout: float = 20.0,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.app_id = app_id
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        # One shared transport (connection pool, one TLS context: building one is ~0.1 s CPU)
        # for the App's and every installation's client.
        self._transport = SharedTransport(
            transport if transport is not None else httpx.AsyncHTTPTransport()
        )
        self._cache = MemCacheStrategy()  # tokens cached per App object, not process-wide
        self._auth = AppAuthStrategy(app_id=app_id, private_key=private_key)
        self._installations: dict[int, InstallationClient] = {}
        self.app = InstallationClient(
            self._github(self._auth), 0, policy=self.policy, sleep=sleep, clock=clock
        )

    def _github(self, auth: AppAuthStrategy | AppInstallationAuthStrategy) -> GitHub[Any]:
        return GitHub(
            auth,
            base_url=self.api_url + "/",
            timeout=httpx.Timeout(self.timeout),
            auto_retry=False,
            http_cache=False,
            cache_strategy=self._cache,
            async_transport=self._transport,
            user_agent="prsteward",
        )

    @property
    def installations(self) -> list[InstallationClient]:
        """The installation clients made so far (their budgets, request counts)."""
        return list(self._installations.values())

    def installation(self, installation_id: int) -> InstallationClient:
        client = self._installations.get(installation_id)
        if client is None:
            gh = self._github(self._auth.as_installation(installation_id))
            client = InstallationClient(
                gh, installation_id, policy=self.policy, sleep=self._sleep, clock=self._clock
            )
            self._installations[installation_id] = client
        return client

    async def aclose(self) -> None:
        """Close every installation's HTTP client, then the shared connection pool."""
        for client in [self.app, *self._installations.values()]:
            await client.aclose()
        await self._transport.close_pool()

    async def list_installations(self) -> list[dict[str, Any]]:
        items = await self.app.paginate_rest("/app/installations")
        return [i for i in items if isinstance(i, dict)]

    async def list_repositories(self, installation_id: int) -> list[dict[str, Any]]:
        client = self.installation(installation_id)
        items = await client.paginate_rest("/installation/repositories", key="repositories")
        return [r for r in items if isinstance(r, dict)]


def app_from_settings(settings: Any, **kwargs: Any) -> GitHubApp:
    """Build the App client from :class:`bot.settings.Settings`; a clear error when incomplete."""
    key = settings.private_key_pem()
    if settings.app_id is None or not key:
        raise GitHubError(
            "PRSTEWARD_APP_ID and PRSTEWARD_PRIVATE_KEY_PATH (or PRSTEWARD_PRIVATE_KEY) are needed"
        )
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise GitHubError(
            f"the App's private key is not a readable PEM private key ({error.__class__.__name__})"
        ) from None
    return GitHubApp(
        app_id=settings.app_id,
        private_key=key,
        api_url=settings.github_api_url,
        timeout=settings.request_timeout_seconds,
        **kwargs,
    )
