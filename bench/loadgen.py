"""A load generator for signed webhook deliveries, in a process of its own.

``python -m bench.loadgen --url URL --body FILE --secret S --connections 8 --seconds 8`` keeps
``connections`` requests in flight (closed loop, like wrk), each with a fresh
``X-GitHub-Delivery``, and prints one JSON line: requests, errors, statuses, deliveries/s and
latency percentiles in ms. ``wrk_run`` drives Debian's ``wrk`` the same way when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pct(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))]


async def run(
    url: str,
    body: bytes,
    secret: str,
    event: str,
    connections: int,
    seconds: float,
    warmup: float,
    rate: float | None = None,
) -> dict[str, Any]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": signature(secret, body),
        "User-Agent": "GitHub-Hookshot/bench",
    }
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    prefix = uuid.uuid4().hex[:8]
    counter = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        measuring = False
        stop_at = time.perf_counter() + warmup + seconds
        start_measure = time.perf_counter() + warmup
        measured_started = 0.0
        next_slot = 0.0  # with ``rate``: one schedule shared by all connections (see WRK_SCRIPT)

        async def worker() -> None:
            nonlocal counter, errors, measuring, measured_started, next_slot
            while True:
                if rate:
                    now = time.perf_counter()
                    slot = max(next_slot, now)
                    next_slot = slot + 1 / rate
                    await asyncio.sleep(slot - now)
                now = time.perf_counter()
                if now >= stop_at:
                    return
                if not measuring and now >= start_measure:
                    measuring = True
                    measured_started = now
                counter += 1
                delivery = f"{prefix}-{counter}"
                began = time.perf_counter()
                try:
                    async with session.post(
                        url, data=body, headers={**headers, "X-GitHub-Delivery": delivery}
                    ) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    if measuring:
                        errors += 1
                    continue
                if measuring:
                    latencies.append((time.perf_counter() - began) * 1000)
                    statuses[str(status)] += 1
                    if status >= 300:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = max(1e-9, time.perf_counter() - (measured_started or start_measure))
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    return {
        "tool": "bench.loadgen (aiohttp)",
        "connections": connections,
        "seconds": elapsed,
        "requests": len(latencies),
        "ok": ok,
        "errors": errors,
        "statuses": dict(statuses),
        "rate": ok / elapsed,
        "p50_ms": pct(latencies, 0.50),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": max(latencies) if latencies else None,
    }


WRK_SCRIPT = """
local counter = 0
local threads = {}
local body_file = io.open(os.getenv("BENCH_BODY"), "rb")
local body = body_file:read("*a")
body_file:close()
local event = os.getenv("BENCH_EVENT")
local sig = os.getenv("BENCH_SIGNATURE")
local prefix = os.getenv("BENCH_PREFIX")
local id = 0
local thread_rate = tonumber(os.getenv("BENCH_THREAD_RATE") or "0")
if thread_rate > 0 then
  -- A schedule per thread: request k of this thread goes at start + k / thread_rate, on
  -- whichever of its connections is free, so the offered rate does not depend on how long the
  -- answers take (a fixed delay per connection would). When the server falls behind, the
  -- schedule restarts from now rather than bursting to catch up; the achieved rate says so.
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval_ms = 1000 / thread_rate
  local next_slot = nil
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now then next_slot = now end
    local wait = next_slot - now
    next_slot = next_slot + interval_ms
    return wait
  end
end

function setup(thread)
  id = id + 1
  thread:set("tid", id)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = event
  wrk.headers["X-Hub-Signature-256"] = sig
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
  statuses = {}
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. "-" .. tid .. "-" .. counter
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for k, v in pairs(s) do merged[k] = (merged[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(merged) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
    .. '"statuses": {%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ", ")))
end
"""


def wrk_available() -> bool:
    """Debian's wrk is on PATH (``PRSTEWARD_BENCH_NO_WRK=1`` forces the aiohttp generator)."""
    if os.environ.get("PRSTEWARD_BENCH_NO_WRK", "") not in ("", "0"):
        return False
    return shutil.which("wrk") is not None


def wrk_run(
    url: str,
    body_path: Path,
    secret: str,
    event: str,
    connections: int,
    seconds: float,
    workdir: Path,
    cpus: set[int] | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    """One wrk run (2 threads); the same JSON shape as the Python generator. ``rate``: offer
    about ``rate`` requests/s on a schedule (see WRK_SCRIPT), whatever the answers take."""
    script = workdir / "webhook.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        "wrk",
        "-t",
        str(min(2, connections)),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    if cpus:
        command = ["taskset", "-c", ",".join(str(c) for c in sorted(cpus)), *command]
    env = {
        "BENCH_BODY": str(body_path),
        "BENCH_EVENT": event,
        "BENCH_SIGNATURE": signature(secret, body_path.read_bytes()),
        "BENCH_PREFIX": uuid.uuid4().hex[:8],
        "BENCH_THREAD_RATE": str(rate / min(2, connections)) if rate else "0",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    output = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=True
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("{"))
    data = json.loads(line)
    duration = data["duration_us"] / 1e6
    statuses = {str(k): int(v) for k, v in data["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    errors = sum(data["errors"].values())
    return {
        "tool": "wrk",
        "connections": connections,
        "seconds": duration,
        "requests": data["requests"],
        "ok": ok,
        "errors": errors,
        "statuses": statuses,
        "rate": ok / duration if duration else 0.0,
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "max_ms": data["max_us"] / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--event", default="pull_request")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=None, help="pace to about this many/s")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            args.url,
            args.body.read_bytes(),
            args.secret,
            args.event,
            args.connections,
            args.seconds,
            args.warmup,
            args.rate,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
