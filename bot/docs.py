"""Generates docs/configuration.md from the models themselves: ``python -m bot.docs``.

Two tables: the process settings (``bot.settings.Settings``, environment variables) and the
repository configuration (``policies.config.Config``, ``.github/prsteward.yml``, nested keys
flattened with dots). Descriptions come from each field's ``description``, else from the comment
on the field's line in the model's source. ``python -m bot.docs --check`` exits 1 when the
committed file is out of date (tests/view/test_docs.py runs the same comparison).
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from bot.settings import ENV_PREFIX, Settings
from policies.config import CONFIG_PATH, Config

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

_FIELD_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+)$")

# Descriptions for repository options whose model field carries none (key -> text). The model's
# own description or line comment wins when there is one.
DESCRIPTIONS = {
    "mode": "`shadow`: record what would be done and write nothing to GitHub; `act`: do it.",
    "enabled": "`false` stops all evaluation in this repository (it is still watched).",
    "days-before-pr-remind": "Days of the author's silence (while it is their turn) before one "
    "reminder.",
    "days-before-pr-draft": "Days of the author's silence before converting to draft (when "
    "`draft` is among the gentle steps).",
    "days-before-pr-stale": "Days of the author's silence before the stale label and its notice.",
    "gentle-steps": "The steps before a close, in order, each at most once: remind, draft, "
    "stale, close.",
    "exempt-pr-labels": "PRs with any of these labels are never staled, closed or escalated.",
    "exempt-pr-milestones": "PRs in any of these milestones are exempt.",
    "exempt-all-pr-milestones": "Every PR with a milestone is exempt.",
    "exempt-draft-pr": "Draft PRs are exempt.",
    "exempt-pr-assignees": "PRs assigned to any of these users are exempt.",
    "exempt-all-pr-assignees": "Every PR with an assignee is exempt.",
    "only-labels": "When set, only PRs with all of these labels are processed.",
    "stale-pr-label": "The label added by the stale step (removed when it is no longer the "
    "author's turn).",
    "days-before-reviewer-reminder": "Days a PR waits on maintainers before one reviewer "
    "reminder (it is never staled or closed).",
    "escalate-on": "Trigger kinds that may be escalated to an agent.",
    "labels.rotten": "Label for a PR past the stale step (Prow's `lifecycle/rotten`).",
    "labels.frozen": "Label that freezes a PR (never stale or closed; `/prsteward freeze`).",
    "labels.hold": "Label that holds a PR (Prow's `do-not-merge/hold`).",
    "labels.needs-rebase": "Label added on a merge conflict, removed when it is gone.",
    "labels.needs-human": "Label added when the stop-loss hands a PR to a human.",
    "labels.waiting-on-author": "A maintainer's label that makes it the author's turn.",
    "budgets.tokens-per-job": "Most tokens one escalation job may use.",
    "budgets.dollars-per-job": "Most dollars one escalation job may use.",
    "budgets.dollars-per-pr": "Most dollars spent on one PR, all jobs together.",
    "budgets.dollars-per-repository-day": "Most dollars per repository per UTC day.",
    "budgets.dollars-per-installation-day": "Most dollars per installation per UTC day.",
    "stop-loss.max-attempts-per-trigger": "Attempts at one trigger kind on a PR since its last "
    "verified fix, whatever the head SHA.",
    "stop-loss.max-escalations-per-pr-per-day": "Escalations per PR per day.",
    "stop-loss.max-review-fix-cycles": "Review -> fix cycles before a human is asked.",
    "stop-loss.same-failure-signature-limit": "Attempts that end in the same failure signature "
    "before stopping.",
    "stop-loss.repeated-shape-limit": "Jobs of the same shape in a repository before they are "
    "consolidated.",
    "stop-loss.circuit-breaker-failed-verifications": "Failed verifications in a repository "
    "that open the circuit breaker.",
    "stop-loss.low-return-idle-days": "Days without a maintainer action after which a "
    "repository whose circuit breaker is open is demoted to watch-only (restored by the next "
    "maintainer action).",
    "metadata.required-body-sections": "Headings the PR body must contain.",
    "metadata.referenced-issue-closed": "Flag a PR whose referenced issue is closed.",
    "metadata.unticked-checklist": "Flag a PR with unticked checklist items.",
    "risk.allow-close": "Allow prsteward to close PRs at all (the last gentle step).",
    "risk.allow-workflow-files": "Allow escalations on PRs that touch workflow files.",
}
# The same option under the names users already know (issue 12: familiar names).
ALSO_KNOWN_AS = {
    "days-before-pr-stale": "actions/stale `days-before-pr-stale`",
    "days-before-pr-close": "actions/stale `days-before-pr-close`",
    "exempt-pr-labels": "actions/stale `exempt-pr-labels`",
    "exempt-pr-milestones": "actions/stale `exempt-pr-milestones`",
    "exempt-all-pr-milestones": "actions/stale `exempt-all-pr-milestones`",
    "exempt-draft-pr": "actions/stale `exempt-draft-pr`",
    "exempt-pr-assignees": "actions/stale `exempt-pr-assignees`",
    "exempt-all-pr-assignees": "actions/stale `exempt-all-pr-assignees`",
    "only-labels": "actions/stale `only-labels`",
    "stale-pr-label": "actions/stale `stale-pr-label`; Prow `lifecycle/stale`",
    "labels.rotten": "Prow `lifecycle/rotten`",
    "labels.frozen": "Prow `lifecycle/frozen`",
    "labels.hold": "Prow `do-not-merge/hold`",
    "labels.needs-rebase": "Prow `needs-rebase`",
}


def _source_comments(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment at the end of its line in the class body."""
    comments: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        for line in lines:
            match = _FIELD_COMMENT.match(line)
            if match:
                comments[match.group(1)] = match.group(2).strip()
    return comments


def _type_name(annotation: Any) -> str:
    text = str(annotation)
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    text = re.sub(r"\b(?:[a-z_]+\.)+([A-Za-z_]+)", r"\1", text)
    return text.replace("typing.", "").replace("NoneType", "None")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "unset"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, tuple | list):
        items = [v.value if isinstance(v, Enum) else v for v in value]
        return f"`{json.dumps(items)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_rows() -> list[str]:
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    comments = _source_comments(Settings)
    for name, field in Settings.model_fields.items():
        description = field.description or comments.get(name, "")
        rows.append(
            f"| `{ENV_PREFIX}{name.upper()}` | {_cell(_type_name(field.annotation))} | "
            f"{_cell(_default(field))} | {_cell(description)} |"
        )
    return rows


def _config_rows(model: type[BaseModel], prefix: str, rows: list[str]) -> None:
    comments = _source_comments(model)
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((key + ".", annotation))
            continue
        description = field.description or comments.get(name) or DESCRIPTIONS.get(key, "")
        rows.append(
            f"| `{key}` | {_cell(_type_name(annotation))} | {_cell(_default(field))} | "
            f"{_cell(description)} | {_cell(ALSO_KNOWN_AS.get(key, ''))} |"
        )
    for sub_prefix, sub_model in nested:
        doc = sub_model.__dict__.get("__doc__") or ""
        if doc.strip():
            first = inspect.cleandoc(doc).splitlines()[0]
            rows.append(f"| **`{sub_prefix[:-1]}`** | | | {_cell(first)} | |")
        _config_rows(sub_model, sub_prefix, rows)


def config_rows() -> list[str]:
    rows = [
        "| key | type | default | description | also known as |",
        "|---|---|---|---|---|",
    ]
    _config_rows(Config, "", rows)
    return rows


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m bot.docs` from bot/settings.py and policies/config.py;",
        "     do not edit by hand (tests/view/test_docs.py fails when it is out of date). -->",
        "",
        "prsteward has two kinds of configuration: **process settings** for the service itself",
        "(environment variables, or a `.env` file in the working directory), and a **repository",
        f"configuration** in each repository's `{CONFIG_PATH}` (over the organisation default in",
        "the org's `.github` repository at the same path, over the built-in defaults below).",
        "A repository file that does not parse is reported with line numbers; the last valid",
        "configuration stays in force. The policies behind the options are described in",
        "[policies.md](policies.md).",
        "",
        "## Process settings",
        "",
        *settings_rows(),
        "",
        f"## Repository configuration (`{CONFIG_PATH}`)",
        "",
        "Keys are kebab-case; nested keys are shown with dots (`budgets.dollars-per-job` is",
        "`dollars-per-job:` under `budgets:`). Unknown keys are refused.",
        "",
        *config_rows(),
        "",
        "A minimal file that lets prsteward act on one repository:",
        "",
        "```yaml",
        "mode: act            # the default is shadow: record what would be done, write nothing",
        "days-before-pr-stale: 30",
        "budgets:",
        "  dollars-per-job: 2",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run `python -m bot.docs`", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
