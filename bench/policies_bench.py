"""Times decide() over 10,000 varied PR snapshots with their histories (issue 5 target: < 1 s CPU).

Run: python3 bench/policies_bench.py [N]. Reports CPU seconds; asserts nothing.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policies.config import Config
from policies.history import JobRecord, JobState, NoticeRecord, PullRequestHistory, SpendSummary
from policies.snapshot import (
    Actor,
    AuthorAssociation,
    CheckOutcome,
    CheckResult,
    Comment,
    Mergeable,
    PullRequestSnapshot,
    Review,
)
from policies.triage import decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AUTHOR = Actor("contributor", False, AuthorAssociation.CONTRIBUTOR)
MAINTAINER = Actor("maintainer", False, AuthorAssociation.MEMBER)
BOT = Actor("dependabot[bot]", True, AuthorAssociation.NONE)
APP = Actor("prsteward[bot]", True, AuthorAssociation.NONE)


def build(rng: random.Random, number: int) -> tuple[PullRequestSnapshot, PullRequestHistory]:
    day = lambda: T0 + timedelta(days=rng.uniform(0, 300))  # noqa: E731
    checks = tuple(
        CheckResult(name, rng.choice(list(CheckOutcome)), completed_at=day())
        for name in rng.sample(["build", "test", "lint", "e2e", "docs"], rng.randint(0, 5))
    )
    comments = tuple(
        Comment(i, rng.choice([AUTHOR, MAINTAINER, BOT, APP]), day(), rng.choice(["ok", "fix?"]))
        for i in range(rng.randint(0, 10))
    )
    reviews = tuple(
        Review(
            100 + i, MAINTAINER, rng.choice(["APPROVED", "CHANGES_REQUESTED", "COMMENTED"]), day()
        )
        for i in range(rng.randint(0, 3))
    )
    snapshot = PullRequestSnapshot(
        repository=f"acme/repo{number % 50}",
        number=number,
        title="change",
        author=AUTHOR,
        created_at=T0,
        updated_at=day(),
        head_sha=f"{number:040x}",
        base_sha="b" * 40,
        is_draft=rng.random() < 0.1,
        labels=tuple(rng.sample(["bug", "needs-rebase", "lifecycle/frozen"], rng.randint(0, 1))),
        review_requests=("maintainer",) if rng.random() < 0.5 else (),
        mergeable=rng.choice(list(Mergeable)),
        review_decision=rng.choice([None, "APPROVED", "CHANGES_REQUESTED", "REVIEW_REQUIRED"]),
        checks=checks,
        reviews=reviews,
        comments=comments,
        head_committed_at=day(),
    )
    jobs = tuple(
        sorted(
            (
                JobRecord(
                    rng.choice(["failing_ci", "conflict"]),
                    f"f{i}",
                    rng.choice(list(JobState)),
                    day(),
                )
                for i in range(rng.randint(0, 4))
            ),
            key=lambda j: j.created_at,
        )
    )
    history = PullRequestHistory(
        jobs=jobs,
        repository_jobs=jobs,
        notices=tuple(NoticeRecord("remind_author", day()) for _ in range(rng.randint(0, 1))),
        last_bot_action_at=day() if rng.random() < 0.5 else None,
    )
    return snapshot, history


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rng = random.Random(5)
    inputs = [build(rng, n) for n in range(count)]
    config = Config(mode="act", flaky_check_patterns=("e2e*",))
    spend = SpendSummary(1.0, 5.0, 20.0, 2.0, 1000)
    now = T0 + timedelta(days=320)
    started = time.process_time()
    decisions = [decide(s, h, config, spend, now) for s, h in inputs]
    cpu = time.process_time() - started
    escalations = sum(len(d.escalations) for d in decisions)
    tiers: dict[str, int] = {}
    for d in decisions:
        tiers[d.tier.tier.value] = tiers.get(d.tier.tier.value, 0) + 1
    print(f"decide() x {count}: {cpu:.3f} s CPU ({cpu / count * 1e6:.0f} us each)")
    print(f"tiers: {dict(sorted(tiers.items()))}; proposed escalations: {escalations}")
    # This machine's speed, to compare runs across machines: a fixed pure-Python loop.
    started = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    loop = time.process_time() - started
    print(
        f"calibration: 10^7-step Python loop took {loop:.3f} s CPU; decide/loop = {cpu / loop:.2f}"
    )


if __name__ == "__main__":
    main()
