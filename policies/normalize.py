"""Pure normalisation: GitHub data (a GraphQL ``PullRequestFields`` node or a webhook
``pull_request`` object) -> one frozen :class:`PullRequestSnapshot`.

No I/O here. Bad or missing fields never raise deep inside: a node without the fields a snapshot
needs raises :class:`NormalizeError` naming the field, and a webhook payload (which lacks
mergeability, checks, reviews and comments) gives a snapshot marked ``partial=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from policies.snapshot import (
    Actor,
    AuthorAssociation,
    CheckOutcome,
    Mergeable,
    PullRequestSnapshot,
    PullRequestState,
    snapshot_from_json,
)

GHOST_LOGIN = "ghost"  # GitHub shows a deleted account as "ghost"; GraphQL gives author: null


class NormalizeError(ValueError):
    """The data lacks a field a snapshot cannot do without."""


# --- small named rules ----------------------------------------------------------------------

_FAILURE = frozenset({"failure", "timed_out", "action_required", "startup_failure", "error"})
_PENDING = frozenset({"queued", "in_progress", "waiting", "requested", "pending", "expected"})
_NEUTRAL = frozenset({"neutral", "skipped", "stale", "cancelled"})


def check_run_outcome(status: str | None, conclusion: str | None) -> CheckOutcome:
    """A CheckRun that has not completed is pending; a completed one is judged by its conclusion."""
    status_l = str(status or "").lower()
    conclusion_l = str(conclusion or "").lower()
    if status_l and status_l != "completed":
        return CheckOutcome.PENDING
    if not conclusion_l:
        return CheckOutcome.PENDING
    if conclusion_l == "success":
        return CheckOutcome.SUCCESS
    if conclusion_l in _FAILURE:
        return CheckOutcome.FAILURE
    if conclusion_l in _NEUTRAL:
        return CheckOutcome.NEUTRAL
    return CheckOutcome.PENDING  # an unknown future conclusion: not a verdict yet


def status_context_outcome(state: str | None) -> CheckOutcome:
    """A commit status: success, failure/error, or (pending/expected/unknown) pending."""
    state_l = str(state or "").lower()
    if state_l == "success":
        return CheckOutcome.SUCCESS
    if state_l in _FAILURE or state_l == "failure":
        return CheckOutcome.FAILURE
    return CheckOutcome.PENDING


def is_bot_login(login: str) -> bool:
    """Apps act as ``name[bot]``."""
    return login.endswith("[bot]")


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string (``Z`` or offset), epoch seconds, or None -> an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise NormalizeError(f"not a timestamp: {value!r}") from error
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise NormalizeError(f"not a timestamp: {value!r}")


# Enum members by value: a dict lookup, where calling the enum costs a microsecond or more per
# value (reconcile reads several per PR).
_ASSOCIATIONS = {member.value: member for member in AuthorAssociation}
_MERGEABLE = {member.value: member for member in Mergeable}
_STATES = {member.value: member for member in PullRequestState}


def association(value: Any) -> AuthorAssociation:
    """Unknown or missing associations count as NONE (the least trusted)."""
    return _ASSOCIATIONS.get(str(value).upper(), AuthorAssociation.NONE)


def mergeable_of(value: Any) -> Mergeable:
    """GraphQL enum or REST boolean/None -> Mergeable."""
    if value is True:
        return Mergeable.MERGEABLE
    if value is False:
        return Mergeable.CONFLICTING
    return _MERGEABLE.get(str(value).upper(), Mergeable.UNKNOWN)


# --- helpers ------------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    # ``type(...) is dict`` first: parsed JSON is dicts, and the Mapping check is an ABC's
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _nodes(connection: Any) -> list[Mapping[str, Any]]:
    nodes = _map(connection).get("nodes")
    if not isinstance(nodes, list):
        return []
    return [n for n in nodes if type(n) is dict or isinstance(n, Mapping)]


def _required(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None:
        raise NormalizeError(f"missing field {key!r}")
    return value


def _required_time(data: Mapping[str, Any], key: str) -> datetime:
    value = parse_time(_required(data, key))
    if value is None:  # "" is no time either
        raise NormalizeError(f"missing field {key!r}")
    return value


def graphql_actor(author: Any, assoc: Any = None) -> Actor:
    """A GraphQL ``author { __typename login }`` (None for a deleted account)."""
    login, is_bot = _graphql_login(author)
    return Actor(login=login, is_bot=is_bot, association=association(assoc))


def _graphql_login(author: Any) -> tuple[str, bool]:
    data = _map(author)
    login = str(data.get("login") or GHOST_LOGIN)
    is_bot = data.get("__typename") == "Bot" or is_bot_login(login)
    if data.get("__typename") == "Bot" and not is_bot_login(login):
        # GraphQL names an App "dependabot", REST and webhooks "dependabot[bot]": one spelling.
        login += "[bot]"
    return login, is_bot


def _actor_json(author: Any, assoc: Any) -> dict[str, Any]:
    """``graphql_actor`` as the snapshot's JSON has it."""
    login, is_bot = _graphql_login(author)
    return {"login": login, "is_bot": is_bot, "association": association(assoc).value}


def rest_actor(user: Any, assoc: Any = None) -> Actor:
    """A REST/webhook ``user`` object (``type`` is ``User``, ``Bot`` or ``Organization``)."""
    data = _map(user)
    login = str(data.get("login") or GHOST_LOGIN)
    is_bot = data.get("type") == "Bot" or is_bot_login(login)
    return Actor(login=login, is_bot=is_bot, association=association(assoc))


def _state(value: Any, merged: bool = False) -> PullRequestState:
    if merged:
        return PullRequestState.MERGED
    return _STATES.get(str(value).upper(), PullRequestState.OPEN)


def _check_json(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """A ``statusCheckRollup`` context -> a ``CheckResult`` as the snapshot's JSON has it."""
    typename = node.get("__typename")
    if typename == "CheckRun" or ("conclusion" in node and "name" in node):
        return {
            "name": str(node.get("name") or "?"),
            "outcome": check_run_outcome(node.get("status"), node.get("conclusion")).value,
            "url": node.get("detailsUrl"),
            "kind": "check_run",
            "completed_at": _iso(parse_time(node.get("completedAt"))),
        }
    if typename == "StatusContext" or "context" in node:
        return {
            "name": str(node.get("context") or "?"),
            "outcome": status_context_outcome(node.get("state")).value,
            "url": node.get("targetUrl"),
            "kind": "status",
            "completed_at": _iso(parse_time(node.get("createdAt"))),
        }
    return None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _requested_reviewer(node: Mapping[str, Any]) -> str | None:
    reviewer = _map(node.get("requestedReviewer"))
    name = reviewer.get("login") or reviewer.get("slug")
    return str(name) if name else None


# --- entry points ---------------------------------------------------------------------------


def from_graphql(repository: str, node: Mapping[str, Any]) -> PullRequestSnapshot:
    """A ``PullRequestFields`` node of ``repository`` ("owner/name") -> snapshot.

    Truncated connections (more checks or comments than the query asks for) are fine: the query
    takes the latest ones, which are what policies look at.
    """
    return snapshot_from_json(graphql_snapshot_json(repository, node))


def graphql_snapshot_json(repository: str, node: Mapping[str, Any]) -> dict[str, Any]:
    """``snapshot_to_json(from_graphql(repository, node))``, made directly: the one place a
    GraphQL node is read. Reconcile stores this JSON and needs no ``PullRequestSnapshot`` for it
    (building the frozen objects and then encoding them was most of a new PR's CPU), and
    ``from_graphql`` is this, decoded. The keys are the snapshot's fields, in their order."""
    if not isinstance(node, Mapping):
        raise NormalizeError("a pull request node must be an object")
    number = int(_required(node, "number"))
    commit_nodes = _nodes(node.get("commits"))
    commit = _map(commit_nodes[-1].get("commit")) if commit_nodes else {}
    rollup = _map(commit.get("statusCheckRollup"))
    checks = [c for c in (_check_json(n) for n in _nodes(rollup.get("contexts"))) if c is not None]
    reviews = [
        {
            "id": int(r.get("databaseId") or 0),
            "author": _actor_json(r.get("author"), r.get("authorAssociation")),
            "state": str(r.get("state") or "COMMENTED"),
            "submitted_at": _iso(parse_time(r.get("submittedAt"))),
            "body": str(r.get("body") or ""),
        }
        for r in _nodes(node.get("latestReviews"))
    ]
    created_at = _required_time(node, "createdAt")
    comments = [
        {
            "id": int(c.get("databaseId") or 0),
            "author": _actor_json(c.get("author"), c.get("authorAssociation")),
            "created_at": (parse_time(c.get("createdAt")) or created_at).isoformat(),
            "body": str(c.get("body") or ""),
        }
        for c in _nodes(node.get("comments"))
    ]
    linked = [
        {
            "number": int(_required(i, "number")),
            "state": str(i.get("state") or "OPEN"),
            "state_reason": i.get("stateReason"),
            "assignees": [str(a["login"]) for a in _nodes(i.get("assignees")) if a.get("login")],
        }
        for i in _nodes(node.get("closingIssuesReferences"))
    ]
    reviewers = [
        r for r in (_requested_reviewer(n) for n in _nodes(node.get("reviewRequests"))) if r
    ]
    return {
        "repository": repository,
        "number": number,
        "title": str(node.get("title") or ""),
        "author": _actor_json(node.get("author"), node.get("authorAssociation")),
        "created_at": created_at.isoformat(),
        "updated_at": _required_time(node, "updatedAt").isoformat(),
        "head_sha": str(_required(node, "headRefOid")),
        "head_ref": str(node.get("headRefName") or ""),
        "base_ref": str(node.get("baseRefName") or "main"),
        "base_sha": node.get("baseRefOid"),
        "node_id": str(node.get("id") or ""),
        "body": str(node.get("body") or ""),
        "state": _state(node.get("state")).value,
        "is_draft": bool(node.get("isDraft")),
        "labels": [str(n["name"]) for n in _nodes(node.get("labels")) if n.get("name")],
        "milestone": _map(node.get("milestone")).get("title"),
        "assignees": [str(n["login"]) for n in _nodes(node.get("assignees")) if n.get("login")],
        "review_requests": reviewers,
        "mergeable": mergeable_of(node.get("mergeable")).value,
        "merge_state_status": node.get("mergeStateStatus"),
        "review_decision": node.get("reviewDecision"),
        "checks_state": rollup.get("state"),
        "checks": checks,
        "reviews": reviews,
        "comments": comments,
        "linked_issues": linked,
        "auto_merge_enabled": node.get("autoMergeRequest") is not None,
        "head_committed_at": _iso(parse_time(commit.get("committedDate"))),
        "additions": int(node.get("additions") or 0),
        "deletions": int(node.get("deletions") or 0),
        "changed_files": int(node.get("changedFiles") or 0),
        "changed_paths": [],
        "partial": False,
        "extra": {},
    }


def from_webhook(
    repository: str,
    pull_request: Mapping[str, Any],
    previous: PullRequestSnapshot | None = None,
) -> PullRequestSnapshot:
    """A webhook/REST ``pull_request`` object -> snapshot marked ``partial=True``.

    Webhooks carry no checks, reviews, comments or linked issues; when ``previous`` (the last
    full snapshot) is given, those are carried over from it, and the result stays partial until
    the next GraphQL read.
    """
    if not isinstance(pull_request, Mapping):
        raise NormalizeError("pull_request must be an object")
    head = _map(pull_request.get("head"))
    base = _map(pull_request.get("base"))
    merged = bool(pull_request.get("merged")) or pull_request.get("merged_at") is not None
    mergeable_raw = pull_request.get("mergeable")
    return PullRequestSnapshot(
        repository=repository,
        number=int(_required(pull_request, "number")),
        title=str(pull_request.get("title") or ""),
        author=rest_actor(pull_request.get("user"), pull_request.get("author_association")),
        created_at=_required_time(pull_request, "created_at"),
        updated_at=_required_time(pull_request, "updated_at"),
        head_sha=str(_required(head, "sha")),
        head_ref=str(head.get("ref") or ""),
        base_ref=str(base.get("ref") or "main"),
        base_sha=base.get("sha"),
        node_id=str(pull_request.get("node_id") or ""),
        body=str(pull_request.get("body") or ""),
        state=_state(pull_request.get("state"), merged=merged),
        is_draft=bool(pull_request.get("draft")),
        labels=tuple(
            str(label["name"])
            for label in pull_request.get("labels") or ()
            if isinstance(label, Mapping) and label.get("name")
        ),
        milestone=_map(pull_request.get("milestone")).get("title"),
        assignees=tuple(
            str(a["login"])
            for a in pull_request.get("assignees") or ()
            if isinstance(a, Mapping) and a.get("login")
        ),
        review_requests=tuple(
            str(r.get("login") or r.get("slug"))
            for r in [
                *(pull_request.get("requested_reviewers") or ()),
                *(pull_request.get("requested_teams") or ()),
            ]
            if isinstance(r, Mapping) and (r.get("login") or r.get("slug"))
        ),
        mergeable=mergeable_of(mergeable_raw)
        if mergeable_raw is not None
        else (previous.mergeable if previous else Mergeable.UNKNOWN),
        merge_state_status=(
            str(pull_request["mergeable_state"]).upper()
            if pull_request.get("mergeable_state")
            else (previous.merge_state_status if previous else None)
        ),
        review_decision=previous.review_decision if previous else None,
        checks_state=previous.checks_state if previous else None,
        checks=previous.checks if previous else (),
        reviews=previous.reviews if previous else (),
        comments=previous.comments if previous else (),
        linked_issues=previous.linked_issues if previous else (),
        auto_merge_enabled=pull_request.get("auto_merge") is not None,
        head_committed_at=previous.head_committed_at if previous else None,
        additions=int(pull_request.get("additions") or 0),
        deletions=int(pull_request.get("deletions") or 0),
        changed_files=int(pull_request.get("changed_files") or 0),
        partial=True,
    )


def from_graphql_repository_page(
    data: Mapping[str, Any],
) -> tuple[str, list[PullRequestSnapshot], list[tuple[int | None, str]]]:
    """An ``OpenPullRequests`` answer -> (nameWithOwner, snapshots, errors).

    A node that cannot be normalised is reported as ``(number or None, reason)`` instead of
    losing the whole page.
    """
    repo = _map(_map(data).get("repository"))
    name = str(repo.get("nameWithOwner") or "")
    snapshots: list[PullRequestSnapshot] = []
    errors: list[tuple[int | None, str]] = []
    for node in _nodes(repo.get("pullRequests")):
        try:
            snapshots.append(from_graphql(name, node))
        except (NormalizeError, ValueError, TypeError) as error:
            number = node.get("number")
            errors.append((number if isinstance(number, int) else None, str(error)))
    return name, snapshots, errors
