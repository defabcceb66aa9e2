"""Small helpers shared by the query modules (private to ``ledger/``)."""

from __future__ import annotations

from typing import Any, cast

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
