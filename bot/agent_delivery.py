"""Delivery of queued jobs to agents, besides the pull API (``bot/jobs_api.py``). Both go through
the same job record and :class:`bot.escalation.Escalations`:

- **push**: a signed POST of the leased job to a configured agent-runner URL. The body is the
  job document (``job_id``, ``repository``, ``number``, ``brief``); the header
  ``X-Prsteward-Signature-256: sha256=HEX`` is the HMAC-SHA256 of the raw body with the
  configured secret (the same scheme as GitHub's webhooks). The runner answers ``200`` with the
  report JSON (``outcome``, ``tokens_in``, ``tokens_out``, ``dollars``, ``pushed_shas``,
  ``blocker_evidence``) when it is done; any other answer, or no answer within the timeout, ends
  the attempt as crashed (LEASE_EXPIRED: it counts, and is charged its reservation).
- **command**: a configured local command (for example a headless coding-agent CLI), started
  with the job document as JSON on stdin, killed after a wall-clock limit; its stdout's JSON
  object (the last line that parses) is taken as the report. The child gets a minimal
  environment (``PATH``, ``HOME``, ``LANG`` and ``PRSTEWARD_JOB_ID``): none of prsteward's
  secrets.

Configured with ``PRSTEWARD_AGENT_RUNNER_URL`` + ``PRSTEWARD_AGENT_RUNNER_SECRET``, or
``PRSTEWARD_AGENT_COMMAND`` (a shell-style string) + ``PRSTEWARD_AGENT_COMMAND_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.escalation import Escalations, Outcome, ReportError
from ledger import agents as agent_store

log = logging.getLogger("prsteward.agent_delivery")

SIGNATURE_HEADER = "X-Prsteward-Signature-256"
MAX_STDOUT_BYTES = 1024 * 1024


class DeliverySettings(BaseSettings):
    """How queued jobs reach agents besides the pull API (environment, prefix PRSTEWARD_)."""

    model_config = SettingsConfigDict(
        env_prefix="PRSTEWARD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    lease_ttl_seconds: float = Field(600.0, gt=0, description="Lease of a pulled job.")
    agent_runner_url: str | None = Field(None, description="Push delivery: the runner's URL.")
    agent_runner_secret: SecretStr | None = Field(None, description="Push delivery HMAC secret.")
    agent_runner_timeout_seconds: float = Field(1800.0, gt=0)
    agent_command: str | None = Field(None, description="Command delivery: the command line.")
    agent_command_timeout_seconds: float = Field(1800.0, gt=0)
    escalation_tick_seconds: float = Field(15.0, gt=0, description="Lease expiry / re-verify.")


def sign(secret: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For runners: check a push delivery's signature (constant time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def parse_report(stdout: bytes) -> dict[str, Any] | None:
    """The report in a command's stdout: the whole output as JSON, else its last JSON-object
    line (so a chatty command can log above it). None when there is none."""
    text = stdout.decode("utf-8", errors="replace").strip()
    candidates = [text, *reversed(text.splitlines())]
    for candidate in candidates:
        candidate = candidate.strip()
        if not candidate.startswith("{"):
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


class _Delivery:
    agent_name = "delivery"

    def __init__(self, escalations: Escalations) -> None:
        self.escalations = escalations

    async def _agent(self) -> Any:
        return await agent_store.ensure_internal_agent(
            self.escalations.db, self.agent_name, datetime.now(UTC)
        )

    async def deliver_one(self) -> Outcome | None:
        """Lease one queued job and run it to a report (or a crash); None when none is queued."""
        agent = await self._agent()
        job = await self.escalations.lease(agent, delivery=self.kind)
        if job is None:
            return None
        job_id = int(job["job_id"])
        await self.escalations.heartbeat(agent, job_id)
        beating = asyncio.create_task(self._keep_alive(agent, job_id))
        try:
            report = await self.run(job)
        except Exception as error:  # noqa: BLE001 - any failure of the runner ends the attempt
            report, why = None, f"{self.kind} delivery failed: {error.__class__.__name__}: {error}"
        else:
            why = f"{self.kind} delivery gave no report"
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        if report is None:
            return await self.escalations.abandon(job_id, why[:300])
        try:
            return await self.escalations.report(agent, job_id, report)
        except ReportError as error:
            return await self.escalations.abandon(job_id, f"unusable report: {error}"[:300])

    kind = "delivery"

    async def _keep_alive(self, agent: Any, job_id: int) -> None:
        """While the runner works, keep the lease (prsteward itself holds it)."""
        every = max(1.0, self.escalations.lease_ttl.total_seconds() / 3)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(ReportError):
                await self.escalations.heartbeat(agent, job_id)

    async def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError


class PushDelivery(_Delivery):
    """A signed POST to the agent-runner; its 200 answer is the report."""

    kind = "push"
    agent_name = "push-runner"

    def __init__(
        self,
        escalations: Escalations,
        url: str,
        secret: str,
        *,
        timeout: float = 1800.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(escalations)
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.transport = transport

    async def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        body = json.dumps(job, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, body),
            "X-Prsteward-Job": str(job["job_id"]),
        }
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
            response = await client.post(self.url, content=body, headers=headers)
        if response.status_code != 200:
            log.warning("push delivery of job %s: HTTP %s", job["job_id"], response.status_code)
            return None
        return parse_report(response.content)


class CommandDelivery(_Delivery):
    """A local command: the job on stdin, the report on stdout, a wall-clock limit."""

    kind = "command"
    agent_name = "command-runner"

    def __init__(
        self, escalations: Escalations, command: str | list[str], *, timeout: float
    ) -> None:
        super().__init__(escalations)
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        self.timeout = timeout

    def environment(self, job: dict[str, Any]) -> dict[str, str]:
        keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        return {**keep, "PRSTEWARD_JOB_ID": str(job["job_id"])}

    async def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=self.environment(job),
            start_new_session=True,
        )
        try:
            stdout, _ = await asyncio.wait_for(
                process.communicate(json.dumps(job).encode()), self.timeout
            )
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            await process.wait()
            log.warning("command delivery of job %s: killed after %ss", job["job_id"], self.timeout)
            return None
        if process.returncode != 0:
            log.warning("command delivery of job %s: exit %s", job["job_id"], process.returncode)
        return parse_report(stdout[:MAX_STDOUT_BYTES])


class EscalationWorker:
    """Runs next to the server (a ``bot.server.Background``): every ``interval`` seconds expires
    leases, re-verifies jobs GitHub had not finished with, and hands queued jobs to the
    configured push/command delivery (one at a time)."""

    def __init__(
        self,
        escalations: Escalations,
        deliveries: list[_Delivery] | None = None,
        *,
        interval: float = 15.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.escalations = escalations
        self.deliveries = deliveries or []
        self.interval = interval
        self.sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[Outcome]:
        await self.escalations.tick()
        done: list[Outcome] = []
        for delivery in self.deliveries:
            while True:
                outcome = await delivery.deliver_one()
                if outcome is None:
                    break
                done.append(outcome)
        return done

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("escalation worker pass failed")
            await self.sleep(self.interval)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def deliveries_from(settings: DeliverySettings, escalations: Escalations) -> list[_Delivery]:
    out: list[_Delivery] = []
    if settings.agent_runner_url:
        secret = (
            settings.agent_runner_secret.get_secret_value() if settings.agent_runner_secret else ""
        )
        if not secret:
            raise ValueError("PRSTEWARD_AGENT_RUNNER_URL needs PRSTEWARD_AGENT_RUNNER_SECRET")
        out.append(
            PushDelivery(
                escalations,
                settings.agent_runner_url,
                secret,
                timeout=settings.agent_runner_timeout_seconds,
            )
        )
    if settings.agent_command:
        out.append(
            CommandDelivery(
                escalations, settings.agent_command, timeout=settings.agent_command_timeout_seconds
            )
        )
    return out
