"""The frozen picture of one pull request that every policy decides from.

``bot/`` gathers it (GraphQL sweep or webhook payload, see ``policies.normalize``), the ledger
stores it as JSON (``snapshot_to_json`` / ``snapshot_from_json``), and ``policies/`` decides from
it. A snapshot is a value: two equal snapshots give equal decisions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from policies.json_codec import canonical_json


class AuthorAssociation(StrEnum):
    OWNER = "OWNER"
    MEMBER = "MEMBER"
    COLLABORATOR = "COLLABORATOR"
    CONTRIBUTOR = "CONTRIBUTOR"
    FIRST_TIMER = "FIRST_TIMER"
    FIRST_TIME_CONTRIBUTOR = "FIRST_TIME_CONTRIBUTOR"
    MANNEQUIN = "MANNEQUIN"
    NONE = "NONE"


WRITE_ASSOCIATIONS = frozenset(
    {AuthorAssociation.OWNER, AuthorAssociation.MEMBER, AuthorAssociation.COLLABORATOR}
)


class Mergeable(StrEnum):
    MERGEABLE = "MERGEABLE"
    CONFLICTING = "CONFLICTING"
    UNKNOWN = "UNKNOWN"


class PullRequestState(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    MERGED = "MERGED"


class CheckOutcome(StrEnum):
    """One check's result, folded from CheckRun conclusion/status and StatusContext state."""

    SUCCESS = "success"
    FAILURE = "failure"  # failure, timed_out, action_required, startup_failure, error
    PENDING = "pending"  # queued, in_progress, waiting, expected, pending
    NEUTRAL = "neutral"  # neutral, skipped, stale, cancelled


@dataclass(frozen=True, slots=True)
class Actor:
    login: str
    # GraphQL __typename == "Bot", or REST type == "Bot", or a login ending in [bot]
    is_bot: bool = False
    association: AuthorAssociation = AuthorAssociation.NONE


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    outcome: CheckOutcome
    url: str | None = None
    kind: str = "check_run"  # "check_run" | "status"
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    author: Actor
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    submitted_at: datetime | None
    body: str = ""


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    author: Actor
    created_at: datetime
    body: str = ""


@dataclass(frozen=True, slots=True)
class LinkedIssue:
    number: int
    state: str  # OPEN | CLOSED
    state_reason: str | None = None  # COMPLETED | NOT_PLANNED | REOPENED | DUPLICATE
    assignees: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PullRequestSnapshot:
    """Everything the policies may look at for one PR at one moment."""

    repository: str  # "owner/name"
    number: int
    title: str
    author: Actor
    created_at: datetime
    updated_at: datetime
    head_sha: str
    head_ref: str = ""
    base_ref: str = "main"
    base_sha: str | None = None
    node_id: str = ""
    body: str = ""
    state: PullRequestState = PullRequestState.OPEN
    is_draft: bool = False
    labels: tuple[str, ...] = ()
    milestone: str | None = None
    assignees: tuple[str, ...] = ()
    review_requests: tuple[str, ...] = ()
    mergeable: Mergeable = Mergeable.UNKNOWN
    # mergeStateStatus: BEHIND|BLOCKED|CLEAN|DIRTY|DRAFT|HAS_HOOKS|UNKNOWN|UNSTABLE
    merge_state_status: str | None = None
    review_decision: str | None = None  # APPROVED | CHANGES_REQUESTED | REVIEW_REQUIRED
    # statusCheckRollup.state: ERROR|EXPECTED|FAILURE|PENDING|SUCCESS
    checks_state: str | None = None
    checks: tuple[CheckResult, ...] = ()
    reviews: tuple[Review, ...] = ()
    comments: tuple[Comment, ...] = ()
    linked_issues: tuple[LinkedIssue, ...] = ()
    auto_merge_enabled: bool = False
    head_committed_at: datetime | None = None
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    # Paths the PR touches, when read (files(first: 100)); empty = not read. Risk rules use it.
    changed_paths: tuple[str, ...] = ()
    # True when the snapshot was built from partial data (a failed or truncated read):
    # policies must then prefer watching over acting.
    partial: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def failing_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.outcome is CheckOutcome.FAILURE)

    def fingerprint(self) -> str:
        """A stable hash of what matters; ``updated_at`` and ``extra`` are left out on purpose,
        so a bot's own write (which bumps updatedAt) does not count as a change."""
        return fingerprint_of_json(snapshot_to_json(self))


def fingerprint_of_json(data: dict[str, Any]) -> str:
    """``PullRequestSnapshot.fingerprint`` from its ``snapshot_to_json`` (which is not changed):
    callers that need both encode the snapshot once."""
    kept = {k: v for k, v in data.items() if k not in ("updated_at", "extra")}
    return hashlib.sha256(canonical_json(kept)).hexdigest()


# --- JSON round trip --------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        # What ``asdict`` then encoding gave, without asdict's deep copies (reconcile's hot path).
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


_ENUMS = frozenset({AuthorAssociation, Mergeable, PullRequestState, CheckOutcome})
_LEAVES = frozenset({str, int, bool, float, type(None)})


def _encode_fast(value: Any) -> Any:
    """Exactly ``_encode(value)``, faster for the types a snapshot is made of (reconcile encodes
    every snapshot it reads); anything else goes through ``_encode``."""
    cls = value.__class__
    if cls in _LEAVES:
        return value
    encoder = _ENCODERS.get(cls)
    if encoder is not None:
        return encoder(value)
    if cls is tuple or cls is list:
        return [v if v.__class__ in _LEAVES else _encode_fast(v) for v in value]
    if cls in _ENUMS:
        return value.value
    if cls is datetime:
        return value.isoformat()
    return _encode(value)


def _dataclass_encoder(cls: type) -> Callable[[Any], dict[str, Any]]:
    """``_encode`` of one of the snapshot's own dataclasses as straight-line code (the way
    ``dataclasses`` writes ``__init__``): each field read once, by name, kept as it is when it
    is a JSON leaf and encoded otherwise. The same dict as ``_encode``, keys in field order."""
    names = [f.name for f in fields(cls)]
    reads = "".join(f"    x{i} = value.{name}\n" for i, name in enumerate(names))
    items = ", ".join(
        f"{name!r}: x{i} if x{i}.__class__ in leaves else encode(x{i})"
        for i, name in enumerate(names)
    )
    source = f"def encode_{cls.__name__}(value):\n{reads}    return {{{items}}}\n"
    namespace: dict[str, Any] = {}
    exec(source, {"leaves": _LEAVES, "encode": _encode_fast}, namespace)
    encoder: Callable[[Any], dict[str, Any]] = namespace[f"encode_{cls.__name__}"]
    return encoder


_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    cls: _dataclass_encoder(cls)
    for cls in (PullRequestSnapshot, Actor, CheckResult, Review, Comment, LinkedIssue)
}


def snapshot_to_json(snapshot: PullRequestSnapshot) -> dict[str, Any]:
    """A JSON-ready dict; ``snapshot_from_json`` inverts it exactly."""
    result: dict[str, Any] = _encode_fast(snapshot)
    return result


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _actor(data: dict[str, Any]) -> Actor:
    return Actor(
        login=data["login"],
        is_bot=bool(data.get("is_bot", False)),
        association=AuthorAssociation(data.get("association", "NONE")),
    )


def snapshot_from_json(data: dict[str, Any]) -> PullRequestSnapshot:
    known = {f.name for f in fields(PullRequestSnapshot)}
    values = {k: v for k, v in data.items() if k in known}
    created = _dt(values["created_at"])
    updated = _dt(values["updated_at"])
    assert created is not None and updated is not None
    values["created_at"] = created
    values["updated_at"] = updated
    values["head_committed_at"] = _dt(values.get("head_committed_at"))
    values["author"] = _actor(values["author"])
    values["state"] = PullRequestState(values.get("state", "OPEN"))
    values["mergeable"] = Mergeable(values.get("mergeable", "UNKNOWN"))
    for name in ("labels", "assignees", "review_requests", "changed_paths"):
        values[name] = tuple(values.get(name, ()))
    values["checks"] = tuple(
        CheckResult(
            name=c["name"],
            outcome=CheckOutcome(c["outcome"]),
            url=c.get("url"),
            kind=c.get("kind", "check_run"),
            completed_at=_dt(c.get("completed_at")),
        )
        for c in values.get("checks", ())
    )
    values["reviews"] = tuple(
        Review(
            id=r["id"],
            author=_actor(r["author"]),
            state=r["state"],
            submitted_at=_dt(r.get("submitted_at")),
            body=r.get("body", ""),
        )
        for r in values.get("reviews", ())
    )
    values["comments"] = tuple(
        Comment(
            id=c["id"],
            author=_actor(c["author"]),
            created_at=_dt(c["created_at"]) or created,
            body=c.get("body", ""),
        )
        for c in values.get("comments", ())
    )
    values["linked_issues"] = tuple(
        LinkedIssue(
            number=i["number"],
            state=i["state"],
            state_reason=i.get("state_reason"),
            assignees=tuple(i.get("assignees", ())),
        )
        for i in values.get("linked_issues", ())
    )
    values["extra"] = dict(values.get("extra") or {})
    return PullRequestSnapshot(**values)
