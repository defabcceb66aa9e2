"""policies.normalize: GraphQL nodes and webhook payloads -> PullRequestSnapshot."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from policies.normalize import (
    NormalizeError,
    check_run_outcome,
    from_graphql,
    from_graphql_repository_page,
    from_webhook,
    graphql_snapshot_json,
    status_context_outcome,
)
from policies.snapshot import (
    AuthorAssociation,
    CheckOutcome,
    Mergeable,
    PullRequestState,
    snapshot_from_json,
    snapshot_to_json,
)

NODE: dict[str, Any] = {
    "id": "PR_kwDOAAA1",
    "number": 7,
    "title": "Fix the frobnicator",
    "body": "Closes #3",
    "url": "https://github.com/acme/widgets/pull/7",
    "state": "OPEN",
    "author": {"__typename": "User", "login": "octocat"},
    "authorAssociation": "CONTRIBUTOR",
    "isDraft": False,
    "createdAt": "2026-01-02T03:04:05Z",
    "updatedAt": "2026-01-03T03:04:05Z",
    "baseRefName": "main",
    "baseRefOid": "b" * 40,
    "headRefName": "fix",
    "headRefOid": "a" * 40,
    "mergeable": "CONFLICTING",
    "mergeStateStatus": "DIRTY",
    "reviewDecision": "CHANGES_REQUESTED",
    "additions": 10,
    "deletions": 2,
    "changedFiles": 3,
    "autoMergeRequest": None,
    "milestone": {"title": "v1"},
    "labels": {"nodes": [{"name": "bug"}, {"name": "p1"}]},
    "assignees": {"nodes": [{"login": "alice"}]},
    "reviewRequests": {
        "nodes": [
            {"requestedReviewer": {"__typename": "User", "login": "bob"}},
            {"requestedReviewer": {"__typename": "Team", "slug": "core"}},
        ]
    },
    "commits": {
        "nodes": [
            {
                "commit": {
                    "oid": "a" * 40,
                    "committedDate": "2026-01-02T00:00:00Z",
                    "statusCheckRollup": {
                        "state": "FAILURE",
                        "contexts": {
                            "nodes": [
                                {
                                    "__typename": "CheckRun",
                                    "name": "test",
                                    "status": "COMPLETED",
                                    "conclusion": "FAILURE",
                                    "detailsUrl": "https://ci/1",
                                    "completedAt": "2026-01-02T01:00:00Z",
                                },
                                {
                                    "__typename": "CheckRun",
                                    "name": "lint",
                                    "status": "IN_PROGRESS",
                                    "conclusion": None,
                                    "detailsUrl": None,
                                    "completedAt": None,
                                },
                                {
                                    "__typename": "StatusContext",
                                    "context": "ci/legacy",
                                    "state": "SUCCESS",
                                    "targetUrl": "https://ci/2",
                                    "createdAt": "2026-01-02T02:00:00Z",
                                },
                            ]
                        },
                    },
                }
            }
        ]
    },
    "latestReviews": {
        "nodes": [
            {
                "databaseId": 11,
                "author": {"__typename": "User", "login": "bob"},
                "authorAssociation": "MEMBER",
                "state": "CHANGES_REQUESTED",
                "submittedAt": "2026-01-02T05:00:00Z",
                "body": "please fix",
            }
        ]
    },
    "comments": {
        "nodes": [
            {
                "databaseId": 21,
                "author": {"__typename": "Bot", "login": "dependabot"},
                "authorAssociation": "NONE",
                "createdAt": "2026-01-02T06:00:00Z",
                "body": "bump",
            },
            {
                "databaseId": 22,
                "author": None,
                "authorAssociation": "NONE",
                "createdAt": "2026-01-02T07:00:00Z",
                "body": "from a deleted account",
            },
        ]
    },
    "closingIssuesReferences": {
        "nodes": [
            {
                "number": 3,
                "state": "CLOSED",
                "stateReason": "COMPLETED",
                "assignees": {"nodes": [{"login": "alice"}]},
            }
        ]
    },
}


def test_full_graphql_node__maps_every_field() -> None:
    snap = from_graphql("acme/widgets", NODE)
    assert snap.repository == "acme/widgets"
    assert snap.number == 7
    assert snap.author.login == "octocat" and not snap.author.is_bot
    assert snap.author.association is AuthorAssociation.CONTRIBUTOR
    assert snap.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert snap.head_sha == "a" * 40 and snap.base_sha == "b" * 40
    assert snap.mergeable is Mergeable.CONFLICTING
    assert snap.merge_state_status == "DIRTY"
    assert snap.review_decision == "CHANGES_REQUESTED"
    assert snap.checks_state == "FAILURE"
    assert [(c.name, c.outcome, c.kind) for c in snap.checks] == [
        ("test", CheckOutcome.FAILURE, "check_run"),
        ("lint", CheckOutcome.PENDING, "check_run"),
        ("ci/legacy", CheckOutcome.SUCCESS, "status"),
    ]
    assert [c.name for c in snap.failing_checks] == ["test"]
    assert snap.labels == ("bug", "p1")
    assert snap.milestone == "v1"
    assert snap.assignees == ("alice",)
    assert snap.review_requests == ("bob", "core")
    assert snap.reviews[0].author.association is AuthorAssociation.MEMBER
    assert snap.comments[0].author.is_bot
    assert snap.comments[0].author.login == "dependabot[bot]"  # REST/webhook spelling
    assert snap.comments[1].author.login == "ghost"
    assert snap.linked_issues[0].state == "CLOSED"
    assert snap.linked_issues[0].assignees == ("alice",)
    assert snap.head_committed_at == datetime(2026, 1, 2, tzinfo=UTC)
    assert snap.changed_files == 3 and not snap.auto_merge_enabled
    assert not snap.partial


def test_graphql_snapshot__survives_json_round_trip() -> None:
    snap = from_graphql("acme/widgets", NODE)
    assert snapshot_from_json(snapshot_to_json(snap)) == snap
    assert snapshot_from_json(snapshot_to_json(snap)).fingerprint() == snap.fingerprint()


def test_graphql_json__is_the_snapshots_json_and_the_stored_fingerprint() -> None:
    # Reconcile stores graphql_snapshot_json without building the snapshot: it must be exactly
    # what encoding the snapshot gives, key order included (the stored text does not change).
    encoded = graphql_snapshot_json("acme/widgets", NODE)
    reference = snapshot_to_json(from_graphql("acme/widgets", NODE))
    assert encoded == reference and json.dumps(encoded) == json.dumps(reference)
    # a known value, from the normaliser that built snapshots first and encoded them after:
    # a change here would make every PR stored in a ledger look changed
    assert from_graphql("acme/widgets", NODE).fingerprint() == (
        "d55a66bd981136ea58d5ee31eb89ca433e5431112164855c8a9defdb4e9cf7ab"
    )


ODD_VALUES: list[Any] = [
    None, "", 0, 7, True, "x", [], {}, [1, {"a": None}], {"nodes": None},
    {"nodes": [None, 1, {}]}, 1.5, "2026-01-01T00:00:00+02:00", 1_700_000_000,
    "2026-01-01T00:00:00.123456Z", "not a time", {"login": None},
    {"__typename": "Bot", "login": "dependabot"},
]  # fmt: skip


def _mutated(value: Any, rng: random.Random) -> Any:
    """``value`` with some keys dropped, some values swapped for odd ones, some items gone.
    A node that cannot be normalised must raise what reconcile catches, nothing else."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            roll = rng.random()
            if roll < 0.08:
                continue
            out[key] = rng.choice(ODD_VALUES) if roll < 0.2 else _mutated(item, rng)
        return out
    if isinstance(value, list):
        return [_mutated(item, rng) for item in value if rng.random() > 0.1]
    return value


def test_graphql_json__matches_the_snapshot_for_odd_nodes_too() -> None:
    rng = random.Random(7)
    normalised = refused = 0
    for _ in range(3000):
        node = _mutated(copy.deepcopy(NODE), rng)
        try:
            encoded = graphql_snapshot_json("acme/widgets", node)
        except (NormalizeError, ValueError, TypeError):
            refused += 1
            with pytest.raises((NormalizeError, ValueError, TypeError)):
                from_graphql("acme/widgets", node)
            continue
        normalised += 1
        reference = snapshot_to_json(from_graphql("acme/widgets", node))
        assert encoded == reference and list(encoded) == list(reference)
    assert normalised > 500 and refused > 100  # both paths were exercised


def test_updated_at_only_change__same_fingerprint() -> None:
    other = copy.deepcopy(NODE)
    other["updatedAt"] = "2026-02-01T00:00:00Z"
    assert (
        from_graphql("acme/widgets", other).fingerprint()
        == from_graphql("acme/widgets", NODE).fingerprint()
    )


def test_label_change__new_fingerprint() -> None:
    other = copy.deepcopy(NODE)
    other["labels"]["nodes"].append({"name": "stale"})
    assert (
        from_graphql("acme/widgets", other).fingerprint()
        != from_graphql("acme/widgets", NODE).fingerprint()
    )


def test_minimal_node__defaults() -> None:
    node = {
        "number": 1,
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
        "headRefOid": "c" * 40,
        "author": {"__typename": "Bot", "login": "renovate"},
        "statusCheckRollup": None,
        "commits": {"nodes": [{"commit": {"statusCheckRollup": None}}]},
    }
    snap = from_graphql("o/r", node)
    assert snap.author.is_bot
    assert snap.checks == () and snap.checks_state is None
    assert snap.mergeable is Mergeable.UNKNOWN


@pytest.mark.parametrize("missing", ["number", "createdAt", "updatedAt", "headRefOid"])
def test_node_missing_required_field__clear_error(missing: str) -> None:
    node = copy.deepcopy(NODE)
    del node[missing]
    with pytest.raises(NormalizeError, match=missing):
        from_graphql("o/r", node)


def test_page_with_one_bad_node__keeps_the_rest() -> None:
    bad = {"number": 8}
    data = {
        "repository": {
            "nameWithOwner": "acme/widgets",
            "pullRequests": {"nodes": [NODE, bad, None]},
        }
    }
    name, snaps, errors = from_graphql_repository_page(data)
    assert name == "acme/widgets"
    assert [s.number for s in snaps] == [7]
    assert errors and errors[0][0] == 8


@pytest.mark.parametrize(
    ("status", "conclusion", "expected"),
    [
        ("COMPLETED", "SUCCESS", CheckOutcome.SUCCESS),
        ("COMPLETED", "FAILURE", CheckOutcome.FAILURE),
        ("COMPLETED", "TIMED_OUT", CheckOutcome.FAILURE),
        ("COMPLETED", "ACTION_REQUIRED", CheckOutcome.FAILURE),
        ("COMPLETED", "STARTUP_FAILURE", CheckOutcome.FAILURE),
        ("COMPLETED", "CANCELLED", CheckOutcome.NEUTRAL),
        ("COMPLETED", "SKIPPED", CheckOutcome.NEUTRAL),
        ("COMPLETED", "NEUTRAL", CheckOutcome.NEUTRAL),
        ("COMPLETED", "STALE", CheckOutcome.NEUTRAL),
        ("QUEUED", None, CheckOutcome.PENDING),
        ("IN_PROGRESS", None, CheckOutcome.PENDING),
        ("WAITING", None, CheckOutcome.PENDING),
        ("COMPLETED", None, CheckOutcome.PENDING),
        ("COMPLETED", "SOMETHING_NEW", CheckOutcome.PENDING),
        ("completed", "success", CheckOutcome.SUCCESS),
    ],
    ids=lambda v: str(v),
)
def test_check_run_outcome(status: str, conclusion: str | None, expected: CheckOutcome) -> None:
    assert check_run_outcome(status, conclusion) is expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("SUCCESS", CheckOutcome.SUCCESS),
        ("FAILURE", CheckOutcome.FAILURE),
        ("ERROR", CheckOutcome.FAILURE),
        ("PENDING", CheckOutcome.PENDING),
        ("EXPECTED", CheckOutcome.PENDING),
        (None, CheckOutcome.PENDING),
    ],
    ids=lambda v: str(v),
)
def test_status_context_outcome(state: str | None, expected: CheckOutcome) -> None:
    assert status_context_outcome(state) is expected


WEBHOOK_PR: dict[str, Any] = {
    "number": 7,
    "node_id": "PR_kwDOAAA1",
    "state": "open",
    "title": "Fix the frobnicator",
    "body": None,
    "user": {"login": "dependabot[bot]", "type": "Bot"},
    "author_association": "NONE",
    "created_at": "2026-01-02T03:04:05Z",
    "updated_at": "2026-01-03T03:04:05Z",
    "merged_at": None,
    "draft": True,
    "head": {"ref": "fix", "sha": "a" * 40},
    "base": {"ref": "main", "sha": "b" * 40},
    "labels": [{"name": "bug"}],
    "assignees": [],
    "requested_reviewers": [{"login": "bob"}],
    "requested_teams": [{"slug": "core"}],
    "milestone": None,
    "auto_merge": None,
}


def test_webhook_payload__partial_snapshot() -> None:
    snap = from_webhook("acme/widgets", WEBHOOK_PR)
    assert snap.partial
    assert snap.author.is_bot and snap.author.login == "dependabot[bot]"
    assert snap.is_draft and snap.labels == ("bug",)
    assert snap.review_requests == ("bob", "core")
    assert snap.mergeable is Mergeable.UNKNOWN
    assert snap.state is PullRequestState.OPEN
    assert snap.body == ""


def test_webhook_merged__state_merged() -> None:
    payload = {**WEBHOOK_PR, "state": "closed", "merged": True, "merged_at": "2026-01-04T00:00:00Z"}
    assert from_webhook("o/r", payload).state is PullRequestState.MERGED


def test_webhook_closed_unmerged__state_closed() -> None:
    payload = {**WEBHOOK_PR, "state": "closed", "merged": False}
    assert from_webhook("o/r", payload).state is PullRequestState.CLOSED


def test_webhook_with_previous__carries_checks_over() -> None:
    previous = from_graphql("acme/widgets", NODE)
    snap = from_webhook("acme/widgets", WEBHOOK_PR, previous=previous)
    assert snap.checks == previous.checks
    assert snap.mergeable is Mergeable.CONFLICTING
    assert snap.partial


def test_webhook_login_suffix_bot__is_bot() -> None:
    payload = {**WEBHOOK_PR, "user": {"login": "my-app[bot]", "type": "User"}}
    assert from_webhook("o/r", payload).author.is_bot


def test_webhook_missing_head__clear_error() -> None:
    payload = {k: v for k, v in WEBHOOK_PR.items() if k != "head"}
    with pytest.raises(NormalizeError, match="sha"):
        from_webhook("o/r", payload)
