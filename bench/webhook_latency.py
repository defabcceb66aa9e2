"""Benchmark: webhook deliveries reach the ledger within a second (issue 4).

``tests/watching/test_webhooks_sim.py`` checks that they arrive at all (with a generous deadline);
this measures how long they take. Everything as a user runs it, as in ``bench/recovery.py``: the
sim in its own process (``bench.simproc``, the same server as ``prsteward sim``) with its webhook
URL pointed at ``prsteward serve``, a real child process with the App's credentials and default
settings, on SQLite and on a throw-away PostgreSQL database. The bench process only drives the
sim's control plane and reads the ledger.

Events at a steady, realistic pace (8 a second by default): PRs opened, then labelled, pushed to
(``pull_request`` synchronize) and commented on, each PR visited again only after every other PR
of the run (so no two events in flight touch the same PR). For each event the clock starts just
before the control-plane call that makes the sim emit it, and stops when the bench, polling the
ledger every 10 ms, sees its result on the PR's row: processed, not only stored in the inbox:

- ``open_pull``: the row holds a snapshot with the new PR's title;
- ``label``: the snapshot lists the new label;
- ``push``: the snapshot's head SHA is the new one;
- ``comment``: an ``issue_comment`` only marks the PR to be read again (the snapshot is the
  truth, the poller reads it): the row is dirty for ``issue_comment.created`` since after the
  call (or the poller already read the comment into the snapshot).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    Child,
    Result,
    free_port,
    percentile,
    rounded,
    say,
    sim_process,
    wait_http,
)
from bench.recovery import PG_ADMIN, REPO, _pg, _start_serve, serve_env

KINDS = ("open_pull", "label", "push", "comment")
TARGET_SECONDS = 1.0
POLL_SECONDS = 0.01
EVENT_TIMEOUT = 30.0  # an event not in the ledger by then counts as never arrived


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _spread(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": _ms(percentile(ordered, 0.5)),
        "p99_ms": _ms(percentile(ordered, 0.99)),
        "max_ms": _ms(ordered[-1] if ordered else None),
    }


def _arrived(kind: str, row: Any, expect: str, since: datetime) -> str | None:
    """How the PR row shows the event's result: "webhook", "poller" (a comment the poller has
    already read into the snapshot), or None (not yet)."""
    snapshot = row.snapshot if row is not None else None
    if kind == "comment":
        if row is None:
            return None
        marked = row.dirty_since is not None and row.dirty_since >= since
        if marked and (row.dirty_reason or "").startswith("issue_comment"):
            return "webhook"
        comments = (snapshot or {}).get("comments", [])
        return "poller" if any(c.get("body") == expect for c in comments) else None
    if not snapshot:
        return None
    if kind == "open_pull":
        seen = snapshot.get("title") == expect
    elif kind == "label":
        seen = expect in snapshot.get("labels", [])
    else:  # push
        seen = snapshot.get("head_sha") == expect
    return "webhook" if seen else None


async def _inbox_times(db: Any, since: datetime) -> dict[str, Any]:
    """Inside serve, from its inbox rows received since ``since``: stored -> claimed by a worker
    -> processed (the part of the latency after the acknowledgement)."""
    from sqlalchemy import select

    from ledger.models import WebhookDelivery, table_of

    table = table_of(WebhookDelivery).c
    statement = select(
        table.event, table.state, table.received_at, table.claimed_at, table.processed_at
    ).where(table.received_at >= since)
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    waited = [(r.claimed_at - r.received_at).total_seconds() for r in rows if r.claimed_at]
    done = [(r.processed_at - r.received_at).total_seconds() for r in rows if r.processed_at]
    states: dict[str, int] = defaultdict(int)
    events: dict[str, int] = defaultdict(int)
    for r in rows:
        states[str(r.state)] += 1
        events[str(r.event)] += 1
    return {
        "deliveries": len(rows),
        "by_state": dict(states),
        "by_event": dict(events),
        "stored_to_claimed": _spread(waited),
        "stored_to_processed": _spread(done),
    }


async def measure(
    backend: str,
    database_url: str,
    workdir: Path,
    *,
    events: int,
    rate: float,
) -> dict[str, Any]:
    """One run against a fresh sim and a fresh ledger; the figures."""
    from ledger import pulls
    from ledger.db import Ledger
    from sim.control import SimControl

    rundir = workdir / f"webhook-latency-{backend}"
    rundir.mkdir(exist_ok=True)  # no stray .env is read from here
    port = free_port()
    prs = max(1, events // len(KINDS))
    figures: dict[str, Any] = {"backend": backend, "events": prs * len(KINDS), "rate": rate}
    async with sim_process(
        rundir, "repos=1,prs=2,seed=1", webhook_url=f"http://127.0.0.1:{port}/webhooks"
    ) as sim:
        control = SimControl(sim.url)
        env = serve_env(sim, database_url, port)
        db: Ledger | None = None
        serve: Child | None = None
        try:
            serve = await _start_serve(env, rundir, rundir / "serve.stderr.log")
            await wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120)
            db = Ledger(database_url)  # after serve migrated it
            # The poller's first cycle (discovery and a sweep of the generated PRs) is over
            # before the clock runs, and one PR opened and labelled first warms the path up.
            deadline = time.monotonic() + 120
            while len(await pulls.list_open(db, REPO)) < sim.pulls:
                if time.monotonic() > deadline:
                    raise TimeoutError("webhook latency bench: serve's first sweep")
                await asyncio.sleep(0.1)
            warm = await control.event("open_pull", repo=REPO, title="warm-up", author="zed")
            await control.event("label", repo=REPO, pr=warm["number"], name="warm-up")
            while True:
                row = await pulls.get_pull(db, REPO, warm["number"])
                if row is not None and "warm-up" in (row.snapshot or {}).get("labels", []):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("webhook latency bench: the warm-up event")
                await asyncio.sleep(POLL_SECONDS)

            numbers: dict[int, asyncio.Future[int]] = {
                slot: asyncio.get_running_loop().create_future() for slot in range(prs)
            }
            seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
            lost: dict[str, int] = {kind: 0 for kind in KINDS}
            seen_as: dict[str, int] = {"webhook": 0, "poller": 0}
            measured_from = datetime.now(UTC)
            started = time.perf_counter()
            lag: list[float] = []  # how late the bench itself made each call (its own load)

            async def one(index: int, kind: str, slot: int) -> None:
                due = started + index / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                number = None if kind == "open_pull" else await numbers[slot]
                since = datetime.now(UTC)
                t0 = time.perf_counter()
                lag.append(t0 - due)
                if kind == "open_pull":
                    expect = f"latency {index}"
                    opened = await control.event("open_pull", repo=REPO, title=expect, author="zed")
                    number = int(opened["number"])
                    numbers[slot].set_result(number)
                elif kind == "label":
                    expect = f"latency-{index}"
                    await control.event("label", repo=REPO, pr=number, name=expect)
                elif kind == "push":
                    expect = await control.push(REPO, int(number or 0))
                else:
                    expect = f"latency note {index}"
                    await control.event("comment", repo=REPO, pr=number, user="zed", body=expect)
                assert number is not None and db is not None
                while time.perf_counter() - t0 < EVENT_TIMEOUT:
                    row = await pulls.get_pull(db, REPO, number)
                    how = _arrived(kind, row, expect, since)
                    if how is not None:
                        seconds[kind].append(time.perf_counter() - t0)
                        seen_as[how] += 1
                        return
                    await asyncio.sleep(POLL_SECONDS)
                lost[kind] += 1

            tasks = [
                asyncio.create_task(one(round_ * prs + slot, kind, slot))
                for round_, kind in enumerate(KINDS)
                for slot in range(prs)
            ]
            try:
                await asyncio.gather(*tasks)
            finally:  # a failed control-plane call leaves the others waiting: stop them
                for task in tasks:
                    task.cancel()
            figures["wall_seconds"] = rounded(time.perf_counter() - started, 2)
            every = [s for values in seconds.values() for s in values]
            figures["all"] = _spread(every)
            figures["by_kind"] = {kind: _spread(values) for kind, values in seconds.items()}
            figures["never_arrived"] = sum(lost.values())
            figures["never_arrived_by_kind"] = lost
            figures["seen_as"] = seen_as
            figures["over_target"] = sum(1 for s in every if s >= TARGET_SECONDS)
            figures["bench_call_lag"] = _spread(lag)
            await control.drain_webhooks(timeout=30)
            log = await control.deliveries()
            figures["sim_deliveries"] = len(log)
            figures["sim_deliveries_not_ok"] = sum(1 for d in log if d["status"] != "OK")
            figures["inside_serve"] = await _inbox_times(db, measured_from)
            figures["serve_process"] = serve.usage()
        finally:
            if serve is not None:
                await serve.stop(timeout=30)
            if db is not None:
                await db.close()
            await control.aclose()
    return figures


async def on_postgresql(workdir: Path, **kwargs: Any) -> dict[str, Any]:
    name = f"prsteward_bench_{uuid.uuid4().hex[:10]}"
    try:
        await _pg(f'CREATE DATABASE "{name}"')
    except Exception as error:  # noqa: BLE001 - no PostgreSQL: say so in the results
        return {"skipped": f"PostgreSQL unreachable: {error!r}"}
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        return await measure("postgresql", f"{base}/{name}", workdir, **kwargs)
    finally:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(workdir: Path) -> str:
    path = workdir / "webhook-latency.db"
    for stale in workdir.glob("webhook-latency.db*"):
        stale.unlink()
    return f"sqlite+aiosqlite:///{path}"


def rows(result: Result, backend: str, figures: dict[str, Any]) -> None:
    if "skipped" in figures:
        result.row(
            f"{backend}: sim emits -> ledger holds the result", None, note=figures["skipped"]
        )
        return
    spread, lost = figures["all"], figures["never_arrived"]
    p50, p99, worst = spread["p50_ms"], spread["p99_ms"], spread["max_ms"]
    kinds = "; ".join(
        f"{kind} p50 {v['p50_ms']} / max {v['max_ms']} ms" for kind, v in figures["by_kind"].items()
    )
    inside = figures["inside_serve"]
    result.row(
        f"{backend}, {figures['events']} events at {figures['rate']:g}/s: sim emits -> ledger "
        "holds the result, p50 / p99 / max",
        f"{p50} / {p99} / {worst} ms" if worst is not None else "none arrived",
        target=f"< {TARGET_SECONDS:g} s (issue 4)",
        ok=lost == 0 and worst is not None and worst < TARGET_SECONDS * 1000,
        note=f"{lost} never arrived, {figures['over_target']} took >= {TARGET_SECONDS:g} s; "
        f"{kinds}; inside serve (inbox received -> processed) p50 "
        f"{inside['stored_to_processed']['p50_ms']} / max "
        f"{inside['stored_to_processed']['max_ms']} ms over {inside['deliveries']} deliveries; "
        f"ledger polled every {POLL_SECONDS * 1000:g} ms",
    )


async def run(workdir: Path, *, small: bool) -> Result:
    result = Result(
        "webhook_latency",
        "Webhook latency, sim to ledger",
        "the sim (own process) emits webhooks (PR opened, labelled, pushed to, commented on) "
        "through its control plane to `prsteward serve` (own process, default settings: "
        "bot/webhooks.py intake -> inbox -> workers -> bot/apply.py), read back from the "
        "ledger's PR rows; SQLite and PostgreSQL",
    )
    events, rate = (20, 8.0) if small else (200, 8.0)
    say(f"webhook latency: {events} events at {rate:g}/s, SQLite")
    result.figures["sqlite"] = await measure(
        "sqlite", sqlite_url(workdir), workdir, events=events, rate=rate
    )
    say(f"webhook latency: {events} events at {rate:g}/s, PostgreSQL")
    result.figures["postgresql"] = await on_postgresql(workdir, events=events, rate=rate)
    for backend, figures in result.figures.items():
        rows(result, backend, figures)
    return result
