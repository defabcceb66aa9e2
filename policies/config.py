"""Per-repository configuration: ``.github/prsteward.yml`` over the org default over safe defaults.

Errors are values: :func:`parse_config` returns a :class:`Config` or a :class:`ConfigError` that
lists every problem with its YAML line, key path and what was expected. The caller keeps the last
good config in force and reports the error once (see docs/policies.md#configuration).

Option names follow actions/stale (``days-before-pr-stale``, ``exempt-pr-labels`` ...) and Prow's
lifecycle plugin (``lifecycle/stale``, ``lifecycle/frozen`` ...) where they mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

DOC_URL = "docs/policies.md#configuration"
CONFIG_PATH = ".github/prsteward.yml"


def bare_login(login: str) -> str:
    """``app/NAME``, ``NAME[bot]`` and ``NAME`` are one account; case does not matter."""
    name = login.lower()
    if name.startswith("app/"):
        name = name[4:]
    return name[:-5] if name.endswith("[bot]") else name


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Model(BaseModel):
    """Kebab-case YAML keys, unknown keys refused, values frozen once parsed."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=_kebab,
        populate_by_name=True,
        strict=False,
    )


class TriggerKind(StrEnum):
    FAILING_CI = "failing_ci"
    FLAKY_CI = "flaky_ci"
    CHANGES_REQUESTED = "changes_requested"
    CONFLICT = "conflict"
    STALE_METADATA = "stale_metadata"
    MAINTAINER_FEEDBACK = "maintainer_feedback"
    MANUAL = "manual"  # /prsteward escalate


class GentleStep(StrEnum):
    """The steps before a close, taken in the configured order, each at most once."""

    REMIND = "remind"
    DRAFT = "draft"
    STALE = "stale"
    CLOSE = "close"


class Labels(_Model):
    rotten: str = "lifecycle/rotten"
    frozen: str = "lifecycle/frozen"
    hold: str = "do-not-merge/hold"
    needs_rebase: str = "needs-rebase"
    needs_human: str = "needs-human"
    waiting_on_author: str = "waiting-on-author"


class Budgets(_Model):
    """Spend limits; every one fails closed (unknown spend -> no escalation)."""

    tokens_per_job: int = Field(default=300_000, ge=0)
    dollars_per_job: float = Field(default=3.0, ge=0)
    dollars_per_pr: float = Field(default=15.0, ge=0)
    dollars_per_repository_day: float = Field(default=30.0, ge=0)
    dollars_per_installation_day: float = Field(default=100.0, ge=0)
    dollars_per_hour: float = Field(default=20.0, ge=0)  # installation-wide burn-rate ceiling
    # Learned budgets (issue 11): per trigger kind and size class, from verified-done history.
    min_tokens_per_job: int = Field(default=20_000, ge=0)
    min_dollars_per_job: float = Field(default=0.25, ge=0)
    learn_from_last: int = Field(default=20, ge=1)  # the last N verified-done similar jobs
    learn_min_samples: int = Field(default=3, ge=1)  # fewer: the class default
    learn_percentile: float = Field(default=75, gt=0, le=100)
    learn_margin: float = Field(default=1.25, ge=1)


class ModelPrice(_Model):
    """Dollars per million tokens."""

    input: float = Field(ge=0)
    cached_input: float = Field(default=0.0, ge=0)
    output: float = Field(ge=0)


class StopLoss(_Model):
    max_attempts_per_trigger: int = Field(default=2, ge=0)
    max_escalations_per_pr_per_day: int = Field(default=5, ge=0)
    max_review_fix_cycles: int = Field(default=3, ge=0)
    same_failure_signature_limit: int = Field(default=2, ge=1)
    repeated_shape_limit: int = Field(default=3, ge=1)
    circuit_breaker_failed_verifications: int = Field(default=3, ge=1)
    # Circuit breaker open and no maintainer action for this many days: the repository is
    # demoted to watch-only (issue 11 item 5) until a maintainer acts there again.
    low_return_idle_days: int = Field(default=14, ge=1)


class Metadata(_Model):
    """What counts as stale PR metadata (each check is off unless configured)."""

    required_body_sections: tuple[str, ...] = ()
    referenced_issue_closed: bool = False
    unticked_checklist: bool = False


class Risk(_Model):
    """Human-gated risk classes: off until a maintainer opts in."""

    allow_close: bool = False
    allow_workflow_files: bool = False


class Cooldowns(_Model):
    comment_hours: float = Field(default=24.0, ge=0)  # between new comments on one PR
    escalation_minutes: float = Field(default=30.0, ge=0)  # between escalations on one PR


class Families(_Model):
    """Same-shape families (issue 14, ``policies/families.py``): when to name, propose, consolidate
    and stop. Counts are family members (PRs in one repository with the same code motion)."""

    enabled: bool = True
    similarity_threshold: float = Field(default=0.85, gt=0, le=1)  # MinHash Jaccard of skeletons
    name_invariant_at: int = Field(default=3, ge=2)  # same checks green on the same surfaces
    propose_helper_at: int = Field(default=3, ge=2)  # same code motion: propose a helper/manifest
    consolidate_at: int = Field(default=5, ge=2)  # same surfaces: no escalations for new members
    substitution_after: int = Field(default=5, ge=1)  # a substitution stops after this many members
    stop_on_substitution: bool = True
    tokens_per_hour: int = Field(default=2_000_000, ge=0)  # the family's burn ceiling; 0 = off
    window_days: float = Field(default=30, gt=0)  # members considered: created in this window
    tracking_issue: bool = True  # one consolidation issue per family (act mode only)


class Summary(_Model):
    """The optional summary issue on GitHub (issue 7 item 2): one tracking issue, edited in place
    at most every ``min-interval-minutes`` and only when its text changed; act mode only (shadow
    mode records what it would post)."""

    enabled: bool = False  # keep the summary issue (act mode writes it; shadow records it)
    repository: str | None = Field(  # unset: one issue per repository; "org/.github": one there
        default=None, pattern=r"^[\w.-]+/[\w.-]+$"
    )
    title: str = Field(default="prsteward summary", min_length=1, max_length=200)  # its title
    min_interval_minutes: float = Field(default=60, ge=0)  # edits at most this often


class Config(_Model):
    """One repository's effective configuration."""

    mode: Literal["shadow", "act"] = "shadow"
    enabled: bool = True

    # actions/stale names
    days_before_pr_remind: float = Field(default=14, ge=0)
    days_before_pr_draft: float = Field(default=21, ge=0)
    days_before_pr_stale: float = Field(default=60, ge=0)
    days_before_pr_close: float = Field(default=14, ge=0)  # after the close notice
    gentle_steps: tuple[GentleStep, ...] = (
        GentleStep.REMIND,
        GentleStep.STALE,
        GentleStep.CLOSE,
    )
    exempt_pr_labels: tuple[str, ...] = ("lifecycle/frozen",)
    exempt_pr_authors: tuple[str, ...] = ()  # prsteward's own (actions/stale has none)
    exempt_pr_milestones: tuple[str, ...] = ()
    exempt_all_pr_milestones: bool = False
    exempt_draft_pr: bool = True
    exempt_pr_assignees: tuple[str, ...] = ()
    exempt_all_pr_assignees: bool = False
    only_labels: tuple[str, ...] = ()
    stale_pr_label: str = "lifecycle/stale"

    # tiers
    days_before_zombie: float = Field(default=30, ge=0)  # dirty or failing, no human activity
    days_before_reviewer_reminder: float = Field(default=7, ge=0)

    labels: Labels = Labels()
    budgets: Budgets = Budgets()
    stop_loss: StopLoss = StopLoss()
    metadata: Metadata = Metadata()
    risk: Risk = Risk()
    cooldowns: Cooldowns = Cooldowns()
    families: Families = Families()
    summary: Summary = Summary()
    prices: dict[str, ModelPrice] = Field(default_factory=dict)  # model name -> price

    escalate_on: tuple[TriggerKind, ...] = (
        TriggerKind.FAILING_CI,
        TriggerKind.CHANGES_REQUESTED,
        TriggerKind.CONFLICT,
        TriggerKind.MAINTAINER_FEEDBACK,
        TriggerKind.MANUAL,
    )
    flaky_check_patterns: tuple[str, ...] = ()  # fnmatch patterns, case-insensitive
    app_logins: tuple[str, ...] = ("prsteward",)  # the App itself: NAME, NAME[bot], app/NAME
    bot_allowlist: tuple[str, ...] = ()  # bots whose comments may trigger
    agent_logins: tuple[str, ...] = ()  # accounts agents push and comment as
    maintainers: tuple[str, ...] = ()  # logins confirmed to have write access

    # Derived login sets. Memoised by value (see ``_bare_names``), never stored on the model:
    # a cached attribute would go stale under ``model_copy(update=...)``.
    @property
    def app_names(self) -> frozenset[str]:
        return _bare_names(self.app_logins)

    @property
    def allowlisted_bot_names(self) -> frozenset[str]:
        return _bare_names(self.bot_allowlist)

    @property
    def maintainer_logins(self) -> frozenset[str]:
        return _bare_names(self.maintainers)

    @property
    def agent_names(self) -> frozenset[str]:
        return _bare_names(self.agent_logins)


@lru_cache(maxsize=256)
def _bare_names(logins: tuple[str, ...]) -> frozenset[str]:
    """The bare, lower-case names of ``logins``. A memo of a pure function: same input, same
    output, so caching it changes no decision."""
    return frozenset(bare_login(login) for login in logins)


DEFAULT_CONFIG = Config()


# --- errors as values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    path: str  # "budgets.dollars-per-job", or "" for the whole file
    message: str  # what was wrong and what was expected
    line: int | None = None  # 1-based line in the repository's YAML, when it came from there

    def render(self) -> str:
        where = f"line {self.line}" if self.line is not None else "(merged default)"
        key = f"`{self.path}`" if self.path else "the file"
        return f"{where}: {key}: {self.message}"


@dataclass(frozen=True, slots=True)
class ConfigError:
    """Why a config was refused; the last good config stays in force."""

    problems: tuple[ConfigProblem, ...]
    source: str = CONFIG_PATH

    def render_markdown(self) -> str:
        lines = [
            f"**prsteward could not use `{self.source}`**; the last valid configuration stays "
            "in force until this is fixed.",
            "",
        ]
        lines += [f"- {p.render()}" for p in self.problems]
        lines += ["", f"See the configuration reference: {DOC_URL}"]
        return "\n".join(lines)

    def render_text(self) -> str:
        return "\n".join([f"{self.source}: {p.render()}" for p in self.problems])


# --- parsing ------------------------------------------------------------------------------------


def _to_plain(node: Any) -> Any:
    if isinstance(node, CommentedMap | dict):
        return {str(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq | list):
        return [_to_plain(v) for v in node]
    return node


def _line_of(root: Any, path: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the deepest key along ``path`` that the YAML holds."""
    node = root
    line: int | None = None
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of mappings; lists and scalars in ``override`` replace the base's."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load_yaml(text: str) -> tuple[Any, ConfigError | None]:
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"YAML syntax error: {error.problem or error.context}"
        return None, ConfigError((ConfigProblem("", message, line),))
    except YAMLError as error:
        return None, ConfigError((ConfigProblem("", f"YAML error: {error}"),))
    if root is None:
        return CommentedMap(), None
    if not isinstance(root, CommentedMap):
        found = type(_to_plain(root)).__name__
        problem = ConfigProblem("", f"expected a mapping of options at the top, got {found}", 1)
        return None, ConfigError((problem,))
    return root, None


def _expected(error_type: str, message: str) -> str:
    if error_type == "extra_forbidden":
        return f"unknown option (see {DOC_URL} for the known ones)"
    return message


def parse_config(
    text: str, base: Config = DEFAULT_CONFIG, source: str = CONFIG_PATH
) -> Config | ConfigError:
    """Parse YAML ``text`` merged over ``base`` (the org default, or the built-in defaults)."""
    root, error = _load_yaml(text)
    if error is not None:
        return ConfigError(error.problems, source)
    override = _to_plain(root)
    merged = _merge(base.model_dump(by_alias=True, mode="json"), override)
    try:
        return Config.model_validate(merged)
    except ValidationError as validation:
        problems = []
        for item in validation.errors():
            path = tuple(item["loc"])
            problems.append(
                ConfigProblem(
                    path=".".join(str(p) for p in path),
                    message=_expected(item["type"], item["msg"]),
                    line=_line_of(root, path),
                )
            )
        return ConfigError(tuple(problems), source)


def effective_config(
    org_text: str | None, repo_text: str | None
) -> tuple[Config, tuple[ConfigError, ...]]:
    """Built-in defaults <- org default <- repository file; a broken layer is skipped and reported.

    The bot keeps the last good config per repository itself; this only resolves one read.
    """
    errors: list[ConfigError] = []
    config = DEFAULT_CONFIG
    for text, source in ((org_text, "org .github/prsteward.yml"), (repo_text, CONFIG_PATH)):
        if text is None:
            continue
        parsed = parse_config(text, config, source)
        if isinstance(parsed, ConfigError):
            errors.append(parsed)
        else:
            config = parsed
    return config, tuple(errors)
