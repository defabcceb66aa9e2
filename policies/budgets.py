"""Budgets: what one job may spend, and whether the scopes above it can still afford it.

Every check fails closed: an unknown spend (None) means no escalation. Remaining amounts are
never below zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.config import Config
from policies.history import SpendSummary


@dataclass(frozen=True, slots=True)
class JobBudget:
    tokens: int
    dollars: float
    source: str = "config"  # config | default:<class> | learned:<class>:n=<samples>
    size_class: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    allowed: bool
    rule_id: str
    reason: str


_ALLOWED = BudgetVerdict(True, "budget.ok", "every budget scope can afford the job")


def remaining(limit: float, spent: float) -> float:
    """What is left of ``limit``; never below zero, even when overspent."""
    return max(0.0, limit - spent)


def default_job_budget(config: Config) -> JobBudget:
    return JobBudget(config.budgets.tokens_per_job, config.budgets.dollars_per_job)


def check_budgets(config: Config, spend: SpendSummary, job: JobBudget) -> BudgetVerdict:
    """Can every scope (PR, repository today, installation today, last hour) afford ``job``?"""
    budgets = config.budgets
    scopes = (
        ("pr", "this PR", budgets.dollars_per_pr, spend.pr_dollars),
        (
            "repository-day",
            "the repository today",
            budgets.dollars_per_repository_day,
            spend.repository_today_dollars,
        ),
        (
            "installation-day",
            "the installation today",
            budgets.dollars_per_installation_day,
            spend.installation_today_dollars,
        ),
        ("hour", "the last hour", budgets.dollars_per_hour, spend.installation_last_hour_dollars),
    )
    if job.dollars > budgets.dollars_per_job or job.tokens > budgets.tokens_per_job:
        return BudgetVerdict(
            False,
            "budget.job",
            f"a job needs ${job.dollars:.2f}/{job.tokens} tokens, over the per-job limit "
            f"${budgets.dollars_per_job:.2f}/{budgets.tokens_per_job}",
        )
    for scope, label, limit, spent in scopes:
        if spent is None:
            return BudgetVerdict(
                False, f"budget.{scope}.unknown", f"spend for {label} is unknown: fail closed"
            )
        left = remaining(limit, spent)
        if left < job.dollars:
            return BudgetVerdict(
                False,
                f"budget.{scope}",
                f"{label} has ${left:.2f} of ${limit:.2f} left; a job needs ${job.dollars:.2f}",
            )
    return _ALLOWED
