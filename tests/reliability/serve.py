"""`prsteward serve` as a real child process, for the crash and replica tests.

Each process gets its own working directory (the `.env` that `prsteward sim` would write, see
tests/watching/test_cli.py), its own port and a log file that captures everything it prints.
``kill9()`` is SIGKILL: no shutdown code runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.watching.test_cli import PRSTEWARD, clean_env, free_port

__all__ = ["ServeProcess", "clean_env", "free_port", "sign"]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def size_from_env(name: str, default: int) -> int:
    """A test size: ``default`` in CI, more on demand (``PRSTEWARD_TEST_<NAME>=...``)."""
    return int(os.environ.get(f"PRSTEWARD_TEST_{name}", default))


@dataclass
class ServeProcess:
    """One `prsteward serve`; ``env`` holds its PRSTEWARD_* settings."""

    cwd: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_path = self.cwd / f"serve-{self.starts}.log"
        env = clean_env(**self.env, PRSTEWARD_PORT=str(self.port))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*PRSTEWARD, "serve"], cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def logs(self) -> str:
        """Everything every start of this process printed."""
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.cwd.glob("serve-*.log"))
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
            raise

    async def wait_ready(self, timeout: float = 90) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while loop.time() < deadline:
                assert self.running, f"serve exited early:\n{self.logs()[-3000:]}"
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"serve not ready after {timeout}s:\n{self.logs()[-3000:]}")


def sim_env(sim: Any, directory: Path) -> dict[str, str]:
    """The credentials `prsteward sim` writes, as settings for a child process."""
    key = directory / "app.pem"
    directory.mkdir(parents=True, exist_ok=True)
    key.write_text(sim.private_key_pem)
    return {
        "PRSTEWARD_APP_ID": str(sim.app_id),
        "PRSTEWARD_PRIVATE_KEY_PATH": str(key),
        "PRSTEWARD_WEBHOOK_SECRET": sim.webhook_secret,
        "PRSTEWARD_GITHUB_API_URL": sim.base_url,
    }
