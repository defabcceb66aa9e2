"""``snapshot_to_json``'s fast path encodes exactly as the general rules (``_encode``) do, and the
fingerprint derived from it is the one stored in ledgers: reconcile compares it with theirs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from policies.snapshot import (
    AuthorAssociation,
    CheckOutcome,
    PullRequestSnapshot,
    _encode,
    fingerprint_of_json,
    snapshot_from_json,
    snapshot_to_json,
)
from tests.factories import (
    make_actor,
    make_check,
    make_comment,
    make_linked_issue,
    make_review,
    make_snapshot,
)


class Moment(datetime):
    """A datetime subclass (the general rules encode any datetime with isoformat)."""


def reference_fingerprint(snapshot: PullRequestSnapshot) -> str:
    data = _encode(snapshot)
    kept = {k: v for k, v in data.items() if k not in ("updated_at", "extra")}
    encoded = json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def full_snapshot() -> PullRequestSnapshot:
    return make_snapshot(
        labels=("bug", "needs review"),
        assignees=("alice",),
        milestone="v2",
        checks=(
            make_check("build"),
            make_check("lint", CheckOutcome.FAILURE),
            replace(make_check("ci/status"), kind="status", completed_at=None, url=None),
        ),
        reviews=(make_review(), make_review("APPROVED", submitted_at=None)),
        comments=(make_comment(body="please rebase"),),
        linked_issues=(make_linked_issue(assignees=("bob", "carol")),),
        extra={"note": "kept", "when": datetime(2026, 1, 2, tzinfo=UTC)},
    )


def odd_snapshot() -> PullRequestSnapshot:
    """Values a caller may pass that are not the declared types."""
    values: dict[str, Any] = {
        "labels": ["a", AuthorAssociation.MEMBER],  # a list, and a StrEnum inside it
        "milestone": {"title": "v3", "due": [1, 2.5, None, True]},
        "base_sha": 12345,
        "review_requests": ("team", ("nested", "tuple")),
        "updated_at": Moment(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2))),
        "head_committed_at": None,
        "author": make_actor("bot[bot]"),
        "extra": {"checks": (make_check("x"),), "at": Moment(2026, 1, 1, tzinfo=UTC)},
    }
    return make_snapshot(**values)


def test_the_fast_encoder_gives_what_the_general_rules_give() -> None:
    for snapshot in (make_snapshot(), full_snapshot(), odd_snapshot()):
        fast, general = snapshot_to_json(snapshot), _encode(snapshot)
        assert fast == general
        # same keys in the same order: the stored JSON text does not change either
        assert json.dumps(fast) == json.dumps(general)


def test_the_fingerprint_is_the_stored_one() -> None:
    for snapshot in (make_snapshot(), full_snapshot(), odd_snapshot()):
        fingerprint = fingerprint_of_json(snapshot_to_json(snapshot))
        assert fingerprint == reference_fingerprint(snapshot) == snapshot.fingerprint()
    # a known value: a change of encoding would make every stored PR look changed
    assert make_snapshot().fingerprint() == (
        "d5a704f43782332df548aaa855b42f0757ef076e93c379a40da54e79eafc3972"
    )


def test_the_round_trip_still_holds() -> None:
    snapshot = full_snapshot()
    assert snapshot_from_json(snapshot_to_json(snapshot)) == snapshot
