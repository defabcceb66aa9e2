"""The summary issue's state (issue 7 item 2): which issue, what was last written, and when.

Kept as append-only ``decision`` rows of kind ``summary`` (``to_value`` = the summary's scope, a
repository ``owner/name`` or ``org:owner/.github``), one row per write or shadow record, so
nothing needs a schema change and every write is explained in the ledger:

- ``summary.creating``: about to create the issue (crash safety: a later run that finds this
  without a ``summary.created`` looks for the issue by its hidden marker before creating one);
- ``summary.created`` / ``summary.adopted`` / ``summary.edited``: the issue number and the hash of
  the body now on GitHub;
- ``summary.shadow``: shadow mode, what would have been posted (hash), nothing written;
- ``summary.failed``: GitHub refused (status and message).

A per-repository summary also sets ``repository.summary_issue_number``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from ledger.db import Ledger
from ledger.models import Candidate, Decision, Repository, table_of

KIND = "summary"
WRITTEN = frozenset({"summary.created", "summary.adopted", "summary.edited"})


@dataclass(frozen=True, slots=True)
class SummaryState:
    scope: str
    issue_number: int | None = None
    body_hash: str | None = None  # of the body last written to GitHub
    written_at: datetime | None = None
    creating: bool = False  # a create was started and never confirmed
    creating_since: datetime | None = None
    shadow_hash: str | None = None  # shadow mode: the body it would post
    shadow_at: datetime | None = None
    writes: int = 0  # GitHub writes made for this scope so far


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def summary_state(db: Ledger, scope: str) -> SummaryState:
    """Fold the scope's ``summary`` decisions, oldest first, into its current state."""
    columns = table_of(Decision).c
    statement = (
        select(columns.rule_id, columns.details, columns.decided_at)
        .where(columns.kind == KIND, columns.to_value == scope)
        .order_by(columns.id)
    )
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    state: dict[str, Any] = {"scope": scope, "writes": 0}
    for rule_id, details, decided_at in rows:
        info: dict[str, Any] = details if isinstance(details, dict) else {}
        if rule_id == "summary.creating":
            state.update(creating=True, creating_since=decided_at)
        elif rule_id in WRITTEN:
            state.update(
                issue_number=_int(info.get("issue_number")),
                body_hash=_str(info.get("hash")),
                written_at=decided_at,
                creating=False,
                creating_since=None,
            )
            if rule_id != "summary.adopted":
                state["writes"] += 1
        elif rule_id == "summary.shadow":
            state.update(shadow_hash=_str(info.get("hash")), shadow_at=decided_at)
        elif rule_id == "summary.failed" and info.get("during") == "create":
            state.update(creating=False, creating_since=None)
        elif rule_id == "summary.lost":  # the issue is gone (deleted/transferred): start over
            state.update(issue_number=None, body_hash=None, written_at=None)
    return SummaryState(**state)


async def record_summary(
    db: Ledger,
    scope: str,
    rule_id: str,
    reason: str,
    now: datetime,
    *,
    repository_id: int | None = None,
    details: dict[str, Any] | None = None,
    issue_number: int | None = None,
) -> None:
    """Append one ``summary`` decision; ``issue_number`` with ``repository_id`` also sets the
    repository's ``summary_issue_number`` (per-repository summaries)."""
    async with db.transaction() as session:
        session.add(
            Decision(
                repository_id=repository_id,
                pull_request_id=None,
                kind=KIND,
                rule_id=rule_id,
                reason=reason,
                to_value=scope,
                details=dict(details or {}),
                decided_at=now,
            )
        )
        if issue_number is not None and repository_id is not None:
            await session.execute(
                update(table_of(Repository))
                .where(table_of(Repository).c.id == repository_id)
                .values(summary_issue_number=issue_number)
            )


async def candidate_outcomes(db: Ledger, repository_ids: tuple[int, ...]) -> dict[str, int]:
    """Candidates of these repositories by outcome (the summary's candidate ratio)."""
    columns = table_of(Candidate).c
    statement = (
        select(columns.outcome, func.count())
        .where(columns.repository_id.in_(list(repository_ids)))
        .group_by(columns.outcome)
    )
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    return {str(outcome): int(count) for outcome, count in rows}
