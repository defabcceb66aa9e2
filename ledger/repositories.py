"""Installations and repositories: who installed the App, where, and each repository's poll
state and config."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ledger._sql import model_defaults, rowcount, update_by_key, update_parameters, upsert_insert
from ledger.db import Ledger
from ledger.models import Installation, Repository, table_of


async def upsert_installation(
    db: Ledger,
    installation_id: int,
    account_login: str,
    now: datetime,
    account_type: str | None = None,
    permissions: dict[str, Any] | None = None,
    events: list[str] | None = None,
    suspended: bool | None = None,
) -> None:
    """Create or update an installation (GitHub's id). Fields given as None keep their value;
    an installation seen again after removal is live again (``removed_at`` cleared)."""
    table = table_of(Installation)
    values: dict[str, Any] = {"account_login": account_login, "updated_at": now}
    if account_type is not None:
        values["account_type"] = account_type
    if permissions is not None:
        values["permissions"] = permissions
    if events is not None:
        values["events"] = events
    if suspended is not None:
        values["suspended"] = suspended
    insert_values = {
        **model_defaults(Installation),
        "id": installation_id,
        "created_at": now,
        **values,
    }
    statement = (
        upsert_insert(db.backend, table)
        .values(insert_values)
        .on_conflict_do_update(index_elements=["id"], set_={**values, "removed_at": None})
    )
    async with db.transaction() as session:
        await session.execute(statement)


async def mark_installation_removed(db: Ledger, installation_id: int, now: datetime) -> bool:
    """Record that the App was uninstalled; returns whether the installation was known."""
    statement = (
        update(table_of(Installation))
        .where(table_of(Installation).c.id == installation_id)
        .values(removed_at=now, updated_at=now)
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
    return rowcount(result) > 0


async def get_installation(db: Ledger, installation_id: int) -> Installation | None:
    async with db.read() as session:
        return await session.get(Installation, installation_id)


async def ensure_repository(
    session: AsyncSession, backend: str, full_name: str, now: datetime
) -> int:
    """The id of the repository named ``full_name``, created (bare) when unknown. Runs inside
    the caller's transaction; safe against a concurrent creation of the same name."""
    table = table_of(Repository)
    found = await session.execute(_repository_id_statement(), {"full_name": full_name})
    repository_id = found.scalar_one_or_none()
    if repository_id is not None:
        return int(repository_id)
    statement = (
        upsert_insert(backend, table)
        .values(
            {
                **model_defaults(Repository),
                "full_name": full_name,
                "created_at": now,
                "updated_at": now,
            }
        )
        .on_conflict_do_nothing(index_elements=["full_name"])
    )
    await session.execute(statement)
    found = await session.execute(_repository_id_statement(), {"full_name": full_name})
    return int(found.scalar_one())


# Statements run once or more per repository and cycle, built once: SQLAlchemy then only binds
# the values (building them anew was a few percent of a first sweep's CPU over 100 repositories).


@functools.cache
def _repository_id_statement() -> Any:
    """Parameters: full_name."""
    table = table_of(Repository)
    return select(table.c.id).where(table.c.full_name == bindparam("full_name"))


async def update_repository_in(session: AsyncSession, full_name: str, **values: Any) -> bool:
    """Set these columns of the repository named ``full_name``, inside the caller's
    transaction; returns whether it exists."""
    statement = update_by_key(table_of(Repository), "full_name", tuple(sorted(values)))
    result = await session.execute(statement, update_parameters(full_name, values))
    return rowcount(result) > 0


@dataclass(frozen=True, slots=True)
class RepositoryListing:
    """A repository as an installation's repository list gives it (discovery)."""

    full_name: str
    installation_id: int
    github_id: int | None
    default_branch: str
    archived: bool
    private: bool
    ignored: bool  # the allowlist/ignorelist outcome


_LISTING_COLUMNS = (
    "installation_id", "github_id", "default_branch", "archived", "private", "ignored"
)  # fmt: skip


async def upsert_listed_repositories(
    db: Ledger, listings: Sequence[RepositoryListing], now: datetime
) -> None:
    """Every repository an installation lists, in ONE transaction (discovery took two per
    repository): created, or updated (its ``ignored`` flag too) and live again
    (``removed_at`` cleared). The installation must already exist."""
    if not listings:
        return
    table = table_of(Repository)
    statement = upsert_insert(db.backend, table)
    statement = statement.on_conflict_do_update(
        index_elements=["full_name"],
        set_={
            **{name: statement.excluded[name] for name in _LISTING_COLUMNS},
            "updated_at": statement.excluded.updated_at,
            "removed_at": None,
        },
    )
    defaults = model_defaults(Repository)
    rows = [
        {
            **defaults,
            **{name: getattr(listing, name) for name in _LISTING_COLUMNS},
            "full_name": listing.full_name,
            "created_at": now,
            "updated_at": now,
            "removed_at": None,
        }
        for listing in listings
    ]
    async with db.transaction() as session:
        await session.execute(statement, rows)  # executemany of one statement


async def upsert_repository(
    db: Ledger,
    full_name: str,
    now: datetime,
    installation_id: int | None = None,
    github_id: int | None = None,
    default_branch: str | None = None,
    archived: bool | None = None,
    private: bool | None = None,
) -> int:
    """Create or update a repository by ``full_name`` ("owner/name"); returns its ledger id.

    Fields given as None keep their stored value. A repository seen again after removal is
    live again (``removed_at`` cleared). The installation, when given, must already exist.
    """
    table = table_of(Repository)
    values: dict[str, Any] = {"updated_at": now, "removed_at": None}
    for name, value in (
        ("installation_id", installation_id),
        ("github_id", github_id),
        ("default_branch", default_branch),
        ("archived", archived),
        ("private", private),
    ):
        if value is not None:
            values[name] = value
    insert_values = {
        **model_defaults(Repository),
        "full_name": full_name,
        "created_at": now,
        **values,
    }
    statement = (
        upsert_insert(db.backend, table)
        .values(insert_values)
        .on_conflict_do_update(index_elements=["full_name"], set_=values)
        .returning(table.c.id)
    )
    async with db.transaction() as session:
        result = await session.execute(statement)
        return int(result.scalar_one())


async def get_repository(db: Ledger, full_name: str) -> Repository | None:
    """The repository named ``full_name``, or None."""
    statement = select(Repository).where(table_of(Repository).c.full_name == full_name)
    async with db.read() as session:
        return (await session.execute(statement)).scalar_one_or_none()


async def list_repositories(
    db: Ledger, installation_id: int | None = None, include_removed: bool = False
) -> list[Repository]:
    """Repositories ordered by name; of one installation when given; removed ones only when
    ``include_removed``."""
    columns = table_of(Repository).c
    statement = select(Repository).order_by(columns.full_name)
    if installation_id is not None:
        statement = statement.where(columns.installation_id == installation_id)
    if not include_removed:
        statement = statement.where(columns.removed_at.is_(None))
    async with db.read() as session:
        return list((await session.execute(statement)).scalars().all())


async def _update_repository(db: Ledger, full_name: str, **values: Any) -> bool:
    async with db.transaction() as session:
        return await update_repository_in(session, full_name, **values)


async def mark_repository_removed(db: Ledger, full_name: str, now: datetime) -> bool:
    """The installation lost this repository: stop sweeping it. Returns whether it was known."""
    return await _update_repository(db, full_name, removed_at=now, updated_at=now)


async def record_poll_check(
    db: Ledger,
    full_name: str,
    checked_at: datetime,
    etag: str | None,
    last_modified: str | None,
) -> bool:
    """Store the validators of the cheap change check (ETag / Last-Modified) and when it ran."""
    return await _update_repository(
        db,
        full_name,
        poll_etag=etag,
        poll_last_modified=last_modified,
        last_checked_at=checked_at,
        updated_at=checked_at,
    )


async def record_sweep(
    db: Ledger, full_name: str, at: datetime, ok: bool, error: str | None = None
) -> bool:
    """Record a full sweep of the repository: when, and whether it completed (``error`` if not)."""
    return await _update_repository(db, full_name, **sweep_values(at, ok, error))


def sweep_values(at: datetime, ok: bool, error: str | None = None) -> dict[str, Any]:
    """The repository columns :func:`record_sweep` sets."""
    values: dict[str, Any] = {"last_sweep_at": at, "last_sweep_error": error, "updated_at": at}
    if ok:
        values["last_sweep_ok_at"] = at
        values["last_sweep_error"] = None
    return values


async def record_config(
    db: Ledger, full_name: str, config: dict[str, Any], sha: str | None, now: datetime
) -> bool:
    """A valid config was loaded: it is now in force, and any earlier config error is cleared."""
    return await _update_repository(
        db,
        full_name,
        config=config,
        config_sha=sha,
        config_loaded_at=now,
        config_error=None,
        config_error_at=None,
        config_error_reported_at=None,
        updated_at=now,
    )


async def record_config_error(db: Ledger, full_name: str, error: str, now: datetime) -> bool:
    """A config failed validation: record the message; the last valid config stays in force.

    The same message again keeps its first ``config_error_at`` and its reported flag, so it is
    reported to maintainers once."""
    repository = await get_repository(db, full_name)
    if repository is None:
        return False
    if repository.config_error == error:
        return True
    return await _update_repository(
        db,
        full_name,
        config_error=error,
        config_error_at=now,
        config_error_reported_at=None,
        updated_at=now,
    )


async def mark_config_error_reported(db: Ledger, full_name: str, now: datetime) -> bool:
    return await _update_repository(db, full_name, config_error_reported_at=now, updated_at=now)


async def set_watch_only(
    db: Ledger, full_name: str, watch_only: bool, reason: str | None, now: datetime
) -> bool:
    """Demote a repository to watch-only (with the reason) or restore it."""
    return await _update_repository(
        db,
        full_name,
        watch_only=watch_only,
        watch_only_reason=reason if watch_only else None,
        watch_only_since=now if watch_only else None,
        updated_at=now,
    )
