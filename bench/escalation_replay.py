"""Benchmark 3: the escalation economy on a noisy replay, through prsteward's real loop.

In one process (these are counts, not timings): the sim with a scripted repository, prsteward's
webhook server (bot/server.py) receiving the sim's signed deliveries with redeliveries, the
Reconciler, the Engine (policies.triage.decide + ledger candidates), the Executor writing to the
sim (act mode), escalation jobs (bot/escalation.py) with the job API (bot/jobs_api.py), and the
reference agent (sim/reference_agent.py) working the jobs with a rotation of behaviours that
includes lying ("done" with nothing pushed), failing, crashing and honest fixes. The sim's clock
moves in steps over the replayed days; every step is: scripted events, clock advance, webhooks
drained and processed, one reconcile cycle, evaluation, agents, escalation housekeeping.

Counted at the end from the ledger and the sim: candidates proposed / performed / suppressed by
reason; escalation jobs per distinct (PR, trigger fingerprint) and their attempts; duplicate
comments (the App's comments carrying the same idempotency key, or a second sticky comment);
model tokens spent on PRs that never had a trigger.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import Result, Stopwatch, say

SHORT = "acme/replay"
AGENT_ROTATION = ("lie-done", "fail", "honest-fix", "lie-done", "crash", "claim-blocked")
CONFIG_FILE = (
    "mode: act\n"
    "flaky-check-patterns: ['e2e*']\n"
    "maintainers: [alice, bob]\n"
    "app-logins: [prsteward]\n"
)
# Which PRs must never cost a token, by design (the run also checks what the policies said).
NO_TRIGGER_BY_DESIGN = {1, 2, 9}


def replay_scenario() -> dict[str, Any]:
    green = {"build": "success", "test": "success"}
    pulls: list[dict[str, Any]] = [
        {"number": 1, "title": "Clean, waiting for review", "author": "dana", "checks": green},
        {"number": 2, "title": "Bot chatter only", "author": "erin", "checks": green},
        {
            "number": 3,
            "title": "Flaky e2e",
            "author": "fay",
            "checks": {"build": "success", "e2e-browser": "failure"},
            "flaky": ["e2e-browser"],
        },
        {"number": 4, "title": "Failing test", "author": "gus", "checks": {"test": "failure"}},
        {
            "number": 5,
            "title": "Fails again and again",
            "author": "hal",
            "checks": {"build": "failure"},
        },
        {"number": 6, "title": "Will conflict", "author": "ivy", "checks": green},
        {"number": 7, "title": "Changes requested", "author": "jon", "checks": green},
        {"number": 8, "title": "Maintainer feedback", "author": "kim", "checks": green},
        {"number": 9, "title": "Drive-by comments", "author": "lea", "checks": green},
    ]
    for pull in pulls:
        pull.setdefault("created", "-2d")
        pull.setdefault("updated", "-1h")
        pull.setdefault("body", "Fixes a thing.")
    return {
        "installations": [
            {
                "id": 1,
                "account": "acme",
                "repositories": [
                    {
                        "name": "replay",
                        "collaborators": {"alice": "admin", "bob": "write"},
                        "labels": ["bug"],
                        "files": {".github/prsteward.yml": CONFIG_FILE},
                        "pulls": pulls,
                    }
                ],
            }
        ]
    }


def scripted(days: int) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """(day, hour) -> events, each with the sim's event spec."""
    plan: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    repo = {"repo": SHORT}

    def at(day: int, hour: int, *events: dict[str, Any]) -> None:
        if day < days:
            plan[(day, hour)].extend({**repo, **e} for e in events)

    bot = {"user_type": "Bot"}
    at(0, 2, {"type": "comment", "pr": 2, "user": "dependabot[bot]", "body": "Rebased.", **bot})
    at(
        0,
        4,
        {
            "type": "review",
            "pr": 7,
            "user": "alice",
            "state": "CHANGES_REQUESTED",
            "body": "Add tests.",
        },
    )
    at(0, 6, {"type": "comment", "pr": 9, "user": "drive-by", "body": "Any update? +1"})
    at(1, 2, {"type": "comment", "pr": 8, "user": "alice", "body": "Please split this PR."})
    at(1, 4, {"type": "base_moved", "conflicts": [6]})
    at(1, 6, {"type": "comment", "pr": 2, "user": "prsteward[bot]", "body": "status", **bot})
    for day in range(days):
        # the author keeps pushing and the same build keeps failing
        at(day, 10, {"type": "push", "pr": 5, "checks": ["build"]})
        at(day, 12, {"type": "ci", "pr": 5, "checks": ["build"], "conclusion": "failure"})
        at(day, 14, {"type": "comment", "pr": 2, "user": "renovate[bot]", "body": "Update.", **bot})
    at(2, 8, {"type": "push", "pr": 4, "checks": ["test"]})
    at(2, 10, {"type": "ci", "pr": 4, "checks": ["test"], "conclusion": "failure"})
    at(3, 8, {"type": "push", "pr": 3, "checks": ["build", "e2e-browser"]})
    at(3, 10, {"type": "ci", "pr": 3, "checks": ["build"], "conclusion": "success"})
    at(
        3,
        10,
        {"type": "ci", "pr": 3, "checks": ["e2e-browser"], "conclusion": "failure", "flaky": True},
    )
    at(4, 2, {"type": "comment", "pr": 8, "user": "alice", "body": "Also rename the flag."})
    at(
        4,
        8,
        {"type": "comment", "pr": 9, "user": "someone-else", "body": "LGTM (not a maintainer)"},
    )
    at(5, 2, {"type": "comment", "pr": 9, "user": "dependabot[bot]", "body": "Ping.", **bot})
    at(5, 4, {"type": "comment", "pr": 1, "user": "app/prsteward", "body": "noise", **bot})
    at(6, 2, {"type": "push", "pr": 4, "checks": ["test"]})
    at(6, 4, {"type": "ci", "pr": 4, "checks": ["test"], "conclusion": "failure"})
    return plan


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class _Fake:
    """A monotonic clock for the write pacer whose sleep only moves it (no real waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def _inbox_idle(db: Any, timeout: float = 15.0) -> None:
    from ledger import inbox
    from ledger.models import DeliveryState

    for _ in range(int(timeout / 0.05)):
        counts = await inbox.count_by_state(db)
        if not counts.get(DeliveryState.PENDING) and not counts.get(DeliveryState.PROCESSING):
            return
        await asyncio.sleep(0.05)


async def replay(workdir: Path, *, days: int, step_hours: int) -> dict[str, Any]:
    from bot.config_loader import ConfigLoader
    from bot.engine import Engine
    from bot.escalation import Escalations, github_reader, open_job
    from bot.executor import Actions, Executor, GitHubActions, WritePacer
    from bot.github import GitHubApp
    from bot.jobs_api import JobsApi
    from bot.reconcile import Reconciler
    from bot.server import Server
    from ledger import agents as agent_store
    from ledger.db import Ledger
    from ledger.migrate import upgrade_async
    from policies.config import Config
    from policies.snapshot import PullRequestSnapshot
    from policies.triage import Candidate, Decision
    from sim.reference_agent import run_agent
    from sim.runner import SimConfig, SimServer

    secret = secrets.token_hex(16)
    sim = SimServer(SimConfig(scenario=replay_scenario(), webhook_secret=secret))
    await sim.start()
    database = workdir / "replay.db"
    for stale in workdir.glob("replay.db*"):
        stale.unlink()
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade_async(url)
    db = Ledger(url)

    def clock() -> datetime:
        now: datetime = sim.sim.clock.now()
        return now

    app = GitHubApp(app_id=sim.app_id, private_key=sim.private_key_pem, api_url=sim.base_url)
    reconciler = Reconciler(app, db, clock=clock)
    loader = ConfigLoader(app, db, clock=clock)
    configs: dict[str, Config] = {}

    def config_for(repository: str) -> Config:
        return configs.get(repository) or Config.model_validate(
            {"mode": "act", "maintainers": ["alice", "bob"], "flaky_check_patterns": ["e2e*"]}
        )

    escalations = Escalations(
        db, read_pull=github_reader(app, db), config_for=config_for, clock=clock
    )

    async def escalate(
        db: Ledger,
        *,
        candidate_id: int,
        decision: Decision,
        candidate: Candidate,
        snapshot: PullRequestSnapshot,
        now: datetime,
    ) -> int | None:
        return await open_job(
            db,
            decision,
            candidate,
            snapshot,
            now,
            config=config_for(decision.repository),
            candidate_id=candidate_id,
        )

    def actions_for(installation_id: int, config: Config) -> Actions:
        configs[SHORT] = config
        return GitHubActions(app.installation(installation_id), config.app_logins)

    pacer_time = _Fake()
    executor = Executor(
        db,
        actions_for,
        pacer=WritePacer(clock=pacer_time, sleep=pacer_time.sleep),
        clock=clock,
        escalate=escalate,
    )
    engine = Engine(db, executor, loader, clock=clock)
    webhooks = Server(db, webhook_secret=secret, typed_parse=False, idle_poll_seconds=0.05)
    jobs_app = web.Application()
    JobsApi(escalations).add_routes(jobs_app)

    agent_results: list[dict[str, Any]] = []
    triggers_seen: dict[int, set[str]] = defaultdict(set)
    plan = scripted(days)
    steps = days * 24 // step_hours
    try:
        async with webhooks.running() as hook_url, serving(jobs_app) as jobs_url:
            await sim.control.configure_webhook(url=f"{hook_url}/webhooks", duplicate_rate=0.25)
            _agent, token = await agent_store.add_agent(db, "replay-agent", clock())
            await reconciler.discover()
            rotation = 0
            evaluations = 0
            for step in range(steps):
                day, hour = divmod(step * step_hours, 24)
                due = [e for h in range(hour, hour + step_hours) for e in plan.get((day, h), [])]
                if due:
                    await sim.control.events(due)
                await sim.control.advance(step_hours * 3600)
                await sim.control.drain_webhooks()
                await _inbox_idle(db)
                results = await reconciler.run_cycle(full=step == 0)
                evaluated = await engine.after_reconcile(results)
                evaluations += len(evaluated)
                for evaluation in evaluated:
                    for trigger in evaluation.decision.triggers:
                        triggers_seen[evaluation.number].add(
                            f"{trigger.kind.value}:{trigger.fingerprint}"
                        )
                # agents work what was queued, one job at a time, rotating behaviours
                for _ in range(10):
                    behaviour = AGENT_ROTATION[rotation % len(AGENT_ROTATION)]
                    done = await run_agent(
                        jobs_url, token, sim.base_url, behaviour, max_jobs=1, timeout=30
                    )
                    if not done:
                        break
                    rotation += 1
                    agent_results += [asdict(r) for r in done]
                await sim.control.drain_webhooks()
                await _inbox_idle(db)
                await escalations.tick()
                if step % max(1, steps // 7) == 0:
                    say(f"escalation: step {step + 1}/{steps} (day {day}, {hour:02d}:00)")
            if evaluations == 0:
                raise RuntimeError("the engine evaluated nothing (see its log): no loop to count")
            figures = await count(db, sim, triggers_seen, agent_results, config_for(SHORT))
            figures["evaluations"] = evaluations
            figures["steps"] = steps
            figures["days"] = days
            figures["step_hours"] = step_hours
            figures["webhooks"] = (await sim.control.accounting()).get("webhooks", {})
            return figures
    finally:
        await sim.stop()
        await db.close()


async def count(
    db: Any,
    sim: Any,
    triggers_seen: dict[int, set[str]],
    agent_results: list[dict[str, Any]],
    config: Any,
) -> dict[str, Any]:
    from sqlalchemy import text

    from ledger import candidates as ledger_candidates
    from ledger import jobs as job_store
    from ledger import pulls

    outcomes: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    pull_ids: dict[int, int] = {}
    notable: list[str] = []
    escalate_keys: dict[str, set[str]] = defaultdict(set)
    for number in range(1, 10):
        row = await pulls.get_pull(db, SHORT, number)
        if row is None or row.id is None:
            continue
        pull_ids[number] = row.id
        for candidate in await ledger_candidates.list_candidates(db, row.id):
            outcomes[candidate.outcome] += 1
            by_kind[candidate.kind][candidate.outcome] += 1
            if candidate.kind == "escalate":
                escalate_keys[candidate.dedupe_key].add(candidate.outcome)
            if candidate.outcome not in {"posted", "escalated"}:
                notable.append(
                    f"#{number} {candidate.kind} {candidate.outcome}: "
                    f"{(candidate.outcome_reason or '')[:160]}"
                )
    jobs = await job_store.list_jobs(db, repository=SHORT)
    groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for job_row in jobs:
        groups[(job_row.number, job_row.job.trigger_fingerprint)].append(job_row.job)
    max_attempts = max(1, config.stop_loss.max_attempts_per_trigger)
    per_key = {
        f"#{number} {fingerprint[:12]}": {
            "jobs": len(group),
            "first_attempts": sum(1 for j in group if j.attempt == 1),
            "max_attempt": max(j.attempt for j in group),
            "states": [j.state for j in group],
            "trigger_kind": group[0].trigger_kind,
        }
        for (number, fingerprint), group in groups.items()
    }
    exactly_one = all(
        v["first_attempts"] == 1 and v["max_attempt"] <= max_attempts for v in per_key.values()
    )
    over = sum(
        1 for v in per_key.values() if v["first_attempts"] > 1 or v["max_attempt"] > max_attempts
    )
    never = sorted(k for k, outcomes in escalate_keys.items() if "escalated" not in outcomes)
    # duplicate comments: the App's comments on each PR, by idempotency key and sticky marker
    state = sim.sim.state
    repo = state.repo("acme", "replay")
    import re

    marker = re.compile(r"<!-- prsteward:key=(.+?) -->")
    duplicates = 0
    app_comments = 0
    sticky_per_pr: Counter[int] = Counter()
    keys: Counter[tuple[int, str]] = Counter()
    for comment in repo.comments.values():
        if comment.user != sim.sim.bot_login:
            continue
        app_comments += 1
        if "<!-- prsteward:status -->" in comment.body:
            sticky_per_pr[comment.issue_number] += 1
        for key in marker.findall(comment.body):
            keys[(comment.issue_number, key)] += 1
    duplicates += sum(n - 1 for n in keys.values() if n > 1)
    duplicates += sum(n - 1 for n in sticky_per_pr.values() if n > 1)
    # tokens by PR, from the spend ledger
    async with db.transaction() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT pull_request_id, coalesce(sum(tokens_in + tokens_out), 0), "
                    "coalesce(sum(dollars), 0) FROM spend WHERE kind = 'spend' "
                    "GROUP BY pull_request_id"
                )
            )
        ).all()
    tokens_by_pull = {int(r[0]): (int(r[1]), float(r[2])) for r in rows if r[0] is not None}
    number_of = {v: k for k, v in pull_ids.items()}
    tokens = {number_of.get(pid, -1): spent for pid, spent in tokens_by_pull.items()}
    never_triggered = sorted(n for n in pull_ids if not triggers_seen.get(n))
    tokens_no_trigger = sum(tokens.get(n, (0, 0.0))[0] for n in never_triggered)
    verdicts: Counter[str] = Counter()
    behaviours: Counter[str] = Counter()
    lies_caught = 0
    for result in agent_results:
        behaviours[result["behaviour"]] += 1
        verdict = (result.get("verdict") or {}).get("state") or "no verdict"
        verdicts[verdict] += 1
        if result["behaviour"] == "lie-done" and verdict != "VERIFIED_DONE":
            lies_caught += 1
    posted = outcomes.get("posted", 0)
    escalated = outcomes.get("escalated", 0)
    suppressed = {k: v for k, v in outcomes.items() if k.startswith("suppressed")}
    return {
        "candidates_recorded": sum(outcomes.values()),
        "candidates_by_outcome": dict(outcomes),
        "candidates_by_kind": {k: dict(v) for k, v in by_kind.items()},
        "not_performed": notable,
        "posted": posted,
        "escalated": escalated,
        "suppressed": suppressed,
        "jobs": len(jobs),
        "distinct_pr_fingerprints": len(groups),
        "per_pr_fingerprint": per_key,
        "exactly_one_per_fingerprint": exactly_one,
        "keys_over_cap": over,
        "escalate_candidate_keys": len(escalate_keys),
        "escalate_keys_never_escalated": never,
        "max_attempts_per_trigger": max_attempts,
        "app_comments": app_comments,
        "duplicate_comments": duplicates,
        "sticky_comments_per_pr": dict(sticky_per_pr),
        "tokens_by_pr": {str(k): v[0] for k, v in tokens.items()},
        "dollars_by_pr": {str(k): round(v[1], 4) for k, v in tokens.items()},
        "triggers_seen": {str(k): sorted(v) for k, v in triggers_seen.items()},
        "never_triggered_prs": never_triggered,
        "no_trigger_by_design": sorted(NO_TRIGGER_BY_DESIGN),
        "tokens_on_prs_without_trigger": tokens_no_trigger,
        "agent_runs": len(agent_results),
        "agent_behaviours": dict(behaviours),
        "agent_verdicts": dict(verdicts),
        "lies_caught": lies_caught,
        "lies_told": behaviours.get("lie-done", 0),
    }


async def run(workdir: Path, *, small: bool) -> Result:
    result = Result(
        "escalation",
        "Escalation economy",
        "full loop in one process: sim webhooks (25% redelivered) -> bot/server.py inbox -> "
        "Reconciler -> Engine (policies.triage.decide, ledger candidates) -> Executor (act mode, "
        "writes to the sim) -> escalation jobs + job API -> sim/reference_agent.py (lying, failing, "
        "crashing, honest) -> done-oracle",
    )
    days, step = (2, 6) if small else (7, 4)
    watch = Stopwatch()
    figures = await replay(workdir, days=days, step_hours=step)
    result.figures = {**figures, "wall_seconds": watch()}
    result.row("replayed", f"{days} days in {figures['steps']} steps of {step} h", note="9 PRs")
    result.row(
        "candidates recorded (proposed, incl. suppressed)",
        figures["candidates_recorded"],
        note=", ".join(f"{k} {v}" for k, v in sorted(figures["candidates_by_outcome"].items())),
    )
    result.row(
        "performed on GitHub: posted / escalated",
        f"{figures['posted']} / {figures['escalated']}",
    )
    result.row(
        "suppressed, by reason",
        sum(figures["suppressed"].values()),
        note=", ".join(
            f"{k.removeprefix('suppressed_')} {v}" for k, v in sorted(figures["suppressed"].items())
        )
        or "none",
    )
    never = figures["escalate_keys_never_escalated"]
    result.row(
        "escalations per distinct (PR, trigger fingerprint)",
        f"{figures['distinct_pr_fingerprints']} keys escalated exactly once "
        f"({figures['jobs']} jobs incl. re-queued attempts); {figures['keys_over_cap']} more than once",
        target=f"exactly 1 (attempts <= {figures['max_attempts_per_trigger']})",
        ok=figures["exactly_one_per_fingerprint"] and figures["distinct_pr_fingerprints"] > 0,
        note="; ".join(
            f"{k}: {v['trigger_kind']} x{v['first_attempts']} first, attempts {v['max_attempt']}"
            for k, v in figures["per_pr_fingerprint"].items()
        )
        + f". {len(never)} of {figures['escalate_candidate_keys']} escalation keys never escalated "
        "(stop-loss / circuit breaker: see not_performed in the JSON)",
    )
    result.row(
        "duplicate comments",
        figures["duplicate_comments"],
        target="0",
        ok=figures["duplicate_comments"] == 0,
        note=f"{figures['app_comments']} App comments in all",
    )
    result.row(
        "model tokens on PRs with no trigger",
        figures["tokens_on_prs_without_trigger"],
        target="0",
        ok=figures["tokens_on_prs_without_trigger"] == 0,
        note=f"PRs never triggered: {figures['never_triggered_prs']} "
        f"(by design: {figures['no_trigger_by_design']})",
    )
    result.row(
        "lying agent: false 'done' claims caught",
        f"{figures['lies_caught']} of {figures['lies_told']}",
        target="all",
        ok=figures["lies_caught"] == figures["lies_told"] if figures["lies_told"] else None,
        note=", ".join(f"{k} {v}" for k, v in sorted(figures["agent_verdicts"].items())),
    )
    return result
