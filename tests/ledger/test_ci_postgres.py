"""With CI=true an unreachable PostgreSQL fails the PostgreSQL tests; outside CI they skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://postgres@127.0.0.1:9/test"  # port 9 (discard): refused at once
ONE_POSTGRES_TEST = "tests/ledger/test_migrations.py::test_upgrade_twice_is_a_no_op[postgres]"


def _pytest(ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": ci, "PRSTEWARD_TEST_POSTGRES_URL": UNREACHABLE}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_POSTGRES_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_unreachable_postgres_fails_in_ci() -> None:
    result = _pytest("true")

    assert result.returncode == 1, result.stdout
    assert "CI=true: PostgreSQL tests must run" in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout


def test_unreachable_postgres_skips_outside_ci_saying_why() -> None:
    result = _pytest("")

    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "is not reachable" in result.stdout
