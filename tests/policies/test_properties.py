"""Properties of decide(): hold for every generated snapshot, history, spend and moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.budgets import remaining
from policies.config import TriggerKind
from policies.history import (
    Commands,
    JobRecord,
    JobState,
    NoticeRecord,
    PullRequestHistory,
    SpendSummary,
)
from policies.snapshot import (
    Actor,
    AuthorAssociation,
    CheckOutcome,
    Comment,
    Mergeable,
    PullRequestSnapshot,
    PullRequestState,
    Review,
    snapshot_from_json,
    snapshot_to_json,
)
from policies.tiers import Tier, Turn
from policies.triage import CandidateKind, decide
from policies.triggers import find_triggers, is_app, is_trusted_voice
from tests.factories import at, make_check, make_config, make_linked_issue, make_snapshot

CONFIG = make_config(flaky_check_patterns=("*e2e*",), risk={"allow-close": True})
EXAMPLES = settings(max_examples=60, deadline=None)

APP_SPELLINGS = ("prsteward", "prsteward[bot]", "app/prsteward", "PRSteward[bot]")
UNTRUSTED = st.one_of(
    st.sampled_from(APP_SPELLINGS).map(
        lambda login: Actor(login, login.endswith("[bot]"), AuthorAssociation.MEMBER)
    ),
    st.sampled_from(("dependabot[bot]", "renovate[bot]", "ci-bot")).map(
        lambda login: Actor(login, True, AuthorAssociation.NONE)
    ),
    st.builds(
        Actor,
        st.sampled_from(("drive-by", "first-timer", "spammer")),
        st.just(False),
        st.sampled_from(
            (
                AuthorAssociation.CONTRIBUTOR,
                AuthorAssociation.NONE,
                AuthorAssociation.FIRST_TIMER,
                AuthorAssociation.FIRST_TIME_CONTRIBUTOR,
            )
        ),
    ),
)
TRUSTED = st.builds(
    Actor,
    st.sampled_from(("maintainer", "owner", "collab")),
    st.just(False),
    st.sampled_from(
        (AuthorAssociation.MEMBER, AuthorAssociation.OWNER, AuthorAssociation.COLLABORATOR)
    ),
)
AUTHOR = Actor("contributor", False, AuthorAssociation.CONTRIBUTOR)
ANY_ACTOR = st.one_of(UNTRUSTED, TRUSTED, st.just(AUTHOR))
DAY = st.floats(min_value=0, max_value=400, allow_nan=False).map(lambda d: round(d, 2))
ids = st.integers(min_value=1, max_value=10_000)


def comments(actors: st.SearchStrategy[Actor]) -> st.SearchStrategy[tuple[Comment, ...]]:
    return st.lists(
        st.builds(
            Comment,
            ids,
            actors,
            DAY.map(at),
            st.sampled_from(("lgtm", "please fix", "/prsteward explain", "ping")),
        ),
        max_size=4,
    ).map(tuple)


def reviews(actors: st.SearchStrategy[Actor]) -> st.SearchStrategy[tuple[Review, ...]]:
    return st.lists(
        st.builds(
            Review,
            ids,
            actors,
            st.sampled_from(("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED")),
            DAY.map(at),
        ),
        max_size=3,
    ).map(tuple)


@st.composite
def snapshots(draw: st.DrawFn, actors: st.SearchStrategy[Actor] = ANY_ACTOR) -> PullRequestSnapshot:
    names = draw(
        st.lists(st.sampled_from(("build", "test", "lint", "e2e-linux")), unique=True, max_size=4)
    )
    checks = tuple(make_check(n, draw(st.sampled_from(list(CheckOutcome)))) for n in names)
    return make_snapshot(
        head_sha=draw(st.sampled_from(("a" * 40, "c" * 40, "e" * 40))),
        base_sha=draw(st.sampled_from(("b" * 40, "d" * 40))),
        state=draw(st.sampled_from(list(PullRequestState))),
        is_draft=draw(st.booleans()),
        labels=tuple(
            draw(
                st.lists(
                    st.sampled_from(
                        (
                            "lifecycle/frozen",
                            "needs-rebase",
                            "lifecycle/stale",
                            "waiting-on-author",
                            "bug",
                        )
                    ),
                    unique=True,
                    max_size=3,
                )
            )
        ),
        mergeable=draw(st.sampled_from(list(Mergeable))),
        review_decision=draw(
            st.sampled_from((None, "APPROVED", "CHANGES_REQUESTED", "REVIEW_REQUIRED"))
        ),
        review_requests=draw(st.sampled_from(((), ("maintainer",)))),
        auto_merge_enabled=draw(st.booleans()),
        checks=checks,
        comments=draw(comments(actors)),
        reviews=draw(reviews(actors)),
        head_committed_at=at(draw(DAY)),
        linked_issues=draw(
            st.sampled_from(
                (
                    (),
                    (make_linked_issue(state="CLOSED", state_reason="NOT_PLANNED"),),
                    (make_linked_issue(assignees=("maintainer",)),),
                )
            )
        ),
        changed_paths=draw(st.sampled_from((("src/a.py",), (".github/workflows/ci.yml",)))),
        partial=draw(st.booleans()),
    )


JOB_KINDS = st.sampled_from([k.value for k in TriggerKind])


@st.composite
def histories(draw: st.DrawFn) -> PullRequestHistory:
    jobs = draw(
        st.lists(
            st.builds(
                JobRecord,
                JOB_KINDS,
                st.sampled_from(("f1", "f2", "f3")),
                st.sampled_from(list(JobState)),
                DAY.map(at),
                failure_signature=st.sampled_from((None, "x", "y")),
                check_names=st.sampled_from(((), ("lint",))),
            ),
            max_size=5,
        )
    )
    notices = draw(
        st.lists(
            st.builds(
                NoticeRecord,
                st.sampled_from(("remind_author", "close_notice", "convert_to_draft")),
                DAY.map(at),
            ),
            max_size=3,
        )
    )
    return PullRequestHistory(
        jobs=tuple(sorted(jobs, key=lambda j: j.created_at)),
        repository_jobs=tuple(sorted(jobs, key=lambda j: j.created_at)),
        notices=tuple(notices),
        last_bot_action_at=draw(st.one_of(st.none(), DAY.map(at))),
        last_comment_at=draw(st.one_of(st.none(), DAY.map(at))),
        commands=Commands(frozen=draw(st.booleans()), paused=draw(st.booleans())),
        labels_added_by_bot=draw(st.sampled_from(((), ("lifecycle/stale",)))),
    )


MONEY = st.floats(min_value=0, max_value=200, allow_nan=False)
spends = st.builds(
    SpendSummary,
    st.one_of(st.none(), MONEY),
    st.one_of(st.none(), MONEY),
    st.one_of(st.none(), MONEY),
    st.one_of(st.none(), MONEY),
)
moments = DAY.map(at)


@EXAMPLES
@given(snapshots(), histories(), spends, moments)
def test_decisions_are_deterministic(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, spend: SpendSummary, now: datetime
) -> None:
    first = decide(snapshot, history, CONFIG, spend, now)
    again = decide(snapshot_from_json(snapshot_to_json(snapshot)), history, CONFIG, spend, now)
    assert first == again
    assert first.explain() == again.explain()


@EXAMPLES
@given(snapshots(actors=UNTRUSTED), histories(), moments)
def test_no_trigger_ever_fires_for_the_app_other_bots_or_users_without_write_access(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, now: datetime
) -> None:
    triggers = find_triggers(snapshot, history, CONFIG)
    voiced = {TriggerKind.CHANGES_REQUESTED, TriggerKind.MAINTAINER_FEEDBACK}
    assert not [t for t in triggers if t.kind in voiced]
    decision = decide(snapshot, history, CONFIG, SpendSummary(0, 0, 0, 0), now)
    assert decision.turn.rule_id != "turn.maintainer-comment"


@EXAMPLES
@given(snapshots(), histories(), comments(UNTRUSTED), reviews(UNTRUSTED))
def test_untrusted_voices_never_change_the_triggers(
    snapshot: PullRequestSnapshot,
    history: PullRequestHistory,
    extra_comments: tuple[Comment, ...],
    extra_reviews: tuple[Review, ...],
) -> None:
    # The App's own comments may only retire feedback (they mark its last action), never add any.
    before = {(t.kind, t.fingerprint) for t in find_triggers(snapshot, history, CONFIG)}
    noisy = replace(
        snapshot,
        comments=snapshot.comments + extra_comments,
        reviews=snapshot.reviews + extra_reviews,
    )
    after = find_triggers(noisy, history, CONFIG)
    assert {(t.kind, t.fingerprint) for t in after} <= before
    for trigger in after:
        if trigger.actor is not None:
            assert not is_app(trigger.actor, CONFIG)


@EXAMPLES
@given(st.lists(snapshots(), min_size=1, max_size=6), spends, st.lists(DAY, min_size=6, max_size=6))
def test_no_pr_gets_two_escalations_with_the_same_fingerprint(
    sequence: list[PullRequestSnapshot], spend: SpendSummary, days: list[float]
) -> None:
    history = PullRequestHistory()
    escalated: list[str] = []
    for snapshot, day in zip(sequence, sorted(days), strict=False):
        decision = decide(snapshot, history, CONFIG, spend, at(day))
        for candidate in decision.escalations:
            assert candidate.trigger is not None
            fingerprint = candidate.trigger.fingerprint
            assert fingerprint not in escalated
            escalated.append(fingerprint)
            job = JobRecord(
                candidate.trigger.kind.value, fingerprint, JobState.VERIFY_FAILED, at(day)
            )
            history = replace(history, jobs=(*history.jobs, job))
        assert len(decision.escalations) <= 1


@EXAMPLES
@given(MONEY, MONEY)
def test_remaining_budget_is_never_below_zero(limit: float, spent: float) -> None:
    assert remaining(limit, spent) >= 0


@EXAMPLES
@given(snapshots(), histories(), spends, moments)
def test_a_proposed_escalation_fits_every_budget_and_unknown_spend_never_escalates(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, spend: SpendSummary, now: datetime
) -> None:
    decision = decide(snapshot, history, CONFIG, spend, now)
    budgets = CONFIG.budgets
    for candidate in decision.escalations:
        assert candidate.budget is not None
        pairs = [
            (budgets.dollars_per_pr, spend.pr_dollars),
            (budgets.dollars_per_repository_day, spend.repository_today_dollars),
            (budgets.dollars_per_installation_day, spend.installation_today_dollars),
            (budgets.dollars_per_hour, spend.installation_last_hour_dollars),
        ]
        for limit, spent in pairs:
            assert spent is not None
            assert limit - spent - candidate.budget.dollars >= 0


SILENT_KINDS = {
    CandidateKind.ESCALATE,
    CandidateKind.RERUN,
    CandidateKind.STATUS_COMMENT,
    CandidateKind.REMIND_AUTHOR,
    CandidateKind.CLOSE_NOTICE,
    CandidateKind.REVIEWER_REMINDER,
}


@EXAMPLES
@given(snapshots(), histories(), spends, moments)
def test_a_zombie_never_escalates_or_comments(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, spend: SpendSummary, now: datetime
) -> None:
    decision = decide(snapshot, history, CONFIG, spend, now)
    if decision.tier.tier is Tier.ZOMBIE:
        assert not [c for c in decision.proposed if c.kind in SILENT_KINDS]


@EXAMPLES
@given(snapshots(), histories(), spends, moments)
def test_never_closed_while_waiting_on_maintainers_or_meant_to_merge(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, spend: SpendSummary, now: datetime
) -> None:
    decision = decide(snapshot, history, CONFIG, spend, now)
    closes = [c for c in decision.proposed if c.kind is CandidateKind.CLOSE]
    if (
        decision.turn.turn is Turn.MAINTAINERS
        or snapshot.review_decision == "APPROVED"
        or snapshot.auto_merge_enabled
    ):
        assert not closes
    if decision.tier.tier is Tier.CLOSED:
        assert not decision.candidates
    if decision.tier.tier is Tier.EXEMPT:  # hands off: at most label bookkeeping
        assert {c.kind for c in decision.candidates} <= {
            CandidateKind.ADD_LABEL,
            CandidateKind.REMOVE_LABEL,
        }


@EXAMPLES
@given(snapshots(), histories(), spends, moments)
def test_every_candidate_is_explained(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, spend: SpendSummary, now: datetime
) -> None:
    decision = decide(snapshot, history, CONFIG, spend, now)
    assert decision.tier.rule_id and decision.tier.reason and decision.turn.reason
    for c in decision.candidates:
        assert c.rule_id and c.reason and c.key
        assert (c.suppressed is None) == (c.suppressed_reason is None)


def test_trusted_strategy_really_is_trusted() -> None:
    # Guards the generators: if these drifted, the properties above would test nothing.
    assert is_trusted_voice(
        Actor("maintainer", False, AuthorAssociation.MEMBER), CONFIG, frozenset()
    )
    assert not is_trusted_voice(
        Actor("prsteward[bot]", True, AuthorAssociation.MEMBER), CONFIG, frozenset()
    )


@EXAMPLES
@given(snapshots(), histories(), spends, moments)
def test_shadow_and_act_decide_the_same_candidates(
    snapshot: PullRequestSnapshot, history: PullRequestHistory, spend: SpendSummary, now: datetime
) -> None:
    # The shadow report must list exactly what act mode would do: mode is applied later.
    act = decide(snapshot, history, CONFIG, spend, now)
    shadow = decide(snapshot, history, CONFIG.model_copy(update={"mode": "shadow"}), spend, now)
    assert (shadow.mode, act.mode) == ("shadow", "act")
    assert shadow.candidates == act.candidates
    assert (shadow.tier, shadow.turn, shadow.triggers) == (act.tier, act.turn, act.triggers)
