"""The optional summary issue on GitHub (issue 7 item 2; issue 12 items 7-8; issue 11 item 2).

With ``summary.enabled`` in a repository's config, prsteward keeps ONE tracking issue for it
(``summary.repository: null``), or one issue in another repository of the org (for example
``acme/.github``) shared by every repository that names it. The body comes from the same ledger
reads as ``prsteward report``: the queue by tier, PRs waiting on maintainers for N days, triggers
waiting, escalations by state, budget-exhausted jobs waiting for a grant, permission boundaries,
spend against budget, the candidate ratio; in shadow mode what prsteward would do (the
``--would`` list); and "prsteward is behind: ..." when its own health says so.

Writes, only in ``act`` mode (every repository of the scope in ``act``):

- the issue is created once, then EDITED IN PLACE: never a new issue or a comment per cycle;
- at most every ``summary.min-interval-minutes``, and only when the body's hash changed;
- crash safe like the executor: the body carries a hidden marker
  ``<!-- prsteward:summary=SCOPE -->`` and the ledger records ``summary.creating`` before the
  create; a run that finds a create never confirmed looks for the marked issue and adopts it, and
  creates nothing when it cannot look (``ledger/summary.py``).

Shadow mode writes nothing to GitHub: it records the hash of what it would post, and when.
The body holds no clock time, so an unchanged ledger gives an unchanged body (no write).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from bot.executor import WritePacer
from bot.github import GitHubError
from bot.report import _md_table, budget_lines, cheapness, config_of, render_would_markdown
from ledger import summary as ledger_summary
from ledger.db import Ledger
from ledger.models import JobState, Repository
from ledger.reporting import TIER_ORDER, CandidateCounts, ReportData, WouldDo

log = logging.getLogger("prsteward.summary")

MAX_LOOKUP_PAGES = 5


class IssueClient(Protocol):
    """What the summary needs of an installation client (``bot.github.InstallationClient``)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        write: bool = False,
    ) -> httpx.Response: ...


def scope_marker(scope: str) -> str:
    return f"<!-- prsteward:summary={scope.replace('--', '-~')} -->"


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Target:
    """One summary issue: where it lives and which repositories it covers."""

    scope: str  # "acme/widgets" (its own issue) or "org:acme/.github"
    repository: str  # where the issue lives
    installation_id: int
    repositories: tuple[str, ...]
    repository_ids: tuple[int, ...]
    title: str
    min_interval: timedelta
    acting: bool
    own_repository_id: int | None  # the issue's repository row, for a per-repository summary


def targets_of(rows: Iterable[Repository]) -> list[Target]:
    """The summary issues the repositories' configs ask for (pure)."""
    own: list[Target] = []
    shared: dict[str, list[tuple[Repository, Any]]] = {}
    for row in rows:
        if row.removed_at is not None or row.ignored or row.installation_id is None:
            continue
        if row.id is None:
            continue
        config = config_of(row.config)
        if not config.enabled or not config.summary.enabled:
            continue
        acting = config.mode == "act" and not row.archived and not row.watch_only
        if config.summary.repository is None:
            own.append(
                Target(
                    scope=row.full_name,
                    repository=row.full_name,
                    installation_id=row.installation_id,
                    repositories=(row.full_name,),
                    repository_ids=(row.id,),
                    title=config.summary.title,
                    min_interval=timedelta(minutes=config.summary.min_interval_minutes),
                    acting=acting,
                    own_repository_id=row.id,
                )
            )
        else:
            shared.setdefault(config.summary.repository, []).append((row, (config, acting)))
    for where, members in sorted(shared.items()):
        first = members[0][1][0]
        own.append(
            Target(
                scope=f"org:{where}",
                repository=where,
                installation_id=int(members[0][0].installation_id or 0),
                repositories=tuple(m[0].full_name for m in members),
                repository_ids=tuple(int(m[0].id or 0) for m in members),
                title=first.summary.title,
                min_interval=timedelta(
                    minutes=min(m[1][0].summary.min_interval_minutes for m in members)
                ),
                acting=all(m[1][1] for m in members),
                own_repository_id=None,
            )
        )
    return own


# --- the body -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummaryInputs:
    """Everything the body is rendered from (one read of the ledger per pass)."""

    report: ReportData
    would: tuple[WouldDo, ...] = ()
    jobs: tuple[Any, ...] = ()  # ledger.jobs.JobRow
    boundaries: tuple[tuple[str | None, str], ...] = ()  # (repository, line)
    candidates: dict[tuple[int, ...], CandidateCounts] = field(default_factory=dict)
    behind_line: str | None = None  # "prsteward is behind: ..." (None: keeping up)


def render_summary(target: Target, inputs: SummaryInputs) -> str:
    """The issue's Markdown for ``target`` (no clock time in it: unchanged ledger, same body)."""
    report = inputs.report
    names = set(target.repositories)
    now = report.generated_at
    lines = [f"# {target.title}", ""]
    if len(target.repositories) > 1 or target.repository not in names:
        lines += ["Repositories: " + ", ".join(f"`{n}`" for n in target.repositories), ""]
    if inputs.behind_line:  # ``Health.summary_line()`` while behind (issue 12 item 8)
        lines += [f"> **{inputs.behind_line}**", ""]
    if not target.acting:
        lines += [
            "_Shadow mode: prsteward writes nothing to GitHub. This is the summary it would "
            "post, and below is what it would do in `act` mode._",
            "",
        ]
    queues = [q for q in report.repositories if q.repository in names]
    lines += ["## Queue by tier", ""]
    if queues:
        seen = {t for q in queues for t in q.tiers}
        tiers = [t for t in TIER_ORDER if t in seen] + sorted(seen - set(TIER_ORDER))
        lines += _md_table(
            ["repository", "mode", "open", *tiers],
            [
                [
                    q.repository,
                    (q.mode or "-") + (" (watch-only)" if q.watch_only else ""),
                    str(q.open_total),
                ]
                + [str(q.tiers.get(t, 0)) for t in tiers]
                for q in queues
            ],
        )
    else:
        lines.append("- nothing watched yet")
    waiting = [w for w in report.waiting_on_maintainers if w.repository in names]
    lines += ["", f"## Waiting on maintainers: {len(waiting)}", ""]
    lines += [
        f"- {w.repository}#{w.number} {w.title}: waiting on you, {w.days_text(now)}"
        + (f" ({w.reason})" if w.reason else "")
        for w in waiting
    ] or ["- none"]
    triggers = [t for t in report.triggers_waiting if t.repository in names]
    lines += ["", f"## Triggers waiting: {len(triggers)}", ""]
    lines += [
        f"- {t.repository}#{t.number} {t.title}" + (f": {t.reason}" if t.reason else "")
        for t in triggers
    ] or ["- none"]
    jobs = [j for j in inputs.jobs if j.repository in names]
    by_state: dict[str, int] = {}
    for row in jobs:
        by_state[row.job.state] = by_state.get(row.job.state, 0) + 1
    lines += ["", "## Escalations by state", ""]
    lines += [f"- {state}: {count}" for state, count in sorted(by_state.items())] or ["- none"]
    exhausted = [j for j in jobs if j.job.state == JobState.BUDGET_EXHAUSTED.value]
    lines += ["", f"## Waiting for a budget grant: {len(exhausted)}", ""]
    lines += [
        f"- job {j.job.id} on {j.repository}#{j.number} ({j.job.trigger_kind}): "
        f"{j.job.state_reason or 'budget exhausted'}. Grant more with `/prsteward budget +50k` "
        f"on the PR or `prsteward jobs grant {j.job.id} --tokens N --dollars D`."
        for j in exhausted
    ] or ["- none"]
    boundaries = [line for repo, line in inputs.boundaries if repo is None or repo in names]
    lines += ["", "## Permission boundaries", ""]
    lines += [f"- {line}" for line in boundaries] or ["- none"]
    lines += ["", "## Spend against budget", ""]
    spend = [b for b in budget_lines(report) if b.scope in names]
    lines += _md_table(
        ["repository", "today", "day budget", "this week", "week budget"],
        [
            [
                b.scope,
                f"${b.today_dollars:,.2f}",
                f"${b.today_budget:,.2f} ({b.share(b.today_dollars, b.today_budget)})",
                f"${b.week_dollars:,.2f}",
                f"${b.week_budget:,.2f} ({b.share(b.week_dollars, b.week_budget)})",
            ]
            for b in spend
        ],
    )
    counts = inputs.candidates.get(target.repository_ids, report.candidates)
    lines += ["", "## Candidates", "", cheapness(replace(report, candidates=counts))]
    if not target.acting:
        would = [i for i in inputs.would if i.repository in names]
        lines += ["", render_would_markdown(would).strip()]
    lines += ["", "_Edited in place by prsteward; see `prsteward report` for the full view._"]
    return _fit("\n".join(lines).rstrip() + "\n")


MAX_BODY = 60_000  # GitHub refuses an issue body over 65,536 characters


def _fit(body: str) -> str:
    """The body, cut at a line boundary with a note when it would be too long for GitHub."""
    if len(body) <= MAX_BODY:
        return body
    cut = body.rfind("\n", 0, MAX_BODY - 200)
    return body[:cut] + "\n\n_(cut here: too long for an issue; see `prsteward report`)_\n"


def marked_body(target: Target, body: str) -> str:
    return f"{body.rstrip()}\n\n{scope_marker(target.scope)}\n"


# --- publishing -----------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SummaryPoster:
    """Keeps the summary issues; ``after_cycle`` is the poller's hook."""

    db: Ledger
    client_for: Callable[[int], IssueClient] | None = None
    pacer: WritePacer | None = None
    clock: Callable[[], datetime] = utcnow
    cadence_seconds: float = 3600.0
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (scope, outcome), for tests
    _checked: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    async def after_cycle(self, _results: Sequence[object]) -> None:
        await self.run()

    async def run(self, now: datetime | None = None) -> dict[str, str]:
        """One pass over every summary the configs ask for; never raises. Returns, per scope,
        what happened: created | edited | adopted | unchanged | held | shadow | failed | ..."""
        from ledger.repositories import list_repositories

        now = now or self.clock()
        done: dict[str, str] = {}
        try:
            targets = targets_of(await list_repositories(self.db))
        except Exception:
            log.exception("summary: reading the repositories failed")
            return done
        due = [t for t in targets if self._due(t, now)]
        if not due:
            return done
        try:
            inputs = await self.gather(due, now)
        except Exception:
            log.exception("summary: reading the ledger failed")
            return done
        for target in due:
            try:
                outcome = await self.publish(target, render_summary(target, inputs), now)
            except GitHubError as error:
                log.warning("summary %s: %s", target.scope, error)
                outcome = "error"
            except Exception:
                log.exception("summary %s failed", target.scope)
                outcome = "error"
            self._checked[target.scope] = (now, outcome)
            self.outcomes.append((target.scope, outcome))
            done[target.scope] = outcome
        return done

    def _due(self, target: Target, now: datetime) -> bool:
        """Render at most once per interval when nothing was written (cheap cycles)."""
        last = self._checked.get(target.scope)
        if last is None or last[1] == "error":  # a refused write waits the interval, like any
            return True
        return now - last[0] >= target.min_interval

    async def gather(self, targets: Sequence[Target], now: datetime) -> SummaryInputs:
        from bot.boundaries import describe
        from bot.selfcheck import judge
        from ledger.boundaries import list_boundaries
        from ledger.jobs import list_jobs
        from ledger.reporting import gather_report, would_do
        from ledger.selfcheck import read_health

        report = await gather_report(self.db, now, list_limit=200)
        health = judge(await read_health(self.db), now, self.cadence_seconds)
        report = replace(report, behind=health.behind)
        would: tuple[WouldDo, ...] = ()
        if any(not t.acting for t in targets):
            would = tuple(await would_do(self.db, limit=500))
        names = sorted({name for t in targets for name in t.repositories})
        job_rows: list[Any] = []
        for name in names:
            job_rows += await list_jobs(self.db, repository=name)
        jobs = tuple(job_rows)
        boundaries = tuple(
            (row.repository, describe(row))
            for row in await list_boundaries(self.db)
            if row.boundary.lifted_at is None
        )
        candidates = {
            t.repository_ids: CandidateCounts(
                by_outcome=await ledger_summary.candidate_outcomes(self.db, t.repository_ids)
            )
            for t in targets
        }
        behind = health.summary_line() if not health.ok else None
        return SummaryInputs(report, would, jobs, boundaries, candidates, behind)

    async def publish(self, target: Target, body: str, now: datetime) -> str:
        scope = target.scope
        digest = body_hash(body)
        state = await ledger_summary.summary_state(self.db, scope)
        rid = target.own_repository_id
        if not target.acting:
            if state.shadow_hash == digest:
                return "unchanged"
            await ledger_summary.record_summary(
                self.db,
                scope,
                "summary.shadow",
                f"shadow mode: would post the summary in {target.repository}",
                now,
                repository_id=rid,
                details={"hash": digest, "repository": target.repository, "chars": len(body)},
            )
            return "shadow"
        if state.issue_number is not None and state.body_hash == digest:
            return "unchanged"
        if state.written_at is not None and now - state.written_at < target.min_interval:
            return "held"
        if self.client_for is None:
            return "no-client"
        client = self.client_for(target.installation_id)
        full = marked_body(target, body)
        number = state.issue_number
        if number is None and state.creating:
            found, looked = await self._find(client, target)
            if found is None and not looked:
                return "unconfirmed"  # never open a second issue blindly
            if found is not None:
                number = found
                await ledger_summary.record_summary(
                    self.db,
                    scope,
                    "summary.adopted",
                    f"found the summary issue #{found} by its marker after an unconfirmed create",
                    now,
                    repository_id=rid,
                    details={"issue_number": found, "repository": target.repository},
                    issue_number=found if rid is not None else None,
                )
        if number is None:
            return await self._create(client, target, full, digest, now)
        return await self._edit(client, target, number, full, digest, now)

    async def _write(self, target: Target, *, content_creating: bool) -> None:
        if self.pacer is not None:
            await self.pacer.wait(target.installation_id, content_creating=content_creating)

    async def _create(
        self, client: IssueClient, target: Target, body: str, digest: str, now: datetime
    ) -> str:
        rid = target.own_repository_id
        await ledger_summary.record_summary(
            self.db,
            target.scope,
            "summary.creating",
            f"creating the summary issue in {target.repository}",
            now,
            repository_id=rid,
            details={"repository": target.repository},
        )
        await self._write(target, content_creating=True)
        response = await client.request(
            "POST",
            f"/repos/{target.repository}/issues",
            json={"title": target.title, "body": body},
            write=True,
        )
        if response.status_code >= 300:
            await self._failed(target, response, "create", now)
            return "failed"
        number = int(response.json()["number"])
        await ledger_summary.record_summary(
            self.db,
            target.scope,
            "summary.created",
            f"created the summary issue {target.repository}#{number}",
            now,
            repository_id=rid,
            details={"issue_number": number, "hash": digest, "repository": target.repository},
            issue_number=number if rid is not None else None,
        )
        return "created"

    async def _edit(
        self,
        client: IssueClient,
        target: Target,
        number: int,
        body: str,
        digest: str,
        now: datetime,
    ) -> str:
        await self._write(target, content_creating=False)
        response = await client.request(
            "PATCH",
            f"/repos/{target.repository}/issues/{number}",
            json={"title": target.title, "body": body},
            write=True,
        )
        if response.status_code in (404, 410):
            await ledger_summary.record_summary(
                self.db,
                target.scope,
                "summary.lost",
                f"summary issue {target.repository}#{number} is gone "
                f"(HTTP {response.status_code}); the next pass creates a new one",
                now,
                repository_id=target.own_repository_id,
                details={"issue_number": number, "http_status": response.status_code},
            )
            return "lost"
        if response.status_code >= 300:
            await self._failed(target, response, "edit", now)
            return "failed"
        await ledger_summary.record_summary(
            self.db,
            target.scope,
            "summary.edited",
            f"edited the summary issue {target.repository}#{number}",
            now,
            repository_id=target.own_repository_id,
            details={"issue_number": number, "hash": digest, "repository": target.repository},
        )
        return "edited"

    async def _failed(
        self, target: Target, response: httpx.Response, during: str, now: datetime
    ) -> None:
        try:
            payload = response.json()
            message = str(payload.get("message") if isinstance(payload, dict) else payload)
        except ValueError:
            message = response.text[:300]
        await ledger_summary.record_summary(
            self.db,
            target.scope,
            "summary.failed",
            f"GitHub answered {response.status_code} to the summary {during}: {message}",
            now,
            repository_id=target.own_repository_id,
            details={"during": during, "http_status": response.status_code, "message": message},
        )

    async def _find(self, client: IssueClient, target: Target) -> tuple[int | None, bool]:
        """The issue carrying the scope's marker: (number or None, whether we could look)."""
        marker = scope_marker(target.scope)
        url: str | None = f"/repos/{target.repository}/issues"
        params: dict[str, Any] | None = {"state": "all", "per_page": 100}
        for _ in range(MAX_LOOKUP_PAGES):
            if url is None:
                return None, True
            response = await client.request("GET", url, params=params)
            if response.status_code >= 300:
                return None, False
            items = response.json()
            if not isinstance(items, list):
                return None, False
            for item in items:
                if isinstance(item, dict) and marker in str(item.get("body") or ""):
                    number = item.get("number")
                    if isinstance(number, int):
                        return number, True
            url = response.links.get("next", {}).get("url")
            params = None
        return None, url is None
