"""The sim as an aiohttp application: REST at the root (and under ``/api/v3``, GitHub Enterprise
style), GraphQL at ``/graphql`` (and ``/api/graphql``), the control plane under ``/_sim/``.

Every request passes one middleware that runs due timers, injects faults, authenticates, checks
the primary and secondary limits, charges the caller and adds GitHub's rate-limit headers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sim import graphql_api, issue_list  # noqa: F401 - importing registers the list route
from sim.core import Simulator
from sim.http import PRINCIPAL_KEY, SIM_KEY, GitHubError, Principal, authenticate, read_json
from sim.limits import DENIED_MESSAGE
from sim.objects import INSTALLATION_PERMISSIONS
from sim.rest import ROUTES, Route, aiohttp_path

ROUTE_KEY: web.AppKey[dict[str, Route]] = web.AppKey("routes", dict)
ENDPOINT_KEYS: web.AppKey[dict[tuple[str, Any], str]] = web.AppKey("endpoint_keys", dict)
PREFIXES = ("", "/api/v3")
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}

RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID sim."
)


@dataclass(slots=True, frozen=True)
class GraphQLRoute:
    """Marks the GraphQL endpoint for the middleware."""


def endpoint_key(request: web.Request) -> str:
    """``"GET /repos/{owner}/{repo}/pulls"``: the method and GitHub's path template (worked
    out once per route of this application)."""
    resource = request.match_info.route.resource
    if resource is None:
        return _endpoint_key(request.method, request.path)
    known_keys = request.app[ENDPOINT_KEYS]
    cache_key = (request.method, resource)
    known = known_keys.get(cache_key)
    if known is None:
        known = known_keys[cache_key] = _endpoint_key(request.method, resource.canonical)
    return known


def _endpoint_key(method: str, canonical: str) -> str:
    canonical = canonical.removeprefix("/api/v3").replace("{path:.+}", "{path}")
    if canonical == "/api/graphql":
        canonical = "/graphql"
    return f"{method} {canonical}"


def error_response(error: GitHubError, extra_headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        error.body, status=error.status_code, headers={**error.headers, **(extra_headers or {})}
    )


@web.middleware
async def github_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    if request.path.startswith("/_sim/"):
        return await handler(request)
    sim.state.run_due_timers()
    key = endpoint_key(request)
    sim.accounting.requests[key] += 1
    fault = sim.match_fault(request.method, request.path)
    sim.accounting.timeline.append((time.time(), key, fault.kind if fault is not None else ""))
    if fault is not None:
        sim.accounting.faults_injected[f"{fault.kind} {key}"] += 1
        if fault.kind in {"delay", "hang"}:
            # The request has fully arrived (a client that dies now has still sent its write).
            await request.read()
            await asyncio.sleep(fault.seconds or (3600 if fault.kind == "hang" else 0))
        elif fault.kind == "status":
            sim.accounting.statuses[str(fault.status)] += 1
            message = {
                500: "Server Error",
                502: "Server Error",
                503: "Service Unavailable",
                504: "Gateway Timeout",
            }.get(fault.status, "Server Error")
            return error_response(GitHubError(fault.status, message))
        elif fault.kind == "deny":
            status = fault.status if fault.status in {403, 404, 410, 422} else 403
            sim.accounting.statuses[str(status)] += 1
            headers = (
                {"x-accepted-github-permissions": fault.accepted_permissions}
                if fault.accepted_permissions
                else {}
            )
            return error_response(GitHubError(status, fault.message or DENIED_MESSAGE), headers)
        elif fault.kind == "secondary":
            sim.accounting.rate_limited[f"secondary {key}"] += 1
            return error_response(
                GitHubError(
                    fault.status if fault.status in {403, 429} else 403,
                    SECONDARY_MESSAGE,
                    documentation_url=RATE_LIMIT_DOCS,
                ),
                {"retry-after": str(fault.retry_after)},
            )
    try:
        principal = authenticate(sim, request)
        request[PRINCIPAL_KEY] = principal
        route = request.app[ROUTE_KEY].get(key)
        graphql = key == "POST /graphql"
        if route is not None:
            check_auth(route, principal)
        elif graphql and principal.kind == "anonymous":
            raise GitHubError(401, "This endpoint requires you to be authenticated.")
        if graphql:
            response = await handler(request)
            sim.accounting.statuses[str(response.status)] += 1
            return response
        charged = route is not None and route.charged and principal.kind != "anonymous"
        window = (
            sim.limits.window(principal.key, "core", sim.clock.timestamp()) if charged else None
        )
        if window is not None and window.remaining <= 0:
            sim.accounting.rate_limited[f"primary {principal.key}"] += 1
            who = (
                f"installation ID {principal.installation_id}"
                if principal.kind == "installation"
                else f"app ID {principal.app_id}"
            )
            raise GitHubError(
                403,
                f"API rate limit exceeded for {who}.",
                documentation_url=RATE_LIMIT_DOCS,
                headers=window.headers("core"),
            )
        if window is not None:
            weight = 5 if request.method in WRITE_METHODS else 1
            if not sim.limits.secondary_points_allowed(
                principal.key,
                "rest",
                weight,
                sim.clock.timestamp(),
                sim.limit_config.rest_secondary_points_per_minute,
            ):
                sim.accounting.rate_limited[f"secondary {key}"] += 1
                raise GitHubError(
                    403,
                    SECONDARY_MESSAGE,
                    documentation_url=RATE_LIMIT_DOCS,
                    headers={"retry-after": str(sim.limit_config.secondary_retry_after)},
                )
            sim.accounting.secondary_points[f"{principal.key} rest"] += weight
        if (
            route is not None
            and route.content_creation
            and not sim.limits.content_creation_allowed(principal.key, sim.clock.timestamp())
        ):
            sim.accounting.rate_limited[f"secondary {key}"] += 1
            raise GitHubError(
                403,
                SECONDARY_MESSAGE,
                documentation_url=RATE_LIMIT_DOCS,
                headers={"retry-after": str(sim.limit_config.secondary_retry_after)},
            )
        response = await handler(request)
    except GitHubError as error:
        sim.accounting.statuses[str(error.status_code)] += 1
        return error_response(error, dict(error.headers))
    sim.accounting.statuses[str(response.status)] += 1
    if window is not None:
        if response.status == 304:
            sim.accounting.conditional_hits[key] += 1
        else:
            window.used += 1
            sim.accounting.charged[key] += 1
            sim.accounting.per_installation[principal.key] += 1
            if request.method in WRITE_METHODS and principal.kind == "installation":
                sim.accounting.writes[key] += 1
        response.headers.update(window.headers("core"))
    return response


def check_auth(route: Route, principal: Principal) -> None:
    if route.auth == "none" or (route.auth == "any" and principal.kind != "anonymous"):
        return
    if principal.kind == "anonymous":
        raise GitHubError(401, "Requires authentication")
    if route.auth == "app" and principal.kind != "app":
        raise GitHubError(
            401,
            "A JSON web token could not be decoded",
            documentation_url="https://docs.github.com/rest",
        )
    if route.auth == "installation" and principal.kind != "installation":
        raise GitHubError(403, "Resource not accessible by integration")


async def graphql_handler(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    principal = request[PRINCIPAL_KEY]
    body = await read_json(request)
    query = body.get("query")
    if not isinstance(query, str):
        raise GitHubError(400, "Problems parsing JSON")
    prepared = graphql_api.prepare(query, body.get("variables"), body.get("operationName"))
    now = sim.clock.timestamp()
    window = sim.limits.window(principal.key, "graphql", now)
    headers = window.headers("graphql")
    if prepared.errors:
        return web.json_response({"errors": prepared.errors}, headers=headers)
    cost = prepared.report.cost
    if window.remaining < cost:
        sim.accounting.rate_limited[f"graphql {principal.key}"] += 1
        who = (
            f"installation ID {principal.installation_id}"
            if principal.kind == "installation"
            else f"app ID {principal.app_id}"
        )
        return web.json_response(
            {
                "errors": [
                    {
                        "type": "RATE_LIMITED",
                        "code": "graphql_rate_limit",
                        "message": f"API rate limit already exceeded for {who}.",
                    }
                ]
            },
            headers={**headers, "x-ratelimit-remaining": "0"},
        )
    mutation = graphql_api.is_mutation(prepared)
    weight = 5 if mutation else 1
    if not sim.limits.secondary_points_allowed(
        principal.key, "graphql", weight, now, sim.limit_config.graphql_secondary_points_per_minute
    ):
        sim.accounting.rate_limited[f"secondary graphql {principal.key}"] += 1
        raise GitHubError(
            403,
            SECONDARY_MESSAGE,
            documentation_url=RATE_LIMIT_DOCS,
            headers={**headers, "retry-after": str(sim.limit_config.secondary_retry_after)},
        )
    sim.accounting.secondary_points[f"{principal.key} graphql"] += weight
    window.used += cost
    sim.accounting.graphql_points[principal.key] += cost
    sim.accounting.graphql_queries[principal.key] += 1
    sim.accounting.charged["POST /graphql"] += 1
    rate_limit = {
        "cost": cost,
        "limit": window.limit,
        "nodeCount": prepared.report.nodes,
        "remaining": window.remaining,
        "resetAt": graphql_api.iso_epoch(window.reset_at),
        "used": window.used,
    }
    visible = (
        set(sim.state.installations[principal.installation_id].repository_ids)
        if principal.kind == "installation" and principal.installation_id is not None
        else None
    )
    key = graphql_api.cache_key(sim.state, query, prepared, visible)
    cached = sim.graphql_cache.get(key) if key is not None else None
    if cached is not None:
        result = graphql_api.with_rate_limit(cached, rate_limit)
    elif mutation:
        resolvers = graphql_api.Resolvers(sim.state, sim.render.web)
        performed: list[str] = []
        installation = (
            sim.state.installations.get(principal.installation_id)
            if principal.installation_id is not None
            else None
        )
        permissions = (
            (installation.permissions or INSTALLATION_PERMISSIONS) if installation else None
        )
        mutations = graphql_api.mutation_resolvers(sim, resolvers, visible, permissions, performed)
        result = graphql_api.run(prepared, resolvers, rate_limit, visible, mutations)
        for name in performed:
            sim.accounting.writes[f"POST /graphql {name}"] += 1
    else:
        resolvers = graphql_api.Resolvers(sim.state, sim.render.web)
        result = graphql_api.run(prepared, resolvers, rate_limit, visible)
        if key is not None:
            if len(sim.graphql_cache) > 5_000:
                sim.graphql_cache.clear()
            sim.graphql_cache[key] = result
    return web.Response(
        body=json.dumps(result, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=window.headers("graphql"),
    )


def rest_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await route.handler(request.app[SIM_KEY], request, request[PRINCIPAL_KEY])

    return handle


async def not_found_handler(request: web.Request) -> web.StreamResponse:
    raise GitHubError(404, "Not Found")


def build_app(sim: Simulator) -> web.Application:
    """The aiohttp application for ``sim``; start/stop of the webhook sender hang off it."""
    from sim.control_plane import add_control_routes

    app = web.Application(middlewares=[github_middleware], client_max_size=30 * 1024 * 1024)
    app[SIM_KEY] = sim
    routes: dict[str, Route] = {}
    for prefix in PREFIXES:
        for route in ROUTES:
            app.router.add_route(
                route.method, prefix + aiohttp_path(route.path), rest_handler(route)
            )
            routes[f"{route.method} {route.path}"] = route
    app[ROUTE_KEY] = routes
    app[ENDPOINT_KEYS] = {}
    app.router.add_post("/graphql", graphql_handler)
    app.router.add_post("/api/graphql", graphql_handler)
    add_control_routes(app)

    async def ticker() -> None:
        # With a running clock (rate > 0) timeline events and settling fire on their own, not
        # only when a request happens to arrive.
        while True:
            await asyncio.sleep(0.25)
            if sim.clock.rate > 0:
                sim.state.run_due_timers()

    tasks: list[asyncio.Task[None]] = []

    async def start_webhooks(_: web.Application) -> None:
        await sim.webhooks.start()
        tasks.append(asyncio.create_task(ticker(), name="sim-clock"))

    async def stop_webhooks(_: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sim.webhooks.stop()

    app.on_startup.append(start_webhooks)
    app.on_cleanup.append(stop_webhooks)
    return app


def rest_routes() -> list[tuple[str, str]]:
    """(method, GitHub path template) of every REST route the sim serves."""
    return [(route.method, route.path) for route in ROUTES]


async def json_body(request: web.Request) -> dict[str, Any]:
    return await read_json(request)
