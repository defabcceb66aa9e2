"""Leader election for the scheduler: exactly one process runs the poller.

PostgreSQL: the leader holds ``pg_try_advisory_lock(key)`` on a dedicated connection for as long
as it leads; if the process dies, the connection closes and the lock is free for another replica.
SQLite: one process by definition, so the lock always succeeds.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.db import Ledger

log = logging.getLogger("prsteward.leader")

POLLER_LOCK_KEY = 0x70727370  # "prsp"


class LeaderLock:
    def __init__(self, db: Ledger, key: int = POLLER_LOCK_KEY) -> None:
        self.db = db
        self.key = key
        self._connection: AsyncConnection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    async def try_acquire(self) -> bool:
        """Take the lock if free; True when this process now leads (or already did)."""
        if self.db.backend != "postgresql":
            self._held = True
            return True
        if self._held and await self.still_held():
            return True
        await self._drop_connection()
        connection = await self.db.engine.connect()
        try:
            got = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
                )
            ).scalar_one()
            await connection.commit()
        except Exception:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._connection = connection
        self._held = True
        return True

    async def still_held(self) -> bool:
        """Check the dedicated connection is alive (and so the lock with it)."""
        if self.db.backend != "postgresql":
            return self._held
        if self._connection is None:
            self._held = False
            return False
        try:
            await self._connection.execute(text("SELECT 1"))
            await self._connection.commit()
        except Exception as error:  # noqa: BLE001 - a dead connection means the lock is gone
            log.warning("leader connection lost: %r", error)
            self._held = False
            await self._drop_connection(invalidate=True)
            return False
        return True

    async def release(self) -> None:
        if self._connection is not None and self._held:
            try:
                await self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}
                )
                await self._connection.commit()
            except Exception as error:  # noqa: BLE001 - closing the connection frees it anyway
                log.info("unlock failed (%r); closing the connection frees the lock", error)
                self._held = False
                await self._drop_connection(invalidate=True)
                return
        self._held = False
        await self._drop_connection()

    async def _drop_connection(self, *, invalidate: bool = False) -> None:
        """Give the connection back; ``invalidate`` really closes it (never pool a connection
        that may still hold the lock)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                if invalidate:
                    await connection.invalidate()
                await connection.close()
            except Exception as error:  # noqa: BLE001
                log.debug("closing leader connection: %r", error)
