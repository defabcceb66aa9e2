"""Engine and sessions: the one door to the ledger database.

``Ledger(url)`` owns an async engine and a session factory. Every query function in ``ledger/``
takes a ``Ledger`` and runs as one transaction, so callers never hold a session across an await
on the network.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import aiosqlite
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
from sqlalchemy.util import await_

from policies import json_codec

log = logging.getLogger("prsteward.ledger")

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_CHECKPOINT_SECONDS = 1.0
SQLITE_CHECKPOINT_MAX_DEFER_SECONDS = 30.0


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
        # No checkpoint inside a commit: Ledger.transaction runs them after its turn (see
        # Ledger._checkpoint), so no writer, least of all the webhook intake, waits for one.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
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
        _sqlite_begin(connection, "BEGIN")
        return
    # IMMEDIATE takes the write lock up front: two deferred transactions that both upgrade to
    # writing deadlock with SQLITE_BUSY, which busy_timeout cannot resolve.
    _sqlite_begin(connection, "BEGIN IMMEDIATE")


def _sqlite_begin(connection: Any, statement: str) -> None:
    """Issue ``statement`` (a BEGIN). aiosqlite runs each call in its own thread, and a thread
    round trip costs ~0.2 ms of CPU: ``exec_driver_sql`` takes three (open a cursor, execute,
    close it), the driver's own ``execute`` one (the cursor of a BEGIN holds no rows, so it is
    left to the garbage collector). Anything that goes wrong there is done again the usual way,
    which raises it as SQLAlchemy's error, as callers expect."""
    driver = connection.connection.driver_connection
    if isinstance(driver, aiosqlite.Connection):
        try:
            await_(driver.execute(statement))
            return
        except (sqlite3.Error, ValueError):
            pass  # nothing began: the usual way below waits for the lock, or raises
    connection.exec_driver_sql(statement)


def make_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """An async engine for ``url`` (normalised by ``normalise_url``), set up for the ledger."""
    normalised = normalise_url(url)
    # The JSON columns (snapshots, mostly) through orjson: a first sweep writes two per PR
    # (its row and its first observation, from one encoding: json_codec.EncodedJSON).
    engine_options.setdefault("json_serializer", json_codec.dumps_text)
    engine_options.setdefault("json_deserializer", json_codec.loads)
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
        self._sqlite_writer = asyncio.Lock() if self.backend == "sqlite" else None
        database = make_url(self.url).database or ""
        self._has_wal = self.backend == "sqlite" and database not in ("", ":memory:")
        self._has_wal = self._has_wal and "mode=memory" not in self.url
        self._next_checkpoint = 0.0
        self._last_checkpoint = time.monotonic()
        # Set by the server: True while webhook acknowledgements are under way. Copying the WAL
        # back competes with them for the disk and the CPU, so it waits for a lull (at most
        # SQLITE_CHECKPOINT_MAX_DEFER_SECONDS; the WAL grows meanwhile, by design bounded).
        self.defer_checkpoint: Callable[[], bool] = lambda: False
        self._holds_writer: ContextVar[bool] = ContextVar(
            f"ledger-writer-{id(self)}", default=False
        )

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """On SQLite, this process's writers take turns here, in arrival order. SQLite has one
        writer at a time anyway, and a writer that finds the file locked waits in SQLite's
        busy handler, which sleeps 1, 2, 5, 10, 15... ms between tries: a webhook
        acknowledgement queued behind a short transaction would wait tens of milliseconds.
        Re-entrant within a task; other processes still meet the busy handler. A no-op on
        PostgreSQL."""
        if self._sqlite_writer is None or self._holds_writer.get():
            yield
            return
        async with self._sqlite_writer:
            token = self._holds_writer.set(True)
            try:
                yield
            finally:
                self._holds_writer.reset(token)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.write_turn(), self.sessions() as session, session.begin():
            yield session
        await self._checkpoint()

    async def _checkpoint(self) -> None:
        """On SQLite, at most once a second, outside the writers' turn and, unless overdue,
        not while ``defer_checkpoint()`` says so: copy the WAL back into the database file
        (PASSIVE: it waits for no reader or writer). A process that only ever stores webhooks
        leaves this to the inbox workers' transactions; closing the last connection
        checkpoints too."""
        if not self._has_wal or self._holds_writer.get():
            return
        now = time.monotonic()
        if now < self._next_checkpoint:
            return
        overdue = now - self._last_checkpoint >= SQLITE_CHECKPOINT_MAX_DEFER_SECONDS
        if self.defer_checkpoint() and not overdue:
            return
        self._next_checkpoint = now + SQLITE_CHECKPOINT_SECONDS
        self._last_checkpoint = now
        try:
            async with self.engine.connect() as connection:
                # Outside any transaction: SQLite refuses to checkpoint inside one.
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except SQLAlchemyError as error:
            # The transaction is committed either way; the next one tries again.
            log.debug("SQLite checkpoint skipped: %r", error)

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
