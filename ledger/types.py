"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.type_api import _BindProcessorType
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and always read back timezone-aware in UTC.

    A naive datetime is refused: its zone is a guess, and a guess in a ledger is a bug later.
    SQLite has no zone-aware type, so it stores naive UTC text; PostgreSQL stores timestamptz.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.__class__ is datetime and value.tzinfo is UTC:  # the common case, quickly
            return value.replace(tzinfo=None) if dialect.name == "sqlite" else value
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a timezone")
        utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def bind_processor(self, dialect: Dialect) -> _BindProcessorType[datetime] | None:
        """On SQLite, :meth:`process_bind_param` and the dialect's text formatting in one step,
        remembering the last value: a first sweep binds ~50,000 datetimes, nearly all of them
        one transaction's ``now``, and the two Python steps were ~8% of its CPU.

        The text is the dialect's own storage format, ``YYYY-MM-DD HH:MM:SS.ffffff``: SQLite
        compares these as text, so every writer must give exactly this form."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_naive_utc = self.process_bind_param
        # (value, its text): one tuple, replaced whole, so a reader never pairs a value with
        # another's text; holding the value keeps its id from being reused.
        last: list[tuple[object, str]] = [(None, "")]

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            seen = last[0]
            if value is seen[0]:
                return seen[1]
            if value.__class__ is datetime and value.tzinfo is UTC:
                text = value.isoformat(" ", "microseconds")[:-6]  # without "+00:00"
            else:
                naive = to_naive_utc(value, dialect)  # refuses what is not an aware datetime
                assert naive is not None
                text = naive.isoformat(" ", "microseconds")
            last[0] = (value, text)
            return text

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON where a Python None is SQL NULL (not the JSON text 'null'), so "absent" stays absent.
JSONValue: Any = JSON(none_as_null=True)

# 64-bit ids on PostgreSQL; plain INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
BigId: Any = BigInteger().with_variant(Integer(), "sqlite")
