"""Turn handler effects into ledger writes. The only place webhook processing writes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.handlers.effects import (
    AddRepositories,
    Effect,
    Ignore,
    LiftBoundaries,
    MarkDirty,
    MarkDirtyByBase,
    MarkDirtyByIssue,
    MarkDirtyBySha,
    ObservePullRequest,
    RemoveInstallation,
    RemoveRepositories,
    UpsertInstallation,
)
from ledger import pulls, recovery, repositories
from ledger.db import Ledger
from ledger.models import ObservationSource
from ledger.watching import (
    open_numbers_linking_issue,
    open_numbers_with_base,
    open_numbers_with_head,
)
from policies.normalize import NormalizeError, from_webhook
from policies.snapshot import PullRequestState, snapshot_from_json, snapshot_to_json

log = logging.getLogger("prsteward.apply")


@dataclass(slots=True)
class Applied:
    """What one delivery's effects did (for logs, tests and the delivery's record)."""

    dirty: list[tuple[str, int]] = field(default_factory=list)
    observed: list[tuple[str, int]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    repositories_added: list[str] = field(default_factory=list)

    @property
    def only_ignored(self) -> bool:
        return bool(self.ignored) and not (self.dirty or self.observed or self.repositories_added)


class Applier:
    """Applies effects in order. ``repository_allowed`` filters repositories before any write
    (the allowlist/ignorelist); ``on_repositories_added`` is told about new repositories so the
    poller can sweep them at once."""

    def __init__(
        self,
        db: Ledger,
        *,
        repository_allowed: Callable[[str], bool] = lambda _name: True,
        on_repositories_added: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.db = db
        self.repository_allowed = repository_allowed
        self.on_repositories_added = on_repositories_added

    async def apply(
        self, effects: Sequence[Effect], *, delivery_id: str | None, now: datetime
    ) -> Applied:
        applied = Applied()
        for effect in effects:
            await self._apply_one(effect, applied, delivery_id, now)
        return applied

    async def _mark(
        self, applied: Applied, repository: str, numbers: Sequence[int], reason: str, now: datetime
    ) -> None:
        if numbers:
            await pulls.mark_dirty(self.db, repository, numbers, reason, now)
            applied.dirty.extend((repository, n) for n in numbers)

    async def _apply_one(
        self, effect: Effect, applied: Applied, delivery_id: str | None, now: datetime
    ) -> None:
        repo = getattr(effect, "repository", None)
        if isinstance(repo, str) and not self.repository_allowed(repo):
            applied.ignored.append(f"repository {repo} is not watched")
            return
        match effect:
            case Ignore(reason=reason):
                applied.ignored.append(reason)
            case MarkDirty(repository=repository, numbers=numbers, reason=reason):
                await self._mark(applied, repository, numbers, reason, now)
            case MarkDirtyBySha(repository=repository, sha=sha, reason=reason):
                by_sha = await open_numbers_with_head(self.db, repository, sha)
                await self._mark(applied, repository, by_sha, reason, now)
                if not by_sha:
                    applied.ignored.append(f"no open PR known with head {sha[:12]}")
            case MarkDirtyByBase(repository=repository, base_ref=base_ref, reason=reason):
                by_base = await open_numbers_with_base(self.db, repository, base_ref)
                await self._mark(applied, repository, by_base, reason, now)
            case MarkDirtyByIssue(repository=repository, issue_number=issue, reason=reason):
                by_issue = await open_numbers_linking_issue(self.db, repository, issue)
                await self._mark(applied, repository, by_issue, reason, now)
            case ObservePullRequest(repository=repository, pull_request=payload, reason=reason):
                await self._observe(applied, repository, payload, reason, delivery_id, now)
            case UpsertInstallation():
                await repositories.upsert_installation(
                    self.db,
                    effect.installation_id,
                    effect.account_login,
                    now,
                    account_type=effect.account_type,
                    permissions=dict(effect.permissions),
                    events=list(effect.events),
                    suspended=effect.suspended,
                )
            case RemoveInstallation(installation_id=installation_id):
                await repositories.mark_installation_removed(self.db, installation_id, now)
                gone = [
                    repo_row.full_name
                    for repo_row in await repositories.list_repositories(
                        self.db, installation_id=installation_id
                    )
                ]
                for name in gone:
                    await repositories.mark_repository_removed(self.db, name, now)
                await self._cancel_jobs(gone, "the App was uninstalled", now)
            case AddRepositories(installation_id=installation_id, repositories=names):
                added = []
                ids = list(effect.github_ids) + [None] * len(names)
                for name, github_id in zip(names, ids, strict=False):
                    if not self.repository_allowed(name):
                        applied.ignored.append(f"repository {name} is not watched")
                        continue
                    await repositories.upsert_repository(
                        self.db, name, now, installation_id=installation_id, github_id=github_id
                    )
                    added.append(name)
                applied.repositories_added.extend(added)
                if added and self.on_repositories_added is not None:
                    self.on_repositories_added(added)
            case LiftBoundaries(installation_id=installation_id, reason=reason):
                from ledger import boundaries as ledger_boundaries

                lifted = await ledger_boundaries.lift(
                    self.db,
                    f"{reason}: the installation changed",
                    now,
                    installation_id=installation_id,
                    repositories=effect.repositories or None,
                )
                if lifted:
                    log.info("installation %s: %d boundaries lifted", installation_id, lifted)
            case RemoveRepositories(repositories=names):
                for name in names:
                    await repositories.mark_repository_removed(self.db, name, now)
                await self._cancel_jobs(
                    list(names), "the repository was removed from the installation", now
                )

    async def _cancel_jobs(self, names: list[str], reason: str, now: datetime) -> None:
        """Removed repositories are no longer swept (``removed_at``); their open escalation
        jobs are cancelled with ``reason`` (issue 13)."""
        cancelled = await recovery.cancel_jobs_of_repositories(self.db, names, reason, now)
        if cancelled:
            log.info("cancelled jobs %s: %s", cancelled, reason)

    async def _observe(
        self,
        applied: Applied,
        repository: str,
        payload: object,
        reason: str,
        delivery_id: str | None,
        now: datetime,
    ) -> None:
        assert isinstance(payload, Mapping)
        number = int(payload["number"])
        row = await pulls.get_pull(self.db, repository, number)
        previous = snapshot_from_json(row.snapshot) if row is not None and row.snapshot else None
        try:
            snapshot = from_webhook(repository, payload, previous=previous)
        except NormalizeError as error:
            # The payload is odd; the poller will read the truth.
            applied.ignored.append(f"pull_request payload not usable: {error}")
            await self._mark(applied, repository, [number], reason, now)
            return
        if previous is not None and previous.updated_at > snapshot.updated_at:
            # An old delivery processed late: the ledger already knows newer truth.
            await self._mark(applied, repository, [snapshot.number], reason + " (stale)", now)
            return
        # One transaction: the partial snapshot is recorded and an open PR marked dirty (the
        # poller still reads the whole PR).
        await pulls.record_snapshots(
            self.db,
            repository,
            [
                pulls.SnapshotItem(
                    snapshot.number,
                    snapshot_to_json(snapshot),
                    snapshot.fingerprint(),
                    delivery_id,
                )
            ],
            ObservationSource.WEBHOOK,
            now,
            mark_open_dirty=reason,
        )
        if snapshot.state is PullRequestState.OPEN:
            applied.dirty.append((repository, snapshot.number))
        applied.observed.append((repository, snapshot.number))
