"""Migrations: the same revisions build exactly the models' schema on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import inspect

from ledger.db import make_engine
from ledger.migrate import current_async, head_revision, schema_differences, upgrade_async
from ledger.models import metadata


async def _table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_creates_every_table_at_head(database_url: str) -> None:
    assert await current_async(database_url) is None

    revision = await upgrade_async(database_url)

    assert revision == head_revision()
    assert await current_async(database_url) == head_revision()
    assert await _table_names(database_url) == set(metadata.tables) | {"alembic_version"}


async def test_upgraded_schema_matches_models_exactly(database_url: str) -> None:
    await upgrade_async(database_url)

    assert await schema_differences(database_url) == []


async def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    await upgrade_async(database_url)
    tables = await _table_names(database_url)

    assert await upgrade_async(database_url) == head_revision()
    assert await _table_names(database_url) == tables
    assert await schema_differences(database_url) == []


def test_cli_db_upgrade_prints_revision_and_db_current_agrees(sqlite_url: str) -> None:
    env = {**os.environ, "PRSTEWARD_DATABASE_URL": sqlite_url}
    command = [sys.executable, "-c", "from bot.cli import main; main()"]

    upgraded = subprocess.run(
        [*command, "db", "upgrade"], env=env, capture_output=True, text=True, check=False
    )
    shown = subprocess.run(
        [*command, "db", "current"], env=env, capture_output=True, text=True, check=False
    )

    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"ledger at revision {head_revision()}"
    assert shown.returncode == 0, shown.stderr
    assert f"revision {head_revision()}" in shown.stdout
    assert "up to date" in shown.stdout


def test_cli_db_upgrade_on_unreachable_database_says_so_in_one_line() -> None:
    env = {
        **os.environ,
        "PRSTEWARD_DATABASE_URL": "postgresql://prsteward:hunter2@127.0.0.1:9/ledger",
    }
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("prsteward: cannot use the ledger at ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
