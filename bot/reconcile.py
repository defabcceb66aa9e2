"""Reconciliation: make the ledger agree with GitHub for one repository, cheaply.

Per repository and cycle:

1. **Cheap change check** (skipped on a full sweep): one conditional REST request,
   ``GET /repos/{o}/{r}/pulls?state=open&sort=updated&direction=desc&per_page=1`` with
   ``If-None-Match`` / ``If-Modified-Since``. A 304 (free on GitHub) means no open PR was
   updated; a 200 whose ``Last-Modified`` equals the stored one means the same (the ETag changed
   only because the token rotated).
2. **Changed** -> an incremental read: ``OpenPullRequests`` pages, newest update first, until a
   page reaches PRs not updated since the last check.
   **Full sweep** -> every page (100 PRs a page). Open PRs the ledger knows but the sweep did
   not see are read by number: they were closed, merged, or moved while the sweep paginated.
3. **Dirty PRs** (marked by webhooks; checks changing do not bump ``updatedAt``) not read in
   step 2 -> ``pull_requests_by_number`` in chunks.

Every read is normalised (``policies.normalize``) and recorded; the ledger appends an
observation only when the fingerprint changed. A quiet repository with nothing dirty costs one
conditional request and no GraphQL points.

A node read again unchanged is not normalised again: its digest is remembered, in memory and in
the ledger next to the snapshot (``pull_request.node_digest``), so a restarted reconciler on a
warm ledger is as cheap as a steady one (see ``NodeFacts``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

import policies
from bot.github import GitHubApp, GitHubError, InstallationClient, RateLimited
from bot.queries import OPEN_PULL_REQUESTS, pull_requests_by_number
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.models import ObservationSource, Repository
from policies.normalize import NormalizeError, graphql_snapshot_json
from policies.snapshot import (
    Mergeable,
    PullRequestState,
    fingerprint_of_json,
)

log = logging.getLogger("prsteward.reconcile")

BY_NUMBER_CHUNK = 25  # PRs per pull_requests_by_number query
INCREMENTAL_SLACK = timedelta(minutes=2)  # clock skew between us and GitHub
OPEN_PAGE_COST = 11  # points per OpenPullRequests page (see bot/queries.py)
KNOWN_NODES_LIMIT = 200_000  # PRs whose last read node the reconciler remembers (by digest)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- repository selection (pure) -------------------------------------------------------------


def _patterns(text: str | Iterable[str] | None) -> list[str]:
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [p.strip().lower() for p in items if p and p.strip()]


@dataclass(frozen=True, slots=True)
class RepositoryFilter:
    """Allowlist and ignorelist of ``owner/name`` glob patterns (``acme/*``). An empty allowlist
    allows everything; the ignorelist wins."""

    allow: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, allow: str | None, ignore: str | None) -> RepositoryFilter:
        return cls(tuple(_patterns(allow)), tuple(_patterns(ignore)))

    def __call__(self, full_name: str) -> bool:
        name = full_name.lower()
        if any(fnmatch.fnmatchcase(name, p) for p in self.ignore):
            return False
        return not self.allow or any(fnmatch.fnmatchcase(name, p) for p in self.allow)


# --- results -----------------------------------------------------------------------------------


@dataclass(slots=True)
class RepoResult:
    repository: str
    mode: str = "check"  # check | incremental | full | dirty
    unchanged: bool = False  # the cheap check said nothing moved
    read: int = 0  # PR snapshots read
    changed: list[int] = field(default_factory=list)  # new observations
    closed: list[int] = field(default_factory=list)
    requests: int = 0
    graphql_cost: int = 0
    errors: list[str] = field(default_factory=list)
    rescheduled_until: datetime | None = None
    mergeable_unknown: list[int] = field(default_factory=list)  # open, GitHub still computing

    def describe(self) -> str:
        parts = [f"{self.repository}: {self.mode}"]
        if self.unchanged:
            parts.append("unchanged (304)")
        parts.append(f"read {self.read}")
        if self.changed:
            parts.append("changed #" + ", #".join(str(n) for n in self.changed[:20]))
            if len(self.changed) > 20:
                parts.append(f"(+{len(self.changed) - 20} more)")
        if self.closed:
            parts.append("closed #" + ", #".join(str(n) for n in self.closed))
        parts.append(f"{self.requests} requests, {self.graphql_cost} GraphQL points")
        if self.rescheduled_until:
            parts.append(f"rate limited until {self.rescheduled_until.isoformat()}")
        parts.extend(f"error: {e}" for e in self.errors)
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What reconcile needs of one normalised PR node, remembered with the node's digest: the
    same node (byte for byte, as JSON) normalises to the same snapshot, so a node read again
    unchanged is not normalised again (``graphql_snapshot_json`` is pure).

    Remembered in memory and in the ledger (``pulls.known_nodes``: a restarted reconciler loads
    them). ``digest`` is :func:`bound_node_digest`, which also covers the fingerprint and this
    code's normaliser: facts the ledger holds are trusted only for the snapshot they were
    stored with, and only by code that normalises the way the code that stored them did."""

    digest: str | None  # bound_node_digest of the node; None when it has none
    fingerprint: str
    updated_at: datetime
    state: PullRequestState
    mergeable: Mergeable


@dataclass(frozen=True, slots=True)
class PullRead:
    """One PR node read: its facts, and the snapshot's JSON (or how to make it, needed only
    when the ledger's fingerprint differs)."""

    number: int
    facts: NodeFacts
    snapshot: dict[str, Any] | Callable[[], dict[str, Any]]


def node_digest(node: Mapping[str, Any]) -> bytes | None:
    """A digest of a GraphQL node as parsed from JSON (None when it cannot be serialised, e.g.
    a Mapping that is not a dict, or an integer beyond 64 bits).

    orjson's bytes depend only on the node's content and key order (as GitHub sent it), never
    on how the objects were built, so the digest is the same in every process and can be kept
    in the ledger. Equal digests mean equal nodes; equal nodes whose keys came in another order
    digest differently, which costs one normalisation, never a wrong answer."""
    try:
        data = orjson.dumps(node)
    except (orjson.JSONEncodeError, TypeError):
        return None
    return hashlib.blake2b(data, digest_size=16).digest()


def _normaliser_key() -> bytes:
    """The key of :func:`bound_node_digest`: a hash of the ``policies`` package's source, where
    normalisation, snapshot encoding and fingerprints live. A release that changes any of it
    (the whole package, so nothing it imports is missed) does not trust the digests an earlier
    one stored: its first sweep normalises every node again. Sources that cannot be read give
    a random key: nothing stored by another process is trusted (only what this one stored)."""
    package = Path(policies.__file__).parent
    try:
        sources = sorted(package.rglob("*.py"))
        if not sources:
            return os.urandom(32)
        hashed = hashlib.blake2b(digest_size=32)
        for source in sources:
            hashed.update(source.relative_to(package).as_posix().encode() + b"\0")
            hashed.update(source.read_bytes() + b"\0")
        return hashed.digest()
    except OSError:
        return os.urandom(32)


_NORMALISER_KEY = _normaliser_key()


def bound_node_digest(digest: bytes, fingerprint: str) -> str:
    """The node digest as remembered (``NodeFacts.digest``, ``pull_request.node_digest``):
    bound to the fingerprint the node normalised to and keyed by this code's normaliser, as 32
    hex characters. A stored snapshot rewritten by anything that does not know the column (an
    older replica during a rolling deploy) has another fingerprint, so its stale digest no
    longer matches any node: that PR is normalised again, never trusted wrongly."""
    return hashlib.blake2b(
        digest + fingerprint.encode(), digest_size=16, key=_NORMALISER_KEY
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class RepoTarget:
    full_name: str
    installation_id: int


# --- the reconciler ----------------------------------------------------------------------------


class Reconciler:
    def __init__(
        self,
        app: GitHubApp,
        db: Ledger,
        *,
        repository_allowed: Callable[[str], bool] = lambda _name: True,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self.db = db
        self.repository_allowed = repository_allowed
        self.clock = clock
        # (repository, number) -> the facts of the PR's last node read (see NodeFacts)
        self._known_nodes: dict[tuple[str, int], NodeFacts] = {}
        # Repositories whose facts the ledger remembers are in _known_nodes (loaded once).
        self._loaded_repositories: set[str] = set()

    # -- discovery

    async def discover(self) -> list[RepoTarget]:
        """Installations and their repositories from GitHub into the ledger (allowlist applied
        before anything about a repository is fetched). Repositories and installations GitHub no
        longer lists are marked removed, so they stop being swept."""
        now = self.clock()
        targets: list[RepoTarget] = []
        listed_installations: set[int] = set()
        for installation in await self.app.list_installations():
            installation_id = installation.get("id")
            if not isinstance(installation_id, int):
                continue
            listed_installations.add(installation_id)
            account = installation.get("account") or {}
            suspended = installation.get("suspended_at") is not None
            await repositories.upsert_installation(
                self.db,
                installation_id,
                str(account.get("login") or ""),
                now,
                account_type=str(account.get("type") or "Organization"),
                suspended=suspended,
            )
            if suspended:
                continue
            listings: dict[str, repositories.RepositoryListing] = {}
            for repo in await self.app.list_repositories(installation_id):
                name = repo.get("full_name")
                if not isinstance(name, str):
                    continue
                allowed = self.repository_allowed(name)
                listings[name] = repositories.RepositoryListing(
                    full_name=name,
                    installation_id=installation_id,
                    github_id=repo.get("id") if isinstance(repo.get("id"), int) else None,
                    default_branch=str(repo.get("default_branch") or "main"),
                    archived=bool(repo.get("archived")),
                    private=bool(repo.get("private")),
                    ignored=not allowed,
                )
                if allowed:  # archived ones too: watched read-only (engine: shadow mode)
                    targets.append(RepoTarget(name, installation_id))
            await repositories.upsert_listed_repositories(self.db, list(listings.values()), now)
            listed = set(listings)
            for row in await repositories.list_repositories(
                self.db, installation_id=installation_id
            ):
                if row.full_name not in listed:
                    await repositories.mark_repository_removed(self.db, row.full_name, now)
        for row in await repositories.list_repositories(self.db):
            if row.installation_id is not None and row.installation_id not in listed_installations:
                await repositories.mark_installation_removed(self.db, row.installation_id, now)
                await repositories.mark_repository_removed(self.db, row.full_name, now)
        return targets

    async def known_targets(
        self, only: str | None = None, names: Collection[str] | None = None
    ) -> list[RepoTarget]:
        """Repositories the ledger knows, watched and not removed (only ``only``, or only
        those in ``names``, when given)."""
        return [target for target, _row in await self._targets_and_rows(only, names)]

    async def _targets_and_rows(
        self, only: str | None, names: Collection[str] | None
    ) -> list[tuple[RepoTarget, Repository]]:
        """:meth:`known_targets`, each with its ledger row as read now (one query for all)."""
        wanted = {n.lower() for n in names} if names is not None else None
        rows = await repositories.list_repositories(self.db)
        paused: dict[int, bool] = {}
        for installation_id in {r.installation_id for r in rows if r.installation_id is not None}:
            found = await repositories.get_installation(self.db, installation_id)
            paused[installation_id] = (
                found is None or found.suspended or found.removed_at is not None
            )
        return [
            (RepoTarget(r.full_name, r.installation_id), r)
            for r in rows
            if r.installation_id is not None
            and not paused.get(r.installation_id, True)
            and not r.ignored
            and self.repository_allowed(r.full_name)
            and (only is None or r.full_name.lower() == only.lower())
            and (wanted is None or r.full_name.lower() in wanted)
        ]

    # -- one repository

    async def reconcile_repository(
        self, target: RepoTarget, *, full: bool = False, row: Repository | None = None
    ) -> RepoResult:
        """One cycle for one repository; never raises for GitHub trouble (it is in the result,
        and what was not read stays dirty for the next cycle). ``row``: its ledger row as
        :meth:`run_cycle` read it at the start of the cycle (read here when not given; only
        the reconciler writes the poll state it uses)."""
        result = RepoResult(target.full_name, mode="full" if full else "check")
        client = self.app.installation(target.installation_id)
        sent_before = client.requests_sent
        started = self.clock()
        try:
            if row is None:
                row = await repositories.get_repository(self.db, target.full_name)
            # The change check runs before a full sweep too: it stores the validators
            # (ETag / Last-Modified) the next quiet cycle sends.
            changed = await self._cheap_check(client, target, result, row)
            dirty: list[pulls.DirtyPull] | None = None  # None: not listed yet
            if full:
                result.mode, result.unchanged = "full", False
                dirty = await self._sweep(client, target, result, started, row, full=True)
            elif changed:
                if result.mode == "check":
                    result.mode = "incremental"
                dirty = await self._sweep(client, target, result, started, row, full=False)
            await self._read_dirty(client, target, result, started, dirty)
            if result.mergeable_unknown:
                # GitHub says "ask again later" and sends no webhook once it knows: keep them
                # dirty so the next cycle reads them again (not only the next full sweep).
                await pulls.mark_dirty(
                    self.db,
                    target.full_name,
                    sorted(set(result.mergeable_unknown)),
                    "mergeable UNKNOWN",
                    self.clock(),
                )
        except RateLimited as error:
            result.rescheduled_until = error.until
            result.errors.append(str(error))
        except GitHubError as error:
            result.errors.append(str(error))
            if full:
                await repositories.record_sweep(
                    self.db, target.full_name, started, ok=False, error=str(error)[:500]
                )
        result.requests = client.requests_sent - sent_before
        return result

    async def _cheap_check(
        self,
        client: InstallationClient,
        target: RepoTarget,
        result: RepoResult,
        row: Repository | None,
    ) -> bool:
        headers: dict[str, str] = {}
        if row is not None and row.poll_etag:
            headers["If-None-Match"] = row.poll_etag
        if row is not None and row.poll_last_modified:
            headers["If-Modified-Since"] = row.poll_last_modified
        checked_at = self.clock()
        response = await client.request(
            "GET",
            f"/repos/{target.full_name}/pulls",
            params={"state": "open", "sort": "updated", "direction": "desc", "per_page": 1},
            headers=headers,
        )
        if response.status_code == 304:
            result.unchanged = True
            await repositories.record_poll_check(
                self.db,
                target.full_name,
                checked_at,
                row.poll_etag if row else None,
                row.poll_last_modified if row else None,
            )
            return False
        if response.status_code >= 400:
            raise GitHubError(
                f"change check HTTP {response.status_code}", status=response.status_code
            )
        etag = response.headers.get("etag")
        last_modified = response.headers.get("last-modified")
        await repositories.record_poll_check(
            self.db, target.full_name, checked_at, etag, last_modified
        )
        first_time = row is None or row.last_sweep_ok_at is None
        if first_time:
            result.mode = "full"
            return True
        if last_modified and row is not None and last_modified == row.poll_last_modified:
            result.unchanged = True  # a new token, same content
            return False
        return True

    async def _sweep(
        self,
        client: InstallationClient,
        target: RepoTarget,
        result: RepoResult,
        started: datetime,
        row: Repository | None,
        *,
        full: bool,
    ) -> list[pulls.DirtyPull] | None:
        """Read the open PRs; returns the repository's dirty PRs when it listed them."""
        owner, name = target.full_name.split("/", 1)
        full = full or result.mode == "full" or row is None or row.last_sweep_ok_at is None
        since = (row.last_checked_at if row is not None else None) if not full else None
        seen: set[int] = set()
        cursor: str | None = None
        complete = False
        if row is None or row.last_checked_at is None:
            # Never checked before this cycle, so no node of it was ever read (every read
            # follows a change check): the ledger remembers none. Skips a query per repository
            # on an installation's first sweep.
            self._loaded_repositories.add(target.full_name)
        await self._load_known_nodes(target.full_name)
        while True:
            answer = await client.graphql(
                OPEN_PULL_REQUESTS, {"owner": owner, "name": name, "cursor": cursor}
            )
            result.graphql_cost += answer.cost or 0
            repository = answer.data.get("repository")
            if not isinstance(repository, Mapping):
                raise GitHubError(f"repository {target.full_name} not visible: {answer.errors}")
            connection = repository.get("pullRequests") or {}
            nodes = [n for n in connection.get("nodes") or [] if isinstance(n, Mapping)]
            oldest: datetime | None = None
            page: list[PullRead] = []
            for node in nodes:
                read = self._read_node(target.full_name, node, result)
                if read is None:
                    continue
                seen.add(read.number)
                oldest = read.facts.updated_at
                page.append(read)
            await self._record(target.full_name, page, result)  # one transaction a page
            page_info = connection.get("pageInfo") or {}
            if not page_info.get("hasNextPage"):
                complete = True
                break
            if since is not None and oldest is not None and oldest < since - INCREMENTAL_SLACK:
                break  # the rest were not updated since the last check
            cursor = page_info.get("endCursor")
            if not isinstance(cursor, str):
                break
        if full and complete:
            # Open in the ledger, absent from the open set: read them to learn why.
            known_open = set(await pulls.open_numbers(self.db, target.full_name))
            missing = sorted(known_open - seen)
            found = await self._read_numbers(client, target, missing, result)
            gone = [n for n in missing if n not in found]
            if gone:
                result.closed.extend(
                    await pulls.close_unseen(
                        self.db, target.full_name, seen | found, started, self.clock()
                    )
                )
            # clear_dirty, record_sweep(ok) and list_dirty in one transaction
            return await pulls.finish_read(
                self.db, target.full_name, seen | found, started, sweep_ok_at=started
            )
        if not full:
            return await pulls.finish_read(self.db, target.full_name, seen, started)
        await pulls.clear_dirty(self.db, target.full_name, seen, started)
        await repositories.record_sweep(
            self.db, target.full_name, started, ok=False, error="sweep stopped early"
        )
        return None

    async def _read_dirty(
        self,
        client: InstallationClient,
        target: RepoTarget,
        result: RepoResult,
        started: datetime,
        listed: list[pulls.DirtyPull] | None = None,
    ) -> None:
        if listed is None:
            listed = await pulls.list_dirty(self.db, target.full_name)
        dirty = [d.number for d in listed if d.since is None or d.since <= started]
        if not dirty:
            return
        if result.mode == "check":
            result.mode = "dirty"
        found = await self._read_numbers(client, target, dirty, result)
        await pulls.clear_dirty(self.db, target.full_name, found, started)
        missing = [n for n in dirty if n not in found]
        if missing:
            # Not a PR (or deleted): nothing more to learn; do not ask again every cycle.
            await pulls.clear_dirty(self.db, target.full_name, missing, started)

    async def _read_numbers(
        self,
        client: InstallationClient,
        target: RepoTarget,
        numbers: Sequence[int],
        result: RepoResult,
    ) -> set[int]:
        """Read these PRs by number (any state); returns the numbers GitHub knew."""
        owner, name = target.full_name.split("/", 1)
        found: set[int] = set()
        if numbers:
            await self._load_known_nodes(target.full_name)
        for start in range(0, len(numbers), BY_NUMBER_CHUNK):
            chunk = list(numbers[start : start + BY_NUMBER_CHUNK])
            answer = await client.graphql(
                pull_requests_by_number(chunk), {"owner": owner, "name": name}
            )
            result.graphql_cost += answer.cost or 0
            repository = answer.data.get("repository")
            if not isinstance(repository, Mapping):
                raise GitHubError(f"repository {target.full_name} not visible: {answer.errors}")
            reads: list[PullRead] = []
            for number in chunk:
                node = repository.get(f"pr{number}")
                if not isinstance(node, Mapping):
                    continue
                read = self._read_node(target.full_name, node, result)
                if read is None:
                    continue
                found.add(number)
                reads.append(read)
                if read.facts.state.value != "OPEN":
                    result.closed.append(number)
            await self._record(target.full_name, reads, result)
        return found

    def _forget_known_nodes(self) -> None:
        self._known_nodes.clear()
        self._loaded_repositories.clear()

    async def _load_known_nodes(self, repository: str) -> None:
        """Once per repository (again after the memory was full and forgotten): the facts the
        ledger remembers of its PRs' last nodes, so a restarted reconciler does not normalise
        nodes that did not change. One query; what this process remembers is replaced by the
        ledger's, which the same digests make equivalent."""
        if repository in self._loaded_repositories:
            return
        stored = await pulls.known_nodes(self.db, repository)
        if len(self._known_nodes) + len(stored) > KNOWN_NODES_LIMIT:
            self._forget_known_nodes()
        for number, known in stored.items():
            if len(self._known_nodes) >= KNOWN_NODES_LIMIT:
                break
            try:
                state, mergeable = PullRequestState(known.state), Mergeable(known.mergeable)
            except ValueError:
                continue  # a snapshot this code does not read: normalise that node again
            self._known_nodes[(repository, number)] = NodeFacts(
                known.digest, known.fingerprint, known.updated_at, state, mergeable
            )
        self._loaded_repositories.add(repository)

    def _normalise(
        self, repository: str, node: Mapping[str, Any], result: RepoResult
    ) -> dict[str, Any] | None:
        """The node as the snapshot's JSON (what the ledger stores; no snapshot object is
        needed for it), or None with the reason in ``result``."""
        try:
            return graphql_snapshot_json(repository, node)
        except (NormalizeError, ValueError, TypeError) as error:
            result.errors.append(f"#{node.get('number')}: {error}")
            return None

    def _read_node(
        self, repository: str, node: Mapping[str, Any], result: RepoResult
    ) -> PullRead | None:
        """Normalise one node, unless it is the node last read for that PR: then its facts
        are known, and the snapshot's JSON is made only if the ledger needs it."""
        digest = node_digest(node)
        number = node.get("number")
        key = (repository, number) if type(number) is int else None
        if key is not None and digest is not None:
            known = self._known_nodes.get(key)
            if known is not None and known.digest == bound_node_digest(digest, known.fingerprint):
                return PullRead(key[1], known, lambda: graphql_snapshot_json(repository, node))
        encoded = self._normalise(repository, node, result)
        if encoded is None:
            return None
        fingerprint = fingerprint_of_json(encoded)
        read_number: int = encoded["number"]
        bound = (
            bound_node_digest(digest, fingerprint)
            if digest is not None and read_number == number
            else None
        )
        facts = NodeFacts(
            bound,
            fingerprint,
            datetime.fromisoformat(encoded["updated_at"]),
            PullRequestState(encoded["state"]),
            Mergeable(encoded["mergeable"]),
        )
        if key is not None and bound is not None:
            if len(self._known_nodes) >= KNOWN_NODES_LIMIT:
                self._forget_known_nodes()
            self._known_nodes[key] = facts
        return PullRead(read_number, facts, encoded)

    async def _record(self, repository: str, reads: Sequence[PullRead], result: RepoResult) -> None:
        """Record what one GraphQL answer read, in one ledger transaction."""
        if not reads:
            return
        result.read += len(reads)
        result.mergeable_unknown.extend(
            r.number
            for r in reads
            if r.facts.state is PullRequestState.OPEN and r.facts.mergeable is Mergeable.UNKNOWN
        )
        items = [
            pulls.SnapshotItem(
                r.number, r.snapshot, r.facts.fingerprint, node_digest=r.facts.digest
            )
            for r in reads
        ]
        changed = await pulls.record_snapshots(
            self.db, repository, items, ObservationSource.POLL, self.clock()
        )
        order = {r.number: i for i, r in enumerate(reads)}
        result.changed.extend(sorted(changed, key=lambda n: order.get(n, 0)))

    # -- a whole cycle

    async def run_cycle(
        self,
        *,
        only: str | None = None,
        full: bool | Callable[[Repository | None], bool] = False,
        discover: bool = False,
        names: Collection[str] | None = None,
    ) -> list[RepoResult]:
        """One cycle over every watched repository (or ``only``, or those in ``names``)."""
        if discover:
            await self.discover()
        results: list[RepoResult] = []
        for target, row in await self._targets_and_rows(only, names):
            client = self.app.installation(target.installation_id)
            now = self.clock()
            if not client.budget.may_spend("rest", 1, now) or not client.budget.may_spend(
                "graphql", OPEN_PAGE_COST, now
            ):
                skipped = RepoResult(target.full_name, mode="skipped")
                skipped.rescheduled_until = client.budget.resume_at("graphql", now)
                skipped.errors.append("rate budget reserve reached")
                results.append(skipped)
                continue
            wants_full = full(row) if callable(full) else full
            results.append(await self.reconcile_repository(target, full=wants_full, row=row))
        return results
