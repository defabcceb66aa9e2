"""The naive baseline: how stale bots poll. Against the same sim, with the same App:

list the installation's repositories; per repository list the open pulls (100 a page); then per PR
get the pull (for ``mergeable``), its combined status, its check runs, its reviews and its
comments. No conditional requests, no GraphQL. Five REST requests per PR plus the lists.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import jwt


@dataclass(slots=True)
class NaiveResult:
    requests: int = 0
    pulls: int = 0
    repositories: int = 0
    errors: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)


def app_jwt(app_id: int, private_key_pem: str) -> str:
    now = int(time.time())
    return jwt.encode(
        {"iat": now - 30, "exp": now + 540, "iss": str(app_id)}, private_key_pem, algorithm="RS256"
    )


async def installation_tokens(client: httpx.AsyncClient, app_token: str) -> list[str]:
    headers = {"Authorization": f"Bearer {app_token}", "Accept": "application/vnd.github+json"}
    response = await client.get("/app/installations", headers=headers, params={"per_page": 100})
    response.raise_for_status()
    tokens = []
    for installation in response.json():
        answer = await client.post(
            f"/app/installations/{installation['id']}/access_tokens", headers=headers
        )
        answer.raise_for_status()
        tokens.append(str(answer.json()["token"]))
    return tokens


async def naive_sweep(
    base_url: str, app_id: int, private_key_pem: str, *, concurrency: int = 16
) -> NaiveResult:
    """One naive poll of every open PR of every installation. Counts what it sent (the sim's
    accounting is the reference)."""
    result = NaiveResult()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        tokens = await installation_tokens(client, app_jwt(app_id, private_key_pem))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:

        async def get(path: str, token: str, params: dict[str, Any] | None = None) -> Any:
            headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
            async with session.get(path, params=params, headers=headers) as response:
                body = await response.json(content_type=None)
                result.requests += 1
                if response.status >= 400:
                    result.errors += 1
                return body, response.headers.get("link", "")

        async def paginate(path: str, token: str) -> list[Any]:
            items: list[Any] = []
            page = 1
            while True:
                body, link = await get(
                    path, token, {"per_page": 100, "page": page, "state": "open"}
                )
                chunk = body.get("repositories", []) if isinstance(body, dict) else body
                items.extend(chunk)
                if 'rel="next"' not in link:
                    return items
                page += 1

        semaphore = asyncio.Semaphore(concurrency)

        async def per_pull(full_name: str, pull: dict[str, Any], token: str) -> None:
            number, sha = pull["number"], pull["head"]["sha"]
            async with semaphore:
                await get(f"/repos/{full_name}/pulls/{number}", token)
                await get(f"/repos/{full_name}/commits/{sha}/status", token)
                await get(f"/repos/{full_name}/commits/{sha}/check-runs", token)
                await get(f"/repos/{full_name}/pulls/{number}/reviews", token)
                await get(f"/repos/{full_name}/issues/{number}/comments", token)

        for token in tokens:
            repos = await paginate("/installation/repositories", token)
            result.repositories += len(repos)
            for repo in repos:
                full_name = repo["full_name"]
                open_pulls = await paginate(f"/repos/{full_name}/pulls", token)
                result.pulls += len(open_pulls)
                await asyncio.gather(*(per_pull(full_name, p, token) for p in open_pulls))
    return result
