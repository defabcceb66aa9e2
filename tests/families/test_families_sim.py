"""Families end to end: the sim serves 20 same-shape PRs (S085..S104) with failing CI; the engine
with a FamilyWatch reads each diff once per head SHA, escalates members 1-5 only, records the
responses and keeps exactly one consolidation issue, edited in place."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.families import FamilyWatch
from bot.report import build_report, render_markdown, report_json
from ledger import families as ledger_families
from ledger.models import Candidate, Decision, table_of
from sim.families import counter_title_controls, different_code_controls, same_shape_family
from tests.acting.conftest import acting_scenario

FILES = "GET /repos/{owner}/{repo}/pulls/{pull_number}/files"
ISSUES = "POST /repos/{owner}/{repo}/issues"
EDIT = "PATCH /repos/{owner}/{repo}/issues/{issue_number}"
CHECKS = {"build": "success", "lint": "failure"}


class RecordingHook:
    """An escalation hook that records which PRs were escalated (no job is opened)."""

    def __init__(self) -> None:
        self.numbers: list[int] = []

    async def __call__(self, db: Any, *, decision: Any, now: datetime, **_: Any) -> int | None:
        self.numbers.append(decision.number)
        return None


def scenario(
    mode: str = "act", count: int = 20, controls: int = 5, humans: int = 0
) -> dict[str, Any]:
    family = same_shape_family(1, count=count, checks=CHECKS)
    others = [{**spec, "checks": CHECKS} for spec in counter_title_controls(21, count=controls)]
    people = different_code_controls(41, count=humans)  # human authors, nothing to escalate
    return acting_scenario(mode=mode, pulls=family + others + people)


async def build(acting_world: Any, mode: str = "act", **sizes: int) -> tuple[Any, RecordingHook]:
    hook = RecordingHook()
    world = await acting_world(scenario(mode, **sizes), escalate=hook)
    world.engine.families = FamilyWatch(world.db, world.app.installation)
    await world.sync()
    return world, hook


async def escalate_outcomes(world: Any) -> dict[int, tuple[str, str | None]]:
    from ledger.models import PullRequest

    columns, pulls = table_of(Candidate).c, table_of(PullRequest).c
    statement = (
        select(pulls.number, columns.outcome, columns.outcome_reason)
        .join_from(table_of(Candidate), table_of(PullRequest))
        .where(columns.kind == "escalate")
        .order_by(columns.id)
    )
    async with world.db.read() as session:
        rows = (await session.execute(statement)).all()
    return {int(n): (o, r) for n, o, r in rows}


async def family_decisions(world: Any) -> dict[str, int]:
    columns = table_of(Decision).c
    async with world.db.read() as session:
        rows = (await session.execute(select(Decision).where(columns.kind == "family"))).scalars()
        return {d.rule_id: d.details.get("at_member") for d in rows}


async def test_family_of_20_escalates_5_and_keeps_one_consolidation_issue(
    acting_world: Any,
) -> None:
    world, hook = await build(acting_world)
    await world.evaluate()

    assert hook.numbers == [1, 2, 3, 4, 5, 21, 22, 23, 24, 25]  # controls form no family
    outcomes = await escalate_outcomes(world)
    for number in range(6, 21):
        outcome, reason = outcomes[number]
        assert outcome == "suppressed_family"
        assert reason is not None and reason.startswith("family-substitution:")
    assert {n for n in range(21, 26) if outcomes[n][0] == "suppressed_family"} == set()
    assert await family_decisions(world) == {
        "family.name-invariant": 3,
        "family.propose-helper": 3,
        "family.consolidate": 5,
        "family-substitution": 6,
    }
    (family,) = await ledger_families.list_families(world.db)
    assert family.members == list(range(1, 21))
    assert family.tracking_issue_number is not None
    accounting = await world.control.accounting()
    assert accounting["writes"][ISSUES] == 1  # created at 3 members
    assert accounting["writes"][EDIT] == 2  # edited when it consolidated (5) and stopped (6)
    assert accounting["requests"][FILES] == 25  # one diff read per PR at its head SHA

    await world.control.advance("11m")  # the members since wait for the next edit
    await world.evaluate()
    await world.evaluate()  # nothing changed: no new reads, no new writes
    again = await world.control.accounting()
    assert again["requests"][FILES] == 25
    assert again["writes"][ISSUES] == 1
    assert again["writes"][EDIT] == 3
    assert await ledger_families.count_fingerprints(world.db) == 25
    issue = world.server.sim.state.repo("acme", "widgets").issues[family.tracking_issue_number]
    assert issue.body.startswith(f"<!-- prsteward:family:{family.family_key} -->")
    assert "| #20 | 2 | green | red | 0 | family-substitution |" in issue.body

    report = await build_report(world.db, await world.now())
    (summary,) = report.families
    assert (summary.state, len(summary.members), summary.stopped) == ("stopped", 20, 15)
    assert "### Same-shape families" in render_markdown(report)
    assert report_json(report)["families"][0]["tracking_issue"] == family.tracking_issue_number


async def test_new_head_sha_is_read_once_more_and_continue_releases(acting_world: Any) -> None:
    world, _ = await build(acting_world, mode="shadow", count=7, controls=0, humans=3)
    await world.evaluate()
    outcomes = await escalate_outcomes(world)
    assert [outcomes[n][0] for n in (5, 6, 7)] == [
        "shadow",
        "suppressed_family",
        "suppressed_family",
    ]

    await world.control.event("push", repo="acme/widgets", pr=3)
    await world.control.event(
        "comment", repo="acme/widgets", pr=7, user="alice", body="/prsteward family continue"
    )
    await world.sync()
    await world.evaluate()
    await world.evaluate()
    accounting = await world.control.accounting()
    assert accounting["requests"][FILES] == 8  # 7 PRs, PR 3 again at its new head; no human PR
    assert await ledger_families.count_fingerprints(world.db) == 8
    assert ISSUES not in accounting["writes"]  # shadow mode writes nothing
    (family,) = await ledger_families.list_families(world.db)
    assert family.tracking_issue_number is None and family.details["shadow_issue_hash"]
    assert family.details["continued_at"]
    outcomes = await escalate_outcomes(world)
    assert [outcomes[n][0] for n in (6, 7)] == ["shadow", "shadow"]
    assert "family.answer.continue" in await family_decisions(world)
