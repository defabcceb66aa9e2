"""Permission boundaries read and lifted by people and events (issue 11 item 4).

``ledger/candidates.py`` opens a boundary when GitHub denies a write and the engine reads the
standing ones; this module lists them (``prsteward boundaries list``), lifts them
(``prsteward boundaries clear``, ``installation`` new_permissions_accepted,
``installation_repositories`` added) and records that each was reported to the maintainers once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ledger._sql import rowcount
from ledger.db import Ledger
from ledger.models import PermissionBoundary, Repository, table_of

_boundaries = table_of(PermissionBoundary)
_repositories = table_of(Repository)


@dataclass(frozen=True, slots=True)
class BoundaryRow:
    boundary: PermissionBoundary
    repository: str | None  # None: installation-wide


def _select(*where: Any) -> Any:
    return (
        select(PermissionBoundary, _repositories.c.full_name)
        .join_from(
            _boundaries,
            _repositories,
            _boundaries.c.repository_id == _repositories.c.id,
            isouter=True,
        )
        .where(*where)
        .order_by(_boundaries.c.id)
    )


async def list_boundaries(
    db: Ledger,
    *,
    repository: str | None = None,
    kind: str | None = None,
    standing: bool = True,
) -> list[BoundaryRow]:
    """Boundaries (only standing ones unless ``standing=False``), oldest first."""
    where: list[Any] = []
    if standing:
        where.append(_boundaries.c.lifted_at.is_(None))
    if repository is not None:
        where.append(_repositories.c.full_name == repository)
    if kind is not None:
        where.append(_boundaries.c.action_kind == kind)
    async with db.transaction() as session:
        rows = (await session.execute(_select(*where))).all()
    return [BoundaryRow(row[0], row[1]) for row in rows]


async def _repository_ids(db: Ledger, names: Sequence[str]) -> list[int]:
    if not names:
        return []
    async with db.transaction() as session:
        found = await session.execute(
            select(_repositories.c.id).where(_repositories.c.full_name.in_(list(names)))
        )
        return [int(i) for i in found.scalars().all()]


async def lift(
    db: Ledger,
    reason: str,
    now: datetime,
    *,
    installation_id: int | None = None,
    repositories: Sequence[str] | None = None,
    kind: str | None = None,
) -> int:
    """Lift the standing boundaries matching every given filter (all of them when none is
    given); returns how many were lifted. ``repositories``: only those repositories."""
    statement = update(_boundaries).where(_boundaries.c.lifted_at.is_(None))
    if installation_id is not None:
        statement = statement.where(_boundaries.c.installation_id == installation_id)
    if repositories is not None:
        ids = await _repository_ids(db, repositories)
        if not ids:
            return 0
        statement = statement.where(_boundaries.c.repository_id.in_(ids))
    if kind is not None:
        statement = statement.where(_boundaries.c.action_kind == kind)
    async with db.transaction() as session:
        result = await session.execute(statement.values(lifted_at=now, lifted_reason=reason[:500]))
    return rowcount(result)


async def unreported(db: Ledger) -> list[BoundaryRow]:
    """Standing boundaries not reported to the maintainers yet."""
    async with db.transaction() as session:
        rows = (
            await session.execute(
                _select(_boundaries.c.lifted_at.is_(None), _boundaries.c.reported_at.is_(None))
            )
        ).all()
    return [BoundaryRow(row[0], row[1]) for row in rows]


async def mark_reported(db: Ledger, boundary_id: int, now: datetime) -> bool:
    """Record that the boundary was reported; True only for the first caller."""
    async with db.transaction() as session:
        result = await session.execute(
            update(_boundaries)
            .where(_boundaries.c.id == boundary_id, _boundaries.c.reported_at.is_(None))
            .values(reported_at=now)
        )
    return rowcount(result) == 1


async def count_suppressed(db: Ledger, boundary_id: int) -> None:
    """One more candidate suppressed because of this boundary."""
    async with db.transaction() as session:
        await session.execute(
            update(_boundaries)
            .where(_boundaries.c.id == boundary_id)
            .values(suppressed_count=_boundaries.c.suppressed_count + 1)
        )
