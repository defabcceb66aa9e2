"""Fixtures for the spend and boundary tests (issue 11): the acting and lifecycle worlds of
``tests/acting`` and ``tests/lifecycle`` (sim + ledger + engine + executor + command desk)."""

from __future__ import annotations

from tests.acting.conftest import acting_world  # noqa: F401
from tests.lifecycle.conftest import lifecycle_world  # noqa: F401
