"""Size classes and budgets learned from verified-done history (issue 11 item 1)."""

from __future__ import annotations

import pytest

from policies.config import ModelPrice, TriggerKind
from policies.history import JobState
from policies.sizing import (
    SizeClass,
    dollars_for,
    learned_budget,
    percentile,
    size_class,
    spend_stats,
)
from policies.snapshot import PullRequestSnapshot
from policies.triggers import Trigger
from tests.factories import make_config, make_job, make_review, make_snapshot

CI = Trigger(TriggerKind.FAILING_CI, "fp", "trigger.failing-ci", "red", ("test: url",))


@pytest.mark.parametrize(
    ("snapshot", "trigger", "expected"),
    [
        (make_snapshot(additions=10, deletions=2, changed_files=1), CI, SizeClass.S),
        (make_snapshot(additions=300, deletions=20, changed_files=10), CI, SizeClass.M),
        (
            make_snapshot(additions=2000, deletions=500, changed_files=40),
            Trigger(TriggerKind.FAILING_CI, "fp", "r", "red", tuple(f"c{i}" for i in range(6))),
            SizeClass.L,
        ),
        (
            make_snapshot(reviews=tuple(make_review() for _ in range(4))),
            Trigger(TriggerKind.CHANGES_REQUESTED, "fp", "r", "changes", ("review 1",)),
            SizeClass.M,
        ),
        (
            make_snapshot(
                additions=300, changed_files=5, reviews=tuple(make_review() for _ in range(4))
            ),
            Trigger(TriggerKind.CHANGES_REQUESTED, "fp", "r", "changes", ("review 1",)),
            SizeClass.L,
        ),
    ],
    ids=[
        "12 lines, 1 file, 1 check -> S",
        "320 lines, 10 files, 1 check -> M",
        "2500 lines, 40 files, 6 checks -> L",
        "small diff, 5 things to answer -> M",
        "medium diff, 5 files, 5 asks -> L",
    ],
)
def test_size_class(snapshot: PullRequestSnapshot, trigger: Trigger, expected: SizeClass) -> None:
    assert size_class(snapshot, trigger) is expected


def _verified(
    dollars: float,
    tokens: int,
    size: str = "S",
    kind: str = "failing_ci",
    state: JobState = JobState.VERIFIED_DONE,
) -> object:
    return make_job(
        kind, f"f{dollars}", state, dollars_spent=dollars, tokens_spent=tokens, size_class=size
    )


def test_without_history_the_class_default_applies() -> None:
    budget = learned_budget(make_config(), "failing_ci", SizeClass.M, ())
    assert (budget.dollars, budget.tokens, budget.source) == (1.5, 150_000, "default:M")


def test_history_of_verified_jobs_sets_the_budget_p75_with_margin() -> None:
    jobs = [_verified(d, int(d * 100_000)) for d in (0.2, 0.4, 0.4, 0.8)]
    budget = learned_budget(make_config(), "failing_ci", SizeClass.S, jobs)  # type: ignore[arg-type]
    assert budget.dollars == pytest.approx(0.4 * 1.25)
    assert budget.tokens == int(40_000 * 1.25)
    assert budget.source == "learned:S:n=4"


def test_failed_jobs_never_raise_the_learned_budget() -> None:
    cheap = [_verified(0.3, 30_000) for _ in range(3)]
    expensive_failures = [_verified(2.9, 290_000, state=JobState.VERIFY_FAILED) for _ in range(10)]
    budget = learned_budget(make_config(), "failing_ci", SizeClass.S, cheap + expensive_failures)  # type: ignore[arg-type]
    assert budget.dollars == pytest.approx(0.375)


def test_other_kinds_and_classes_do_not_count() -> None:
    others = [_verified(2.0, 200_000, size="L") for _ in range(3)] + [
        _verified(2.0, 200_000, kind="conflict") for _ in range(3)
    ]
    assert learned_budget(make_config(), "failing_ci", SizeClass.S, others).source == "default:S"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spent", "expected_dollars"),
    [(0.01, 0.25), (100.0, 3.0)],
    ids=["tiny history -> clamped to the minimum", "huge history -> clamped to the per-job limit"],
)
def test_learned_budget_is_clamped(spent: float, expected_dollars: float) -> None:
    jobs = [_verified(spent, 1) for _ in range(3)]
    assert (
        learned_budget(make_config(), "failing_ci", SizeClass.S, jobs).dollars == expected_dollars
    )  # type: ignore[arg-type]


def test_percentile_nearest_rank() -> None:
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([5, 1, 3, 2, 4], 90) == 5
    assert percentile([7], 75) == 7


def test_dollars_from_the_price_table() -> None:
    price = ModelPrice(input=3.0, cached_input=0.3, output=15.0)
    assert dollars_for(price, 1_000_000, 100_000, 500_000) == pytest.approx(3.0 + 1.5 + 0.15)


def test_spend_stats_per_kind_and_class() -> None:
    jobs = [
        make_job(
            "failing_ci",
            "a",
            JobState.VERIFIED_DONE,
            dollars_spent=1.0,
            dollars_budget=2.0,
            size_class="S",
        ),
        make_job(
            "failing_ci",
            "b",
            JobState.VERIFY_FAILED,
            dollars_spent=3.0,
            dollars_budget=3.0,
            size_class="S",
        ),
        make_job(
            "conflict",
            "c",
            JobState.VERIFIED_DONE,
            dollars_spent=0.5,
            dollars_budget=1.0,
            size_class="M",
        ),
    ]
    stats = {
        (s.trigger_kind, s.size_class): s
        for s in spend_stats(jobs, {"b": ("done-claim-with-budget-left",)})
    }
    ci = stats[("failing_ci", "S")]
    assert (ci.jobs, ci.verified_done, ci.verified_rate) == (2, 1, 0.5)
    assert ci.utilisation == 0.5
    assert ci.done_claims_rejected_with_budget_left == 1
    assert (ci.median_dollars, ci.p90_dollars) == (1.0, 3.0)
    assert stats[("conflict", "M")].done_claims_rejected_with_budget_left == 0
