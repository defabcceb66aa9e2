"""Fixtures for the lifecycle tests (issue 12): the acting world of ``tests/acting`` with the
``/prsteward`` command desk wired into its engine, as ``prsteward serve`` wires it.

``lifecycle_world(scenario, escalate=None)`` -> a :class:`LifecycleWorld`; helpers read the
ledger's commands and the sim's reactions in process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.commands import CommandDesk, GitHubCommandClient
from bot.executor import EscalationHook
from ledger import commands as ledger_commands
from ledger import pulls
from ledger.models import MaintainerCommand, PullRequest
from policies.config import Config
from tests.acting.conftest import ActingWorld, acting_scenario, acting_world  # noqa: F401

__all__ = ["LifecycleWorld", "acting_scenario"]


@dataclass
class LifecycleWorld:
    """An :class:`ActingWorld` plus its :class:`CommandDesk`."""

    world: ActingWorld
    desk: CommandDesk
    refreshed: list[tuple[str, int]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)

    async def step(self, by: str | None = None, repository: str = "acme/widgets") -> None:
        """Advance the sim clock (optionally), read it and evaluate every open PR."""
        if by is not None:
            await self.world.control.advance(by)
        await self.world.sync()
        await self.world.evaluate(repository)

    async def comment(self, number: int, user: str, body: str, **extra: Any) -> int:
        result = await self.world.control.event(
            "comment", repo="acme/widgets", pr=number, user=user, body=body, **extra
        )
        return int(result["comment_id"])

    async def pull(self, number: int, repository: str = "acme/widgets") -> PullRequest:
        row = await pulls.get_pull(self.world.db, repository, number)
        assert row is not None
        return row

    async def commands(self, number: int) -> list[MaintainerCommand]:
        row = await self.pull(number)
        assert row.id is not None
        return await ledger_commands.list_commands(self.world.db, row.id)

    def reactions(self, comment_id: int, repository: str = "acme/widgets") -> list[str]:
        owner, name = repository.split("/")
        repo = self.world.server.sim.state.repo(owner, name)
        return [f"{r.user}:{r.content}" for r in repo.comments[comment_id].reactions]

    def sim_pull(self, number: int, repository: str = "acme/widgets") -> Any:
        owner, name = repository.split("/")
        return self.world.server.sim.state.repo(owner, name).pulls[number]


@pytest.fixture
async def lifecycle_world(
    acting_world: Callable[..., Awaitable[ActingWorld]],  # noqa: F811
) -> AsyncIterator[Callable[..., Awaitable[LifecycleWorld]]]:
    async def build(
        scenario: dict[str, Any] | None = None, escalate: EscalationHook | None = None
    ) -> LifecycleWorld:
        world = await acting_world(scenario, escalate)
        refreshed: list[tuple[str, int]] = []

        def client_for(installation_id: int, config: Config) -> GitHubCommandClient:
            return GitHubCommandClient(world.app.installation(installation_id), config.app_logins)

        def refresh_now(repository: str, number: int) -> None:
            refreshed.append((repository, number))

        desk = CommandDesk(
            world.db, client_for, pacer=world.executor.pacer, refresh_now=refresh_now
        )
        world.engine.commands = desk
        return LifecycleWorld(world, desk, refreshed)

    yield build
