"""GraphQL mutations prsteward sends (draft / ready for review), the fixes an agent makes (a push
that resolves a conflict, a review re-request) and a change to a repository file."""

from __future__ import annotations

import ast
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from graphql import GraphQLError, OperationDefinitionNode, parse, validate

from sim.graphql_api import github_schema
from sim.reference_agent import work_on
from sim.state import node_id
from tests.sim.helpers import SMALL_SCENARIO, installation_client

SimFactory = Callable[..., Awaitable[Any]]
ROOT = Path(__file__).resolve().parents[2]
CONVERT = (
    "mutation($id: ID!) { convertPullRequestToDraft(input: {pullRequestId: $id}) "
    "{ clientMutationId pullRequest { id number isDraft } } }"
)
READY = (
    "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id, "
    'clientMutationId: "m1"}) { clientMutationId pullRequest { isDraft } } }'
)


def deliveries(server: Any) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(d.event, d.action, json.loads(d.body)) for d in server.sim.webhooks.log]


async def pulls_of(control: Any) -> dict[int, dict[str, Any]]:
    state = await control.state("acme/widgets")
    return {p["number"]: p for p in state["repositories"][0]["pulls"]}


def pr_node(server: Any, number: int, repo: str = "widgets") -> str:
    found = server.sim.state.repo("acme", repo)
    return node_id("PR", found.pulls[number].id)


# ----------------------------------------------------------------------------- mutations


async def test_convert_to_draft_and_back_answer_the_schemas_payload_charge_and_emit(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    node = pr_node(server, 11)
    async with installation_client(server) as gh:
        converted = await gh.post("/graphql", json={"query": CONVERT, "variables": {"id": node}})
        ready = await gh.post("/graphql", json={"query": READY, "variables": {"id": node}})
    assert converted.status_code == 200
    assert converted.json() == {
        "data": {
            "convertPullRequestToDraft": {
                "clientMutationId": None,
                "pullRequest": {"id": node, "number": 11, "isDraft": True},
            }
        }
    }
    assert ready.json() == {
        "data": {
            "markPullRequestReadyForReview": {
                "clientMutationId": "m1",
                "pullRequest": {"isDraft": False},
            }
        }
    }
    assert converted.headers["x-ratelimit-resource"] == "graphql"
    usage = await server.control.accounting()
    assert usage["graphql_points"] == {"installation:1": 2}  # 1 point each (primary formula)
    assert usage["secondary_points"]["installation:1 graphql"] == 10  # weight 5 each
    assert usage["writes"] == {
        "POST /graphql convertPullRequestToDraft": 1,
        "POST /graphql markPullRequestReadyForReview": 1,
    }
    await server.control.drain_webhooks()
    pull_events = [(e, a) for e, a, _ in deliveries(server) if e == "pull_request"]
    assert pull_events == [
        ("pull_request", "converted_to_draft"),
        ("pull_request", "ready_for_review"),
    ]
    sender = deliveries(server)[0][2]["sender"]["login"]
    assert sender == server.sim.bot_login


async def test_a_mutation_on_an_unknown_node_answers_githubs_not_found(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    other = await sim_factory(SMALL_SCENARIO)  # a PR this installation cannot see
    hidden = node_id("PR", 999_999)
    async with installation_client(server) as gh:
        for bad in ("PR_nope", hidden, "I_" + pr_node(other, 11)[3:], "not-an-id"):
            answer = await gh.post("/graphql", json={"query": CONVERT, "variables": {"id": bad}})
            body = answer.json()
            assert answer.status_code == 200
            assert body["data"] == {"convertPullRequestToDraft": None}
            [error] = body["errors"]
            assert error["type"] == "NOT_FOUND"
            assert error["path"] == ["convertPullRequestToDraft"]
            assert error["locations"] == [{"line": 1, "column": 22}]
            assert error["message"] == f"Could not resolve to a node with the global id of '{bad}'"
    assert server.sim.state.repo("acme", "widgets").pulls[11].draft is False
    assert (await server.control.accounting())["writes"] == {}


async def test_a_mutation_without_pull_requests_write_is_forbidden(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.event(
        "new_permissions_accepted", installation=1, permissions={"pull_requests": "read"}
    )
    async with installation_client(server) as gh:
        answer = await gh.post(
            "/graphql", json={"query": CONVERT, "variables": {"id": pr_node(server, 11)}}
        )
    [error] = answer.json()["errors"]
    assert error["type"] == "FORBIDDEN"
    assert error["message"] == "Resource not accessible by integration"
    assert server.sim.state.repo("acme", "widgets").pulls[11].draft is False


async def test_prstewards_convert_to_draft_works_against_the_sim(sim_factory: SimFactory) -> None:
    from bot.executor import GitHubActions
    from bot.github import GitHubApp

    server = await sim_factory(SMALL_SCENARIO)
    app = GitHubApp(
        app_id=server.app_id, private_key=server.private_key_pem, api_url=server.base_url
    )
    actions = GitHubActions(app.installation(1))
    await actions.convert_to_draft("acme/widgets", pr_node(server, 15))
    assert server.sim.state.repo("acme", "widgets").pulls[15].draft is True
    usage = await server.control.accounting()
    assert usage["writes"] == {"POST /graphql convertPullRequestToDraft": 1}
    assert usage["graphql_points"] == {"installation:1": 1}


def graphql_literals(path: Path) -> list[str]:
    """String constants in ``path`` that are GraphQL operations (adjacent literals joined)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            if text.startswith(("mutation", "query")) and "{" in text:
                try:
                    document = parse(text)
                except GraphQLError:
                    continue
                if any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
                    found.append(text)
    return found


def test_every_graphql_document_in_prsteward_validates_against_githubs_schema() -> None:
    documents = {
        f"{path.relative_to(ROOT)}: {text[:60]}": text
        for path in sorted((ROOT / "bot").rglob("*.py"))
        for text in graphql_literals(path)
    }
    mutations = [name for name, text in documents.items() if text.startswith("mutation")]
    assert any("convertPullRequestToDraft" in documents[name] for name in mutations), documents
    problems = {
        name: [error.message for error in validate(github_schema(), parse(text))]
        for name, text in documents.items()
    }
    assert {name: errors for name, errors in problems.items() if errors} == {}


def test_the_scan_catches_a_mutation_github_does_not_have(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        'Q = (\n    "mutation($id: ID!) { closePullRequestNow("\n    "id: $id) { ok } }"\n)\n'
    )
    [text] = graphql_literals(source)
    assert validate(github_schema(), parse(text))


# ----------------------------------------------------------------------------- agent fixes


async def test_a_rebasing_push_resolves_a_conflict_after_the_unknown_period(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    control = server.control
    await control.event("base_moved", repo="acme/widgets", conflicts=[11])
    await control.advance("1m")
    before = await pulls_of(control)
    assert before[11]["mergeable"] == "CONFLICTING"
    assert before[11]["merge_state_status"] == "DIRTY"

    plain = await control.event("push", repo="acme/widgets", pr=11)
    await control.advance("1m")
    still = await pulls_of(control)
    assert still[11]["mergeable"] == "CONFLICTING"  # an ordinary push keeps the conflict

    pushed = await control.event("push", repo="acme/widgets", pr=11, rebase=True)
    assert pushed["sha"] != plain["sha"]
    during = await pulls_of(control)
    assert during[11]["mergeable"] == "UNKNOWN"
    await control.advance("1m")
    after = await pulls_of(control)
    assert after[11]["mergeable"] == "MERGEABLE"
    state = await control.state("acme/widgets")
    repo_state = state["repositories"][0]
    pull = next(p for p in repo_state["pulls"] if p["number"] == 11)
    assert pull["base_sha"] == repo_state["branches"]["main"]  # on the current base: not BEHIND
    assert pull["merge_state_status"] != "BEHIND"

    # `resolves_conflict` says the same.
    await control.event("base_moved", repo="acme/widgets", conflicts=[13])
    await control.event("push", repo="acme/widgets", pr=13, resolves_conflict=True)
    await control.advance("1m")
    assert (await pulls_of(control))[13]["mergeable"] == "MERGEABLE"


async def test_review_can_be_re_requested_by_event_and_rest(sim_factory: SimFactory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    control = server.control
    result = await control.event("request_review", repo="acme/widgets", pr=14, reviewers=["alice"])
    assert result["requested"] == ["alice"]
    again = await control.event("request_review", repo="acme/widgets", pr=14, reviewer="alice")
    assert again["requested"] == []  # already requested: no second webhook
    state = await control.state("acme/widgets")
    pull = next(p for p in state["repositories"][0]["pulls"] if p["number"] == 14)
    assert pull["requested_reviewers"] == ["alice"]
    assert pull["review_decision"] == "CHANGES_REQUESTED"  # until alice reviews again
    async with installation_client(server) as gh:
        rest = await gh.post(
            "/repos/acme/widgets/pulls/15/requested_reviewers", json={"reviewers": ["bob"]}
        )
        author = await gh.post(
            "/repos/acme/widgets/pulls/15/requested_reviewers", json={"reviewers": ["heidi"]}
        )
    assert rest.status_code == 201
    assert [u["login"] for u in rest.json()["requested_reviewers"]] == ["bob"]
    assert author.status_code == 422
    assert author.json()["message"] == "Review cannot be requested from pull request author."
    await control.drain_webhooks()
    requested = [
        (p["number"], p["requested_reviewer"]["login"], p["sender"]["login"])
        for e, a, p in deliveries(server)
        if (e, a) == ("pull_request", "review_requested")
    ]
    assert requested == [(14, "alice", "grace"), (15, "bob", server.sim.bot_login)]


async def test_a_file_change_is_a_push_to_the_default_branch(sim_factory: SimFactory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    control = server.control
    path = ".github/prsteward.yml"
    changed = await control.event("file", repo="acme/widgets", path=path, content="mode: act\n")
    await control.event("file", repo="acme/widgets", path="docs/new.md", content="# New\n")
    await control.event("file", repo="acme/widgets", path="docs/new.md", delete=True)
    async with installation_client(server) as gh:
        contents = await gh.get(f"/repos/acme/widgets/contents/{path}")
        gone = await gh.get("/repos/acme/widgets/contents/docs/new.md")
    import base64

    assert base64.b64decode(contents.json()["content"]).decode() == "mode: act\n"
    assert gone.status_code == 404
    await control.drain_webhooks()
    pushes = [p for e, _, p in deliveries(server) if e == "push"]
    assert [p["ref"] for p in pushes] == ["refs/heads/main"] * 3
    assert pushes[0]["after"] == changed["sha"]
    assert [(c["added"], c["modified"], c["removed"]) for p in pushes for c in p["commits"]] == [
        ([], [path], []),
        (["docs/new.md"], [], []),
        ([], [], ["docs/new.md"]),
    ]
    assert pushes[0]["head_commit"]["message"] == f"Update {path}"
    state = await control.state("acme/widgets")
    assert state["repositories"][0]["branches"]["main"] == pushes[-1]["after"]
    bad = await httpx.AsyncClient(base_url=server.base_url).post(
        "/_sim/events", json={"type": "file", "repo": "acme/widgets", "path": "x"}
    )
    assert bad.status_code == 400


# ----------------------------------------------------------------------------- reference agent


def fake_prsteward() -> httpx.AsyncClient:
    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    return httpx.AsyncClient(base_url="http://prsteward", transport=httpx.MockTransport(handle))


async def test_the_reference_agents_honest_fixes_rebase_and_re_request(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    async with fake_prsteward() as api, httpx.AsyncClient(base_url=server.base_url) as sim:
        conflict = {
            "job_id": 1,
            "repository": "acme/widgets",
            "number": 13,
            "brief": {"trigger": {"kind": "conflict"}, "budget": {"tokens": 1000}},
        }
        review = {
            "job_id": 2,
            "repository": "acme/widgets",
            "number": 14,
            "brief": {"trigger": {"kind": "changes_requested"}, "budget": {"tokens": 1000}},
        }
        fixed = await work_on(conflict, "honest-fix", api, sim)
        answered = await work_on(review, "honest-fix", api, sim)
    assert fixed.reported is not None and fixed.reported["outcome"] == "done"
    assert answered.reported is not None and answered.reported["outcome"] == "done"
    await server.control.advance("1m")
    state = await server.control.state("acme/widgets")
    pulls = {p["number"]: p for p in state["repositories"][0]["pulls"]}
    assert pulls[13]["mergeable"] == "MERGEABLE"
    assert pulls[13]["head_sha"] == fixed.pushed_shas[0]
    assert pulls[13]["rollup"] == "SUCCESS"
    assert pulls[14]["requested_reviewers"] == ["alice"]
    await server.control.drain_webhooks()
    assert ("pull_request", "review_requested") in {(e, a) for e, a, _ in deliveries(server)}


async def test_secondary_point_limits_weigh_writes_and_mutations_five(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.set_limits(
        graphql_secondary_points_per_minute=10, rest_secondary_points_per_minute=6
    )
    node = pr_node(server, 11)
    async with installation_client(server) as gh:
        mutations = [
            await gh.post("/graphql", json={"query": q, "variables": {"id": node}})
            for q in (CONVERT, READY, CONVERT)
        ]
        gets = [await gh.get("/repos/acme/widgets/pulls/11") for _ in range(2)]
        write = await gh.post("/repos/acme/widgets/issues/11/comments", json={"body": "hi"})
        third_get = await gh.get("/repos/acme/widgets/pulls/11")
        await server.control.advance("61s")
        after_a_minute = await gh.post(
            "/graphql", json={"query": CONVERT, "variables": {"id": node}}
        )
    assert [m.status_code for m in mutations] == [200, 200, 403]
    assert mutations[2].headers["retry-after"] == "60"
    assert "secondary rate limit" in mutations[2].json()["message"]
    assert [g.status_code for g in gets] == [200, 200]
    assert write.status_code == 403  # 2 + 5 > 6
    assert third_get.status_code == 200  # 3 points
    assert after_a_minute.status_code == 200
    usage = await server.control.accounting()
    assert usage["secondary_points"]["installation:1 graphql"] == 15
    assert usage["secondary_points"]["installation:1 rest"] == 3


async def test_the_control_client_has_the_fix_and_file_events(sim_factory: SimFactory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    control = server.control
    sha = await control.push("acme/widgets", 13, rebase=True)
    assert await control.request_review("acme/widgets", 14, ["alice"]) == ["alice"]
    branch = await control.change_file("acme/widgets", ".github/prsteward.yml", "mode: act\n")
    await control.change_file("acme/widgets", ".github/prsteward.yml", None)
    await control.advance("1m")
    pulls = await pulls_of(control)
    assert pulls[13]["head_sha"] == sha and pulls[13]["mergeable"] == "MERGEABLE"
    assert branch != (await control.state("acme/widgets"))["repositories"][0]["branches"]["main"]
    assert ".github/prsteward.yml" not in server.sim.state.repo("acme", "widgets").files
