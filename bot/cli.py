"""The `prsteward` command line. Each command imports what it needs lazily so `--help` is fast.

A command exists here only when the feature behind it is real.
"""

from __future__ import annotations

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
    from sqlalchemy.exc import SQLAlchemyError

    return (OSError, SQLAlchemyError)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
