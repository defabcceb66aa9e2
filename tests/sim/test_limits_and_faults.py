"""Rate limits, conditional requests, pagination, GraphQL cost and limits, injected faults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from bot.queries import OPEN_PULL_REQUESTS, pull_requests_by_number
from tests.sim.helpers import SMALL_SCENARIO, app_jwt, installation_client, installation_token

Factory = Callable[..., Awaitable[Any]]


async def test_primary_rest_limit_per_installation_then_reset_after_an_hour(
    sim_factory: Factory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.set_limits(rest_per_hour=3)
    async with installation_client(server) as gh:
        answers = [await gh.get("/repos/acme/widgets") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 403]
        assert answers[2].headers["x-ratelimit-remaining"] == "0"
        assert answers[3].json()["message"] == "API rate limit exceeded for installation ID 1."
        assert answers[3].headers["x-ratelimit-resource"] == "core"
        reset = int(answers[3].headers["x-ratelimit-reset"])
        assert reset == (await server.control.clock())["epoch"] + 3600
        free = await gh.get("/rate_limit")  # never charged, even when exhausted
        assert free.status_code == 200 and free.json()["resources"]["core"]["remaining"] == 0
        await server.control.advance("1h")
        assert (await gh.get("/repos/acme/widgets")).status_code == 200


async def test_conditional_requests_answer_304_uncharged_and_etags_are_per_token(
    sim_factory: Factory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    async with installation_client(server) as gh:
        first = await gh.get("/repos/acme/widgets/pulls/14")
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        by_etag = await gh.get("/repos/acme/widgets/pulls/14", headers={"If-None-Match": etag})
        by_date = await gh.get(
            "/repos/acme/widgets/pulls/14", headers={"If-Modified-Since": modified}
        )
        assert (by_etag.status_code, by_date.status_code) == (304, 304)
        assert by_etag.headers["ETag"] == etag and by_etag.content == b""
        # A change makes the same validators stale.
        await server.control.event("comment", repo="acme/widgets", pr=14, user="bob", body="hm")
        await server.control.advance("1m")
        await server.control.event("edit", repo="acme/widgets", pr=14, title="New API v2")
        changed = await gh.get("/repos/acme/widgets/pulls/14", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.json()["title"] == "New API v2"
    other_token = await installation_token(server)
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"token {other_token}"}
    ) as gh2:
        fresh = await gh2.get("/repos/acme/widgets/pulls/14")
        again = await gh2.get("/repos/acme/widgets/pulls/14", headers={"If-None-Match": etag})
        assert again.status_code == 200  # GitHub's ETags are specific to the token
        assert fresh.headers["ETag"] != etag
    usage = await server.control.accounting()
    endpoint = "GET /repos/{owner}/{repo}/pulls/{pull_number}"
    assert usage["conditional_hits"][endpoint] == 2
    assert usage["requests"][endpoint] == 6
    assert usage["charged"][endpoint] == 4


async def test_if_modified_since_before_a_change_gets_the_new_body(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    pull = server.sim.state.repo("acme", "widgets").pulls[10]
    before = format_datetime(pull.updated_at, usegmt=True)
    await server.control.advance("1h")
    await server.control.event("label", repo="acme/widgets", pr=10, name="bug")
    async with installation_client(server) as gh:
        answer = await gh.get("/repos/acme/widgets/pulls/10", headers={"If-Modified-Since": before})
    assert answer.status_code == 200
    assert [label["name"] for label in answer.json()["labels"]] == ["bug"]


async def test_link_pagination_walks_every_page(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    numbers: list[int] = []
    async with installation_client(server) as gh:
        url: str | None = "/repos/acme/widgets/pulls?per_page=4&state=all"
        pages = 0
        while url:
            answer = await gh.get(url)
            numbers += [p["number"] for p in answer.json()]
            pages += 1
            link = answer.headers.get("Link", "")
            url = next(
                (
                    part.split(";")[0].strip("<> ")
                    for part in link.split(",")
                    if 'rel="next"' in part
                ),
                None,
            )
    assert pages == 3
    assert sorted(numbers) == list(range(9, 21))


async def test_graphql_cost_follows_githubs_formula(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    async with installation_client(server) as gh:
        answer = await gh.post(
            "/graphql",
            json={"query": OPEN_PULL_REQUESTS, "variables": {"owner": "acme", "name": "widgets"}},
        )
        by_number = await gh.post(
            "/graphql",
            json={
                "query": pull_requests_by_number([10, 11]),
                "variables": {"owner": "acme", "name": "widgets"},
            },
        )
    rate = answer.json()["data"]["rateLimit"]
    # pullRequests 1 + 100 x (labels, assignees, reviewRequests, commits, latestReviews, comments,
    # closingIssuesReferences) + 100 x 1 (contexts) + 100 x 5 (issue assignees) = 1,301 -> 13.
    assert rate["cost"] == 13
    assert rate["remaining"] == 5000 - 13 and rate["used"] == 13 and rate["limit"] == 5000
    assert answer.headers["x-ratelimit-resource"] == "graphql"
    # Two PRs by number: 2 x (7 + 1 + 5) = 26 requests -> rounds to 0, at least 1.
    assert by_number.json()["data"]["rateLimit"]["cost"] == 1
    assert set(by_number.json()["data"]["repository"]) == {"pr10", "pr11"}
    usage = await server.control.accounting()
    assert usage["graphql_points"]["installation:1"] == 14


@pytest.mark.parametrize(
    ("query", "error_type"),
    [
        (
            '{ repository(owner: "acme", name: "widgets") { pullRequests(first: 101) { totalCount } } }',
            "EXCESSIVE_PAGINATION",
        ),
        (
            '{ repository(owner: "acme", name: "widgets") { pullRequests(last: 0) { totalCount } } }',
            "EXCESSIVE_PAGINATION",
        ),
        (
            '{ repository(owner: "acme", name: "widgets") { pullRequests { totalCount } } }',
            "MISSING_PAGINATION_BOUNDARIES",
        ),
        (
            '{ repository(owner: "acme", name: "widgets") { pullRequests(first: 100) { nodes { '
            "comments(first: 100) { nodes { reactions(first: 100) { totalCount } } } } } } }",
            "MAX_NODE_LIMIT_EXCEEDED",
        ),
    ],
    ids=[
        "first 101 -> excessive",
        "last 0 -> excessive",
        "no first/last -> missing",
        "1M nodes -> node limit",
    ],
)
async def test_graphql_limits_answer_githubs_errors_uncharged(
    sim_server: Any, query: str, error_type: str
) -> None:
    async with installation_client(sim_server) as gh:
        answer = await gh.post("/graphql", json={"query": query})
    assert answer.status_code == 200
    body = answer.json()
    assert "data" not in body
    assert body["errors"][0]["type"] == error_type
    assert (await sim_server.control.accounting())["graphql_points"] == {}


async def test_graphql_primary_limit_answers_200_rate_limited(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.set_limits(graphql_points_per_hour=20)
    variables = {"owner": "acme", "name": "widgets"}
    async with installation_client(server) as gh:
        first = await gh.post(
            "/graphql", json={"query": OPEN_PULL_REQUESTS, "variables": variables}
        )
        second = await gh.post(
            "/graphql", json={"query": OPEN_PULL_REQUESTS, "variables": variables}
        )
        assert first.json()["data"]["rateLimit"]["remaining"] == 7
        assert second.status_code == 200
        assert second.json()["errors"][0]["type"] == "RATE_LIMITED"
        assert second.headers["x-ratelimit-remaining"] == "0"
        await server.control.advance("61m")
        third = await gh.post(
            "/graphql", json={"query": OPEN_PULL_REQUESTS, "variables": variables}
        )
        assert third.json()["data"]["rateLimit"]["remaining"] == 7


async def test_graphql_unknown_repository_is_null_with_not_found(sim_server: Any) -> None:
    async with installation_client(sim_server) as gh:
        answer = await gh.post(
            "/graphql",
            json={"query": OPEN_PULL_REQUESTS, "variables": {"owner": "acme", "name": "nope"}},
        )
    body = answer.json()
    assert body["data"]["repository"] is None
    assert body["errors"][0]["type"] == "NOT_FOUND"


async def test_graphql_pages_through_with_cursors(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    query = """query($cursor: String) { repository(owner: "acme", name: "widgets") {
      pullRequests(states: OPEN, first: 4, after: $cursor, orderBy: {field: CREATED_AT, direction: ASC}) {
        pageInfo { hasNextPage endCursor } nodes { number } } } }"""
    seen: list[int] = []
    cursor = None
    async with installation_client(server) as gh:
        while True:
            page = (
                await gh.post("/graphql", json={"query": query, "variables": {"cursor": cursor}})
            ).json()
            connection = page["data"]["repository"]["pullRequests"]
            seen += [node["number"] for node in connection["nodes"]]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            cursor = connection["pageInfo"]["endCursor"]
    assert sorted(seen) == list(range(10, 21)) and len(seen) == len(set(seen))


async def test_content_creation_secondary_limit_with_retry_after(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.set_limits(content_creation_per_minute=2)
    async with installation_client(server) as gh:
        answers = [
            await gh.post("/repos/acme/widgets/issues/10/comments", json={"body": f"n{i}"})
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [201, 201, 403]
        assert answers[2].headers["retry-after"] == "60"
        assert "secondary rate limit" in answers[2].json()["message"]
        await server.control.advance("61s")
        assert (
            await gh.post("/repos/acme/widgets/issues/10/comments", json={"body": "later"})
        ).status_code == 201


async def test_injected_faults_then_recovery(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.add_fault("status", path="/pulls$", status=502, count=2)
    await server.control.add_fault(
        "secondary", path="/contents/", status=429, retry_after=17, count=1
    )
    async with installation_client(server) as gh:
        statuses = [(await gh.get("/repos/acme/widgets/pulls")).status_code for _ in range(3)]
        assert statuses == [502, 502, 200]
        limited = await gh.get("/repos/acme/widgets/contents/.github/prsteward.yml")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "17"
        assert (
            await gh.get("/repos/acme/widgets/contents/.github/prsteward.yml")
        ).status_code == 200
    usage = await server.control.accounting()
    assert usage["faults_injected"] == {
        "status GET /repos/{owner}/{repo}/pulls": 2,
        "secondary GET /repos/{owner}/{repo}/contents/{path}": 1,
    }


async def test_a_hanging_request_times_the_client_out(sim_server: Any) -> None:
    await sim_server.control.add_fault("hang", path="/installation/repositories", seconds=2)
    token = await installation_token(sim_server)
    async with httpx.AsyncClient(
        base_url=sim_server.base_url, headers={"Authorization": f"token {token}"}
    ) as gh:
        with pytest.raises(httpx.ReadTimeout):
            await gh.get("/installation/repositories", timeout=0.3)
        assert (await gh.get("/installation/repositories", timeout=10)).status_code == 200


async def test_app_jwt_is_checked_against_the_apps_key(
    sim_server: Any, sim_private_key_pem: str
) -> None:
    from sim.runner import generate_private_key_pem

    class Impostor:
        app_id = sim_server.app_id
        private_key_pem = generate_private_key_pem()

    async with httpx.AsyncClient(base_url=sim_server.base_url) as client:
        good = await client.get(
            "/app/installations", headers={"Authorization": f"Bearer {app_jwt(sim_server)}"}
        )
        forged = await client.get(
            "/app/installations", headers={"Authorization": f"Bearer {app_jwt(Impostor)}"}
        )
        too_long = await client.get(
            "/app/installations",
            headers={"Authorization": f"Bearer {app_jwt(sim_server, lifetime=3600)}"},
        )
        token = (
            await client.post(
                "/app/installations/1/access_tokens",
                headers={"Authorization": f"Bearer {app_jwt(sim_server)}"},
            )
        ).json()
        token_on_app_route = await client.get(
            "/app/installations", headers={"Authorization": f"token {token['token']}"}
        )
    assert good.status_code == 200
    assert forged.status_code == 401
    assert too_long.status_code == 401 and "too far in the future" in too_long.json()["message"]
    assert token_on_app_route.status_code == 401
    assert token["expires_at"] > (await sim_server.control.clock())["now"]


async def test_repeated_reads_follow_every_change(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    async with installation_client(server) as gh:
        before = (await gh.get("/repos/acme/widgets/pulls/20")).json()
        assert before["mergeable_state"] == "clean"
        await server.control.event("ci", repo="acme/widgets", pr=20, conclusion="failure")
        after_ci = (await gh.get("/repos/acme/widgets/pulls/20")).json()
        assert after_ci["mergeable_state"] == "blocked"
        comment = (
            await gh.post("/repos/acme/widgets/issues/20/comments", json={"body": "x"})
        ).json()
        listed = (await gh.get("/repos/acme/widgets/issues/20/comments")).json()
        assert [c["id"] for c in listed] == [comment["id"]]
        await gh.post(
            f"/repos/acme/widgets/issues/comments/{comment['id']}/reactions",
            json={"content": "eyes"},
        )
        relisted = (await gh.get("/repos/acme/widgets/issues/20/comments")).json()
        assert relisted[0]["reactions"]["eyes"] == 1
        await server.control.event("merge", repo="acme/widgets", pr=20)
        open_numbers = [
            p["number"] for p in (await gh.get("/repos/acme/widgets/pulls?per_page=100")).json()
        ]
        assert 20 not in open_numbers


async def test_repeated_graphql_sweeps_follow_changes_and_charge_each_time(
    sim_factory: Factory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    variables = {"owner": "acme", "name": "widgets"}
    async with installation_client(server) as gh:

        async def sweep() -> dict[str, Any]:
            answer = await gh.post(
                "/graphql", json={"query": OPEN_PULL_REQUESTS, "variables": variables}
            )
            return dict(answer.json()["data"])

        first, second = await sweep(), await sweep()
        assert first["repository"] == second["repository"]
        assert (first["rateLimit"]["remaining"], second["rateLimit"]["remaining"]) == (4987, 4974)
        await server.control.event(
            "review", repo="acme/widgets", pr=10, user="alice", state="APPROVED"
        )
        third = await sweep()
    decisions = {
        n["number"]: n["reviewDecision"] for n in third["repository"]["pullRequests"]["nodes"]
    }
    assert decisions[10] == "APPROVED"
    assert (await server.control.accounting())["graphql_points"]["installation:1"] == 39
