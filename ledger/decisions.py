"""Decision rows: tier and whose-turn changes, stop-loss notes and config outcomes.

Every function writes only on change: evaluating an unchanged PR every cycle appends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ledger.db import Ledger
from ledger.history import PullKey
from ledger.models import Decision, PullRequest, Repository, table_of


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation of a PR concluded, as the ledger keeps it."""

    tier: str
    tier_rule_id: str
    tier_reason: str
    turn: str
    turn_rule_id: str
    turn_reason: str
    notes: tuple[str, ...] = ()
    head_sha: str | None = None


async def record_evaluation(
    db: Ledger, key: PullKey, evaluation: Evaluation, now: datetime
) -> list[str]:
    """Record tier / whose-turn changes and changed stop-loss notes; returns the decision kinds
    appended (empty when nothing changed). One transaction."""
    pulls_t, decisions_t = table_of(PullRequest), table_of(Decision).c
    written: list[str] = []
    async with db.transaction() as session:
        pull = (
            await session.execute(
                select(PullRequest).where(pulls_t.c.id == key.pull_request_id).with_for_update()
            )
        ).scalar_one_or_none()
        if pull is None:
            return written
        values: dict[str, Any] = {}
        details = {"head_sha": evaluation.head_sha} if evaluation.head_sha else {}

        def decision(
            kind: str, rule_id: str, reason: str, old: str | None, new: str | None
        ) -> None:
            session.add(
                Decision(
                    repository_id=key.repository_id,
                    pull_request_id=key.pull_request_id,
                    kind=kind,
                    rule_id=rule_id,
                    reason=reason,
                    from_value=old,
                    to_value=new,
                    details=dict(details),
                    decided_at=now,
                )
            )
            written.append(kind)

        if pull.tier != evaluation.tier:
            decision(
                "tier", evaluation.tier_rule_id, evaluation.tier_reason, pull.tier, evaluation.tier
            )
            values.update(tier=evaluation.tier, tier_since=now)
        if pull.whose_turn != evaluation.turn:
            decision(
                "whose_turn",
                evaluation.turn_rule_id,
                evaluation.turn_reason,
                pull.whose_turn,
                evaluation.turn,
            )
        if pull.whose_turn != evaluation.turn or pull.whose_turn_reason != evaluation.turn_reason:
            values.update(whose_turn=evaluation.turn, whose_turn_reason=evaluation.turn_reason)
        last_notes = (
            await session.execute(
                select(decisions_t.details)
                .where(
                    decisions_t.pull_request_id == key.pull_request_id,
                    decisions_t.kind == "stop_loss",
                )
                .order_by(decisions_t.decided_at.desc(), decisions_t.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        notes = sorted(set(evaluation.notes))
        previous = sorted((last_notes or {}).get("notes") or []) if last_notes is not None else None
        if (previous is None and notes) or (previous is not None and previous != notes):
            rule_id = notes[0].split(":", 1)[0] if notes else "stop-loss.cleared"
            reason = "; ".join(notes) if notes else "no stop-loss rule holds any more"
            session.add(
                Decision(
                    repository_id=key.repository_id,
                    pull_request_id=key.pull_request_id,
                    kind="stop_loss",
                    rule_id=rule_id,
                    reason=reason[:2000],
                    details={**details, "notes": notes},
                    decided_at=now,
                )
            )
            written.append("stop_loss")
        if values:
            await session.execute(
                update(pulls_t).where(pulls_t.c.id == key.pull_request_id).values(**values)
            )
    return written


async def list_decisions(
    db: Ledger,
    *,
    repository_id: int | None = None,
    pull_request_id: int | None = None,
    kind: str | None = None,
) -> list[Decision]:
    """Decision rows, oldest first, filtered by repository, PR and kind."""
    columns = table_of(Decision).c
    statement = select(Decision).order_by(columns.decided_at, columns.id)
    if repository_id is not None:
        statement = statement.where(columns.repository_id == repository_id)
    if pull_request_id is not None:
        statement = statement.where(columns.pull_request_id == pull_request_id)
    if kind is not None:
        statement = statement.where(columns.kind == kind)
    async with db.transaction() as session:
        return list((await session.execute(statement)).scalars().all())


# --- config -------------------------------------------------------------------------------------


async def record_config_loaded(
    db: Ledger, full_name: str, config: dict[str, Any], sha: str | None, now: datetime
) -> bool:
    """A valid config is in force. Writes only when it differs from the stored one (or an error
    was standing, which this clears with a ``config`` decision). A change of ``mode`` is a
    ``config.mode`` decision: the day a repository switched to ``act``. Returns whether it
    wrote."""
    table = table_of(Repository)
    async with db.transaction() as session:
        repository = (
            await session.execute(select(Repository).where(table.c.full_name == full_name))
        ).scalar_one_or_none()
        if repository is None:
            return False
        had_error = repository.config_error is not None
        if repository.config == config and repository.config_sha == sha and not had_error:
            return False
        old_mode = (repository.config or {}).get("mode", "shadow")
        new_mode = config.get("mode", "shadow")
        if old_mode != new_mode:  # when a repository switched to act (grace periods start here)
            session.add(
                Decision(
                    repository_id=repository.id,
                    kind="config",
                    rule_id="config.mode",
                    reason=f"mode {old_mode} -> {new_mode}",
                    from_value=str(old_mode),
                    to_value=str(new_mode),
                    details={"sha": sha},
                    decided_at=now,
                )
            )
        if had_error:
            session.add(
                Decision(
                    repository_id=repository.id,
                    kind="config",
                    rule_id="config.valid",
                    reason="the configuration is valid again and in force",
                    from_value="error",
                    to_value="valid",
                    details={"sha": sha},
                    decided_at=now,
                )
            )
        await session.execute(
            update(table)
            .where(table.c.id == repository.id)
            .values(
                config=config,
                config_sha=sha,
                config_loaded_at=now,
                config_error=None,
                config_error_at=None,
                config_error_reported_at=None,
                updated_at=now,
            )
        )
    return True


async def record_config_error(db: Ledger, full_name: str, error: str, now: datetime) -> bool:
    """A config was refused: keep the last valid config, store ``error`` (with its line
    numbers) and append one ``config`` decision. The same error again writes nothing. Returns
    whether this error is new."""
    table = table_of(Repository)
    async with db.transaction() as session:
        repository = (
            await session.execute(select(Repository).where(table.c.full_name == full_name))
        ).scalar_one_or_none()
        if repository is None or repository.config_error == error:
            return False
        session.add(
            Decision(
                repository_id=repository.id,
                kind="config",
                rule_id="config.invalid",
                reason=error[:2000],
                from_value="valid" if repository.config_error is None else "error",
                to_value="error",
                details={"kept_sha": repository.config_sha},
                decided_at=now,
            )
        )
        await session.execute(
            update(table)
            .where(table.c.id == repository.id)
            .values(
                config_error=error,
                config_error_at=now,
                config_error_reported_at=None,
                updated_at=now,
            )
        )
    return True
