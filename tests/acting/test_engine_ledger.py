"""The engine and executor over the ledger, on SQLite and PostgreSQL, with an in-memory
``Actions`` (the GitHub implementation is exercised against the sim in the other files): a quiet
cycle writes nothing, tier changes and duplicates are recorded once, a denied write opens a
boundary that holds until lifted, and the history the policies get reflects what was done."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.engine import Engine
from bot.executor import ActionFailed, Actions, BotComment, Executor, WritePacer
from ledger import candidates as ledger_candidates
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.models import Action, Candidate, Decision, ObservationSource
from policies.config import Config
from policies.snapshot import Mergeable, PullRequestSnapshot, snapshot_to_json
from tests.acting.conftest import FakeTime
from tests.factories import T0, days, failing, make_snapshot

REPO = "acme/widgets"
NOW = T0 + days(1)


class MemoryActions:
    """An in-memory GitHub for one PR's comments and labels; ``deny`` maps a method to 403."""

    def __init__(self) -> None:
        self.comments: dict[int, str] = {}
        self.labels: set[str] = set()
        self.calls: list[str] = []
        self.deny: set[str] = set()
        self._next = 100

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.deny:
            raise ActionFailed(403, "Resource not accessible by integration", "issues=write")

    async def bot_comments(self, repository: str, number: int) -> list[BotComment]:
        return [BotComment(i, b) for i, b in sorted(self.comments.items())]

    async def create_comment(self, repository: str, number: int, body: str) -> int:
        self._call("create_comment")
        self._next += 1
        self.comments[self._next] = body
        return self._next

    async def edit_comment(self, repository: str, comment_id: int, body: str) -> int:
        self._call("edit_comment")
        self.comments[comment_id] = body
        return comment_id

    async def add_label(self, repository: str, number: int, label: str) -> None:
        self._call("add_label")
        self.labels.add(label)

    async def remove_label(self, repository: str, number: int, label: str) -> None:
        self._call("remove_label")
        self.labels.discard(label)

    async def rerun_failed_checks(
        self, repository: str, head_sha: str, check_names: Sequence[str]
    ) -> list[int]:
        self._call("rerun")
        return [1]

    async def convert_to_draft(self, repository: str, node_id: str) -> None:
        self._call("draft")

    async def close_pull(self, repository: str, number: int) -> None:
        self._call("close")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(database_url)
    ledger = Ledger(database_url)
    yield ledger
    await ledger.close()


async def setup(db: Ledger, snapshot: PullRequestSnapshot, mode: str = "act") -> None:
    await repositories.upsert_installation(db, 1, "acme", NOW)
    await repositories.upsert_repository(db, REPO, NOW, installation_id=1)
    await repositories.record_config(
        db, REPO, Config(mode=mode).model_dump(by_alias=True, mode="json"), None, NOW
    )
    await observe(db, snapshot)


async def observe(db: Ledger, snapshot: PullRequestSnapshot) -> None:
    await pulls.record_snapshot(
        db,
        REPO,
        snapshot.number,
        snapshot_to_json(snapshot),
        snapshot.fingerprint(),
        ObservationSource.POLL,
        NOW,
    )


def engine_with(db: Ledger, actions: Actions) -> Engine:
    time = FakeTime()
    executor = Executor(
        db,
        lambda _installation, _config: actions,
        pacer=WritePacer(clock=time, sleep=time.sleep),
        clock=lambda: NOW,
    )
    return Engine(db, executor, None, clock=lambda: NOW)


async def counts(db: Ledger) -> dict[str, int]:
    found: dict[str, int] = {}
    async with db.transaction() as session:
        for name, model in (("candidate", Candidate), ("decision", Decision), ("action", Action)):
            found[name] = int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
            )
    return found


async def test_quiet_cycle_writes_nothing(db: Ledger) -> None:
    await setup(db, failing(make_snapshot(), "test"))
    actions = MemoryActions()
    engine = engine_with(db, actions)

    first = await engine.evaluate_pull(REPO, 1, NOW)
    assert first is not None and not first.quiet
    assert actions.calls == ["create_comment"]
    before = await counts(db)

    for hours in (1, 2, 3):
        again = await engine.evaluate_pull(REPO, 1, NOW + timedelta(hours=hours))
        assert again is not None and again.quiet, again
    assert await counts(db) == before
    assert actions.calls == ["create_comment"]


async def test_posted_key_proposed_again_is_recorded_as_duplicate_once(db: Ledger) -> None:
    conflicting = make_snapshot(mergeable=Mergeable.CONFLICTING)
    await setup(db, conflicting)
    actions = MemoryActions()
    engine = engine_with(db, actions)
    await engine.evaluate_pull(REPO, 1, NOW)
    assert actions.labels == {"needs-rebase"}

    # The ledger's snapshot does not show the label yet (not re-read): the same key again.
    for _ in range(3):
        await engine.evaluate_pull(REPO, 1, NOW)
    pull = await pulls.get_pull(db, REPO, 1)
    assert pull is not None and pull.id is not None
    rows = [
        r for r in await ledger_candidates.list_candidates(db, pull.id) if r.kind == "add_label"
    ]
    assert [r.outcome for r in rows] == ["posted", "suppressed_duplicate"]
    assert actions.calls.count("add_label") == 1


async def test_denied_write_opens_a_boundary_for_its_kind_until_lifted(db: Ledger) -> None:
    await setup(db, make_snapshot(mergeable=Mergeable.CONFLICTING, checks_state="FAILURE"))
    actions = MemoryActions()
    actions.deny.add("add_label")
    engine = engine_with(db, actions)
    for _ in range(3):
        await engine.evaluate_pull(REPO, 1, NOW)
    assert actions.calls.count("add_label") == 1
    assert actions.calls.count("create_comment") == 1  # other kinds still work

    repository = await repositories.get_repository(db, REPO)
    assert repository is not None and repository.id is not None
    standing = await ledger_candidates.active_boundaries(db, 1, repository.id)
    assert set(standing) == {"label"}
    assert standing["label"].accepted_permissions == "issues=write"
    assert standing["label"].message == "Resource not accessible by integration"

    assert await ledger_candidates.lift_boundaries(db, 1, "new_permissions_accepted", NOW) == 1
    actions.deny.clear()
    await engine.evaluate_pull(REPO, 1, NOW)
    assert actions.calls.count("add_label") == 2
    assert actions.labels == {"needs-rebase"}
