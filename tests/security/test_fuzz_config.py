"""Fuzzing ``policies.config.parse_config`` with random YAML: it never raises, a refusal lists
problems a maintainer can act on, and a problem in the repository's file names its line.

Examples per property: ``PRSTEWARD_TEST_FUZZ_EXAMPLES`` (default 60 in CI; more on demand).
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from policies.config import DEFAULT_CONFIG, Config, ConfigError, parse_config

EXAMPLES = int(os.environ.get("PRSTEWARD_TEST_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOP_KEYS = sorted(DEFAULT_CONFIG.model_dump(by_alias=True, mode="json"))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# Mappings of real option names (and some unknown ones) to anything.
DOCUMENTS = st.dictionaries(
    st.one_of(st.sampled_from(TOP_KEYS), st.text(min_size=1, max_size=15)), VALUES, max_size=6
)
# Text that looks like YAML: indentation, flow collections, anchors, tags, tabs, keys.
YAMLISH = st.lists(
    st.sampled_from(
        [
            "mode: act",
            "mode: [",
            "budgets:",
            "  dollars-per-job: -1",
            "  dollars-per-job: .nan",
            "\tmode: shadow",
            "? [a, b]",
            ": x",
            "&a {x: 1}",
            "<<: *a",
            "*undefined",
            "!!python/object:os.system {}",
            "!!binary notbase64",
            "days-before-pr-stale: 1e400",
            "labels: {stale: 5}",
            "- item",
            "'unterminated",
            "key: value: other",
            "%YAML 1.1",
            "---",
            "...",
            "mode: act\nmode: shadow",
            "app-logins: prsteward",
            "escalate-on: [failing-ci, nonsense]",
            "{",
            "1: 2",
            "null: x",
            "[a]: b",
            "@reserved",
            "`tick",
        ]
    )
    | st.text(max_size=20),
    max_size=8,
).map("\n".join)


def check(text: str) -> Config | ConfigError:
    result = parse_config(text)  # must not raise, whatever the text
    assert isinstance(result, Config | ConfigError)
    if isinstance(result, ConfigError):
        assert result.problems, "a refusal must say why"
        lines = text.count("\n") + 1
        for problem in result.problems:
            assert problem.message.strip()
            if problem.line is not None:
                assert 1 <= problem.line <= lines + 1, (problem, lines)
        assert result.render_markdown() and result.render_text()
    return result


@FUZZ
@given(st.text(max_size=200))
def test_any_text__a_config_or_an_error_never_an_exception(text: str) -> None:
    check(text)


@FUZZ
@given(YAMLISH)
@example("? [a, b]\n: x")
@example("mode: act\nmode: shadow")
@example("!!python/object:os.system {}")
@example("<<: *a")
def test_yaml_looking_text__a_config_or_an_error_never_an_exception(text: str) -> None:
    check(text)


@FUZZ
@given(DOCUMENTS)
def test_random_options__each_problem_names_its_line(document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    result = check(text)
    if isinstance(result, ConfigError):
        for problem in result.problems:
            top = problem.path.split(".", 1)[0]
            if top in {str(key) for key in document}:
                assert problem.line is not None, (problem, text)


def test_wrong_value__message_with_line_path_and_expectation() -> None:
    text = "mode: act\nbudgets:\n  dollars-per-job: lots\n"
    result = parse_config(text)
    assert isinstance(result, ConfigError)
    (problem,) = result.problems
    assert problem.line == 3 and problem.path.startswith("budgets.dollars")
    assert "line 3" in result.render_text()


def test_syntax_error__line_of_the_mistake() -> None:
    result = parse_config("mode: act\nlabels: [a, b\nrisk: {}\n")
    assert isinstance(result, ConfigError)
    assert result.problems[0].line in {2, 3}
    assert "YAML syntax error" in result.problems[0].message
