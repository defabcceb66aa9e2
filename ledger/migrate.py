"""Schema migrations (Alembic), driven from code: no alembic.ini, the URL is an argument.

    upgrade(url)            -> the revision the ledger is at afterwards (sync; CLI)
    await upgrade_async(url)  the same from inside an event loop (``serve`` at start)
    current(url), head_revision(), await schema_differences(url)

To add a revision after changing ``ledger/models.py``:
    python -m ledger.migrate revision "add foo to bar"
It autogenerates against a scratch SQLite ledger upgraded to head, numbered 0002, 0003, ...;
review the file it writes, then run `ruff format` and `ruff check --fix` on it.

Replicas share one PostgreSQL during a deploy, so a revision must keep the previous release
working: expand first (add nullable columns/tables), contract (drop, rename) a release later.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ledger.db import make_engine
from ledger.models import metadata

log = logging.getLogger("prsteward.ledger.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant: replicas starting together take turns migrating a PostgreSQL ledger.
_MIGRATION_LOCK_KEY = 0x70727374  # "prst"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> str | None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = alembic_config(connection)
    at = _current(connection)
    if at is not None and not _known(config, at):
        # A newer release already migrated this ledger (a rolling deploy, or a rollback):
        # its revisions only expand the schema for one release, so this code still works.
        log.warning(
            "ledger is at revision %s, newer than this code knows (head %s): not migrating",
            at,
            head_revision(),
        )
        return at
    command.upgrade(config, revision)
    return _current(connection)


def _known(config: Config, revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic says "can't locate revision" in several ways
        return False


async def upgrade_async(url: str, revision: str = "head") -> str | None:
    """Bring the ledger at ``url`` up to ``revision``; returns the revision it is at afterwards.
    Idempotent: at head already, nothing changes."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


async def current_async(url: str) -> str | None:
    """The ledger's revision, or None for an empty (never upgraded) database."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def schema_differences(url: str) -> list[Any]:
    """What Alembic's autogenerate finds different between the models and the database
    (empty when the migrations produce exactly the models' schema)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_differences)
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Synchronous ``upgrade_async`` for the CLI and scripts (not from inside an event loop)."""
    return asyncio.run(upgrade_async(url, revision))


def current(url: str) -> str | None:
    """Synchronous ``current_async``."""
    return asyncio.run(current_async(url))


def _revision(connection: Connection, message: str) -> None:
    config = alembic_config(connection)
    known = list(ScriptDirectory.from_config(config).walk_revisions())
    command.revision(config, message=message, autogenerate=True, rev_id=f"{len(known) + 1:04d}")


async def _generate_revision(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/scratch.db"
        await upgrade_async(url)
        engine = make_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_revision, message)
        finally:
            await engine.dispose()


if __name__ == "__main__":  # pragma: no cover - developer tool
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m ledger.migrate revision "message"')
    asyncio.run(_generate_revision(sys.argv[2]))
