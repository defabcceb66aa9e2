"""``GET /repos/{owner}/{repo}/issues``: a repository's issues (and PRs, as GitHub lists them),
newest first, filtered by ``state`` (open | closed | all; default open), paginated with a
``Link`` header. Used by prsteward to find its summary issue by its hidden marker after a create
it never saw confirmed (bot/summary.py).

A separate module so it does not collide with edits to ``sim/rest.py``; importing it registers
the route in ``sim.rest.ROUTES`` (``sim/server.py`` should import it; tests/summary does).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sim.core import Simulator
from sim.http import Principal, json_response, paginate, validation_failed
from sim.rest import ROUTES, repo_for, route

PATH = "/repos/{owner}/{repo}/issues"


async def list_issues(
    sim: Simulator, request: web.Request, principal: Principal
) -> web.StreamResponse:
    repo = repo_for(sim, request, principal)
    state = request.query.get("state", "open")
    if state not in {"open", "closed", "all"}:
        raise validation_failed("Issue", "state")
    items: list[Any] = [*repo.issues.values(), *repo.pulls.values()]
    if state != "all":
        items = [
            i for i in items if (i.state if i.state in ("open", "closed") else "closed") == state
        ]
    items.sort(key=lambda i: i.number, reverse=True)
    page, link = paginate(request, items)
    return json_response(request, [sim.render.issue(repo, i) for i in page], link=link)


if not any(r.method == "GET" and r.path == PATH for r in ROUTES):
    route("GET", PATH)(list_issues)
