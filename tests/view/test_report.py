"""bot/report.py and `prsteward report`: the three formats show the ledger's figures."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from bot.cli import app
from bot.report import budget_lines, cheapness, print_report, render_json, render_markdown
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from ledger.reporting import gather_report
from tests.view.fill import NOW, fill


async def test_json_has_every_section_with_the_figures(filled: Ledger) -> None:
    data = json.loads(render_json(await gather_report(filled, NOW)))
    assert data["tiers_total"] == {"signal": 2, "closing": 1, "zombie": 1, "active": 2, "exempt": 1}
    assert data["escalations_by_state"]["QUEUED"] == 1
    assert data["spend"]["today"]["dollars"] == 1.5
    assert data["spend"]["week"]["tokens_in"] == 3000
    widgets = next(b for b in data["spend"]["budgets"] if b["scope"] == "acme/widgets")
    assert widgets["today_budget_dollars"] == 30.0 and widgets["week_budget_dollars"] == 210.0
    assert data["candidates"]["suppressed"] == {"budget": 3, "duplicate": 2}
    assert data["github_api"][0]["remaining"] == 4200
    assert data["waiting_on_maintainers"]["longest"][0]["days"] == 10.0
    assert data["stop_loss"][0]["rule_id"] == "stoploss.circuit-breaker"


async def test_markdown_says_waiting_on_maintainers_n_days_and_the_ratio(filled: Ledger) -> None:
    text = render_markdown(await gather_report(filled, NOW))
    assert "acme/gadgets#10 Change number 10: waiting on maintainers, 10 days" in text
    assert "| acme/widgets | act | 5 | 2 | 1 | 1 | 1 | 0 |" in text
    assert "12 proposed: 4 posted, 1 escalated, 5 suppressed, 1 shadow only; 42%" in text
    assert "[stoploss.max-attempts]" in text
    assert "- suppressed (budget): 3" in text


async def test_budget_follows_the_repository_config(ledger: Ledger) -> None:
    await fill(ledger)
    report = await gather_report(ledger, NOW)
    lines = {b.scope: b for b in budget_lines(report)}
    assert lines["all repositories"].today_budget == 60.0
    assert "42%" in cheapness(report)


async def test_rich_table_renders(filled: Ledger) -> None:
    out = io.StringIO()
    print_report(await gather_report(filled, NOW), "table", Console(file=out, width=140))
    text = out.getvalue()
    assert "Queue by tier" in text and "acme/widgets" in text and "VERIFY_FAILED" in text


def test_cli_report_on_an_empty_and_a_filled_ledger(tmp_path: Path, monkeypatch) -> None:
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    monkeypatch.setenv("PRSTEWARD_DATABASE_URL", url)
    runner = CliRunner()
    empty = runner.invoke(app, ["report", "--format", "markdown"])
    assert empty.exit_code == 0, empty.output
    assert "No repository in the ledger yet" in empty.output

    async def populate() -> None:
        async with Ledger(url) as db:
            await fill(db)

    asyncio.run(upgrade_async(url))
    asyncio.run(populate())
    for fmt in ("table", "markdown", "json"):
        result = runner.invoke(app, ["report", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "acme/widgets" in result.output
    bad = runner.invoke(app, ["report", "--format", "xml"])
    assert bad.exit_code == 2


async def test_would_lists_the_latest_shadow_record_of_each_key(filled: Ledger) -> None:
    from bot.report import render_would_markdown
    from ledger.models import Candidate as CandidateRow
    from ledger.reporting import would_do

    ids = await _pull_ids(filled)
    async with filled.transaction() as session:
        for key, outcome, kind, details in [
            ("w1:escalate:fp", "shadow", "escalate", {"budget": {"dollars": 2.5, "tokens": 9}}),
            ("w1:label:x", "shadow", "add_label", {"label": "needs-rebase"}),
            ("w1:label:x", "posted", "add_label", {"label": "needs-rebase"}),  # later: done
        ]:
            session.add(
                CandidateRow(
                    dedupe_key=key,
                    pull_request_id=ids["acme/widgets#1"],
                    kind=kind,
                    rule_id=f"rule.{kind}",
                    reason=f"because {kind}",
                    outcome=outcome,
                    details=details,
                    created_at=NOW,
                )
            )
        session.add(  # a shadow record on a closed PR is not listed
            CandidateRow(
                dedupe_key="w6:close",
                pull_request_id=ids["acme/widgets#6"],
                kind="close",
                rule_id="rule.close",
                reason="gone",
                outcome="shadow",
                created_at=NOW,
            )
        )
    items = await would_do(filled)
    assert [(i.number, i.kind, i.budget_dollars) for i in items] == [
        (1, "escalate", 2.5),
        (3, "status_comment", None),  # fill.py's one shadow candidate
    ]
    text = render_would_markdown(items)
    assert "### acme/widgets: 2 actions, 1 escalations (budget $2.50)" in text
    assert "- #1 escalate (budget $2.50) [rule.escalate]: because escalate" in text


async def _pull_ids(db: Ledger) -> dict[str, int]:
    from sqlalchemy import select

    from ledger.models import PullRequest, Repository

    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Repository.full_name, PullRequest.number, PullRequest.id).join(
                    Repository, Repository.id == PullRequest.repository_id
                )
            )
        ).all()
    return {f"{name}#{number}": int(pid) for name, number, pid in rows}
