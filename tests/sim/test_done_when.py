"""Issue 3's "done when": the sim started from a scenario file, driven with githubkit as prsteward
drives GitHub (App JWT, installation token, REST, GraphQL, a conditional request answered 304),
and a signed webhook received and verified."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.webhooks import verify

from bot.queries import OPEN_PULL_REQUESTS
from tests.sim.helpers import Receiver

SCENARIO = Path(__file__).resolve().parents[2] / "sim" / "scenarios" / "small.yml"


async def test_githubkit_drives_the_sim_end_to_end(
    sim_factory: Callable[..., Awaitable[Any]], receiver: Receiver
) -> None:
    server = await sim_factory(SCENARIO, webhook_url=receiver.url)
    cache = MemCacheStrategy()  # tokens of this sim only, not the process-wide default cache
    app_gh = GitHub(
        AppAuthStrategy(server.app_id, server.private_key_pem),
        base_url=server.base_url,
        timeout=10,
        cache_strategy=cache,
        auto_retry=False,
    )
    # App JWT: list installations.
    installations = (await app_gh.rest.apps.async_list_installations()).parsed_data
    assert [inst.id for inst in installations] == [1]
    assert installations[0].account is not None

    gh = GitHub(
        AppInstallationAuthStrategy(server.app_id, server.private_key_pem, installation_id=1),
        base_url=server.base_url,
        timeout=10,
        cache_strategy=cache,
        auto_retry=False,
    )
    # Installation token: repositories, then REST pulls (typed parse must succeed).
    repos = (await gh.rest.apps.async_list_repos_accessible_to_installation()).parsed_data
    assert sorted(r.full_name for r in repos.repositories) == ["acme/gadgets", "acme/widgets"]
    pulls = (await gh.rest.pulls.async_list("acme", "widgets", per_page=100)).parsed_data
    assert sorted(p.number for p in pulls) == list(range(10, 21))
    pull = (await gh.rest.pulls.async_get("acme", "widgets", 14)).parsed_data
    assert pull.title == "New API" and pull.user is not None and pull.user.login == "grace"

    # A conditional request: githubkit revalidates with If-None-Match; the sim answers 304,
    # githubkit hands back the cached body, and the sim does not charge it.
    before = await server.control.accounting()
    again = await gh.rest.pulls.async_get("acme", "widgets", 14)
    assert again.raw_response.extensions.get("hishel_from_cache") is True
    assert again.parsed_data.number == 14
    after = await server.control.accounting()
    endpoint = "GET /repos/{owner}/{repo}/pulls/{pull_number}"
    assert (
        after["conditional_hits"].get(endpoint, 0)
        == before["conditional_hits"].get(endpoint, 0) + 1
    )
    assert after["charged"][endpoint] == before["charged"][endpoint]

    # GraphQL with GitHub's cost accounting.
    data = await gh.async_graphql(OPEN_PULL_REQUESTS, {"owner": "acme", "name": "widgets"})
    numbers = sorted(n["number"] for n in data["repository"]["pullRequests"]["nodes"])
    assert numbers == list(range(10, 21))
    by_number = {n["number"]: n for n in data["repository"]["pullRequests"]["nodes"]}
    assert by_number[11]["commits"]["nodes"][0]["commit"]["statusCheckRollup"]["state"] == "FAILURE"
    assert by_number[13]["mergeable"] == "CONFLICTING"
    assert by_number[14]["reviewDecision"] == "CHANGES_REQUESTED"
    assert by_number[18]["closingIssuesReferences"]["nodes"][0]["stateReason"] == "NOT_PLANNED"
    assert by_number[19]["author"] == {"__typename": "Bot", "login": "dependabot"}
    usage = await server.control.accounting()
    assert usage["graphql_points"]["installation:1"] == data["rateLimit"]["cost"]

    # A write: the sim emits a signed issue_comment webhook to our receiver.
    created = await gh.rest.issues.async_create_comment("acme", "widgets", 11, body="On it.")
    assert created.status_code == 201
    await asyncio.wait_for(receiver.arrived.wait(), timeout=10)
    headers, body = receiver.received[0]
    assert headers["X-GitHub-Event"] == "issue_comment"
    assert verify(server.webhook_secret, body, headers["X-Hub-Signature-256"])
    assert not verify("another secret", body, headers["X-Hub-Signature-256"])
    payload = json.loads(body)
    assert payload["action"] == "created"
    assert payload["comment"]["body"] == "On it."
    assert payload["installation"]["id"] == 1
    assert payload["repository"]["full_name"] == "acme/widgets"
