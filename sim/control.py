"""A small typed client for the sim's control plane (``/_sim/``), for tests and benches.

control = SimControl("http://127.0.0.1:8900")
await control.event("ci", repo="acme/widgets", pr=3, conclusion="failure")
await control.advance("30d")
usage = await control.accounting()
"""

from __future__ import annotations

from typing import Any

import httpx


class SimControlError(RuntimeError):
    """The control plane refused a request (its message says why)."""


class SimControl:
    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        response = await self._client.request(method, "/_sim" + path, json=body, params=params)
        if response.status_code >= 400:
            raise SimControlError(f"{method} /_sim{path}: {response.status_code} {response.text}")
        return response.json()

    # clock
    async def clock(self) -> dict[str, Any]:
        """``{"now": ISO, "epoch": int, "rate": float, "pending_timers": int}``"""
        return dict(await self._call("GET", "/clock"))

    async def advance(self, by: str | float) -> dict[str, Any]:
        """Moves the clock (``"30d"``, ``"10m"``, or seconds) and runs what became due."""
        return dict(await self._call("POST", "/clock/advance", {"by": by}))

    async def set_clock(self, now: str | None = None, rate: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if now is not None:
            body["now"] = now
        if rate is not None:
            body["rate"] = rate
        return dict(await self._call("POST", "/clock/set", body))

    # events
    async def event(self, type: str, **fields: Any) -> dict[str, Any]:
        """One scripted event (see sim/README.md), e.g. ``event("review", repo=..., pr=1,
        user="alice", state="CHANGES_REQUESTED")``. Returns ids/SHAs it produced."""
        result = await self._call("POST", "/events", {"type": type, **fields})
        return dict(result["results"][0])

    async def events(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = await self._call("POST", "/events", {"events": specs})
        return list(result["results"])

    async def push(
        self, repo: str, pr: int, *, rebase: bool = False, user: str | None = None
    ) -> str:
        """The author pushes to the PR's head (``rebase``: onto the current base, resolving a
        conflict); returns the new head SHA."""
        fields: dict[str, Any] = {"repo": repo, "pr": pr, "rebase": rebase}
        if user is not None:
            fields["user"] = user
        return str((await self.event("push", **fields))["sha"])

    async def request_review(
        self, repo: str, pr: int, reviewers: list[str], *, user: str | None = None
    ) -> list[str]:
        """Review (re-)requested from ``reviewers``; returns who was not requested already."""
        fields: dict[str, Any] = {"repo": repo, "pr": pr, "reviewers": reviewers}
        if user is not None:
            fields["user"] = user
        return list((await self.event("request_review", **fields))["requested"])

    async def change_file(
        self, repo: str, path: str, content: str | None, *, user: str | None = None
    ) -> str:
        """A commit to the default branch writing ``path`` (None: deleting it), with its
        ``push`` webhook; returns the branch's new SHA."""
        fields: dict[str, Any] = {"repo": repo, "path": path}
        if content is None:
            fields["delete"] = True
        else:
            fields["content"] = content
        if user is not None:
            fields["user"] = user
        return str((await self.event("file", **fields))["sha"])

    # accounting and state
    async def accounting(self) -> dict[str, Any]:
        """Requests by endpoint, charged, per installation, conditional hits (304), writes,
        GraphQL points and queries, statuses, rate-limited answers, faults, webhook counts."""
        return dict(await self._call("GET", "/accounting"))

    async def reset_accounting(self) -> None:
        await self._call("POST", "/accounting/reset")

    async def reset(self, *, state: bool = False) -> None:
        """Clears accounting, limits, faults and the delivery log (and the state, with ``state``)."""
        await self._call("POST", "/reset", {"state": state})

    async def state(self, repo: str | None = None, *, closed: bool = False) -> dict[str, Any]:
        params = {"closed": "true" if closed else "false"}
        if repo:
            params["repo"] = repo
        return dict(await self._call("GET", "/state", params=params))

    async def load_scenario(self, scenario: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("POST", "/scenario", scenario))

    # webhooks
    async def webhook(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/webhook"))

    async def configure_webhook(self, **settings: Any) -> dict[str, Any]:
        """url, secret, timeout_seconds, drop_next, duplicate_next, drop_rate, duplicate_rate."""
        return dict(await self._call("PUT", "/webhook", settings))

    async def drain_webhooks(self, timeout: float = 30.0) -> dict[str, Any]:
        """Waits until every queued delivery has been attempted."""
        return dict(await self._call("POST", "/webhook/drain", {"timeout": timeout}))

    async def deliveries(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/deliveries"))["deliveries"])

    # faults and limits
    async def add_fault(self, kind: str, **fields: Any) -> dict[str, Any]:
        """kind: status | secondary | delay | hang; fields: path (regex), method, count, status,
        seconds, retry_after."""
        return dict(await self._call("POST", "/faults", {"kind": kind, **fields}))

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def set_limits(self, **limits: int) -> dict[str, Any]:
        return dict(await self._call("PATCH", "/limits", limits))

    async def set_options(self, **options: Any) -> dict[str, Any]:
        return dict(await self._call("PATCH", "/options", options))
