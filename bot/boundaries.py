"""Permission boundaries that hold (issue 11 item 4).

When GitHub denies a write, the executor records ONE boundary (installation, repository, action
kind, GitHub's message, the ``x-accepted-github-permissions`` header) through
``ledger.candidates.open_boundary``; while it stands the engine records that action kind's
candidates as ``suppressed_boundary`` (counted on the boundary) instead of writing again. This
module says which failures are boundaries, reports each boundary once, and lifts them:

- :func:`is_boundary`: 403 ``Resource not accessible by integration`` (any 403 that is not a rate
  limit), 403/404 on a repository the installation lost, 410 (gone, e.g. issues disabled) and 422
  for an archived or locked target. Rate-limit 403s are never boundaries (the client raises
  ``RateLimited`` for them; their message is checked here too);
- lifted by ``installation`` ``new_permissions_accepted`` and ``installation_repositories``
  ``added`` (``bot/handlers/installations.py`` -> ``LiftBoundaries``), by the engine when the
  installation now has the permissions the denial named, or by a maintainer:
  ``prsteward boundaries clear [--repo R] [--kind K]`` (:func:`clear`);
- :func:`report_new`: the standing boundaries not reported yet, each returned once (for the
  summary / log), marked reported in the ledger.

Archived repositories are watched read-only: ``bot.engine.effective_mode`` is ``shadow`` for them,
so nothing is written there at all.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ledger import boundaries as ledger_boundaries
from ledger.boundaries import BoundaryRow
from ledger.db import Ledger

log = logging.getLogger("prsteward.boundaries")

RATE_LIMIT_WORDS = ("rate limit", "abuse detection", "secondary rate")
UNPROCESSABLE_BOUNDARY_WORDS = ("archived", "locked", "read-only", "read only")


def is_rate_limit(status: int, message: str) -> bool:
    text = message.lower()
    return status in {403, 429} and any(word in text for word in RATE_LIMIT_WORDS)


def is_boundary(status: int, message: str) -> bool:
    """Whether a refused write is a permission boundary (not retried every cycle)."""
    if is_rate_limit(status, message):
        return False
    if status in {403, 404, 410}:
        return True
    if status == 422:
        text = message.lower()
        return any(word in text for word in UNPROCESSABLE_BOUNDARY_WORDS)
    return False


def describe(row: BoundaryRow) -> str:
    """One line for people: where, what, since when, GitHub's words, what it asks for."""
    b = row.boundary
    where = row.repository or f"installation {b.installation_id}"
    needs = f"; GitHub asks for {b.accepted_permissions}" if b.accepted_permissions else ""
    state = (
        f"lifted {b.lifted_at.isoformat()} ({b.lifted_reason})"
        if b.lifted_at is not None
        else "standing"
    )
    return (
        f"#{b.id} {where}: {b.action_kind} denied (HTTP {b.http_status}) since "
        f"{b.since.isoformat()}: {b.message}{needs}; {b.suppressed_count} candidates suppressed; "
        f"{state}"
    )


def as_json(row: BoundaryRow) -> dict[str, Any]:
    b = row.boundary
    return {
        "id": b.id,
        "installation_id": b.installation_id,
        "repository": row.repository,
        "action_kind": b.action_kind,
        "http_status": b.http_status,
        "message": b.message,
        "accepted_permissions": b.accepted_permissions,
        "since": b.since.isoformat(),
        "reported_at": b.reported_at.isoformat() if b.reported_at else None,
        "suppressed_count": b.suppressed_count,
        "lifted_at": b.lifted_at.isoformat() if b.lifted_at else None,
        "lifted_reason": b.lifted_reason,
    }


async def report_new(db: Ledger, now: datetime) -> list[str]:
    """The standing boundaries not reported yet, once each (marked reported): lines for the
    maintainers (the summary, the log)."""
    lines: list[str] = []
    for row in await ledger_boundaries.unreported(db):
        if row.boundary.id is not None and await ledger_boundaries.mark_reported(
            db, row.boundary.id, now
        ):
            line = describe(row)
            log.warning("permission boundary: %s", line)
            lines.append(line)
    return lines


async def clear(
    db: Ledger,
    now: datetime,
    *,
    repository: str | None = None,
    kind: str | None = None,
    by: str = "a maintainer (CLI)",
) -> int:
    """``prsteward boundaries clear``: lift the standing boundaries (of one repository / action
    kind); the action is tried again on the next evaluation. Returns how many."""
    return await ledger_boundaries.lift(
        db, f"cleared by {by}", now, repositories=[repository] if repository else None, kind=kind
    )
