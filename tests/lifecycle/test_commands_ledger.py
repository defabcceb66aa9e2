"""The ledger side of commands and mode switches, on SQLite and PostgreSQL: a comment is
recorded once (a second insert of the same comment id is refused, so it never runs twice), the
switches and effects stick, and the repository's switch to ``act`` is recorded once, with its
time."""

from __future__ import annotations

from datetime import timedelta

from ledger import commands as ledger_commands
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.history import PullKey, load_history
from ledger.migrate import upgrade_async
from ledger.models import ObservationSource
from policies.snapshot import snapshot_to_json
from tests.factories import T0, make_snapshot


async def test_commands_once_switches_effects_and_mode(database_url: str) -> None:
    await upgrade_async(database_url)
    db = Ledger(database_url)
    try:
        await pulls.record_snapshot(
            db,
            "acme/widgets",
            7,
            snapshot_to_json(make_snapshot(number=7)),
            "f",
            ObservationSource.POLL,
            T0,
        )
        pull = await pulls.get_pull(db, "acme/widgets", 7)
        row = await repositories.get_repository(db, "acme/widgets")
        assert pull is not None and pull.id is not None and row is not None and row.id is not None
        key = PullKey(pull.id, row.id)
        escalate = ledger_commands.NewCommand(
            901, "alice", "escalate", (), True, "command.escalate"
        )
        first = await ledger_commands.record_command(db, key, escalate, T0)
        assert first is not None
        assert await ledger_commands.record_command(db, key, escalate, T0) is None  # redelivered
        assert await ledger_commands.recorded_comment_ids(db, row.id) == frozenset({901})
        assert (await load_history(db, key, T0)).commands.escalate_comment_id == 901
        await ledger_commands.set_effect(db, first, "escalated: job 3")
        assert (await load_history(db, key, T0)).commands.escalate_comment_id is None

        await ledger_commands.set_switches(db, pull.id, frozen=True, paused=True)
        await ledger_commands.set_switches(db, pull.id, paused=False)
        commands = (await load_history(db, key, T0)).commands
        assert (commands.frozen, commands.paused) == (True, False)

        assert await ledger_commands.acting_since(db, row.id) is None
        assert await ledger_commands.record_mode(db, row.id, "shadow", "config", T0)
        switch = T0 + timedelta(days=3)
        assert await ledger_commands.record_mode(db, row.id, "act", "config", switch)
        assert not await ledger_commands.record_mode(
            db, row.id, "act", "config", switch + timedelta(1)
        )
        assert await ledger_commands.acting_since(db, row.id) == switch
        assert await ledger_commands.record_mode(
            db, row.id, "shadow", "archived", switch + timedelta(2)
        )
        assert await ledger_commands.acting_since(db, row.id) is None
    finally:
        await db.close()
