"""Fixtures for the view tests: an upgraded ledger on each backend, empty or filled."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ledger.db import Ledger
from ledger.migrate import upgrade_async
from tests.view.fill import fill


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    """An empty ledger at the newest schema, on SQLite and on PostgreSQL."""
    await upgrade_async(database_url)
    db = Ledger(database_url)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def filled(ledger: Ledger) -> Ledger:
    """The ledger of ``tests/view/fill.py``."""
    await fill(ledger)
    return ledger


@pytest.fixture
async def filled_sqlite(sqlite_url: str) -> AsyncIterator[Ledger]:
    """The filled ledger on SQLite only (for tests of rendering, not of SQL)."""
    await upgrade_async(sqlite_url)
    db = Ledger(sqlite_url)
    try:
        await fill(db)
        yield db
    finally:
        await db.close()
