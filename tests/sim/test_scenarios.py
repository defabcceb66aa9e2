"""Scenario files, the generator (mix, determinism, same-shape families) and `prsteward sim`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.generate import GenerateSpec, different_code_controls, generate, same_shape_family
from sim.scenario import ScenarioError, read_scenario
from tests.sim.helpers import SMALL_SCENARIO, installation_client

Factory = Callable[..., Awaitable[Any]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repos=100,prs=10000,seed=1", GenerateSpec(repos=100, prs=10000, seed=1)),
        ("prs=5", GenerateSpec(prs=5)),
        (
            "repos=2,prs=40,families=1,account=org",
            GenerateSpec(repos=2, prs=40, families=1, account="org"),
        ),
    ],
    ids=["issue example -> parsed", "one key -> defaults", "families and account -> parsed"],
)
def test_generate_spec_parses(text: str, expected: GenerateSpec) -> None:
    assert GenerateSpec.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["repos", "colour=red", "repos=0", "prs=x"],
    ids=["no value", "unknown key", "zero repos", "not a number"],
)
def test_generate_spec_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        GenerateSpec.parse(text)


def kind_of(pull: dict[str, Any]) -> str:
    if pull.get("draft"):
        return "draft"
    if pull["author"].endswith("[bot]"):
        return "bot"
    if pull.get("closes"):
        return "closed_issue"
    if pull.get("flaky"):
        return "flaky_ci"
    if "failure" in pull.get("checks", {}).values():
        return "failing_ci"
    if pull.get("mergeable") == "CONFLICTING":
        return "conflict"
    if pull.get("comments"):
        return "maintainer_feedback"
    if pull.get("reviews"):
        return pull["reviews"][0]["state"].lower()
    if pull["created"].endswith("d") and int(pull["created"][1:-1]) > 100:
        return "zombie"
    return "clean"


def test_generated_mix_is_realistic_and_deterministic() -> None:
    scenario = generate(GenerateSpec(repos=20, prs=4000, seed=7))
    again = generate(GenerateSpec(repos=20, prs=4000, seed=7))
    other = generate(GenerateSpec(repos=20, prs=4000, seed=8))
    assert scenario == again and scenario != other
    pulls = [
        p for inst in scenario["installations"] for r in inst["repositories"] for p in r["pulls"]
    ]
    assert len(pulls) == 4000
    shares = {kind: count / len(pulls) for kind, count in Counter(map(kind_of, pulls)).items()}
    expected = {
        "clean": 0.28,
        "approved": 0.04,
        "failing_ci": 0.12,
        "flaky_ci": 0.06,
        "conflict": 0.08,
        "changes_requested": 0.10,
        "maintainer_feedback": 0.08,
        "draft": 0.08,
        "zombie": 0.08,
        "closed_issue": 0.04,
        "bot": 0.06,
    }
    assert set(shares) == set(expected)
    for kind, share in expected.items():
        assert abs(shares[kind] - share) < 0.025, (kind, shares[kind])


async def test_a_generated_organisation_serves_every_pr(sim_factory: Factory) -> None:
    server = await sim_factory(generate(GenerateSpec(repos=3, prs=300, seed=1, installations=2)))
    assert server.installation_ids == [1, 2]
    total = 0
    for installation in (1, 2):
        async with installation_client(server, installation) as gh:
            repos = (await gh.get("/installation/repositories")).json()["repositories"]
            for repo in repos:
                query = "query($o: String!, $n: String!) { repository(owner: $o, name: $n) { pullRequests(states: OPEN, first: 1) { totalCount } } }"
                answer = await gh.post(
                    "/graphql",
                    json={
                        "query": query,
                        "variables": {"o": repo["owner"]["login"], "n": repo["name"]},
                    },
                )
                total += answer.json()["data"]["repository"]["pullRequests"]["totalCount"]
    assert total == 300


async def test_same_shape_family_serves_files_with_patches(sim_factory: Factory) -> None:
    family = same_shape_family(1, count=20, first_counter=85)
    assert [p["title"][:4] for p in (family[0], family[-1])] == ["S085", "S104"]
    controls = different_code_controls(21, count=20)
    scenario = {
        "installations": [
            {
                "id": 1,
                "account": "acme",
                "repositories": [{"name": "lane", "pulls": family + controls}],
            }
        ]
    }
    server = await sim_factory(scenario)
    async with installation_client(server) as gh:
        files = (await gh.get("/repos/acme/lane/pulls/2/files")).json()
        control_files = (await gh.get("/repos/acme/lane/pulls/21/files")).json()
    assert [f["filename"] for f in files] == ["app/routes/actions.py", "app/dashboard/panels.py"]
    assert "readiness_bridge_live_source_086_review_ack" in files[0]["patch"]
    assert files[0]["changes"] == files[0]["additions"] + files[0]["deletions"]
    assert control_files[0]["filename"] == "app/routes/actions.py"
    assert "review_ack" not in control_files[0]["patch"]


def test_scenario_errors_say_where(tmp_path: Path) -> None:
    from sim.core import Simulator
    from sim.scenario import load

    sim = Simulator()
    sim.add_app(1, "unused", "secret")
    broken = {
        "installations": [
            {
                "id": 1,
                "account": "acme",
                "repositories": [{"name": "r", "pulls": [{"number": 1, "mergeable": "maybe"}]}],
            }
        ]
    }
    with pytest.raises(
        ScenarioError, match=r"installations\[0\]\.repositories\[0\]\.pulls\[0\]\.mergeable"
    ):
        load(sim, broken)
    path = tmp_path / "list.yml"
    path.write_text("- not a mapping\n")
    with pytest.raises(ScenarioError, match="a scenario is a mapping"):
        read_scenario(path)


def test_shipped_scenarios_load() -> None:
    from sim.runner import SimConfig, build_simulator

    for path in sorted((Path(__file__).resolve().parents[2] / "sim" / "scenarios").glob("*.yml")):
        sim, _ = build_simulator(SimConfig(scenario=read_scenario(path), private_key_pem=None))
        assert sim.state.repos, path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_prsteward_sim_command_serves_and_writes_credentials(tmp_path: Path) -> None:
    port = free_port()
    credentials = tmp_path / "sim-credentials.env"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "sim",
            "--port",
            str(port),
            "--scenario",
            str(SMALL_SCENARIO),
            "--credentials-out",
            str(credentials),
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        health = None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    health = (await client.get("/_sim/health")).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        assert health is not None and health["ok"] is True
        lines = dict(line.split("=", 1) for line in credentials.read_text().splitlines())
        assert lines["PRSTEWARD_APP_ID"] == str(health["app_id"])
        assert lines["PRSTEWARD_GITHUB_API_URL"] == f"http://127.0.0.1:{port}"
        assert (
            Path(lines["PRSTEWARD_PRIVATE_KEY_PATH"])
            .read_text()
            .startswith("-----BEGIN PRIVATE KEY-----")
        )
        assert len(lines["PRSTEWARD_WEBHOOK_SECRET"]) >= 20
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert b"2 repositories, 13 pull requests loaded" in output
