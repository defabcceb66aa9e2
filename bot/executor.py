"""The action executor: performs the candidates the policies proposed, exactly once, on GitHub.

Effects go through one small :class:`Actions` Protocol, implemented once on our GitHub client
(:class:`GitHubActions`, tested against ``sim/``). The executor only runs in ``act`` mode (the
engine records ``shadow`` outcomes without calling it).

Exactly once:
- every comment carries a hidden marker ``<!-- prsteward:key=KEY -->`` (the candidate's dedupe
  key); before creating one the executor checks the ledger (an action already done for the key)
  and then the PR's comments written by the App for the marker, so a crash between the GitHub
  write and the ledger commit finds the comment on the next run and adopts it instead of posting
  again;
- the sticky status comment (marker ``<!-- prsteward:status -->``) is one per PR: found by its id
  in the ledger or by its marker, and edited in place;
- label changes, re-runs, draft conversion and closing are idempotent on GitHub.

Writes are paced per installation (:class:`WritePacer`: at most one write a second and 80
content-creating writes a minute). Each write is an ``Action`` row with GitHub's id; a failure
is an ``Action`` row with GitHub's status and message. A denied write (a 403 that is not a rate
limit) opens a permission boundary for that action kind, so it is attempted once, not every
cycle. Rate limits leave the candidate pending for a later cycle.

ESCALATE candidates go to an :data:`EscalationHook` (the escalation engineer's
``bot/escalation.py``); without one the candidate stays ``pending`` with a reason and no job is
invented.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from bot.github import GitHubError, InstallationClient, RateLimited
from ledger import candidates as ledger_candidates
from ledger.db import Ledger
from ledger.history import PullKey
from ledger.models import CandidateOutcome
from policies.config import Config, bare_login
from policies.snapshot import PullRequestSnapshot
from policies.triage import Candidate, CandidateKind, Decision, content_hash

log = logging.getLogger("prsteward.executor")

STICKY_MARKER = "<!-- prsteward:status -->"
_KEY_MARKER = re.compile(r"<!-- prsteward:key=(.+?) -->")


def key_marker(key: str) -> str:
    """The hidden idempotency marker of a candidate key (``--`` cannot end an HTML comment)."""
    return f"<!-- prsteward:key={key.replace('--', '-~')} -->"


def marked(body: str, key: str, *, sticky: bool = False) -> str:
    """``body`` with its idempotency marker (and the sticky marker) appended."""
    markers = (STICKY_MARKER + "\n" if sticky else "") + key_marker(key)
    return f"{body.rstrip()}\n\n{markers}"


def markers_in(body: str) -> set[str]:
    return {match.group(0) for match in _KEY_MARKER.finditer(body)}


# Which permission an action kind needs: a denial of one kind stops that kind only.
BOUNDARY_KIND: dict[CandidateKind, str] = {
    CandidateKind.STATUS_COMMENT: "comment",
    CandidateKind.REMIND_AUTHOR: "comment",
    CandidateKind.CLOSE_NOTICE: "comment",
    CandidateKind.REVIEWER_REMINDER: "comment",
    CandidateKind.ADD_LABEL: "label",
    CandidateKind.REMOVE_LABEL: "label",
    CandidateKind.RERUN: "rerun",
    CandidateKind.CONVERT_TO_DRAFT: "draft",
    CandidateKind.CLOSE: "close",
}
NOTICE_KINDS = frozenset(
    {CandidateKind.REMIND_AUTHOR, CandidateKind.CLOSE_NOTICE, CandidateKind.REVIEWER_REMINDER}
)


# --- the effects interface ------------------------------------------------------------------------


class ActionFailed(GitHubError):
    """GitHub refused a write (4xx): its status, message and the permissions it names."""

    def __init__(self, status: int, message: str, accepted_permissions: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}", status=status)
        self.message = message
        self.accepted_permissions = accepted_permissions

    @property
    def denied(self) -> bool:
        """A permission boundary (``bot.boundaries.is_boundary``): a 403 that is not a rate limit
        (those never reach here: the client retries or raises ``RateLimited``), a 404/410 on a
        lost repository, a 422 on an archived or locked target."""
        from bot.boundaries import is_boundary

        return is_boundary(self.status or 0, self.message)


@dataclass(frozen=True, slots=True)
class BotComment:
    id: int
    body: str


class Actions(Protocol):
    """Everything prsteward writes to GitHub (plus the one read idempotency needs)."""

    async def bot_comments(self, repository: str, number: int) -> list[BotComment]:
        """Comments on the PR written by the App itself."""
        ...

    async def create_comment(self, repository: str, number: int, body: str) -> int: ...

    async def edit_comment(self, repository: str, comment_id: int, body: str) -> int: ...

    async def add_label(self, repository: str, number: int, label: str) -> None: ...

    async def remove_label(self, repository: str, number: int, label: str) -> None:
        """Removing a label the PR does not have is not an error."""
        ...

    async def rerun_failed_checks(
        self, repository: str, head_sha: str, check_names: Sequence[str]
    ) -> list[int]:
        """Re-run the failed jobs of the named checks (all failed ones when empty); returns the
        workflow runs / check suites asked to run again."""
        ...

    async def convert_to_draft(self, repository: str, node_id: str) -> None: ...

    async def close_pull(self, repository: str, number: int) -> None: ...


def _message_of(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    return str(payload)[:500]


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 300:
        return
    raise ActionFailed(
        response.status_code,
        _message_of(response),
        response.headers.get("x-accepted-github-permissions"),
    )


_RUN_URL = re.compile(r"/actions/runs/(\d+)")
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure", "action_required"})


class GitHubActions:
    """:class:`Actions` on one installation's client (bounded retries and budget included)."""

    def __init__(self, client: InstallationClient, app_logins: Sequence[str] = ("prsteward",)):
        self.client = client
        self.app_names = frozenset(bare_login(login) for login in app_logins)

    async def bot_comments(self, repository: str, number: int) -> list[BotComment]:
        items = await self.client.paginate_rest(f"/repos/{repository}/issues/{number}/comments")
        found = []
        for item in items:
            user = item.get("user") if isinstance(item, dict) else None
            if not isinstance(user, dict) or not isinstance(item.get("id"), int):
                continue
            login = str(user.get("login") or "")
            if user.get("type") == "Bot" and bare_login(login) in self.app_names:
                found.append(BotComment(int(item["id"]), str(item.get("body") or "")))
        return found

    async def create_comment(self, repository: str, number: int, body: str) -> int:
        response = await self.client.request(
            "POST", f"/repos/{repository}/issues/{number}/comments", json={"body": body}, write=True
        )
        _raise_for(response)
        return int(response.json()["id"])

    async def edit_comment(self, repository: str, comment_id: int, body: str) -> int:
        response = await self.client.request(
            "PATCH",
            f"/repos/{repository}/issues/comments/{comment_id}",
            json={"body": body},
            write=True,
        )
        _raise_for(response)
        return int(response.json()["id"])

    async def add_label(self, repository: str, number: int, label: str) -> None:
        response = await self.client.request(
            "POST",
            f"/repos/{repository}/issues/{number}/labels",
            json={"labels": [label]},
            write=True,
        )
        _raise_for(response)

    async def remove_label(self, repository: str, number: int, label: str) -> None:
        response = await self.client.request(
            "DELETE",
            f"/repos/{repository}/issues/{number}/labels/{httpx.URL(label).raw_path.decode()}",
            write=True,
        )
        if response.status_code == 404:
            return  # already gone
        _raise_for(response)

    async def rerun_failed_checks(
        self, repository: str, head_sha: str, check_names: Sequence[str]
    ) -> list[int]:
        runs = await self.client.paginate_rest(
            f"/repos/{repository}/commits/{head_sha}/check-runs", key="check_runs"
        )
        wanted = set(check_names)
        workflow_runs: set[int] = set()
        suites: set[int] = set()
        for run in runs:
            if not isinstance(run, dict) or run.get("conclusion") not in FAILED_CONCLUSIONS:
                continue
            if wanted and run.get("name") not in wanted:
                continue
            match = _RUN_URL.search(str(run.get("details_url") or run.get("html_url") or ""))
            app = run.get("app") if isinstance(run.get("app"), dict) else {}
            if match and (app or {}).get("slug") == "github-actions":
                workflow_runs.add(int(match.group(1)))
            elif isinstance((run.get("check_suite") or {}).get("id"), int):
                suites.add(int(run["check_suite"]["id"]))
        for run_id in sorted(workflow_runs):
            response = await self.client.request(
                "POST", f"/repos/{repository}/actions/runs/{run_id}/rerun-failed-jobs", write=True
            )
            _raise_for(response)
        for suite_id in sorted(suites):
            response = await self.client.request(
                "POST", f"/repos/{repository}/check-suites/{suite_id}/rerequest", write=True
            )
            _raise_for(response)
        if not workflow_runs and not suites:
            raise ActionFailed(422, f"no failed check runs at {head_sha[:7]} to re-run")
        return sorted(workflow_runs | suites)

    async def convert_to_draft(self, repository: str, node_id: str) -> None:
        mutation = (
            "mutation($id: ID!) { convertPullRequestToDraft(input: {pullRequestId: $id}) "
            "{ pullRequest { isDraft } } }"
        )
        response = await self.client.request(
            "POST", "/graphql", json={"query": mutation, "variables": {"id": node_id}}, write=True
        )
        _raise_for(response)
        payload = response.json()
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
            status = 403 if first.get("type") == "FORBIDDEN" else 422
            raise ActionFailed(status, str(first.get("message") or first))
        data = payload.get("data") if isinstance(payload, dict) else None
        result = (data or {}).get("convertPullRequestToDraft") or {}
        if not (result.get("pullRequest") or {}).get("isDraft"):
            raise ActionFailed(422, f"GitHub did not convert the PR to a draft: {payload!r:.300}")

    async def close_pull(self, repository: str, number: int) -> None:
        response = await self.client.request(
            "PATCH", f"/repos/{repository}/pulls/{number}", json={"state": "closed"}, write=True
        )
        _raise_for(response)


# --- pacing -----------------------------------------------------------------------------------------


@dataclass
class WritePacer:
    """Per installation: writes at least ``min_interval`` seconds apart, and at most
    ``per_minute`` content-creating writes in any 60 seconds (GitHub's secondary limits)."""

    min_interval: float = 1.0
    per_minute: int = 80
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _last: dict[int, float] = field(default_factory=dict)
    _created: dict[int, deque[float]] = field(default_factory=dict)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    waited: float = 0.0  # total seconds asked to wait (for tests and metrics)

    async def wait(self, installation_id: int, *, content_creating: bool) -> None:
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            created = self._created.setdefault(installation_id, deque())
            while True:
                now = self.clock()
                while created and now - created[0] >= 60.0:
                    created.popleft()
                delay = 0.0
                last = self._last.get(installation_id)
                if last is not None:
                    delay = max(delay, last + self.min_interval - now)
                if content_creating and len(created) >= self.per_minute:
                    delay = max(delay, created[0] + 60.0 - now)
                if delay <= 0:
                    break
                self.waited += delay
                await self.sleep(delay)
            self._last[installation_id] = now
            if content_creating:
                created.append(now)


# --- the executor -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullContext:
    """One PR being acted on."""

    key: PullKey
    repository: str
    number: int
    installation_id: int
    snapshot: PullRequestSnapshot
    config: Config
    decision: Decision
    sticky_comment_id: int | None = None


class EscalationHook(Protocol):
    """``bot/escalation.py``'s entry point: open one job for an ESCALATE candidate and return
    its id (None: no job was opened; the candidate stays pending with the reason logged)."""

    async def __call__(
        self,
        db: Ledger,
        *,
        candidate_id: int,
        decision: Decision,
        candidate: Candidate,
        snapshot: PullRequestSnapshot,
        now: datetime,
    ) -> int | None: ...


class Stop(Exception):
    """Stop performing for this installation in this cycle (rate limited); work is kept."""

    def __init__(self, until: datetime | None, reason: str) -> None:
        super().__init__(reason)
        self.until = until


@dataclass(frozen=True, slots=True)
class Performed:
    key: str
    outcome: str
    detail: str = ""
    sticky_comment_id: int | None = None  # the PR's status comment, when this wrote it


class Executor:
    """Performs candidates through :class:`Actions`; records every attempt in the ledger."""

    def __init__(
        self,
        db: Ledger,
        actions_for: Callable[[int, Config], Actions],
        *,
        pacer: WritePacer | None = None,
        clock: Callable[[], datetime],
        escalate: EscalationHook | None = None,
    ) -> None:
        self.db = db
        self.actions_for = actions_for
        self.pacer = pacer or WritePacer()
        self.clock = clock
        self.escalate = escalate

    async def perform(self, ctx: PullContext, candidate_id: int, candidate: Candidate) -> Performed:
        """Perform one candidate; never raises for GitHub trouble except :class:`Stop`."""
        if candidate.kind is CandidateKind.ESCALATE:
            return await self._escalate(ctx, candidate_id, candidate)
        standing = await self._standing_boundary(ctx, candidate_id, candidate)
        if standing is not None:
            return standing
        actions = self.actions_for(ctx.installation_id, ctx.config)
        try:
            return await self._perform(actions, ctx, candidate_id, candidate)
        except RateLimited as error:
            await ledger_candidates.set_outcome(
                self.db, candidate_id, CandidateOutcome.PENDING.value, str(error), self.clock()
            )
            raise Stop(error.until, str(error)) from error
        except ActionFailed as error:
            return await self._failed(
                ctx, candidate_id, candidate, error, error.accepted_permissions
            )
        except GitHubError as error:
            return await self._failed(ctx, candidate_id, candidate, error, None)

    async def _standing_boundary(
        self, ctx: PullContext, candidate_id: int, candidate: Candidate
    ) -> Performed | None:
        """A boundary opened earlier in this cycle (another PR's denied write) stops the same
        action kind here too: recorded ``suppressed_boundary`` and counted, not attempted."""
        from ledger import boundaries as ledger_boundaries

        kind = BOUNDARY_KIND.get(candidate.kind, candidate.kind.value)
        standing = await ledger_candidates.active_boundaries(
            self.db, ctx.installation_id, ctx.key.repository_id
        )
        boundary = standing.get(kind)
        if boundary is None or boundary.id is None:
            return None
        reason = f"GitHub denied {kind} here since {boundary.since.isoformat()}: {boundary.message}"
        outcome = CandidateOutcome.SUPPRESSED_BOUNDARY.value
        await ledger_candidates.set_outcome(
            self.db, candidate_id, outcome, reason, self.clock(), {"boundary_id": boundary.id}
        )
        await ledger_boundaries.count_suppressed(self.db, boundary.id)
        return Performed(candidate.key, outcome, reason)

    async def _failed(
        self,
        ctx: PullContext,
        candidate_id: int,
        candidate: Candidate,
        error: GitHubError,
        accepted: str | None,
    ) -> Performed:
        now = self.clock()
        boundary_kind = BOUNDARY_KIND.get(candidate.kind, candidate.kind.value)
        denied = isinstance(error, ActionFailed) and error.denied
        message = error.message if isinstance(error, ActionFailed) else str(error)
        outcome = (
            CandidateOutcome.SUPPRESSED_BOUNDARY.value if denied else CandidateOutcome.FAILED.value
        )
        if denied:
            await ledger_candidates.open_boundary(
                self.db,
                ctx.installation_id,
                ctx.key.repository_id,
                boundary_kind,
                http_status=error.status,
                message=message,
                accepted_permissions=accepted,
                now=now,
            )
        await ledger_candidates.record_action(
            self.db,
            ctx.key,
            candidate_id,
            kind=candidate.kind.value,
            status="failed",
            now=now,
            http_status=error.status,
            error=message,
            details={"candidate_kind": candidate.kind.value, "key": candidate.key},
            outcome=outcome,
            outcome_reason=f"GitHub answered {error.status}: {message}",
        )
        log.warning("%s#%d %s failed: %s", ctx.repository, ctx.number, candidate.kind.value, error)
        return Performed(candidate.key, outcome, message)

    async def _write(self, ctx: PullContext, *, content_creating: bool) -> None:
        await self.pacer.wait(ctx.installation_id, content_creating=content_creating)

    async def _done(
        self,
        ctx: PullContext,
        candidate_id: int,
        candidate: Candidate,
        kind: str,
        github_id: str | None,
        sticky_comment_id: int | None = None,
        outcome: str | None = CandidateOutcome.POSTED.value,
        **details: Any,
    ) -> None:
        await ledger_candidates.record_action(
            self.db,
            ctx.key,
            candidate_id,
            kind=kind,
            status="done",
            now=self.clock(),
            github_id=github_id,
            details={"candidate_kind": candidate.kind.value, "key": candidate.key, **details},
            outcome=outcome,
            sticky_comment_id=sticky_comment_id,
        )

    async def _perform(
        self, actions: Actions, ctx: PullContext, candidate_id: int, candidate: Candidate
    ) -> Performed:
        posted = CandidateOutcome.POSTED.value
        kind = candidate.kind
        if kind is CandidateKind.STATUS_COMMENT:
            return await self._sticky(actions, ctx, candidate_id, candidate)
        if kind in NOTICE_KINDS:
            comment_id = await self._comment_once(actions, ctx, candidate_id, candidate)
            return Performed(candidate.key, posted, f"comment {comment_id}")
        if kind in (CandidateKind.ADD_LABEL, CandidateKind.REMOVE_LABEL):
            label = candidate.label or ""
            await self._write(ctx, content_creating=False)
            if kind is CandidateKind.ADD_LABEL:
                await actions.add_label(ctx.repository, ctx.number, label)
            else:
                await actions.remove_label(ctx.repository, ctx.number, label)
            await self._done(ctx, candidate_id, candidate, kind.value, None, label=label)
            return Performed(candidate.key, posted, label)
        if kind is CandidateKind.RERUN:
            # The failing check runs at the head (commit statuses cannot be re-run by an App).
            names = tuple(
                sorted({c.name for c in ctx.snapshot.failing_checks if c.kind == "check_run"})
            )
            await self._write(ctx, content_creating=False)
            ids = await actions.rerun_failed_checks(ctx.repository, ctx.snapshot.head_sha, names)
            fingerprint = candidate.trigger.fingerprint if candidate.trigger is not None else None
            await self._done(
                ctx,
                candidate_id,
                candidate,
                "rerun",
                ",".join(str(i) for i in ids),
                fingerprint=fingerprint,
                check_names=list(names),
            )
            return Performed(candidate.key, posted, f"re-ran {ids}")
        if kind is CandidateKind.CONVERT_TO_DRAFT:
            await self._write(ctx, content_creating=False)
            await actions.convert_to_draft(ctx.repository, ctx.snapshot.node_id)
            await self._done(ctx, candidate_id, candidate, "convert_to_draft", ctx.snapshot.node_id)
            return Performed(candidate.key, posted, "draft")
        if kind is CandidateKind.CLOSE:
            if candidate.body:
                await self._comment_once(actions, ctx, candidate_id, candidate, outcome=None)
            await self._write(ctx, content_creating=False)
            await actions.close_pull(ctx.repository, ctx.number)
            await self._done(ctx, candidate_id, candidate, "close", str(ctx.number))
            return Performed(candidate.key, posted, "closed")
        raise ActionFailed(422, f"prsteward has no way to perform {kind.value}")

    async def _comment_once(
        self,
        actions: Actions,
        ctx: PullContext,
        candidate_id: int,
        candidate: Candidate,
        outcome: str | None = CandidateOutcome.POSTED.value,
    ) -> int:
        """Create the candidate's comment unless the ledger or the PR already has it."""
        done = await ledger_candidates.done_action_for_key(
            self.db, ctx.key.pull_request_id, candidate.key, kind="create_comment"
        )
        if done is not None and done.github_id:
            if outcome is not None:
                await ledger_candidates.set_outcome(
                    self.db, candidate_id, outcome, "already posted", self.clock()
                )
            return int(done.github_id)
        marker = key_marker(candidate.key)
        for comment in await actions.bot_comments(ctx.repository, ctx.number):
            if marker in markers_in(comment.body):
                await self._done(
                    ctx,
                    candidate_id,
                    candidate,
                    "create_comment",
                    str(comment.id),
                    outcome=outcome,
                    adopted=True,
                )
                return comment.id
        await self._write(ctx, content_creating=True)
        comment_id = await actions.create_comment(
            ctx.repository, ctx.number, marked(candidate.body or "", candidate.key)
        )
        await self._done(
            ctx, candidate_id, candidate, "create_comment", str(comment_id), outcome=outcome
        )
        return comment_id

    async def _sticky(
        self, actions: Actions, ctx: PullContext, candidate_id: int, candidate: Candidate
    ) -> Performed:
        """One status comment per PR: edit the known one, else adopt one found by its marker,
        else create it."""
        body = marked(candidate.body or "", candidate.key, sticky=True)
        body_hash = content_hash(candidate.body or "")
        posted = CandidateOutcome.POSTED.value
        comment_id = candidate.edit_comment_id or ctx.sticky_comment_id
        existing_body: str | None = None
        if comment_id is None:
            for comment in await actions.bot_comments(ctx.repository, ctx.number):
                if STICKY_MARKER in comment.body:
                    comment_id, existing_body = comment.id, comment.body
                    break
        if comment_id is not None:
            if existing_body == body:  # written before a crash: nothing to change
                await self._done(
                    ctx,
                    candidate_id,
                    candidate,
                    "edit_comment",
                    str(comment_id),
                    sticky_comment_id=comment_id,
                    content_hash=body_hash,
                    adopted=True,
                )
                return Performed(
                    candidate.key, posted, f"sticky {comment_id} (adopted)", comment_id
                )
            try:
                await self._write(ctx, content_creating=False)
                await actions.edit_comment(ctx.repository, comment_id, body)
            except ActionFailed as error:
                if error.status != 404:
                    raise
                comment_id = None  # deleted by someone: create a new one below
            else:
                await self._done(
                    ctx,
                    candidate_id,
                    candidate,
                    "edit_comment",
                    str(comment_id),
                    sticky_comment_id=comment_id,
                    content_hash=body_hash,
                )
                return Performed(candidate.key, posted, f"sticky {comment_id} edited", comment_id)
        await self._write(ctx, content_creating=True)
        created = await actions.create_comment(ctx.repository, ctx.number, body)
        await self._done(
            ctx,
            candidate_id,
            candidate,
            "create_comment",
            str(created),
            sticky_comment_id=created,
            content_hash=body_hash,
        )
        return Performed(candidate.key, posted, f"sticky {created} created", created)

    async def _escalate(
        self, ctx: PullContext, candidate_id: int, candidate: Candidate
    ) -> Performed:
        pending = CandidateOutcome.PENDING.value
        if self.escalate is None:
            log.info(
                "%s#%d: escalation %s recorded; no escalation module is wired",
                ctx.repository,
                ctx.number,
                candidate.key,
            )
            return Performed(candidate.key, pending, "no escalation module wired")
        job_id = await self.escalate(
            self.db,
            candidate_id=candidate_id,
            decision=ctx.decision,
            candidate=candidate,
            snapshot=ctx.snapshot,
            now=self.clock(),
        )
        if job_id is None:
            return Performed(candidate.key, pending, "the escalation module opened no job")
        await ledger_candidates.set_outcome(
            self.db,
            candidate_id,
            CandidateOutcome.ESCALATED.value,
            f"job {job_id}",
            self.clock(),
            details={"job_id": job_id},
        )
        return Performed(candidate.key, CandidateOutcome.ESCALATED.value, f"job {job_id}")
