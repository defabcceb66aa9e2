"""Engine set-up: URL normalisation, SQLite pragmas, datetimes that stay UTC on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from ledger.db import Ledger, LedgerURLError, normalise_url, redacted
from ledger.models import Installation
from ledger.types import UTCDateTime


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///ledger.db", "sqlite+aiosqlite:///ledger.db"),
        ("sqlite:////abs/ledger.db", "sqlite+aiosqlite:////abs/ledger.db"),
        ("sqlite+aiosqlite:///ledger.db", "sqlite+aiosqlite:///ledger.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
        ("  sqlite:///padded.db \n", "sqlite+aiosqlite:///padded.db"),
    ],
    ids=lambda value: value.strip() if isinstance(value, str) else str(value),
)
def test_url_is_normalised_to_the_async_driver(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "not a url", "", "sqlite+pysqlcipher:///x.db"])
def test_unsupported_url_is_refused_with_what_is_accepted(bad: str) -> None:
    with pytest.raises(LedgerURLError, match=r"sqlite|database URL"):
        normalise_url(bad)


def test_redacted_hides_the_password() -> None:
    shown = redacted("postgresql://prsteward:s3cret@db.internal/ledger")
    assert "s3cret" not in shown
    assert "db.internal" in shown


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(sqlite_url: str) -> None:
    db = Ledger(sqlite_url)
    try:
        async with db.engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
    finally:
        await db.close()
    assert (journal, foreign_keys, synchronous) == ("wal", 1, 1)  # synchronous 1 = NORMAL
    assert busy > 0


async def test_datetimes_come_back_as_the_same_instant_in_utc(ledger: Ledger) -> None:
    tokyo = datetime(2026, 1, 2, 9, 4, 5, 6, tzinfo=timezone(timedelta(hours=9)))
    async with ledger.transaction() as session:
        session.add(Installation(id=1, account_login="a", created_at=tokyo, updated_at=tokyo))

    async with ledger.transaction() as session:
        stored = await session.get(Installation, 1)

    assert stored is not None
    assert stored.created_at == tokyo
    assert stored.created_at.tzinfo == UTC
    assert stored.created_at.hour == 0


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: still written
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(9, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # a year below 1000 is padded
        datetime(2026, 1, 2, 9, 4, 5, 6, tzinfo=timezone(timedelta(hours=9))),
        datetime(2026, 1, 1, 22, 0, tzinfo=timezone(timedelta(hours=-3))),  # crosses a day
    ],
    ids=str,
)
def test_sqlite_datetime_text_is_the_dialects_own_format(when: datetime) -> None:
    # SQLite compares stored datetimes as text: UTCDateTime's one-step writer must give exactly
    # what SQLAlchemy's SQLite DATETIME writes for the same instant in UTC.
    dialect = sqlite.dialect()
    ours = UTCDateTime().bind_processor(dialect)
    theirs = sqlite.DATETIME().bind_processor(dialect)
    assert ours is not None and theirs is not None
    expected = theirs(when.astimezone(UTC).replace(tzinfo=None))
    assert ours(when) == expected
    assert ours(when) == expected  # the remembered last value gives the same text
    other = when + timedelta(microseconds=1)
    assert ours(other) == theirs(other.astimezone(UTC).replace(tzinfo=None)) != expected
    assert ours(when) == expected
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        ours(when.replace(tzinfo=None))
    with pytest.raises(TypeError, match="expected a datetime"):
        ours("2026-01-02 03:04:05")


async def test_naive_datetime_is_refused(ledger: Ledger) -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    with pytest.raises(Exception, match="naive datetime"):
        async with ledger.transaction() as session:
            session.add(Installation(id=1, account_login="a", created_at=naive, updated_at=naive))


async def test_sqlite_read_does_not_wait_for_an_open_write(sqlite_url: str) -> None:
    import asyncio

    from ledger.migrate import upgrade_async
    from ledger.repositories import get_repository, upsert_repository

    await upgrade_async(sqlite_url)
    writer, reader = Ledger(sqlite_url), Ledger(sqlite_url)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        await upsert_repository(writer, "acme/widget", when)
        async with writer.transaction() as session:
            # The write lock is held (BEGIN IMMEDIATE) until this block ends.
            await session.execute(text("UPDATE repository SET archived = 1"))
            seen = await asyncio.wait_for(get_repository(reader, "acme/widget"), 60)
    finally:
        await writer.close()
        await reader.close()
    # The reader saw the last committed state, not the uncommitted update.
    assert seen is not None and seen.archived is False
