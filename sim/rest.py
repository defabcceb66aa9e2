"""The REST routes the sim serves, each as GitHub's REST description has it (method and path are
checked against `@octokit/openapi` by ``tests/sim/test_fidelity.py``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from sim import events
from sim.core import Simulator
from sim.http import (
    SIM_KEY,
    GitHubError,
    Principal,
    cached_entry,
    json_response,
    not_found,
    paginate,
    read_json,
    validation_failed,
)
from sim.objects import INSTALLATION_PERMISSIONS
from sim.state import Issue, PullRequest, Repository, iso

Handler = Callable[[Simulator, web.Request, Principal], Awaitable[web.StreamResponse]]


@dataclass(slots=True, frozen=True)
class Route:
    method: str
    path: str  # GitHub's path template, e.g. /repos/{owner}/{repo}/pulls
    handler: Handler
    auth: str  # "installation" | "app" | "any" | "none"
    charged: bool = True
    content_creation: bool = False


ROUTES: list[Route] = []


def route(
    method: str,
    path: str,
    *,
    auth: str = "installation",
    charged: bool = True,
    content_creation: bool = False,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, handler, auth, charged, content_creation))
        return handler

    return register


# ----------------------------------------------------------------------------- lookups


def repo_for(sim: Simulator, request: web.Request, principal: Principal) -> Repository:
    repo = sim.state.repo(request.match_info["owner"], request.match_info["repo"])
    if repo is None:
        raise not_found()
    if principal.kind == "installation" and repo.installation_id != principal.installation_id:
        raise not_found()  # GitHub hides repositories a token cannot see
    return repo


def number_of(request: web.Request, key: str = "pull_number") -> int:
    try:
        return int(request.match_info[key])
    except ValueError as error:
        raise not_found() from error


def pull_for(repo: Repository, number: int) -> PullRequest:
    pull = repo.pulls.get(number)
    if pull is None:
        raise not_found()
    return pull


def issue_like(repo: Repository, number: int) -> Issue | PullRequest:
    found: Issue | PullRequest | None = repo.issues.get(number) or repo.pulls.get(number)
    if found is None:
        raise not_found()
    return found


def sender(sim: Simulator, principal: Principal) -> str:
    return sim.bot_login


def cached_answer(
    sim: Simulator,
    request: web.Request,
    repo: Repository,
    build: Callable[[], tuple[Any, datetime | None, str | None]],
) -> web.Response:
    """A GET answer about ``repo``, rendered once per repository version (it is the hot path of
    every poller; the ETag is still computed per token)."""
    key = (request.path_qs, repo.id, sim.state.repo_versions.get(repo.id, 0))
    hit = sim.answer_cache.get(key)
    if hit is None:
        data, last_modified, link = build()
        if len(sim.answer_cache) > 50_000:
            sim.answer_cache.clear()
        hit = sim.answer_cache[key] = cached_entry(
            json.dumps(data, separators=(",", ":")).encode(), last_modified, link
        )
    return json_response(request, None, cached=hit)


def newest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


# ----------------------------------------------------------------------------- meta


@route("GET", "/rate_limit", auth="any", charged=False)
async def rate_limit(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    now = sim.clock.timestamp()
    core = sim.limits.window(principal.key, "core", now)
    graphql = sim.limits.window(principal.key, "graphql", now)

    def entry(window: Any) -> dict[str, int]:
        return {
            "limit": window.limit,
            "used": window.used,
            "remaining": window.remaining,
            "reset": window.reset_at,
        }

    # The sim serves no search: its bucket is always full (GitHub: 30 a minute).
    search = {"limit": 30, "used": 0, "remaining": 30, "reset": now + 60}
    return json_response(
        request,
        {
            "resources": {"core": entry(core), "graphql": entry(graphql), "search": search},
            "rate": entry(core),
        },
    )


@route("GET", "/app", auth="app")
async def get_app(sim: Simulator, request: web.Request, principal: Principal) -> web.StreamResponse:
    return json_response(request, sim.render.app(sim.state.apps[principal.app_id or 0]))


@route("GET", "/app/installations", auth="app")
async def list_installations(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    items = [
        sim.render.installation(inst)
        for inst in sorted(sim.state.installations.values(), key=lambda inst: inst.id)
        if inst.app_id == principal.app_id
    ]
    page, link = paginate(request, items)
    return json_response(request, page, link=link)


@route("GET", "/app/installations/{installation_id}", auth="app")
async def get_installation(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    inst = sim.state.installations.get(number_of(request, "installation_id"))
    if inst is None or inst.app_id != principal.app_id:
        raise not_found()
    return json_response(request, sim.render.installation(inst))


@route("GET", "/repos/{owner}/{repo}/installation", auth="app")
async def get_repo_installation(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    if repo.installation_id is None:
        raise not_found()
    return json_response(
        request, sim.render.installation(sim.state.installations[repo.installation_id])
    )


@route("POST", "/app/installations/{installation_id}/access_tokens", auth="app")
async def create_token(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    inst = sim.state.installations.get(number_of(request, "installation_id"))
    if inst is None or inst.app_id != principal.app_id:
        raise not_found()
    if inst.suspended:
        raise GitHubError(403, "This installation has been suspended")
    token = sim.issue_token(inst.id)
    return json_response(
        request,
        {
            "token": token.token,
            "expires_at": iso(token.expires_at),
            "permissions": inst.permissions or INSTALLATION_PERMISSIONS,
            "repository_selection": "selected",
        },
        status=201,
    )


@route("GET", "/installation/repositories")
async def installation_repositories(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repos = sorted(sim.state.installation_repos(principal.installation_id or 0), key=lambda r: r.id)
    page, link = paginate(request, repos)
    return json_response(
        request,
        {
            "total_count": len(repos),
            "repository_selection": "selected",
            "repositories": [sim.render.repository(repo, full=False) for repo in page],
        },
        link=link,
    )


@route("GET", "/repos/{owner}/{repo}")
async def get_repo(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    return json_response(
        request, sim.render.repository(repo, full=True), last_modified=repo.pushed_at
    )


# ----------------------------------------------------------------------------- pulls


@route("GET", "/repos/{owner}/{repo}/pulls")
async def list_pulls(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    state = request.query.get("state", "open")
    if state not in {"open", "closed", "all"}:
        raise validation_failed("Issue", "state")
    return cached_answer(sim, request, repo, lambda: render_pull_list(sim, request, repo, state))


def render_pull_list(
    sim: Simulator, request: web.Request, repo: Repository, state: str
) -> tuple[Any, datetime | None, str | None]:
    pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
    if base := request.query.get("base"):
        pulls = [p for p in pulls if p.base_ref == base]
    if head := request.query.get("head"):
        pulls = [p for p in pulls if f"{repo.owner}:{p.head_ref}" == head or p.head_ref == head]
    sort = request.query.get("sort", "created")
    direction = request.query.get("direction", "desc" if sort == "created" else "asc")
    key = {
        "created": lambda p: (p.created_at, p.number),
        "updated": lambda p: (p.updated_at, p.number),
        "popularity": lambda p: (len(p.reviews), p.number),
        "long-running": lambda p: (p.created_at, p.number),
    }.get(sort)
    if key is None:
        raise validation_failed("Issue", "sort")
    pulls.sort(key=key, reverse=direction == "desc")
    page, link = paginate(request, pulls)
    # The newest change to any PR of the repository, so a PR that closed (and left an open list)
    # still moves the date: If-Modified-Since never hides a change.
    last_modified = newest(*(p.updated_at for p in repo.pulls.values()))
    return [sim.render.pull(repo, p, detail=False) for p in page], last_modified, link


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
async def get_pull(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    pull = pull_for(repo, number_of(request))
    return cached_answer(
        sim, request, repo, lambda: (sim.render.pull(repo, pull), pull.updated_at, None)
    )


@route("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}")
async def update_pull(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    pull = pull_for(repo, number_of(request))
    body = await read_json(request)
    state = body.get("state")
    if state is not None and state not in {"open", "closed"}:
        raise validation_failed("PullRequest", "state")
    who = sender(sim, principal)
    events.edit_pull(sim, repo, pull, who, title=body.get("title"), body=body.get("body"))
    if state == "closed":
        events.close_pull(sim, repo, pull, who)
    elif state == "open":
        events.reopen_pull(sim, repo, pull, who)
    return json_response(request, sim.render.pull(repo, pull))


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")
async def list_pull_files(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    pull = pull_for(repo, number_of(request))
    files = pull.files or []
    page, link = paginate(request, files)
    return json_response(
        request,
        [sim.render.pull_file(repo, pull, entry) for entry in page],
        link=link,
        last_modified=pull.updated_at,
    )


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
async def list_reviews(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    pull = pull_for(repo, number_of(request))
    page, link = paginate(request, sorted(pull.reviews, key=lambda r: r.id))
    return json_response(request, [sim.render.review(repo, pull, r) for r in page], link=link)


@route("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers")
async def request_reviewers(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    pull = pull_for(repo, number_of(request))
    body = await read_json(request)
    reviewers = body.get("reviewers") or []
    if not isinstance(reviewers, list) or not all(isinstance(r, str) for r in reviewers):
        raise validation_failed("PullRequest", "reviewers")
    try:
        events.request_review(sim, repo, pull, list(reviewers), sender(sim, principal))
    except events.EventError as error:
        raise GitHubError(422, str(error)) from error
    return json_response(request, sim.render.pull(repo, pull, detail=False), status=201)


# ----------------------------------------------------------------------------- issues, comments, labels


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
async def get_issue(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    issue = issue_like(repo, number_of(request, "issue_number"))
    return json_response(request, sim.render.issue(repo, issue), last_modified=issue.updated_at)


@route("POST", "/repos/{owner}/{repo}/issues", content_creation=True)
async def create_issue(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    body = await read_json(request)
    title = body.get("title")
    if not isinstance(title, str) or not title:
        raise validation_failed("Issue", "title", "missing_field")
    issue = events.create_issue(
        sim,
        repo,
        title=title,
        author=sender(sim, principal),
        body=body.get("body"),
        labels=list(body.get("labels") or []),
    )
    return json_response(request, sim.render.issue(repo, issue), status=201)


@route("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}")
async def update_issue(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    number = number_of(request, "issue_number")
    body = await read_json(request)
    state = body.get("state")
    if state is not None and state not in {"open", "closed"}:
        raise validation_failed("Issue", "state")
    who = sender(sim, principal)
    target = issue_like(repo, number)
    if isinstance(target, PullRequest):
        events.edit_pull(sim, repo, target, who, title=body.get("title"), body=body.get("body"))
        if state == "closed":
            events.close_pull(sim, repo, target, who)
        elif state == "open":
            events.reopen_pull(sim, repo, target, who)
    else:
        events.update_issue(
            sim,
            repo,
            target,
            who,
            title=body.get("title"),
            body=body.get("body"),
            state=state,
            state_reason=body.get("state_reason"),
        )
    return json_response(request, sim.render.issue(repo, target))


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
async def list_comments(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    number = number_of(request, "issue_number")
    target = issue_like(repo, number)

    def build() -> tuple[Any, datetime | None, str | None]:
        comments = sorted(
            (c for c in repo.comments.values() if c.issue_number == number), key=lambda c: c.id
        )
        if since := request.query.get("since"):
            comments = [c for c in comments if iso(c.updated_at) >= since]
        page, link = paginate(request, comments)
        last_modified = newest(target.updated_at, *(c.updated_at for c in page))
        return [sim.render.comment(repo, c) for c in page], last_modified, link

    return cached_answer(sim, request, repo, build)


@route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", content_creation=True)
async def create_comment(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    number = number_of(request, "issue_number")
    issue_like(repo, number)
    body = await read_json(request)
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise validation_failed("IssueComment", "body", "missing_field")
    comment = events.add_comment(sim, repo, number, sender(sim, principal), text)
    return json_response(request, sim.render.comment(repo, comment), status=201)


def comment_for(
    sim: Simulator, request: web.Request, principal: Principal
) -> tuple[Repository, Any]:
    repo = repo_for(sim, request, principal)
    comment = repo.comments.get(number_of(request, "comment_id"))
    if comment is None:
        raise not_found()
    return repo, comment


@route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
async def get_comment(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo, comment = comment_for(sim, request, principal)
    return json_response(
        request, sim.render.comment(repo, comment), last_modified=comment.updated_at
    )


@route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
async def update_comment(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo, comment = comment_for(sim, request, principal)
    body = await read_json(request)
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise validation_failed("IssueComment", "body", "missing_field")
    if comment.user != sim.bot_login:
        raise GitHubError(403, "Resource not accessible by integration")
    events.edit_comment(sim, repo, comment, text, sender(sim, principal))
    return json_response(request, sim.render.comment(repo, comment))


REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}


@route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
async def list_reactions(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    _, comment = comment_for(sim, request, principal)
    items = comment.reactions
    if content := request.query.get("content"):
        items = [r for r in items if r.content == content]
    page, link = paginate(request, items)
    return json_response(request, [sim.render.reaction(r) for r in page], link=link)


@route("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
async def create_reaction(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    from sim.state import Reaction

    repo, comment = comment_for(sim, request, principal)
    body = await read_json(request)
    content = body.get("content")
    if content not in REACTIONS:
        raise validation_failed("Reaction", "content")
    who = sender(sim, principal)
    for existing in comment.reactions:
        if existing.user == who and existing.content == content:
            return json_response(request, sim.render.reaction(existing), status=200)
    reaction = Reaction(
        id=sim.state.next_id(), user=who, content=content, created_at=sim.clock.now()
    )
    comment.reactions.append(reaction)
    sim.state.touch(repo)  # GitHub sends no webhook for reactions, but the comment changed
    return json_response(request, sim.render.reaction(reaction), status=201)


@route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
async def add_labels(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    number = number_of(request, "issue_number")
    target = issue_like(repo, number)
    raw = await request.json() if request.can_read_body else {}
    names = raw.get("labels") if isinstance(raw, dict) else raw
    if not isinstance(names, list) or not names:
        raise validation_failed("Label", "labels", "missing_field")
    names = [n["name"] if isinstance(n, dict) else str(n) for n in names]
    events.add_labels(sim, repo, number, names, sender(sim, principal))
    return json_response(request, [sim.render.label(repo, name) for name in target.labels])


@route("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}")
async def remove_label(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    number = number_of(request, "issue_number")
    target = issue_like(repo, number)
    if not events.remove_label(
        sim, repo, number, request.match_info["name"], sender(sim, principal)
    ):
        raise GitHubError(404, "Label does not exist")
    return json_response(request, [sim.render.label(repo, name) for name in target.labels])


# ----------------------------------------------------------------------------- checks and CI


@route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
async def list_check_runs(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    ref = request.match_info["ref"]
    sha = repo.branches.get(ref, ref)
    runs = repo.check_runs.get(sha, [])
    if request.query.get("filter", "latest") == "latest":
        runs = sim.state.check_runs_for(repo, sha)
    page, link = paginate(request, runs)
    return json_response(
        request,
        {"total_count": len(runs), "check_runs": [sim.render.check_run(repo, r) for r in page]},
        link=link,
    )


@route("GET", "/repos/{owner}/{repo}/commits/{ref}/status")
async def combined_status(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    ref = request.match_info["ref"]
    sha = repo.branches.get(ref, ref)
    statuses = sim.state.statuses_for(repo, sha)
    states = {s.state for s in statuses}
    state = (
        "failure"
        if states & {"failure", "error"}
        else "pending"
        if ("pending" in states or not statuses)
        else "success"
    )
    base = f"{sim.base_url}/repos/{repo.full_name}"
    return json_response(
        request,
        {
            "state": state,
            "statuses": [
                {k: v for k, v in sim.render.status(repo, s).items() if k != "creator"}
                | {"avatar_url": None}
                for s in statuses
            ],
            "sha": sha,
            "total_count": len(statuses),
            "repository": sim.render.repository(repo),
            "commit_url": f"{base}/commits/{sha}",
            "url": f"{base}/commits/{sha}/status",
        },
    )


@route("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs")
async def rerun_failed_jobs(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    run_id = number_of(request, "run_id")
    if sim.state.check_suite_repo.get(run_id) != repo.id:
        raise not_found()
    events.rerun_failed(sim, repo, run_id, sender(sim, principal))
    return json_response(request, {}, status=201)


@route("POST", "/repos/{owner}/{repo}/check-suites/{check_suite_id}/rerequest")
async def rerequest_suite(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    suite_id = number_of(request, "check_suite_id")
    if sim.state.check_suite_repo.get(suite_id) != repo.id:
        raise not_found()
    events.rerun_failed(sim, repo, suite_id, sender(sim, principal))
    return json_response(request, {}, status=201)


# ----------------------------------------------------------------------------- contents, people


@route("GET", "/repos/{owner}/{repo}/contents/{path}")
async def get_contents(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    path = request.match_info["path"].strip("/")
    text = repo.files.get(path)
    if text is None:
        raise not_found()
    ref = request.query.get("ref", repo.default_branch)
    return json_response(
        request, sim.render.content_file(repo, path, text, ref), last_modified=repo.pushed_at
    )


@route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
async def collaborator_permission(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    login = request.match_info["username"]
    if login not in sim.state.users:
        raise GitHubError(404, f"{login} is not a user")
    role = "admin" if login == repo.owner else repo.collaborators.get(login, "read")
    permission = {"maintain": "write", "triage": "read"}.get(role, role)
    user = dict(sim.render.user(login))
    user["permissions"] = {
        "admin": role == "admin",
        "maintain": role in {"admin", "maintain"},
        "push": role in {"admin", "maintain", "write"},
        "triage": role in {"admin", "maintain", "write", "triage"},
        "pull": True,
    }
    user["role_name"] = role
    return json_response(request, {"permission": permission, "role_name": role, "user": user})


# ----------------------------------------------------------------------------- App webhook deliveries


@route("GET", "/app/hook/deliveries", auth="app")
async def list_deliveries(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    try:
        per_page = max(1, min(int(request.query.get("per_page", 30)), 100))
        cursor_raw = request.query.get("cursor")
        cursor = int(cursor_raw.removeprefix("v1_")) if cursor_raw else None
    except ValueError as error:
        raise validation_failed("Delivery", "cursor") from error
    page, next_cursor = sim.webhooks.page(per_page, cursor)
    link = None
    if next_cursor is not None:
        link = f'<{sim.base_url}{request.path}?per_page={per_page}&cursor=v1_{next_cursor}>; rel="next"'
    return json_response(request, [d.item() for d in page], link=link)


@route("GET", "/app/hook/deliveries/{delivery_id}", auth="app")
async def get_delivery(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    delivery = sim.webhooks.by_id.get(number_of(request, "delivery_id"))
    if delivery is None:
        raise not_found()
    return json_response(request, delivery.detail(sim.webhooks.config.url))


@route("POST", "/app/hook/deliveries/{delivery_id}/attempts", auth="app")
async def redeliver(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    if sim.webhooks.redeliver(number_of(request, "delivery_id")) is None:
        raise not_found()
    return json_response(request, {}, status=202)


def aiohttp_path(path: str) -> str:
    """GitHub's ``{path}`` in contents may hold slashes."""
    return path.replace("/contents/{path}", "/contents/{path:.+}")


__all__ = ["ROUTES", "SIM_KEY", "Route", "aiohttp_path"]
