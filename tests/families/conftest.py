"""The acting world (sim + ledger + engine) from tests/acting, for the families' sim tests."""

from tests.acting.conftest import acting_world  # noqa: F401 - the fixture, shared
