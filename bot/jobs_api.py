"""The agents' pull API, on prsteward's aiohttp server. Every call needs ``Authorization: Bearer
TOKEN`` (``prsteward agents add NAME`` prints one); a missing or wrong token is 401.

    POST /api/jobs/lease              -> 200 {job_id, repository, number, brief, lease_expires_at}
                                         or 204 when nothing is queued
    POST /api/jobs/{id}/heartbeat     {tokens_in?, tokens_out?, dollars?} -> 200 {lease_expires_at}
    POST /api/jobs/{id}/report        {outcome: done|failed|blocked, tokens_in, tokens_out,
                                       dollars, pushed_shas, blocker_evidence, model?, summary?}
                                      -> 200 {state, reason, flags}: prsteward's verdict after
                                         reading GitHub, not an echo of the claim
    GET  /api/jobs/{id}               -> 200 the job's state (the lease holder only)

Tokens are never logged; only their hashes are stored (``ledger/agents.py``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from bot.escalation import Escalations, ReportError
from ledger import agents as agent_store
from ledger import jobs as job_store
from ledger.models import Agent

log = logging.getLogger("prsteward.jobs_api")

MAX_REPORT_BYTES = 256 * 1024
AGENT_KEY = web.AppKey("prsteward_agent", Agent)


def _error(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="prsteward"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


class JobsApi:
    def __init__(self, escalations: Escalations) -> None:
        self.escalations = escalations
        self.db = escalations.db

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/jobs/lease", self._guard(self.lease))
        app.router.add_post("/api/jobs/{job_id:\\d+}/heartbeat", self._guard(self.heartbeat))
        app.router.add_post("/api/jobs/{job_id:\\d+}/report", self._guard(self.report))
        app.router.add_get("/api/jobs/{job_id:\\d+}", self._guard(self.show))

    async def _agent(self, request: web.Request) -> Agent | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return await agent_store.authenticate(self.db, token.strip())

    def _guard(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            agent = await self._agent(request)
            if agent is None:
                return _error(401, "a valid agent bearer token is needed")
            try:
                return await handler(request, agent)  # type: ignore[no-any-return]
            except ReportError as error:
                return _error(error.status, str(error))

        return guarded

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.content.read(MAX_REPORT_BYTES + 1)
        if len(raw) > MAX_REPORT_BYTES:
            raise ReportError("body too large", 413)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ReportError("body: not JSON", 400) from None
        if not isinstance(body, dict):
            raise ReportError("body: a JSON object", 400)
        return body

    async def lease(self, request: web.Request, agent: Agent) -> web.Response:
        job = await self.escalations.lease(agent)
        if job is None:
            return web.Response(status=204)
        log.info("job %s leased to %s", job["job_id"], agent.name)
        return web.json_response(job)

    async def heartbeat(self, request: web.Request, agent: Agent) -> web.Response:
        job_id = int(request.match_info["job_id"])
        answer = await self.escalations.heartbeat(agent, job_id, await self._body(request))
        return web.json_response(answer)

    async def report(self, request: web.Request, agent: Agent) -> web.Response:
        job_id = int(request.match_info["job_id"])
        outcome = await self.escalations.report(agent, job_id, await self._body(request))
        return web.json_response(outcome.as_json())

    async def show(self, request: web.Request, agent: Agent) -> web.Response:
        job_id = int(request.match_info["job_id"])
        job = await job_store.get_job(self.db, job_id)
        if job is None or job.lease_owner != agent.name:
            raise ReportError(f"no job {job_id} for {agent.name}", 404)
        return web.json_response(
            {
                "job_id": job.id,
                "state": job.state,
                "reason": job.state_reason,
                "attempt": job.attempt,
                "max_attempts": job.max_attempts,
                "flags": list(job.flags or []),
            }
        )


def attach_escalations(service: Any, server: Any) -> Escalations:
    """Wire escalations into ``prsteward serve``: the job API on the server's app, and the
    escalation worker (lease expiry, re-verification, push/command delivery) next to it.
    ``service`` is a ``bot.service.Service``; its App client (when configured) is how the
    done-oracle re-reads PRs."""
    from datetime import timedelta

    from bot.agent_delivery import DeliverySettings, EscalationWorker, deliveries_from
    from bot.escalation import github_ancestry, github_reader

    settings = DeliverySettings()
    escalations = Escalations(
        service.db,
        read_pull=github_reader(service.app, service.db) if service.app is not None else None,
        ancestry=github_ancestry(service.app, service.db) if service.app is not None else None,
        lease_ttl=timedelta(seconds=settings.lease_ttl_seconds),
    )
    from bot.boundaries import report_new
    from bot.budgets import ExhaustionAnnouncer, LowReturnReview, budget_granter, sticky_line_writer
    from bot.escalation import stored_config

    exhaustion = ExhaustionAnnouncer(service.db)
    if service.app is not None:  # BUDGET_EXHAUSTED: a line in the sticky comment, once
        from bot.executor import GitHubActions
        from ledger.repositories import get_repository

        async def actions_for(repository: str) -> GitHubActions:
            row = await get_repository(service.db, repository)
            if row is None or row.installation_id is None:
                raise RuntimeError(f"{repository}: no installation known")
            config = await stored_config(service.db, repository)  # the App's own logins
            return GitHubActions(service.app.installation(row.installation_id), config.app_logins)

        exhaustion.sticky = sticky_line_writer(actions_for, service.db)

    async def announce(now: Any) -> None:
        await exhaustion(now)  # each BUDGET_EXHAUSTED job once
        await report_new(service.db, now)  # each new permission boundary once

    escalations.announce = announce

    async def config_for(repository: str) -> Any:
        return await stored_config(service.db, repository)

    escalations.review_repositories = LowReturnReview(service.db, config_for)
    desk = getattr(getattr(service, "engine", None), "commands", None)
    if desk is not None and hasattr(desk, "grant_budget"):  # /prsteward budget +50k
        desk.grant_budget = budget_granter(escalations)
    server.mounts.append(JobsApi(escalations).add_routes)
    server.background.append(
        EscalationWorker(
            escalations,
            deliveries_from(settings, escalations),
            interval=settings.escalation_tick_seconds,
        )
    )
    return escalations
