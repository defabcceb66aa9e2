"""`prsteward serve` and `prsteward reconcile` as processes, configured by the env file
`prsteward sim` writes (used as `.env` in the working directory)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger import pulls
from ledger.db import Ledger
from sim.runner import credentials_env
from tests.watching.helpers import eventually

SimFactory = Callable[..., Awaitable[Any]]
PRSTEWARD = [sys.executable, "-m", "bot.cli"]
REPO_ROOT = Path(__file__).parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRSTEWARD_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *PRSTEWARD,
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def write_env_file(sim: Any, directory: Path) -> None:
    key = directory / "app.pem"
    key.write_text(sim.private_key_pem)
    (directory / ".env").write_text(
        credentials_env(sim.app_id, key, sim.webhook_secret, sim.base_url)
    )


async def test_serve_without_secret__refuses(tmp_path: Path) -> None:
    code, _, err = await run(
        ["serve"], tmp_path, clean_env(PRSTEWARD_DATABASE_URL=f"sqlite:///{tmp_path}/l.db")
    )
    assert code == 2
    assert "refusing to start without PRSTEWARD_WEBHOOK_SECRET" in err


async def test_reconcile_with_sim_env_file__prints_changes_then_quiet(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    await write_env_file(sim, tmp_path)
    env = clean_env(PRSTEWARD_DATABASE_URL=f"sqlite:///{tmp_path}/ledger.db")
    code, out, err = await run(["reconcile"], tmp_path, env)
    assert code == 0, err
    assert "acme/widgets: full; read 11" in out
    assert "acme/gadgets: full; read 1" in out
    code, out, err = await run(["reconcile", "--repo", "acme/widgets"], tmp_path, env)
    assert code == 0, err
    assert (
        out.strip() == "acme/widgets: check; unchanged (304); read 0; 1 requests, 0 GraphQL points"
    )
    assert sim.webhook_secret not in out + err


async def test_reconcile_bad_repo_argument__clear_error(tmp_path: Path) -> None:
    code, _, err = await run(["reconcile", "--repo", "nope"], tmp_path, clean_env())
    assert code == 2 and "--repo wants OWNER/NAME" in err, err


async def test_reconcile_without_app_credentials__clear_error(tmp_path: Path) -> None:
    env = clean_env(PRSTEWARD_DATABASE_URL=f"sqlite:///{tmp_path}/l.db")
    code, _, err = await run(["reconcile"], tmp_path, env)
    assert code == 2 and "PRSTEWARD_APP_ID" in err, err


@pytest.mark.slow
async def test_serve_with_sim_env_file__webhooks_poller_and_sigterm(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(scenario="sim/scenarios/small.yml")
    await write_env_file(sim, tmp_path)
    port = free_port()
    database = f"sqlite:///{tmp_path}/ledger.db"
    env = clean_env(
        PRSTEWARD_DATABASE_URL=database,
        PRSTEWARD_PORT=str(port),
        PRSTEWARD_POLL_INTERVAL_SECONDS="1",
        PRSTEWARD_TYPED_WEBHOOK_PARSE="false",
    )
    process = await asyncio.create_subprocess_exec(
        *PRSTEWARD,
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    db = Ledger(database)
    try:
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                try:
                    return (await client.get(url + "/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            assert await eventually(ready, 60, 0.2)
            assert (await client.get(url + "/healthz")).json() == {"ok": True}

        async def swept() -> bool:
            return len(await pulls.list_open(db, "acme/widgets")) == 11

        assert await eventually(swept, 60, 0.2)  # the poller ran its first cycle
        await sim.control.configure_webhook(url=url + "/webhooks")
        await sim.control.event(
            "comment", repo="acme/widgets", pr=10, user="alice", body="Looks good"
        )

        async def commented() -> bool:
            row = await pulls.get_pull(db, "acme/widgets", 10)
            return row is not None and any(
                c["body"] == "Looks good" for c in (row.snapshot or {}).get("comments", [])
            )

        assert await eventually(commented, 60, 0.2)  # webhook -> dirty -> poller read the truth
    finally:
        await db.close()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()[-2000:]
    assert sim.webhook_secret not in err.decode()


@pytest.mark.parametrize(
    ("key_text", "expected"),
    [(None, "cannot read"), ("not a key", "not a readable PEM private key")],
    ids=["key file missing -> says which file", "key file not a PEM -> says so"],
)
async def test_reconcile_bad_private_key__clear_error(
    tmp_path: Path, key_text: str | None, expected: str
) -> None:
    key = tmp_path / "app.pem"
    if key_text is not None:
        key.write_text(key_text)
    env = clean_env(
        PRSTEWARD_DATABASE_URL=f"sqlite:///{tmp_path}/l.db",
        PRSTEWARD_APP_ID="1",
        PRSTEWARD_PRIVATE_KEY_PATH=str(key),
    )
    code, _, err = await run(["reconcile"], tmp_path, env)
    assert code == 2 and expected in err, err
    assert "Traceback" not in err


async def test_serve_insecure_mode__warns_at_start_and_accepts_unsigned(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        PRSTEWARD_DATABASE_URL=f"sqlite:///{tmp_path}/l.db",
        PRSTEWARD_INSECURE_NO_WEBHOOK_SECRET="1",
        PRSTEWARD_PORT=str(port),
    )
    process = await asyncio.create_subprocess_exec(
        *PRSTEWARD,
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:

            async def up() -> bool:
                try:
                    return (await client.get(url + "/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            assert await eventually(up, 60, 0.2)
            response = await client.post(
                url + "/webhooks",
                content=b'{"zen": "unsigned"}',
                headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "u-1"},
            )
            assert response.status_code == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert "WARNING: PRSTEWARD_INSECURE_NO_WEBHOOK_SECRET=1" in err.decode()
    assert process.returncode == 0
