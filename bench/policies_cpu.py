"""Issue 5's target: evaluating 10,000 PR snapshots with their histories takes < 1 s of CPU.

Two measurements, each in a process of its own, CPU time of the decide() calls only:
- ``bench/policies_bench.py`` (the policies engineer's: 10,000 varied synthetic snapshots);
- ``bench.policies_real``: the snapshots prsteward's reconciler stored from the sim's generated
  organisation in the API-cost benchmark, with synthetic histories.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.common import ROOT, Result, below, rounded, say, start_child

TARGET_CPU_PER_10000 = 1.0
LINE = re.compile(r"decide\(\) x (\d+): ([0-9.]+) s CPU")


async def run(workdir: Path, *, small: bool) -> Result:
    result = Result(
        "policies",
        "Policies CPU",
        "policies.triage.decide over snapshots with histories, in a process of its own",
    )
    count = 500 if small else 10_000
    say(f"policies: bench/policies_bench.py {count}")
    child = await start_child(
        [sys.executable, str(ROOT / "bench" / "policies_bench.py"), str(count)],
        wait_for_json=False,
        timeout=600,
    )
    assert child.process.stdout is not None
    output = (await child.process.stdout.read()).decode()
    await child.process.wait()
    match = LINE.search(output)
    if match:
        n, cpu = int(match.group(1)), float(match.group(2))
        per_10000 = cpu * 10_000 / n
        result.figures["synthetic"] = {"snapshots": n, "cpu_seconds": cpu, "output": output.strip()}
        result.row(
            f"decide() on {n:,} synthetic snapshots + histories (bench/policies_bench.py)",
            rounded(per_10000, 3),
            target=f"< {TARGET_CPU_PER_10000} s per 10,000",
            ok=below(per_10000, TARGET_CPU_PER_10000),
            unit="s",
            note=f"{rounded(cpu, 3)} s CPU for {n:,}",
        )
    else:
        result.figures["synthetic"] = {"error": output[-500:]}
        result.row("decide() on synthetic snapshots", None, note="no figure: " + output[-200:])
    snapshots = workdir / "snapshots.jsonl"
    if snapshots.exists():
        say("policies: decide() over the reconciled snapshots")
        real = await start_child(
            ["-m", "bench.policies_real", "--snapshots", str(snapshots)], timeout=600
        )
        await real.stop()
        data = real.hello
        result.figures["reconciled"] = data
        n = int(data["snapshots"])
        real_per_10000 = data["cpu_seconds"] * 10_000 / n if n else None
        result.row(
            f"decide() on {n:,} reconciled sim snapshots + histories",
            rounded(real_per_10000, 3),
            target=f"< {TARGET_CPU_PER_10000} s per 10,000",
            ok=below(real_per_10000, TARGET_CPU_PER_10000),
            unit="s",
            note=f"{rounded(data['cpu_seconds'], 3)} s CPU for {n:,}; "
            f"{data['escalations_proposed']} escalations proposed",
        )
    else:
        result.row("decide() on reconciled snapshots", None, note="run api_cost first")
    return result
