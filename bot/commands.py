"""``/prsteward`` commands from PR comments, end to end (issue 12 item 6).

The snapshot is the truth: the ``issue_comment`` webhook marks the PR dirty, the poller reads it
(its comments included), and the engine hands every evaluation to :class:`CommandDesk` in two
steps around ``decide``:

1. :meth:`CommandDesk.take` (before ``decide``): find the ``/prsteward`` lines not yet recorded
   (``policies.commands.parse_commands``), confirm authors whose association does not show write
   access through the collaborator-permission API (cached), record each command once per comment
   id (``ledger.commands.record_command``: a redelivered comment never runs twice) and apply the
   switches: freeze/unfreeze and pause/resume on the PR row (``decide`` reads them through
   ``PullRequestHistory.commands``), refresh marks the PR dirty and asks the poller for a cycle
   now, escalate stays a pending manual trigger until its effect is known.
2. :meth:`CommandDesk.answer` (after the candidates were performed): set the effect of each
   command and answer on the PR, in ``act`` mode only: a reaction on the command comment, and for
   ``explain`` (``Decision.explain()``), an unknown command (one help line) or a refused
   ``escalate`` (why) an edit of the one sticky status comment. Never a new comment per command.
   In ``shadow`` mode the effect says what would have been answered.

Commands from people without write access, other bots and the App itself are recorded with
``accepted=False`` and ignored: no reaction, no effect on the PR.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from bot.executor import STICKY_MARKER, ActionFailed, GitHubActions, Performed, WritePacer, marked
from bot.github import GitHubError, InstallationClient
from ledger import candidates as ledger_candidates
from ledger import commands as ledger_commands
from ledger import pulls
from ledger.db import Ledger
from ledger.history import PullKey
from ledger.models import CandidateOutcome, PullRequest, Repository
from policies.commands import CommandName, ParsedCommand, parse_commands
from policies.config import Config, TriggerKind
from policies.snapshot import AuthorAssociation, PullRequestSnapshot
from policies.triage import CandidateKind, Decision, content_hash, render_status
from policies.triggers import COMMAND_PREFIX, is_app, is_bot

log = logging.getLogger("prsteward.commands")

PERMISSION_TTL_SECONDS = 600.0
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
REACTION_DONE = "+1"
REACTION_REFUSED = "confused"


class CommandClient(Protocol):
    """What answering a command needs from GitHub."""

    async def permission(self, repository: str, login: str) -> str | None:
        """The user's permission on the repository (admin|maintain|write|read|none)."""
        ...

    async def add_reaction(self, repository: str, comment_id: int, content: str) -> None: ...

    async def sticky_comment(self, repository: str, number: int) -> int | None:
        """The PR's status comment found by its marker (None: there is none)."""
        ...

    async def create_comment(self, repository: str, number: int, body: str) -> int: ...

    async def edit_comment(self, repository: str, comment_id: int, body: str) -> int: ...


class GitHubCommandClient:
    """:class:`CommandClient` on one installation's client."""

    def __init__(self, client: InstallationClient, app_logins: Sequence[str] = ("prsteward",)):
        self.client = client
        self.actions = GitHubActions(client, app_logins)

    async def permission(self, repository: str, login: str) -> str | None:
        response = await self.client.request(
            "GET", f"/repos/{repository}/collaborators/{login}/permission"
        )
        if response.status_code == 404:
            return "none"
        if response.status_code >= 300:
            return None  # unknown: not confirmed
        payload = response.json()
        role = payload.get("role_name") if isinstance(payload, dict) else None
        permission = payload.get("permission") if isinstance(payload, dict) else None
        # ``permission`` is always admin|write|read|none (maintain -> write); ``role_name`` can be
        # a custom role's name, so it is only the fallback.
        return str(permission or role or "none")

    async def add_reaction(self, repository: str, comment_id: int, content: str) -> None:
        response = await self.client.request(
            "POST",
            f"/repos/{repository}/issues/comments/{comment_id}/reactions",
            json={"content": content},
            write=True,
        )
        if response.status_code >= 300:
            raise ActionFailed(response.status_code, response.text[:300])

    async def sticky_comment(self, repository: str, number: int) -> int | None:
        for comment in await self.actions.bot_comments(repository, number):
            if STICKY_MARKER in comment.body:
                return comment.id
        return None

    async def create_comment(self, repository: str, number: int, body: str) -> int:
        return await self.actions.create_comment(repository, number, body)

    async def edit_comment(self, repository: str, comment_id: int, body: str) -> int:
        return await self.actions.edit_comment(repository, comment_id, body)


@dataclass
class PermissionCache:
    """Collaborator-permission answers per (repository, login), for ``ttl`` seconds."""

    ttl: float = PERMISSION_TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _seen: dict[tuple[str, str], tuple[bool, float]] = field(default_factory=dict)
    lookups: int = 0  # how often GitHub was asked (tests, metrics)

    async def has_write(self, client: CommandClient, repository: str, login: str) -> bool:
        key = (repository, login.lower())
        found = self._seen.get(key)
        now = self.clock()
        if found is not None and now - found[1] < self.ttl:
            return found[0]
        self.lookups += 1
        try:
            permission = await client.permission(repository, login)
        except GitHubError as error:
            log.warning("permission of %s on %s unknown: %s", login, repository, error)
            return False  # not confirmed; not cached, asked again next time
        if permission is None:
            return False
        allowed = permission in WRITE_PERMISSIONS
        self._seen[key] = (allowed, now)
        return allowed


@dataclass(frozen=True, slots=True)
class Handled:
    """A command recorded in this evaluation (its ledger id and what was parsed)."""

    command_id: int
    parsed: ParsedCommand
    effect: str | None = None  # set already (switches, refresh, not allowed)


def command_word(parsed: ParsedCommand) -> str:
    """The verb as recorded: a known command's name, else ``unknown`` (the reason says which)."""
    return parsed.name.value if parsed.name is not None else "unknown"


def has_command_lines(snapshot: PullRequestSnapshot) -> bool:
    return any(COMMAND_PREFIX in c.body.lower() for c in snapshot.comments)


@dataclass
class CommandDesk:
    """Takes ``/prsteward`` commands before a decision and answers them after it."""

    db: Ledger
    client_for: Callable[[int, Config], CommandClient] | None = None  # None: no GitHub access
    pacer: WritePacer | None = None
    permissions: PermissionCache = field(default_factory=PermissionCache)
    refresh_now: Callable[[str, int], Awaitable[None] | None] | None = None  # poke the poller
    # ``/prsteward budget +N``: (repository, PR, tokens, dollars, by) -> effect text; set by
    # ``bot.jobs_api.attach_escalations`` (``bot.budgets.budget_granter``). None: recorded only.
    grant_budget: Callable[[str, int, int | None, float | None, str], Awaitable[str]] | None = None
    _modes: dict[int, str] = field(default_factory=dict)  # repository id -> mode last recorded

    async def note_mode(self, row: Repository, mode: str, now: datetime) -> None:
        """Record the repository's switch between shadow and act (once per change): the
        switch time is in the ledger (``ledger.commands.acting_since``)."""
        if row.id is None or self._modes.get(row.id) == mode:
            return
        reason = (
            "mode: act in the config"
            if mode == "act"
            else "shadow (config, archived or watch-only)"
        )
        await ledger_commands.record_mode(self.db, row.id, mode, reason, now)
        self._modes[row.id] = mode

    # -- before decide ----------------------------------------------------------------------

    async def _judge_authors(
        self, row: Repository, snapshot: PullRequestSnapshot, config: Config, recorded: set[int]
    ) -> tuple[PullRequestSnapshot, frozenset[str]]:
        """The snapshot and maintainers to judge new commands with: authors whose association
        does not show write access (CONTRIBUTOR...) are confirmed through the
        collaborator-permission API, and so are COLLABORATORs (an invited read-only collaborator
        has that association too: without write permission their comment counts as NONE)."""
        confirmed = set(config.maintainers)
        if self.client_for is None or row.installation_id is None:
            return snapshot, frozenset(confirmed)
        client = self.client_for(row.installation_id, config)
        comments = []
        for comment in snapshot.comments:
            author = comment.author
            asks = not (
                comment.id in recorded
                or COMMAND_PREFIX not in comment.body.lower()
                or author.association in (AuthorAssociation.OWNER, AuthorAssociation.MEMBER)
                or author.login in config.maintainers
                or is_app(author.login, config)
                or is_bot(author)
            )
            if asks and await self.permissions.has_write(client, row.full_name, author.login):
                confirmed.add(author.login)
            elif asks and author.association is AuthorAssociation.COLLABORATOR:
                comment = replace(
                    comment, author=replace(author, association=AuthorAssociation.NONE)
                )
            comments.append(comment)
        return replace(snapshot, comments=tuple(comments)), frozenset(confirmed)

    async def take(
        self,
        row: Repository,
        pull: PullRequest,
        key: PullKey,
        snapshot: PullRequestSnapshot,
        config: Config,
        now: datetime,
    ) -> tuple[Handled, ...]:
        """Record the PR's new commands (once per comment) and apply their switches."""
        if not has_command_lines(snapshot):
            return ()
        recorded = set(await ledger_commands.recorded_comment_ids(self.db, key.repository_id))
        done = frozenset(
            f"{snapshot.repository}#{snapshot.number}:command:{comment_id}"
            for comment_id in recorded
        )
        judged, maintainers = await self._judge_authors(row, snapshot, config, recorded)
        handled: list[Handled] = []
        for parsed in parse_commands(judged, config, maintainers, done):
            command_id = await ledger_commands.record_command(
                self.db,
                key,
                ledger_commands.NewCommand(
                    comment_id=parsed.comment_id,
                    author_login=parsed.author,
                    command=command_word(parsed),
                    args=parsed.args,
                    accepted=parsed.accepted,
                    reason=f"{parsed.rule_id}: {parsed.reason}",
                ),
                now,
            )
            if command_id is None:
                continue  # recorded by another evaluation (a redelivery, another replica)
            effect = await self._switch(parsed, row, pull, key, now)
            if effect is not None:
                await ledger_commands.set_effect(self.db, command_id, effect)
            handled.append(Handled(command_id, parsed, effect))
        return tuple(handled)

    async def _switch(
        self, parsed: ParsedCommand, row: Repository, pull: PullRequest, key: PullKey, now: datetime
    ) -> str | None:
        """Apply what takes effect before deciding; the effect text, None when decided later."""
        if not parsed.accepted:
            if parsed.rule_id == "command.not-allowed":
                return f"ignored: {parsed.reason}"
            return None  # unknown / unparsed: answered with the help line
        name = parsed.name
        switches: dict[CommandName, tuple[str, bool, str]] = {
            CommandName.FREEZE: ("frozen", True, "frozen: never staled or closed"),
            CommandName.UNFREEZE: ("frozen", False, "unfrozen"),
            CommandName.PAUSE: ("paused", True, "paused: no actions, no escalations"),
            CommandName.RESUME: ("paused", False, "resumed"),
        }
        if name in switches:
            assert name is not None
            column, value, effect = switches[name]
            await ledger_commands.set_switches(self.db, key.pull_request_id, **{column: value})
            return effect
        if name is CommandName.REFRESH:
            await pulls.mark_dirty(self.db, row.full_name, [pull.number], "command.refresh", now)
            if self.refresh_now is not None:
                poked = self.refresh_now(row.full_name, pull.number)
                if poked is not None:
                    await poked
            return "refresh: marked dirty, re-read now"
        if name is CommandName.BUDGET and self.grant_budget is not None:
            return await self.grant_budget(
                row.full_name, pull.number, parsed.grant_tokens, parsed.grant_dollars, parsed.author
            )
        if name is CommandName.BUDGET:
            return (
                f"budget grant recorded (tokens {parsed.grant_tokens}, "
                f"dollars {parsed.grant_dollars})"
            )
        return None  # escalate, explain: after the decision

    # -- after decide -----------------------------------------------------------------------

    async def answer(
        self,
        handled: Sequence[Handled],
        *,
        row: Repository,
        key: PullKey,
        snapshot: PullRequestSnapshot,
        config: Config,
        decision: Decision,
        acting: bool,
        performed: Sequence[Performed],
        now: datetime,
    ) -> None:
        """Resolve pending escalations and answer this evaluation's commands."""
        await self.note_mode(row, "act" if acting else "shadow", now)
        escalation = await self._resolve_escalations(key, decision, acting, performed)
        if not handled:
            return
        sections: list[str] = []
        reactions: list[tuple[Handled, str]] = []
        effects: dict[int, str] = {}
        for item in handled:
            parsed = item.parsed
            if parsed.accepted and parsed.name is CommandName.EXPLAIN:
                sections.append(
                    f"**`/prsteward explain`** (@{parsed.author}):\n\n```\n"
                    f"{decision.explain()}\n```"
                )
                effects[item.command_id] = "explained in the sticky comment"
                reactions.append((item, REACTION_DONE))
            elif parsed.accepted and parsed.name is CommandName.ESCALATE:
                outcome = escalation.get(item.command_id)
                refused = outcome is not None and outcome.startswith("not escalated")
                if refused:
                    sections.append(f"**`/prsteward escalate`** (@{parsed.author}): {outcome}")
                reactions.append((item, REACTION_REFUSED if refused else REACTION_DONE))
            elif parsed.accepted:
                reactions.append((item, REACTION_DONE))
            elif parsed.help is not None:
                sections.append(f"@{parsed.author}: {parsed.reason}. {parsed.help}")
                effects[item.command_id] = "help line shown"
                reactions.append((item, REACTION_REFUSED))
            # not allowed: recorded and ignored, no answer
        if not acting or row.installation_id is None or self.client_for is None:
            for item in handled:
                what = effects.get(item.command_id)
                if what is not None:
                    await ledger_commands.set_effect(
                        self.db, item.command_id, f"shadow: {what} (not written)"
                    )
            return
        client = self.client_for(row.installation_id, config)
        answered = ""
        if sections:
            answered = await self._edit_sticky(client, row, key, snapshot, decision, sections, now)
        for item, content in reactions:
            try:
                await self._pace(row.installation_id, content_creating=True)
                await client.add_reaction(row.full_name, item.parsed.comment_id, content)
            except GitHubError as error:
                log.warning("reaction on comment %d failed: %s", item.parsed.comment_id, error)
                continue
        for command_id, what in effects.items():
            await ledger_commands.set_effect(self.db, command_id, f"{what}{answered}")

    async def _pace(self, installation_id: int, *, content_creating: bool) -> None:
        if self.pacer is not None:
            await self.pacer.wait(installation_id, content_creating=content_creating)

    async def _edit_sticky(
        self,
        client: CommandClient,
        row: Repository,
        key: PullKey,
        snapshot: PullRequestSnapshot,
        decision: Decision,
        sections: list[str],
        now: datetime,
    ) -> str:
        """The status text followed by the answers, in the one sticky comment (created when
        the PR has none yet). Recorded as a status-comment action whose content hash is the
        status text's, so the next decision does not rewrite it at once."""
        assert row.installation_id is not None
        status = render_status(decision.tier, decision.turn, decision.triggers)
        body = marked(
            status + "\n\n---\n\n" + "\n\n".join(sections),
            f"{snapshot.repository}#{snapshot.number}:command-answer:{now.isoformat()}",
            sticky=True,
        )
        pull = await pulls.get_pull(self.db, row.full_name, snapshot.number)
        comment_id = pull.sticky_comment_id if pull is not None else None
        try:
            if comment_id is None:
                comment_id = await client.sticky_comment(row.full_name, snapshot.number)
            kind = "edit_comment"
            if comment_id is not None:
                await self._pace(row.installation_id, content_creating=False)
                try:
                    await client.edit_comment(row.full_name, comment_id, body)
                except ActionFailed as error:
                    if error.status != 404:
                        raise
                    comment_id = None
            if comment_id is None:
                await self._pace(row.installation_id, content_creating=True)
                comment_id = await client.create_comment(row.full_name, snapshot.number, body)
                kind = "create_comment"
        except GitHubError as error:
            log.warning("answering on %s#%d failed: %s", row.full_name, snapshot.number, error)
            return f" (answer failed: {error})"
        await ledger_candidates.record_action(
            self.db,
            key,
            None,
            kind=kind,
            status="done",
            now=now,
            github_id=str(comment_id),
            details={
                "candidate_kind": CandidateKind.STATUS_COMMENT.value,
                "content_hash": content_hash(status),
                "command_answer": True,
            },
            sticky_comment_id=comment_id,
        )
        return f" (sticky comment {comment_id})"

    async def _resolve_escalations(
        self,
        key: PullKey,
        decision: Decision,
        acting: bool,
        performed: Sequence[Performed],
    ) -> dict[int, str]:
        """Set the effect of pending ``escalate`` commands from this decision; by command id."""
        pending = await ledger_commands.pending_escalations(self.db, key.pull_request_id)
        if not pending:
            return {}
        outcome = escalation_outcome(decision, acting, performed)
        if outcome is None:
            return {}  # still pending (e.g. no job opened yet): keep the trigger
        resolved: dict[int, str] = {}
        for command in pending:
            assert command.id is not None
            await ledger_commands.set_effect(self.db, command.id, outcome)
            resolved[command.id] = outcome
        return resolved


def escalation_outcome(
    decision: Decision, acting: bool, performed: Sequence[Performed]
) -> str | None:
    """What became of a ``/prsteward escalate`` in this decision; None: not known yet."""
    escalations = [c for c in decision.candidates if c.kind is CandidateKind.ESCALATE]
    if not escalations:
        return f"not escalated: tier {decision.tier.tier.value} ({decision.tier.rule_id})"
    candidate = escalations[0]
    other = (
        ""
        if candidate.trigger is not None and candidate.trigger.kind is TriggerKind.MANUAL
        else f" (as {candidate.trigger.kind.value if candidate.trigger else '?'}, first in line)"
    )
    if candidate.suppressed is not None:
        return (
            f"not escalated{other}: {candidate.suppressed_rule_id}: {candidate.suppressed_reason}"
        )
    if not acting:
        budget = candidate.budget
        dollars = f", budget ${budget.dollars:.2f}" if budget is not None else ""
        return f"shadow: would escalate{other}{dollars}"
    done = {p.key: p for p in performed}
    result = done.get(candidate.key)
    if result is None or result.outcome != CandidateOutcome.ESCALATED.value:
        return None
    return f"escalated{other}: {result.detail}"


def poke_poller(poller: Any) -> Callable[[str, int], None]:
    """``refresh_now`` for ``prsteward serve``: run the poller's next cycle now (it reads the
    dirty PR)."""

    def poke(_repository: str, _number: int) -> None:
        from bot.poller import CYCLE_JOB

        scheduler = getattr(poller, "scheduler", None)
        if scheduler is not None and scheduler.running:
            try:
                scheduler.modify_job(CYCLE_JOB, next_run_time=datetime.now().astimezone())
            except Exception as error:  # noqa: BLE001 - a missed poke waits for the schedule
                log.debug("poking the poller failed: %r", error)

    return poke


def desk_for_app(app: Any, db: Ledger, *, pacer: WritePacer | None, poller: Any) -> CommandDesk:
    """The :class:`CommandDesk` ``prsteward serve`` wires into its engine: GitHub through the
    App's installation clients, writes paced with the executor's, refresh pokes the poller."""

    def client_for(installation_id: int, config: Config) -> CommandClient:
        return GitHubCommandClient(app.installation(installation_id), config.app_logins)

    return CommandDesk(
        db,
        client_for,
        pacer=pacer,
        refresh_now=poke_poller(poller) if poller is not None else None,
    )
