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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
