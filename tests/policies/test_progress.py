"""No-progress: spend that grows while GitHub shows nothing new is flagged, then stopped."""

from __future__ import annotations

import pytest

from policies.budgets import JobBudget
from policies.progress import Heartbeat, check_progress
from tests.factories import at

BUDGET = JobBudget(tokens=100_000, dollars=2.0)


def beat(
    hour: int, dollars: float, sha: str = "a", checks: str = "c", comments: int = 0
) -> Heartbeat:
    return Heartbeat(at(hour / 24), dollars, int(dollars * 50_000), sha, checks, comments)


@pytest.mark.parametrize(
    ("beats", "expected"),
    [
        ([], (False, (), "progress.none-yet")),
        ([beat(0, 0.1), beat(1, 0.3)], (False, (), "progress.ok")),
        ([beat(0, 0.1), beat(1, 0.3), beat(2, 0.5)], (False, ("no-progress",), "progress.flagged")),
        (
            [beat(0, 0.1), beat(1, 0.4), beat(2, 0.8), beat(3, 1.1)],
            (True, ("no-progress",), "progress.stop"),
        ),
        ([beat(0, 0.1), beat(1, 0.6, sha="b"), beat(2, 1.1, sha="c")], (False, (), "progress.ok")),
        ([beat(0, 0.1), beat(1, 0.6, checks="d"), beat(2, 1.1)], (False, (), "progress.ok")),
        (
            [beat(0, 0.1), beat(1, 0.6, comments=1), beat(2, 1.1, comments=2)],
            (False, (), "progress.ok"),
        ),
        (
            [beat(0, 0.1), beat(1, 0.3, sha="b"), beat(2, 0.8, sha="b"), beat(3, 1.2, sha="b")],
            (True, ("no-progress",), "progress.stop"),
        ),
        ([beat(0, 0.5), beat(1, 0.5), beat(2, 0.5)], (False, (), "progress.ok")),
    ],
    ids=[
        "no heartbeat -> nothing to judge",
        "one growth step -> ok",
        "spend grew twice, nothing on GitHub -> flagged",
        "no progress and past half the budget -> stop",
        "new commits each heartbeat -> ok",
        "checks changed -> ok",
        "new comments -> ok",
        "one commit, then spending with nothing new past half -> stop",
        "spend flat -> ok",
    ],
)
def test_no_progress(beats: list[Heartbeat], expected: tuple[bool, tuple[str, ...], str]) -> None:
    verdict = check_progress(beats, BUDGET)
    assert (verdict.stop, verdict.flags, verdict.rule_id) == expected
