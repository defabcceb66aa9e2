"""What a webhook handler asks for, as values. Handlers are pure (payload in, effects out);
``bot.apply`` turns effects into ledger writes. A webhook is a hint, the snapshot is the truth:
most effects only mark PRs dirty so the poller reads them again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class MarkDirty:
    """Read these PRs of ``repository`` again on the next cycle."""

    repository: str
    numbers: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class MarkDirtyBySha:
    """Read again the open PRs whose head is ``sha`` (status, check events)."""

    repository: str
    sha: str
    reason: str


@dataclass(frozen=True, slots=True)
class MarkDirtyByBase:
    """A base branch moved: mergeability of its open PRs must be read again."""

    repository: str
    base_ref: str
    reason: str


@dataclass(frozen=True, slots=True)
class MarkDirtyByIssue:
    """An issue changed: the open PRs that reference it must be read again."""

    repository: str
    issue_number: int
    reason: str


@dataclass(frozen=True, slots=True)
class ObservePullRequest:
    """A ``pull_request`` object from a webhook: the applier builds a partial snapshot from it
    (carrying over what the last full read knew), records it, and marks the PR dirty."""

    repository: str
    pull_request: Mapping[str, Any] = field(hash=False)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UpsertInstallation:
    installation_id: int
    account_login: str
    account_type: str
    suspended: bool = False
    permissions: dict[str, Any] = field(default_factory=dict)
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveInstallation:
    installation_id: int


@dataclass(frozen=True, slots=True)
class AddRepositories:
    """Repositories added to an installation: sweep them soon (issue 13 backfill)."""

    installation_id: int
    repositories: tuple[str, ...]
    github_ids: tuple[int | None, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveRepositories:
    installation_id: int
    repositories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LiftBoundaries:
    """The installation changed (new permissions accepted, repositories added): its permission
    boundaries (only those of ``repositories`` when given) are lifted, the actions tried again."""

    installation_id: int
    reason: str
    repositories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do; recorded on the delivery as why."""

    reason: str


Effect = (
    MarkDirty
    | MarkDirtyBySha
    | MarkDirtyByBase
    | MarkDirtyByIssue
    | ObservePullRequest
    | UpsertInstallation
    | RemoveInstallation
    | AddRepositories
    | RemoveRepositories
    | LiftBoundaries
    | Ignore
)
