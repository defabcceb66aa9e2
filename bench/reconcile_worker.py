"""prsteward's own reconciler, alone in a process, against a sim in another process.

``python -m bench.reconcile_worker --sim URL --app-id N --key FILE --database URL`` runs, each
phase between a reset and a read of the sim's request accounting:

1. ``first``: discovery and the poller's first cycle into an empty ledger (cheap check, then a
   full sweep: every snapshot is new);
2. ``quiet``: an ordinary cycle with nothing changed (one conditional request per repository);
3. ``full``: a steady-state full sweep (ledger warm, nothing changed);
4. ``after_full`` and ``quiet_again``: the ordinary cycles after that full sweep;
5. ``full_after_restart``: a full sweep by a new Reconciler on the same ledger, as after a
   restart (nothing in memory, nothing changed: the ledger remembers each PR's node digest,
   which the new Reconciler loads once per repository).

CPU seconds (all threads of this process) and wall time are measured around each phase only;
the peak RSS is this process's high-water mark. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import resource
import time
from pathlib import Path
from typing import Any

from bot.github import GitHubApp
from bot.reconcile import Reconciler, RepoResult
from bot.service import tune_garbage_collection
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from sim.control import SimControl


def summarise(results: list[RepoResult]) -> dict[str, Any]:
    return {
        "repositories": len(results),
        "read": sum(r.read for r in results),
        "changed": sum(len(r.changed) for r in results),
        "unchanged_304": sum(1 for r in results if r.unchanged),
        "client_requests": sum(r.requests for r in results),
        "graphql_cost_seen": sum(r.graphql_cost for r in results),
        "errors": [e for r in results for e in r.errors][:5],
        "modes": sorted({r.mode for r in results}),
    }


def accounting_summary(data: dict[str, Any]) -> dict[str, Any]:
    totals = data.get("totals", {})
    return {
        "requests": int(totals.get("requests", 0)),
        "charged": int(totals.get("charged", 0)),
        "conditional_hits": int(totals.get("conditional_hits", 0)),
        "graphql_points": int(totals.get("graphql_points", 0)),
        "graphql_queries": int(totals.get("graphql_queries", 0)),
        "by_endpoint": dict(data.get("requests", {})),
    }


# Where the reconciler's CPU goes: cumulative seconds under these functions, (file suffix,
# function name) as cProfile names them. They overlap where one calls another (the ledger's
# statements run under record_snapshots, the JSON decoding under the GitHub requests), and the
# profiler's own overhead inflates fine-grained Python most.
PROFILE_PARTS = {
    "GitHub requests (bot/github.py InstallationClient.request: githubkit + httpx)": (
        "bot/github.py",
        "request",
    ),
    "githubkit making an HTTP client (once per installation)": (
        "githubkit/core.py",
        "_create_async_client",
    ),
    "decoding GraphQL answers (httpx Response.json)": ("httpx/_models.py", "json"),
    "reading PR nodes (bot/reconcile.py _read_node: digest, or normalise + fingerprint)": (
        "bot/reconcile.py",
        "_read_node",
    ),
    "PR node digest (bot/reconcile.py node_digest)": ("bot/reconcile.py", "node_digest"),
    "normalise GraphQL -> snapshot JSON (policies/normalize.py graphql_snapshot_json)": (
        "policies/normalize.py",
        "graphql_snapshot_json",
    ),
    "fingerprint (policies/snapshot.py fingerprint_of_json)": (
        "policies/snapshot.py",
        "fingerprint_of_json",
    ),
    "ledger: a page's snapshots (ledger/pulls.py record_snapshots, one transaction)": (
        "ledger/pulls.py",
        "record_snapshots",
    ),
    "ledger: every statement (SQLAlchemy AsyncSession.execute)": (
        "sqlalchemy/ext/asyncio/session.py",
        "execute",
    ),
    "discovery (bot/reconcile.py discover)": ("bot/reconcile.py", "discover"),
}
# Waiting for the sim or for SQLite's thread, not CPU (cProfile's default clock is wall time;
# process CPU time as its clock costs a system call per event and distorts everything).
IDLE = frozenset({"<method 'poll' of 'select.epoll' objects>"})


def profile_summary(paths: list[Path]) -> dict[str, float]:
    import pstats

    stats = pstats.Stats(*(str(path) for path in paths))
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    summary: dict[str, float] = {}
    total = 0.0
    for (filename, _line, function), (_cc, _nc, own, cumulative, _callers) in table.items():
        if function in IDLE:
            continue
        total += own
        for label, (suffix, name) in PROFILE_PARTS.items():
            if function == name and filename.endswith(suffix):
                summary[label] = summary.get(label, 0.0) + cumulative
    summary["total profiled CPU"] = total  # excluding the waits in IDLE
    return summary


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--app-id", type=int, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--dump-snapshots", type=Path, default=None)
    parser.add_argument(
        "--default-gc", action="store_true", help="leave the garbage collector's defaults"
    )
    parser.add_argument("--profile", type=Path, default=None, help="cProfile stats of the phases")
    args = parser.parse_args()

    await upgrade_async(args.database)
    db = Ledger(args.database)
    control = SimControl(args.sim)
    app = GitHubApp(app_id=args.app_id, private_key=args.key.read_text(), api_url=args.sim)
    reconciler = Reconciler(app, db)
    out: dict[str, Any] = {"phases": {}}
    if not args.default_gc:
        tune_garbage_collection()  # as `prsteward serve` does once it has started

    # CPU time, not wall time: waiting for the sim is not the reconciler's cost.
    phase_profiles: dict[str, cProfile.Profile] = {}

    # CPU spent in the garbage collector (whichever code's allocation set it off).
    collecting = {"since": 0.0, "seconds": 0.0}

    def count_collections(stage: str, _info: dict[str, Any]) -> None:
        if stage == "start":
            collecting["since"] = time.process_time()
        else:
            collecting["seconds"] += time.process_time() - collecting["since"]

    gc.callbacks.append(count_collections)

    async def phase(name: str, run: Any) -> None:
        await control.reset_accounting()
        gc0 = collecting["seconds"]
        own = cProfile.Profile() if args.profile is not None else None
        if own is not None:
            phase_profiles[name] = own
            own.enable()
        cpu0, wall0, main0 = time.process_time(), time.perf_counter(), time.thread_time()
        results = await run()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        main_thread = time.thread_time() - main0
        if own is not None:
            own.disable()
        accounting = accounting_summary(await control.accounting())
        out["phases"][name] = {
            "cpu_seconds": cpu,
            # the event loop's thread alone (the rest: aiosqlite's thread running SQLite)
            "main_thread_cpu_seconds": main_thread,
            "wall_seconds": wall,
            "gc_cpu_seconds": collecting["seconds"] - gc0,
            "sim": accounting,
            "reconciler": summarise(results),
        }

    async def first() -> list[RepoResult]:
        await reconciler.discover()
        return await reconciler.run_cycle()  # the poller's first cycle: check, then full sweep

    try:
        await phase("first", first)
        await phase("quiet", lambda: reconciler.run_cycle())
        await phase("full", lambda: reconciler.run_cycle(full=True))
        await phase("after_full", lambda: reconciler.run_cycle())
        await phase("quiet_again", lambda: reconciler.run_cycle())
        # A restarted process: a new Reconciler (node digests only in the ledger), same ledger.
        restarted = Reconciler(app, db)
        await phase("full_after_restart", lambda: restarted.run_cycle(full=True))
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["repositories_in_ledger"] = len(await repositories.list_repositories(db))
        if args.dump_snapshots is not None:
            count = 0
            with args.dump_snapshots.open("w") as handle:
                for repo in await repositories.list_repositories(db):
                    for row in await pulls.list_open(db, repo.full_name):
                        if row.snapshot is not None:
                            handle.write(json.dumps(row.snapshot, separators=(",", ":")) + "\n")
                            count += 1
            out["snapshots_dumped"] = count
        if args.profile is not None and phase_profiles:
            by_phase: dict[str, dict[str, float]] = {}
            for name, own in phase_profiles.items():
                path = args.profile.with_name(f"{args.profile.stem}-{name}{args.profile.suffix}")
                own.dump_stats(str(path))
                by_phase[name] = profile_summary([path])
            out["profile_by_phase"] = by_phase
            out["profile"] = profile_summary(
                [
                    args.profile.with_name(f"{args.profile.stem}-{n}{args.profile.suffix}")
                    for n in phase_profiles
                ]
            )
    finally:
        await control.aclose()
        await db.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
