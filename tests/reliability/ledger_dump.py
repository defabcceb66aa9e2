"""Every row of every ledger table, read through the ledger's own export (ledger/jsonl.py)."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from typing import Any

from ledger.db import Ledger
from ledger.jsonl import export_jsonl


async def dump_text(url: str) -> str:
    """The ledger as `prsteward export` writes it."""
    out = io.StringIO()
    async with Ledger(url) as db:
        await export_jsonl(db, out)
    return out.getvalue()


async def dump_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """Table name -> its rows (bytes columns base64, datetimes ISO), by primary key."""
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in (await dump_text(url)).splitlines():
        document = json.loads(line)
        if document.get("kind") == "row":
            tables[document["table"]].append(document["row"])
    return dict(tables)
