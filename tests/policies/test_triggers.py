"""Triggers: one table per rule, named "input -> expected"."""

from __future__ import annotations

import pytest

from policies.config import TriggerKind
from policies.history import Commands
from policies.snapshot import AuthorAssociation, Mergeable, PullRequestSnapshot
from policies.triggers import (
    ci_fingerprint,
    find_triggers,
    is_app,
    is_trusted_voice,
    metadata_problems,
)
from tests.factories import (
    at,
    failing,
    make_actor,
    make_app,
    make_bot,
    make_comment,
    make_config,
    make_history,
    make_linked_issue,
    make_maintainer,
    make_review,
    make_snapshot,
)


def kinds(snapshot: PullRequestSnapshot, **history: object) -> list[TriggerKind]:
    config = make_config(flaky_check_patterns=("*e2e*",))
    return [t.kind for t in find_triggers(snapshot, make_history(**history), config)]


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("prsteward", True),
        ("prsteward[bot]", True),
        ("app/prsteward", True),
        ("PrSteward[BOT]", True),
        ("prsteward-fan", False),
        ("dependabot[bot]", False),
    ],
    ids=[
        "NAME -> app",
        "NAME[bot] -> app",
        "app/NAME -> app",
        "any case -> app",
        "similar name -> not app",
        "other bot -> not app",
    ],
)
def test_is_app_in_every_spelling(login: str, expected: bool) -> None:
    assert is_app(login, make_config()) is expected


@pytest.mark.parametrize(
    ("actor", "allowlist", "maintainers", "expected"),
    [
        (make_maintainer(), (), frozenset(), True),
        (make_actor("owner", association=AuthorAssociation.OWNER), (), frozenset(), True),
        (make_actor("collab", association=AuthorAssociation.COLLABORATOR), (), frozenset(), True),
        (make_actor("drive-by"), (), frozenset(), False),
        (make_actor("private-member"), (), frozenset({"private-member"}), True),
        (make_bot("renovate[bot]"), (), frozenset(), False),
        (make_bot("renovate[bot]"), ("renovate",), frozenset(), True),
        (make_app("prsteward[bot]"), ("prsteward",), frozenset({"prsteward[bot]"}), False),
        (make_actor("app/prsteward", association=AuthorAssociation.MEMBER), (), frozenset(), False),
    ],
    ids=[
        "MEMBER -> trusted",
        "OWNER -> trusted",
        "COLLABORATOR -> trusted",
        "CONTRIBUTOR -> not trusted",
        "confirmed private member -> trusted",
        "other bot -> not trusted",
        "allowlisted bot -> trusted",
        "the App, even allowlisted and confirmed -> never",
        "app/NAME with MEMBER association -> never",
    ],
)
def test_who_may_trigger(
    actor: object, allowlist: tuple[str, ...], maintainers: frozenset[str], expected: bool
) -> None:
    config = make_config(bot_allowlist=allowlist)
    assert is_trusted_voice(actor, config, maintainers) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("snapshot", "history", "expected"),
    [
        (make_snapshot(), {}, []),
        (failing(make_snapshot(), "test"), {}, [TriggerKind.FAILING_CI]),
        (failing(make_snapshot(), "e2e-linux"), {}, [TriggerKind.FLAKY_CI]),
        (
            failing(make_snapshot(), "e2e-linux"),
            {"reruns": (ci_fingerprint(failing(make_snapshot(), "e2e-linux")),)},
            [TriggerKind.FAILING_CI],
        ),
        (failing(make_snapshot(), "e2e-linux", "test"), {}, [TriggerKind.FAILING_CI]),
        (make_snapshot(mergeable=Mergeable.CONFLICTING), {}, [TriggerKind.CONFLICT]),
        (make_snapshot(mergeable=Mergeable.UNKNOWN), {}, []),
        (
            make_snapshot(reviews=(make_review("CHANGES_REQUESTED", submitted_at=at(1)),)),
            {},
            [TriggerKind.CHANGES_REQUESTED],
        ),
        (
            make_snapshot(
                reviews=(make_review("CHANGES_REQUESTED", submitted_at=at(1)),),
                head_committed_at=at(2),
            ),
            {},
            [],
        ),
        (
            make_snapshot(
                reviews=(
                    make_review("CHANGES_REQUESTED", submitted_at=at(1)),
                    make_review("APPROVED", submitted_at=at(2)),
                )
            ),
            {},
            [],
        ),
        (
            make_snapshot(reviews=(make_review("CHANGES_REQUESTED", author=make_actor("rando")),)),
            {},
            [],
        ),
        (
            make_snapshot(comments=(make_comment(make_maintainer()),)),
            {},
            [TriggerKind.MAINTAINER_FEEDBACK],
        ),
        (
            make_snapshot(comments=(make_comment(make_maintainer(), created_at=at(1)),)),
            {"last_bot_action_at": at(2)},
            [],
        ),
        (
            make_snapshot(
                comments=(
                    make_comment(make_maintainer(), created_at=at(1)),
                    make_comment(make_app(), created_at=at(2), body="status"),
                )
            ),
            {},
            [],
        ),
        (
            make_snapshot(
                comments=(
                    make_comment(make_maintainer(), created_at=at(1)),
                    make_comment(make_actor("contributor"), created_at=at(2), body="done"),
                )
            ),
            {},
            [],
        ),
        (
            make_snapshot(comments=(make_comment(make_maintainer(), created_at=at(1)),)),
            {},
            [TriggerKind.MAINTAINER_FEEDBACK],
        ),
        (
            make_snapshot(
                head_committed_at=at(3),
                comments=(make_comment(make_maintainer(), created_at=at(1)),),
            ),
            {},
            [],
        ),
        (make_snapshot(comments=(make_comment(make_actor("rando")),)), {}, []),
        (make_snapshot(comments=(make_comment(make_bot()),)), {}, []),
        (make_snapshot(comments=(make_comment(make_app("app/prsteward")),)), {}, []),
        (
            make_snapshot(comments=(make_comment(make_maintainer(), body="/prsteward explain"),)),
            {},
            [],
        ),
        (
            make_snapshot(
                author=make_maintainer("self"),
                comments=(make_comment(make_maintainer("self")),),
            ),
            {},
            [],
        ),
        (make_snapshot(), {"commands": Commands(escalate_comment_id=55)}, [TriggerKind.MANUAL]),
        (
            failing(make_snapshot(mergeable=Mergeable.CONFLICTING), "test"),
            {},
            [TriggerKind.CONFLICT, TriggerKind.FAILING_CI],
        ),
    ],
    ids=[
        "healthy -> none",
        "failing test -> failing_ci",
        "only flaky check fails -> flaky_ci (re-run first)",
        "flaky already re-run at this fingerprint -> failing_ci",
        "flaky plus real failure -> failing_ci",
        "CONFLICTING -> conflict",
        "mergeable UNKNOWN -> none (ask again later)",
        "maintainer requested changes after last push -> changes_requested",
        "author pushed after the review -> none",
        "same reviewer approved later -> none",
        "changes requested by user without write access -> none",
        "maintainer comment, bot never acted -> maintainer_feedback",
        "maintainer comment older than bot's last action -> none",
        "maintainer comment older than the App's own comment -> none",
        "maintainer comment the author already answered -> none",
        "unanswered maintainer comment, App never acted -> maintainer_feedback",
        "author pushed after the maintainer comment -> none",
        "comment by user without write access -> none",
        "comment by another bot -> none",
        "comment by the App as app/NAME -> none",
        "a /prsteward command -> none (commands are not feedback)",
        "the author's own comment, even with write access -> none",
        "/prsteward escalate -> manual",
        "conflict and failing -> conflict first",
    ],
)
def test_triggers(
    snapshot: PullRequestSnapshot, history: dict[str, object], expected: list[TriggerKind]
) -> None:
    assert kinds(snapshot, **history) == expected


def test_failing_ci_fingerprint_is_head_sha_and_sorted_names() -> None:
    one = failing(make_snapshot(), "b-check", "a-check")
    same = failing(make_snapshot(), "a-check", "b-check")
    other_sha = failing(make_snapshot(head_sha="c" * 40), "a-check", "b-check")
    other_set = failing(make_snapshot(), "a-check")
    assert ci_fingerprint(one) == ci_fingerprint(same)
    assert ci_fingerprint(one) != ci_fingerprint(other_sha)
    assert ci_fingerprint(one) != ci_fingerprint(other_set)


def test_conflict_fingerprint_changes_with_base_sha() -> None:
    config = make_config()
    a = find_triggers(make_snapshot(mergeable=Mergeable.CONFLICTING), make_history(), config)
    b = find_triggers(
        make_snapshot(mergeable=Mergeable.CONFLICTING, base_sha="d" * 40), make_history(), config
    )
    assert a[0].fingerprint != b[0].fingerprint


def test_changes_requested_fingerprint_is_review_id() -> None:
    config = make_config()
    first = find_triggers(make_snapshot(reviews=(make_review(id=11),)), make_history(), config)[
        0
    ].fingerprint
    again = find_triggers(
        make_snapshot(reviews=(make_review(id=11),), title="renamed"), make_history(), config
    )[0].fingerprint
    other = find_triggers(make_snapshot(reviews=(make_review(id=12),)), make_history(), config)[
        0
    ].fingerprint
    assert first == again != other


@pytest.mark.parametrize(
    ("body", "issues", "expected"),
    [
        ("## Summary\n## Testing\n", (), []),
        ("## Summary\n", (), ["missing body section '## Testing'"]),
        (
            "## Summary\n## Testing\n- [x] done\n- [ ] docs\n",
            (),
            ["1 checklist item(s) unticked"],
        ),
        (
            "## Summary\n## Testing\n",
            (make_linked_issue(3, "CLOSED"),),
            ["referenced issue #3 is closed"],
        ),
    ],
    ids=[
        "all sections, nothing unticked -> no problems",
        "missing Testing section -> named",
        "unticked checklist item -> counted",
        "referenced issue closed -> named",
    ],
)
def test_stale_metadata_problems(
    body: str, issues: tuple[object, ...], expected: list[str]
) -> None:
    config = make_config(
        metadata={
            "required-body-sections": ["## Summary", "## Testing"],
            "referenced-issue-closed": True,
            "unticked-checklist": True,
        }
    )
    snapshot = make_snapshot(body=body, linked_issues=issues)
    assert list(metadata_problems(snapshot, config)) == expected


def test_stale_metadata_is_off_by_default() -> None:
    snapshot = make_snapshot(
        body="- [ ] nothing ticked", linked_issues=(make_linked_issue(state="CLOSED"),)
    )
    assert metadata_problems(snapshot, make_config()) == ()
