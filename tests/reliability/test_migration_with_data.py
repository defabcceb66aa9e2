"""Migrations from an older schema with data in it, on SQLite and PostgreSQL.

The older ledger is ``data/ledger-0001.jsonl``: rows for every table (tests/ledger/populate.py:
unicode, NULLs, bytes, nested JSON), exported at revision 0001, the first revision. The test
builds a ledger at that revision, loads the rows, upgrades to head and checks every row and
value the old ledger had is still there, and the schema is exactly the models'.

Today 0001 is the only revision, so the upgrade step is a no-op: the test is the harness that
makes the next migration prove itself on real rows. Keep the fixture at 0001; when a migration
changes a column's meaning, say here what the old value becomes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory

from ledger.db import Ledger
from ledger.jsonl import export_jsonl, import_jsonl
from ledger.migrate import (
    alembic_config,
    current_async,
    head_revision,
    schema_differences,
    upgrade_async,
)

FIXTURE = Path(__file__).parent / "data" / "ledger-0001.jsonl"


def first_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    (base,) = script.get_bases()
    return base


def rows_of(text: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    revision = ""
    tables: dict[str, list[dict[str, Any]]] = {}
    for line in text.splitlines():
        document = json.loads(line)
        if document["kind"] == "header":
            revision = document["schema_revision"]
        elif document["kind"] == "row":
            tables.setdefault(document["table"], []).append(document["row"])
    return revision, tables


async def test_fixture_is_at_the_first_revision() -> None:
    revision, tables = rows_of(FIXTURE.read_text())
    assert revision == first_revision() == "0001"
    assert all(tables.values()) and len(tables) >= 18  # every table has rows


async def test_upgrade_from_the_first_revision_keeps_every_row(database_url: str) -> None:
    old_revision, old_tables = rows_of(FIXTURE.read_text())
    await upgrade_async(database_url, old_revision)
    assert await current_async(database_url) == old_revision
    async with Ledger(database_url) as db:
        with FIXTURE.open(encoding="utf-8") as source:
            await import_jsonl(db, source)

    assert await upgrade_async(database_url) == head_revision()

    assert await schema_differences(database_url) == []
    out = io.StringIO()
    async with Ledger(database_url) as db:
        await export_jsonl(db, out)
    new_revision, new_tables = rows_of(out.getvalue())
    assert new_revision == head_revision()
    for table, rows in old_tables.items():
        upgraded = new_tables.get(table, [])
        assert len(upgraded) == len(rows), table
        for old, new in zip(rows, upgraded, strict=True):
            kept = {column: new.get(column) for column in old}
            assert kept == old, f"{table}: {old} became {new}"
