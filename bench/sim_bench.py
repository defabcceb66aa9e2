"""Benchmarks of the sim (issue 3 targets: >= 2,000 REST requests/s on one core; a 10,000-PR
organisation loads in < 5 s and < 500 MB). Reports numbers; asserts nothing.

    python3 bench/sim_bench.py [--prs 10000] [--repos 100] [--seconds 8] [--connections 16]

The sim runs as its own process (`prsteward sim`, one core); the load generator (aiohttp) runs
here, on the other core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_in_child(repos: int, prs: int) -> dict[str, float]:
    """Generate + load an organisation in a fresh process; its time and peak RSS."""
    code = f"""
import json, resource, time
from sim.generate import GenerateSpec, generate
from sim.runner import SimConfig, build_simulator
started = time.perf_counter()
scenario = generate(GenerateSpec(repos={repos}, prs={prs}, seed=1))
generated = time.perf_counter()
sim, _ = build_simulator(SimConfig(scenario=scenario))
loaded = time.perf_counter()
print(json.dumps({{"generate_s": generated - started, "load_s": loaded - generated,
    "total_s": loaded - started, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "pulls": sum(len(r.pulls) for r in sim.state.repos.values())}}))
"""
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return dict(json.loads(output.stdout))


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def token_for(base: str, session: aiohttp.ClientSession, credentials: dict[str, str]) -> str:
    import jwt

    now = int(time.time())
    key = Path(credentials["PRSTEWARD_PRIVATE_KEY_PATH"]).read_text()
    app_jwt = jwt.encode(
        {"iat": now - 30, "exp": now + 500, "iss": credentials["PRSTEWARD_APP_ID"]},
        key,
        algorithm="RS256",
    )
    async with session.post(
        f"{base}/app/installations/1/access_tokens", headers={"Authorization": f"Bearer {app_jwt}"}
    ) as response:
        return str((await response.json())["token"])


async def hammer(
    base: str, token: str, paths: list[str], seconds: float, connections: int
) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"token {token}"}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(index: int) -> None:
            n = index
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(base + paths[n % len(paths)]) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)
                n += connections

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "statuses": statuses,  # type: ignore[dict-item]
    }


async def serve_and_measure(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    port = free_port()
    credentials_path = tmp / "bench-sim.env"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "sim",
            "--port",
            str(port),
            "--generate",
            f"repos={args.repos},prs={args.prs},seed=1",
            "--credentials-out",
            str(credentials_path),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(f"{base}/_sim/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            async with session.patch(
                f"{base}/_sim/limits",
                json={"rest_per_hour": 10_000_000, "graphql_points_per_hour": 10_000_000},
            ) as response:
                response.raise_for_status()
            credentials = dict(
                line.split("=", 1) for line in credentials_path.read_text().splitlines()
            )
            token = await token_for(base, session, credentials)
        get_pull = [
            f"/repos/acme/repo-{r:03d}/pulls/{n}"
            for r in range(min(args.repos, 20))
            for n in range(1, 20)
        ]
        list_pulls = [
            f"/repos/acme/repo-{r:03d}/pulls?per_page=30" for r in range(min(args.repos, 20))
        ]
        results: dict[str, object] = {}
        # CPU seconds the sim process spent per request: a capacity figure that holds on a busy
        # machine, where wall-clock requests/s mostly measure the neighbours.
        runs = (("GET pull", get_pull, args.seconds), ("GET pulls list (30/page)", list_pulls, 3.0))
        for name, paths, seconds in runs:
            cpu_before = process_cpu_seconds(process.pid)
            measured = await hammer(base, token, paths, seconds, args.connections)
            spent = process_cpu_seconds(process.pid) - cpu_before
            cpu_ms = spent * 1000 / max(1, int(measured["requests"]))
            measured["sim_cpu_ms_per_request"] = cpu_ms
            measured["one_core_capacity_per_second"] = 1000 / cpu_ms if cpu_ms else 0.0
            results[name] = measured
        async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as session:
            from bot.queries import OPEN_PULL_REQUESTS

            started = time.perf_counter()
            pages = 0
            for r in range(min(args.repos, 20)):
                async with session.post(
                    f"{base}/graphql",
                    json={
                        "query": OPEN_PULL_REQUESTS,
                        "variables": {"owner": "acme", "name": f"repo-{r:03d}"},
                    },
                ) as response:
                    body = await response.json()
                    assert "errors" not in body, body
                    pages += 1
            results["GraphQL OpenPullRequests page (100 PRs)"] = {
                "pages": pages,
                "ms_per_page": (time.perf_counter() - started) * 1000 / pages,
            }
        with open(f"/proc/{process.pid}/status") as status:
            rss = next(line for line in status if line.startswith("VmRSS"))
        results["sim process RSS after the run"] = rss.split(":", 1)[1].strip()
        return results
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--prs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    load = load_in_child(args.repos, args.prs)
    print(
        f"load {args.prs} PRs / {args.repos} repos: {json.dumps({k: round(v, 2) for k, v in load.items()})}"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(serve_and_measure(args, Path(tmp)))
    for name, value in results.items():
        print(f"{name}: {json.dumps(value, default=str) if not isinstance(value, str) else value}")


if __name__ == "__main__":
    main()
