"""Synthetic organisations for load and realism: ``repos=100,prs=10000,seed=1`` gives a scenario
dict (the same format as the files in ``sim/scenarios/``) with a realistic mix of PR situations.

Also the same-shape family of issue 14: PRs that each add one more action with renamed
identifiers (``S085`` .. ``S104``), with file patches, and negative controls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sim.families import (  # the issue 14 generators, re-exported
    counter_title_controls,
    different_code_controls,
    same_shape_family,
)

__all__ = [
    "GenerateSpec",
    "counter_title_controls",
    "different_code_controls",
    "generate",
    "pull_spec",
    "same_shape_family",
]

# (kind, weight): the share of open PRs in each situation prsteward must tell apart.
MIX: list[tuple[str, float]] = [
    ("clean", 0.28),
    ("approved", 0.04),
    ("failing_ci", 0.12),
    ("flaky_ci", 0.06),
    ("conflict", 0.08),
    ("changes_requested", 0.10),
    ("maintainer_feedback", 0.08),
    ("draft", 0.08),
    ("zombie", 0.08),
    ("closed_issue", 0.04),
    ("bot", 0.06),
]
CHECK_NAMES = ["build", "test", "lint"]
MAINTAINERS = ["alice", "bob", "carmen"]
BOTS = ["dependabot[bot]", "renovate[bot]"]


@dataclass(slots=True, frozen=True)
class GenerateSpec:
    repos: int = 10
    prs: int = 100
    seed: int = 1
    installations: int = 1
    families: int = 0  # same-shape families of 20 PRs, in the first repositories
    account: str = "acme"

    @classmethod
    def parse(cls, text: str) -> GenerateSpec:
        """``repos=100,prs=10000,seed=1`` (also ``installations``, ``families``, ``account``)."""
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, raw = part.partition("=")
            if key not in cls.__dataclass_fields__ or not raw:
                raise ValueError(
                    f"{part!r}: use key=value with keys {sorted(cls.__dataclass_fields__)}"
                )
            values[key] = raw if key == "account" else int(raw)
        spec = cls(**values)
        if spec.repos < 1 or spec.prs < 0 or spec.installations < 1:
            raise ValueError("repos >= 1, prs >= 0, installations >= 1")
        return spec


def generate(spec: GenerateSpec) -> dict[str, Any]:
    rng = random.Random(spec.seed)
    kinds = [kind for kind, _ in MIX]
    weights = [weight for _, weight in MIX]
    repos: list[dict[str, Any]] = []
    for index in range(spec.repos):
        repos.append(
            {
                "name": f"repo-{index:03d}",
                "collaborators": {login: "write" for login in MAINTAINERS} | {"alice": "admin"},
                "files": {".github/prsteward.yml": "mode: shadow\n"},
                "labels": ["bug", "enhancement"],
                "issues": [],
                "pulls": [],
            }
        )
    for n in range(spec.prs):
        repo = repos[n % spec.repos]
        kind = rng.choices(kinds, weights)[0]
        number = len(repo["pulls"]) + len(repo["issues"]) + 1
        repo["pulls"].append(pull_spec(rng, repo, number, kind))
    for family in range(spec.families):
        repo = repos[family % spec.repos]
        start = len(repo["pulls"]) + len(repo["issues"]) + 1
        repo["pulls"].extend(same_shape_family(start, count=20, first_counter=85 + family * 100))
    installations = []
    for inst in range(spec.installations):
        owned = repos[inst :: spec.installations]
        installations.append(
            {
                "id": inst + 1,
                "account": spec.account if inst == 0 else f"{spec.account}-{inst}",
                "repositories": owned,
            }
        )
    return {"installations": installations}


def pull_spec(rng: random.Random, repo: dict[str, Any], number: int, kind: str) -> dict[str, Any]:
    age_days = rng.randint(1, 60)
    author = f"dev{rng.randint(1, 400)}"
    checks = {name: "success" for name in CHECK_NAMES[: rng.randint(1, 3)]}
    spec: dict[str, Any] = {
        "number": number,
        "title": f"Change {number}: {rng.choice(['fix', 'add', 'refactor', 'update', 'remove'])} {rng.choice(['parser', 'cache', 'docs', 'api', 'cli'])}",
        "author": author,
        "created": f"-{age_days}d",
        "updated": f"-{rng.randint(0, age_days * 24)}h",
        "checks": checks,
        "additions": rng.randint(1, 400),
        "deletions": rng.randint(0, 200),
    }
    if kind == "approved":
        spec["reviews"] = [{"user": rng.choice(MAINTAINERS), "state": "APPROVED"}]
    elif kind == "failing_ci":
        spec["checks"] = checks | {"test": "failure"}
    elif kind == "flaky_ci":
        spec["checks"] = checks | {"test": "failure"}
        spec["flaky"] = ["test"]
    elif kind == "conflict":
        spec["mergeable"] = "CONFLICTING"
    elif kind == "changes_requested":
        spec["reviews"] = [
            {
                "user": rng.choice(MAINTAINERS),
                "state": "CHANGES_REQUESTED",
                "body": "Please add tests.",
            }
        ]
    elif kind == "maintainer_feedback":
        spec["comments"] = [
            {
                "user": rng.choice(MAINTAINERS),
                "body": "Could you split this up?",
                "at": f"-{rng.randint(1, 48)}h",
            }
        ]
    elif kind == "draft":
        spec["draft"] = True
        spec.pop("checks")
    elif kind == "zombie":
        created = rng.randint(120, 500)
        spec["created"] = f"-{created}d"
        spec["updated"] = f"-{rng.randint(90, created)}d"
    elif kind == "closed_issue":
        issue_number = number + 100_000  # out of the PR range, unique per repo
        repo["issues"].append(
            {
                "number": issue_number,
                "title": "Linked issue",
                "state": "closed",
                "state_reason": "not_planned",
                "updated": "-5d",
            }
        )
        spec["body"] = f"Fixes #{issue_number}"
        spec["closes"] = [issue_number]
    elif kind == "bot":
        spec["author"] = rng.choice(BOTS)
        spec["title"] = f"Bump lib-{number} from 1.{number % 9}.0 to 1.{number % 9 + 1}.0"
    return spec
