"""Alembic environment for the ledger.

It runs only on a connection handed in by ``ledger.migrate`` (``config.attributes["connection"]``),
so no alembic.ini and no URL in a file are needed: ``ledger.migrate`` opens the async engine and
runs Alembic inside ``run_sync``.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, LargeBinary
from sqlalchemy.engine import Connection

from ledger.models import metadata
from ledger.types import UTCDateTime


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write migrations in plain SQLAlchemy types, so they never import prsteward's own."""
    if kind != "type":
        return False
    if isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type(item).__name__ == "AutoString":
        return "sa.String()"
    if isinstance(item, JSON):
        return "sa.JSON()"
    if isinstance(item, LargeBinary):
        return "sa.LargeBinary()"
    return False


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "ledger migrations run through ledger.migrate (or `prsteward db upgrade`), "
            "not the alembic command line"
        )
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


run()
