"""The simulator object: state, clock, limits, faults, accounting and webhooks in one place.

``sim/server.py`` serves it over HTTP; ``sim/events.py`` changes it the way GitHub would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sim.limits import Accounting, FaultRule, LimitConfig, RateLimits
from sim.objects import Renderer
from sim.state import AccessToken, App, Installation, SimClock, SimState
from sim.webhooks import WebhookConfig, WebhookSender


@dataclass(slots=True)
class CachedAnswer:
    """A serialised GET answer, kept per (path and query, repository version): the body, its
    digest (hashed once; the per-token ETag hashes only token + digest), the formatted
    ``Last-Modified`` and the ETags already handed out, by token."""

    body: bytes
    digest: bytes
    last_modified: datetime | None
    last_modified_http: str | None
    link: str | None
    etags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SimOptions:
    """Behaviour knobs (from the scenario's ``options`` or ``PATCH /_sim/config``)."""

    token_ttl_seconds: int = 3600
    # Off by default: tests jump the sim clock by days while clients cache tokens by real time.
    enforce_token_expiry: bool = False
    mergeable_unknown_seconds: int = 30  # after a push or a base move
    ci_duration_seconds: int = 300  # a re-run completes this long after it starts
    etag_per_token: bool = True  # GitHub's ETags are specific to the token


class Simulator:
    def __init__(
        self,
        *,
        clock: SimClock | None = None,
        base_url: str = "http://127.0.0.1",
        webhook: WebhookConfig | None = None,
        limits: LimitConfig | None = None,
    ) -> None:
        self.state = SimState(clock or SimClock())
        self.base_url = base_url.rstrip("/")
        self.render = Renderer(self.state, self.base_url)
        self.limit_config = limits or LimitConfig()
        self.limits = RateLimits(self.limit_config)
        self.accounting = Accounting()
        self.faults: list[FaultRule] = []
        self._fault_ids = 0
        self.options = SimOptions()
        self.webhooks = WebhookSender(self.state.clock, webhook or WebhookConfig())
        # Serialised GET answers by (path and query, repository version): every change to a
        # repository bumps its version (sim/events.py), so a hit is always current.
        self.answer_cache: dict[tuple[str, int, int], CachedAnswer] = {}
        # GraphQL results about one repository, by (document, variables, repository version).
        self.graphql_cache: dict[tuple[str, str, int, int], dict[str, Any]] = {}

    @property
    def clock(self) -> SimClock:
        return self.state.clock

    def set_base_url(self, url: str) -> None:
        self.base_url = url.rstrip("/")
        self.render = Renderer(self.state, self.base_url)
        self.answer_cache.clear()
        self.graphql_cache.clear()

    # ------------------------------------------------------------------ apps and tokens
    def add_app(
        self,
        app_id: int,
        public_key_pem: str,
        webhook_secret: str,
        slug: str = "prsteward",
        owner: str = "prsteward-dev",
    ) -> App:
        app = App(
            id=app_id,
            slug=slug,
            name=slug,
            owner=owner,
            public_key_pem=public_key_pem,
            webhook_secret=webhook_secret,
            created_at=self.state.now(),
        )
        self.state.apps[app_id] = app
        self.state.user(f"{slug}[bot]", "Bot")
        if not self.webhooks.config.secret:
            self.webhooks.config.secret = webhook_secret
        self.webhooks.config.app_id = app_id
        return app

    @property
    def app(self) -> App:
        """The App prsteward runs as (the sim serves one App)."""
        return next(iter(self.state.apps.values()))

    @property
    def bot_login(self) -> str:
        return f"{self.app.slug}[bot]"

    def add_installation(
        self, installation_id: int, account: str, kind: str = "Organization"
    ) -> Installation:
        self.state.user(account, kind)
        installation = Installation(
            id=installation_id,
            app_id=self.app.id,
            account=account,
            created_at=self.state.now(),
        )
        self.state.installations[installation_id] = installation
        return installation

    def issue_token(self, installation_id: int) -> AccessToken:
        token = AccessToken(
            token="ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36],
            installation_id=installation_id,
            expires_at=datetime.fromtimestamp(
                self.clock.timestamp() + self.options.token_ttl_seconds, self.clock.now().tzinfo
            ),
        )
        self.state.tokens[token.token] = token
        return token

    # ------------------------------------------------------------------ faults
    def add_fault(self, rule: FaultRule) -> FaultRule:
        self._fault_ids += 1
        rule.id = self._fault_ids
        self.faults.append(rule)
        return rule

    def match_fault(self, method: str, path: str) -> FaultRule | None:
        for rule in self.faults:
            if rule.matches(method, path):
                rule.consume()
                return rule
        return None

    # ------------------------------------------------------------------ time
    def advance(self, seconds: float) -> int:
        """Move the clock and run what became due (mergeability settles, CI finishes)."""
        self.clock.advance(seconds)
        return self.state.run_due_timers()
