"""``prsteward serve`` wiring of issue 11: attach_escalations sets the announcer (exhaustion and
boundaries, once each), the low-return review and the budget command on the desk; tick runs
them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.budgets import LowReturnReview
from bot.commands import CommandDesk
from bot.jobs_api import attach_escalations
from tests.acting.test_escalation_support import fresh_sqlite_ledger


@dataclass
class FakeServer:
    mounts: list[Any] = field(default_factory=list)
    background: list[Any] = field(default_factory=list)


@dataclass
class FakeEngine:
    commands: Any


@dataclass
class FakeService:
    db: Any
    app: Any = None
    engine: Any = None


async def test_attach_escalations_wires_announcements_reviews_and_grants(tmp_path: Path) -> None:
    db = await fresh_sqlite_ledger(tmp_path / "ledger.db")
    try:
        desk = CommandDesk(db)
        service = FakeService(db, engine=FakeEngine(desk))
        escalations = attach_escalations(service, FakeServer())
        assert escalations.announce is not None
        assert isinstance(escalations.review_repositories, LowReturnReview)
        assert desk.grant_budget is not None
        assert await escalations.tick() == {"expired": 0, "verified": 0}
        effect = await desk.grant_budget("acme/widgets", 1, 50_000, None, "alice")
        assert "nothing granted" in effect
    finally:
        await db.close()
