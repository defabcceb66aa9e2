"""Fixtures for ledger tests: an upgraded, empty ledger on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ledger.db import Ledger
from ledger.migrate import upgrade_async


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    """An empty ledger at the newest schema, on SQLite and on PostgreSQL."""
    await upgrade_async(database_url)
    db = Ledger(database_url)
    try:
        yield db
    finally:
        await db.close()
