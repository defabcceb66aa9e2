"""The dashboard: read-only, server-rendered HTML on the service's own aiohttp app.

Pages (all ``GET``): ``/`` overview, ``/repos/{owner}/{name}`` one repository's queue,
``/repos/{owner}/{name}/pulls/{number}`` one PR's history, ``/jobs`` the escalation jobs; and
``/metrics`` (Prometheus text, :mod:`bot.metrics`). No JavaScript at all: charts are inline SVG
and the Content-Security-Policy forbids scripts.

Auth: on a loopback address with no token set, open (it is your own machine). With
``PRSTEWARD_DASHBOARD_TOKEN`` set, every page wants it: ``Authorization: Bearer TOKEN``, basic auth
with TOKEN as the password (any user name), or ``?token=TOKEN`` once, which sets an HttpOnly cookie
(an HMAC of the token, never the token itself) and redirects to the same page without it. Bound to
any other address with no token, the dashboard refuses to serve: every page answers 403 saying
which variable to set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.metrics import CONTENT_TYPE, behind_reasons, render_metrics
from bot.report import budget_lines, cheapness
from ledger.db import Ledger
from ledger.families import family_summaries
from ledger.reporting import (
    TIER_ORDER,
    daily_spend,
    escalation_jobs,
    first_seen,
    gather_report,
    metrics_data,
    pull_history,
    repository_pulls,
    tiers_over_time,
)

log = logging.getLogger("prsteward.dashboard")

COOKIE = "prsteward_dashboard"
TIER_COLOURS = {
    "signal": "#d97706",
    "closing": "#dc2626",
    "zombie": "#7c3aed",
    "active": "#16a34a",
    "exempt": "#94a3b8",
    "unknown": "#cbd5e1",
}
TURN_LABELS = {"author": "author", "maintainers": "maintainers", "ci": "CI", "nobody": "nobody"}
JOB_STATE_CLASS = {
    "VERIFIED_DONE": "ok",
    "VERIFY_FAILED": "bad",
    "BUDGET_EXHAUSTED": "bad",
    "NEEDS_HUMAN": "warn",
    "BLOCKED": "warn",
    "LEASE_EXPIRED": "warn",
}

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, :: and anything else."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DashboardConfigError(Exception):
    """The dashboard may not be served as configured."""


# --- HTML helpers --------------------------------------------------------------------------------


def h(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def repo_url(repository: str) -> str:
    owner, _, name = repository.partition("/")
    return f"/repos/{quote(owner)}/{quote(name)}"


def pull_url(repository: str, number: int) -> str:
    return f"{repo_url(repository)}/pulls/{number}"


def tier_badge(tier: str | None) -> str:
    name = tier or "unknown"
    colour = TIER_COLOURS.get(name, "#64748b")
    return f'<span class="badge" style="background:{colour}">{h(name)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str = "none") -> str:
    """An HTML table; cells are already-escaped HTML."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="empty">{h(empty)}</p>'
    head = "".join(f"<th>{h(x)}</th>" for x in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- SVG charts ----------------------------------------------------------------------------------


def bar_chart(points: Sequence[tuple[datetime, float]], *, label: str, unit: str = "$") -> str:
    """Daily bars with a y-axis maximum and day labels; a <title> on each bar for hover."""
    width, height, left, bottom, top = 560, 160, 44, 22, 10
    inner_w, inner_h = width - left - 8, height - bottom - top
    peak = max((v for _, v in points), default=0.0)
    scale = peak if peak > 0 else 1.0
    step = inner_w / max(1, len(points))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{h(label)}">',
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - 8}" y2="{top + inner_h}" '
        'stroke="#94a3b8"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="axis">'
        f"{h(unit)}{peak:,.2f}</text>",
        f'<text x="{left - 4}" y="{top + inner_h}" text-anchor="end" class="axis">0</text>',
    ]
    for index, (day, value) in enumerate(points):
        bar_h = inner_h * value / scale
        x = left + index * step + step * 0.15
        y = top + inner_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{bar_h:.1f}" '
            f'fill="#2563eb"><title>{day:%Y-%m-%d}: {h(unit)}{value:,.2f}</title></rect>'
        )
        if index % max(1, len(points) // 7) == 0 or index == len(points) - 1:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{height - 6}" text-anchor="middle" '
                f'class="axis">{day:%m-%d}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def stacked_chart(series: Sequence[tuple[datetime, dict[str, int]]], *, label: str) -> str:
    """Daily stacked bars of open PRs by tier, with a legend."""
    width, height, left, bottom, top = 560, 180, 44, 40, 10
    inner_w, inner_h = width - left - 8, height - bottom - top
    peak = max((sum(c.values()) for _, c in series), default=0)
    scale = peak if peak > 0 else 1
    step = inner_w / max(1, len(series))
    tiers = [t for t in TIER_ORDER if any(t in c for _, c in series)]
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{h(label)}">',
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - 8}" y2="{top + inner_h}" '
        'stroke="#94a3b8"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="axis">{peak}</text>',
        f'<text x="{left - 4}" y="{top + inner_h}" text-anchor="end" class="axis">0</text>',
    ]
    for index, (day, counts) in enumerate(series):
        x = left + index * step + step * 0.15
        y = float(top + inner_h)
        for tier in tiers:
            count = counts.get(tier, 0)
            if not count:
                continue
            bar_h = inner_h * count / scale
            y -= bar_h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{bar_h:.1f}" '
                f'fill="{TIER_COLOURS.get(tier, "#64748b")}"><title>{day:%Y-%m-%d} {h(tier)}: '
                f"{count}</title></rect>"
            )
        if index % max(1, len(series) // 7) == 0 or index == len(series) - 1:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{top + inner_h + 14}" text-anchor="middle" '
                f'class="axis">{day:%m-%d}</text>'
            )
    legend_x = left
    for tier in tiers:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" '
            f'fill="{TIER_COLOURS.get(tier, "#64748b")}"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}" class="axis">{h(tier)}</text>'
        )
        legend_x += 80
    parts.append("</svg>")
    return "".join(parts)


def tier_bar(tiers: dict[str, int]) -> str:
    """One horizontal stacked bar of a repository's queue."""
    total = sum(tiers.values())
    if not total:
        return '<span class="empty">no open PRs</span>'
    parts = ['<svg class="tierbar" viewBox="0 0 200 12" preserveAspectRatio="none">']
    x = 0.0
    for tier, count in tiers.items():
        w = 200 * count / total
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="12" '
            f'fill="{TIER_COLOURS.get(tier, "#64748b")}"><title>{h(tier)}: {count}</title></rect>'
        )
        x += w
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
:root { color-scheme: light; --fg:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:var(--bg); }
header { background:#0f172a; color:#fff; padding:10px 24px; display:flex; gap:24px;
  align-items:center; }
header a { color:#cbd5e1; text-decoration:none; } header a:hover { color:#fff; }
header .brand { font-weight:700; color:#fff; font-size:16px; }
main { padding:20px 24px; max-width:1200px; margin:0 auto; }
h1 { font-size:20px; margin:0 0 12px; } h2 { font-size:15px; margin:24px 0 8px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(140px,1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .n { font-size:24px; font-weight:700; } .card .l { color:var(--muted); font-size:12px; }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit,minmax(420px,1fr)); gap:16px; }
.panel { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
table { border-collapse:collapse; width:100%; background:#fff; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; }
a { color:#1d4ed8; }
.badge { color:#fff; border-radius:10px; padding:1px 8px; font-size:12px; white-space:nowrap; }
.state { font-family:ui-monospace,monospace; font-size:12px; }
.ok { color:#15803d; } .bad { color:#b91c1c; } .warn { color:#b45309; }
.empty { color:var(--muted); font-style:italic; }
.chart { width:100%; max-width:560px; height:auto; }
.chart .axis { font-size:10px; fill:#64748b; }
.tierbar { width:200px; height:12px; border-radius:3px; }
.health { padding:8px 12px; border-radius:6px; margin:0 0 12px; }
.health.good { background:#dcfce7; } .health.behind { background:#fee2e2; }
code, .mono { font-family:ui-monospace,monospace; font-size:12px; }
pre { background:#fff; border:1px solid var(--line); padding:8px; overflow:auto; font-size:12px; }
footer { color:var(--muted); font-size:12px; padding:16px 24px; text-align:center; }
"""


def page(title: str, body: str, now: datetime) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{h(title)} - prsteward</title><style>{STYLE}</style></head><body>"
        '<header><a class="brand" href="/">prsteward</a><a href="/">Overview</a>'
        '<a href="/jobs">Escalation jobs</a><a href="/metrics">Metrics</a></header>'
        f"<main>{body}</main>"
        f"<footer>read-only view of the ledger, {h(when(now))} UTC</footer></body></html>"
    )


# --- the dashboard -------------------------------------------------------------------------------


class Dashboard:
    def __init__(
        self,
        db: Ledger,
        *,
        host: str,
        token: str | None,
        clock: Clock | None = None,
        full_sweep_seconds: float = 3600.0,
    ) -> None:
        self.db = db
        self.host = host
        self.token = token or None
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.full_sweep_seconds = full_sweep_seconds
        self.loopback = is_loopback(host)

    @property
    def enabled(self) -> bool:
        """Served at all: on loopback, or anywhere with a token."""
        return self.loopback or self.token is not None

    def mount(self, app: web.Application) -> None:
        if not self.enabled:
            log.warning(
                "dashboard and /metrics disabled: bound to %s (not loopback) without "
                "PRSTEWARD_DASHBOARD_TOKEN",
                self.host,
            )
        app.router.add_get("/", self._guard(self.overview))
        app.router.add_get("/jobs", self._guard(self.jobs))
        app.router.add_get("/repos/{owner}/{name}", self._guard(self.repository))
        app.router.add_get(r"/repos/{owner}/{name}/pulls/{number:\d+}", self._guard(self.pull))
        app.router.add_get("/metrics", self._guard(self.metrics))

    # --- auth ---

    def cookie_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"prsteward-dashboard", hashlib.sha256).hexdigest()

    def _token_matches(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _authorised(self, request: web.Request) -> bool:
        if self.token is None:
            return self.loopback
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and self._token_matches(credentials.strip()):
            return True
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            _user, sep, password = decoded.partition(":")
            if sep and self._token_matches(password):
                return True
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, self.cookie_value())

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.enabled:
                return web.Response(
                    status=403,
                    text="prsteward: the dashboard is bound to a non-loopback address without "
                    "PRSTEWARD_DASHBOARD_TOKEN, so it refuses to serve. Set the token (or bind "
                    "to 127.0.0.1).\n",
                )
            given = request.query.get("token")
            if given is not None and self.token is not None:
                if not self._token_matches(given):
                    return self._challenge()
                rest = {k: v for k, v in request.query.items() if k != "token"}
                target = request.path + ("?" + urlencode(rest) if rest else "")
                redirect = web.Response(status=303, headers={"Location": target})
                redirect.set_cookie(
                    COOKIE,
                    self.cookie_value(),
                    httponly=True,
                    samesite="Strict",
                    secure=request.secure,
                    path="/",
                    max_age=30 * 86400,
                )
                return redirect
            if not self._authorised(request):
                return self._challenge()
            response = await handler(request)
            response.headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            )
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded

    @staticmethod
    def _challenge() -> web.Response:
        return web.Response(
            status=401,
            text="prsteward: authentication required (bearer token, basic auth, or ?token=).\n",
            headers={"WWW-Authenticate": 'Basic realm="prsteward", charset="UTF-8"'},
        )

    @staticmethod
    def _html(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    # --- pages ---

    async def _window(self, now: datetime) -> int:
        """Days the charts cover: since the ledger began, at least 7 and at most 30."""
        first = await first_seen(self.db)
        if first is None:
            return 7
        return max(7, min(30, (now.date() - first.date()).days + 1))

    async def overview(self, _request: web.Request) -> web.Response:
        now = self.clock()
        report = await gather_report(self.db, now)
        window = await self._window(now)
        spend = await daily_spend(self.db, now, days=window)
        tiers = await tiers_over_time(self.db, now, days=window)
        health = await metrics_data(self.db, now)
        behind = behind_reasons(health, now, self.full_sweep_seconds)
        in_flight = sum(
            count
            for state, count in report.jobs_by_state.items()
            if state in {"DETECTED", "QUEUED", "LEASED", "RUNNING", "CLAIMED_DONE", "VERIFYING"}
        )
        total_line = budget_lines(report)[-1]
        graphql = [a for a in report.api_usage if a.resource == "graphql"]
        reserve = (
            f"{min(a.remaining for a in graphql if a.remaining is not None):,}"
            if any(a.remaining is not None for a in graphql)
            else "-"
        )
        cards = [
            (str(report.open_total), "open PRs watched"),
            (str(report.tiers_total().get("signal", 0)), "PRs with a trigger (signal)"),
            (str(report.triggers_waiting_total), "triggers waiting for a job"),
            (str(in_flight), "escalations in flight"),
            (str(report.waiting_on_maintainers_total), "waiting on maintainers"),
            (
                f"{money(total_line.today_dollars)}",
                f"spent today of {money(total_line.today_budget)}",
            ),
            (reserve, "GraphQL points left (lowest installation)"),
        ]
        body = ["<h1>Overview</h1>"]
        if behind:
            body.append(
                '<div class="health behind"><b>prsteward is behind:</b> '
                + "; ".join(h(r) for r in behind)
                + "</div>"
            )
        else:
            backlog = "none waiting"
            if health.oldest_pending_delivery is not None:
                backlog = "oldest waiting since " + ago(health.oldest_pending_delivery, now)
            body.append(
                f'<div class="health good">Healthy: sweeps on time; webhook backlog {h(backlog)}.'
                "</div>"
            )
        body.append(
            '<div class="cards">'
            + "".join(
                f'<div class="card"><div class="n">{h(n)}</div><div class="l">{h(label)}</div>'
                "</div>"
                for n, label in cards
            )
            + "</div>"
        )
        body.append(
            '<div class="grid2">'
            f'<div class="panel"><h2>Open PRs by tier, last {window} days</h2>'
            f"{stacked_chart(tiers, label='open PRs by tier per day')}</div>"
            f'<div class="panel"><h2>Agent spend per day, last {window} days</h2>'
            f"{bar_chart(spend, label='dollars spent per day')}</div></div>"
        )
        tier_names = [t for t in TIER_ORDER if t in report.tiers_total()]
        body.append("<h2>Repositories</h2>")
        body.append(
            table(
                ["repository", "mode", "open", "queue", *tier_names, "last good sweep"],
                [
                    [
                        f'<a href="{h(repo_url(q.repository))}">{h(q.repository)}</a>',
                        h((q.mode or "-") + (" (watch-only)" if q.watch_only else "")),
                        str(q.open_total),
                        tier_bar(q.tiers),
                        *[str(q.tiers.get(t, 0)) for t in tier_names],
                        h(ago(q.last_sweep_ok_at, now)),
                    ]
                    for q in report.repositories
                ],
                empty="No repository in the ledger yet: nothing has been watched so far.",
            )
        )
        body.append('<div class="grid2"><div>')
        body.append(f"<h2>Waiting on maintainers ({report.waiting_on_maintainers_total})</h2>")
        body.append(
            table(
                ["PR", "title", "waiting"],
                [
                    [
                        f'<a href="{h(pull_url(w.repository, w.number))}">'
                        f"{h(w.repository)}#{w.number}</a>",
                        h(w.title),
                        h(w.days_text(now)),
                    ]
                    for w in report.waiting_on_maintainers
                ],
            )
        )
        body.append(f"</div><div><h2>Triggers waiting ({report.triggers_waiting_total})</h2>")
        body.append(
            table(
                ["PR", "since", "trigger"],
                [
                    [
                        f'<a href="{h(pull_url(t.repository, t.number))}">'
                        f"{h(t.repository)}#{t.number}</a>",
                        h(ago(t.since, now)),
                        h(t.reason or ""),
                    ]
                    for t in report.triggers_waiting
                ],
            )
        )
        body.append("</div></div>")
        body.append('<div class="grid2"><div><h2>Spend against budget</h2>')
        body.append(
            table(
                ["scope", "today", "day budget", "this week", "tokens today"],
                [
                    [
                        h(b.scope),
                        money(b.today_dollars),
                        f"{money(b.today_budget)} ({h(b.share(b.today_dollars, b.today_budget))})",
                        money(b.week_dollars),
                        f"{b.today_tokens:,}",
                    ]
                    for b in budget_lines(report)
                ],
            )
        )
        body.append("</div><div><h2>Candidates</h2>")
        body.append(f"<p>{h(cheapness(report))}</p>")
        body.append(
            table(
                ["outcome", "count"],
                [[h(o), str(c)] for o, c in report.candidates.by_outcome.items()],
            )
        )
        body.append("</div></div>")
        body.append('<div class="grid2"><div><h2>Escalations by state</h2>')
        body.append(
            table(
                ["state", "jobs"],
                [
                    [
                        f'<a class="state" href="/jobs?state={h(quote(s))}">{h(s)}</a>',
                        str(c),
                    ]
                    for s, c in report.jobs_by_state.items()
                ],
            )
        )
        body.append("</div><div><h2>GitHub API</h2>")
        body.append(
            table(
                ["installation", "resource", "used / limit", "remaining", "requests today"],
                [
                    [
                        h(a.installation_id),
                        h(a.resource),
                        f"{h(a.used if a.used is not None else '?')} / {h(a.limit or '?')}",
                        h(a.remaining if a.remaining is not None else "?"),
                        str(a.requests_today),
                    ]
                    for a in report.api_usage
                ],
                empty="no rate-limit sample yet",
            )
        )
        body.append("</div></div><h2>Latest stop-loss decisions</h2>")
        body.append(
            table(
                ["when", "PR", "rule", "reason"],
                [
                    [
                        h(when(s.decided_at)),
                        (
                            f'<a href="{h(pull_url(s.repository, s.number))}">'
                            f"{h(s.repository)}#{s.number}</a>"
                            if s.repository and s.number is not None
                            else "-"
                        ),
                        f"<code>{h(s.rule_id)}</code>",
                        h(s.reason),
                    ]
                    for s in report.stop_loss
                ],
            )
        )
        body.append("<h2>Same-shape families</h2>")  # issue 14 (bot/families.py)
        body.append(
            table(
                [
                    "family",
                    "state",
                    "members",
                    "surfaces",
                    "tokens",
                    "per member",
                    "stopped",
                    "not spent (est.)",
                ],
                [
                    [
                        f"{h(f.repository)} <code>{h(f.key)}</code>"
                        + (
                            f" (issue #{f.tracking_issue_number})"
                            if f.tracking_issue_number
                            else ""
                        ),
                        h(f.state),
                        str(len(f.members)),
                        "<br>".join(f"<code>{h(s)}</code>" for s in f.surfaces),
                        f"{f.tokens:,}",
                        f"{f.tokens_per_member:,.0f}",
                        str(f.stopped),
                        f"{f.tokens_not_spent:,}",
                    ]
                    for f in await family_summaries(self.db)
                ],
            )
        )
        from bot.budgets import SPEND_CLASS_COLUMNS, spend_class_cells, spend_report

        body.append("<h2>Spend by trigger and size</h2>")  # issue 11 (bot/budgets.py)
        body.append(
            table(
                list(SPEND_CLASS_COLUMNS),
                [[h(c) for c in row] for row in spend_class_cells(await spend_report(self.db))],
            )
        )
        return self._html(page("Overview", "".join(body), now))

    async def repository(self, request: web.Request) -> web.Response:
        now = self.clock()
        full_name = f"{request.match_info['owner']}/{request.match_info['name']}"
        show_closed = request.query.get("closed") == "1"
        queue, pulls = await repository_pulls(self.db, full_name, include_closed=show_closed)
        if queue is None:
            return self._html(
                page("Not found", f"<h1>No repository {h(full_name)} in the ledger</h1>", now),
                status=404,
            )
        window = await self._window(now)
        series = await tiers_over_time(self.db, now, days=window, repository=full_name)
        body = [
            f"<h1>{h(full_name)}</h1>",
            f"<p>mode <b>{h(queue.mode or '-')}</b>"
            + (" (watch-only)" if queue.watch_only else "")
            + f"; {queue.open_total} open; last good sweep {h(ago(queue.last_sweep_ok_at, now))}."
            + (
                f' <span class="bad">Config error: {h(queue.config_error)}</span>'
                if queue.config_error
                else ""
            )
            + "</p>",
            f'<div class="grid2"><div class="panel"><h2>Queue by tier, last {window} days</h2>'
            f"{stacked_chart(series, label='open PRs by tier per day')}</div>"
            '<div class="panel"><h2>Whose turn</h2>'
            + table(
                ["turn", "open PRs"],
                [[h(TURN_LABELS.get(t, t)), str(c)] for t, c in queue.turns.items()],
            )
            + "</div></div>",
            "<h2>Pull requests"
            + (
                ' (with closed; <a href="?">open only</a>)'
                if show_closed
                else ' (open; <a href="?closed=1">with closed</a>)'
            )
            + "</h2>",
            table(
                ["PR", "title", "tier", "tier since", "whose turn", "why", "last change"],
                [
                    [
                        f'<a href="{h(pull_url(full_name, p.number))}">#{p.number}</a>',
                        h(p.title)
                        + (" <b>frozen</b>" if p.frozen else "")
                        + (" <b>paused</b>" if p.paused else ""),
                        tier_badge(p.tier),
                        h(ago(p.tier_since, now)),
                        h(TURN_LABELS.get(p.whose_turn or "", p.whose_turn or "-")),
                        h(p.whose_turn_reason or ""),
                        h(ago(p.last_changed_at, now)),
                    ]
                    for p in pulls
                ],
                empty="no open PRs",
            ),
        ]
        return self._html(page(full_name, "".join(body), now))

    async def pull(self, request: web.Request) -> web.Response:
        now = self.clock()
        full_name = f"{request.match_info['owner']}/{request.match_info['name']}"
        number = int(request.match_info["number"])
        history = await pull_history(self.db, full_name, number)
        if history is None:
            return self._html(
                page("Not found", f"<h1>No PR {h(full_name)}#{number} in the ledger</h1>", now),
                status=404,
            )
        p = history.pull
        total = history.spend_total
        body = [
            f'<h1><a href="{h(repo_url(full_name))}">{h(full_name)}</a>#{number} {h(p.title)}</h1>',
            f"<p>{tier_badge(p.tier)} since {h(ago(p.tier_since, now))}; state "
            f"<b>{h(p.state)}</b>; author {h(p.author or '-')}; head "
            f"<code>{h((history.head_sha or '-')[:12])}</code>; whose turn: "
            f"<b>{h(TURN_LABELS.get(p.whose_turn or '', p.whose_turn or '-'))}</b>"
            f" ({h(p.whose_turn_reason or '')})"
            + (" <b>frozen</b>" if p.frozen else "")
            + (" <b>paused</b>" if p.paused else "")
            + "</p>",
            f"<p>Spend on this PR: {money(total.dollars)} ({total.tokens:,} tokens)"
            + (f", {money(total.reserved_dollars)} reserved" if total.reserved_dollars else "")
            + ".</p>",
            "<h2>Decisions</h2>",
            table(
                ["when", "kind", "rule", "change", "reason"],
                [
                    [
                        h(when(d["decided_at"])),
                        h(d["kind"]),
                        f"<code>{h(d['rule_id'])}</code>",
                        h(
                            f"{d['from_value'] or ''} → {d['to_value']}"
                            if d["to_value"] is not None
                            else ""
                        ),
                        h(d["reason"]),
                    ]
                    for d in history.decisions
                ],
            ),
            "<h2>Candidates</h2>",
            table(
                ["when", "kind", "rule", "reason", "outcome"],
                [
                    [
                        h(when(c["created_at"])),
                        h(c["kind"]),
                        f"<code>{h(c['rule_id'])}</code>",
                        h(c["reason"]),
                        h(c["outcome"])
                        + (f" ({h(c['outcome_reason'])})" if c["outcome_reason"] else ""),
                    ]
                    for c in history.candidates
                ],
            ),
            "<h2>Actions on GitHub</h2>",
            table(
                ["when", "kind", "status", "HTTP", "error"],
                [
                    [
                        h(when(a["performed_at"])),
                        h(a["kind"]),
                        h(a["status"]),
                        h(a["http_status"] or ""),
                        h(a["error"] or ""),
                    ]
                    for a in history.actions
                ],
            ),
            "<h2>Maintainer commands</h2>",
            table(
                ["when", "who", "command", "accepted", "reason", "effect"],
                [
                    [
                        h(when(c["at"])),
                        h(c["author_login"]),
                        f"<code>/prsteward {h(' '.join([c['command'], *c['args']]))}</code>",
                        "yes" if c["accepted"] else "no",
                        h(c["reason"] or ""),
                        h(c["effect"] or "pending"),
                    ]
                    for c in history.commands
                ],
            ),
            "<h2>Escalation jobs</h2>",
            table(
                ["job", "created", "trigger", "state", "attempt", "budget"],
                [
                    [
                        f"#{j['id']}",
                        h(when(j["created_at"])),
                        h(j["trigger_kind"]),
                        f'<span class="state {JOB_STATE_CLASS.get(j["state"], "")}">'
                        f"{h(j['state'])}</span>"
                        + (f" {h(j['state_reason'])}" if j["state_reason"] else ""),
                        f"{j['attempt']} of {j['max_attempts']}",
                        money(j["budget_dollars"]),
                    ]
                    for j in history.jobs
                ],
            ),
            "<h2>Agent attempts</h2>",
            table(
                ["job", "started", "ended", "claimed", "verdict"],
                [
                    [
                        f"#{a['job_id']}",
                        h(when(a["started_at"])),
                        h(when(a["ended_at"])),
                        h(a["claimed_outcome"] or "-"),
                        h(a["verdict"] or "-")
                        + (f" ({h(a['verdict_reason'])})" if a["verdict_reason"] else ""),
                    ]
                    for a in history.attempts
                ],
            ),
            "<h2>Spend</h2>",
            table(
                ["when", "kind", "job", "tokens in", "tokens out", "dollars", "model"],
                [
                    [
                        h(when(s["at"])),
                        h(s["kind"]),
                        h(f"#{s['job_id']}" if s["job_id"] else "-"),
                        f"{s['tokens_in']:,}",
                        f"{s['tokens_out']:,}",
                        money(s["dollars"]),
                        h(s["model"] or ""),
                    ]
                    for s in history.spend
                ],
            ),
            "<h2>Observations</h2>",
            table(
                ["when", "source", "head", "delivery"],
                [
                    [
                        h(when(o["observed_at"])),
                        h(o["source"]),
                        f"<code>{h((o['head_sha'] or '')[:12])}</code>",
                        h(o["delivery_id"] or ""),
                    ]
                    for o in history.observations
                ],
            ),
        ]
        return self._html(page(f"{full_name}#{number}", "".join(body), now))

    async def jobs(self, request: web.Request) -> web.Response:
        now = self.clock()
        state = request.query.get("state") or None
        rows = await escalation_jobs(self.db, state=state)
        title = "Escalation jobs" + (f" in {state}" if state else "")
        body = [
            f"<h1>{h(title)}</h1>",
            '<p><a href="/jobs">all states</a></p>' if state else "",
            table(
                ["job", "PR", "trigger", "state", "attempt", "spent / budget", "updated"],
                [
                    [
                        f"#{j.id}",
                        f'<a href="{h(pull_url(j.repository, j.number))}">'
                        f"{h(j.repository)}#{j.number}</a>",
                        h(j.trigger_kind),
                        f'<span class="state {JOB_STATE_CLASS.get(j.state, "")}">{h(j.state)}'
                        "</span>" + (f" {h(j.state_reason)}" if j.state_reason else ""),
                        f"{j.attempt} of {j.max_attempts}",
                        f"{money(j.dollars_spent)} / {money(j.budget_dollars)}",
                        h(ago(j.updated_at, now)),
                    ]
                    for j in rows
                ],
                empty="no escalation job yet",
            ),
        ]
        return self._html(page(title, "".join(body), now))

    async def metrics(self, _request: web.Request) -> web.Response:
        body = await render_metrics(self.db, self.clock(), self.full_sweep_seconds)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
