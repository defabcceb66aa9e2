"""Config: YAML over the org default over built-in defaults; errors as values with line numbers."""

from __future__ import annotations

import pytest

from policies.config import (
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    GentleStep,
    effective_config,
    parse_config,
)


def test_empty_file_gives_safe_defaults() -> None:
    config = parse_config("")
    assert config == DEFAULT_CONFIG
    assert isinstance(config, Config)
    assert config.mode == "shadow"
    assert config.risk.allow_close is False
    assert config.stop_loss.max_attempts_per_trigger == 2
    assert config.stop_loss.max_escalations_per_pr_per_day == 5
    assert config.stop_loss.max_review_fix_cycles == 3
    assert config.stop_loss.circuit_breaker_failed_verifications == 3


def test_kebab_case_keys_follow_actions_stale_names() -> None:
    text = """
mode: act
days-before-pr-stale: 30
days-before-pr-close: 7
exempt-pr-labels: [security, lifecycle/frozen]
exempt-draft-pr: false
exempt-all-pr-assignees: true
only-labels: [bot-managed]
stale-pr-label: stale
gentle-steps: [remind, draft, stale, close]
budgets:
  dollars-per-job: 1.5
flaky-check-patterns: ["*e2e*"]
risk:
  allow-close: true
"""
    config = parse_config(text)
    assert isinstance(config, Config)
    assert config.mode == "act"
    assert config.days_before_pr_stale == 30
    assert config.exempt_pr_labels == ("security", "lifecycle/frozen")
    assert config.exempt_draft_pr is False
    assert config.exempt_all_pr_assignees is True
    assert config.only_labels == ("bot-managed",)
    assert config.stale_pr_label == "stale"
    assert config.gentle_steps == (
        GentleStep.REMIND,
        GentleStep.DRAFT,
        GentleStep.STALE,
        GentleStep.CLOSE,
    )
    assert config.budgets.dollars_per_job == 1.5
    assert config.budgets.dollars_per_pr == DEFAULT_CONFIG.budgets.dollars_per_pr
    assert config.risk.allow_close is True


def test_repo_file_merges_over_org_default_section_by_section() -> None:
    org = parse_config("mode: act\nbudgets:\n  dollars-per-pr: 5\n  dollars-per-job: 1\n")
    assert isinstance(org, Config)
    repo = parse_config("budgets:\n  dollars-per-job: 2\n", org)
    assert isinstance(repo, Config)
    assert repo.mode == "act"  # from the org
    assert repo.budgets.dollars_per_pr == 5  # from the org, same section
    assert repo.budgets.dollars_per_job == 2  # the repo wins


def _problems(result: Config | ConfigError) -> list[tuple[int | None, str]]:
    assert isinstance(result, ConfigError)
    return [(p.line, p.path) for p in result.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mode: maybe\n", [(1, "mode")]),
        ("mode: act\nbogus-option: 1\n", [(2, "bogus-option")]),
        ("budgets:\n  dollars-per-job: lots\n", [(2, "budgets.dollars-per-job")]),
        ("budgets:\n  dolars-per-job: 1\n", [(2, "budgets.dolars-per-job")]),
        (
            "stop-loss:\n  max-attempts-per-trigger: -1\n",
            [(2, "stop-loss.max-attempts-per-trigger")],
        ),
        ("gentle-steps: [remind, explode]\n", [(1, "gentle-steps.1")]),
        ("a: [1\nb: 2\n", [(2, "")]),
        ("- just\n- a list\n", [(1, "")]),
        (
            "mode: maybe\nrisk:\n  allow-close: sometimes\n",
            [(1, "mode"), (3, "risk.allow-close")],
        ),
    ],
    ids=[
        "wrong enum value -> line 1 mode",
        "unknown top-level key -> its line",
        "wrong type in a section -> nested path and line",
        "misspelt nested key -> unknown option with line",
        "negative cap -> refused",
        "unknown gentle step -> list item path",
        "YAML syntax error -> line of the error",
        "top level is a list -> refused",
        "two problems -> both listed",
    ],
)
def test_bad_config_lists_each_problem_with_line_and_path(
    text: str, expected: list[tuple[int | None, str]]
) -> None:
    assert _problems(parse_config(text)) == expected


def test_error_renders_as_markdown_with_line_path_and_expectation() -> None:
    error = parse_config("mode: act\nbudgets:\n  dollars-per-job: lots\n  surprise: 1\n")
    assert isinstance(error, ConfigError)
    text = error.render_markdown()
    assert "line 3: `budgets.dollars-per-job`: Input should be a valid number" in text
    assert "line 4: `budgets.surprise`: unknown option" in text
    assert "last valid configuration stays in force" in text
    assert error.render_text().startswith(".github/prsteward.yml: line 3")


def test_effective_config_skips_a_broken_layer_and_reports_it() -> None:
    config, errors = effective_config("mode: act\n", "mode: [\n")
    assert config.mode == "act"  # the org layer stands, the broken repo layer is skipped
    assert len(errors) == 1
    assert errors[0].source == ".github/prsteward.yml"


def test_config_is_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        DEFAULT_CONFIG.mode = "act"  # type: ignore[misc]


def test_the_documented_reference_parses_to_the_built_in_defaults() -> None:
    # Guards docs/policies.md against drift: every key documented exists, with its default.
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "policies.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert parse_config(block) == DEFAULT_CONFIG


def test_derived_login_sets_follow_a_copied_config() -> None:
    config = Config(app_logins=("first",), maintainers=("Alice",))
    assert config.app_names == frozenset({"first"})
    copied = config.model_copy(update={"app_logins": ("second[bot]",)})
    assert copied.app_names == frozenset({"second"})
    assert config.maintainer_logins == frozenset({"alice"})
