"""The whole ledger as JSON lines: a portable, diffable, byte-stable copy.

Format (one JSON object per line, keys sorted, ASCII only):
    {"format": "prsteward-ledger", "format_version": 1, "kind": "header",
     "schema_revision": "0001", "tables": [...]}
    {"kind": "row", "row": {...}, "table": "installation"}          (tables in dependency
    ...                                                              order, rows by primary key)
    {"kind": "end", "rows": {"installation": 3, ...}}

Encodings: datetimes ISO-8601 in UTC with microseconds (``2026-01-02T03:04:05.000006+00:00``),
bytes base64, JSON columns as nested JSON, SQL NULL as null. Exporting the same ledger twice,
or a ledger imported from an export, gives the same bytes on SQLite and PostgreSQL.

Import streams the file into an empty ledger at the file's schema revision, in one
transaction: a bad line, a truncated file or a non-empty ledger is refused with a message and
nothing is written.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Column, LargeBinary, Table, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import JSON

from ledger.db import READ_ONLY, Ledger
from ledger.migrate import current_async
from ledger.models import metadata
from ledger.types import UTCDateTime

FORMAT = "prsteward-ledger"
FORMAT_VERSION = 1
# Rows per INSERT on import (bind-parameter limits: at most ~30 columns per table).
_IMPORT_CHUNK = 500


class LedgerImportError(ValueError):
    """The file cannot be imported; the message says why (and where, for a bad line)."""


@dataclass(frozen=True, slots=True)
class TableCounts:
    """Rows per table, in export order."""

    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def tables_in_order() -> list[Table]:
    """Every ledger table, parents before children (so an import satisfies foreign keys)."""
    return list(metadata.sorted_tables)


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def _encode(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(column.type, LargeBinary):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _decode(column: Column[Any], value: Any, where: str) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        if not isinstance(value, str):
            raise LedgerImportError(f"{where}: {column.name} must be an ISO-8601 string")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise LedgerImportError(f"{where}: {column.name} is not ISO-8601: {value!r}") from None
        if parsed.tzinfo is None:
            raise LedgerImportError(f"{where}: {column.name} has no timezone: {value!r}")
        return parsed
    if isinstance(column.type, LargeBinary):
        if not isinstance(value, str):
            raise LedgerImportError(f"{where}: {column.name} must be base64 text")
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise LedgerImportError(f"{where}: {column.name} is not valid base64") from None
    if isinstance(column.type, JSON):
        return value
    python_type = _python_type(column)
    if python_type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if python_type is not None and not isinstance(value, python_type):
        raise LedgerImportError(
            f"{where}: {column.name} must be {python_type.__name__}, got {type(value).__name__}"
        )
    if python_type is int and isinstance(value, bool):
        raise LedgerImportError(f"{where}: {column.name} must be int, got bool")
    return value


def _python_type(column: Column[Any]) -> type | None:
    try:
        python_type: type = column.type.python_type
    except NotImplementedError:
        return None
    return python_type


# --- export ------------------------------------------------------------------------------------


async def _export_to(connection: AsyncConnection, out: IO[str], revision: str) -> TableCounts:
    tables = tables_in_order()
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "header",
        "schema_revision": revision,
        "tables": [table.name for table in tables],
    }
    out.write(_dump(header) + "\n")
    counts: dict[str, int] = {}
    for table in tables:
        columns = list(table.columns)
        statement = select(table).order_by(*table.primary_key.columns)
        result = await connection.stream(statement)
        count = 0
        async for row in result:
            encoded = {
                column.name: _encode(column, value)
                for column, value in zip(columns, row, strict=True)
            }
            out.write(_dump({"kind": "row", "row": encoded, "table": table.name}) + "\n")
            count += 1
        counts[table.name] = count
    out.write(_dump({"kind": "end", "rows": counts}) + "\n")
    return TableCounts(counts)


async def export_jsonl(db: Ledger, out: IO[str]) -> TableCounts:
    """Write the whole ledger to ``out`` (one consistent snapshot); returns rows per table."""
    revision = await current_async(db.url)
    if revision is None:
        raise LedgerImportError("the ledger has no schema yet: run `prsteward db upgrade` first")
    async with db.engine.connect() as connection:
        await connection.execution_options(**READ_ONLY)
        if db.backend == "postgresql":
            # One snapshot for every table, even while the service keeps writing.
            await connection.execute(
                text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            )
        return await _export_to(connection, out, revision)


async def export_file(db: Ledger, path: Path) -> TableCounts:
    """Export to ``path`` atomically: the file appears complete or not at all."""
    directory = path.resolve().parent
    handle, scratch = tempfile.mkstemp(prefix=".prsteward-export-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="ascii", newline="\n") as out:
            counts = await export_jsonl(db, out)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return counts


# --- import ------------------------------------------------------------------------------------


def _lines(source: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(source, start=1):
        if not line.strip():
            raise LedgerImportError(f"line {number}: empty line")
        try:
            document = json.loads(line)
        except json.JSONDecodeError as error:
            raise LedgerImportError(f"line {number}: not JSON ({error.msg})") from None
        if not isinstance(document, dict):
            raise LedgerImportError(f"line {number}: expected a JSON object")
        yield number, document


def _read_header(lines: Iterator[tuple[int, dict[str, Any]]]) -> str:
    """The header's schema revision, after checking it is our format."""
    first = next(lines, None)
    if first is None:
        raise LedgerImportError("the file is empty")
    _, header = first
    if header.get("kind") != "header" or header.get("format") != FORMAT:
        raise LedgerImportError(f"line 1: not a {FORMAT} export (no header)")
    if header.get("format_version") != FORMAT_VERSION:
        raise LedgerImportError(
            f"line 1: format_version {header.get('format_version')!r} is not {FORMAT_VERSION}"
        )
    revision = header.get("schema_revision")
    if not isinstance(revision, str):
        raise LedgerImportError("line 1: the header has no schema_revision")
    return revision


def _decode_row(
    number: int, document: dict[str, Any], tables: dict[str, Table]
) -> tuple[Table, dict[str, Any]]:
    where = f"line {number}"
    if document.get("kind") != "row":
        raise LedgerImportError(f"{where}: unknown kind {document.get('kind')!r}")
    name = document.get("table")
    table = tables.get(name) if isinstance(name, str) else None
    if table is None:
        raise LedgerImportError(f"{where}: unknown table {name!r}")
    row = document.get("row")
    if not isinstance(row, dict):
        raise LedgerImportError(f"{where}: row must be a JSON object")
    unknown = sorted(set(row) - set(table.columns.keys()))
    if unknown:
        raise LedgerImportError(f"{where}: {table.name} has no column {', '.join(unknown)}")
    decoded: dict[str, Any] = {}
    for column in table.columns:
        value = _decode(column, row.get(column.name), f"{where} ({table.name})")
        if value is None and not column.nullable:
            raise LedgerImportError(f"{where}: {table.name}.{column.name} must not be null")
        decoded[column.name] = value
    return table, decoded


def _check_end(document: dict[str, Any] | None, found: dict[str, int]) -> None:
    if document is None:
        raise LedgerImportError("the file has no end line: it is truncated")
    expected = document.get("rows")
    nonzero = {name: count for name, count in found.items() if count}
    if not isinstance(expected, dict) or {k: v for k, v in expected.items() if v} != nonzero:
        raise LedgerImportError(f"row counts do not match the end line: {expected} vs {nonzero}")


async def _row_counts(connection: AsyncConnection) -> dict[str, int]:
    counts = {}
    for table in tables_in_order():
        result = await connection.execute(select(func.count()).select_from(table))
        counts[table.name] = int(result.scalar_one())
    return counts


def _reset_sequences(connection: Connection) -> None:
    """After explicit ids were inserted, let PostgreSQL's sequences continue past them."""
    for table in tables_in_order():
        key = list(table.primary_key.columns)
        if len(key) != 1 or key[0].autoincrement is False:
            continue
        column = key[0].name
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
                f'COALESCE(MAX("{column}"), 1), MAX("{column}") IS NOT NULL) '
                f'FROM "{table.name}"'
            )
        )


async def _insert(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    try:
        await connection.execute(insert(table), rows)
    except IntegrityError as error:
        first_line = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise LedgerImportError(f"{table.name}: rows violate the schema: {first_line}") from None


async def import_jsonl(db: Ledger, source: IO[str]) -> TableCounts:
    """Load an export into this ledger, which must be empty and at the file's schema revision.

    The file is streamed (memory stays bounded) into one transaction: on any error
    (``LedgerImportError`` naming the line and the reason, a truncated file, counts that do
    not match the end line) the transaction is rolled back and the ledger stays empty.
    """
    tables = {table.name: table for table in tables_in_order()}
    lines = _lines(source)
    file_revision = _read_header(lines)
    revision = await current_async(db.url)
    if revision is None:
        raise LedgerImportError("the ledger has no schema yet: run `prsteward db upgrade` first")
    if revision != file_revision:
        raise LedgerImportError(
            f"the file is at schema revision {file_revision} but the ledger is at {revision}: "
            "import into a ledger at the same revision"
        )
    found = dict.fromkeys(tables, 0)
    async with db.engine.begin() as connection:
        existing = {name: count for name, count in (await _row_counts(connection)).items() if count}
        if existing:
            shown = ", ".join(f"{name}: {count}" for name, count in existing.items())
            raise LedgerImportError(
                f"the ledger is not empty ({shown} rows): import only into an empty ledger"
            )
        pending: list[dict[str, Any]] = []
        pending_table: Table | None = None
        end: dict[str, Any] | None = None
        for number, document in lines:
            if end is not None:
                raise LedgerImportError(f"line {number}: content after the end line")
            if document.get("kind") == "end":
                end = document
                continue
            table, row = _decode_row(number, document, tables)
            if pending_table is not None and (
                table is not pending_table or len(pending) >= _IMPORT_CHUNK
            ):
                await _insert(connection, pending_table, pending)
                pending = []
            pending_table = table
            pending.append(row)
            found[table.name] += 1
        if pending_table is not None and pending:
            await _insert(connection, pending_table, pending)
        _check_end(end, found)
        if db.backend == "postgresql":
            await connection.run_sync(_reset_sequences)
    return TableCounts(found)


async def import_file(db: Ledger, path: Path) -> TableCounts:
    """``import_jsonl`` from a file; a file that is not UTF-8 text is refused clearly."""
    try:
        with path.open(encoding="utf-8", newline="\n") as source:
            return await import_jsonl(db, source)
    except UnicodeDecodeError as error:
        raise LedgerImportError(f"{path}: not UTF-8 text ({error.reason})") from None
