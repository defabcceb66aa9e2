"""Fixtures for the summary issue tests (issue 7 item 2): the acting world of ``tests/acting``
plus a :class:`bot.summary.SummaryPoster` on the sim's clock."""

from __future__ import annotations

from tests.acting.conftest import ActingWorld, acting_scenario, acting_world  # noqa: F401

__all__ = ["ActingWorld", "acting_scenario"]
