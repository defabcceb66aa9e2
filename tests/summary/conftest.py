"""Fixtures for the summary issue tests (issue 7 item 2): the acting world of ``tests/acting``
plus a :class:`bot.summary.SummaryPoster` on the sim's clock."""

from __future__ import annotations

import sim.issue_list  # noqa: F401 - registers GET /repos/{o}/{r}/issues in the sim
from tests.acting.conftest import ActingWorld, acting_scenario, acting_world  # noqa: F401

__all__ = ["ActingWorld", "acting_scenario"]
