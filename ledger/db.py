"""Engine and sessions: the one door to the ledger database.

``Ledger(url)`` owns an async engine and a session factory. Every query function in ``ledger/``
takes a ``Ledger`` and runs as one transaction, so callers never hold a session across an await
on the network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000


# Errors that mean "the ledger database cannot be used" (unreachable, refused, broken file):
# the CLI shows them as one line, without a traceback.
LEDGER_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (OSError, SQLAlchemyError)


class LedgerURLError(ValueError):
    """The database URL names no backend the ledger supports."""


def normalise_url(url: str) -> str:
    """The async-driver form of a ledger URL.

    Accepts ``sqlite:///path``, ``sqlite+aiosqlite:///path``, ``sqlite://`` (memory),
    ``postgresql://``, ``postgres://`` and ``postgresql+asyncpg://``; anything else raises
    ``LedgerURLError`` with a message that says what is accepted.
    """
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        parsed = make_url(text)
    except ArgumentError as error:
        raise LedgerURLError(f"not a database URL: {error}") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name()
    if backend == "sqlite" and driver in {"pysqlite", "aiosqlite"}:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and driver in {"psycopg2", "asyncpg", "psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
        if "sslmode" in parsed.query:
            # libpq spells it sslmode, asyncpg spells it ssl (same values: require, verify-full...).
            query = dict(parsed.query)
            query.setdefault("ssl", query.pop("sslmode"))
            parsed = parsed.set(query=query)
    else:
        raise LedgerURLError(
            f"unsupported ledger URL scheme {parsed.drivername!r}: "
            "expected sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return parsed.render_as_string(hide_password=False)


def backend_of(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return make_url(normalise_url(url)).get_backend_name()


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    return make_url(url.strip()).render_as_string(hide_password=True)


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN itself (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


READ_ONLY = {"ledger_read_only": True}
"""Execution options for a connection that only reads: on SQLite its transaction is a plain
(deferred) BEGIN, a snapshot that does not block writers under WAL."""


def _sqlite_on_begin(connection: Any) -> None:
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # each statement is its own transaction (the webhook intake's inserts)
    if options.get("ledger_read_only"):
        connection.exec_driver_sql("BEGIN")
        return
    # IMMEDIATE takes the write lock up front: two deferred transactions that both upgrade to
    # writing deadlock with SQLITE_BUSY, which busy_timeout cannot resolve.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """An async engine for ``url`` (normalised by ``normalise_url``), set up for the ledger."""
    normalised = normalise_url(url)
    if make_url(normalised).get_backend_name() == "sqlite":
        engine = create_async_engine(normalised, **engine_options)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    engine_options.setdefault("pool_pre_ping", True)
    return create_async_engine(normalised, **engine_options)


class Ledger:
    """An open ledger: engine plus session factory. Close it with ``await ledger.close()``."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = normalise_url(url)
        self.backend = make_url(self.url).get_backend_name()
        self.engine = make_engine(self.url, **engine_options)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only: one consistent snapshot, rolled back at the end. On
        SQLite it does not take the write lock, so reads never queue behind the intake."""
        async with self.sessions() as session:
            await session.connection(execution_options=READ_ONLY)
            yield session

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Ledger({redacted(self.url)!r})"
