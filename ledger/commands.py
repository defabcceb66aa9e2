"""``/prsteward`` commands in the ledger (issue 12 item 6), and the repository's mode switches.

A command is recorded once per comment: ``record_command`` inserts into ``maintainer_command``
with ON CONFLICT DO NOTHING on ``(repository_id, comment_id)``, so a redelivered comment (or two
replicas reading the same snapshot) runs once. Freeze and pause are switches on the PR row, which
``ledger.history.load_history`` hands to the policies as ``Commands``; an accepted ``escalate``
stays a manual trigger until its ``effect`` is set.

Mode switches (shadow -> act) are ``decision`` rows of kind ``mode`` for the repository, written
only on change, so the switch time is in the ledger (``acting_since``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ledger._sql import model_defaults, upsert_insert
from ledger.db import Ledger
from ledger.history import PullKey
from ledger.models import Decision, MaintainerCommand, PullRequest, table_of

MODE_DECISION = "mode"


@dataclass(frozen=True, slots=True)
class NewCommand:
    """One parsed command, as the ledger keeps it."""

    comment_id: int
    author_login: str
    command: str  # the verb as written ("freeze", or the unknown word)
    args: tuple[str, ...]
    accepted: bool
    reason: str


async def record_command(
    db: Ledger, key: PullKey, command: NewCommand, now: datetime
) -> int | None:
    """Record ``command``; its id, or None when this comment was recorded before (it ran)."""
    table = table_of(MaintainerCommand)
    row = {
        **model_defaults(MaintainerCommand),
        "repository_id": key.repository_id,
        "pull_request_id": key.pull_request_id,
        "comment_id": command.comment_id,
        "author_login": command.author_login,
        "command": command.command,
        "args": list(command.args),
        "accepted": command.accepted,
        "reason": command.reason,
        "at": now,
    }
    statement = (
        upsert_insert(db.backend, table)
        .values(row)
        .on_conflict_do_nothing(index_elements=["repository_id", "comment_id"])
        .returning(table.c.id)
    )
    async with db.transaction() as session:
        inserted = (await session.execute(statement)).scalar_one_or_none()
    return int(inserted) if inserted is not None else None


async def recorded_comment_ids(db: Ledger, repository_id: int) -> frozenset[int]:
    """Comment ids of the repository whose commands were recorded (handled or ignored)."""
    columns = table_of(MaintainerCommand).c
    async with db.read() as session:
        rows = await session.execute(
            select(columns.comment_id).where(columns.repository_id == repository_id)
        )
        return frozenset(int(r[0]) for r in rows.all())


async def set_switches(
    db: Ledger, pull_request_id: int, *, frozen: bool | None = None, paused: bool | None = None
) -> None:
    """Set the PR's freeze / pause switches (None: leave as is)."""
    values: dict[str, Any] = {}
    if frozen is not None:
        values["frozen"] = frozen
    if paused is not None:
        values["paused"] = paused
    if not values:
        return
    table = table_of(PullRequest)
    async with db.transaction() as session:
        await session.execute(update(table).where(table.c.id == pull_request_id).values(values))


async def set_effect(db: Ledger, command_id: int, effect: str) -> None:
    """What the command did (an ``escalate`` without an effect is still a pending trigger)."""
    table = table_of(MaintainerCommand)
    async with db.transaction() as session:
        await session.execute(
            update(table).where(table.c.id == command_id).values(effect=effect[:2000])
        )


async def pending_escalations(db: Ledger, pull_request_id: int) -> list[MaintainerCommand]:
    """Accepted ``escalate`` commands on the PR whose effect is not known yet, oldest first."""
    columns = table_of(MaintainerCommand).c
    async with db.read() as session:
        rows = await session.execute(
            select(MaintainerCommand)
            .where(
                columns.pull_request_id == pull_request_id,
                columns.command == "escalate",
                columns.accepted.is_(True),
                columns.effect.is_(None),
            )
            .order_by(columns.at, columns.id)
        )
        return list(rows.scalars().all())


async def list_commands(db: Ledger, pull_request_id: int) -> list[MaintainerCommand]:
    """The PR's commands (accepted or not), oldest first: its history page."""
    columns = table_of(MaintainerCommand).c
    async with db.read() as session:
        rows = await session.execute(
            select(MaintainerCommand)
            .where(columns.pull_request_id == pull_request_id)
            .order_by(columns.at, columns.id)
        )
        return list(rows.scalars().all())


# --- mode switches ---------------------------------------------------------------------------------


async def record_mode(
    db: Ledger, repository_id: int, mode: str, reason: str, now: datetime
) -> bool:
    """Record the repository's effective mode when it changed; True when a row was written."""
    columns = table_of(Decision).c
    async with db.transaction() as session:
        last = (
            await session.execute(
                select(columns.to_value)
                .where(columns.repository_id == repository_id, columns.kind == MODE_DECISION)
                .order_by(columns.decided_at.desc(), columns.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if last == mode:
            return False
        session.add(
            Decision(
                repository_id=repository_id,
                pull_request_id=None,
                kind=MODE_DECISION,
                rule_id=f"mode.{mode}",
                reason=reason,
                from_value=last,
                to_value=mode,
                decided_at=now,
            )
        )
    return True


async def acting_since(db: Ledger, repository_id: int) -> datetime | None:
    """When the repository last switched to ``act`` (None: it is not acting, or never did)."""
    columns = table_of(Decision).c
    async with db.read() as session:
        rows: Sequence[Any] = (
            await session.execute(
                select(columns.to_value, columns.decided_at)
                .where(columns.repository_id == repository_id, columns.kind == MODE_DECISION)
                .order_by(columns.decided_at.desc(), columns.id.desc())
                .limit(1)
            )
        ).all()
    if not rows or rows[0][0] != "act":
        return None
    moment: datetime = rows[0][1]
    return moment
