"""The `prsteward` command line. Each command imports what it needs lazily so `--help` is fast.

A command exists here only when the feature behind it is real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="prsteward",
    help="Keeps an organisation's pull-request queue maintained cheaply.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _root() -> None:
    """prsteward: watch every open PR cheaply, escalate to agents only on concrete triggers."""


def _unreachable_ledger_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the ledger database cannot be used", shown as one line, no traceback."""
    from ledger.db import LEDGER_UNAVAILABLE_ERRORS

    return LEDGER_UNAVAILABLE_ERRORS


def _unreachable_ledger_message(url: str, error: BaseException) -> str:
    from ledger.db import redacted

    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"prsteward: cannot use the ledger at {redacted(url)}: {first_line}"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the ledger (PRSTEWARD_DATABASE_URL) up to the newest schema; prints the revision."""
    from bot.settings import fail, load_settings
    from ledger.db import LedgerURLError
    from ledger.migrate import upgrade

    settings = load_settings()
    try:
        revision = upgrade(settings.database_url)
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    typer.echo(f"ledger at revision {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the ledger's schema revision and the newest one this code ships."""
    from bot.settings import fail, load_settings
    from ledger.db import LedgerURLError
    from ledger.migrate import current, head_revision

    settings = load_settings()
    try:
        revision = current(settings.database_url)
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    head = head_revision()
    state = "up to date" if revision == head else "needs `prsteward db upgrade`"
    typer.echo(f"ledger at revision {revision or '(empty)'}; newest {head}: {state}")


@app.command("export")
def export_ledger(
    out: Annotated[
        Path, typer.Option("--out", help="The JSONL file to write (replaced atomically).")
    ],
) -> None:
    """Write the whole ledger (PRSTEWARD_DATABASE_URL) as JSON lines."""
    import asyncio

    from bot.settings import fail, load_settings
    from ledger.db import Ledger, LedgerURLError
    from ledger.jsonl import LedgerImportError, export_file

    settings = load_settings()

    async def run() -> int:
        async with Ledger(settings.database_url) as db:
            return (await export_file(db, out)).total

    try:
        total = asyncio.run(run())
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except LedgerImportError as error:
        fail(f"prsteward: cannot export: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    typer.echo(f"exported {total} rows to {out}")


@app.command("import")
def import_ledger(
    source: Annotated[Path, typer.Argument(help="A JSONL file written by `prsteward export`.")],
) -> None:
    """Load an export into an empty ledger (PRSTEWARD_DATABASE_URL), upgrading its schema first."""
    import asyncio

    from bot.settings import fail, load_settings
    from ledger.db import Ledger, LedgerURLError
    from ledger.jsonl import LedgerImportError, import_file
    from ledger.migrate import upgrade_async

    settings = load_settings()
    if not source.is_file():
        fail(f"prsteward: cannot import: {source} is not a file")

    async def run() -> int:
        await upgrade_async(settings.database_url)
        async with Ledger(settings.database_url) as db:
            return (await import_file(db, source)).total

    try:
        total = asyncio.run(run())
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except LedgerImportError as error:
        fail(f"prsteward: cannot import {source}: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    typer.echo(f"imported {total} rows from {source}")


# --- watching (issue 4): serve, reconcile -----------------------------------------------------


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=None
    )


@app.command("serve")
def serve() -> None:
    """Serve /webhooks, /healthz and /readyz, and run the poller (one leader per ledger)."""
    import asyncio

    from bot.service import ServiceConfigError
    from bot.service import serve as run_serve
    from bot.settings import fail, load_settings
    from ledger.db import LedgerURLError

    settings = load_settings()
    _configure_logging(settings.log_level)
    try:
        asyncio.run(run_serve(settings))
    except ServiceConfigError as error:
        fail(str(error))
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    except KeyboardInterrupt:
        pass


@app.command("reconcile")
def reconcile(
    repo: str | None = typer.Option(None, "--repo", help="Only this repository (OWNER/NAME)."),
    full: bool = typer.Option(False, "--full", help="A full sweep instead of the cheap check."),
) -> None:
    """Run one reconciliation cycle against GitHub and print what changed."""
    import asyncio

    from bot.github import GitHubError
    from bot.reconcile import RepoResult
    from bot.service import Service, ServiceConfigError
    from bot.settings import fail, load_settings
    from ledger.db import LedgerURLError

    settings = load_settings()
    _configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    if repo is not None and repo.count("/") != 1:
        fail(f"prsteward: --repo wants OWNER/NAME, got {repo!r}")

    async def run() -> list[RepoResult]:
        service = await Service.open(settings, need_app=True)
        try:
            return await service.reconcile_once(repo=repo, full=full)
        finally:
            await service.close()

    try:
        results = asyncio.run(run())
    except ServiceConfigError as error:
        fail(str(error))
    except GitHubError as error:
        fail(f"prsteward: GitHub: {error}")
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    if not results:
        typer.echo("no watched repository" + (f" named {repo}" if repo else ""))
        raise typer.Exit(1 if repo else 0)
    for result in results:
        typer.echo(result.describe())
    if any(result.errors for result in results):
        raise typer.Exit(1)


@app.command("sim")
def sim_command(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8900,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    scenario: Annotated[
        Path | None, typer.Option(help="Scenario file (YAML or JSON, see sim/README.md).")
    ] = None,
    generate: Annotated[
        str | None, typer.Option(help="Generate an organisation: repos=100,prs=10000,seed=1")
    ] = None,
    webhook_url: Annotated[str | None, typer.Option(help="Where to deliver webhooks.")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="Webhook secret.")] = None,
    app_id: Annotated[int | None, typer.Option(help="The App's id.")] = None,
    private_key_path: Annotated[
        Path | None, typer.Option(help="The App's PEM private key (else one is made).")
    ] = None,
    credentials_out: Annotated[
        Path, typer.Option(help="Where to write PRSTEWARD_*= lines.")
    ] = Path("sim-credentials.env"),
) -> None:
    """Run a local GitHub (REST, GraphQL, signed webhooks, limits, faults, clock) for prsteward."""
    from sim.runner import run_cli

    run_cli(
        port=port,
        host=host,
        scenario=scenario,
        generate=generate,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        app_id=app_id,
        private_key_path=private_key_path,
        credentials_out=credentials_out,
    )


# --- maintainer view (issue 7): report, demo ------------------------------------------------


@app.command("report")
def report_command(
    fmt: Annotated[
        str, typer.Option("--format", help="table (rich, default), markdown or json.")
    ] = "table",
    would: Annotated[
        bool,
        typer.Option(
            "--would", help="Instead: what shadow mode would do in act mode, per repository."
        ),
    ] = False,
) -> None:
    """Print the queue by tier, triggers, escalations, spend vs budget, API use and stop-loss."""
    import asyncio
    from datetime import UTC, datetime

    from bot.report import FORMATS, build_report, print_report
    from bot.settings import fail, load_settings
    from ledger.db import Ledger, LedgerURLError
    from ledger.migrate import upgrade_async

    if fmt not in FORMATS:
        fail(f"prsteward: --format wants one of {', '.join(FORMATS)}, got {fmt!r}")
    settings = load_settings()

    async def run() -> object:
        await upgrade_async(settings.database_url)
        async with Ledger(settings.database_url) as db:
            if would:
                from ledger.reporting import would_do

                return await would_do(db)
            return await build_report(db, datetime.now(UTC))

    try:
        report = asyncio.run(run())
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    if would:
        from bot.report import print_would

        print_would(report, fmt)  # type: ignore[arg-type]
    else:
        print_report(report, fmt)  # type: ignore[arg-type]


@app.command("demo")
def demo_command(
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep serving the dashboard until Ctrl-C.")
    ] = True,
    fast: Annotated[
        bool, typer.Option("--fast", help="A smaller organisation and fewer steps.")
    ] = False,
    folder: Annotated[
        Path, typer.Option(help="Where the demo's SQLite ledger goes (replaced each run).")
    ] = Path("prsteward-demo"),
    host: Annotated[str, typer.Option(help="Address the demo's dashboard binds to.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the dashboard (0: any free port).")] = 8080,
    repos: Annotated[int | None, typer.Option(help="Repositories to generate.")] = None,
    prs: Annotated[int | None, typer.Option(help="Pull requests to generate.")] = None,
    days: Annotated[int | None, typer.Option(help="Simulated days to run through.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated organisation.")] = 1,
) -> None:
    """Run prsteward against a local simulated GitHub (no account needed): prints the report and
    serves the dashboard."""
    from bot.dashboard import is_loopback
    from bot.settings import fail
    from demo.loop import DemoOptions
    from demo.loop import main as run_demo

    if not is_loopback(host):
        fail("prsteward: the demo serves its dashboard without a token, so only on loopback")
    chosen = {
        key: value
        for key, value in {"repos": repos, "prs": prs, "days": days}.items()
        if value is not None
    }
    common = {"folder": folder, "host": host, "port": port, "seed": seed, "serve": serve}
    options = DemoOptions.fast(**common, **chosen) if fast else DemoOptions(**common, **chosen)  # type: ignore[arg-type]
    _configure_logging("WARNING")
    try:
        run_demo(options)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        fail(f"prsteward: demo: {error}")


# --- escalations (issue 6): agents, jobs ------------------------------------------------------

agents_app = typer.Typer(help="Agents allowed to lease escalation jobs.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
jobs_app = typer.Typer(help="Escalation jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@agents_app.command("add")
def agents_add(name: Annotated[str, typer.Argument(help="The agent's name (unique).")]) -> None:
    """Register an agent and print its bearer token ONCE (only its hash is stored)."""
    import asyncio
    from datetime import UTC, datetime

    from bot.settings import fail, load_settings
    from ledger.agents import AgentExists, add_agent
    from ledger.db import Ledger, LedgerURLError
    from ledger.migrate import upgrade_async

    settings = load_settings()

    async def run() -> str:
        await upgrade_async(settings.database_url)
        async with Ledger(settings.database_url) as db:
            _agent, token = await add_agent(db, name, datetime.now(UTC))
            return token

    try:
        token = asyncio.run(run())
    except AgentExists as error:
        fail(f"prsteward: {error}")
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    typer.echo(f"agent {name} added; its token (shown once, store it now):", err=True)
    typer.echo(token)


@jobs_app.command("list")
def jobs_list(
    repo: Annotated[str | None, typer.Option("--repo", help="Only this OWNER/NAME.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only this state.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List escalation jobs: id, PR, trigger, state (with its reason), attempt, budget, spend."""
    import asyncio
    import json

    from bot.settings import fail, load_settings
    from ledger import jobs as job_store
    from ledger import spend as spend_ledger
    from ledger.db import Ledger, LedgerURLError
    from ledger.migrate import upgrade_async
    from ledger.models import JobState

    settings = load_settings()
    try:
        states = frozenset({JobState(state.upper())}) if state else None
    except ValueError:
        fail(f"prsteward: --state wants one of {', '.join(s.value for s in JobState)}")

    async def run() -> list[dict[str, object]]:
        await upgrade_async(settings.database_url)
        async with Ledger(settings.database_url) as db:
            rows = await job_store.list_jobs(db, repository=repo, states=states)
            out: list[dict[str, object]] = []
            for row in rows:
                sums = await spend_ledger.job_spend(db, int(row.job.id or 0))
                out.append(
                    {
                        "id": row.job.id,
                        "pr": f"{row.repository}#{row.number}",
                        "trigger": row.job.trigger_kind,
                        "state": row.job.state,
                        "reason": row.job.state_reason,
                        "attempt": f"{row.job.attempt}/{row.job.max_attempts}",
                        "budget_dollars": row.job.budget_dollars,
                        "spent_dollars": round(sums.spent_dollars, 4),
                        "flags": list(row.job.flags or []),
                        "lease_owner": row.job.lease_owner,
                    }
                )
            return out

    try:
        rows = asyncio.run(run())
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    if as_json:
        for item in rows:
            typer.echo(json.dumps(item, sort_keys=True))
        return
    if not rows:
        typer.echo("no escalation jobs")
        return
    for item in rows:
        flags = f" [{', '.join(item['flags'])}]" if item["flags"] else ""  # type: ignore[arg-type]
        typer.echo(
            f"{item['id']:>5} {item['pr']} {item['trigger']} {item['state']} "
            f"attempt {item['attempt']} ${item['spent_dollars']}/{item['budget_dollars']}"
            f"{flags}: {item['reason']}"
        )


@jobs_app.command("grant")
def jobs_grant(
    job_id: Annotated[int, typer.Argument(help="A BUDGET_EXHAUSTED job's id.")],
    tokens: Annotated[int, typer.Option("--tokens", help="Tokens to grant.")] = 0,
    dollars: Annotated[float, typer.Option("--dollars", help="Dollars to grant.")] = 0.0,
) -> None:
    """Grant more budget to a job that ran out: it is queued again once (recorded as a grant)."""
    import asyncio

    from bot.escalation import Escalations, Outcome, ReportError
    from bot.settings import fail, load_settings
    from ledger.db import Ledger, LedgerURLError
    from ledger.migrate import upgrade_async

    settings = load_settings()

    async def run() -> Outcome:
        await upgrade_async(settings.database_url)
        async with Ledger(settings.database_url) as db:
            return await Escalations(db).grant(job_id, tokens, dollars, "a maintainer (CLI)")

    try:
        outcome = asyncio.run(run())
    except ReportError as error:
        fail(f"prsteward: {error}")
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    if outcome.requeued_job_id is None:
        fail(f"prsteward: job {job_id}: {outcome.reason}")
    typer.echo(f"job {job_id}: {outcome.reason}")


boundaries_app = typer.Typer(
    help="Permission boundaries: writes GitHub denied, not attempted again until lifted.",
    no_args_is_help=True,
)
app.add_typer(boundaries_app, name="boundaries")


def _boundaries_run(work: Any) -> Any:
    import asyncio

    from bot.settings import fail, load_settings
    from ledger.db import Ledger, LedgerURLError
    from ledger.migrate import upgrade_async

    settings = load_settings()

    async def run() -> Any:
        await upgrade_async(settings.database_url)
        async with Ledger(settings.database_url) as db:
            return await work(db)

    try:
        return asyncio.run(run())
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))


@boundaries_app.command("list")
def boundaries_list(
    repo: Annotated[str | None, typer.Option("--repo", help="Only this OWNER/NAME.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this action kind.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Lifted ones too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List the standing permission boundaries (GitHub's message, the permissions it asks for,
    candidates suppressed)."""
    import json

    from bot.boundaries import as_json as boundary_json
    from bot.boundaries import describe
    from ledger import boundaries as ledger_boundaries

    async def work(db: Any) -> Any:
        return await ledger_boundaries.list_boundaries(
            db, repository=repo, kind=kind, standing=not all_
        )

    rows = _boundaries_run(work)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(boundary_json(row), sort_keys=True))
        return
    if not rows:
        typer.echo("no permission boundaries")
    for row in rows:
        typer.echo(describe(row))


@boundaries_app.command("clear")
def boundaries_clear(
    repo: Annotated[str | None, typer.Option("--repo", help="Only this OWNER/NAME.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this action kind.")] = None,
) -> None:
    """Lift standing boundaries: the denied action is tried again (once) on the next cycle."""
    from datetime import UTC, datetime

    from bot.boundaries import clear

    async def work(db: Any) -> Any:
        return await clear(db, datetime.now(UTC), repository=repo, kind=kind)

    lifted = _boundaries_run(work)
    typer.echo(f"{lifted} boundaries lifted")


deliveries_app = typer.Typer(
    help="GitHub's webhook deliveries: recover what prsteward missed.", no_args_is_help=True
)
app.add_typer(deliveries_app, name="deliveries")


def _since(text: str | None) -> Any:
    """``--since``: an ISO time (``2026-11-23T10:00:00Z``) or an age (``90m``, ``6h``, ``2d``)."""
    from datetime import UTC, datetime, timedelta

    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"--since wants an ISO time or an age like 6h, got {text!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@deliveries_app.command("recover")
def deliveries_recover(
    since: str | None = typer.Option(
        None,
        "--since",
        help="Look back to this time (ISO, or an age: 90m, 6h, 2d); default: back to the "
        "newest delivery already in the inbox, at most GitHub's 3 days.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be asked for."),
    pace: float | None = typer.Option(
        None,
        "--pace",
        min=0,
        help="Seconds between redelivery requests (default: PRSTEWARD_RECOVERY_PACE_SECONDS, 0.1).",
    ),
) -> None:
    """Ask GitHub to redeliver the failed webhook deliveries that never reached the inbox
    (each at most once, every request recorded in the ledger); prints what it asked for."""
    import asyncio

    from bot.github import GitHubError
    from bot.recovery import DeliveryRecoverer, RecoveryReport
    from bot.service import Service, ServiceConfigError
    from bot.settings import fail, load_settings
    from ledger.db import LedgerURLError

    settings = load_settings()
    _configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    horizon = _since(since)

    async def run() -> RecoveryReport:
        service = await Service.open(settings, need_app=True)
        try:
            assert service.app is not None
            recoverer = DeliveryRecoverer(
                service.app,
                service.db,
                pace_seconds=settings.recovery_pace_seconds if pace is None else pace,
            )
            return await recoverer.recover(horizon, dry_run=dry_run)
        finally:
            await service.close()

    try:
        report = asyncio.run(run())
    except ServiceConfigError as error:
        fail(str(error))
    except GitHubError as error:
        fail(f"prsteward: GitHub: {error}")
    except LedgerURLError as error:
        fail(f"prsteward: bad setting PRSTEWARD_DATABASE_URL: {error}")
    except _unreachable_ledger_errors() as error:
        fail(_unreachable_ledger_message(settings.database_url, error))
    typer.echo(report.describe())
    if report.errors:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
