"""Rate limits, request accounting and injected faults: what the sim charges and what it breaks.

Budgets follow GitHub's published numbers (see /work/shared/notes/github-facts.md) and are kept per
installation on the sim clock; everything is configurable from a scenario or the control plane.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class LimitConfig:
    rest_per_hour: int = 5000
    graphql_points_per_hour: int = 5000
    app_rest_per_hour: int = 5000  # requests made with the App JWT
    content_creation_per_minute: int = 80
    content_creation_per_hour: int = 500
    secondary_retry_after: int = 60
    # GitHub's secondary point limits (900 REST / 2,000 GraphQL points a minute; GET and
    # queries weigh 1, writes and mutations 5). Points are always counted (accounting
    # ``secondary_points``); they are enforced only when these are > 0, because tests often
    # hold the sim clock still, where a minute never ends.
    rest_secondary_points_per_minute: int = 0
    graphql_secondary_points_per_minute: int = 0

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise KeyError(f"unknown limit {key!r}")
            setattr(self, key, int(value))


@dataclass(slots=True)
class RateWindow:
    """One hour-long primary budget; the hour starts at its first use, like GitHub's."""

    limit: int
    used: int = 0
    reset_at: int = 0  # epoch seconds on the sim clock

    def roll(self, now: int) -> None:
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = now + 3600

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, resource: str) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-resource": resource,
        }


@dataclass(slots=True)
class PointsWindow:
    """Points spent in the last 60 sim seconds, one bucket per second (a still clock keeps one)."""

    buckets: deque[list[int]] = field(default_factory=deque)  # [second, points]
    total: int = 0

    def spend(self, weight: int, now: int, limit: int) -> bool:
        while self.buckets and self.buckets[0][0] <= now - 60:
            self.total -= self.buckets.popleft()[1]
        if limit > 0 and self.total + weight > limit:
            return False
        if self.buckets and self.buckets[-1][0] == now:
            self.buckets[-1][1] += weight
        else:
            self.buckets.append([now, weight])
        self.total += weight
        return True


class RateLimits:
    """Primary windows per (principal, resource) and the content-creation secondary limit."""

    def __init__(self, config: LimitConfig) -> None:
        self.config = config
        self.windows: dict[tuple[str, str], RateWindow] = {}
        self.content_creations: dict[str, deque[int]] = {}
        self.secondary_points: dict[tuple[str, str], PointsWindow] = {}

    def window(self, principal: str, resource: str, now: int) -> RateWindow:
        key = (principal, resource)
        window = self.windows.get(key)
        if window is None:
            if resource == "graphql":
                limit = self.config.graphql_points_per_hour
            elif principal.startswith("app:"):
                limit = self.config.app_rest_per_hour
            else:
                limit = self.config.rest_per_hour
            window = RateWindow(limit=limit)
            self.windows[key] = window
        window.roll(now)
        return window

    def content_creation_allowed(self, principal: str, now: int) -> bool:
        """Records one content-creating request; False when over the minute or hour limit."""
        times = self.content_creations.setdefault(principal, deque())
        while times and times[0] <= now - 3600:
            times.popleft()
        last_minute = sum(1 for t in times if t > now - 60)
        if (
            last_minute >= self.config.content_creation_per_minute
            or len(times) >= self.config.content_creation_per_hour
        ):
            return False
        times.append(now)
        return True

    def secondary_points_allowed(
        self, principal: str, resource: str, weight: int, now: int, limit: int
    ) -> bool:
        """Records ``weight`` secondary-limit points; False (nothing recorded) when that would
        pass ``limit`` points in the last minute (``limit`` <= 0: never refused)."""
        window = self.secondary_points.get((principal, resource))
        if window is None:
            window = self.secondary_points[(principal, resource)] = PointsWindow()
        return window.spend(weight, now, limit)

    def reset(self) -> None:
        self.windows.clear()
        self.content_creations.clear()
        self.secondary_points.clear()


@dataclass(slots=True)
class FaultRule:
    """An injected failure for the next ``count`` matching requests (``count`` < 0: forever).

    kind: ``status`` (answer ``status`` with GitHub's error body), ``secondary`` (403/429
    secondary rate limit with ``retry-after``), ``delay`` (answer after ``seconds`` real seconds),
    ``hang`` (hold the request ``seconds``, default 3600, as a timeout), ``mergeable_unknown`` is not
    a request fault: see the control plane's ``mergeable_unknown_seconds``.
    ``deny`` answers a permission denial as GitHub does: ``status`` (403 unless 404/410/422 is
    given) with ``message`` (default "Resource not accessible by integration") and, when
    ``accepted_permissions`` is set, the ``x-accepted-github-permissions`` header.
    """

    kind: str
    path: str = ".*"  # regular expression searched in the request path
    method: str = "*"
    count: int = 1
    status: int = 502
    seconds: float = 0.0
    retry_after: int = 60
    message: str = ""
    accepted_permissions: str = ""
    id: int = 0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.count == 0:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None

    def consume(self) -> None:
        self.hits += 1
        if self.count > 0:
            self.count -= 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FAULT_KINDS = {"status", "secondary", "delay", "hang", "deny"}
DENIED_MESSAGE = "Resource not accessible by integration"


@dataclass(slots=True)
class Accounting:
    """What prsteward cost: every request the sim answered, by endpoint and installation."""

    requests: Counter[str] = field(default_factory=Counter)  # "GET /repos/{owner}/{repo}/pulls"
    charged: Counter[str] = field(default_factory=Counter)
    per_installation: Counter[str] = field(default_factory=Counter)  # charged requests
    conditional_hits: Counter[str] = field(default_factory=Counter)  # 304s by endpoint
    writes: Counter[str] = field(default_factory=Counter)
    graphql_points: Counter[str] = field(default_factory=Counter)  # by installation
    graphql_queries: Counter[str] = field(default_factory=Counter)
    # Secondary-limit points by "<principal> rest|graphql": GET and queries 1, writes and
    # mutations 5 (GitHub's weights).
    secondary_points: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    # The latest requests in arrival order: (wall-clock epoch, endpoint, injected fault or "").
    # Read in process (``sim.accounting.timeline``) to check back-off: not in ``as_dict``.
    timeline: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=20_000))

    def as_dict(self) -> dict[str, Any]:
        data = {
            name: dict(getattr(self, name))
            for name in self.__dataclass_fields__
            if name != "timeline"
        }
        data["totals"] = {
            "requests": sum(self.requests.values()),
            "charged": sum(self.charged.values()),
            "conditional_hits": sum(self.conditional_hits.values()),
            "writes": sum(self.writes.values()),
            "graphql_points": sum(self.graphql_points.values()),
            "graphql_queries": sum(self.graphql_queries.values()),
        }
        return data

    def reset(self) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).clear()
