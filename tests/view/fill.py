"""A small, fully known ledger for the view tests: every figure the report shows is countable here.

``NOW`` is Monday 2026-11-23 12:00 UTC. Two repositories:

- acme/widgets (mode act): 5 open PRs -- signal x2 (#1 has a QUEUED job, #2 has none: 1 trigger
  waiting), active x1 (#3, maintainers' turn since 4 days), zombie x1 (#4, author's turn),
  closing x1 (#5, author's turn) -- and 1 closed PR (#6, not counted);
- acme/gadgets (mode shadow): 2 open PRs -- active (#10, maintainers' turn since 10 days, the
  longest wait) and exempt (#11, nobody's turn).

Jobs: #1 QUEUED, #3 VERIFIED_DONE, #4 VERIFY_FAILED (two jobs in all on widgets besides #1).
Spend (kind spend): today $1.50 (1000 in / 200 out tokens) on widgets, 3 days ago $2.00
(2000/300) on widgets, 10 days ago $5.00 (not in the week); a reservation of $3.00 and a
release of $1.00 today (reserved $2.00). Candidates: 4 posted, 1 escalated, 3 suppressed_budget,
2 suppressed_duplicate, 1 shadow, 1 pending = 12 proposed. Stop-loss decisions: 2 (the newer one
on widgets#4). API usage: installation 1 graphql: two samples, the newest remaining 4200/5000;
requests today 3 + 2.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.db import Ledger
from ledger.models import (
    Action,
    ApiUsage,
    Candidate,
    Decision,
    EscalationJob,
    Installation,
    Observation,
    PullRequest,
    Repository,
    Spend,
    WebhookDelivery,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _snapshot(repo: str, number: int, title: str) -> dict[str, Any]:
    return {"repository": repo, "number": number, "title": title, "state": "OPEN"}


async def fill(db: Ledger) -> dict[str, int]:
    """Writes the ledger described above; returns the PR ids by ``"repo#n"``."""
    ids: dict[str, int] = {}
    async with db.transaction() as session:
        session.add(
            Installation(
                id=1, account_login="acme", created_at=NOW - 30 * DAY, updated_at=NOW - 30 * DAY
            )
        )
        widgets = Repository(
            full_name="acme/widgets",
            installation_id=1,
            config={"mode": "act"},
            last_sweep_ok_at=NOW - timedelta(minutes=5),
            created_at=NOW - 30 * DAY,
            updated_at=NOW,
        )
        gadgets = Repository(
            full_name="acme/gadgets",
            installation_id=1,
            config={"mode": "shadow"},
            created_at=NOW - 30 * DAY,
            updated_at=NOW,
        )
        session.add_all([widgets, gadgets])
        await session.flush()
        assert widgets.id is not None and gadgets.id is not None
        specs = [
            (widgets.id, "acme/widgets", 1, "open", "signal", "author", None),
            (widgets.id, "acme/widgets", 2, "open", "signal", "author", None),
            (widgets.id, "acme/widgets", 3, "open", "active", "maintainers", 4),
            (widgets.id, "acme/widgets", 4, "open", "zombie", "author", None),
            (widgets.id, "acme/widgets", 5, "open", "closing", "author", None),
            (widgets.id, "acme/widgets", 6, "closed", "closed", "nobody", None),
            (gadgets.id, "acme/gadgets", 10, "open", "active", "maintainers", 10),
            (gadgets.id, "acme/gadgets", 11, "open", "exempt", "nobody", None),
        ]
        pulls: dict[str, PullRequest] = {}
        for repo_id, name, number, state, tier, turn, _waiting_days in specs:
            pr = PullRequest(
                repository_id=repo_id,
                number=number,
                state=state,
                head_sha=f"{number:040x}",
                author_login="alice",
                snapshot=_snapshot(name, number, f"Change number {number}"),
                tier=tier,
                tier_since=NOW - 2 * DAY,
                whose_turn=turn,
                whose_turn_reason=f"turn reason {number}",
                first_seen_at=NOW - 20 * DAY,
                last_changed_at=NOW - 15 * DAY,
                closed_at=NOW - DAY if state == "closed" else None,
            )
            session.add(pr)
            pulls[f"{name}#{number}"] = pr
        await session.flush()
        for key, pr in pulls.items():
            assert pr.id is not None
            ids[key] = pr.id
        for _repo_id, name, number, _state, _tier, turn, waiting_days in specs:
            if waiting_days is None:
                continue
            pr = pulls[f"{name}#{number}"]
            session.add(
                Decision(
                    repository_id=pr.repository_id,
                    pull_request_id=pr.id,
                    kind="whose_turn",
                    rule_id="turn.review-requested",
                    reason="review requested",
                    from_value="author",
                    to_value=turn,
                    decided_at=NOW - waiting_days * DAY,
                )
            )
        w = widgets.id
        p = pulls["acme/widgets#2"]
        # Tier history of widgets#2: active 5 days ago, signal 1 day ago.
        session.add_all(
            [
                Decision(
                    repository_id=w,
                    pull_request_id=p.id,
                    kind="tier",
                    rule_id="tier.active",
                    reason="healthy",
                    to_value="active",
                    decided_at=NOW - 5 * DAY,
                ),
                Decision(
                    repository_id=w,
                    pull_request_id=p.id,
                    kind="tier",
                    rule_id="tier.signal",
                    reason="CI failing: unit-tests",
                    from_value="active",
                    to_value="signal",
                    decided_at=NOW - DAY,
                ),
                Decision(
                    repository_id=w,
                    pull_request_id=pulls["acme/widgets#5"].id,
                    kind="stop_loss",
                    rule_id="stoploss.max-attempts",
                    reason="2 attempts at failing_ci since the last verified fix",
                    decided_at=NOW - 3 * DAY,
                ),
                Decision(
                    repository_id=w,
                    pull_request_id=pulls["acme/widgets#4"].id,
                    kind="stop_loss",
                    rule_id="stoploss.circuit-breaker",
                    reason="3 failed verifications in the repository",
                    decided_at=NOW - DAY,
                ),
            ]
        )
        jobs = []
        for key, state in (
            ("acme/widgets#1", "QUEUED"),
            ("acme/widgets#3", "VERIFIED_DONE"),
            ("acme/widgets#4", "VERIFY_FAILED"),
        ):
            pr = pulls[key]
            job = EscalationJob(
                repository_id=pr.repository_id,
                pull_request_id=pr.id,  # type: ignore[arg-type]
                trigger_kind="failing_ci",
                trigger_fingerprint=f"fp-{key}",
                state=state,
                budget_dollars=3.0,
                budget_tokens=300_000,
                created_at=NOW - 2 * DAY,
                updated_at=NOW - DAY,
            )
            session.add(job)
            jobs.append(job)
        await session.flush()
        done_job = jobs[1]
        spend_rows = [
            ("spend", 1000, 200, 1.5, NOW - timedelta(hours=1)),
            ("spend", 2000, 300, 2.0, NOW - 3 * DAY),
            ("spend", 9000, 900, 5.0, NOW - 10 * DAY),
            ("reservation", 0, 0, 3.0, NOW - timedelta(hours=2)),
            ("release", 0, 0, 1.0, NOW - timedelta(minutes=30)),
        ]
        for kind, tokens_in, tokens_out, dollars, at in spend_rows:
            session.add(
                Spend(
                    job_id=done_job.id,
                    repository_id=w,
                    pull_request_id=pulls["acme/widgets#3"].id,
                    installation_id=1,
                    kind=kind,
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                    dollars=dollars,
                    model="reference-agent",
                    at=at,
                )
            )
        outcomes = (
            ["posted"] * 4
            + ["escalated"]
            + ["suppressed_budget"] * 3
            + ["suppressed_duplicate"] * 2
            + ["shadow", "pending"]
        )
        for index, outcome in enumerate(outcomes):
            session.add(
                Candidate(
                    dedupe_key=f"acme/widgets#3:k:{index}",
                    repository_id=w,
                    pull_request_id=pulls["acme/widgets#3"].id,
                    kind="escalate" if outcome == "escalated" else "status_comment",
                    rule_id="rule.x",
                    reason="because",
                    outcome=outcome,
                    created_at=NOW - timedelta(hours=index + 1),
                )
            )
        session.add(
            Action(
                repository_id=w,
                pull_request_id=pulls["acme/widgets#3"].id,
                kind="status_comment",
                status="done",
                http_status=201,
                github_id="77",
                performed_at=NOW - timedelta(hours=1),
            )
        )
        session.add(
            Observation(
                pull_request_id=pulls["acme/widgets#3"].id,  # type: ignore[arg-type]
                observed_at=NOW - 2 * DAY,
                source="poll",
                fingerprint="f1",
                head_sha="a" * 40,
                snapshot=_snapshot("acme/widgets", 3, "Change number 3"),
            )
        )
        for minutes, remaining, requests in ((90, 4500, 3), (10, 4200, 2)):
            session.add(
                ApiUsage(
                    installation_id=1,
                    resource="graphql",
                    limit=5000,
                    remaining=remaining,
                    used=5000 - remaining,
                    cost=1,
                    reset_at=NOW + timedelta(minutes=30),
                    requests=requests,
                    sampled_at=NOW - timedelta(minutes=minutes),
                )
            )
        for index, (event, state) in enumerate(
            [("pull_request", "processed")] * 3 + [("check_suite", "ignored"), ("push", "pending")]
        ):
            session.add(
                WebhookDelivery(
                    delivery_id=f"d-{index}",
                    event=event,
                    action="opened",
                    received_at=NOW - timedelta(minutes=index + 1),
                    payload=b"{}",
                    state=state,
                )
            )
    return ids
