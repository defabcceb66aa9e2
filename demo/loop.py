"""``prsteward demo``: the whole loop on this machine, with no GitHub account.

What runs, in one process (all of it prsteward's real code, against the local sim):

1. the sim (``sim/``) with a generated organisation (3 repositories, 300 PRs by default: clean,
   approved, failing CI, flaky CI, conflicts, changes requested, maintainer feedback, drafts,
   zombies, bot PRs, closed linked issues), each repository configured ``mode: act`` through its
   own ``.github/prsteward.yml`` (read by prsteward's config loader from the sim);
2. prsteward's webhook server (signed deliveries from the sim), reconciler (GraphQL sweeps), engine
   (policies -> decisions and candidates in the ledger), executor (writes to the sim), escalation
   jobs with the job API, and the dashboard, on an SQLite ledger in ``./prsteward-demo/``;
3. the reference agent (``sim/reference_agent.py``) leasing jobs with a seeded mix of behaviours
   (honest fixes, failures, lies, blocked claims, crashes), checked by prsteward's done-oracle;
4. simulated time advances through a few days in steps; each step adds some activity (CI
   results, pushes, reviews, comments), then: webhooks, a reconcile cycle, evaluation, agents,
   escalation housekeeping.

Every part runs on the sim's clock, so "waiting 3 days" on the dashboard is 3 simulated days.
This package (``demo/``, beside ``bench/``) runs the sim; prsteward's own packages never import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

DEMO_FOLDER = Path("prsteward-demo")
DEMO_CONFIG = (
    "# prsteward demo configuration (served by the sim as this repository's file)\n"
    "mode: act\n"
    "maintainers: [alice, bob, carmen]\n"
    "flaky-check-patterns: ['e2e*']\n"
)
MAINTAINERS = ("alice", "bob", "carmen")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    folder: Path = DEMO_FOLDER
    repos: int = 3
    prs: int = 300
    days: int = 4
    step_hours: int = 12
    seed: int = 1
    events_per_step: int = 6
    agent_jobs_per_step: int = 6
    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 8080

    @classmethod
    def fast(cls, **overrides: Any) -> DemoOptions:
        """A smaller organisation and fewer steps (tests, a quick look)."""
        values: dict[str, Any] = {
            "repos": 2,
            "prs": 24,
            "days": 2,
            "step_hours": 24,
            "events_per_step": 4,
            "agent_jobs_per_step": 4,
        }
        return cls(**(values | overrides))


@dataclass
class DemoResult:
    url: str = ""
    steps: int = 0
    sim_now: datetime | None = None
    agent_runs: int = 0
    agent_behaviours: dict[str, int] = field(default_factory=dict)
    events: int = 0
    github_writes: int = 0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per phase
    step_seconds: list[float] = field(default_factory=list)


class _Laps:
    def __init__(self) -> None:
        self.last = time.monotonic()
        self.totals: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.totals[name] = round(self.totals.get(name, 0.0) + now - self.last, 2)
        self.last = now


def demo_scenario(options: DemoOptions) -> dict[str, Any]:
    """The generated organisation, every repository in ``mode: act``."""
    from sim.generate import GenerateSpec, generate

    scenario = generate(GenerateSpec(repos=options.repos, prs=options.prs, seed=options.seed))
    for installation in scenario["installations"]:
        for repository in installation["repositories"]:
            repository["files"] = dict(repository.get("files") or {})
            repository["files"][".github/prsteward.yml"] = DEMO_CONFIG
    return scenario


def activity(
    rng: random.Random, state: dict[str, Any], repositories: list[str], count: int
) -> list[dict[str, Any]]:
    """A few plausible events for open PRs: CI results, pushes, reviews, comments."""
    events: list[dict[str, Any]] = []
    open_by_repo: dict[str, list[dict[str, Any]]] = {}
    for repository in state.get("repositories") or []:
        for pull in repository.get("pulls") or []:
            if str(pull.get("state", "")).upper() == "OPEN":
                open_by_repo.setdefault(str(repository.get("full_name")), []).append(pull)
    for _ in range(count):
        repository = rng.choice(repositories)
        candidates = open_by_repo.get(repository) or []
        if not candidates:
            continue
        pull = rng.choice(candidates)
        number = int(pull.get("number") or 0)
        if not number or pull.get("draft"):
            continue
        author = str(pull.get("author") or "dev1")
        kind = rng.choices(
            ["ci_fail", "ci_pass", "push", "changes", "approve", "question", "reply"],
            [3, 2, 2, 2, 1, 2, 2],
        )[0]
        base = {"repo": repository, "pr": number}
        if kind == "ci_fail":
            events.append({**base, "type": "ci", "conclusion": "failure", "checks": ["test"]})
        elif kind == "ci_pass":
            events.append({**base, "type": "ci", "conclusion": "success"})
        elif kind == "push":
            events.append({**base, "type": "push", "user": author})
        elif kind == "changes":
            events.append(
                {
                    **base,
                    "type": "review",
                    "user": rng.choice(MAINTAINERS),
                    "state": "CHANGES_REQUESTED",
                    "body": "Please add a test for the new branch.",
                }
            )
        elif kind == "approve":
            events.append(
                {**base, "type": "review", "user": rng.choice(MAINTAINERS), "state": "APPROVED"}
            )
        elif kind == "question":
            events.append(
                {
                    **base,
                    "type": "comment",
                    "user": rng.choice(MAINTAINERS),
                    "body": "Could you explain why this is needed?",
                }
            )
        else:
            events.append({**base, "type": "comment", "user": author, "body": "Updated, thanks!"})
    return events


async def _inbox_idle(db: Any, timeout: float = 20.0) -> None:
    from ledger import inbox
    from ledger.models import DeliveryState

    for _ in range(int(timeout / 0.05)):
        counts = await inbox.count_by_state(db)
        if not counts.get(DeliveryState.PENDING) and not counts.get(DeliveryState.PROCESSING):
            return
        await asyncio.sleep(0.05)


def _prepare_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("ledger.db*"):
        stale.unlink()
    return folder / "ledger.db"


async def run_demo(
    options: DemoOptions,
    console: Console | None = None,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo; serve the dashboard until ``stop`` is set (when ``options.serve``)."""
    from bot.config_loader import ConfigLoader
    from bot.dashboard import Dashboard
    from bot.engine import Engine
    from bot.escalation import Escalations, github_reader, open_job
    from bot.executor import Actions, EscalationHook, Executor, GitHubActions, WritePacer
    from bot.github import GitHubApp
    from bot.jobs_api import JobsApi
    from bot.poller import Poller
    from bot.reconcile import Reconciler
    from bot.report import render_rich
    from bot.server import Server
    from ledger import agents as agent_store
    from ledger.db import Ledger
    from ledger.migrate import upgrade_async
    from ledger.reporting import gather_report
    from policies.config import Config, parse_config
    from policies.snapshot import PullRequestSnapshot
    from policies.triage import Candidate, Decision
    from sim.reference_agent import run_agent
    from sim.runner import SimConfig, SimServer

    console = console or Console()
    result = DemoResult()
    database = _prepare_folder(options.folder)
    scenario = demo_scenario(options)
    repositories = [
        f"{inst['account']}/{repo['name']}"
        for inst in scenario["installations"]
        for repo in inst["repositories"]
    ]
    secret = secrets.token_hex(20)
    console.print(
        f"[bold]prsteward demo[/]: a simulated GitHub organisation with {len(repositories)} "
        f"repositories and {options.prs} pull requests; ledger at {database}"
    )
    sim = SimServer(SimConfig(scenario=scenario, webhook_secret=secret))
    await sim.start()
    database_url = f"sqlite+aiosqlite:///{database.resolve()}"
    await upgrade_async(database_url)
    db = Ledger(database_url)

    def clock() -> datetime:
        now: datetime = sim.sim.clock.now()
        return now

    parsed = parse_config(DEMO_CONFIG)
    demo_config = parsed if isinstance(parsed, Config) else Config(mode="act")
    # One shared transport: githubkit opens a client per request outside a context manager, and
    # each new client otherwise builds a TLS context (about 0.1 s of CPU) even for http://.
    transport = httpx.AsyncHTTPTransport()

    async def sim_sleep(seconds: float) -> None:
        """Waiting (write pacing, a secondary limit's retry-after) moves simulated time."""
        if seconds > 0:
            await sim.control.advance(seconds)

    app = GitHubApp(
        app_id=sim.app_id,
        private_key=sim.private_key_pem,
        api_url=sim.base_url,
        transport=transport,
        sleep=sim_sleep,
        clock=clock,
    )
    reconciler = Reconciler(app, db, clock=clock)
    # The service's poller, driven step by step (no scheduler): it also samples the rate limit.
    poller = Poller(
        reconciler, db, full_interval=24 * 3600, discover_interval=7 * 24 * 3600, clock=clock
    )
    loader = ConfigLoader(app, db, clock=clock)
    escalations = Escalations(
        db, read_pull=github_reader(app, db), config_for=lambda _repo: demo_config, clock=clock
    )

    async def open_demo_job(
        ledger: Ledger,
        *,
        candidate_id: int,
        decision: Decision,
        candidate: Candidate,
        snapshot: PullRequestSnapshot,
        now: datetime,
    ) -> int | None:
        return await open_job(
            ledger,
            decision,
            candidate,
            snapshot,
            now,
            config=demo_config,
            candidate_id=candidate_id,
        )

    def actions_for(installation_id: int, config: Config) -> Actions:
        return GitHubActions(app.installation(installation_id), config.app_logins)

    executor = Executor(
        db,
        actions_for,
        pacer=WritePacer(clock=lambda: clock().timestamp(), sleep=sim_sleep),
        clock=clock,
        escalate=cast(EscalationHook, open_demo_job),
    )
    # Time-based rules (staleness) need a daily look at every PR; changed PRs are evaluated
    # after every cycle anyway.
    engine = Engine(db, executor, loader, clock=clock, full_interval=timedelta(days=1))
    server = Server(db, webhook_secret=secret, typed_parse=False, idle_poll_seconds=0.05)
    server.mounts.append(
        Dashboard(
            db,
            host=options.host,
            token=None,
            clock=clock,
            full_sweep_seconds=options.step_hours * 3600 * 2,
        ).mount
    )
    server.mounts.append(JobsApi(escalations).add_routes)
    rng = random.Random(options.seed)
    behaviours: dict[str, int] = {}
    steps = max(1, options.days * 24 // options.step_hours)
    timer = _Laps()
    try:
        async with server.running(options.host, options.port) as url:
            result.url = url
            await sim.control.configure_webhook(url=f"{url}/webhooks")
            _agent, token = await agent_store.add_agent(db, "reference-agent", clock())
            poller.after_cycle.append(engine.after_reconcile)
            progress = Progress(
                TextColumn("[bold blue]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            with progress:
                task = progress.add_task("simulating", total=steps, status="first sweep")
                started = time.monotonic()
                for step in range(steps):
                    timer.lap("other")
                    if step > 0:
                        state = await sim.control.state()
                        events = activity(rng, state, repositories, options.events_per_step)
                        if events:
                            await sim.control.events(events)
                            result.events += len(events)
                        await sim.control.advance(options.step_hours * 3600)
                        timer.lap("advance")
                    await sim.control.drain_webhooks()
                    await _inbox_idle(db)
                    timer.lap("webhooks")
                    await poller.cycle()  # reconcile, then the engine evaluates and acts
                    timer.lap("cycle")
                    done = await run_agent(
                        url,
                        token,
                        sim.base_url,
                        "mix",
                        max_jobs=options.agent_jobs_per_step,
                        seed=options.seed + step,
                        timeout=30,
                    )
                    for job in done:
                        behaviours[job.behaviour] = behaviours.get(job.behaviour, 0) + 1
                    result.agent_runs += len(done)
                    timer.lap("agents")
                    await sim.control.drain_webhooks()
                    await _inbox_idle(db)
                    await escalations.tick()
                    timer.lap("tick")
                    now = clock()
                    result.step_seconds.append(round(time.monotonic() - started, 1))
                    started = time.monotonic()
                    progress.update(
                        task,
                        advance=1,
                        status=f"sim time {now:%a %d %b %H:%M}, {result.agent_runs} agent runs",
                    )
            result.steps = steps
            result.timings = dict(timer.totals)
            result.sim_now = clock()
            result.agent_behaviours = behaviours
            accounting = await sim.control.accounting()
            writes = accounting.get("writes")
            if isinstance(writes, dict):
                result.github_writes = int(sum(v for v in writes.values() if isinstance(v, int)))
            elif isinstance(writes, int):
                result.github_writes = writes
            report = await gather_report(db, clock())
            console.print(render_rich(report))
            console.print(
                f"\n[bold]{steps} steps[/] of {options.step_hours} simulated hours "
                f"({options.days} days); {result.events} scripted events; "
                f"{result.agent_runs} agent runs ("
                + ", ".join(f"{k} {v}" for k, v in sorted(behaviours.items()))
                + f"); {result.github_writes} writes to the simulated GitHub."
            )
            console.print(
                f"Ledger: {database} -- read it again with "
                f"`PRSTEWARD_DATABASE_URL=sqlite:///{database} prsteward report`"
            )
            if options.serve:
                console.print(
                    f"\n[bold green]Dashboard:[/] {url}/   (metrics at {url}/metrics)"
                    "\nServing until Ctrl-C."
                )
                console.file.flush()  # a pipe (| tee, a supervisor) sees the URL now
                if on_ready is not None:
                    on_ready(url)
                waiter = stop or asyncio.Event()
                await waiter.wait()
            else:
                console.print(f"\nDashboard was at {url}/ (exited: --no-serve).")
    finally:
        await sim.stop()
        await db.close()
        await transport.aclose()
    return result


def main(options: DemoOptions) -> DemoResult:
    """Run the demo from the CLI: Ctrl-C (or SIGTERM) stops serving and exits cleanly."""

    async def run() -> DemoResult:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await run_demo(options, stop=stop)

    return asyncio.run(run())
