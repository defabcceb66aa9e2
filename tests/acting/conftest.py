"""Shared fixtures for the acting tests (engine, executor, escalation). Additive: each part
adds its own fixtures here without changing the others'.

``acting_world(scenario)`` starts the in-process sim with ``scenario`` (a dict in the sim's
scenario format), opens a fresh SQLite ledger, and wires the real parts prsteward runs with:
``Reconciler`` (reads the sim into the ledger), ``ConfigLoader``, ``Executor`` on
``GitHubActions`` (writes to the sim over HTTP) and ``Engine``. Write pacing uses a fake clock,
so tests never sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from bot.config_loader import ConfigLoader
from bot.engine import Engine, PullEvaluation
from bot.executor import Actions, EscalationHook, Executor, GitHubActions, WritePacer
from bot.github import GitHubApp
from bot.reconcile import Reconciler
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from policies.config import Config

SimFactory = Callable[..., Awaitable[Any]]


class FakeTime:
    """A monotonic clock whose sleep only moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class ActingWorld:
    """The sim, the ledger and prsteward's acting parts, wired like ``prsteward serve``."""

    server: Any
    db: Ledger
    app: GitHubApp
    reconciler: Reconciler
    loader: ConfigLoader
    executor: Executor
    engine: Engine
    pacer_time: FakeTime
    wrap_actions: Callable[[Actions], Actions] | None = None
    evaluations: list[PullEvaluation] = field(default_factory=list)

    @property
    def control(self) -> Any:
        return self.server.control

    async def now(self) -> datetime:
        clock = await self.control.clock()
        return datetime.fromisoformat(str(clock["now"]).replace("Z", "+00:00"))

    async def sync(self, *, full: bool = True) -> list[Any]:
        """Read the sim into the ledger (a full sweep by default)."""
        await self.reconciler.discover()
        return await self.reconciler.run_cycle(full=full)

    async def discover(self) -> None:
        """Only the installations and repositories (no PR reads)."""
        await self.reconciler.discover()

    async def evaluate(self, repository: str = "acme/widgets") -> list[PullEvaluation]:
        results = await self.engine.evaluate_repository(repository, await self.now())
        self.evaluations += results
        return results

    async def writes(self) -> dict[str, int]:
        """Successful writes the sim counted, by endpoint."""
        return dict((await self.control.accounting())["writes"])

    async def requests(self) -> dict[str, int]:
        return dict((await self.control.accounting())["requests"])

    async def bot_comments(self, repository: str, number: int) -> list[dict[str, Any]]:
        state = await self.control.state(repository)
        owner, name = repository.split("/")
        sim_repo = self.server.sim.state.repo(owner, name)
        assert state is not None and sim_repo is not None
        return [
            {"id": c.id, "body": c.body, "user": c.user}
            for c in sorted(sim_repo.comments.values(), key=lambda c: c.id)
            if c.issue_number == number and c.user.endswith("[bot]")
        ]

    async def db_repository(self, repository: str = "acme/widgets") -> int:
        """The ledger id of a repository."""
        from ledger.repositories import get_repository

        row = await get_repository(self.db, repository)
        assert row is not None and row.id is not None
        return row.id

    def set_file(self, repository: str, path: str, text: str | None) -> None:
        """Change a file on the repository's default branch, in the sim's state."""
        owner, name = repository.split("/")
        sim_repo = self.server.sim.state.repo(owner, name)
        assert sim_repo is not None
        if text is None:
            sim_repo.files.pop(path, None)
        else:
            sim_repo.files[path] = text


def acting_scenario(
    *, mode: str = "act", pulls: list[dict[str, Any]] | None = None, **repo: Any
) -> dict[str, Any]:
    """One installation (acme, id 1) with ``acme/widgets`` holding ``pulls`` and a
    ``.github/prsteward.yml`` that sets ``mode``."""
    files = {".github/prsteward.yml": f"mode: {mode}\n"} if mode else {}
    files.update(repo.pop("files", {}))
    return {
        "installations": [
            {
                "id": 1,
                "account": "acme",
                "repositories": [
                    {
                        "name": "widgets",
                        "collaborators": {"alice": "admin", "bob": "write"},
                        "labels": ["bug", "needs-rebase"],
                        "files": files,
                        "pulls": pulls
                        if pulls is not None
                        else [
                            {
                                "number": 11,
                                "title": "Fix crash",
                                "author": "dave",
                                "created": "-2d",
                                "checks": {"ci": "failure", "lint": "success"},
                            }
                        ],
                        **repo,
                    }
                ],
            }
        ]
    }


@pytest.fixture
async def acting_world(
    sim_factory: SimFactory, sqlite_url: str
) -> AsyncIterator[Callable[..., Awaitable[ActingWorld]]]:
    """``await acting_world(scenario, escalate=None)`` -> a wired :class:`ActingWorld`."""
    ledgers: list[Ledger] = []

    async def build(
        scenario: dict[str, Any] | None = None, escalate: EscalationHook | None = None
    ) -> ActingWorld:
        server = await sim_factory(scenario or acting_scenario())
        await upgrade_async(sqlite_url)
        db = Ledger(sqlite_url)
        ledgers.append(db)
        app = GitHubApp(
            app_id=server.app_id,
            private_key=server.private_key_pem,
            api_url=server.base_url,
            sleep=_no_sleep,  # retries back off without real waiting
        )
        reconciler = Reconciler(app, db)
        loader = ConfigLoader(app, db)
        pacer_time = FakeTime()
        world: ActingWorld

        def actions_for(installation_id: int, config: Config) -> Actions:
            actions: Actions = GitHubActions(app.installation(installation_id), config.app_logins)
            if world.wrap_actions is not None:
                actions = world.wrap_actions(actions)
            return actions

        executor = Executor(
            db,
            actions_for,
            pacer=WritePacer(clock=pacer_time, sleep=pacer_time.sleep),
            clock=_SimClock(server),
            escalate=escalate,
        )
        engine = Engine(db, executor, loader, clock=_SimClock(server))
        world = ActingWorld(server, db, app, reconciler, loader, executor, engine, pacer_time)
        return world

    yield build
    for db in ledgers:
        await db.close()


async def _no_sleep(_seconds: float) -> None:
    return None


class _SimClock:
    """The sim's clock, read in process (the executor stamps actions with it)."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def __call__(self) -> datetime:
        now: datetime = self.server.sim.clock.now()
        return now
