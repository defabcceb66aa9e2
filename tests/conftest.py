"""Shared fixtures: ledger URLs for both backends.

PostgreSQL: each test session gets its own throw-away database on the server named by
PRSTEWARD_TEST_POSTGRES_URL (default: the local trust-auth server, database `test`), so parallel
runs never see each other's rows. With CI=true an unreachable server fails the test; outside CI
it skips, saying why.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgres+asyncpg://", "postgresql://"
    )


async def _admin(dsn: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The admin URL of the test PostgreSQL server (fails in CI when unreachable)."""
    url = os.environ.get("PRSTEWARD_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)
    try:
        asyncio.run(_admin(_asyncpg_dsn(url), "SELECT 1"))
    except Exception as error:
        message = f"PostgreSQL at {url} is not reachable: {error!r}"
        if _in_ci():
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards. An async SQLAlchemy URL."""
    name = f"prsteward_t_{uuid.uuid4().hex[:12]}"
    admin = _asyncpg_dsn(postgres_server_url)
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    base = postgres_server_url.rsplit("/", 1)[0]
    url = base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    try:
        yield url
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file for one test. An async SQLAlchemy URL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


# ----------------------------------------------------------------------------- the sim (sim/)
# An in-process local GitHub per test. `sim_server` starts the default organisation (installation
# 1 on `acme`, repository `acme/widgets`); `sim_factory(scenario=..., webhook_url=...)` starts one
# from a scenario dict or file. Each has .base_url, .app_id, .private_key_pem, .webhook_secret,
# .installation_ids, .sim (the in-memory state) and .control (sim/control.py's SimControl);
# point webhooks somewhere with `server.set_webhook_url(url)` or `control.configure_webhook(url=)`.


@pytest.fixture(scope="session")
def sim_private_key_pem() -> str:
    """One App key pair per test session (RSA generation is the slow part of starting a sim)."""
    from sim.runner import generate_private_key_pem

    return generate_private_key_pem()


@pytest.fixture
async def sim_factory(sim_private_key_pem: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Starts sims on free ports; all are stopped after the test."""
    from sim.runner import SimConfig, SimServer
    from sim.scenario import read_scenario

    servers: list[SimServer] = []

    async def start(
        scenario: dict[str, Any] | str | Path | None = None,
        webhook_url: str | None = None,
        webhook_secret: str = "sim-webhook-secret",
    ) -> SimServer:
        spec = read_scenario(scenario) if isinstance(scenario, (str, Path)) else (scenario or {})
        server = SimServer(
            SimConfig(
                scenario=spec,
                private_key_pem=sim_private_key_pem,
                webhook_secret=webhook_secret,
                webhook_url=webhook_url,
            )
        )
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def sim_server(sim_factory: Callable[..., Awaitable[Any]]) -> Any:
    """A running sim with the default organisation (acme/widgets, installation 1)."""
    return await sim_factory()
