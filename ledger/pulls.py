"""Pull requests: the current snapshot of each, its append-only history, and the dirty set.

Webhooks ``mark_dirty``; the poller reads each dirty PR, ``record_snapshot``s it and then
``clear_dirty`` with the time its read started, so a webhook that arrives during the read
keeps the PR dirty for the next cycle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from ledger._sql import (
    chunks,
    model_defaults,
    rowcount,
    update_by_key,
    update_parameters,
    upsert_insert,
)
from ledger.db import Ledger
from ledger.models import (
    Observation,
    ObservationSource,
    PullRequest,
    PullRequestIssue,
    PullRequestStateValue,
    Repository,
    table_of,
)
from ledger.repositories import ensure_repository, sweep_values, update_repository_in
from policies import json_codec

# Rows (or ids) per statement: far below SQLite's and asyncpg's bind-parameter limits.
_ROWS_PER_STATEMENT = 500


@dataclass(frozen=True, slots=True)
class DirtyPull:
    repository: str  # "owner/name"
    number: int
    reason: str | None
    since: datetime | None


def _state_of(snapshot: dict[str, Any]) -> PullRequestStateValue:
    raw = str(snapshot.get("state") or "OPEN").lower()
    try:
        return PullRequestStateValue(raw)
    except ValueError:
        return PullRequestStateValue.OPEN


# A PR row as record_snapshots compares it: (id, fingerprint, node digest).
_CurrentRow = tuple[int, str | None, str | None]


@dataclass(frozen=True, slots=True)
class KnownNode:
    """What the ledger remembers of the GraphQL node a PR's snapshot was normalised from (see
    :func:`known_nodes`): the node's digest and what the reconciler derives from the node."""

    digest: str
    fingerprint: str
    updated_at: datetime
    state: str  # the snapshot's: OPEN | CLOSED | MERGED
    mergeable: str  # MERGEABLE | CONFLICTING | UNKNOWN


@dataclass(frozen=True, slots=True)
class SnapshotItem:
    """One PR read (the JSON of a ``PullRequestSnapshot`` and its fingerprint).

    ``snapshot`` may instead be a function that gives that JSON: it is called only when
    ``fingerprint`` differs from the stored one (a reader that already knows the fingerprint
    need not encode an unchanged PR), or when ``node_digest`` differs from the stored one.

    ``node_digest``: the reconciler's digest of the GraphQL node the snapshot was normalised
    from (hex, see bot/reconcile.py), stored with the snapshot; None for any other snapshot
    (a webhook's), which then clears the stored one whenever it replaces the snapshot."""

    number: int
    snapshot: dict[str, Any] | Callable[[], dict[str, Any]]
    fingerprint: str
    delivery_id: str | None = None
    node_digest: str | None = None

    def encoded(self) -> dict[str, Any]:
        return self.snapshot if isinstance(self.snapshot, dict) else self.snapshot()


def _current_values(
    snapshot: dict[str, Any],
    stored: str,
    fingerprint: str,
    node_digest: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The PR row's columns that follow its snapshot (a changed or new PR); ``stored``: the
    snapshot as :class:`~policies.json_codec.EncodedJSON`. ``node_digest`` is written even
    when None: a digest belongs to the snapshot it is stored with."""
    state = _state_of(snapshot)
    author = snapshot.get("author")
    base_ref = snapshot.get("base_ref")
    return {
        "snapshot": stored,
        "fingerprint": fingerprint,
        "node_digest": node_digest,
        "state": state.value,
        "head_sha": snapshot.get("head_sha"),
        "base_sha": snapshot.get("base_sha"),
        "base_ref": base_ref if isinstance(base_ref, str) else None,
        "node_id": snapshot.get("node_id") or None,
        "author_login": author.get("login") if isinstance(author, dict) else None,
        "last_observed_at": now,
        "last_changed_at": now,
        "closed_at": None if state is PullRequestStateValue.OPEN else now,
    }


def _linked_issue_numbers(snapshot: dict[str, Any]) -> list[int]:
    numbers = {
        issue.get("number")
        for issue in snapshot.get("linked_issues") or ()
        if isinstance(issue, dict) and isinstance(issue.get("number"), int)
    }
    return sorted(n for n in numbers if isinstance(n, int))


async def record_snapshot(
    db: Ledger,
    repository: str,
    number: int,
    snapshot: dict[str, Any],
    fingerprint: str,
    source: ObservationSource,
    now: datetime,
    delivery_id: str | None = None,
) -> bool:
    """Make ``snapshot`` (the JSON of a ``PullRequestSnapshot``) the PR's current state.

    Returns True, and appends an observation, only when ``fingerprint`` differs from the
    stored one (or the PR is new); an unchanged snapshot writes no observation and only moves
    ``last_observed_at``. The repository and PR rows are created when unknown. The PR's
    state (open/closed/merged), head SHA and ``closed_at`` follow the snapshot.
    (:func:`record_snapshots` with one item.)
    """
    changed = await record_snapshots(
        db,
        repository,
        [SnapshotItem(number, snapshot, fingerprint, delivery_id)],
        source,
        now,
    )
    return bool(changed)


# Statements a sweep runs for every page, built once (SQLAlchemy then only binds the values;
# building ``IN (...)`` of 100 literals anew each time was a good part of a page's CPU).


@functools.cache
def _current_rows_statement(lock: bool) -> Any:
    """Parameters: repository_id, numbers (a list)."""
    columns = table_of(PullRequest).c
    statement = (
        select(columns.id, columns.number, columns.fingerprint, columns.node_digest)
        .where(
            columns.repository_id == bindparam("repository_id"),
            columns.number.in_(bindparam("numbers", expanding=True)),
        )
        .order_by(columns.number)
    )
    return statement.with_for_update() if lock else statement


@functools.cache
def _observed_statement() -> Any:
    """Parameters: ids (a list), observed_at."""
    table = table_of(PullRequest)
    return (
        update(table)
        .where(table.c.id.in_(bindparam("ids", expanding=True)))
        .values(last_observed_at=bindparam("observed_at"))
    )


async def record_snapshots(
    db: Ledger,
    repository: str,
    items: Sequence[SnapshotItem],
    source: ObservationSource,
    now: datetime,
    *,
    mark_open_dirty: str | None = None,
) -> list[int]:
    """:func:`record_snapshot` for many PRs of one repository in ONE transaction (a GraphQL
    page): the current fingerprints are read in one query (rows locked on PostgreSQL, so two
    writers of one PR serialise their compare-and-set), observations are inserted only for
    changed PRs, and the PR rows are updated in bulk. Returns the numbers that changed.

    ``mark_open_dirty`` (a reason): open PRs among ``items`` are also marked dirty, in the same
    transaction (a webhook's partial snapshot: the poller still reads the whole PR).
    A later item for the same number wins.

    Node digests (``SnapshotItem.node_digest``) are written with new and changed snapshots (an
    item without one clears the stored one). An item whose fingerprint is unchanged but whose
    digest differs from the stored one (a node read for the first time since the upgrade, or
    whose ``updated_at`` alone moved) rewrites the snapshot with its digest, so the stored
    digest, fingerprint and snapshot always come from one node (see :func:`known_nodes`).
    """
    by_number: dict[int, SnapshotItem] = {}
    for item in items:
        by_number[item.number] = item
    if not by_number:
        return []
    numbers = sorted(by_number)
    pr_table = table_of(PullRequest)
    columns = pr_table.c
    changed: list[int] = []
    async with db.transaction() as session:
        repository_id = await ensure_repository(session, db.backend, repository, now)

        async def current_rows(wanted: list[int], lock: bool) -> dict[int, _CurrentRow]:
            found: dict[int, _CurrentRow] = {}
            statement = _current_rows_statement(lock)
            for part in chunks(wanted, _ROWS_PER_STATEMENT):
                rows = await session.execute(
                    statement, {"repository_id": repository_id, "numbers": part}
                )
                found.update({int(row[1]): (int(row[0]), row[2], row[3]) for row in rows})
            return found

        # Read first, insert only the PRs not known yet (a steady sweep inserts nothing), then
        # on PostgreSQL read again locking every row in number order (two writers of one PR
        # serialise their compare-and-set; one ordered lock statement cannot deadlock). SQLite
        # ignores FOR UPDATE: its transaction holds the write lock from BEGIN IMMEDIATE.
        current = await current_rows(numbers, lock=False)
        missing = [number for number in numbers if number not in current]
        fresh: set[int] = set()  # rows inserted whole here: new PRs, so changed
        encoded: dict[int, dict[str, Any]] = {}

        def snapshot_of(number: int) -> dict[str, Any]:
            found = encoded.get(number)
            if found is None:
                found = encoded[number] = by_number[number].encoded()
            return found

        texts: dict[int, str] = {}

        def text_of(number: int) -> str:
            """The snapshot's JSON text, made once for the PR row and the observation."""
            found = texts.get(number)
            if found is None:
                found = texts[number] = json_codec.EncodedJSON(
                    json_codec.dumps_text(snapshot_of(number))
                )
            return found

        if missing and db.backend == "sqlite":
            # The transaction holds SQLite's write lock (BEGIN IMMEDIATE): nobody else can add
            # these rows meanwhile, so a new PR's row is written once, whole, not inserted bare
            # and then updated.
            defaults = model_defaults(PullRequest)
            await session.execute(
                insert(pr_table),
                [
                    {
                        **defaults,
                        "repository_id": repository_id,
                        "number": number,
                        "first_seen_at": now,
                        **_current_values(
                            snapshot_of(number),
                            text_of(number),
                            by_number[number].fingerprint,
                            by_number[number].node_digest,
                            now,
                        ),
                    }
                    for number in missing
                ],
            )
            fresh = set(missing)
            current.update(await current_rows(missing, lock=False))
        elif missing:
            defaults = model_defaults(PullRequest)
            # executemany of one cached statement (a multi-row VALUES is compiled every time)
            await session.execute(
                upsert_insert(db.backend, pr_table).on_conflict_do_nothing(
                    index_elements=["repository_id", "number"]
                ),
                [
                    {**defaults, "repository_id": repository_id, "number": n, "first_seen_at": now}
                    for n in missing
                ],
            )
        if db.backend != "sqlite":
            current = await current_rows(numbers, lock=True)
        unchanged_ids: list[int] = []
        # (PR row id, the columns to set), each written by one executemany
        redigested: list[tuple[int, dict[str, Any]]] = []  # same fingerprint, another digest
        updates: list[tuple[int, dict[str, Any]]] = []
        observations: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        dirty_ids: list[int] = []
        for number in numbers:
            item = by_number[number]
            pull_id, fingerprint, stored_digest = current[number]
            if (
                mark_open_dirty is not None
                and _state_of(snapshot_of(number)) is PullRequestStateValue.OPEN
            ):
                dirty_ids.append(pull_id)  # changed or not: the poller still reads the whole PR
            if number not in fresh and fingerprint == item.fingerprint:
                if item.node_digest is None or item.node_digest == stored_digest:
                    unchanged_ids.append(pull_id)  # the steady state: nothing else to write
                else:
                    redigested.append(
                        (
                            pull_id,
                            {
                                "snapshot": text_of(number),
                                "node_digest": item.node_digest,
                                "last_observed_at": now,
                            },
                        )
                    )
                continue
            snapshot = snapshot_of(number)
            if number not in fresh:
                updates.append(
                    (
                        pull_id,
                        _current_values(
                            snapshot, text_of(number), item.fingerprint, item.node_digest, now
                        ),
                    )
                )
            changed.append(number)
            observations.append(
                {
                    "pull_request_id": pull_id,
                    "observed_at": now,
                    "source": source.value,
                    "delivery_id": item.delivery_id,
                    "fingerprint": item.fingerprint,
                    "head_sha": snapshot.get("head_sha"),
                    "snapshot": text_of(number),
                }
            )
            links.extend(
                {"repository_id": repository_id, "pull_request_id": pull_id, "issue_number": n}
                for n in _linked_issue_numbers(snapshot)
            )
        for id_part in chunks(unchanged_ids, _ROWS_PER_STATEMENT):
            await session.execute(_observed_statement(), {"ids": id_part, "observed_at": now})
        for rows in (redigested, updates):
            if rows:  # every row sets the same columns: one statement, built once
                await session.execute(
                    update_by_key(pr_table, "id", tuple(rows[0][1])),
                    [update_parameters(pull_id, values) for pull_id, values in rows],
                )
        link_table = table_of(PullRequestIssue)
        if updates:
            changed_ids = [pull_id for pull_id, _ in updates]  # (a fresh row has no links yet)
            for id_part in chunks(changed_ids, _ROWS_PER_STATEMENT):
                await session.execute(
                    delete(link_table).where(link_table.c.pull_request_id.in_(id_part))
                )
        if observations:
            # executemany: one cached statement, not a multi-row VALUES compiled every time
            await session.execute(insert(table_of(Observation)), observations)
        if links:
            await session.execute(insert(link_table), links)
        for id_part in chunks(dirty_ids, _ROWS_PER_STATEMENT):
            await session.execute(
                update(pr_table)
                .where(columns.id.in_(id_part))
                .values(dirty=True, dirty_reason=mark_open_dirty, dirty_since=now)
            )
    return changed


async def mark_dirty(
    db: Ledger, repository: str, numbers: Iterable[int], reason: str, now: datetime
) -> int:
    """Mark PRs to be read again on the next cycle (creating rows for PRs not seen yet);
    returns how many were marked. ``dirty_since`` becomes ``now`` on every mark."""
    wanted = sorted(set(numbers))
    if not wanted:
        return 0
    table = table_of(PullRequest)
    async with db.transaction() as session:
        repository_id = await ensure_repository(session, db.backend, repository, now)
        rows = [
            {
                **model_defaults(PullRequest),
                "repository_id": repository_id,
                "number": number,
                "first_seen_at": now,
                "dirty": True,
                "dirty_reason": reason,
                "dirty_since": now,
            }
            for number in wanted
        ]
        insert = upsert_insert(db.backend, table).values(rows)
        statement = insert.on_conflict_do_update(
            index_elements=["repository_id", "number"],
            set_={"dirty": True, "dirty_reason": reason, "dirty_since": now},
        )
        await session.execute(statement)
    return len(wanted)


def _list_dirty_statement(repository: str | None, limit: int | None) -> Any:
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(repositories.full_name, pulls.number, pulls.dirty_reason, pulls.dirty_since)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(pulls.dirty.is_(True))
        .order_by(pulls.dirty_since, pulls.id)
    )
    if repository is not None:
        statement = statement.where(repositories.full_name == repository)
    if limit is not None:
        statement = statement.limit(limit)
    return statement


@functools.cache
def _repository_dirty_statement() -> Any:
    """:func:`list_dirty` of one repository, without a limit. Parameters: repository."""
    return _list_dirty_statement(None, None).where(
        table_of(Repository).c.full_name == bindparam("repository")
    )


async def list_dirty(
    db: Ledger, repository: str | None = None, limit: int | None = None
) -> list[DirtyPull]:
    """Dirty PRs, longest-waiting first; of one repository when given."""
    async with db.read() as session:
        if repository is not None and limit is None:  # the reconciler's: built once
            result = await session.execute(
                _repository_dirty_statement(), {"repository": repository}
            )
        else:
            result = await session.execute(_list_dirty_statement(repository, limit))
        rows = result.all()
    return [DirtyPull(*row) for row in rows]


@functools.cache
def _clear_dirty_statement() -> Any:
    """Parameters: repository, numbers (a list), read_started_at."""
    table = table_of(PullRequest)
    repositories = table_of(Repository).c
    repository_ids = select(repositories.id).where(
        repositories.full_name == bindparam("repository")
    )
    return (
        update(table)
        .where(
            table.c.repository_id.in_(repository_ids.scalar_subquery()),
            table.c.number.in_(bindparam("numbers", expanding=True)),
            table.c.dirty.is_(True),
            table.c.dirty_since <= bindparam("read_started_at"),
        )
        .values(dirty=False, dirty_reason=None, dirty_since=None)
    )


async def clear_dirty(
    db: Ledger, repository: str, numbers: Iterable[int], read_started_at: datetime
) -> int:
    """Clear the dirty flag of PRs that were read; only marks made at or before
    ``read_started_at`` are cleared (a newer webhook keeps the PR dirty). Returns how many."""
    wanted = sorted(set(numbers))
    if not wanted:
        return 0
    async with db.transaction() as session:
        result = await session.execute(
            _clear_dirty_statement(),
            {"repository": repository, "numbers": wanted, "read_started_at": read_started_at},
        )
    return rowcount(result)


async def finish_read(
    db: Ledger,
    repository: str,
    numbers: Iterable[int],
    read_started_at: datetime,
    *,
    sweep_ok_at: datetime | None = None,
) -> list[DirtyPull]:
    """After reading the repository's PRs, in ONE transaction: :func:`clear_dirty` of
    ``numbers``, then (``sweep_ok_at``) what :func:`ledger.repositories.record_sweep` records
    for a complete full sweep, then :func:`list_dirty` of the repository, which is returned."""
    wanted = sorted(set(numbers))
    async with db.transaction() as session:
        if wanted:
            await session.execute(
                _clear_dirty_statement(),
                {"repository": repository, "numbers": wanted, "read_started_at": read_started_at},
            )
        if sweep_ok_at is not None:
            await update_repository_in(session, repository, **sweep_values(sweep_ok_at, ok=True))
        rows = (
            await session.execute(_repository_dirty_statement(), {"repository": repository})
        ).all()
    return [DirtyPull(*row) for row in rows]


async def get_pull(db: Ledger, repository: str, number: int) -> PullRequest | None:
    """The PR row, or None."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(PullRequest)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(repositories.full_name == repository, pulls.number == number)
    )
    async with db.read() as session:
        return (await session.execute(statement)).scalar_one_or_none()


async def list_open(db: Ledger, repository: str) -> list[PullRequest]:
    """Open PRs of a repository, by number (including ones marked dirty but not read yet)."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(PullRequest)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(
            repositories.full_name == repository,
            pulls.state == PullRequestStateValue.OPEN.value,
        )
        .order_by(pulls.number)
    )
    async with db.read() as session:
        return list((await session.execute(statement)).scalars().all())


@functools.cache
def _open_numbers_statement() -> Any:
    """Parameters: repository."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    return (
        select(pulls.number)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(
            repositories.full_name == bindparam("repository"),
            pulls.state == PullRequestStateValue.OPEN.value,
        )
        .order_by(pulls.number)
    )


async def open_numbers(db: Ledger, repository: str) -> list[int]:
    """Numbers of the repository's open PRs (no snapshots loaded: cheap at 10,000 PRs)."""
    async with db.read() as session:
        result = await session.execute(_open_numbers_statement(), {"repository": repository})
        return [int(n) for n in result.scalars().all()]


async def close_unseen(
    db: Ledger,
    repository: str,
    seen_numbers: Iterable[int],
    sweep_started_at: datetime,
    now: datetime,
) -> list[int]:
    """After a COMPLETE full sweep: mark open PRs the sweep did not see as closed.

    PRs first seen after ``sweep_started_at`` are left alone (they may have been opened during
    the sweep). Returns the numbers closed. Never call it after a partial or failed sweep.
    """
    seen = set(seen_numbers)
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    statement = (
        select(pulls.id, pulls.number)
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(
            repositories.full_name == repository,
            pulls.state == PullRequestStateValue.OPEN.value,
            pulls.first_seen_at < sweep_started_at,
        )
    )
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    candidates = [(int(row.id), int(row.number)) for row in rows if row.number not in seen]
    if not candidates:
        return []
    table = table_of(PullRequest)
    async with db.transaction() as session:
        for part in chunks([pull_id for pull_id, _ in candidates], _ROWS_PER_STATEMENT):
            await session.execute(
                update(table)
                .where(table.c.id.in_(part), table.c.state == PullRequestStateValue.OPEN.value)
                .values(state=PullRequestStateValue.CLOSED.value, closed_at=now)
            )
    return sorted(number for _, number in candidates)


@functools.cache
def _known_nodes_statement() -> Any:
    """Parameters: repository."""
    pulls, repositories = table_of(PullRequest).c, table_of(Repository).c
    return (
        select(
            pulls.number,
            pulls.node_digest,
            pulls.fingerprint,
            pulls.snapshot["updated_at"].as_string(),
            pulls.snapshot["state"].as_string(),
            pulls.snapshot["mergeable"].as_string(),
        )
        .join_from(table_of(PullRequest), table_of(Repository))
        .where(
            repositories.full_name == bindparam("repository"),
            pulls.state == PullRequestStateValue.OPEN.value,
            pulls.node_digest.is_not(None),
            pulls.fingerprint.is_not(None),
        )
    )


async def known_nodes(db: Ledger, repository: str) -> dict[int, KnownNode]:
    """PR number -> :class:`KnownNode`, for the repository's open PRs whose snapshot was
    recorded with a node digest (one query; the snapshots themselves are not loaded: the few
    facts are picked out of the JSON by the database). Rows whose facts are missing or odd are
    left out. Closed PRs are too: sweeps read open PRs, and closed ones pile up over the years.

    The state is the snapshot's, not the row's, as every fact is the node's."""
    async with db.read() as session:
        rows = (await session.execute(_known_nodes_statement(), {"repository": repository})).all()
    found: dict[int, KnownNode] = {}
    for number, digest, fingerprint, updated_text, state, mergeable in rows:
        if not all(isinstance(text, str) for text in (updated_text, state, mergeable)):
            continue
        try:
            updated_at = datetime.fromisoformat(updated_text)
        except ValueError:
            continue
        if updated_at.tzinfo is None:
            updated_at = updated_at.replace(tzinfo=UTC)
        found[int(number)] = KnownNode(str(digest), str(fingerprint), updated_at, state, mergeable)
    return found


async def list_observations(db: Ledger, repository: str, number: int) -> list[Observation]:
    """The PR's observations, oldest first."""
    observations = table_of(Observation)
    pulls, repositories = table_of(PullRequest), table_of(Repository)
    statement = (
        select(Observation)
        .join_from(observations, pulls)
        .join_from(pulls, repositories)
        .where(repositories.c.full_name == repository, pulls.c.number == number)
        .order_by(observations.c.observed_at, observations.c.id)
    )
    async with db.read() as session:
        return list((await session.execute(statement)).scalars().all())
