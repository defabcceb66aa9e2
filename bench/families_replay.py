"""Issue 14's bench: the postmortem's lane — 88 same-shape PRs arriving one every 4 minutes —
escalations started and tokens spent with families on and off, side by side.

The replay is prsteward's own family rules (``policies.families.replay_arrivals``) over members
fingerprinted from the sim's same-shape generator (``sim.families.same_shape_family``, one action
per PR with renamed identifiers); each escalation that starts is charged a fixed token cost.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Result, say

TOKENS_PER_ESCALATION = 300_000  # an agent session on a one-action PR, order of magnitude


async def run(workdir: Path, *, small: bool) -> Result:
    from bot.families import lane_members
    from policies.config import Config
    from policies.families import replay_arrivals
    from sim.families import same_shape_family

    result = Result(
        "families",
        "Same-shape families: the 88-PR lane",
        "policies.families over fingerprints of sim-generated same-shape PRs, families on vs off",
    )
    count = 20 if small else 88
    say(f"families: {count} same-shape PRs, one every 4 minutes")
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    members = lane_members(
        same_shape_family(1, count=count, first_counter=1), start, minutes_apart=4
    )
    cpu = time.process_time()
    on = replay_arrivals("acme/lane", members, Config(), TOKENS_PER_ESCALATION)
    off = replay_arrivals("acme/lane", members, Config(), TOKENS_PER_ESCALATION, families_on=False)
    cpu = time.process_time() - cpu
    result.figures = {
        "arrivals": count,
        "tokens_per_escalation": TOKENS_PER_ESCALATION,
        "on": {
            "escalations": on.escalations_started,
            "tokens": on.tokens_spent,
            "stopped": on.stopped,
            "tokens_not_spent": on.tokens_not_spent,
        },
        "off": {"escalations": off.escalations_started, "tokens": off.tokens_spent},
        "cpu_seconds": cpu,
    }
    stops = ", ".join(f"{rule} {n}" for rule, n in sorted(on.stopped.items())) or "none"
    result.row(
        f"escalations started, {count} arrivals, families off",
        off.escalations_started,
        note=f"{off.tokens_spent:,} tokens",
    )
    result.row(
        f"escalations started, {count} arrivals, families on",
        on.escalations_started,
        note=f"{on.tokens_spent:,} tokens; stopped: {stops}",
    )
    result.row(
        "tokens not spent because a family stopped",
        on.tokens_not_spent,
        note=f"at {TOKENS_PER_ESCALATION:,} tokens per escalation; replay CPU {cpu:.2f} s",
    )
    return result
