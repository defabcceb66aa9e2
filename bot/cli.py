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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
