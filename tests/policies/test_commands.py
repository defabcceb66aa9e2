"""/prsteward commands: maintainers only, never bots or the App, each comment once."""

from __future__ import annotations

import pytest

from policies.commands import CommandName, apply_commands, parse_command, parse_commands
from policies.history import Commands
from policies.snapshot import Actor, AuthorAssociation
from tests.factories import (
    at,
    make_actor,
    make_app,
    make_bot,
    make_comment,
    make_config,
    make_maintainer,
    make_snapshot,
)

SNAPSHOT = make_snapshot()


def judged(author: Actor, body: str, **config: object) -> tuple[str | None, bool, str]:
    comment = make_comment(author, body=body, id=77)
    parsed = parse_command(SNAPSHOT, comment, make_config(**config))
    assert parsed is not None
    return (parsed.name.value if parsed.name else None, parsed.accepted, parsed.rule_id)


@pytest.mark.parametrize(
    ("author", "body", "expected"),
    [
        (make_maintainer(), "/prsteward freeze", ("freeze", True, "command.freeze")),
        (make_maintainer(), "thanks!\n/prsteward PAUSE please", ("pause", True, "command.pause")),
        (make_maintainer(), "/prsteward explain", ("explain", True, "command.explain")),
        (make_maintainer(), "/prsteward dance", (None, False, "command.unknown")),
        (make_maintainer(), "/prsteward", (None, False, "command.unknown")),
        (make_actor("drive-by"), "/prsteward freeze", ("freeze", False, "command.not-allowed")),
        (make_bot("renovate[bot]"), "/prsteward freeze", ("freeze", False, "command.not-allowed")),
        (
            make_app("prsteward[bot]"),
            "/prsteward unfreeze",
            ("unfreeze", False, "command.not-allowed"),
        ),
        (
            Actor("app/prsteward", False, AuthorAssociation.MEMBER),
            "/prsteward pause",
            ("pause", False, "command.not-allowed"),
        ),
        (
            Actor("secret-member", False, AuthorAssociation.CONTRIBUTOR),
            "/prsteward freeze",
            ("freeze", True, "command.freeze"),
        ),
        (make_maintainer(), "/prsteward budget", ("budget", False, "command.budget.unparsed")),
    ],
    ids=[
        "maintainer freeze -> accepted",
        "command on a later line, any case -> accepted",
        "explain -> accepted",
        "unknown verb -> help line",
        "bare prefix -> help line",
        "user without write access -> recorded, ignored",
        "another bot -> ignored",
        "the App as NAME[bot] -> ignored",
        "the App as app/NAME, even MEMBER -> ignored",
        "confirmed maintainer with private membership -> accepted",
        "budget without amount -> refused with help",
    ],
)
def test_who_may_command(author: Actor, body: str, expected: tuple[str | None, bool, str]) -> None:
    assert judged(author, body, maintainers=("secret-member",)) == expected


def test_no_command_in_an_ordinary_comment() -> None:
    assert parse_command(SNAPSHOT, make_comment(body="please fix the tests"), make_config()) is None


@pytest.mark.parametrize(
    ("body", "tokens", "dollars"),
    [
        ("/prsteward budget +50k", 50_000, None),
        ("/prsteward budget +1.5m", 1_500_000, None),
        ("/prsteward budget +$5", None, 5.0),
        ("/prsteward budget +100k +$2.5", 100_000, 2.5),
    ],
    ids=["+50k -> 50,000 tokens", "+1.5m -> 1.5M tokens", "+$5 -> $5", "both -> both"],
)
def test_budget_grants(body: str, tokens: int | None, dollars: float | None) -> None:
    parsed = parse_command(SNAPSHOT, make_comment(make_maintainer(), body=body), make_config())
    assert parsed is not None and parsed.accepted and parsed.name is CommandName.BUDGET
    assert (parsed.grant_tokens, parsed.grant_dollars) == (tokens, dollars)


def test_redelivered_comment_runs_once_and_switches_fold_in_order() -> None:
    snapshot = make_snapshot(
        comments=(
            make_comment(make_maintainer(), created_at=at(1), body="/prsteward freeze", id=1),
            make_comment(make_maintainer(), created_at=at(2), body="/prsteward pause", id=2),
            make_comment(
                make_actor("drive-by"), created_at=at(3), body="/prsteward unfreeze", id=3
            ),
            make_comment(make_maintainer(), created_at=at(4), body="/prsteward resume", id=4),
            make_comment(make_maintainer(), created_at=at(5), body="/prsteward escalate", id=5),
        )
    )
    commands = parse_commands(snapshot, make_config())
    assert [c.comment_id for c in commands] == [1, 2, 3, 4, 5]
    state = apply_commands(Commands(), commands)
    assert state == Commands(frozen=True, paused=False, escalate_comment_id=5)
    again = parse_commands(snapshot, make_config(), done_keys=frozenset(c.key for c in commands))
    assert again == ()


def test_a_command_is_never_maintainer_feedback() -> None:
    from policies.config import TriggerKind
    from policies.triggers import find_triggers
    from tests.factories import make_history

    snapshot = make_snapshot(
        comments=(make_comment(make_maintainer(), body="thanks!\n/prsteward pause"),)
    )
    kinds = [t.kind for t in find_triggers(snapshot, make_history(), make_config())]
    assert TriggerKind.MAINTAINER_FEEDBACK not in kinds
