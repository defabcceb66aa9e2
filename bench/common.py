"""Shared pieces of the benchmarks: figures and targets, the machine, child processes and their
CPU / peak memory, and a sim in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    """One row of the table: a measured figure against a target (or for information only)."""

    metric: str
    measured: float | int | str | None
    target: str = ""  # "<= 11", ">= 50x", "" (no target: informational)
    met: bool | None = None  # None: no target, or not measured
    unit: str = ""
    note: str = ""


@dataclass(slots=True)
class Result:
    """What one benchmark produced: its figures (for the JSON) and its table rows."""

    name: str
    title: str
    covers: str  # what part of the system was exercised, in one line
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[Target] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def row(
        self,
        metric: str,
        measured: float | int | str | None,
        *,
        target: str = "",
        ok: bool | None = None,
        unit: str = "",
        note: str = "",
    ) -> None:
        self.rows.append(Target(metric, measured, target, ok, unit, note))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def below(value: float | None, limit: float) -> bool | None:
    return None if value is None else value < limit


# --- the machine ------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_total_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "commit": _git("rev-parse", "--short=12", "HEAD") or "unknown",
        "commit_dirty": bool(dirty),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_mb": _memory_total_mb(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# --- processes --------------------------------------------------------------------------------


def self_usage() -> dict[str, float]:
    """CPU seconds (user + system) and peak RSS (MB) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
    }


def proc_usage(pid: int) -> dict[str, float] | None:
    """CPU seconds and peak RSS (VmHWM) of another live process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    peak = rss = 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return {"cpu_seconds": cpu, "peak_rss_mb": peak, "rss_mb": rss}


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


class Child:
    """A child process that announces itself with one JSON line on stdout."""

    def __init__(self, process: asyncio.subprocess.Process, hello: dict[str, Any]) -> None:
        self.process = process
        self.hello = hello

    @property
    def pid(self) -> int:
        return self.process.pid

    def usage(self) -> dict[str, float] | None:
        return proc_usage(self.pid)

    async def read_json(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
            if not line:
                raise RuntimeError(f"child {self.pid} ended without answering")
            text = line.decode().strip()
            if text.startswith("{"):
                return dict(json.loads(text))

    async def stop(self, timeout: float = 10.0) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


async def start_child(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    cpus: set[int] | None = None,
    timeout: float = 120.0,
    wait_for_json: bool = True,
    stderr_path: Path | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start ``python args...`` (or a command when ``args[0]`` is not a module flag) and wait for
    its first JSON line."""
    command = [sys.executable, *args] if args[0] in {"-m", "-c"} else args
    if cpus:
        command = ["taskset", "-c", ",".join(str(c) for c in sorted(cpus)), *command]
    stderr: Any = subprocess.DEVNULL
    handle = None
    if stderr_path is not None:
        handle = stderr_path.open("ab")
        stderr = handle
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        env=env or python_env(),
        cwd=cwd or ROOT,
    )
    if handle is not None:
        handle.close()
    child = Child(process, {})
    if wait_for_json:
        try:
            child.hello = await child.read_json(timeout)
        except BaseException:
            await child.stop()
            raise
    return child


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_http(url: str, *, timeout: float = 60.0, want: int = 200) -> None:
    """Poll ``url`` until it answers ``want``."""
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(url)).status_code == want:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer {want} within {timeout:.0f}s")
            await asyncio.sleep(0.2)


def usable_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


# --- the sim in its own process -----------------------------------------------------------------


@dataclass(slots=True)
class SimProcess:
    child: Child
    url: str
    app_id: int
    private_key_path: Path
    webhook_secret: str
    load_seconds: float
    load_peak_rss_mb: float
    pulls: int
    repositories: int


@contextlib.asynccontextmanager
async def sim_process(
    workdir: Path,
    generate: str,
    *,
    cpus: set[int] | None = None,
    webhook_url: str | None = None,
    timeout: float = 300.0,
) -> AsyncIterator[SimProcess]:
    """``bench.simproc`` serving a generated organisation on a free port."""
    key_path = workdir / f"sim-key-{secrets.token_hex(4)}.pem"
    args = ["-m", "bench.simproc", "--generate", generate, "--key-out", str(key_path)]
    if webhook_url:
        args += ["--webhook-url", webhook_url]
    child = await start_child(
        args, cpus=cpus, timeout=timeout, stderr_path=workdir / "sim.stderr.log"
    )
    hello = child.hello
    try:
        yield SimProcess(
            child=child,
            url=str(hello["url"]),
            app_id=int(hello["app_id"]),
            private_key_path=key_path,
            webhook_secret=str(hello["webhook_secret"]),
            load_seconds=float(hello["load_seconds"]),
            load_peak_rss_mb=float(hello["peak_rss_mb"]),
            pulls=int(hello["pulls"]),
            repositories=int(hello["repositories"]),
        )
    finally:
        await child.stop()


# --- small helpers ----------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.started


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


Progress = Callable[[str], None]


def say(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)
