"""Members built from the sim's generators, so the pure tests and the sim tests share one shape."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from policies.codemotion import PullFile, fingerprint
from policies.families import Member, SpendPoint
from tests.factories import T0


def member_of(
    spec: dict[str, Any],
    *,
    index: int = 0,
    green: tuple[str, ...] = ("build", "test"),
    failing: tuple[str, ...] = (),
    spend: tuple[SpendPoint, ...] = (),
    jobs: int = 0,
) -> Member:
    """A family member from a generated ``pulls:`` entry, created ``index * 4`` minutes after T0."""
    files = [PullFile.from_json(f) for f in spec["files"]]
    head_ref = spec.get("head_ref", "")
    return Member(
        number=spec["number"],
        title=spec["title"],
        head_ref=head_ref,
        created_at=T0 + timedelta(minutes=4 * index),
        motion=fingerprint(f"{spec['number']:040d}", files, spec["title"], head_ref),
        green_checks=green,
        failing_checks=failing,
        spend=spend,
        jobs=jobs,
    )


def members_of(specs: list[dict[str, Any]], **kwargs: Any) -> list[Member]:
    return [member_of(spec, index=i, **kwargs) for i, spec in enumerate(specs)]
