"""``prsteward report``: the ledger, read for a maintainer, as rich tables, Markdown or JSON.

All figures come from :mod:`ledger.reporting` (one read); budgets come from each repository's
stored config (``policies.config``), the built-in defaults when it has none. The same Markdown is
used by the summary issue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.budgets import (
    SPEND_CLASS_COLUMNS,
    render_spend_table,
    spend_class_cells,
    spend_rows_json,
)
from ledger.db import Ledger
from ledger.families import FamilySummary, family_summaries
from ledger.reporting import TIER_ORDER, ReportData, WouldDo, gather_report
from policies.config import DEFAULT_CONFIG, Config

FORMATS = ("table", "markdown", "json")


def config_of(stored: dict[str, Any] | None) -> Config:
    """The repository's stored config as a ``Config``; the defaults when absent or unreadable."""
    if not stored:
        return DEFAULT_CONFIG
    try:
        return Config.model_validate(stored)
    except ValueError:
        return DEFAULT_CONFIG


@dataclass(frozen=True, slots=True)
class BudgetLine:
    scope: str  # "acme/widgets" or "all repositories"
    today_dollars: float
    today_budget: float
    week_dollars: float
    week_budget: float
    today_tokens: int
    week_tokens: int

    @staticmethod
    def share(spent: float, budget: float) -> str:
        return f"{spent / budget:.0%}" if budget > 0 else "-"


def budget_lines(report: ReportData) -> list[BudgetLine]:
    """Spend against each repository's ``budgets.dollars-per-repository-day`` (x7 for the week),
    then the total against the sum of those budgets."""
    spent = {s.repository: s for s in report.spend_by_repository}
    lines = []
    for queue in report.repositories:
        day_budget = config_of(queue.config).budgets.dollars_per_repository_day
        row = spent.get(queue.repository)
        lines.append(
            BudgetLine(
                scope=queue.repository,
                today_dollars=row.today.dollars if row else 0.0,
                today_budget=day_budget,
                week_dollars=row.week.dollars if row else 0.0,
                week_budget=7 * day_budget,
                today_tokens=row.today.tokens if row else 0,
                week_tokens=row.week.tokens if row else 0,
            )
        )
    total_day = sum(line.today_budget for line in lines)
    lines.append(
        BudgetLine(
            scope="all repositories",
            today_dollars=report.spend_today.dollars,
            today_budget=total_day,
            week_dollars=report.spend_week.dollars,
            week_budget=7 * total_day,
            today_tokens=report.spend_today.tokens,
            week_tokens=report.spend_week.tokens,
        )
    )
    return lines


def cheapness(report: ReportData) -> str:
    """The one line that shows the app is cheap: how few proposals cost a write or an agent."""
    counts = report.candidates
    if counts.proposed == 0:
        return "no candidates proposed yet"
    acted = counts.posted + counts.escalated
    suppressed = sum(counts.suppressed.values())
    return (
        f"{counts.proposed} proposed: {counts.posted} posted, {counts.escalated} escalated, "
        f"{suppressed} suppressed, {counts.shadow} shadow only; "
        f"{acted / counts.proposed:.0%} reached GitHub or an agent"
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _money(value: float) -> str:
    return f"${value:,.2f}"


# --- JSON ----------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def report_json(report: ReportData) -> dict[str, Any]:
    now = report.generated_at
    return {
        "generated_at": _iso(now),
        "behind": list(report.behind),
        "open_total": report.open_total,
        "tiers_total": report.tiers_total(),
        "repositories": [
            {
                "repository": q.repository,
                "mode": q.mode,
                "watch_only": q.watch_only,
                "open": q.open_total,
                "tiers": q.tiers,
                "whose_turn": q.turns,
                "config_error": q.config_error,
                "last_sweep_ok_at": _iso(q.last_sweep_ok_at),
            }
            for q in report.repositories
        ],
        "waiting_on_maintainers": {
            "total": report.waiting_on_maintainers_total,
            "longest": [
                {
                    "repository": w.repository,
                    "number": w.number,
                    "title": w.title,
                    "days": round(w.days(now), 1),
                    "at_least": w.at_least,
                    "reason": w.reason,
                }
                for w in report.waiting_on_maintainers
            ],
        },
        "triggers_waiting": {
            "total": report.triggers_waiting_total,
            "oldest": [
                {
                    "repository": t.repository,
                    "number": t.number,
                    "since": _iso(t.since),
                    "reason": t.reason,
                }
                for t in report.triggers_waiting
            ],
        },
        "escalations_by_state": report.jobs_by_state,
        "spend": {
            "today": {
                "dollars": report.spend_today.dollars,
                "tokens_in": report.spend_today.tokens_in,
                "tokens_out": report.spend_today.tokens_out,
                "reserved_dollars": report.spend_today.reserved_dollars,
            },
            "week": {
                "dollars": report.spend_week.dollars,
                "tokens_in": report.spend_week.tokens_in,
                "tokens_out": report.spend_week.tokens_out,
            },
            "budgets": [
                {
                    "scope": b.scope,
                    "today_dollars": b.today_dollars,
                    "today_budget_dollars": b.today_budget,
                    "week_dollars": b.week_dollars,
                    "week_budget_dollars": b.week_budget,
                    "today_tokens": b.today_tokens,
                    "week_tokens": b.week_tokens,
                }
                for b in budget_lines(report)
            ],
        },
        "github_api": [
            {
                "installation_id": a.installation_id,
                "resource": a.resource,
                "limit": a.limit,
                "remaining": a.remaining,
                "used": a.used,
                "reset_at": _iso(a.reset_at),
                "sampled_at": _iso(a.sampled_at),
                "requests_today": a.requests_today,
                "cost_today": a.cost_today,
            }
            for a in report.api_usage
        ],
        "candidates": {
            "proposed": report.candidates.proposed,
            "posted": report.candidates.posted,
            "escalated": report.candidates.escalated,
            "shadow": report.candidates.shadow,
            "suppressed": report.candidates.suppressed,
            "by_outcome": report.candidates.by_outcome,
            "by_kind": report.candidates.by_kind,
        },
        "stop_loss": [
            {
                "repository": s.repository,
                "number": s.number,
                "rule_id": s.rule_id,
                "reason": s.reason,
                "decided_at": _iso(s.decided_at),
            }
            for s in report.stop_loss
        ],
        "families": [family_json(f) for f in report.families],
        "spend_by_trigger_and_size": spend_rows_json(report.spend_classes),  # issue 11
        "permission_boundaries": list(report.boundaries),
    }


def family_json(family: FamilySummary) -> dict[str, Any]:
    """One same-shape family (issue 14): members, surfaces, spend, stops, tokens not spent."""
    return {
        "repository": family.repository,
        "key": family.key,
        "state": family.state,
        "state_reason": family.state_reason,
        "members": list(family.members),
        "surfaces": list(family.surfaces),
        "tokens": family.tokens,
        "dollars": family.dollars,
        "tokens_per_member": family.tokens_per_member,
        "median_tokens_per_member": family.median_tokens_per_member,
        "stopped_members": family.stopped,
        "tokens_not_spent": family.tokens_not_spent,
        "tracking_issue": family.tracking_issue_number,
    }


def family_line(family: FamilySummary) -> str:
    issue = f", issue #{family.tracking_issue_number}" if family.tracking_issue_number else ""
    return (
        f"- {family.repository} `{family.key}` **{family.state}**: {len(family.members)} PRs "
        f"(#{family.members[0] if family.members else '-'}..#"
        f"{family.members[-1] if family.members else '-'}) on "
        f"{', '.join(f'`{s}`' for s in family.surfaces)}; {family.tokens:,} tokens "
        f"({_money(family.dollars)}), {family.tokens_per_member:,.0f} per member; "
        f"{family.stopped} stopped, ~{family.tokens_not_spent:,} tokens not spent{issue}"
    )


def render_json(report: ReportData) -> str:
    return json.dumps(report_json(report), indent=2, sort_keys=False)


# --- Markdown ------------------------------------------------------------------------------------


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out


def _tier_columns(report: ReportData) -> list[str]:
    seen = {tier for q in report.repositories for tier in q.tiers}
    return [t for t in TIER_ORDER if t in seen] + sorted(seen - set(TIER_ORDER))


def render_markdown(report: ReportData) -> str:
    now = report.generated_at
    lines = [f"## prsteward report ({_when(now)} UTC)", ""]
    if report.behind:
        lines += ["**prsteward is behind:** " + "; ".join(report.behind), ""]
    if not report.repositories:
        lines += ["No repository in the ledger yet: nothing has been watched so far.", ""]
    else:
        tiers = _tier_columns(report)
        lines += ["### Queue by tier", ""]
        rows = [
            [q.repository, q.mode or "-", str(q.open_total)]
            + [str(q.tiers.get(t, 0)) for t in tiers]
            for q in report.repositories
        ]
        totals = report.tiers_total()
        rows.append(
            ["**all**", "", str(report.open_total)] + [str(totals.get(t, 0)) for t in tiers]
        )
        lines += [*_md_table(["repository", "mode", "open", *tiers], rows), ""]
    lines += [f"### Waiting on maintainers: {report.waiting_on_maintainers_total}", ""]
    lines += [
        f"- {w.repository}#{w.number} {w.title}: waiting on maintainers, {w.days_text(now)}"
        + (f" ({w.reason})" if w.reason else "")
        for w in report.waiting_on_maintainers
    ] or ["- none"]
    lines += ["", f"### Triggers waiting: {report.triggers_waiting_total}", ""]
    lines += [
        f"- {t.repository}#{t.number} since {_when(t.since)}"
        + (f": {t.reason}" if t.reason else "")
        for t in report.triggers_waiting
    ] or ["- none"]
    lines += ["", "### Escalations by state", ""]
    lines += [f"- {state}: {count}" for state, count in report.jobs_by_state.items()] or ["- none"]
    lines += ["", "### Spend against budget", ""]
    lines += _md_table(
        ["scope", "today", "day budget", "this week", "week budget", "tokens today", "tokens week"],
        [
            [
                b.scope,
                _money(b.today_dollars),
                f"{_money(b.today_budget)} ({b.share(b.today_dollars, b.today_budget)})",
                _money(b.week_dollars),
                f"{_money(b.week_budget)} ({b.share(b.week_dollars, b.week_budget)})",
                f"{b.today_tokens:,}",
                f"{b.week_tokens:,}",
            ]
            for b in budget_lines(report)
        ],
    )
    if report.spend_today.reserved_dollars:
        lines.append(f"\nReserved for running jobs: {_money(report.spend_today.reserved_dollars)}")
    lines += ["", "### GitHub API", ""]
    if report.api_usage:
        lines += _md_table(
            ["installation", "resource", "used / limit", "remaining", "resets", "requests today"],
            [
                [
                    str(a.installation_id),
                    a.resource,
                    f"{a.used if a.used is not None else '?'} / {a.limit or '?'}",
                    str(a.remaining if a.remaining is not None else "?"),
                    _when(a.reset_at),
                    str(a.requests_today),
                ]
                for a in report.api_usage
            ],
        )
    else:
        lines.append("- no rate-limit sample yet")
    lines += ["", "### Candidates", "", cheapness(report), ""]
    suppressed = report.candidates.suppressed
    lines += [f"- suppressed ({reason}): {count}" for reason, count in suppressed.items()]
    lines += ["", "### Latest stop-loss decisions", ""]
    lines += [
        f"- {_when(s.decided_at)} {s.repository or '-'}#{s.number or '-'} [{s.rule_id}]: {s.reason}"
        for s in report.stop_loss
    ] or ["- none"]
    lines += ["", "### Same-shape families", ""]
    lines += [family_line(f) for f in report.families] or ["- none"]
    lines += ["", *render_spend_table(report.spend_classes)]  # issue 11
    lines += ["", "### Permission boundaries", ""]
    lines += [f"- {line}" for line in report.boundaries] or ["- none"]
    return "\n".join(lines) + "\n"


# --- rich ----------------------------------------------------------------------------------------

TIER_STYLE = {
    "signal": "bold yellow",
    "closing": "bold red",
    "zombie": "magenta",
    "active": "green",
    "exempt": "dim",
}


def _or_none(table: Table) -> Table | Text:
    """The table, or one dim line when it has no rows."""
    if table.row_count:
        return table
    return Text(f"{table.title}: none", style="dim")


def render_rich(report: ReportData) -> Group:
    now = report.generated_at
    parts: list[Any] = []
    if not report.repositories:
        parts.append(
            Panel(
                "No repository in the ledger yet: nothing has been watched so far.", title="Queue"
            )
        )
    else:
        tiers = _tier_columns(report)
        queue = Table(title="Queue by tier", title_justify="left")
        queue.add_column("repository")
        queue.add_column("mode")
        queue.add_column("open", justify="right")
        for tier in tiers:
            queue.add_column(tier, justify="right", style=TIER_STYLE.get(tier, ""))
        for q in report.repositories:
            mode = q.mode or "-"
            if q.watch_only:
                mode += " (watch-only)"
            queue.add_row(
                q.repository, mode, str(q.open_total), *[str(q.tiers.get(t, 0)) for t in tiers]
            )
        totals = report.tiers_total()
        queue.add_row(
            Text("all", style="bold"),
            "",
            str(report.open_total),
            *[str(totals.get(t, 0)) for t in tiers],
            end_section=True,
        )
        parts.append(queue)
    waiting = Table(
        title=f"Waiting on maintainers ({report.waiting_on_maintainers_total})",
        title_justify="left",
    )
    waiting.add_column("PR")
    waiting.add_column("title", overflow="ellipsis", max_width=50)
    waiting.add_column("waiting", justify="right")
    waiting.add_column("why")
    for w in report.waiting_on_maintainers:
        waiting.add_row(f"{w.repository}#{w.number}", w.title, w.days_text(now), w.reason or "")
    parts.append(waiting)
    triggers = Table(
        title=f"Triggers waiting ({report.triggers_waiting_total})", title_justify="left"
    )
    triggers.add_column("PR")
    triggers.add_column("since")
    triggers.add_column("trigger")
    for t in report.triggers_waiting:
        triggers.add_row(f"{t.repository}#{t.number}", _when(t.since), t.reason or "")
    parts.append(triggers)
    jobs = Table(title="Escalations by state", title_justify="left")
    jobs.add_column("state")
    jobs.add_column("jobs", justify="right")
    for state, count in report.jobs_by_state.items():
        jobs.add_row(state, str(count))
    parts.append(jobs)
    spend = Table(title="Spend against budget", title_justify="left")
    for column in (
        "scope",
        "today",
        "of day budget",
        "this week",
        "of week budget",
        "tokens today",
    ):
        spend.add_column(column, justify="left" if column == "scope" else "right")
    for b in budget_lines(report):
        spend.add_row(
            b.scope,
            _money(b.today_dollars),
            f"{_money(b.today_budget)} ({b.share(b.today_dollars, b.today_budget)})",
            _money(b.week_dollars),
            f"{_money(b.week_budget)} ({b.share(b.week_dollars, b.week_budget)})",
            f"{b.today_tokens:,}",
        )
    parts.append(spend)
    api = Table(title="GitHub API", title_justify="left")
    for column in ("installation", "resource", "used / limit", "remaining", "requests today"):
        api.add_column(column)
    for a in report.api_usage:
        api.add_row(
            str(a.installation_id),
            a.resource,
            f"{a.used if a.used is not None else '?'} / {a.limit or '?'}",
            str(a.remaining if a.remaining is not None else "?"),
            str(a.requests_today),
        )
    parts.append(api)
    candidates = Table(title="Candidates", title_justify="left", caption=cheapness(report))
    candidates.add_column("outcome")
    candidates.add_column("count", justify="right")
    for outcome, count in report.candidates.by_outcome.items():
        candidates.add_row(outcome, str(count))
    parts.append(candidates)
    stop = Table(title="Latest stop-loss decisions", title_justify="left")
    stop.add_column("when")
    stop.add_column("PR")
    stop.add_column("rule")
    stop.add_column("reason")
    for s in report.stop_loss:
        stop.add_row(
            _when(s.decided_at), f"{s.repository or '-'}#{s.number or '-'}", s.rule_id, s.reason
        )
    parts.append(stop)
    families = Table(title="Same-shape families", title_justify="left")
    for column in ("family", "state", "members", "tokens", "per member", "stopped", "not spent"):
        families.add_column(column)
    for f in report.families:
        families.add_row(
            f"{f.repository} {f.key}",
            f.state,
            str(len(f.members)),
            f"{f.tokens:,}",
            f"{f.tokens_per_member:,.0f}",
            str(f.stopped),
            f"~{f.tokens_not_spent:,}",
        )
    parts.append(families)
    by_class = Table(title="Spend by trigger and size", title_justify="left")  # issue 11
    for column in SPEND_CLASS_COLUMNS:
        by_class.add_column(column)
    for row in spend_class_cells(report.spend_classes):
        by_class.add_row(*row)
    parts.append(by_class)
    return Group(*[_or_none(p) if isinstance(p, Table) else p for p in parts])


def print_report(report: ReportData, fmt: str, console: Console | None = None) -> None:
    """Print ``report`` in one of ``FORMATS`` to ``console`` (stdout by default)."""
    console = console or Console()
    if fmt == "json":
        console.file.write(render_json(report) + "\n")
    elif fmt == "markdown":
        console.file.write(render_markdown(report))
    else:
        console.print(render_rich(report))


# --- the shadow run: what prsteward would do (issue 12 item 7) ----------------------------------


def _what(item: WouldDo) -> str:
    return item.kind + (f" `{item.label}`" if item.label else "")


def would_json(items: list[WouldDo]) -> list[dict[str, Any]]:
    return [
        {
            "repository": i.repository,
            "number": i.number,
            "kind": i.kind,
            "label": i.label,
            "rule_id": i.rule_id,
            "reason": i.reason,
            "budget_dollars": i.budget_dollars,
            "budget_tokens": i.budget_tokens,
            "since": _iso(i.since),
        }
        for i in items
    ]


def render_would_markdown(items: list[WouldDo]) -> str:
    """Per repository, exactly what prsteward would do in ``act`` mode, and why."""
    if not items:
        return "## What prsteward would do\n\nNothing: no action is waiting in shadow mode.\n"
    lines = ["## What prsteward would do", ""]
    by_repo: dict[str, list[WouldDo]] = {}
    for item in items:
        by_repo.setdefault(item.repository, []).append(item)
    for repository, group in by_repo.items():
        escalations = [i for i in group if i.kind == "escalate"]
        budget = sum(i.budget_dollars or 0.0 for i in escalations)
        lines += [
            f"### {repository}: {len(group)} actions"
            + (
                f", {len(escalations)} escalations (budget {_money(budget)})" if escalations else ""
            ),
            "",
        ]
        for item in group:
            cost = f" (budget {_money(item.budget_dollars)})" if item.budget_dollars else ""
            lines.append(f"- #{item.number} {_what(item)}{cost} [{item.rule_id}]: {item.reason}")
        lines.append("")
    return "\n".join(lines)


def print_would(items: list[WouldDo], fmt: str, console: Console | None = None) -> None:
    console = console or Console()
    if fmt == "json":
        console.file.write(json.dumps(would_json(items), indent=2) + "\n")
    elif fmt == "markdown":
        console.file.write(render_would_markdown(items))
    else:
        table = Table(title=f"What prsteward would do ({len(items)})", title_justify="left")
        for column in ("PR", "action", "budget", "rule", "why"):
            table.add_column(column)
        for item in items:
            table.add_row(
                f"{item.repository}#{item.number}",
                item.kind + (f" {item.label}" if item.label else ""),
                _money(item.budget_dollars) if item.budget_dollars else "",
                item.rule_id,
                item.reason,
            )
        console.print(_or_none(table))


async def build_report(db: Ledger, now: datetime, cadence_seconds: float = 3600.0) -> ReportData:
    from bot.selfcheck import judge
    from ledger.selfcheck import read_health

    report = await gather_report(db, now)
    health = judge(await read_health(db), now, cadence_seconds)  # issue 12: "prsteward is behind"
    from bot.boundaries import describe
    from bot.budgets import spend_report
    from ledger.boundaries import list_boundaries

    return replace(
        report,
        families=await family_summaries(db),
        behind=health.behind,
        spend_classes=await spend_report(db),  # issue 11
        boundaries=tuple(describe(row) for row in await list_boundaries(db)),
    )
