"""The sim against GitHub's own published descriptions (offline copies in tests/data and
sim/data): REST routes and answers vs `@octokit/openapi`, prsteward's GraphQL documents vs
`@octokit/graphql-schema`, webhook payloads vs `@octokit/webhooks-examples`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from graphql import parse, validate

from bot.queries import ALL_DOCUMENTS
from sim.graphql_api import github_schema
from sim.rest import ROUTES
from tests.sim.helpers import SMALL_SCENARIO, app_jwt, installation_client

DATA = Path(__file__).resolve().parents[1] / "data"
OPENAPI = json.loads((DATA / "openapi" / "api.github.com.subset.json").read_text())
EXAMPLES = {
    entry["name"]: entry["examples"]
    for entry in json.loads(
        (DATA / "octokit-webhooks-examples" / "api.github.com" / "index.json").read_text()
    )
}


# ----------------------------------------------------------------------------- REST routes


def test_every_sim_route_exists_with_that_method_in_githubs_rest_description() -> None:
    served = {(route.method.lower(), route.path) for route in ROUTES}
    described = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    assert OPENAPI["missing"] == []
    # A route added to sim/rest.py without regenerating the subset shows up here.
    assert served - described == set(), (
        "run tests/data/openapi/make_subset.py (see tests/data/README.md)"
    )


def validate_answer(method: str, path: str, status: int, body: Any) -> None:
    responses = OPENAPI["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not described"
    schema = responses[str(status)]
    if schema is None:
        return
    jsonschema.Draft202012Validator(
        {"allOf": [schema], "components": OPENAPI["components"]}
    ).validate(body)


# Every REST route, called as prsteward calls it: (method, GitHub path template, concrete URL,
# JSON body, expected status, "app" for App JWT routes).
CALLS: list[tuple[str, str, str, dict[str, Any] | list[Any] | None, int, str]] = [
    ("GET", "/rate_limit", "/rate_limit", None, 200, "installation"),
    ("GET", "/app", "/app", None, 200, "app"),
    ("GET", "/app/installations", "/app/installations", None, 200, "app"),
    ("GET", "/app/installations/{installation_id}", "/app/installations/1", None, 200, "app"),
    (
        "GET",
        "/repos/{owner}/{repo}/installation",
        "/repos/acme/widgets/installation",
        None,
        200,
        "app",
    ),
    (
        "POST",
        "/app/installations/{installation_id}/access_tokens",
        "/app/installations/1/access_tokens",
        None,
        201,
        "app",
    ),
    ("GET", "/installation/repositories", "/installation/repositories", None, 200, "installation"),
    ("GET", "/repos/{owner}/{repo}", "/repos/acme/widgets", None, 200, "installation"),
    (
        "GET",
        "/repos/{owner}/{repo}/pulls",
        "/repos/acme/widgets/pulls?per_page=5",
        None,
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/pulls/{pull_number}",
        "/repos/acme/widgets/pulls/14",
        None,
        200,
        "installation",
    ),
    (
        "PATCH",
        "/repos/{owner}/{repo}/pulls/{pull_number}",
        "/repos/acme/widgets/pulls/17",
        {"state": "closed"},
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/pulls/{pull_number}/files",
        "/repos/acme/widgets/pulls/14/files",
        None,
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
        "/repos/acme/widgets/pulls/14/reviews",
        None,
        200,
        "installation",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers",
        "/repos/acme/widgets/pulls/15/requested_reviewers",
        {"reviewers": ["alice"]},
        201,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/issues/{issue_number}",
        "/repos/acme/widgets/issues/2",
        None,
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/issues",
        "/repos/acme/widgets/issues?state=all",
        None,
        200,
        "installation",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues",
        "/repos/acme/widgets/issues",
        {"title": "prsteward summary", "body": "..."},
        201,
        "installation",
    ),
    (
        "PATCH",
        "/repos/{owner}/{repo}/issues/{issue_number}",
        "/repos/acme/widgets/issues/2",
        {"state": "closed", "state_reason": "not_planned"},
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        "/repos/acme/widgets/issues/15/comments",
        None,
        200,
        "installation",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        "/repos/acme/widgets/issues/11/comments",
        {"body": "<!-- prsteward -->\nCI failed."},
        201,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        "/repos/acme/widgets/issues/comments/{bot_comment}",
        None,
        200,
        "installation",
    ),
    (
        "PATCH",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        "/repos/acme/widgets/issues/comments/{bot_comment}",
        {"body": "edited"},
        200,
        "installation",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        "/repos/acme/widgets/issues/comments/{bot_comment}/reactions",
        {"content": "eyes"},
        201,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        "/repos/acme/widgets/issues/comments/{bot_comment}/reactions",
        None,
        200,
        "installation",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/labels",
        "/repos/acme/widgets/issues/13/labels",
        {"labels": ["needs-rebase"]},
        200,
        "installation",
    ),
    (
        "DELETE",
        "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
        "/repos/acme/widgets/issues/13/labels/needs-rebase",
        None,
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/commits/{ref}/check-runs",
        "/repos/acme/widgets/commits/{sha11}/check-runs",
        None,
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/commits/{ref}/status",
        "/repos/acme/widgets/commits/{sha19}/status",
        None,
        200,
        "installation",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
        "/repos/acme/widgets/actions/runs/{suite11}/rerun-failed-jobs",
        None,
        201,
        "installation",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/check-suites/{check_suite_id}/rerequest",
        "/repos/acme/widgets/check-suites/{suite12}/rerequest",
        None,
        201,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/contents/{path}",
        "/repos/acme/widgets/contents/.github/prsteward.yml",
        None,
        200,
        "installation",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        "/repos/acme/widgets/collaborators/alice/permission",
        None,
        200,
        "installation",
    ),
    ("GET", "/app/hook/deliveries", "/app/hook/deliveries?per_page=2", None, 200, "app"),
    ("GET", "/app/hook/deliveries/{delivery_id}", "/app/hook/deliveries/1", None, 200, "app"),
    (
        "POST",
        "/app/hook/deliveries/{delivery_id}/attempts",
        "/app/hook/deliveries/1/attempts",
        None,
        202,
        "app",
    ),
]


async def test_every_rest_answer_validates_against_githubs_response_schema(
    sim_factory: Callable[..., Awaitable[Any]],
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    state = server.sim.state
    repo = state.repo("acme", "widgets")
    assert repo is not None
    # A file list for the files endpoint.
    from sim.state import PullFile

    repo.pulls[14].files = [PullFile("api.py", "modified", 3, 1, "@@ -1 +1,3 @@\n+x = 1\n")]
    async with (
        installation_client(server) as gh,
        httpx.AsyncClient(base_url=server.base_url) as app_client,
    ):
        app_headers = {"Authorization": f"Bearer {app_jwt(server)}"}
        substitutions = {
            "sha11": repo.pulls[11].head_sha,
            "sha19": repo.pulls[19].head_sha,
            "suite11": str(state.check_runs_for(repo, repo.pulls[11].head_sha)[0].check_suite_id),
            "suite12": str(state.check_runs_for(repo, repo.pulls[12].head_sha)[0].check_suite_id),
        }
        exercised = set()
        for method, template, url, body, expected, auth in CALLS:
            if "{bot_comment}" in url and "bot_comment" not in substitutions:
                bot_comments = [
                    c.id for c in repo.comments.values() if c.user == server.sim.bot_login
                ]
                substitutions["bot_comment"] = str(bot_comments[0])
            concrete = url.format(**substitutions)
            client, headers = (app_client, app_headers) if auth == "app" else (gh, {})
            response = await client.request(method, concrete, json=body, headers=headers)
            assert response.status_code == expected, (method, concrete, response.text)
            validate_answer(method, template, response.status_code, response.json())
            exercised.add((method, template))
    assert exercised == {(route.method, route.path) for route in ROUTES}, (
        "add the new route to CALLS"
    )


async def test_errors_have_githubs_shape(sim_factory: Callable[..., Awaitable[Any]]) -> None:
    sim_server = await sim_factory(SMALL_SCENARIO)
    async with installation_client(sim_server) as gh:
        missing = await gh.get("/repos/acme/nope/pulls")
        invalid = await gh.post("/repos/acme/widgets/issues/11/comments", json={})
        bad_state = await gh.get("/repos/acme/widgets/pulls", params={"state": "weird"})
    assert missing.status_code == 404
    assert set(missing.json()) >= {"message", "documentation_url"}
    assert invalid.status_code == 422
    assert invalid.json()["message"] == "Validation Failed"
    assert invalid.json()["errors"][0]["field"] == "body"
    assert bad_state.status_code == 422
    async with httpx.AsyncClient(base_url=sim_server.base_url) as anonymous:
        unauthenticated = await anonymous.get(
            "/repos/acme/widgets/pulls", headers={"Authorization": "token ghs_bogus"}
        )
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["message"] == "A JSON web token could not be decoded"


# ----------------------------------------------------------------------------- GraphQL documents


@pytest.mark.parametrize("name", sorted(ALL_DOCUMENTS))
def test_prsteward_graphql_documents_validate_against_githubs_schema(name: str) -> None:
    assert validate(github_schema(), parse(ALL_DOCUMENTS[name])) == []


def test_schema_validation_catches_a_wrong_field() -> None:
    errors = validate(
        github_schema(), parse('query { repository(owner: "a", name: "b") { noSuchField } }')
    )
    assert errors and "noSuchField" in errors[0].message


# ----------------------------------------------------------------------------- webhook payloads


def common_shape(samples: list[Any]) -> Any:
    """The keys present in every sample, recursively (the fields every real payload has)."""
    if all(isinstance(s, dict) for s in samples):
        keys = set.intersection(*(set(s) for s in samples))
        return {k: common_shape([s[k] for s in samples]) for k in keys}
    if all(isinstance(s, list) for s in samples):
        items = [item for s in samples for item in s]
        return [common_shape(items)] if items and all(isinstance(i, dict) for i in items) else []
    return None


def missing_fields(shape: Any, payload: Any, path: str = "") -> list[str]:
    missing: list[str] = []
    if isinstance(shape, dict):
        if not isinstance(payload, dict):
            return [] if payload is None else [f"{path} (not an object)"]
        for key, sub in shape.items():
            if key == "permissions" and path.endswith("installation"):
                continue  # which permissions an App holds is the App's choice, not a payload shape
            if key not in payload:
                missing.append(f"{path}.{key}")
            else:
                missing += missing_fields(sub, payload[key], f"{path}.{key}")
    elif isinstance(shape, list) and shape and isinstance(payload, list):
        for index, item in enumerate(payload):
            missing += missing_fields(shape[0], item, f"{path}[{index}]")
    return missing


def examples_for(event: str, action: str | None) -> list[dict[str, Any]]:
    examples = EXAMPLES[event]
    same = [e for e in examples if e.get("action") == action]
    return same or examples  # e.g. `issues` has no `closed` example: compare with all of them


async def test_emitted_webhook_payloads_have_the_fields_of_githubs_examples(
    sim_factory: Callable[..., Awaitable[Any]],
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    repo = "acme/widgets"
    control = server.control
    await control.events(
        [
            {"type": "ci", "repo": repo, "pr": 10, "conclusion": "failure"},
            {"type": "status", "repo": repo, "pr": 19, "context": "ci/legacy", "state": "failure"},
            {
                "type": "review",
                "repo": repo,
                "pr": 10,
                "user": "alice",
                "state": "CHANGES_REQUESTED",
                "body": "No.",
            },
            {"type": "comment", "repo": repo, "pr": 10, "user": "bob", "body": "Please fix."},
            {"type": "push", "repo": repo, "pr": 10},
            {"type": "push", "repo": repo, "pr": 13, "rebase": True},
            {"type": "request_review", "repo": repo, "pr": 14, "reviewers": ["alice"]},
            {
                "type": "file",
                "repo": repo,
                "path": ".github/prsteward.yml",
                "content": "mode: act\n",
            },
            {"type": "base_moved", "repo": repo, "conflicts": [15]},
            {"type": "label", "repo": repo, "pr": 10, "name": "bug"},
            {"type": "unlabel", "repo": repo, "pr": 10, "name": "bug"},
            {"type": "draft", "repo": repo, "pr": 10, "draft": True},
            {"type": "draft", "repo": repo, "pr": 10, "draft": False},
            {"type": "edit", "repo": repo, "pr": 10, "title": "Add docs (v2)"},
            {"type": "close", "repo": repo, "pr": 17},
            {"type": "reopen", "repo": repo, "pr": 17},
            {"type": "merge", "repo": repo, "pr": 20},
            {"type": "open_pull", "repo": repo, "title": "New", "author": "zed", "checks": ["ci"]},
            {"type": "open_issue", "repo": repo, "title": "Bug"},
            {"type": "close_issue", "repo": repo, "issue": 2, "reason": "not_planned"},
            {"type": "install", "installation": 2, "account": "globex", "repositories": ["app"]},
            {"type": "installation_repositories", "installation": 2, "added": ["lib"]},
            {"type": "installation_repositories", "installation": 2, "removed": ["lib"]},
        ]
    )
    async with installation_client(server) as gh:
        await gh.post("/repos/acme/widgets/issues/11/comments", json={"body": "hello"})
        suite = server.sim.state.check_runs_for(
            server.sim.state.repo("acme", "widgets"),
            server.sim.state.repo("acme", "widgets").pulls[12].head_sha,
        )[0].check_suite_id
        await gh.post(f"/repos/acme/widgets/actions/runs/{suite}/rerun-failed-jobs")
    await control.advance("1h")
    await control.drain_webhooks()
    seen: dict[tuple[str, str | None], list[str]] = {}
    for delivery in server.sim.webhooks.log:
        payload = json.loads(delivery.body)
        shape = common_shape(examples_for(delivery.event, delivery.action))
        seen.setdefault((delivery.event, delivery.action), []).extend(
            missing_fields(shape, payload)
        )
        assert "sender" in payload
        if delivery.event.startswith("installation"):
            assert payload["installation"]["id"] == 2
            continue
        assert payload["installation"]["id"] == 1
        assert payload["repository"]["full_name"] == repo
    problems = {key: sorted(set(fields)) for key, fields in seen.items() if fields}
    assert problems == {}, json.dumps({f"{e} {a}": f for (e, a), f in problems.items()}, indent=1)
    expected = {
        ("check_run", "created"),
        ("check_run", "completed"),
        ("check_suite", "completed"),
        ("check_suite", "rerequested"),
        ("status", None),
        ("pull_request_review", "submitted"),
        ("issue_comment", "created"),
        ("pull_request", "synchronize"),
        ("pull_request", "review_requested"),
        ("push", None),
        ("pull_request", "labeled"),
        ("pull_request", "unlabeled"),
        ("pull_request", "converted_to_draft"),
        ("pull_request", "ready_for_review"),
        ("pull_request", "edited"),
        ("pull_request", "closed"),
        ("pull_request", "reopened"),
        ("pull_request", "opened"),
        ("issues", "opened"),
        ("issues", "closed"),
        ("installation", "created"),
        ("installation_repositories", "added"),
        ("installation_repositories", "removed"),
    }
    assert expected <= set(seen)
