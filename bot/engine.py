"""The evaluation engine: ledger snapshot in, decision recorded, proposed actions performed.

``evaluate_pull(repository, number, now)``:

1. load the PR's snapshot (ledger), its history and spend summary (``ledger.history``) and the
   repository's config in force (``bot.config_loader``);
2. ``policies.triage.decide(...)``;
3. record tier / whose-turn changes and stop-loss notes (``ledger.decisions``: only on change)
   and every candidate with its outcome (``ledger.candidates``: only on change, so a quiet cycle
   writes nothing);
4. in ``act`` mode hand the candidates to be performed to the :class:`~bot.executor.Executor`;
   in ``shadow`` mode (the default), or on an archived / watch-only repository, record them as
   ``shadow`` and write nothing to GitHub. A standing permission boundary turns the candidates of
   its action kind into ``suppressed_boundary``.

``evaluate_repository`` refreshes the config when due and evaluates every open PR (time-based
rules such as staleness need it even when nothing changed). ``after_reconcile`` is the poller's
hook: it evaluates the PRs a cycle saw change, and each repository in full every
``full_interval``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.commands import CommandDesk
from bot.config_loader import ConfigLoader, stored_config
from bot.escalation import open_job
from bot.executor import (
    BOUNDARY_KIND,
    Actions,
    EscalationHook,
    Executor,
    GitHubActions,
    Performed,
    PullContext,
    Stop,
    WritePacer,
)
from bot.families import FamilyWatch
from bot.github import GitHubApp
from ledger import candidates as ledger_candidates
from ledger import decisions, history, pulls, repositories
from ledger.db import Ledger
from ledger.models import CandidateOutcome, PullRequest, Repository
from policies.config import Config
from policies.history import PullRequestHistory
from policies.snapshot import PullRequestSnapshot, snapshot_from_json
from policies.triage import (
    Candidate,
    CandidateKind,
    Decision,
    decide,
    sticky_text_came_back,
)

log = logging.getLogger("prsteward.engine")

FULL_EVALUATION_INTERVAL = timedelta(minutes=15)
VIEW_BATCH = 200  # PRs whose ledger history is loaded together


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PullEvaluation:
    """What one evaluation decided and did."""

    repository: str
    number: int
    mode: str  # act | shadow (what was applied, after archived / watch-only)
    decision: Decision
    decisions_written: tuple[str, ...] = ()
    candidates_written: tuple[tuple[str, str], ...] = ()
    performed: tuple[Performed, ...] = ()
    stopped: str | None = None  # rate limited: the rest waits for the next cycle

    @property
    def quiet(self) -> bool:
        """Nothing was written to the ledger or GitHub (an escalation left pending for want of
        an escalation module writes nothing)."""
        wrote = [p for p in self.performed if p.outcome != CandidateOutcome.PENDING.value]
        return not (self.decisions_written or self.candidates_written or wrote)


def candidate_details(candidate: Candidate, head_sha: str) -> dict[str, Any]:
    """What the ledger keeps about a candidate (for the shadow report and the history page)."""
    details: dict[str, Any] = {"head_sha": head_sha}
    if candidate.label is not None:
        details["label"] = candidate.label
    if candidate.body is not None:
        details["body"] = candidate.body
    if candidate.edit_comment_id is not None:
        details["edit_comment_id"] = candidate.edit_comment_id
    if candidate.trigger is not None:
        details["trigger"] = {
            "kind": candidate.trigger.kind.value,
            "fingerprint": candidate.trigger.fingerprint,
            "evidence": list(candidate.trigger.evidence),
        }
    if candidate.budget is not None:
        details["budget"] = {
            "tokens": candidate.budget.tokens,
            "dollars": candidate.budget.dollars,
            "source": candidate.budget.source,
        }
    if candidate.suppressed is not None:
        details["suppressed_rule_id"] = candidate.suppressed_rule_id
    return details


def evaluation_changed(
    pull: PullRequest, last_notes: tuple[str, ...] | None, evaluation: decisions.Evaluation
) -> bool:
    """Whether ``record_evaluation`` has anything to write (it checks again, in its
    transaction); most PRs on most cycles have not changed."""
    notes = tuple(sorted(set(evaluation.notes)))
    return (
        pull.tier != evaluation.tier
        or pull.whose_turn != evaluation.turn
        or pull.whose_turn_reason != evaluation.turn_reason
        or (last_notes is None and bool(notes))
        or (last_notes is not None and tuple(sorted(last_notes)) != notes)
    )


def already_recorded(past: PullRequestHistory, proposals: list[ledger_candidates.Proposal]) -> bool:
    """Every proposal's key already has its latest row with the same settled outcome (not
    pending or failed, which may be performed again): syncing would write and perform nothing."""
    latest = {record.key: record.outcome for record in past.candidates}  # oldest first
    unsettled = (CandidateOutcome.PENDING.value, CandidateOutcome.FAILED.value)
    for proposal in proposals:
        outcome = latest.get(proposal.key)
        if outcome is None or outcome in unsettled:
            return False
        if proposal.outcome == CandidateOutcome.PENDING.value:
            if proposal.repeatable or outcome not in ledger_candidates.DONE_OUTCOMES:
                return False
        elif outcome != proposal.outcome:
            return False
    return True


_LEVELS = {"read": 1, "triage": 1, "write": 2, "maintain": 2, "admin": 3}


def permissions_satisfy(accepted: str | None, granted: dict[str, Any]) -> str | None:
    """The first set in GitHub's ``x-accepted-github-permissions`` (sets separated by ``;``,
    permissions by ``,``: ``issues=write; pull_requests=write``) that the installation's
    permissions now satisfy, as text; None when none is (or the header was absent)."""
    if not accepted:
        return None
    for option in accepted.split(";"):
        wanted = [p.strip() for p in option.split(",") if "=" in p]
        if not wanted:
            continue
        ok = True
        for item in wanted:
            name, level = (part.strip() for part in item.split("=", 1))
            have = _LEVELS.get(str(granted.get(name) or ""), 0)
            if have < _LEVELS.get(level, 99):
                ok = False
                break
        if ok:
            return ", ".join(wanted)
    return None


def effective_mode(config: Config, repository: Repository) -> str:
    """``act`` only when the config says so and the repository may be written to."""
    if config.mode != "act" or repository.archived or repository.watch_only:
        return "shadow"
    return "act"


@dataclass
class Engine:
    db: Ledger
    executor: Executor | None = None  # None: decide and record only (e.g. no App credentials)
    config_loader: ConfigLoader | None = None
    clock: Callable[[], datetime] = utcnow
    full_interval: timedelta = FULL_EVALUATION_INTERVAL
    families: FamilyWatch | None = None  # same-shape families (issue 14): gate escalations
    commands: CommandDesk | None = None  # /prsteward commands (issue 12): taken, answered
    _last_full: dict[str, datetime] = field(default_factory=dict)

    async def _config(self, row: Repository, now: datetime) -> Config:
        if self.config_loader is None:
            return stored_config(row)
        return await self.config_loader.config_for(row, now)

    async def evaluate_pull(
        self, repository: str, number: int, now: datetime | None = None
    ) -> PullEvaluation | None:
        """Decide about one PR and act on it; None when the ledger has no snapshot of it."""
        now = now or self.clock()
        row = await repositories.get_repository(self.db, repository)
        pull = await pulls.get_pull(self.db, repository, number)
        if row is None or pull is None or pull.snapshot is None:
            return None
        config = await self._config(row, now)
        return await self._evaluate(row, pull, config, now)

    async def _evaluate(
        self,
        row: Repository,
        pull: PullRequest,
        config: Config,
        now: datetime,
        view: history.PullView | None = None,
        boundaries: dict[str, Any] | None = None,
    ) -> PullEvaluation:
        assert row.id is not None and pull.id is not None and pull.snapshot is not None
        snapshot = snapshot_from_json(pull.snapshot)
        key = history.PullKey(pull.id, row.id, row.installation_id)
        taken: tuple[Any, ...] = ()
        if self.commands is not None:
            taken = await self.commands.take(row, pull, key, snapshot, config, now)
            view = None if taken else view  # a command changed the history: read it again
        if view is None:
            views = await history.load_views(self.db, row.id, row.installation_id, [pull.id], now)
            view = views[pull.id]
        past, spend = view.history, view.spend
        decision = decide(snapshot, past, config, spend, now, frozenset(config.maintainers))
        if self.families is not None:
            decision = await self.families.gate(
                row,
                pull,
                snapshot,
                config,
                past,
                decision,
                now,
                acting=effective_mode(config, row) == "act" and self.executor is not None,
            )
        evaluation = decisions.Evaluation(
            tier=decision.tier.tier.value,
            tier_rule_id=decision.tier.rule_id,
            tier_reason=decision.tier.reason,
            turn=decision.turn.turn.value,
            turn_rule_id=decision.turn.rule_id,
            turn_reason=decision.turn.reason,
            notes=decision.notes,
            head_sha=snapshot.head_sha,
        )
        written: list[str] = []
        if evaluation_changed(pull, view.last_notes, evaluation):  # a quiet PR costs no write
            written = await decisions.record_evaluation(self.db, key, evaluation, now)
        mode = effective_mode(config, row)
        acting = mode == "act" and self.executor is not None and row.installation_id is not None
        if boundaries is None:
            boundaries = await self._boundaries(row, now) if acting else {}
        proposals = []
        for candidate in decision.candidates:
            outcome, reason, boundary_id = self._outcome(candidate, acting, boundaries)
            proposals.append(
                ledger_candidates.Proposal(
                    key=candidate.key,
                    kind=candidate.kind.value,
                    rule_id=candidate.rule_id,
                    reason=candidate.reason,
                    outcome=outcome,
                    outcome_reason=reason,
                    details=candidate_details(candidate, snapshot.head_sha),
                    boundary_id=boundary_id,
                    repeatable=candidate.kind is CandidateKind.STATUS_COMMENT,
                )
            )
        synced = (
            ledger_candidates.SyncResult((), ())
            if already_recorded(past, proposals)
            else await ledger_candidates.sync_candidates(self.db, key, proposals, now)
        )
        performed: list[Performed] = []
        stopped: str | None = None
        if acting and synced.to_perform:
            assert self.executor is not None and row.installation_id is not None
            by_key = {c.key: c for c in decision.candidates}
            context = PullContext(
                key=key,
                repository=row.full_name,
                number=pull.number,
                installation_id=row.installation_id,
                snapshot=snapshot,
                config=config,
                decision=decision,
                sticky_comment_id=pull.sticky_comment_id,
            )
            for item in synced.to_perform:
                try:
                    done = await self.executor.perform(context, item.candidate_id, by_key[item.key])
                except Stop as stop:
                    stopped = str(stop)
                    break
                performed.append(done)
                if done.sticky_comment_id is not None:
                    context = replace(context, sticky_comment_id=done.sticky_comment_id)
        if self.commands is not None:
            await self.commands.answer(
                taken,
                row=row,
                key=key,
                snapshot=snapshot,
                config=config,
                decision=decision,
                acting=acting,
                performed=performed,
                now=now,
            )
        return PullEvaluation(
            row.full_name,
            pull.number,
            mode,
            decision,
            tuple(written),
            synced.written,
            tuple(performed),
            stopped,
        )

    async def _boundaries(self, row: Repository, now: datetime) -> dict[str, Any]:
        """The permission boundaries standing for this repository, by action kind. A boundary
        whose denial named permissions the installation has gained since (its row updated by
        ``new_permissions_accepted``) is lifted here, so the action is tried again once."""
        assert row.id is not None
        standing = await ledger_candidates.active_boundaries(self.db, row.installation_id, row.id)
        if not standing or row.installation_id is None:
            return standing
        installation = await repositories.get_installation(self.db, row.installation_id)
        if installation is None:
            return standing
        for kind, boundary in list(standing.items()):
            if installation.updated_at <= boundary.since:
                continue  # the installation has not changed since GitHub said no
            enough = permissions_satisfy(boundary.accepted_permissions, installation.permissions)
            if enough is not None and boundary.id is not None:
                await ledger_candidates.lift_boundary(
                    self.db, boundary.id, f"the installation now has {enough}", now
                )
                del standing[kind]
        return standing

    @staticmethod
    def _outcome(
        candidate: Candidate, acting: bool, boundaries: dict[str, Any]
    ) -> tuple[str, str | None, int | None]:
        if candidate.suppressed is not None and not sticky_text_came_back(candidate):
            return (
                f"suppressed_{candidate.suppressed.value}",
                f"{candidate.suppressed_rule_id}: {candidate.suppressed_reason}",
                None,
            )
        if not acting:
            return CandidateOutcome.SHADOW.value, "shadow mode: recorded, not performed", None
        boundary = boundaries.get(BOUNDARY_KIND.get(candidate.kind, candidate.kind.value))
        if boundary is not None:
            return (
                CandidateOutcome.SUPPRESSED_BOUNDARY.value,
                f"GitHub denied {boundary.action_kind} here since {boundary.since.isoformat()}: "
                f"{boundary.message}",
                boundary.id,
            )
        return CandidateOutcome.PENDING.value, None, None

    async def evaluate_repository(
        self, repository: str, now: datetime | None = None, skip: Iterable[int] = ()
    ) -> list[PullEvaluation]:
        """Refresh the config when due and evaluate every open PR the ledger has a snapshot of."""
        now = now or self.clock()
        row = await repositories.get_repository(self.db, repository)
        if row is None:
            return []
        config = await self._config(row, now)
        row = await repositories.get_repository(self.db, repository) or row
        self._last_full[repository] = now
        assert row.id is not None
        skipped = set(skip)
        todo = [
            p
            for p in await pulls.list_open(self.db, repository)
            if p.snapshot is not None and p.number not in skipped and p.id is not None
        ]
        boundaries = (
            await self._boundaries(row, now) if effective_mode(config, row) == "act" else {}
        )
        results: list[PullEvaluation] = []
        for start in range(0, len(todo), VIEW_BATCH):
            batch = todo[start : start + VIEW_BATCH]
            views = await history.load_views(
                self.db, row.id, row.installation_id, [p.id for p in batch if p.id is not None], now
            )
            for pull in batch:
                assert pull.id is not None
                evaluation = await self._evaluate(
                    row, pull, config, now, views[pull.id], boundaries
                )
                results.append(evaluation)
                if evaluation.stopped:
                    return results
        return results

    async def after_reconcile(self, results: Iterable[Any]) -> list[PullEvaluation]:
        """The poller's hook: evaluate what a cycle saw change (and closed), and each repository
        in full when its last full evaluation is older than ``full_interval``. Never raises."""
        now = self.clock()
        evaluations: list[PullEvaluation] = []
        for result in results:
            repository = str(result.repository)
            numbers = sorted(set(result.changed) | set(result.closed))
            try:
                for number in numbers:
                    evaluation = await self.evaluate_pull(repository, number, now)
                    if evaluation is not None:
                        evaluations.append(evaluation)
                last = self._last_full.get(repository)
                if last is None or now - last >= self.full_interval:
                    evaluations += await self.evaluate_repository(repository, now, skip=numbers)
            except Exception:
                log.exception("evaluating %s failed", repository)
        return evaluations


def engine_for_app(
    app: GitHubApp,
    db: Ledger,
    *,
    clock: Callable[[], datetime] = utcnow,
    escalate: EscalationHook | None = None,
    full_interval: timedelta = FULL_EVALUATION_INTERVAL,
) -> Engine:
    """The engine ``prsteward serve`` runs: config from GitHub, writes through
    :class:`~bot.executor.GitHubActions` (paced per installation), and ESCALATE candidates to
    ``bot.escalation.open_job`` unless another ``escalate`` hook is given."""

    def actions_for(installation_id: int, config: Config) -> Actions:
        return GitHubActions(app.installation(installation_id), config.app_logins)

    executor = Executor(
        db,
        actions_for,
        pacer=WritePacer(),
        clock=clock,
        escalate=escalate if escalate is not None else open_job_hook,
    )
    loader = ConfigLoader(app, db, clock=clock)
    families = FamilyWatch(db, app.installation)
    return Engine(db, executor, loader, clock=clock, full_interval=full_interval, families=families)


async def open_job_hook(
    db: Ledger,
    *,
    candidate_id: int,
    decision: Decision,
    candidate: Candidate,
    snapshot: PullRequestSnapshot,
    now: datetime,
) -> int | None:
    """:data:`~bot.executor.EscalationHook` over ``bot.escalation.open_job`` (the escalation
    engineer's), with the repository's config in force for its stop-loss caps."""
    config = stored_config(await repositories.get_repository(db, decision.repository))
    return await open_job(
        db, decision, candidate, snapshot, now, config=config, candidate_id=candidate_id
    )
