"""Issue 3's throughput target: the sim serves >= 2,000 REST requests/s on one core.

The sim runs in its own process pinned to one CPU (``taskset``); the load generator (``wrk`` when
installed, else an aiohttp client process) is pinned to another. Requests rotate over the five
per-PR reads a naive poller makes (pull, combined status, check runs, reviews, comments), with an
installation token, so every request is authenticated, rate-accounted and rendered.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ROOT,
    Result,
    at_least,
    rounded,
    say,
    sim_process,
    start_child,
    usable_cpus,
)
from bench.loadgen import wrk_available
from bench.naive import app_jwt, installation_tokens
from sim.control import SimControl

TARGET_RPS = 2000

WRK_GET_SCRIPT = """
local paths = {}
local i = 0
function init(args)
  for line in io.lines(os.getenv("BENCH_PATHS")) do table.insert(paths, line) end
  wrk.headers["Authorization"] = "token " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Accept"] = "application/vnd.github+json"
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"non2xx": %d, "socket_errors": %d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""

PY_CLIENT = """
import asyncio, json, sys, time
import aiohttp
url, token, paths_file, connections, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
paths = open(paths_file).read().split()
async def main():
    done = bad = 0
    i = 0
    headers = {"Authorization": "token " + token, "Accept": "application/vnd.github+json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
        stop = time.perf_counter() + seconds
        async def worker():
            nonlocal done, bad, i
            while time.perf_counter() < stop:
                i += 1
                async with s.get(url + paths[i % len(paths)], headers=headers) as r:
                    await r.read()
                    done += 1
                    bad += r.status >= 300
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    print(json.dumps({"requests": done, "duration_us": int(elapsed * 1e6), "non2xx": bad,
                      "socket_errors": 0, "p50_us": None, "p99_us": None}), flush=True)
asyncio.run(main())
"""


def paths_for(state: dict[str, Any], limit: int = 50) -> list[str]:
    repo = state["repositories"][0]
    name = repo["full_name"] if "full_name" in repo else repo["name"]
    lines = []
    for pull in repo["pulls"][:limit]:
        number, sha = pull["number"], pull["head_sha"]
        lines += [
            f"/repos/{name}/pulls/{number}",
            f"/repos/{name}/commits/{sha}/status",
            f"/repos/{name}/commits/{sha}/check-runs",
            f"/repos/{name}/pulls/{number}/reviews",
            f"/repos/{name}/issues/{number}/comments",
        ]
    return lines


async def drive(
    url: str, token: str, paths_file: Path, seconds: float, cpus: set[int] | None, workdir: Path
) -> dict[str, Any]:
    pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    if wrk_available():
        script = workdir / "get.lua"
        script.write_text(WRK_GET_SCRIPT)
        command = [*pin, "wrk", "-t", "1", "-c", "16", "-d", f"{max(1, round(seconds))}s"]
        command += ["-s", str(script), url]
        env = {"BENCH_PATHS": str(paths_file), "BENCH_TOKEN": token, "PATH": "/usr/bin:/bin"}
        output = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, env=env, timeout=seconds + 60
        )
        line = next(x for x in output.stdout.splitlines() if x.startswith("{"))
        data = dict(json.loads(line))
        data["tool"] = "wrk"
        return data
    child = await start_child(
        [*pin, sys.executable, "-c", PY_CLIENT, url, token, str(paths_file), "16", str(seconds)],
        timeout=seconds + 60,
    )
    await child.stop()
    return {**child.hello, "tool": "aiohttp client"}


async def run(workdir: Path, *, small: bool) -> Result:
    result = Result(
        "sim_rest",
        "Sim REST throughput",
        "the sim (sim/server.py) in its own process pinned to one CPU; authenticated GETs of "
        "the five per-PR reads a naive poller makes",
    )
    cpus = usable_cpus()
    sim_cpus = {cpus[0]}
    client_cpus = {cpus[1]} if len(cpus) > 1 else None
    seconds = 2.0 if small else 8.0
    say("sim_rest: sim pinned to one CPU")
    async with sim_process(workdir, "repos=2,prs=100,seed=1", cpus=sim_cpus) as sim:
        control = SimControl(sim.url)
        try:
            await control.set_limits(rest_per_hour=10**9)
            state = await control.state()
        finally:
            await control.aclose()
        async with httpx.AsyncClient(base_url=sim.url, timeout=30) as client:
            token = (
                await installation_tokens(
                    client, app_jwt(sim.app_id, sim.private_key_path.read_text())
                )
            )[0]
        paths_file = workdir / "sim-paths.txt"
        paths_file.write_text("\n".join(paths_for(state)) + "\n")
        await drive(sim.url, token, paths_file, 1.0, client_cpus, workdir)  # warm-up
        before = sim.child.usage()
        data = await drive(sim.url, token, paths_file, seconds, client_cpus, workdir)
        after = sim.child.usage()
    duration = data["duration_us"] / 1e6
    good = data["requests"] - data["non2xx"]
    rate = good / duration if duration else 0.0
    cpu = (after or {}).get("cpu_seconds", 0.0) - (before or {}).get("cpu_seconds", 0.0)
    result.figures = {
        **data,
        "rate": rate,
        "sim_cpu_seconds": cpu,
        "sim_cpu_share": cpu / duration if duration else None,
        "requests_per_sim_cpu_second": good / cpu if cpu else None,
        "sim_cpus": sorted(sim_cpus),
        "client_cpus": sorted(client_cpus or []),
    }
    result.row(
        "sim: REST requests/s on one core",
        rounded(rate, 0),
        target=f">= {TARGET_RPS}/s",
        ok=at_least(rate, TARGET_RPS),
        note=f"{data['non2xx']} non-2xx; sim used {rounded(cpu / duration if duration else None)} "
        f"of its core ({rounded(good / cpu if cpu else None, 0)} requests per sim CPU-second); p50 {rounded(data['p50_us'] / 1000 if data.get('p50_us') else None)} ms, 16 connections, "
        f"{data['tool']}",
    )
    await fold_in_sim_bench(result, workdir, small=small)
    return result


async def fold_in_sim_bench(result: Result, workdir: Path, *, small: bool) -> None:
    """The sim engineer's own ``bench/sim_bench.py`` (its load generator unpinned, in the same
    run), when it is there: its lines ``name: {json}`` become figures and rows."""
    script = ROOT / "bench" / "sim_bench.py"
    if not script.exists():
        return
    size = ["--prs", "200", "--repos", "4", "--seconds", "2"] if small else []
    say("sim_rest: bench/sim_bench.py")
    child = await start_child(
        [sys.executable, str(script), *size], wait_for_json=False, timeout=900
    )
    assert child.process.stdout is not None
    output = (await child.process.stdout.read()).decode()
    code = await child.process.wait()
    parsed: dict[str, Any] = {}
    for line in output.splitlines():
        name, _, rest = line.partition(": ")
        try:
            parsed[name] = json.loads(rest)
        except ValueError:
            parsed[name] = rest
    result.figures["sim_bench_py"] = {"exit_status": code, "lines": parsed}
    for name, value in parsed.items():
        if isinstance(value, dict) and "per_second" in value:
            result.row(
                f"sim: {name} requests/s (bench/sim_bench.py, client unpinned)",
                rounded(float(value["per_second"]), 0),
                note=f"p50 {rounded(value.get('p50_ms'))} ms, p99 {rounded(value.get('p99_ms'))} ms",
            )
        elif isinstance(value, dict) and "ms_per_page" in value:
            result.row(
                f"sim: {name} (bench/sim_bench.py)",
                rounded(float(value["ms_per_page"]), 1),
                unit="ms",
            )
