"""JSONL export/import: lossless, byte-stable across SQLite and PostgreSQL, refuses bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.db import Ledger
from ledger.inbox import IncomingDelivery, store_deliveries
from ledger.jsonl import (
    LedgerImportError,
    export_file,
    export_jsonl,
    import_file,
    import_jsonl,
    tables_in_order,
)
from ledger.migrate import head_revision, upgrade_async
from ledger.models import Agent, Installation, PullRequest, Repository, Spend, WebhookDelivery
from tests.ledger.populate import T0, populate


async def _export(db: Ledger) -> str:
    out = io.StringIO()
    await export_jsonl(db, out)
    return out.getvalue()


async def _fresh(url: str) -> Ledger:
    await upgrade_async(url)
    return Ledger(url)


async def _round_trip(source_url: str, target_url: str) -> tuple[str, str]:
    source = await _fresh(source_url)
    target = await _fresh(target_url)
    try:
        await populate(source)
        first = await _export(source)
        await import_jsonl(target, io.StringIO(first))
        second = await _export(target)
    finally:
        await source.close()
        await target.close()
    return first, second


async def test_export_covers_every_table_with_rows(sqlite_url: str) -> None:
    db = await _fresh(sqlite_url)
    try:
        await populate(db)
        lines = [json.loads(line) for line in (await _export(db)).splitlines()]
    finally:
        await db.close()

    assert lines[0]["kind"] == "header"
    assert lines[0]["schema_revision"] == head_revision()
    assert lines[-1]["kind"] == "end"
    tables_with_rows = {line["table"] for line in lines if line["kind"] == "row"}
    assert tables_with_rows == {table.name for table in tables_in_order()}


async def test_sqlite_to_postgres_and_back_is_byte_identical(
    sqlite_url: str, postgres_url: str, tmp_path: Path
) -> None:
    first, second = await _round_trip(sqlite_url, postgres_url)
    assert second == first

    other_sqlite = f"sqlite+aiosqlite:///{tmp_path / 'again.db'}"
    target = await _fresh(other_sqlite)
    try:
        await import_jsonl(target, io.StringIO(second))
        third = await _export(target)
    finally:
        await target.close()
    assert third == first


async def test_postgres_to_sqlite_is_byte_identical(sqlite_url: str, postgres_url: str) -> None:
    first, second = await _round_trip(postgres_url, sqlite_url)
    assert second == first


async def test_values_survive_exactly(sqlite_url: str, postgres_url: str) -> None:
    source = await _fresh(sqlite_url)
    target = await _fresh(postgres_url)
    try:
        await populate(source)
        await import_jsonl(target, io.StringIO(await _export(source)))
        async with target.transaction() as session:
            ping = (
                await session.execute(
                    select(WebhookDelivery).where(WebhookDelivery.delivery_id == "d-2")
                )
            ).scalar_one()
            user = await session.get(Installation, 9_000_000_001)
            spend = (await session.execute(select(Spend).where(Spend.kind == "spend"))).scalar_one()
            repo = (
                await session.execute(
                    select(Repository).where(Repository.full_name == "acme/wïdget")
                )
            ).scalar_one()
            pull = (
                await session.execute(select(PullRequest).where(PullRequest.number == 7))
            ).scalar_one()
    finally:
        await source.close()
        await target.close()

    assert ping.payload == bytes(range(256))
    assert ping.action is None
    assert user is not None and user.account_login == "солнце"
    assert spend.dollars == 0.1 + 0.2
    assert repo.config_error_at == T0 and repo.config_error_at.utcoffset().total_seconds() == 0
    assert pull.snapshot is not None
    assert pull.snapshot["extra"]["nested"]["deeper"] == [
        1,
        2.5,
        None,
        True,
        {"z": "last", "a": "first"},
    ]


async def test_import_on_postgres_resets_id_sequences(sqlite_url: str, postgres_url: str) -> None:
    source = await _fresh(sqlite_url)
    target = await _fresh(postgres_url)
    try:
        await populate(source)
        await import_jsonl(target, io.StringIO(await _export(source)))
        async with target.transaction() as session:
            agent = Agent(name="fixer-2", token_hash="sha256:" + "1" * 64, created_at=T0)
            session.add(agent)
            await session.flush()
            highest = (await session.execute(select(func.max(Agent.id)))).scalar_one()
    finally:
        await source.close()
        await target.close()
    assert agent.id == highest and agent.id is not None and agent.id > 1


async def test_import_refuses_a_non_empty_ledger_and_changes_nothing(database_url: str) -> None:
    db = await _fresh(database_url)
    try:
        await populate(db)
        before = await _export(db)
        with pytest.raises(LedgerImportError, match="not empty"):
            await import_jsonl(db, io.StringIO(before))
        after = await _export(db)
    finally:
        await db.close()
    assert after == before


async def _valid_export(url: str) -> list[str]:
    db = await _fresh(url)
    try:
        await populate(db)
        return (await _export(db)).splitlines(keepends=True)
    finally:
        await db.close()


def _row_line(lines: list[str], table: str) -> int:
    return next(i for i, line in enumerate(lines) if json.loads(line).get("table") == table)


def _bad_value(lines: list[str], table: str, column: str, value: object) -> list[str]:
    index = _row_line(lines, table)
    document = json.loads(lines[index])
    document["row"][column] = value
    return [*lines[:index], json.dumps(document) + "\n", *lines[index + 1 :]]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: lines[:-1], "truncated"),
        (lambda lines: lines[:-2] + lines[-1:], "row counts do not match"),
        (lambda lines: [lines[0], "{not json\n", *lines[1:]], "line 2: not JSON"),
        (lambda lines: lines[1:], "no header"),
        (lambda lines: _bad_value(lines, "webhook_delivery", "payload", "***"), "base64"),
        (lambda lines: _bad_value(lines, "observation", "observed_at", "yesterday"), "ISO-8601"),
        (
            lambda lines: _bad_value(lines, "observation", "observed_at", "2026-01-01T00:00:00"),
            "no timezone",
        ),
        (lambda lines: _bad_value(lines, "repository", "nonsense", 1), "no column nonsense"),
        (lambda lines: _bad_value(lines, "repository", "full_name", None), "must not be null"),
        (lambda lines: _bad_value(lines, "pull_request", "number", "7"), "must be int"),
        (
            lambda lines: [lines[0].replace(head_revision(), "9999"), *lines[1:]],
            "revision 9999",
        ),
    ],
    ids=[
        "no end line -> truncated",
        "a row missing -> counts differ",
        "garbage line -> not JSON with line number",
        "no header -> refused",
        "bad base64 -> refused",
        "bad datetime -> refused",
        "naive datetime -> refused",
        "unknown column -> refused",
        "null in NOT NULL column -> refused",
        "string for int -> refused",
        "other schema revision -> refused",
    ],
)
async def test_bad_file_is_refused_and_ledger_stays_empty(
    sqlite_url: str, tmp_path: Path, damage: object, message: str
) -> None:
    lines = await _valid_export(f"sqlite+aiosqlite:///{tmp_path / 'source.db'}")
    damaged = "".join(damage(lines))  # type: ignore[operator]
    target = await _fresh(sqlite_url)
    try:
        with pytest.raises(LedgerImportError, match=message):
            await import_jsonl(target, io.StringIO(damaged))
        after = [json.loads(line) for line in (await _export(target)).splitlines()]
    finally:
        await target.close()
    assert [line for line in after if line["kind"] == "row"] == []


async def test_export_file_is_written_atomically_and_reimports(
    sqlite_url: str, tmp_path: Path
) -> None:
    db = await _fresh(sqlite_url)
    out = tmp_path / "ledger.jsonl"
    try:
        await populate(db)
        counts = await export_file(db, out)
    finally:
        await db.close()
    assert counts.total == len(out.read_text().splitlines()) - 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".prsteward-export-")] == []

    target = await _fresh(f"sqlite+aiosqlite:///{tmp_path / 'copy.db'}")
    try:
        imported = await import_file(target, out)
    finally:
        await target.close()
    assert imported.rows == counts.rows


def _cli(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRSTEWARD_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_cli_export_then_import_into_fresh_ledger(sqlite_url: str, tmp_path: Path) -> None:
    db = await _fresh(sqlite_url)
    try:
        await populate(db)
    finally:
        await db.close()
    out = tmp_path / "export.jsonl"
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"

    exported = _cli(["export", "--out", str(out)], sqlite_url)
    imported = _cli(["import", str(out)], fresh)
    again = _cli(["import", str(out)], fresh)

    assert exported.returncode == 0, exported.stderr
    assert imported.returncode == 0, imported.stderr
    assert again.returncode == 2
    assert "not empty" in again.stderr and "Traceback" not in again.stderr
    copy = tmp_path / "copy.jsonl"
    assert _cli(["export", "--out", str(copy)], fresh).returncode == 0
    assert copy.read_bytes() == out.read_bytes()


async def test_rows_breaking_a_foreign_key_are_refused_on_both_backends(
    database_url: str, tmp_path: Path
) -> None:
    lines = await _valid_export(f"sqlite+aiosqlite:///{tmp_path / 'source.db'}")
    damaged = "".join(_bad_value(lines, "pull_request", "repository_id", 999))
    target = await _fresh(database_url)
    try:
        with pytest.raises(LedgerImportError, match="pull_request: rows violate the schema"):
            await import_jsonl(target, io.StringIO(damaged))
        after = [json.loads(line) for line in (await _export(target)).splitlines()]
    finally:
        await target.close()
    assert [line for line in after if line["kind"] == "row"] == []


async def test_tables_larger_than_one_insert_chunk_round_trip(
    sqlite_url: str, postgres_url: str
) -> None:
    source = await _fresh(sqlite_url)
    target = await _fresh(postgres_url)
    try:
        await store_deliveries(
            source,
            [
                IncomingDelivery(f"d{i:05d}", "push", f"payload {i}".encode(), T0)
                for i in range(1_234)
            ],
        )
        first = await _export(source)
        counts = await import_jsonl(target, io.StringIO(first))
        second = await _export(target)
    finally:
        await source.close()
        await target.close()
    assert counts.rows["webhook_delivery"] == 1_234
    assert second == first
