"""Benchmark: nothing missed while down (issue 13 item 7). ``prsteward serve`` is stopped, the sim
produces 500 events over a simulated 10 minutes (each a failed delivery in its log: the webhook
target refuses connections), ``prsteward serve`` starts again and its poller's recovery pass asks
GitHub (the sim) for the missed deliveries.

Everything as a user runs it: the sim in its own process (``bench.simproc``, the same server as
``prsteward sim``), ``prsteward serve`` as a real child process with the App's credentials and
default settings (recovery pass at leadership start, 0.1 s between redelivery requests), on
SQLite and on a throw-away PostgreSQL database. The bench process only drives the sim's control
plane and reads the ledger.

Measured from the moment the new ``serve`` process is spawned: until the ledger's inbox holds
every event the sim produced (count equal, each GUID once) and until all of them are processed;
the recovery pass's own duration (from serve's log line); the GitHub requests it cost, by
endpoint, from the sim's accounting (everything else serve asked for in the same window, e.g.
the poller's first cycle, is reported apart). Then a second pass by hand
(``prsteward deliveries recover``) must ask for nothing.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    Child,
    Result,
    Stopwatch,
    free_port,
    python_env,
    rounded,
    say,
    sim_process,
    start_child,
    wait_http,
)

PG_ADMIN = os.environ.get(
    "PRSTEWARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REPO = "acme/repo-000"  # the generated organisation's first repository
OUTAGE_MINUTES = 10
BATCHES = 5  # the outage's events arrive in 5 bursts, 2 simulated minutes apart
BEFORE = 5  # comments that reach the inbox before the outage (plus the PR's opening)
AFTER = 3  # new events right after the restart, before/while the recovery pass runs
RECOVERY_INTERVAL_SECONDS = 300.0  # the default PRSTEWARD_RECOVERY_INTERVAL_SECONDS
DEFAULT_PACE_SECONDS = 0.1  # the default PRSTEWARD_RECOVERY_PACE_SECONDS
LIST = "GET /app/hook/deliveries"
REDELIVER = "POST /app/hook/deliveries/{delivery_id}/attempts"
PASS_LINE = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ prsteward\.recovery: delivery recovery: "
    r"listed (?P<listed>\d+) delivery attempts in (?P<pages>\d+) pages .*?; "
    r"(?P<missed>\d+) missed, .*?(?:asked for|would ask for) (?P<requested>\d+) redeliveries; "
    r"(?P<requests>\d+) GitHub requests in (?P<seconds>[\d.]+) s",
    re.MULTILINE,
)


def comments(number: int, count: int, start: int) -> list[dict[str, Any]]:
    return [
        {"type": "comment", "repo": REPO, "pr": number, "user": "zed", "body": f"note {i}"}
        for i in range(start, start + count)
    ]


async def _pg(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def serve_env(sim: Any, database_url: str, port: int) -> dict[str, str]:
    """The environment of a `prsteward serve` run as the App of the sim process ``sim``."""
    env = python_env(
        PRSTEWARD_DATABASE_URL=database_url,
        PRSTEWARD_APP_ID=str(sim.app_id),
        PRSTEWARD_PRIVATE_KEY_PATH=str(sim.private_key_path),
        PRSTEWARD_WEBHOOK_SECRET=sim.webhook_secret,
        PRSTEWARD_GITHUB_API_URL=sim.url,
        PRSTEWARD_HOST="127.0.0.1",
        PRSTEWARD_PORT=str(port),
        PRSTEWARD_LOG_LEVEL="INFO",
    )
    env.pop("PRSTEWARD_PRIVATE_KEY", None)
    return env


async def _start_serve(env: dict[str, str], rundir: Path, log: Path) -> Child:
    return await start_child(
        [sys.executable, "-c", "from bot.cli import main; main()", "serve"],
        env=env,
        wait_for_json=False,
        stderr_path=log,
        cwd=rundir,
    )


async def _inbox(db: Any, guids: list[str]) -> tuple[int, int, int]:
    """(stored of ``guids``, pending or processing in the whole inbox, failed)."""
    from ledger import inbox
    from ledger.models import DeliveryState

    stored = await inbox.count_deliveries(db, guids)
    counts = await inbox.count_by_state(db)
    waiting = counts[DeliveryState.PENDING] + counts[DeliveryState.PROCESSING]
    return stored, waiting, counts[DeliveryState.FAILED]


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"recovery bench: {what} within {timeout:.0f} s")
        await asyncio.sleep(0.1)


def _endpoints(accounting: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(accounting.get("requests", {}).items()) if v}


def _pass_line(log: Path, after: float) -> dict[str, Any] | None:
    """The first recovery pass serve logged that asked for something, after ``after`` (epoch)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    for match in PASS_LINE.finditer(text):
        logged = datetime.strptime(match["when"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if logged + 1 < after or int(match["requested"]) == 0:
            continue
        seconds = float(match["seconds"])
        return {
            "seconds": seconds,
            "started_after_restart_seconds": round(logged - seconds - after, 2),
            "listed": int(match["listed"]),
            "pages": int(match["pages"]),
            "missed": int(match["missed"]),
            "requested": int(match["requested"]),
            "github_requests": int(match["requests"]),
        }
    return None


async def outage(
    backend: str,
    database_url: str,
    workdir: Path,
    *,
    events: int,
    pace: float | None = None,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """One outage and recovery against a fresh sim and a fresh ledger; the figures."""
    from ledger.db import Ledger
    from sim.control import SimControl

    label = backend if pace is None else f"{backend}-pace{pace:g}"
    rundir = workdir / f"recovery-{label}"
    rundir.mkdir(exist_ok=True)  # no stray .env is read from here
    port = free_port()
    hook_url = f"http://127.0.0.1:{port}/webhooks"
    figures: dict[str, Any] = {"backend": backend, "events": events}
    async with sim_process(rundir, "repos=1,prs=2,seed=1", webhook_url=hook_url) as sim:
        control = SimControl(sim.url)
        env = serve_env(sim, database_url, port)
        env.pop("PRSTEWARD_RECOVERY_INTERVAL_SECONDS", None)
        env.pop("PRSTEWARD_RECOVERY_PACE_SECONDS", None)
        if pace is not None:
            env["PRSTEWARD_RECOVERY_PACE_SECONDS"] = str(pace)
        figures["pace_seconds"] = DEFAULT_PACE_SECONDS if pace is None else pace
        db: Ledger | None = None
        serve: Child | None = None
        try:
            # 1. Up: a PR and a few comments reach the inbox (what the recovery walks back to).
            serve = await _start_serve(env, rundir, rundir / "serve-1.stderr.log")
            await wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120)
            db = Ledger(database_url)  # after serve migrated it
            number = (await control.event("open_pull", repo=REPO, title="Hello", user="zed"))[
                "number"
            ]
            await control.events(comments(number, BEFORE, 0))
            await control.drain_webhooks()
            before_guids = sorted({d["guid"] for d in await control.deliveries()})

            async def first_stored() -> bool:
                stored, waiting, _failed = await _inbox(db, before_guids)
                return stored == len(before_guids) and waiting == 0

            await _until(first_stored, 60, "the first events were not stored and processed")
            # 2. Down: stop serve (SIGTERM, graceful), then the sim produces ``events`` events
            # over a simulated 10 minutes; every delivery fails (connection refused).
            stopping = Stopwatch()
            await serve.stop(timeout=30)
            figures["graceful_stop_seconds"] = rounded(stopping(), 2)
            serve = None
            per_batch = math.ceil(events / BATCHES)
            sent = 0
            while sent < events:
                count = min(per_batch, events - sent)
                await control.events(comments(number, count, 1000 + sent))
                sent += count
                await control.advance(f"{OUTAGE_MINUTES * 60 // BATCHES}s")
            await control.drain_webhooks(timeout=120)
            log = await control.deliveries()
            failed = {d["guid"] for d in log if d["status"] != "OK"}
            figures["failed_deliveries"] = len(failed)
            if len(failed) != events:
                raise RuntimeError(f"expected {events} failed deliveries, the sim logged {failed}")
            await control.reset_accounting()
            # 3. Restart: a new serve process on the same ledger and port; the clock starts now.
            restarted_at = time.time()
            since_restart = Stopwatch()
            serve = await _start_serve(env, rundir, rundir / "serve-2.stderr.log")
            await wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120, want=200)
            figures["listening_seconds"] = rounded(since_restart(), 2)
            # New events arrive right after the restart, before or while the recovery runs.
            await control.events(comments(number, AFTER, 5000))
            await control.drain_webhooks(timeout=10)
            expected = sorted({d["guid"] for d in await control.deliveries()})
            figures["expected_events"] = len(expected)
            stored_at: float | None = None
            processed_at: float | None = None
            stored = waiting = failed_processing = 0
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                stored, waiting, failed_processing = await _inbox(db, expected)
                if stored == len(expected) and stored_at is None:
                    stored_at = since_restart()
                if stored_at is not None and waiting == 0:
                    processed_at = since_restart()
                    break
                await asyncio.sleep(0.1)
            figures["stored_seconds"] = rounded(stored_at, 2)
            figures["processed_seconds"] = rounded(processed_at, 2)
            figures["stored"] = stored
            figures["still_waiting"] = waiting
            figures["failed_processing"] = failed_processing
            # The pass logs its line when its last redelivery was asked for.
            pass_figures = None
            for _ in range(100):
                pass_figures = _pass_line(rundir / "serve-2.stderr.log", restarted_at)
                if pass_figures is not None:
                    break
                await asyncio.sleep(0.2)
            figures["recovery_pass"] = pass_figures
            accounting = await control.accounting()
            figures["requests_by_endpoint"] = _endpoints(accounting)
            figures["serve_process"] = serve.usage()
            # 4. A second pass, by hand, in its own process: must ask for nothing.
            await control.reset_accounting()
            by_hand = await start_child(
                [sys.executable, "-c", "from bot.cli import main; main()", "deliveries", "recover"],
                env=env,
                wait_for_json=False,
                stderr_path=rundir / "recover.stderr.log",
                cwd=rundir,
            )
            assert by_hand.process.stdout is not None
            output = (await asyncio.wait_for(by_hand.process.stdout.read(), 120)).decode()
            await asyncio.wait_for(by_hand.process.wait(), 30)
            figures["second_pass"] = {
                "exit_status": by_hand.process.returncode,
                "output": output.strip().splitlines()[:3],
                "requests_by_endpoint": _endpoints(await control.accounting()),
            }
            # 5. Counted at the end: the sim's log against the ledger's inbox.
            log = await control.deliveries()
            guids = sorted({d["guid"] for d in log})
            redeliveries = Counter(d["guid"] for d in log if d["redelivery"])
            figures["sim_events_at_end"] = len(guids)
            figures["events_after_expected"] = len(set(guids) - set(expected))
            figures["redeliveries"] = sum(redeliveries.values())
            figures["asked_more_than_once"] = sum(1 for n in redeliveries.values() if n > 1)
            figures["redeliveries_of_missed"] = sum(1 for g in redeliveries if g in failed)
            figures["redeliveries_not_missed"] = sum(1 for g in redeliveries if g not in failed)
            stored_end, _waiting, _failed = await _inbox(db, guids)
            figures["missing_from_inbox"] = len(guids) - stored_end
            # each GUID is one inbox row (unique); more rows than GUIDs would be a duplicate
            figures["inbox_rows"] = await _count_rows(db)
            figures["inbox_rows_not_from_sim"] = figures["inbox_rows"] - stored_end
            figures["list_pages_floor"] = math.ceil(len(expected) / 100)
        finally:
            if serve is not None:
                await serve.stop(timeout=30)
            if db is not None:
                await db.close()
            await control.aclose()
    return figures


async def _count_rows(db: Any) -> int:
    from sqlalchemy import text

    async with db.read() as session:
        return int(
            (await session.execute(text("SELECT count(*) FROM webhook_delivery"))).scalar_one()
        )


async def on_postgresql(workdir: Path, **kwargs: Any) -> dict[str, Any]:
    name = f"prsteward_bench_{uuid.uuid4().hex[:10]}"
    try:
        await _pg(f'CREATE DATABASE "{name}"')
    except Exception as error:  # noqa: BLE001 - no PostgreSQL: say so in the results
        return {"skipped": f"PostgreSQL unreachable: {error!r}"}
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        return await outage("postgresql", f"{base}/{name}", workdir, **kwargs)
    finally:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(workdir: Path, label: str) -> str:
    path = workdir / f"recovery-{label}.db"
    for stale in workdir.glob(f"recovery-{label}.db*"):
        stale.unlink()
    return f"sqlite+aiosqlite:///{path}"


def rows(result: Result, backend: str, figures: dict[str, Any], diagnostic: bool = False) -> None:
    events = figures["events"]
    pace = figures["pace_seconds"]
    if "skipped" in figures:
        result.row(f"{backend}: restart to recovered", None, note=figures["skipped"])
        return
    prefix = f"{backend}, {events} events missed in a {OUTAGE_MINUTES}-min outage"
    if diagnostic:
        prefix += f", PRSTEWARD_RECOVERY_PACE_SECONDS={pace:g} (diagnostic)"
    stored, processed = figures["stored_seconds"], figures["processed_seconds"]
    recovery = figures.get("recovery_pass") or {}
    requests = figures["requests_by_endpoint"]
    listed = requests.get(LIST, 0)
    asked = requests.get(REDELIVER, 0)
    cost = listed + asked
    other = {k: v for k, v in requests.items() if k not in {LIST, REDELIVER}}
    pass_note = (
        f"the recovery pass itself {recovery['seconds']:.2f} s (began "
        f"{recovery['started_after_restart_seconds']:.1f} s after the restart; "
        f"{recovery['requested']} redeliveries {pace:g} s apart)"
        if recovery
        else "the recovery pass logged no line"
    )
    result.row(
        f"{prefix}: restart to every event stored / processed",
        f"{rounded(stored, 1)} s / {rounded(processed, 1)} s"
        if processed is not None
        else f"not recovered ({figures['stored']} of {figures['expected_events']} stored)",
        target=""
        if diagnostic
        else f"< {RECOVERY_INTERVAL_SECONDS:.0f} s (in the first pass, inside one recovery "
        "interval)",
        ok=None
        if diagnostic
        else (processed is not None and processed < RECOVERY_INTERVAL_SECONDS),
        note=f"from spawning `prsteward serve` (listening after {figures['listening_seconds']} s); "
        f"{pass_note}; {figures['expected_events']} events in all "
        f"({figures['expected_events'] - events - AFTER} before, {events} during, {AFTER} after)",
    )
    if diagnostic:
        return
    floor = figures["list_pages_floor"] + events
    result.row(
        f"{prefix}: GitHub requests the recovery cost",
        cost,
        target=f"<= {floor} ({figures['list_pages_floor']} list pages + 1 per missed event)",
        ok=cost <= floor and asked == events,
        note=f"{listed} x {LIST} + {asked} x POST .../attempts, App JWT (not an installation's "
        "budget); serve's other requests in the same window: "
        + (", ".join(f"{v} x {k}" for k, v in other.items()) or "none"),
    )
    missing = figures["missing_from_inbox"]
    twice = figures["asked_more_than_once"] + figures["inbox_rows_not_from_sim"]
    result.row(
        f"{prefix}: events missed / duplicated",
        f"{missing} / {twice}",
        target="0 / 0",
        ok=missing == 0 and twice == 0 and figures["redeliveries_not_missed"] == 0,
        note=f"{figures['stored']} of {figures['expected_events']} GUIDs in the inbox, one row "
        f"each; {figures['redeliveries']} redeliveries asked for, "
        f"{figures['redeliveries_of_missed']} of them missed GUIDs, "
        f"{figures['asked_more_than_once']} GUIDs asked for twice; "
        f"{figures['failed_processing']} failed processing",
    )
    second = figures["second_pass"]
    again = second["requests_by_endpoint"]
    result.row(
        f"{prefix}: second pass by hand (`prsteward deliveries recover`): redeliveries asked for",
        again.get(REDELIVER, 0),
        target="0",
        ok=second["exit_status"] == 0 and again.get(REDELIVER, 0) == 0,
        note=f"{again.get(LIST, 0)} list requests (it walks back {OUTAGE_MINUTES} min past the "
        "newest delivery it finds in the inbox)",
    )


async def run(workdir: Path, *, small: bool) -> Result:
    result = Result(
        "recovery",
        "Recovery after an outage",
        "`prsteward serve` in its own process stopped (SIGTERM) while the sim (own process) "
        "logs failed deliveries, then started again: the poller's recovery pass "
        "(bot/recovery.py) lists GET /app/hook/deliveries and asks POST .../attempts; the sim "
        "redelivers through the normal intake (bot/server.py inbox); SQLite and PostgreSQL; "
        "default settings (pace 0.1 s, pass at leadership start)",
    )
    events = 50 if small else 500
    say(f"recovery: {events} events missed, SQLite")
    result.figures["sqlite"] = await outage(
        "sqlite", sqlite_url(workdir, "sqlite"), workdir, events=events
    )
    say(f"recovery: {events} events missed, PostgreSQL")
    result.figures["postgresql"] = await on_postgresql(workdir, events=events)
    if not small:
        # What the pace costs: the same with no pause between redelivery requests (as
        # tests/recovery/test_recovery_sim.py measures it, in one process there).
        say(f"recovery: {events} events missed, SQLite, pace 0 (diagnostic)")
        result.figures["sqlite_pace0"] = await outage(
            "sqlite", sqlite_url(workdir, "sqlite-pace0"), workdir, events=events, pace=0.0
        )
    for key, figures in result.figures.items():
        if "skipped" in figures:
            figures = {**figures, "events": events, "pace_seconds": DEFAULT_PACE_SECONDS}
        rows(result, figures.get("backend", key), figures, diagnostic=key == "sqlite_pace0")
    return result
