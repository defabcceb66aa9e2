"""Property (hypothesis): for any interleaving of ``/prsteward`` freeze/unfreeze/pause/resume
comments by a maintainer, a non-maintainer, another bot and the App (in two spellings), read
in any number of partial reads and then redelivered, the PR's switches in the ledger are exactly
the maintainer's commands folded in order, and each comment is recorded once."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import CommandDesk
from ledger import commands as ledger_commands
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.history import PullKey
from ledger.migrate import upgrade_async
from ledger.models import ObservationSource
from policies.config import Config
from policies.snapshot import AuthorAssociation, snapshot_to_json
from tests.factories import T0, make_actor, make_comment, make_snapshot

PEOPLE = {
    "alice": make_actor("alice", association=AuthorAssociation.MEMBER),  # the maintainer
    "dave": make_actor("dave", association=AuthorAssociation.NONE),
    "bot": make_actor("ci-bot[bot]", is_bot=True),
    "app": make_actor("prsteward[bot]", is_bot=True),
    "app-member": make_actor("PrSteward", association=AuthorAssociation.MEMBER),
}
VERBS = ("freeze", "unfreeze", "pause", "resume", "explain", "bogus")
SWITCH = {
    "freeze": ("frozen", True),
    "unfreeze": ("frozen", False),
    "pause": ("paused", True),
    "resume": ("paused", False),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "template.db"
    asyncio.run(upgrade_async(f"sqlite+aiosqlite:///{path}"))
    return path


async def run(path: Path, script: list[tuple[str, str]], cuts: list[int]) -> None:
    db = Ledger(f"sqlite+aiosqlite:///{path}")
    try:
        comments = tuple(
            make_comment(PEOPLE[who], T0 + timedelta(minutes=i), f"/prsteward {verb}", id=5000 + i)
            for i, (who, verb) in enumerate(script)
        )
        snapshot = make_snapshot(number=7)
        await pulls.record_snapshot(
            db, "acme/widgets", 7, snapshot_to_json(snapshot), "f0", ObservationSource.POLL, T0
        )
        pull = await pulls.get_pull(db, "acme/widgets", 7)
        row = await repositories.get_repository(db, "acme/widgets")
        assert pull is not None and row is not None and pull.id is not None and row.id is not None
        key = PullKey(pull.id, row.id)
        desk = CommandDesk(db)
        config = Config()
        # partial reads (the comments as they arrive), then everything again, twice (redelivery)
        for cut in [*sorted(cuts), len(comments), len(comments)]:
            seen = replace(snapshot, comments=comments[:cut])
            await desk.take(row, pull, key, seen, config, T0 + timedelta(hours=1))

        expected = {"frozen": False, "paused": False}
        for who, verb in script:
            if who == "alice" and verb in SWITCH:
                column, value = SWITCH[verb]
                expected[column] = value
        after = await pulls.get_pull(db, "acme/widgets", 7)
        assert after is not None
        assert {"frozen": after.frozen, "paused": after.paused} == expected
        rows = await ledger_commands.list_commands(db, pull.id)
        assert sorted(r.comment_id for r in rows) == [c.id for c in comments]
        assert all(
            r.accepted == (r.author_login == "alice" and r.command != "unknown") for r in rows
        )
    finally:
        await db.close()


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    script=st.lists(st.tuples(st.sampled_from(sorted(PEOPLE)), st.sampled_from(VERBS)), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=8), max_size=3),
)
def test_switches_are_the_maintainers_commands_folded_once(
    template: Path, tmp_path: Path, script: list[tuple[str, str]], cuts: list[int]
) -> None:
    path = tmp_path / "ledger.db"
    shutil.copy(template, path)
    cuts = [min(c, len(script)) for c in cuts]
    asyncio.run(run(path, script, cuts))
