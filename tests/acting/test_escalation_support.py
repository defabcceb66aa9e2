"""Shared pieces of the acting (escalation) tests: a sim-backed prsteward with the job API."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.escalation import Escalations, github_reader, open_job
from bot.github import GitHubApp
from bot.jobs_api import JobsApi
from bot.reconcile import Reconciler
from ledger import agents as agent_store
from ledger import pulls
from ledger.db import Ledger
from policies.config import Config
from policies.history import EMPTY_HISTORY, NO_SPEND
from policies.snapshot import PullRequestSnapshot, snapshot_from_json
from policies.triage import decide

_TEMPLATE: list[Path] = []


async def fresh_sqlite_ledger(path: Path) -> Ledger:
    """An empty ledger at the newest schema in ``path``: migrated once per test process, then
    copied (sqlite3's backup API), since running the migrations is most of a small test's time."""
    from ledger.migrate import upgrade_async

    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="prsteward-escalation-")) / "template.db"
        await upgrade_async(f"sqlite+aiosqlite:///{template}")
        _TEMPLATE.append(template)
    source, target = sqlite3.connect(_TEMPLATE[0]), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return Ledger(f"sqlite+aiosqlite:///{path}")


def failing_ci_scenario(
    body: str = "Fixes the widget.", comments: list[Any] | None = None
) -> dict[str, Any]:
    pull: dict[str, Any] = {
        "number": 1,
        "title": "Fix the widget",
        "author": "carol",
        "body": body,
        "created": "-3d",
        "updated": "-1h",
        "checks": {"ci": "failure"},
    }
    if comments:
        pull["comments"] = comments
    return {
        "installations": [
            {
                "id": 1,
                "account": "acme",
                "repositories": [
                    {"name": "widgets", "collaborators": {"alice": "admin"}, "pulls": [pull]}
                ],
            }
        ]
    }


def act_config() -> Config:
    return Config.model_validate({"mode": "act", "app_logins": ["prsteward"]})


@asynccontextmanager
async def serving(api: JobsApi) -> AsyncIterator[str]:
    app = web.Application()
    api.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclass
class Stack:
    sim: Any
    db: Ledger
    app: GitHubApp
    reconciler: Reconciler
    escalations: Escalations
    config: Config

    async def read(self, number: int = 1) -> PullRequestSnapshot:
        await self.reconciler.run_cycle(full=True, discover=True)
        row = await pulls.get_pull(self.db, "acme/widgets", number)
        assert row is not None and row.snapshot is not None
        return snapshot_from_json(row.snapshot)

    async def escalate(self, number: int = 1) -> int | None:
        """What the engine does on a cycle: read the sim, decide on the fresh snapshot, open
        the job."""
        await self.read(number)
        return await self.escalate_read(number)

    async def escalate_read(self, number: int = 1) -> int | None:
        """Decide on the snapshot already in the ledger and open the job."""
        row = await pulls.get_pull(self.db, "acme/widgets", number)
        assert row is not None and row.snapshot is not None
        snapshot = snapshot_from_json(row.snapshot)
        now = datetime.now(UTC)
        decision = decide(snapshot, EMPTY_HISTORY, self.config, NO_SPEND, now)
        opened = None
        for candidate in decision.escalations:
            opened = await open_job(self.db, decision, candidate, snapshot, now, config=self.config)
        return opened

    async def agent(self, name: str) -> str:
        _agent, token = await agent_store.add_agent(self.db, name, datetime.now(UTC))
        return token


async def make_stack(sim: Any, db: Ledger, config: Config | None = None) -> Stack:
    config = config or act_config()
    app = GitHubApp(app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url)
    reconciler = Reconciler(app, db)
    escalations = Escalations(db, read_pull=github_reader(app, db), config_for=lambda _r: config)
    return Stack(sim, db, app, reconciler, escalations, config)
