"""`prsteward demo --no-serve --fast`: the whole loop against the sim, from the command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from ledger.db import Ledger
from ledger.reporting import gather_report
from tests.view.fill import NOW


def test_demo_no_serve_fast_exits_0_with_non_zero_tiers(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRSTEWARD_")}
    env["COLUMNS"] = "160"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "demo",
            "--no-serve",
            "--fast",
            "--port",
            "0",
            "--folder",
            str(folder),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    out = completed.stdout
    assert "Queue by tier" in out and "acme/repo-000" in out
    assert "exited: --no-serve" in out

    async def figures() -> tuple[dict[str, int], int, int]:
        async with Ledger(f"sqlite+aiosqlite:///{folder / 'ledger.db'}") as db:
            report = await gather_report(db, NOW)
            return (
                report.tiers_total(),
                report.candidates.proposed,
                sum(report.jobs_by_state.values()),
            )

    tiers, proposed, jobs = asyncio.run(figures())
    assert sum(tiers.values()) > 0 and "unknown" not in tiers, tiers
    assert len([t for t, n in tiers.items() if n > 0]) >= 2, tiers
    assert proposed > 0  # the engine decided and recorded candidates
    assert jobs > 0  # escalations were opened, and the reference agent worked them
