"""Webhook handlers are pure: payload in, effects out. Table tests named input -> expected."""

from __future__ import annotations

from typing import Any

import pytest

from bot.handlers import Event, Router, default_router
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

REPO = {"full_name": "acme/widgets", "id": 1}
INSTALLATION = {"id": 7, "account": {"login": "acme", "type": "Organization"}}
PR = {"number": 5, "head": {"sha": "a" * 40}}


def dispatch(name: str, payload: dict[str, Any]) -> list[Effect]:
    return default_router().dispatch(Event(name=name, delivery_id="d", payload=payload))


CASES: list[tuple[str, str, dict[str, Any], list[type]]] = [
    (
        "pull_request opened -> observe",
        "pull_request",
        {"action": "opened", "repository": REPO, "pull_request": PR},
        [ObservePullRequest],
    ),
    (
        "pull_request some future action -> observe",
        "pull_request",
        {"action": "teleported", "repository": REPO, "pull_request": PR},
        [ObservePullRequest],
    ),
    (
        "pull_request without pull_request -> ignore",
        "pull_request",
        {"action": "opened", "repository": REPO},
        [Ignore],
    ),
    (
        "review submitted -> dirty",
        "pull_request_review",
        {"action": "submitted", "repository": REPO, "pull_request": PR},
        [MarkDirty],
    ),
    (
        "review comment -> dirty",
        "pull_request_review_comment",
        {"action": "created", "repository": REPO, "pull_request": PR},
        [MarkDirty],
    ),
    (
        "review thread resolved -> dirty",
        "pull_request_review_thread",
        {"action": "resolved", "repository": REPO, "pull_request": PR},
        [MarkDirty],
    ),
    (
        "comment on a PR -> dirty",
        "issue_comment",
        {
            "action": "created",
            "repository": REPO,
            "issue": {"number": 5, "pull_request": {"url": "x"}},
        },
        [MarkDirty],
    ),
    (
        "comment on an issue -> ignore",
        "issue_comment",
        {"action": "created", "repository": REPO, "issue": {"number": 5}},
        [Ignore],
    ),
    (
        "check_run with PRs -> dirty + by sha",
        "check_run",
        {
            "action": "completed",
            "repository": REPO,
            "check_run": {"head_sha": "b" * 40, "pull_requests": [{"number": 5}]},
        },
        [MarkDirty, MarkDirtyBySha],
    ),
    (
        "check_run from a fork (no PRs) -> by sha",
        "check_run",
        {
            "action": "completed",
            "repository": REPO,
            "check_run": {"head_sha": "b" * 40, "pull_requests": []},
        },
        [MarkDirtyBySha],
    ),
    (
        "check_suite -> by sha",
        "check_suite",
        {"action": "completed", "repository": REPO, "check_suite": {"head_sha": "b" * 40}},
        [MarkDirtyBySha],
    ),
    (
        "workflow_run -> dirty + by sha",
        "workflow_run",
        {
            "action": "completed",
            "repository": REPO,
            "workflow_run": {"head_sha": "c" * 40, "pull_requests": [{"number": 9}]},
        },
        [MarkDirty, MarkDirtyBySha],
    ),
    (
        "status -> by sha",
        "status",
        {"sha": "d" * 40, "state": "failure", "repository": REPO},
        [MarkDirtyBySha],
    ),
    ("status without sha -> ignore", "status", {"state": "failure", "repository": REPO}, [Ignore]),
    (
        "push to a branch -> base moved + head moved",
        "push",
        {"ref": "refs/heads/main", "after": "e" * 40, "repository": REPO},
        [MarkDirtyByBase, MarkDirtyBySha],
    ),
    (
        "push to a tag -> ignore",
        "push",
        {"ref": "refs/tags/v1", "after": "e" * 40, "repository": REPO},
        [Ignore],
    ),
    (
        "branch deleted -> ignore",
        "push",
        {"ref": "refs/heads/x", "deleted": True, "after": "0" * 40, "repository": REPO},
        [Ignore],
    ),
    (
        "installation created -> upsert + add repos",
        "installation",
        {
            "action": "created",
            "installation": INSTALLATION,
            "repositories": [{"full_name": "acme/widgets", "id": 1}],
        },
        [UpsertInstallation, AddRepositories],
    ),
    (
        "installation deleted -> remove",
        "installation",
        {"action": "deleted", "installation": INSTALLATION},
        [RemoveInstallation],
    ),
    (
        "installation suspend -> upsert suspended",
        "installation",
        {"action": "suspend", "installation": INSTALLATION},
        [UpsertInstallation],
    ),
    (
        "repos added and removed -> upsert + add + remove",
        "installation_repositories",
        {
            "action": "added",
            "installation": INSTALLATION,
            "repositories_added": [{"full_name": "acme/a", "id": 2}],
            "repositories_removed": [{"full_name": "acme/b", "id": 3}],
        },
        [UpsertInstallation, AddRepositories, RemoveRepositories, LiftBoundaries],
    ),
    (
        "issue closed -> PRs that reference it",
        "issues",
        {"action": "closed", "repository": REPO, "issue": {"number": 3}},
        [MarkDirtyByIssue],
    ),
    (
        "issue labelled -> ignore",
        "issues",
        {"action": "labeled", "repository": REPO, "issue": {"number": 3}},
        [Ignore],
    ),
    ("unknown event -> ignore", "star", {"action": "created", "repository": REPO}, [Ignore]),
    ("ping -> ignore", "ping", {"zen": "x"}, [Ignore]),
]


@pytest.mark.parametrize(("name", "event", "payload", "expected"), CASES, ids=[c[0] for c in CASES])
def test_handler(name: str, event: str, payload: dict[str, Any], expected: list[type]) -> None:
    assert [type(e) for e in dispatch(event, payload)] == expected


def test_check_run_numbers_and_sha_are_taken_from_the_payload() -> None:
    effects = dispatch(
        "check_run",
        {
            "action": "completed",
            "repository": REPO,
            "check_run": {
                "head_sha": "b" * 40,
                "pull_requests": [{"number": 5}, {"number": 2}, {"number": 5}],
            },
        },
    )
    assert effects[0] == MarkDirty("acme/widgets", (2, 5), "check_run.completed")
    assert effects[1] == MarkDirtyBySha("acme/widgets", "b" * 40, "check_run.completed")


def test_push__base_branch_name() -> None:
    effects = dispatch(
        "push", {"ref": "refs/heads/release/1.x", "after": "e" * 40, "repository": REPO}
    )
    assert effects[0] == MarkDirtyByBase("acme/widgets", "release/1.x", "push: base moved")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"action": 3},
        {"repository": "not an object"},
        {"repository": {"full_name": None}},
        {"pull_request": []},
    ],
    ids=[
        "empty",
        "action not a string",
        "repository a string",
        "full_name null",
        "pull_request a list",
    ],
)
@pytest.mark.parametrize("event", sorted(default_router().events))
def test_malformed_payload__ignored_never_raises(event: str, payload: dict[str, Any]) -> None:
    effects = dispatch(event, payload)
    assert effects and all(isinstance(e, Ignore) for e in effects)


def test_router_runs_handlers_in_registration_order() -> None:
    router = Router()
    router.register("x")(lambda e: [Ignore("first")])
    router.register("x", "a")(lambda e: [Ignore("second")])
    router.register("x", "b")(lambda e: [Ignore("never")])
    effects = router.dispatch(Event("x", "d", {"action": "a"}))
    assert effects == [Ignore("first"), Ignore("second")]
