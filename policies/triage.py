"""``decide``: one snapshot (+ history, config, spend, now) in, one explained Decision out.

The decision proposes candidates (sticky status comment, labels, a re-run, an escalation, gentle
steps, close notice, close, reviewer reminder), each with a dedupe key, a rule id and a one-line
reason. A candidate that must not happen is still returned, marked with why it is suppressed, so
the ledger can count it and ``/prsteward explain`` can show it. ``mode`` (shadow/act) is not
applied here: the executor does that; the decision only carries it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from policies.budgets import JobBudget, check_budgets
from policies.config import Config, GentleStep, TriggerKind
from policies.history import PullRequestHistory, SpendSummary
from policies.sizing import learned_budget, size_class
from policies.snapshot import Mergeable, PullRequestSnapshot
from policies.stoploss import Block, escalation_block
from policies.tiers import (
    Tier,
    TierVerdict,
    Turn,
    TurnEvent,
    author_silence_start,
    classify,
    current_close_notice,
    days_between,
    intent_to_merge,
    not_planned_issue,
    whose_turn,
)
from policies.triggers import Trigger, digest, find_triggers, is_human


class CandidateKind(StrEnum):
    STATUS_COMMENT = "status_comment"  # the one sticky comment: created once, then edited
    ADD_LABEL = "add_label"
    REMOVE_LABEL = "remove_label"
    RERUN = "rerun"
    ESCALATE = "escalate"
    REMIND_AUTHOR = "remind_author"
    CONVERT_TO_DRAFT = "convert_to_draft"
    CLOSE_NOTICE = "close_notice"
    CLOSE = "close"
    REVIEWER_REMINDER = "reviewer_reminder"


# Kinds that post a new comment on the PR (cooldown and zombie silence apply).
NEW_COMMENT_KINDS = frozenset(
    {CandidateKind.REMIND_AUTHOR, CandidateKind.CLOSE_NOTICE, CandidateKind.REVIEWER_REMINDER}
)
# Kinds a zombie never gets: it is watched, not spoken to or worked on.
ZOMBIE_SILENCED = NEW_COMMENT_KINDS | {
    CandidateKind.STATUS_COMMENT,
    CandidateKind.ESCALATE,
    CandidateKind.RERUN,
    CandidateKind.CONVERT_TO_DRAFT,
}

# Kinds that spend effort on the code (not worth it on a PR that is being closed).
WORK_KINDS = frozenset({CandidateKind.ESCALATE, CandidateKind.RERUN})


class Suppression(StrEnum):
    """Why a candidate is not performed. The ledger stores ``suppressed_<value>``."""

    DUPLICATE = "duplicate"
    COOLDOWN = "cooldown"
    BUDGET = "budget"
    STOP_LOSS = "stop_loss"
    ZOMBIE = "zombie"
    CLOSING = "closing"
    PAUSED = "paused"
    PARTIAL = "partial"
    RISK = "risk"
    INTENT_TO_MERGE = "intent_to_merge"
    OBJECTION = "objection"
    IN_FLIGHT = "in_flight"
    FAMILY = "family"  # a same-shape family stops this member (bot/families.py, issue 14)


_BLOCK_TO_SUPPRESSION = {
    Block.DUPLICATE: Suppression.DUPLICATE,
    Block.IN_FLIGHT: Suppression.IN_FLIGHT,
    Block.COOLDOWN: Suppression.COOLDOWN,
    Block.RISK: Suppression.RISK,
    Block.STOP_LOSS: Suppression.STOP_LOSS,
    Block.NEEDS_HUMAN: Suppression.STOP_LOSS,
    Block.CONSOLIDATE: Suppression.STOP_LOSS,
    Block.CIRCUIT_BREAKER: Suppression.STOP_LOSS,
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One proposed action. ``suppressed`` is None when it should be performed."""

    kind: CandidateKind
    key: str  # "owner/repo#N:kind:fingerprint" — the dedupe key and idempotency marker
    rule_id: str
    reason: str
    suppressed: Suppression | None = None
    suppressed_rule_id: str | None = None
    suppressed_reason: str | None = None
    label: str | None = None  # ADD_LABEL / REMOVE_LABEL
    body: str | None = None  # comment text (STATUS_COMMENT, notices, CLOSE)
    edit_comment_id: int | None = None  # STATUS_COMMENT: edit this comment instead of creating
    trigger: Trigger | None = None  # ESCALATE / RERUN
    budget: JobBudget | None = None  # ESCALATE

    @property
    def proposed(self) -> bool:
        return self.suppressed is None

    def suppress(
        self, why: Suppression, rule_id: str, reason: str, *, overrides: bool = False
    ) -> Candidate:
        """The same candidate, suppressed. The first suppression wins unless ``overrides``
        (safety suppressions such as partial/paused/zombie outrank the specific ones)."""
        if self.suppressed is not None and not overrides:
            return self
        return Candidate(
            self.kind,
            self.key,
            self.rule_id,
            self.reason,
            why,
            rule_id,
            reason,
            self.label,
            self.body,
            self.edit_comment_id,
            self.trigger,
            self.budget,
        )

    def line(self) -> str:
        what = self.kind.value + (f" {self.label}" if self.label else "")
        if self.suppressed is None:
            return f"- {what} [{self.rule_id}]: {self.reason}"
        return (
            f"- {what} [{self.rule_id}]: {self.reason} -- suppressed ({self.suppressed.value}, "
            f"{self.suppressed_rule_id}): {self.suppressed_reason}"
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything decided about one PR at ``decided_at``, with reasons."""

    repository: str
    number: int
    head_sha: str
    decided_at: datetime
    mode: str  # shadow | act: applied by the executor, not here
    tier: TierVerdict
    turn: TurnEvent
    triggers: tuple[Trigger, ...]
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...] = field(default=())  # stop-loss and safety notes, one line each
    previous_tier: str | None = None  # the tier the ledger had; record a change when it differs
    spend: SpendSummary | None = None  # what was spent when deciding (for explain)

    @property
    def waiting_days(self) -> float | None:
        """How long the party whose turn it is has had it ("waiting on you, N days")."""
        if self.turn.at is None or self.turn.turn is Turn.NOBODY:
            return None
        return max(0.0, days_between(self.turn.at, self.decided_at))

    @property
    def tier_changed(self) -> bool:
        return self.previous_tier != self.tier.tier.value

    @property
    def proposed(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.proposed)

    @property
    def suppressed(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if not c.proposed)

    @property
    def escalations(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.proposed if c.kind is CandidateKind.ESCALATE)

    def explain(self) -> str:
        """Plain text for ``/prsteward explain`` and the PR's history page."""
        lines = [
            f"{self.repository}#{self.number} at {self.head_sha[:7]} "
            f"({self.decided_at.isoformat()}, mode {self.mode})",
            f"tier: {self.tier.tier.value} [{self.tier.rule_id}]: {self.tier.reason}",
            f"whose turn: {self.turn.turn.value} [{self.turn.rule_id}]: {self.turn.reason}",
        ]
        if self.triggers:
            lines.append("triggers:")
            lines += [
                f"- {t.kind.value} [{t.rule_id}] {t.fingerprint}: {t.reason}" for t in self.triggers
            ]
        else:
            lines.append("triggers: none")
        if self.candidates:
            lines.append("candidates:")
            lines += [c.line() for c in self.candidates]
        else:
            lines.append("candidates: none")
        lines += [f"note: {n}" for n in self.notes]
        if self.spend is not None:
            lines.append("spend: " + _render_spend(self.spend))
        return "\n".join(lines)


def _render_spend(spend: SpendSummary) -> str:
    def money(value: float | None) -> str:
        return "unknown" if value is None else f"${value:.2f}"

    return (
        f"this PR {money(spend.pr_dollars)}, repository today "
        f"{money(spend.repository_today_dollars)}, installation today "
        f"{money(spend.installation_today_dollars)}, last hour "
        f"{money(spend.installation_last_hour_dollars)}"
    )


# --- helpers ------------------------------------------------------------------------------------


def candidate_key(snapshot: PullRequestSnapshot, kind: CandidateKind, fingerprint: str) -> str:
    """The dedupe key: repository, PR, action kind, trigger fingerprint or content hash."""
    return f"{snapshot.repository}#{snapshot.number}:{kind}:{fingerprint}"  # StrEnum: its value


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _in_cooldown(history: PullRequestHistory, config: Config, now: datetime) -> bool:
    last = history.last_comment_at
    return last is not None and now - last < timedelta(hours=config.cooldowns.comment_hours)


# --- candidate builders -------------------------------------------------------------------------


def label_candidates(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, config: Config, turn: TurnEvent
) -> list[Candidate]:
    """needs-rebase on conflict, cleared when gone; our stale label cleared once it is no longer
    the author's turn. Label changes that are already true are not proposed at all."""
    out: list[Candidate] = []
    rebase = config.labels.needs_rebase
    if snapshot.mergeable is Mergeable.CONFLICTING and rebase not in snapshot.labels:
        fingerprint = digest("conflict", snapshot.head_sha, snapshot.base_sha or snapshot.base_ref)
        out.append(
            Candidate(
                CandidateKind.ADD_LABEL,
                candidate_key(snapshot, CandidateKind.ADD_LABEL, f"{rebase}:{fingerprint}"),
                "label.needs-rebase",
                "the PR conflicts with its base",
                label=rebase,
            )
        )
    if snapshot.mergeable is Mergeable.MERGEABLE and rebase in snapshot.labels:
        out.append(
            Candidate(
                CandidateKind.REMOVE_LABEL,
                candidate_key(
                    snapshot, CandidateKind.REMOVE_LABEL, f"{rebase}:{snapshot.head_sha}"
                ),
                "label.needs-rebase.cleared",
                "the conflict is gone",
                label=rebase,
            )
        )
    stale = config.stale_pr_label
    if (
        turn.turn is not Turn.AUTHOR
        and stale in snapshot.labels
        and stale in history.labels_added_by_bot
    ):
        out.append(
            Candidate(
                CandidateKind.REMOVE_LABEL,
                candidate_key(snapshot, CandidateKind.REMOVE_LABEL, f"{stale}:{turn.rule_id}"),
                "label.stale.cleared",
                f"no longer waiting on the author ({turn.reason})",
                label=stale,
            )
        )
    return out


def escalation_candidates(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    spend: SpendSummary,
    now: datetime,
    triggers: tuple[Trigger, ...],
) -> tuple[list[Candidate], list[str]]:
    """A re-run for flaky-only failures; one escalation for the first escalatable trigger."""
    out: list[Candidate] = []
    notes: list[str] = []
    for trigger in triggers:
        if trigger.kind is TriggerKind.FLAKY_CI:
            out.append(
                Candidate(
                    CandidateKind.RERUN,
                    candidate_key(snapshot, CandidateKind.RERUN, trigger.fingerprint),
                    "rerun.flaky",
                    trigger.reason,
                    trigger=trigger,
                )
            )
    escalatable = [t for t in triggers if t.kind in config.escalate_on]
    if not escalatable:
        return out, notes
    trigger = escalatable[0]  # one agent per PR at a time, in priority order
    budget = learned_budget(
        config, trigger.kind.value, size_class(snapshot, trigger), history.repository_jobs
    )
    candidate = Candidate(
        CandidateKind.ESCALATE,
        candidate_key(snapshot, CandidateKind.ESCALATE, trigger.fingerprint),
        f"escalate.{trigger.kind.value}",
        trigger.reason,
        trigger=trigger,
        budget=budget,
    )
    hit = escalation_block(trigger, snapshot, history, config, now)
    if hit is not None:
        candidate = candidate.suppress(_BLOCK_TO_SUPPRESSION[hit.block], hit.rule_id, hit.reason)
        if hit.block in {Block.NEEDS_HUMAN, Block.CONSOLIDATE, Block.CIRCUIT_BREAKER}:
            notes.append(f"{hit.rule_id}: {hit.reason}")
        if hit.block is Block.NEEDS_HUMAN and config.labels.needs_human not in snapshot.labels:
            out.append(
                Candidate(
                    CandidateKind.ADD_LABEL,
                    candidate_key(
                        snapshot,
                        CandidateKind.ADD_LABEL,
                        f"{config.labels.needs_human}:{trigger.fingerprint}",
                    ),
                    hit.rule_id,
                    hit.reason,
                    label=config.labels.needs_human,
                )
            )
    else:
        verdict = check_budgets(config, spend, budget)
        if not verdict.allowed:
            candidate = candidate.suppress(Suppression.BUDGET, verdict.rule_id, verdict.reason)
    out.append(candidate)
    return out, notes


_STEP_KIND = {
    GentleStep.REMIND: CandidateKind.REMIND_AUTHOR,
    GentleStep.DRAFT: CandidateKind.CONVERT_TO_DRAFT,
    GentleStep.STALE: CandidateKind.CLOSE_NOTICE,
}


def _step_threshold(step: GentleStep, config: Config) -> float:
    if step is GentleStep.REMIND:
        return config.days_before_pr_remind
    if step is GentleStep.DRAFT:
        return config.days_before_pr_draft
    if step is GentleStep.STALE:
        return config.days_before_pr_stale
    return config.days_before_pr_close


def _step_done(
    step: GentleStep,
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    start: datetime,
) -> datetime | None:
    """When the step was taken (None: not yet). A PR already in draft has had its draft step;
    the stale step counts only for the current stale episode (``current_close_notice``)."""
    if step is GentleStep.DRAFT and snapshot.is_draft:
        return snapshot.created_at
    if step is GentleStep.STALE:
        current = current_close_notice(snapshot, history, config, start)
        return current.at if current is not None else None
    kind = _STEP_KIND.get(step)
    notice = history.last_notice(kind.value) if kind is not None else None
    return notice.at if notice is not None else None


def _close_body(reason: str) -> str:
    return (
        f"Closing this pull request: {reason}. Nothing is lost: reopen it (or ask a maintainer "
        "to) and push or comment, and prsteward will treat it as active again."
    )


def gentle_step_candidates(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    turn: TurnEvent,
    now: datetime,
    maintainers: frozenset[str],
) -> list[Candidate]:
    """The next gentle step while it is the author's turn: remind -> draft -> stale -> close,
    in the configured order, each once, each spaced from the previous one. Only the author's
    silence counts; an author reply after the notice restarts the close timer."""
    if turn.turn is not Turn.AUTHOR:
        return []
    start = author_silence_start(snapshot, turn)
    silent = days_between(start, now)
    intent = intent_to_merge(snapshot, config, maintainers)
    previous_at: datetime | None = None
    previous_threshold = 0.0
    for step in config.gentle_steps:
        done_at = _step_done(step, snapshot, history, config, start)
        threshold = _step_threshold(step, config)
        if step is not GentleStep.CLOSE and done_at is not None:
            previous_at, previous_threshold = done_at, threshold
            continue
        if step is GentleStep.CLOSE:
            notice = current_close_notice(snapshot, history, config, start)
            if notice is None:
                return []  # never close without this episode's notice first
            due = max(notice.at, start) + timedelta(days=config.days_before_pr_close)
            if now < due:
                return []
            reason = (
                f"the author has not answered the close notice for "
                f"{days_between(max(notice.at, start), now):.0f} days"
            )
            candidate = Candidate(
                CandidateKind.CLOSE,
                candidate_key(
                    snapshot, CandidateKind.CLOSE, digest("close", notice.at.isoformat())
                ),
                "step.close",
                reason,
                body=_close_body(reason),
            )
            return [_gate_close(candidate, config, intent)]
        gap = threshold - previous_threshold
        if silent < threshold or (previous_at is not None and days_between(previous_at, now) < gap):
            return []
        return _step_candidates(step, snapshot, config, silent, intent, start)
    return []


def _gate_close(candidate: Candidate, config: Config, intent: str | None) -> Candidate:
    if intent is not None:
        return candidate.suppress(
            Suppression.INTENT_TO_MERGE, "never-close.intent-to-merge", f"never closed: {intent}"
        )
    if not config.risk.allow_close:
        return candidate.suppress(
            Suppression.RISK, "risk.close", "closing PRs needs opt-in: risk.allow-close: true"
        )
    return candidate


def _step_candidates(
    step: GentleStep,
    snapshot: PullRequestSnapshot,
    config: Config,
    silent: float,
    intent: str | None,
    start: datetime,
) -> list[Candidate]:
    kind = _STEP_KIND[step]
    # Remind and draft happen once per PR; the stale step once per stale episode.
    episode = digest("episode", start.isoformat())
    key = candidate_key(snapshot, kind, episode if step is GentleStep.STALE else "once")
    waited = f"waiting on the author for {silent:.0f} days"
    if step is GentleStep.REMIND:
        body = (
            f"@{snapshot.author.login} this PR is waiting on you ({waited}). "
            "Push or reply when you can; if you need help, say so here."
        )
        return [Candidate(kind, key, "step.remind", waited, body=body)]
    if step is GentleStep.DRAFT:
        candidate = Candidate(kind, key, "step.draft", waited)
        if intent is not None:
            candidate = candidate.suppress(
                Suppression.INTENT_TO_MERGE,
                "never-close.intent-to-merge",
                f"at most reminded: {intent}",
            )
        return [candidate]
    days = config.days_before_pr_close
    body = (
        f"@{snapshot.author.login} this PR has been {waited}. It is labelled "
        f"`{config.stale_pr_label}` and will be closed in {days:g} days unless you push or reply. "
        f"A maintainer can keep it open with `/prsteward freeze`."
    )
    notice = Candidate(kind, key, "step.stale", waited, body=body)
    label = Candidate(
        CandidateKind.ADD_LABEL,
        candidate_key(snapshot, CandidateKind.ADD_LABEL, f"{config.stale_pr_label}:{episode}"),
        "step.stale",
        waited,
        label=config.stale_pr_label,
    )
    out = [label, notice] if config.stale_pr_label not in snapshot.labels else [notice]
    if intent is not None:
        out = [
            c.suppress(
                Suppression.INTENT_TO_MERGE,
                "never-close.intent-to-merge",
                f"at most reminded: {intent}",
            )
            for c in out
        ]
    return out


def not_planned_candidates(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    now: datetime,
    maintainers: frozenset[str],
) -> list[Candidate]:
    """A linked issue closed as not planned: announce once, close after the grace period unless
    someone objected (a person commented after the notice)."""
    issue = not_planned_issue(snapshot)
    if issue is None:
        return []
    notice = history.last_notice(CandidateKind.CLOSE_NOTICE.value)
    reason = f"linked issue #{issue} was closed as not planned"
    if notice is None:
        body = (
            f"{reason}, so this PR will be closed in {config.days_before_pr_close:g} days. "
            "Comment here or add an exempt label to keep it open."
        )
        return [
            Candidate(
                CandidateKind.CLOSE_NOTICE,
                candidate_key(snapshot, CandidateKind.CLOSE_NOTICE, f"not-planned-{issue}"),
                "closing.not-planned.notice",
                reason,
                body=body,
            )
        ]
    if now < notice.at + timedelta(days=config.days_before_pr_close):
        return []
    candidate = Candidate(
        CandidateKind.CLOSE,
        candidate_key(snapshot, CandidateKind.CLOSE, f"not-planned-{issue}"),
        "closing.not-planned.close",
        reason,
        body=_close_body(reason),
    )
    objections = [
        c for c in snapshot.comments if c.created_at > notice.at and is_human(c.author, config)
    ]
    if objections:
        candidate = candidate.suppress(
            Suppression.OBJECTION,
            "closing.objection",
            f"{objections[-1].author.login} commented after the close notice",
        )
    return [_gate_close(candidate, config, intent_to_merge(snapshot, config, maintainers))]


def reviewer_reminder_candidates(
    snapshot: PullRequestSnapshot, config: Config, turn: TurnEvent, now: datetime
) -> list[Candidate]:
    """One reminder when waiting on maintainers past days-before-reviewer-reminder."""
    if turn.turn is not Turn.MAINTAINERS or turn.at is None:
        return []
    waited = days_between(turn.at, now)
    if waited < config.days_before_reviewer_reminder:
        return []
    who = ", ".join(f"@{r}" for r in snapshot.review_requests) or "maintainers"
    reason = f"waiting on maintainers for {waited:.0f} days"
    return [
        Candidate(
            CandidateKind.REVIEWER_REMINDER,
            candidate_key(
                snapshot, CandidateKind.REVIEWER_REMINDER, digest("wait", turn.at.isoformat())
            ),
            "remind.reviewers",
            reason,
            body=f"{who}: this PR has been waiting on you for {waited:.0f} days.",
        )
    ]


def render_status(tier: TierVerdict, turn: TurnEvent, triggers: tuple[Trigger, ...]) -> str:
    """The sticky comment's text: stable across sweeps unless something changed."""
    lines = [
        "### prsteward status",
        f"- tier: **{tier.tier.value}**: {tier.reason}"
        if tier.tier is not Tier.CLOSING
        else f"- tier: **{tier.tier.value}** ({tier.rule_id})",
        f"- whose turn: **{turn.turn.value}** ({turn.rule_id})",
    ]
    lines += [f"- {t.kind.value}: {t.reason}" for t in triggers]
    lines.append("Maintainers: `/prsteward explain`, `freeze`, `pause`, `escalate`.")
    return "\n".join(lines)


def status_candidate(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    tier: TierVerdict,
    turn: TurnEvent,
    triggers: tuple[Trigger, ...],
) -> list[Candidate]:
    """Create the sticky comment when there is something to say; edit it when the text changed."""
    worth_saying = tier.tier in {Tier.SIGNAL, Tier.CLOSING}
    if not worth_saying and history.sticky_comment_id is None:
        return []
    body = render_status(tier, turn, triggers)
    body_hash = content_hash(body)
    if body_hash == history.sticky_content_hash:
        return []
    verb = "edit" if history.sticky_comment_id is not None else "create"
    return [
        Candidate(
            CandidateKind.STATUS_COMMENT,
            # Keyed by the transition (old text -> new text): the same text may come back
            # (red -> green -> red) and must be shown again, while a replay of one edit dedupes.
            candidate_key(
                snapshot,
                CandidateKind.STATUS_COMMENT,
                f"{history.sticky_content_hash or 'none'}-{body_hash}",
            ),
            f"status.{verb}",
            f"{verb} the sticky status comment ({tier.tier.value}, {turn.turn.value}'s turn)",
            body=body,
            edit_comment_id=history.sticky_comment_id,
        )
    ]


def sticky_text_came_back(candidate: Candidate) -> bool:
    """A status-comment edit the policies call a duplicate only because the same text was shown
    once before (red -> green -> red -> green at one head). The sticky comment is deduped by the
    content hash it shows now (``status_candidate``), so the edit is still due. Any other
    suppression (zombie, paused, partial, cooldown...) still holds: it would have replaced this
    one (safety suppressions override ``dedupe.key``)."""
    return (
        candidate.kind is CandidateKind.STATUS_COMMENT
        and candidate.suppressed is Suppression.DUPLICATE
        and candidate.suppressed_rule_id == "dedupe.key"
    )


# --- the entry point ----------------------------------------------------------------------------


def _apply_common_suppressions(
    candidate: Candidate,
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    tier: TierVerdict,
    now: datetime,
    done_keys: frozenset[str],
) -> Candidate:
    # Precedence: partial > paused > zombie/closing > duplicate > the rule-specific suppressions.
    if candidate.key in done_keys:
        candidate = candidate.suppress(
            Suppression.DUPLICATE,
            "dedupe.key",
            "this exact action was already performed",
            overrides=True,
        )
    if tier.tier is Tier.ZOMBIE and candidate.kind in ZOMBIE_SILENCED:
        candidate = candidate.suppress(
            Suppression.ZOMBIE, "zombie.silent", tier.reason, overrides=True
        )
    if tier.tier is Tier.CLOSING and candidate.kind in WORK_KINDS:
        candidate = candidate.suppress(
            Suppression.CLOSING,
            "closing.no-work",
            "the PR is on its way to closing: no agent work is spent on it",
            overrides=True,
        )
    if history.commands.paused:
        candidate = candidate.suppress(
            Suppression.PAUSED,
            "command.paused",
            "a maintainer paused prsteward on this PR",
            overrides=True,
        )
    if snapshot.partial:
        candidate = candidate.suppress(
            Suppression.PARTIAL,
            "safety.partial",
            "the snapshot is partial: watch, do not act",
            overrides=True,
        )
    creates_comment = candidate.kind in NEW_COMMENT_KINDS or (
        candidate.kind is CandidateKind.STATUS_COMMENT and candidate.edit_comment_id is None
    )
    if creates_comment and _in_cooldown(history, config, now):
        candidate = candidate.suppress(
            Suppression.COOLDOWN,
            "cooldown.comment",
            f"prsteward commented less than {config.cooldowns.comment_hours:g} h ago",
        )
    return candidate


def decide(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    config: Config,
    spend: SpendSummary,
    now: datetime,
    maintainers: frozenset[str] = frozenset(),
) -> Decision:
    """Tier, whose turn, triggers and candidates for one PR. Pure: same inputs, same decision.

    ``maintainers``: logins confirmed to have write access (collaborator-permission API), for
    maintainers whose org membership is private.
    """
    triggers = find_triggers(snapshot, history, config, maintainers)
    turn = whose_turn(snapshot, history, config, triggers, maintainers)
    tier = classify(snapshot, history, config, triggers, turn, now, maintainers)
    candidates: list[Candidate] = []
    notes: list[str] = []
    if tier.tier is Tier.CLOSED or not config.enabled:
        triggers = () if tier.tier is Tier.CLOSED else triggers
    elif tier.tier is Tier.EXEMPT:
        candidates += label_candidates(snapshot, history, config, turn)
    else:
        candidates += label_candidates(snapshot, history, config, turn)
        escalations, notes = escalation_candidates(snapshot, history, config, spend, now, triggers)
        candidates += escalations
        if tier.rule_id == "tier.closing.not-planned":
            candidates += not_planned_candidates(snapshot, history, config, now, maintainers)
        else:
            candidates += gentle_step_candidates(snapshot, history, config, turn, now, maintainers)
        candidates += reviewer_reminder_candidates(snapshot, config, turn, now)
        candidates += status_candidate(snapshot, history, tier, turn, triggers)
    done_keys = history.done_keys()
    final = tuple(
        _apply_common_suppressions(c, snapshot, history, config, tier, now, done_keys)
        for c in candidates
    )
    return Decision(
        repository=snapshot.repository,
        number=snapshot.number,
        head_sha=snapshot.head_sha,
        decided_at=now,
        mode=config.mode,
        tier=tier,
        turn=turn,
        triggers=triggers,
        candidates=final,
        notes=tuple(notes),
        previous_tier=history.tier,
        spend=spend,
    )
