"""Day-by-day simulations of decide() with the ledger's bookkeeping played by the test:
each proposed step is 'posted' (recorded as a notice and a done candidate) and labels applied."""

from __future__ import annotations

from dataclasses import replace

from policies.config import Config
from policies.history import CandidateRecord, NoticeRecord, PullRequestHistory
from policies.snapshot import PullRequestSnapshot, PullRequestState
from policies.triage import CandidateKind, decide
from tests.factories import (
    at,
    make_app,
    make_bot,
    make_comment,
    make_config,
    make_history,
    make_review,
    make_snapshot,
    make_spend,
)

NOTICE_KINDS = {
    CandidateKind.REMIND_AUTHOR,
    CandidateKind.CONVERT_TO_DRAFT,
    CandidateKind.CLOSE_NOTICE,
    CandidateKind.REVIEWER_REMINDER,
}


def simulate(
    snapshot: PullRequestSnapshot,
    config: Config,
    days: int,
    churn: bool = False,
) -> list[tuple[int, str]]:
    """Run one decision a day; return (day, action) for every action performed."""
    history: PullRequestHistory = make_history()
    performed: list[tuple[int, str]] = []
    for day in range(days):
        now = at(day + 0.5)
        if churn:  # bots, the App and label churn every day: none of it may move a timer
            snapshot = replace(
                snapshot,
                updated_at=now,
                labels=(*snapshot.labels, f"churn-{day}")[-3:],
                comments=(
                    *snapshot.comments,
                    make_comment(make_bot(), created_at=at(day + 0.1)),
                    make_comment(make_app("app/prsteward"), created_at=at(day + 0.2)),
                ),
            )
        decision = decide(snapshot, history, config, make_spend(), now)
        for candidate in decision.proposed:
            if candidate.kind is CandidateKind.STATUS_COMMENT:
                continue
            performed.append(
                (day, candidate.kind.value + (f":{candidate.label}" if candidate.label else ""))
            )
            record = CandidateRecord(candidate.key, candidate.kind.value, "posted", now)
            history = replace(
                history, candidates=(*history.candidates, record), last_bot_action_at=now
            )
            if candidate.kind in NOTICE_KINDS:
                history = replace(
                    history,
                    notices=(*history.notices, NoticeRecord(candidate.kind.value, now)),
                    last_comment_at=now,
                )
            if candidate.kind is CandidateKind.ADD_LABEL and candidate.label:
                snapshot = replace(snapshot, labels=(*snapshot.labels, candidate.label))
                history = replace(
                    history, labels_added_by_bot=(*history.labels_added_by_bot, candidate.label)
                )
            if candidate.kind is CandidateKind.CONVERT_TO_DRAFT:
                snapshot = replace(snapshot, is_draft=True)
            if candidate.kind is CandidateKind.CLOSE:
                snapshot = replace(snapshot, state=PullRequestState.CLOSED)
    return performed


WAITING_ON_AUTHOR = make_snapshot(reviews=(make_review(submitted_at=at(0.25)),), review_requests=())
# Escalation is off here: these simulations are about the lifecycle steps alone.
CLOSING = make_config(risk={"allow-close": True}, escalate_on=())


def test_author_silence_goes_through_each_gentle_step_once_then_closes() -> None:
    assert simulate(WAITING_ON_AUTHOR, CLOSING, 120) == [
        (14, "remind_author"),
        (60, "add_label:lifecycle/stale"),
        (60, "close_notice"),
        (74, "close"),
    ]


def test_bot_comments_the_apps_own_comments_and_label_churn_never_move_a_timer() -> None:
    quiet = simulate(WAITING_ON_AUTHOR, CLOSING, 120)
    noisy = simulate(WAITING_ON_AUTHOR, CLOSING, 120, churn=True)
    assert noisy == quiet


def test_with_draft_in_the_steps_each_step_happens_once_in_order() -> None:
    config = make_config(
        risk={"allow-close": True},
        gentle_steps=("remind", "draft", "stale", "close"),
        escalate_on=(),
    )
    steps = [action for _, action in simulate(WAITING_ON_AUTHOR, config, 120)]
    assert steps == [
        "remind_author",
        "convert_to_draft",
        "add_label:lifecycle/stale",
        "close_notice",
        "close",
    ]


def test_without_close_opt_in_it_never_closes() -> None:
    performed = simulate(WAITING_ON_AUTHOR, make_config(escalate_on=()), 200)
    assert [a for _, a in performed] == [
        "remind_author",
        "add_label:lifecycle/stale",
        "close_notice",
    ]


def test_waiting_on_maintainers_for_a_year_is_never_staled_or_closed() -> None:
    performed = simulate(make_snapshot(), CLOSING, 365)
    assert performed == [(7, "reviewer_reminder")]


def test_approved_pr_waiting_on_author_is_at_most_reminded() -> None:
    approved = replace(WAITING_ON_AUTHOR, review_decision="APPROVED")
    assert [a for _, a in simulate(approved, CLOSING, 365)] == ["remind_author"]
