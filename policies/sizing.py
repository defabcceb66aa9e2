"""Budgets sized by the work, learned from history (issue 11 item 1). Pure.

A job's size class comes from its snapshot and trigger (changed files, lines, failing checks,
review comments to answer). Its budget is the class default until there is history; then it
follows the spend of similar jobs (same trigger kind and size class, same repository) that were
*verified done*: a percentile of their spend times a margin, clamped to the configured minimum and
the per-job maximum. Jobs that failed verification never raise a learned budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from policies.budgets import JobBudget
from policies.config import Config, ModelPrice, TriggerKind
from policies.history import JobRecord, JobState
from policies.snapshot import PullRequestSnapshot
from policies.triggers import Trigger


class SizeClass(StrEnum):
    S = "S"
    M = "M"
    L = "L"


# The share of the per-job maximum a class gets by default, before any history.
CLASS_DEFAULT_SHARE = {SizeClass.S: 0.25, SizeClass.M: 0.5, SizeClass.L: 1.0}


def size_class(snapshot: PullRequestSnapshot, trigger: Trigger) -> SizeClass:
    """S/M/L from the amount of work: lines and files changed, plus what the trigger asks for
    (failing checks to fix, review comments to answer)."""
    lines = snapshot.additions + snapshot.deletions
    asks = len(trigger.evidence)
    if trigger.kind is TriggerKind.CHANGES_REQUESTED:
        asks += sum(1 for r in snapshot.reviews if r.state == "CHANGES_REQUESTED")
    score = 0
    score += 0 if lines <= 50 else 1 if lines <= 500 else 2
    score += 0 if snapshot.changed_files <= 3 else 1 if snapshot.changed_files <= 20 else 2
    score += 0 if asks <= 1 else 1 if asks <= 4 else 2
    if score <= 1:
        return SizeClass.S
    return SizeClass.M if score <= 3 else SizeClass.L


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def similar_verified(
    jobs: Iterable[JobRecord], kind: str, size: str, limit: int
) -> tuple[JobRecord, ...]:
    """The last ``limit`` verified-done jobs of the same kind and size class (oldest first)."""
    same = [
        j
        for j in jobs
        if j.state is JobState.VERIFIED_DONE and j.trigger_kind == kind and j.size_class == size
    ]
    return tuple(same[-limit:])


def class_default(config: Config, size: SizeClass) -> JobBudget:
    budgets = config.budgets
    share = CLASS_DEFAULT_SHARE[size]
    return JobBudget(
        tokens=max(budgets.min_tokens_per_job, int(budgets.tokens_per_job * share)),
        dollars=max(budgets.min_dollars_per_job, round(budgets.dollars_per_job * share, 4)),
        source=f"default:{size.value}",
        size_class=size.value,
    )


def learned_budget(
    config: Config, kind: str, size: SizeClass, repository_jobs: Iterable[JobRecord]
) -> JobBudget:
    """The budget for a new job of ``kind``/``size`` in this repository."""
    budgets = config.budgets
    history = similar_verified(repository_jobs, kind, size.value, budgets.learn_from_last)
    if len(history) < budgets.learn_min_samples:
        return class_default(config, size)
    margin = budgets.learn_margin
    tokens = percentile([j.tokens_spent for j in history], budgets.learn_percentile) * margin
    dollars = percentile([j.dollars_spent for j in history], budgets.learn_percentile) * margin
    return JobBudget(
        tokens=int(min(budgets.tokens_per_job, max(budgets.min_tokens_per_job, tokens))),
        dollars=round(min(budgets.dollars_per_job, max(budgets.min_dollars_per_job, dollars)), 4),
        source=f"learned:{size.value}:n={len(history)}",
        size_class=size.value,
    )


def dollars_for(
    price: ModelPrice, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> float:
    """What a run cost at ``price`` (dollars per million tokens)."""
    return (
        input_tokens * price.input
        + cached_input_tokens * price.cached_input
        + output_tokens * price.output
    ) / 1_000_000


@dataclass(frozen=True, slots=True)
class SpendStats:
    """Per trigger kind and size class, for the report and the dashboard."""

    trigger_kind: str
    size_class: str
    jobs: int
    verified_done: int
    median_dollars: float
    p90_dollars: float
    utilisation: float | None  # spent / allocated over verified-done jobs
    done_claims_rejected_with_budget_left: int

    @property
    def verified_rate(self) -> float:
        return self.verified_done / self.jobs if self.jobs else 0.0


REJECTED_WITH_BUDGET_FLAG = "done-claim-with-budget-left"


def spend_stats(
    jobs: Iterable[JobRecord], rejected_flags: dict[str, tuple[str, ...]] | None = None
) -> tuple[SpendStats, ...]:
    """Group finished jobs by (trigger kind, size class). ``rejected_flags`` maps a job's
    fingerprint to the oracle's flags, when the caller has them."""
    flags = rejected_flags or {}
    groups: dict[tuple[str, str], list[JobRecord]] = {}
    for job in jobs:
        groups.setdefault((job.trigger_kind, job.size_class or "-"), []).append(job)
    out = []
    for (kind, size), members in sorted(groups.items()):
        spent = [j.dollars_spent for j in members]
        verified = [j for j in members if j.state is JobState.VERIFIED_DONE]
        allocated = sum(j.dollars_budget or 0.0 for j in verified)
        out.append(
            SpendStats(
                trigger_kind=kind,
                size_class=size,
                jobs=len(members),
                verified_done=len(verified),
                median_dollars=percentile(spent, 50),
                p90_dollars=percentile(spent, 90),
                utilisation=(sum(j.dollars_spent for j in verified) / allocated)
                if allocated > 0
                else None,
                done_claims_rejected_with_budget_left=sum(
                    1 for j in members if REJECTED_WITH_BUDGET_FLAG in flags.get(j.fingerprint, ())
                ),
            )
        )
    return tuple(out)
