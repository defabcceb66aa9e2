"""decide(): candidates, dedupe, suppression, gentle steps and explain."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from policies.config import Config
from policies.history import (
    Commands,
    JobState,
    NoticeRecord,
    PullRequestHistory,
    SpendSummary,
)
from policies.snapshot import Mergeable, PullRequestSnapshot
from policies.triage import (
    Candidate,
    CandidateKind,
    Decision,
    Suppression,
    content_hash,
    decide,
    sticky_text_came_back,
)
from tests.factories import (
    at,
    failing,
    make_app,
    make_bot,
    make_candidate_record,
    make_comment,
    make_config,
    make_history,
    make_job,
    make_linked_issue,
    make_maintainer,
    make_review,
    make_snapshot,
    make_spend,
)

AUTHOR = make_snapshot().author


def run(
    snapshot: PullRequestSnapshot,
    now: datetime,
    history: PullRequestHistory | None = None,
    config: Config | None = None,
    spend: SpendSummary | None = None,
) -> Decision:
    return decide(
        snapshot, history or make_history(), config or make_config(), spend or make_spend(), now
    )


def only(decision: Decision, kind: CandidateKind) -> Candidate:
    found = [c for c in decision.candidates if c.kind is kind]
    assert len(found) == 1, decision.explain()
    return found[0]


def summary(decision: Decision) -> list[tuple[str, str | None]]:
    return [
        (c.kind.value, c.suppressed.value if c.suppressed else None) for c in decision.candidates
    ]


# --- escalation ---------------------------------------------------------------------------------


def test_failing_ci_proposes_one_escalation_with_key_rule_reason_and_budget() -> None:
    decision = run(failing(make_snapshot(), "test"), at(1))
    escalation = only(decision, CandidateKind.ESCALATE)
    assert escalation.proposed
    assert escalation.key.startswith("acme/widgets#1:escalate:")
    assert escalation.trigger is not None
    assert escalation.key.endswith(escalation.trigger.fingerprint)
    assert escalation.rule_id == "escalate.failing_ci"
    assert "test" in escalation.reason
    # A one-file, 12-line PR with one failing check is size S: a quarter of the per-job limit.
    assert escalation.budget is not None
    assert (escalation.budget.size_class, escalation.budget.dollars) == ("S", 0.75)


def test_flaky_only_failure_gets_one_rerun_not_an_agent() -> None:
    config = make_config(flaky_check_patterns=("*e2e*",))
    decision = run(failing(make_snapshot(), "e2e-linux"), at(1), config=config)
    assert only(decision, CandidateKind.RERUN).proposed
    assert not [c for c in decision.candidates if c.kind is CandidateKind.ESCALATE]


def test_two_triggers_escalate_one_at_a_time_conflict_first() -> None:
    decision = run(failing(make_snapshot(mergeable=Mergeable.CONFLICTING), "test"), at(1))
    escalation = only(decision, CandidateKind.ESCALATE)
    assert escalation.rule_id == "escalate.conflict"


def _job_history(*jobs: object, **extra: object) -> PullRequestHistory:
    return make_history(jobs=jobs, **extra)


@pytest.mark.parametrize(
    ("history", "spend", "expected_suppression", "expected_rule"),
    [
        (make_history(), make_spend(), None, None),
        (
            _job_history(make_job(fingerprint="same", state=JobState.RUNNING)),
            make_spend(),
            Suppression.DUPLICATE,
            "dedupe.escalation",
        ),
        (
            _job_history(make_job(fingerprint="other", state=JobState.RUNNING, created_at=at(0))),
            make_spend(),
            Suppression.IN_FLIGHT,
            "stop-loss.in-flight",
        ),
        (
            _job_history(
                make_job(fingerprint="sha1", created_at=at(0)),
                make_job(fingerprint="sha2", created_at=at(0.2)),
            ),
            make_spend(),
            Suppression.STOP_LOSS,
            "stop-loss.attempts",
        ),
        (
            _job_history(
                make_job(fingerprint="sha1", created_at=at(0)),
                make_job(fingerprint="sha2", state=JobState.VERIFIED_DONE, created_at=at(0.2)),
            ),
            make_spend(),
            None,
            None,
        ),
        (
            _job_history(
                make_job("conflict", "c1", failure_signature="x", created_at=at(0)),
                make_job("changes_requested", "c2", failure_signature="x", created_at=at(0.1)),
            ),
            make_spend(),
            Suppression.STOP_LOSS,
            "stop-loss.same-failure",
        ),
        (
            _job_history(
                *[
                    make_job(
                        "changes_requested" if i % 2 else "conflict",
                        f"f{i}",
                        state=JobState.VERIFIED_DONE,
                        created_at=at(0.5 + 0.1 * i),
                    )
                    for i in range(5)
                ]
            ),
            make_spend(),
            Suppression.STOP_LOSS,
            "stop-loss.per-day",
        ),
        (
            make_history(
                repository_jobs=tuple(
                    make_job(
                        "failing_ci",
                        f"r{i}",
                        pull_number=10 + i,
                        check_names=("lint",),
                        created_at=at(0),
                    )
                    for i in range(3)
                )
            ),
            make_spend(),
            Suppression.STOP_LOSS,
            "stop-loss.repeated-shape",
        ),
        (
            make_history(
                repository_jobs=tuple(
                    make_job(f"k{i}", f"r{i}", pull_number=10 + i, created_at=at(0))
                    for i in range(3)
                )
            ),
            make_spend(),
            Suppression.STOP_LOSS,
            "stop-loss.circuit-breaker",
        ),
        (
            _job_history(
                make_job("conflict", "c1", state=JobState.VERIFIED_DONE, created_at=at(0.99))
            ),
            make_spend(),
            Suppression.COOLDOWN,
            "cooldown.escalation",
        ),
        (make_history(), SpendSummary(), Suppression.BUDGET, "budget.pr.unknown"),
        (
            make_history(),
            make_spend(repository_today_dollars=None),
            Suppression.BUDGET,
            "budget.repository-day.unknown",
        ),
        (make_history(), make_spend(pr_dollars=14.5), Suppression.BUDGET, "budget.pr"),
        (
            make_history(),
            make_spend(installation_today_dollars=99.5),
            Suppression.BUDGET,
            "budget.installation-day",
        ),
        (
            make_history(),
            make_spend(installation_last_hour_dollars=19.5),
            Suppression.BUDGET,
            "budget.hour",
        ),
        (make_history(), make_spend(pr_dollars=999.0), Suppression.BUDGET, "budget.pr"),
        (
            make_history(commands=Commands(paused=True)),
            make_spend(),
            Suppression.PAUSED,
            "command.paused",
        ),
    ],
    ids=[
        "fresh trigger, budgets known -> escalate",
        "job with the same fingerprint exists -> duplicate",
        "another job still running -> in flight",
        "2 failed attempts at failing_ci on new SHAs -> stop-loss attempts (per PR, not per SHA)",
        "last attempt verified -> attempts reset, escalate",
        "same failure signature twice in a row -> needs human",
        "5 escalations in 24h -> stop-loss per day",
        "3 repo jobs share one shape, none cleared -> consolidate",
        "3 failed verifications in the repo -> circuit breaker",
        "last escalation 15 minutes ago -> cooldown",
        "spend unknown -> fail closed",
        "repository spend unknown -> fail closed",
        "PR budget nearly spent -> budget",
        "installation day nearly spent -> budget",
        "hourly burn ceiling reached -> budget",
        "overspent PR -> budget (remaining clamps at zero)",
        "paused by a maintainer -> paused",
    ],
)
def test_escalation_stop_loss_and_budgets(
    history: PullRequestHistory,
    spend: SpendSummary,
    expected_suppression: Suppression | None,
    expected_rule: str | None,
) -> None:
    snapshot = failing(make_snapshot(), "test")
    decision = run(snapshot, at(1), history=history, spend=spend)
    escalation = only(decision, CandidateKind.ESCALATE)
    # "same" stands for this decision's own fingerprint
    if any(j.fingerprint == "same" for j in history.jobs):
        assert escalation.trigger is not None
        jobs = tuple(replace(j, fingerprint=escalation.trigger.fingerprint) for j in history.jobs)
        escalation = only(
            run(snapshot, at(1), replace(history, jobs=jobs), spend=spend), CandidateKind.ESCALATE
        )
    assert escalation.suppressed is expected_suppression, escalation.line()
    assert escalation.suppressed_rule_id == expected_rule


def test_same_failure_twice_also_proposes_needs_human_label_and_a_note() -> None:
    history = make_history(
        jobs=(
            make_job("failing_ci", "a", failure_signature="lint: E501", created_at=at(0)),
            make_job("failing_ci", "b", failure_signature="lint: E501", created_at=at(0.1)),
        )
    )
    decision = run(failing(make_snapshot(), "lint"), at(1), history)
    label = [c for c in decision.candidates if c.label == "needs-human"]
    assert len(label) == 1 and label[0].proposed
    assert any("stop-loss.same-failure" in n for n in decision.notes)


def test_repeated_shape_names_the_shape() -> None:
    history = make_history(
        jobs=tuple(
            make_job(
                "failing_ci", f"f{i}", check_names=("lint",), files=("a.py",), created_at=at(0)
            )
            for i in range(3)
        )
    )
    # Raise the attempt cap so the repeated shape is the rule that speaks.
    config = make_config(
        **{"stop-loss": {"max-attempts-per-trigger": 9, "same-failure-signature-limit": 9}}
    )
    escalation = only(
        run(failing(make_snapshot(), "lint"), at(1), history, config), CandidateKind.ESCALATE
    )
    assert escalation.suppressed_rule_id == "stop-loss.repeated-shape"
    assert "failing_ci[checks=lint; files=a.py]" in (escalation.suppressed_reason or "")


def test_review_fix_cycles_are_capped() -> None:
    history = make_history(
        jobs=tuple(
            make_job(
                "changes_requested", f"r{i}", state=JobState.VERIFIED_DONE, created_at=at(-10 + i)
            )
            for i in range(3)
        )
    )
    snapshot = make_snapshot(reviews=(make_review(submitted_at=at(1)),))
    escalation = only(run(snapshot, at(2), history), CandidateKind.ESCALATE)
    assert escalation.suppressed_rule_id == "stop-loss.review-cycles"


def test_workflow_files_need_opt_in() -> None:
    snapshot = failing(make_snapshot(changed_paths=(".github/workflows/ci.yml",)), "test")
    refused = only(run(snapshot, at(1)), CandidateKind.ESCALATE)
    assert refused.suppressed is Suppression.RISK
    allowed = only(
        run(snapshot, at(1), config=make_config(risk={"allow-workflow-files": True})),
        CandidateKind.ESCALATE,
    )
    assert allowed.proposed


def test_zombie_never_escalates_or_comments() -> None:
    decision = run(failing(make_snapshot(), "test"), at(40))
    assert decision.tier.tier.value == "zombie"
    for candidate in decision.candidates:
        if candidate.kind is not CandidateKind.ADD_LABEL:
            assert candidate.suppressed is Suppression.ZOMBIE, candidate.line()


def test_partial_snapshot_suppresses_everything() -> None:
    decision = run(failing(make_snapshot(partial=True), "test"), at(1))
    assert decision.candidates
    assert all(c.suppressed is Suppression.PARTIAL for c in decision.candidates)


def test_performed_key_is_a_duplicate() -> None:
    first = run(failing(make_snapshot(), "test"), at(1))
    status = only(first, CandidateKind.STATUS_COMMENT)
    history = make_history(candidates=(make_candidate_record(status.key, "status_comment"),))
    again = only(
        run(failing(make_snapshot(), "test"), at(1), history), CandidateKind.STATUS_COMMENT
    )
    assert again.suppressed is Suppression.DUPLICATE


def test_shadow_outcome_is_not_a_duplicate() -> None:
    first = run(failing(make_snapshot(), "test"), at(1))
    status = only(first, CandidateKind.STATUS_COMMENT)
    history = make_history(
        candidates=(make_candidate_record(status.key, "status_comment", "shadow"),)
    )
    assert only(
        run(failing(make_snapshot(), "test"), at(1), history), CandidateKind.STATUS_COMMENT
    ).proposed


def test_mode_is_carried_not_applied() -> None:
    decision = run(failing(make_snapshot(), "test"), at(1), config=make_config(mode="shadow"))
    assert decision.mode == "shadow"
    assert only(decision, CandidateKind.ESCALATE).proposed


# --- sticky status comment ----------------------------------------------------------------------


def test_sticky_comment_is_created_once_then_edited_only_when_text_changes() -> None:
    snapshot = failing(make_snapshot(), "test")
    created = only(run(snapshot, at(1)), CandidateKind.STATUS_COMMENT)
    assert created.edit_comment_id is None and created.rule_id == "status.create"
    assert created.body is not None
    same_text = make_history(sticky_comment_id=99, sticky_content_hash=content_hash(created.body))
    assert not [
        c
        for c in run(snapshot, at(2), same_text).candidates
        if c.kind is CandidateKind.STATUS_COMMENT
    ]
    changed = only(run(failing(snapshot, "lint"), at(2), same_text), CandidateKind.STATUS_COMMENT)
    assert changed.edit_comment_id == 99 and changed.rule_id == "status.edit"


def test_new_comments_respect_the_cooldown_but_edits_do_not() -> None:
    history = make_history(last_comment_at=at(0.9), sticky_comment_id=5)
    decision = run(failing(make_snapshot(), "test"), at(1), history)
    assert only(decision, CandidateKind.STATUS_COMMENT).proposed  # an edit
    reminder = only(
        run(make_snapshot(), at(20), make_history(last_comment_at=at(19.5))),
        CandidateKind.REVIEWER_REMINDER,
    )
    assert reminder.suppressed is Suppression.COOLDOWN


# --- labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (make_snapshot(mergeable=Mergeable.CONFLICTING), [("add_label", "needs-rebase")]),
        (make_snapshot(mergeable=Mergeable.CONFLICTING, labels=("needs-rebase",)), []),
        (make_snapshot(labels=("needs-rebase",)), [("remove_label", "needs-rebase")]),
        (make_snapshot(mergeable=Mergeable.UNKNOWN, labels=("needs-rebase",)), []),
        (make_snapshot(), []),
    ],
    ids=[
        "conflict, no label -> add needs-rebase",
        "conflict, label present -> nothing (no-op)",
        "mergeable again, label present -> remove needs-rebase",
        "mergeability unknown -> leave the label",
        "healthy -> no label change",
    ],
)
def test_needs_rebase_label(snapshot: PullRequestSnapshot, expected: list[tuple[str, str]]) -> None:
    decision = run(snapshot, at(1))
    labels = [(c.kind.value, c.label) for c in decision.candidates if c.label == "needs-rebase"]
    assert labels == expected


def test_bot_stale_label_is_removed_once_it_is_the_maintainers_turn() -> None:
    snapshot = make_snapshot(
        labels=("lifecycle/stale",),
        comments=(
            make_comment(make_maintainer(), created_at=at(1)),
            make_comment(author=AUTHOR, created_at=at(70), body="back!"),
        ),
    )
    history = make_history(labels_added_by_bot=("lifecycle/stale",))
    decision = run(snapshot, at(71), history)
    assert ("remove_label", "lifecycle/stale") in [
        (c.kind.value, c.label) for c in decision.proposed
    ]


# --- gentle steps -------------------------------------------------------------------------------


def steps_on(
    snapshot: PullRequestSnapshot, now: datetime, history: PullRequestHistory, config: Config
) -> list[tuple[str, str | None]]:
    step_kinds = {
        CandidateKind.REMIND_AUTHOR,
        CandidateKind.CONVERT_TO_DRAFT,
        CandidateKind.CLOSE_NOTICE,
        CandidateKind.CLOSE,
    }
    return [
        (c.kind.value, c.suppressed.value if c.suppressed else None)
        for c in run(snapshot, now, history, config).candidates
        if c.kind in step_kinds or c.label == "lifecycle/stale"
    ]


CHANGES = make_snapshot(reviews=(make_review(submitted_at=at(1)),))
ALL_STEPS = make_config(
    gentle_steps=("remind", "draft", "stale", "close"), risk={"allow-close": True}
)


@pytest.mark.parametrize(
    ("now", "notices", "expected"),
    [
        (at(10), (), []),
        (at(16), (), [("remind_author", None)]),
        (at(20), (("remind_author", 15),), []),
        (at(23), (("remind_author", 15),), [("convert_to_draft", None)]),
        (at(50), (("remind_author", 15), ("convert_to_draft", 22)), []),
        (
            at(62),
            (("remind_author", 15), ("convert_to_draft", 22)),
            [("add_label", None), ("close_notice", None)],
        ),
        (at(70), (("remind_author", 15), ("convert_to_draft", 22), ("close_notice", 61)), []),
        (
            at(76),
            (("remind_author", 15), ("convert_to_draft", 22), ("close_notice", 61)),
            [("close", None)],
        ),
        (at(100), (), [("remind_author", None)]),
    ],
    ids=[
        "silent 9d -> nothing yet",
        "silent 15d -> remind once",
        "reminded, 19d -> nothing (draft not due)",
        "reminded, 22d -> convert to draft",
        "draft done, 49d -> nothing",
        "silent 61d -> stale label + close notice",
        "notice out 9 days -> wait",
        "notice out 15 days -> close",
        "first seen after 99 silent days -> start with the reminder, not the close",
    ],
)
def test_gentle_steps_in_order_each_once(
    now: datetime, notices: tuple[tuple[str, float], ...], expected: list[tuple[str, str | None]]
) -> None:
    history = make_history(notices=tuple(NoticeRecord(k, at(d)) for k, d in notices))
    assert steps_on(CHANGES, now, history, ALL_STEPS) == expected


def test_author_reply_after_notice_restarts_the_close_timer() -> None:
    notices = (
        NoticeRecord("remind_author", at(15)),
        NoticeRecord("close_notice", at(61)),
    )
    # The author replied at day 70, then the maintainer asked again at day 71: author's turn.
    snapshot = make_snapshot(
        labels=("lifecycle/stale",),  # put on with the notice; the episode goes on
        reviews=(make_review(submitted_at=at(1)),),
        comments=(
            make_comment(AUTHOR, created_at=at(70), body="on it"),
            make_comment(make_maintainer(), created_at=at(71), body="still failing?"),
        ),
    )
    config = make_config(risk={"allow-close": True})
    history = make_history(notices=notices)
    assert steps_on(snapshot, at(80), history, config) == []  # 9 days after the restart
    assert steps_on(snapshot, at(86), history, config) == [("close", None)]


def test_an_old_notice_whose_stale_label_is_gone_never_closes_a_new_episode() -> None:
    # Day 61 notice; the turn then went to the maintainers (prsteward removed its label); on day
    # 100 a maintainer requested changes again. The new silence needs its own notice first.
    history = make_history(
        notices=(NoticeRecord("remind_author", at(15)), NoticeRecord("close_notice", at(61)))
    )
    snapshot = make_snapshot(reviews=(make_review(submitted_at=at(100)),))
    config = make_config(risk={"allow-close": True})
    assert steps_on(snapshot, at(130), history, config) == []  # no close on the old notice
    renewed = steps_on(snapshot, at(161), history, config)
    assert renewed == [("add_label", None), ("close_notice", None)]


def test_close_needs_opt_in() -> None:
    history = make_history(
        notices=(NoticeRecord("remind_author", at(15)), NoticeRecord("close_notice", at(61)))
    )
    assert steps_on(CHANGES, at(80), history, make_config()) == [("close", "risk")]


@pytest.mark.parametrize(
    "snapshot",
    [
        make_snapshot(reviews=(make_review(submitted_at=at(1)),), review_decision="APPROVED"),
        make_snapshot(reviews=(make_review(submitted_at=at(1)),), auto_merge_enabled=True),
        make_snapshot(
            reviews=(make_review(submitted_at=at(1)),),
            linked_issues=(make_linked_issue(assignees=("boss",)),),
        ),
    ],
    ids=[
        "approved -> only reminded, never closed",
        "auto-merge -> only reminded, never closed",
        "linked open issue assigned to a maintainer -> only reminded",
    ],
)
def test_never_close_intent_to_merge(snapshot: PullRequestSnapshot) -> None:
    config = make_config(risk={"allow-close": True}, maintainers=("boss",))
    assert steps_on(snapshot, at(16), make_history(), config) == [("remind_author", None)]
    history = make_history(notices=(NoticeRecord("remind_author", at(15)),))
    for day in (62, 200, 400):
        for kind, suppression in steps_on(snapshot, at(day), history, config):
            assert kind == "remind_author" or suppression == "intent_to_merge", (day, kind)


def test_waiting_on_maintainers_for_a_year_never_stales_and_gets_one_reminder() -> None:
    snapshot = make_snapshot()
    decision = run(snapshot, at(365))
    assert summary(decision) == [("reviewer_reminder", None)]
    reminder = only(decision, CandidateKind.REVIEWER_REMINDER)
    history = make_history(candidates=(make_candidate_record(reminder.key, "reviewer_reminder"),))
    assert (
        only(run(snapshot, at(366), history), CandidateKind.REVIEWER_REMINDER).suppressed
        is Suppression.DUPLICATE
    )


def test_bot_comments_and_label_churn_never_move_the_timer() -> None:
    quiet = run(CHANGES, at(16))
    noisy = run(
        replace(
            CHANGES,
            updated_at=at(15.9),
            labels=("triage",),
            comments=(
                make_comment(make_bot(), created_at=at(15)),
                make_comment(make_app("prsteward"), created_at=at(15.5)),
            ),
        ),
        at(16),
    )
    assert (
        [c.kind for c in quiet.candidates if c.kind is CandidateKind.REMIND_AUTHOR]
        == [c.kind for c in noisy.candidates if c.kind is CandidateKind.REMIND_AUTHOR]
        == [CandidateKind.REMIND_AUTHOR]
    )


# --- closing on a not-planned issue -------------------------------------------------------------

NOT_PLANNED = make_snapshot(
    linked_issues=(make_linked_issue(state="CLOSED", state_reason="NOT_PLANNED"),)
)


def test_not_planned_is_announced_once_then_closed_after_grace() -> None:
    config = make_config(risk={"allow-close": True})
    first = run(NOT_PLANNED, at(1), config=config)
    assert only(first, CandidateKind.CLOSE_NOTICE).proposed
    history = make_history(notices=(NoticeRecord("close_notice", at(1)),))
    assert not [
        c
        for c in run(NOT_PLANNED, at(10), history, config).candidates
        if c.kind is CandidateKind.CLOSE
    ]
    close = only(run(NOT_PLANNED, at(16), history, config), CandidateKind.CLOSE)
    assert close.proposed and "reopen" in (close.body or "")


def test_not_planned_close_waits_when_someone_objects() -> None:
    config = make_config(risk={"allow-close": True})
    snapshot = replace(
        NOT_PLANNED, comments=(make_comment(make_maintainer(), created_at=at(3), body="keep"),)
    )
    history = make_history(notices=(NoticeRecord("close_notice", at(1)),))
    assert (
        only(run(snapshot, at(16), history, config), CandidateKind.CLOSE).suppressed
        is Suppression.OBJECTION
    )


# --- explain ------------------------------------------------------------------------------------


def test_explain_names_tier_turn_triggers_rules_and_suppressions() -> None:
    text = run(failing(make_snapshot(), "test"), at(1), spend=SpendSummary()).explain()
    assert "tier: signal [tier.signal]" in text
    assert "whose turn: author [turn.failing_ci]" in text
    assert "failing_ci [trigger.failing-ci]" in text
    assert "escalate [escalate.failing_ci]" in text
    assert "suppressed (budget, budget.pr.unknown)" in text


def test_every_candidate_has_key_rule_and_reason() -> None:
    decision = run(failing(make_snapshot(mergeable=Mergeable.CONFLICTING), "test"), at(16))
    assert decision.candidates
    for c in decision.candidates:
        assert c.key.startswith("acme/widgets#1:") and c.rule_id and c.reason
        if c.suppressed is not None:
            assert c.suppressed_rule_id and c.suppressed_reason


@pytest.mark.parametrize(
    ("previous", "expected"),
    [(None, True), ("active", True), ("signal", False)],
    ids=[
        "first decision -> changed",
        "active before, signal now -> changed",
        "same tier -> unchanged",
    ],
)
def test_tier_change_is_reported_against_the_ledger(previous: str | None, expected: bool) -> None:
    decision = run(failing(make_snapshot(), "test"), at(1), make_history(tier=previous))
    assert decision.tier_changed is expected


def test_explain_shows_spend_and_waiting_days() -> None:
    decision = run(make_snapshot(), at(10), spend=make_spend(pr_dollars=1.5))
    assert decision.turn.turn.value == "maintainers"
    assert decision.waiting_days == pytest.approx(10)
    assert "spend: this PR $1.50" in decision.explain()
    assert run(make_snapshot(is_draft=True), at(10)).waiting_days is None


def test_sticky_text_that_comes_back_is_shown_again() -> None:
    red = failing(make_snapshot(), "test")
    first = only(run(red, at(1)), CandidateKind.STATUS_COMMENT)
    assert first.body is not None
    red_hash = content_hash(first.body)
    green_text = only(
        run(
            make_snapshot(), at(2), make_history(sticky_comment_id=9, sticky_content_hash=red_hash)
        ),
        CandidateKind.STATUS_COMMENT,
    )
    assert green_text.body is not None
    history = make_history(
        sticky_comment_id=9,
        sticky_content_hash=content_hash(green_text.body),
        candidates=(
            make_candidate_record(first.key, "status_comment"),
            make_candidate_record(green_text.key, "status_comment"),
        ),
    )
    red_again = only(run(red, at(3), history), CandidateKind.STATUS_COMMENT)
    assert red_again.proposed, red_again.line()
    assert red_again.body == first.body and red_again.key != first.key


def test_sticky_text_came_back_only_for_a_status_comment_deduped_by_its_key() -> None:
    status = Candidate(CandidateKind.STATUS_COMMENT, "o/r#1:status:abc", "status.show", "why")
    again = status.suppress(Suppression.DUPLICATE, "dedupe.key", "already performed")
    assert sticky_text_came_back(again)
    assert not sticky_text_came_back(status)  # not suppressed at all
    zombie = again.suppress(Suppression.ZOMBIE, "zombie.silent", "zombie", overrides=True)
    assert not sticky_text_came_back(zombie)  # a safety suppression still holds
    label = Candidate(CandidateKind.ADD_LABEL, "o/r#1:label:x", "label.rule", "why", label="x")
    assert not sticky_text_came_back(
        label.suppress(Suppression.DUPLICATE, "dedupe.key", "already performed")
    )
