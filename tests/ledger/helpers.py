"""Shared by the ledger tests: a PR snapshot's JSON, as the ledger stores it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REPO = "acme/widget"


def snapshot(number: int = 7, **fields: Any) -> dict[str, Any]:
    """An open PR's snapshot JSON in ``REPO``; ``fields`` replace or add keys."""
    values: dict[str, Any] = {
        "repository": REPO,
        "number": number,
        "title": "Fix the widget",
        "state": "OPEN",
        "mergeable": "MERGEABLE",
        "updated_at": "2026-11-23T11:00:00+00:00",
        "head_sha": "a" * 40,
        "author": {"login": "dev", "is_bot": False, "association": "CONTRIBUTOR"},
        "labels": [],
    }
    values.update(fields)
    return values
