"""Small helpers for driving the sim over plain HTTP (httpx) in tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
from aiohttp import web

SMALL_SCENARIO = Path(__file__).resolve().parents[2] / "sim" / "scenarios" / "small.yml"


def app_jwt(server: Any, *, lifetime: int = 540) -> str:
    """An App JWT as GitHub wants it: RS256, iss = App id, at most 10 minutes."""
    now = int(time.time())
    return jwt.encode(
        {"iat": now - 30, "exp": now + lifetime, "iss": str(server.app_id)},
        server.private_key_pem,
        algorithm="RS256",
    )


async def installation_token(server: Any, installation_id: int = 1) -> str:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            f"/app/installations/{installation_id}/access_tokens",
            headers={"Authorization": f"Bearer {app_jwt(server)}"},
        )
    response.raise_for_status()
    return str(response.json()["token"])


@asynccontextmanager
async def installation_client(
    server: Any, installation_id: int = 1
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client authenticated as the installation."""
    token = await installation_token(server, installation_id)
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"token {token}"}, timeout=30
    ) as client:
        yield client


class Receiver:
    """A webhook endpoint on a free port that keeps what it got."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self.url = ""
        self.status = 202  # set to 503 to play a receiver that is down
        self.delay = 0.0  # seconds before answering, to play a slow receiver

    async def handle(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status >= 300:
            return web.Response(status=self.status)
        self.received.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=self.status)

    def events(self) -> list[tuple[str, str]]:
        """(event, delivery guid) of what arrived, in order."""
        return [(h["X-GitHub-Event"], h["X-GitHub-Delivery"]) for h, _ in self.received]
