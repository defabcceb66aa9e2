"""Small helpers shared by the query modules (private to ``ledger/``)."""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult


def upsert_insert(backend: str, table: Any) -> Any:
    """The dialect's INSERT construct, which has ``on_conflict_do_nothing/do_update``."""
    if backend == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive slices of at most ``size`` (bind-parameter limits)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def model_defaults(model: Any) -> dict[str, Any]:
    """The Python-side defaults of a table model's fields (not ``id``), for Core INSERTs,
    which bypass the model and would otherwise send NULL for them."""
    defaults: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name == "id" or field.is_required():
            continue
        value = field.get_default(call_default_factory=True)
        if value is not None:
            defaults[name] = value.value if hasattr(value, "value") else value
    return defaults


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE or DELETE (``CursorResult.rowcount``)."""
    return int(cast(CursorResult[Any], result).rowcount)


@functools.cache
def update_by_key(table: Any, key: str, columns: tuple[str, ...]) -> Any:
    """``UPDATE table SET <columns> WHERE <key> = :_key``, built once per shape (SQLAlchemy then
    only binds values; building it anew on every call cost a sweep a few percent of its CPU).
    Parameters: ``_key`` and ``v_<column>`` for each of ``columns`` (one dict, or a list of
    them for an executemany). See :func:`update_parameters`."""
    return (
        update(table)
        .where(table.c[key] == bindparam("_key"))
        .values({name: bindparam("v_" + name) for name in columns})
    )


def update_parameters(key: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of :func:`update_by_key` for one row."""
    return {"_key": key, **{"v_" + name: value for name, value in values.items()}}
