"""The control plane under ``/_sim/``: tests and benches steer the sim here (clock, events,
accounting, state, faults, webhook target). It is free, unauthenticated and never rate limited.
``sim/control.py`` is the typed client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sim.core import Simulator
from sim.http import SIM_KEY, read_json
from sim.limits import FAULT_KINDS
from sim.scenario import ScenarioError, apply_event, fault_rule, load, moment, seconds_of
from sim.state import Repository, iso, latest_reviews, review_decision

SimHandler = Callable[[Simulator, web.Request], Awaitable[Any]]


def bad_request(message: str) -> web.Response:
    return web.json_response({"message": message}, status=400)


def control(handler: SimHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        sim = request.app[SIM_KEY]
        try:
            result = await handler(sim, request)
        except (ScenarioError, ValueError, KeyError, TypeError) as error:
            return bad_request(f"{error.__class__.__name__}: {error}")
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)

    return handle


def clock_info(sim: Simulator) -> dict[str, Any]:
    return {
        "now": iso(sim.clock.now()),
        "epoch": sim.clock.timestamp(),
        "rate": sim.clock.rate,
        "pending_timers": sim.state.pending_timers(),
    }


async def get_clock(sim: Simulator, request: web.Request) -> Any:
    sim.state.run_due_timers()
    return clock_info(sim)


async def advance_clock(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    seconds = seconds_of(body.get("seconds", body.get("by", 0)))
    ran = sim.advance(seconds)
    return {**clock_info(sim), "timers_run": ran}


async def set_clock(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    target = moment(body["now"], sim.clock.now()) if "now" in body else sim.clock.now()
    if target < sim.clock.now():
        raise ValueError("the sim clock never goes back")
    sim.clock.set(target, rate=float(body["rate"]) if "rate" in body else None)
    ran = sim.state.run_due_timers()
    return {**clock_info(sim), "timers_run": ran}


async def post_events(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    specs = body.get("events") if "events" in body else [body]
    if not isinstance(specs, list):
        raise ValueError("events: a list of events")
    sim.state.run_due_timers()
    return {"results": [apply_event(sim, spec) for spec in specs]}


async def get_accounting(sim: Simulator, request: web.Request) -> Any:
    data = sim.accounting.as_dict()
    now = sim.clock.timestamp()
    data["windows"] = {
        f"{principal} {resource}": {
            "limit": w.limit,
            "used": w.used,
            "remaining": w.remaining,
            "reset": w.reset_at,
        }
        for (principal, resource), w in sim.limits.windows.items()
        if w.reset_at > now
    }
    data["webhooks"] = {"emitted": sim.webhooks.emitted, "attempts": len(sim.webhooks.log)}
    return data


async def reset_accounting(sim: Simulator, request: web.Request) -> Any:
    sim.accounting.reset()
    sim.limits.reset()
    return {"reset": True}


async def reset_all(sim: Simulator, request: web.Request) -> Any:
    """Accounting, limits, faults and the delivery log; with ``{"state": true}`` the state too
    (reloaded from the scenario the sim was started with)."""
    body = await read_json(request)
    sim.accounting.reset()
    sim.limits.reset()
    sim.faults.clear()
    await sim.webhooks.drain(5)
    sim.webhooks.reset()
    if body.get("state"):
        from sim.runner import rebuild_state

        rebuild_state(sim)
    return {"reset": True, **clock_info(sim)}


def repo_state(sim: Simulator, repo: Repository, include_closed: bool) -> dict[str, Any]:
    pulls = []
    for pull in sorted(repo.pulls.values(), key=lambda p: p.number):
        if pull.state != "open" and not include_closed:
            continue
        runs = sim.state.check_runs_for(repo, pull.head_sha)
        statuses = sim.state.statuses_for(repo, pull.head_sha)
        pulls.append(
            {
                "number": pull.number,
                "title": pull.title,
                "body": pull.body,
                "author": pull.user,
                "author_association": pull.author_association,
                "state": "MERGED" if pull.merged_at else pull.state.upper(),
                "draft": pull.draft,
                "labels": list(pull.labels),
                "assignees": list(pull.assignees),
                "requested_reviewers": list(pull.requested_reviewers),
                "created_at": iso(pull.created_at),
                "updated_at": iso(pull.updated_at),
                "base_ref": pull.base_ref,
                "base_sha": pull.base_sha,
                "head_ref": pull.head_ref,
                "head_sha": pull.head_sha,
                "mergeable": pull.mergeable,
                "merge_state_status": sim.state.merge_state_status(repo, pull),
                "review_decision": review_decision(pull),
                "rollup": sim.state.rollup(repo, pull),
                "check_runs": [
                    {
                        "id": r.id,
                        "name": r.name,
                        "status": r.status,
                        "conclusion": r.conclusion,
                        "suite_id": r.check_suite_id,
                        "flaky": r.flaky,
                    }
                    for r in runs
                ],
                "statuses": [{"context": s.context, "state": s.state} for s in statuses],
                "latest_reviews": [
                    {"user": r.user, "state": r.state, "body": r.body} for r in latest_reviews(pull)
                ],
                "comments": [
                    {
                        "id": c.id,
                        "user": c.user,
                        "association": c.author_association,
                        "body": c.body,
                        "created_at": iso(c.created_at),
                    }
                    for c in sorted(repo.comments.values(), key=lambda c: c.id)
                    if c.issue_number == pull.number
                ],
                "closing_issues": [
                    {
                        "number": n,
                        "state": repo.issues[n].state,
                        "state_reason": repo.issues[n].state_reason,
                    }
                    for n in pull.closing_issues
                    if n in repo.issues
                ],
            }
        )
    return {
        "id": repo.id,
        "full_name": repo.full_name,
        "installation_id": repo.installation_id,
        "default_branch": repo.default_branch,
        "branches": dict(repo.branches),
        "pulls": pulls,
        "issues": [
            {
                "number": i.number,
                "title": i.title,
                "state": i.state,
                "state_reason": i.state_reason,
                "labels": list(i.labels),
                "author": i.user,
            }
            for i in sorted(repo.issues.values(), key=lambda i: i.number)
        ],
    }


async def get_state(sim: Simulator, request: web.Request) -> Any:
    sim.state.run_due_timers()
    wanted = request.query.get("repo")
    include_closed = request.query.get("closed", "false").lower() in {"1", "true", "yes"}
    repos = [
        r
        for r in sim.state.repos.values()
        if wanted is None or r.full_name.lower() == wanted.lower()
    ]
    return {
        "now": iso(sim.clock.now()),
        "installations": [
            {"id": inst.id, "account": inst.account, "repository_ids": list(inst.repository_ids)}
            for inst in sim.state.installations.values()
        ],
        "repositories": [
            repo_state(sim, repo, include_closed) for repo in sorted(repos, key=lambda r: r.id)
        ],
    }


async def get_webhook(sim: Simulator, request: web.Request) -> Any:
    config = sim.webhooks.config
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


async def put_webhook(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    config = sim.webhooks.config
    for key, value in body.items():
        if not hasattr(config, key):
            raise KeyError(f"unknown webhook setting {key!r}")
        setattr(config, key, value)
    return await get_webhook(sim, request)


async def drain_webhooks(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    pending = await sim.webhooks.drain(float(body.get("timeout", 30)))
    return {"pending": pending, "attempts": len(sim.webhooks.log)}


async def get_deliveries(sim: Simulator, request: web.Request) -> Any:
    return {"deliveries": [d.item() for d in sim.webhooks.log]}


async def add_fault(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    rule = sim.add_fault(fault_rule(body))
    return rule.as_dict()


async def list_faults(sim: Simulator, request: web.Request) -> Any:
    return {"faults": [rule.as_dict() for rule in sim.faults], "kinds": sorted(FAULT_KINDS)}


async def clear_faults(sim: Simulator, request: web.Request) -> Any:
    sim.faults.clear()
    return {"faults": []}


async def patch_limits(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    sim.limit_config.update(body)
    sim.limits.reset()  # new budgets take effect with fresh windows
    return {name: getattr(sim.limit_config, name) for name in sim.limit_config.__dataclass_fields__}


async def patch_options(sim: Simulator, request: web.Request) -> Any:
    body = await read_json(request)
    for key, value in body.items():
        if not hasattr(sim.options, key):
            raise KeyError(f"unknown option {key!r}")
        setattr(sim.options, key, type(getattr(sim.options, key))(value))
    return {name: getattr(sim.options, name) for name in sim.options.__dataclass_fields__}


async def post_scenario(sim: Simulator, request: web.Request) -> Any:
    """Adds a scenario (installations, repositories, timeline) to the running sim."""
    body = await read_json(request)
    load(sim, body)
    return {"repositories": len(sim.state.repos), "installations": len(sim.state.installations)}


async def health(sim: Simulator, request: web.Request) -> Any:
    return {"ok": True, "app_id": sim.app.id if sim.state.apps else None, **clock_info(sim)}


def add_control_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/health", control(health))
    r.add_get("/_sim/clock", control(get_clock))
    r.add_post("/_sim/clock/advance", control(advance_clock))
    r.add_post("/_sim/clock/set", control(set_clock))
    r.add_post("/_sim/events", control(post_events))
    r.add_get("/_sim/accounting", control(get_accounting))
    r.add_post("/_sim/accounting/reset", control(reset_accounting))
    r.add_post("/_sim/reset", control(reset_all))
    r.add_get("/_sim/state", control(get_state))
    r.add_get("/_sim/webhook", control(get_webhook))
    r.add_put("/_sim/webhook", control(put_webhook))
    r.add_post("/_sim/webhook/drain", control(drain_webhooks))
    r.add_get("/_sim/deliveries", control(get_deliveries))
    r.add_get("/_sim/faults", control(list_faults))
    r.add_post("/_sim/faults", control(add_fault))
    r.add_delete("/_sim/faults", control(clear_faults))
    r.add_patch("/_sim/limits", control(patch_limits))
    r.add_patch("/_sim/options", control(patch_options))
    r.add_post("/_sim/scenario", control(post_scenario))
