"""decide() over real snapshots: the ones prsteward's reconciler stored from the sim's generated
organisation (``bench.reconcile_worker --dump-snapshots``), each with a history (candidates
already posted, past jobs in several states, notices). Prints one JSON line with the CPU time
of the decide() calls alone. ``python -m bench.policies_real --snapshots FILE``."""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from policies.config import Config
from policies.history import (
    CandidateRecord,
    JobRecord,
    JobState,
    NoticeRecord,
    PullRequestHistory,
    SpendSummary,
)
from policies.snapshot import PullRequestSnapshot, snapshot_from_json
from policies.triage import decide


def history_for(rng: random.Random, snapshot: PullRequestSnapshot) -> PullRequestHistory:
    at = snapshot.updated_at
    candidates = tuple(
        CandidateRecord(
            f"{snapshot.repository}#{snapshot.number}:status_comment:{i}",
            "status_comment",
            rng.choice(["posted", "shadow", "suppressed_cooldown"]),
            at - timedelta(hours=rng.randint(1, 200)),
        )
        for i in range(rng.randint(0, 4))
    )
    jobs = tuple(
        sorted(
            (
                JobRecord(
                    rng.choice(["failing_ci", "conflict", "changes_requested"]),
                    f"fp{rng.randint(0, 3)}",
                    rng.choice(list(JobState)),
                    at - timedelta(hours=rng.randint(1, 300)),
                    pull_number=snapshot.number,
                    dollars_spent=rng.random(),
                    tokens_spent=rng.randint(0, 50_000),
                    check_names=("test",),
                )
                for _ in range(rng.randint(0, 3))
            ),
            key=lambda j: j.created_at,
        )
    )
    return PullRequestHistory(
        candidates=candidates,
        jobs=jobs,
        repository_jobs=jobs,
        last_bot_action_at=at - timedelta(hours=rng.randint(1, 100))
        if rng.random() < 0.5
        else None,
        notices=tuple(
            NoticeRecord("remind_author", at - timedelta(days=rng.randint(1, 30)))
            for _ in range(rng.randint(0, 1))
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=Path, required=True)
    args = parser.parse_args()
    snapshots = [snapshot_from_json(json.loads(line)) for line in args.snapshots.open()]
    rng = random.Random(7)
    inputs = [(s, history_for(rng, s)) for s in snapshots]
    config = Config.model_validate(
        {
            "mode": "act",
            "maintainers": ["alice", "bob", "carmen"],
        }
    )
    spend = SpendSummary(1.0, 5.0, 20.0, 2.0, 1000)
    now = max(s.updated_at for s in snapshots) + timedelta(days=1)
    started = time.process_time()
    decisions = [decide(s, h, config, spend, now) for s, h in inputs]
    cpu = time.process_time() - started
    tiers = Counter(d.tier.tier.value for d in decisions)
    triggers = Counter(t.kind.value for d in decisions for t in d.triggers)
    print(
        json.dumps(
            {
                "snapshots": len(snapshots),
                "cpu_seconds": cpu,
                "tiers": dict(tiers),
                "triggers": dict(triggers),
                "escalations_proposed": sum(len(d.escalations) for d in decisions),
                "candidates": sum(len(d.candidates) for d in decisions),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
