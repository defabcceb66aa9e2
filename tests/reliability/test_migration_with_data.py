"""Migrations from an older schema with data in it, on SQLite and PostgreSQL.

The older ledger is ``data/ledger-0001.jsonl``: rows for every table (tests/ledger/populate.py:
unicode, NULLs, bytes, nested JSON; one PR snapshot with a base branch and linked issues),
exported at revision 0001, the first revision. The test builds a ledger at 0001, loads the rows
into the 0001 tables as they were (only the columns 0001 has, encoded by the ledger's own types),
upgrades to head and checks: every old row and value is still there, the schema is exactly the
models', and 0002's backfill (``pull_request.base_ref`` and ``pull_request_issue`` from the
snapshots) happened. Keep the fixture at 0001; a migration that changes what an old value means
says so here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, Table, insert, inspect

from ledger.db import Ledger, make_engine
from ledger.jsonl import _decode, export_jsonl, tables_in_order
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


async def load_at_old_revision(url: str, text: str) -> None:
    """Insert the fixture's rows into the tables as the old revision has them."""
    head_tables = {table.name: table for table in tables_in_order()}
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            existing = await connection.run_sync(
                lambda sync: {
                    name: {column["name"] for column in inspect(sync).get_columns(name)}
                    for name in inspect(sync).get_table_names()
                }
            )
            for number, line in enumerate(text.splitlines(), start=1):
                document = json.loads(line)
                if document["kind"] != "row":
                    continue
                head = head_tables[document["table"]]
                columns = [c for c in head.columns if c.name in existing[head.name]]
                old = Table(
                    head.name,
                    MetaData(),
                    *(Column(c.name, c.type, primary_key=c.primary_key) for c in columns),
                )
                row = document["row"]
                values = {c.name: _decode(c, row.get(c.name), f"line {number}") for c in columns}
                await connection.execute(insert(old), [values])
    finally:
        await engine.dispose()


async def test_upgrade_from_the_first_revision_keeps_every_row(database_url: str) -> None:
    text = FIXTURE.read_text()
    old_revision, old_tables = rows_of(text)
    await upgrade_async(database_url, old_revision)
    assert await current_async(database_url) == old_revision
    await load_at_old_revision(database_url, text)

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
    # 0002: base_ref and the issue links were backfilled from the snapshots.
    linked = next(p for p in new_tables["pull_request"] if p["snapshot"].get("base_ref"))
    assert linked["base_ref"] == "main"
    links = {
        (row["pull_request_id"], row["issue_number"])
        for row in new_tables.get("pull_request_issue", [])
    }
    assert links == {(linked["id"], 7), (linked["id"], 9)}
