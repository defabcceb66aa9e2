"""`python -m bench --small` keeps every benchmark working: each one must produce its figures.

Timings are never asserted here (they depend on the machine); only that each benchmark ran and
measured what it is meant to measure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-small")
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--small", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert (out / "benchmarks.md").read_text().startswith("# Benchmarks")
    data: dict[str, Any] = json.loads((out / "benchmarks.json").read_text())
    return data


pytestmark = pytest.mark.slow


def bench(report: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = report["benchmarks"][name]
    assert result["error"] is None, result["error"]
    assert result["rows"], f"{name} produced no table rows"
    return result


def test_machine_is_recorded(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert machine["nproc"] and machine["memory_mb"] and machine["cpu_model"]
    assert machine["date"] and machine["commit"]


def test_api_cost_measures_prsteward_naive_and_floor(report: dict[str, Any]) -> None:
    figures = bench(report, "api_cost")["figures"]
    [size] = [value for key, value in figures.items() if key.isdigit()]
    phases = size["prsteward"]["phases"]
    for phase in ("first", "quiet", "full", "after_full", "quiet_again"):
        assert phases[phase]["sim"]["requests"] > 0, phase
        assert phases[phase]["cpu_seconds"] > 0, phase
    assert phases["full"]["reconciler"]["read"] == size["open_prs"]
    assert size["naive"]["requests"] > size["open_prs"]
    assert size["floor_requests"] >= 1
    assert size["prsteward"]["peak_rss_mb"] > 0 and size["sim_load_seconds"] > 0
    assert "error" not in figures["reconcile_profile_seconds"]


def test_policies_cpu_is_measured_on_synthetic_and_reconciled_snapshots(
    report: dict[str, Any],
) -> None:
    figures = bench(report, "policies")["figures"]
    assert figures["synthetic"]["snapshots"] > 0 and figures["synthetic"]["cpu_seconds"] >= 0
    assert figures["reconciled"]["snapshots"] > 0


def test_sim_rest_throughput_is_measured(report: dict[str, Any]) -> None:
    figures = bench(report, "sim_rest")["figures"]
    assert figures["requests"] > 0 and figures["rate"] > 0


def test_ingest_is_measured_on_both_backends(report: dict[str, Any]) -> None:
    figures = bench(report, "ingest")["figures"]
    for backend in ("ack_only", "sqlite", "postgresql"):
        runs = figures[backend]
        if backend == "postgresql" and "skipped" in runs:
            if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                pytest.fail(runs["skipped"])
            continue
        run = runs["8"]
        assert run["ok"] > 0 and run["p99_ms"] is not None, backend
        if backend != "ack_only":
            assert run["stored"] >= run["ok"], "an acknowledged delivery was not stored"


def test_escalation_replay_counts_what_the_loop_did(report: dict[str, Any]) -> None:
    figures = bench(report, "escalation")["figures"]
    assert figures["candidates_recorded"] > 0
    assert figures["distinct_pr_fingerprints"] > 0 and figures["agent_runs"] > 0
    for key in ("duplicate_comments", "tokens_on_prs_without_trigger", "lies_told"):
        assert isinstance(figures[key], int), key


def test_families_replay_compares_on_and_off(report: dict[str, Any]) -> None:
    figures = bench(report, "families")["figures"]
    assert figures["off"]["escalations"] == figures["arrivals"]  # off: every member escalates
    assert figures["on"]["escalations"] < figures["off"]["escalations"]
    assert figures["on"]["tokens_not_spent"] > 0


def test_recovery_after_an_outage_is_measured_on_both_backends(report: dict[str, Any]) -> None:
    figures = bench(report, "recovery")["figures"]
    for backend in ("sqlite", "postgresql"):
        run = figures[backend]
        if backend == "postgresql" and "skipped" in run:
            if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                pytest.fail(run["skipped"])
            continue
        assert run["failed_deliveries"] == run["events"] > 0, backend
        assert run["processed_seconds"] is not None, f"{backend}: not recovered"
        assert run["stored"] == run["expected_events"], backend
        assert run["missing_from_inbox"] == 0 and run["asked_more_than_once"] == 0, backend
        assert run["recovery_pass"] and run["recovery_pass"]["requested"] == run["events"]
        requests = run["requests_by_endpoint"]
        assert requests["POST /app/hook/deliveries/{delivery_id}/attempts"] == run["events"]
        assert requests["GET /app/hook/deliveries"] >= 1
        second = run["second_pass"]
        assert second["exit_status"] == 0
        assert (
            "POST /app/hook/deliveries/{delivery_id}/attempts" not in second["requests_by_endpoint"]
        )


def test_webhook_latency_is_measured_on_both_backends(report: dict[str, Any]) -> None:
    result = bench(report, "webhook_latency")
    figures = result["figures"]
    for backend in ("sqlite", "postgresql"):
        run = figures[backend]
        if backend == "postgresql" and "skipped" in run:
            if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                pytest.fail(run["skipped"])
            continue
        assert run["events"] > 0 and run["never_arrived"] == 0, backend
        assert run["all"]["count"] == run["events"], backend
        for key in ("p50_ms", "p99_ms", "max_ms"):
            assert isinstance(run["all"][key], float), (backend, key)
        for kind, spread in run["by_kind"].items():
            assert spread["count"] == run["events"] // 4, (backend, kind)
        assert run["seen_as"]["webhook"] > 0, backend
        inside = run["inside_serve"]
        assert inside["by_state"].get("processed") == inside["deliveries"] >= run["events"]
        assert run["sim_deliveries_not_ok"] == 0, backend
    assert any(row["metric"].startswith("sqlite, ") for row in result["rows"])
