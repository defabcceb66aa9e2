"""A small fake agent for tests and the demo. HTTP only: it leases jobs from prsteward's job API
and acts on the sim through its control plane (``/_sim/events``). It imports nothing from
prsteward.

Behaviours (one per run, or a seeded mix):

- ``honest-fix``: pushes a fixing commit (new head SHA, then CI passes on it; for a conflict the
  push rebases onto the current base, so the PR is MERGEABLE once GitHub has recomputed; for
  review feedback it also answers in a comment, and for changes requested it re-requests review
  from whoever requested them) and reports done with the SHA;
- ``fail``: works, pushes nothing, reports failed;
- ``lie-done``: pushes nothing and reports done with most of the budget left;
- ``claim-blocked``: reports blocked, with evidence (a link);
- ``blocked-no-evidence``: reports blocked with no evidence;
- ``crash``: leases, beats once, and goes away without a report (the lease expires);
- ``mix`` (with ``seed``): one of the above per job, reproducibly.

Entry points::

    results = await run_agent(prsteward_url, token, sim_url, "honest-fix", max_jobs=1)
    python -m sim.reference_agent --prsteward http://127.0.0.1:8080 --sim http://127.0.0.1:8900 \
        --behaviour mix --seed 7 --idle-exit   # token from PRSTEWARD_AGENT_TOKEN
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

BEHAVIOURS = (
    "honest-fix",
    "fail",
    "lie-done",
    "claim-blocked",
    "blocked-no-evidence",
    "crash",
)
MIX = "mix"
AGENT_LOGIN = "prsteward-agent[bot]"

# Share of the budget each behaviour reports spending.
SPEND_SHARE = {
    "honest-fix": 0.4,
    "fail": 0.6,
    "lie-done": 0.1,
    "claim-blocked": 0.05,
    "blocked-no-evidence": 0.05,
    "crash": 0.2,
}


@dataclass
class JobResult:
    job_id: int
    repository: str
    number: int
    behaviour: str
    pushed_shas: list[str] = field(default_factory=list)
    reported: dict[str, Any] | None = None
    verdict: dict[str, Any] | None = None  # what prsteward answered to the report


class AgentError(RuntimeError):
    pass


async def _sim_event(sim: httpx.AsyncClient, **spec: Any) -> dict[str, Any]:
    response = await sim.post("/_sim/events", json=spec)
    if response.status_code >= 400:
        raise AgentError(f"sim event {spec.get('type')}: {response.status_code} {response.text}")
    return dict(response.json()["results"][0])


async def _changes_requested_by(sim: httpx.AsyncClient, repository: str, number: int) -> list[str]:
    """Who last reviewed ``repository#number`` with changes requested (the sim's state)."""
    response = await sim.get("/_sim/state", params={"repo": repository})
    if response.status_code >= 400:
        raise AgentError(f"sim state: {response.status_code} {response.text}")
    for repo in response.json().get("repositories", []):
        for pull in repo.get("pulls", []):
            if pull.get("number") == number:
                return [
                    str(review["user"])
                    for review in pull.get("latest_reviews", [])
                    if review.get("state") == "CHANGES_REQUESTED"
                ]
    return []


def choose(behaviour: str, rng: random.Random) -> str:
    if behaviour == MIX:
        return rng.choice([b for b in BEHAVIOURS if b != "crash"])
    if behaviour not in BEHAVIOURS:
        raise AgentError(f"behaviour {behaviour!r}: one of {', '.join((*BEHAVIOURS, MIX))}")
    return behaviour


def spend_for(brief: dict[str, Any], behaviour: str) -> dict[str, Any]:
    budget = brief.get("budget") or {}
    share = SPEND_SHARE[behaviour]
    tokens = int((budget.get("tokens") or 0) * share)
    return {
        "tokens_in": int(tokens * 0.8),
        "tokens_out": tokens - int(tokens * 0.8),
        "dollars": round(float(budget.get("dollars") or 0.0) * share, 4),
        "model": "reference-agent",
    }


async def work_on(
    job: dict[str, Any],
    behaviour: str,
    api: httpx.AsyncClient,
    sim: httpx.AsyncClient,
    login: str = AGENT_LOGIN,
) -> JobResult:
    """Do one leased job the way ``behaviour`` says, and report (except ``crash``)."""
    job_id = int(job["job_id"])
    repository, number = str(job["repository"]), int(job["number"])
    brief = job.get("brief") or {}
    result = JobResult(job_id, repository, number, behaviour)
    spent = spend_for(brief, behaviour)
    beat = await api.post(f"/api/jobs/{job_id}/heartbeat", json={**spent, "model": None})
    beat.raise_for_status()
    if behaviour == "crash":
        return result
    report: dict[str, Any] = {**spent, "pushed_shas": [], "blocker_evidence": []}
    kind = (brief.get("trigger") or {}).get("kind")
    if behaviour == "honest-fix":
        # A conflict is fixed by rebasing onto the base as it is now (MERGEABLE once GitHub
        # has recomputed); other fixes are a commit on top.
        pushed = await _sim_event(
            sim,
            type="push",
            repo=repository,
            pr=number,
            user=login,
            rebase=kind == "conflict",
        )
        sha = str(pushed["sha"])
        result.pushed_shas.append(sha)
        if kind in {"failing_ci", "flaky_ci", "conflict"}:
            await _sim_event(sim, type="ci", repo=repository, pr=number, conclusion="success")
        if kind in {"changes_requested", "maintainer_feedback", "manual"}:
            await _sim_event(
                sim,
                type="comment",
                repo=repository,
                pr=number,
                user=login,
                user_type="Bot",
                body="Addressed the feedback in " + sha[:7] + ".",
            )
        if kind == "changes_requested":
            reviewers = await _changes_requested_by(sim, repository, number)
            if reviewers:
                await _sim_event(
                    sim,
                    type="request_review",
                    repo=repository,
                    pr=number,
                    reviewers=reviewers,
                )
        report.update(outcome="done", pushed_shas=[sha], summary="fixed and pushed")
    elif behaviour == "fail":
        report.update(outcome="failed", summary="could not find a fix")
    elif behaviour == "lie-done":
        report.update(outcome="done", summary="all done (it is not)")
    elif behaviour == "claim-blocked":
        report.update(
            outcome="blocked",
            blocker_evidence=[f"https://example.invalid/{repository}/issues/1: needs a secret"],
            summary="blocked on a missing credential",
        )
    elif behaviour == "blocked-no-evidence":
        report.update(outcome="blocked", summary="blocked")
    response = await api.post(f"/api/jobs/{job_id}/report", json=report)
    result.reported = report
    result.verdict = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {"status": response.status_code}
    )
    return result


async def run_agent(
    prsteward_url: str,
    token: str,
    sim_url: str,
    behaviour: str = "honest-fix",
    *,
    max_jobs: int | None = None,
    idle_exit: bool = True,
    poll_interval: float = 0.5,
    seed: int = 0,
    login: str = AGENT_LOGIN,
    timeout: float = 30.0,
) -> list[JobResult]:
    """Lease and work jobs until ``max_jobs`` are done, or (``idle_exit``) none is queued."""
    rng = random.Random(seed)
    choose(behaviour, rng)  # fail early on an unknown behaviour
    results: list[JobResult] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=prsteward_url, headers=headers, timeout=timeout) as api,
        httpx.AsyncClient(base_url=sim_url, timeout=timeout) as sim,
    ):
        while max_jobs is None or len(results) < max_jobs:
            response = await api.post("/api/jobs/lease")
            if response.status_code == 401:
                raise AgentError("prsteward refused the agent token (401)")
            if response.status_code == 204:
                if idle_exit:
                    break
                await asyncio.sleep(poll_interval)
                continue
            response.raise_for_status()
            job = response.json()
            results.append(await work_on(job, choose(behaviour, rng), api, sim, login))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.reference_agent", description=__doc__)
    parser.add_argument("--prsteward", required=True, help="prsteward's base URL")
    parser.add_argument("--sim", required=True, help="the sim's base URL")
    parser.add_argument("--behaviour", default="honest-fix", choices=(*BEHAVIOURS, MIX))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-jobs", type=int, default=None)
    parser.add_argument("--idle-exit", action="store_true", help="stop when nothing is queued")
    parser.add_argument("--login", default=AGENT_LOGIN, help="who pushes and comments in the sim")
    args = parser.parse_args(argv)
    token = os.environ.get("PRSTEWARD_AGENT_TOKEN", "")
    if not token:
        print("set PRSTEWARD_AGENT_TOKEN (from `prsteward agents add NAME`)", file=sys.stderr)  # noqa: T201
        return 2
    try:
        results = asyncio.run(
            run_agent(
                args.prsteward,
                token,
                args.sim,
                args.behaviour,
                max_jobs=args.max_jobs,
                idle_exit=args.idle_exit,
                seed=args.seed,
                login=args.login,
            )
        )
    except (AgentError, httpx.HTTPError) as error:
        print(f"reference agent: {error}", file=sys.stderr)  # noqa: T201
        return 1
    for result in results:
        print(json.dumps(asdict(result), sort_keys=True))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
