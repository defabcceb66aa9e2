"""The summary issue against the sim (issue 7 item 2): one issue, edited in place at most every
N minutes and only when its body changed; nothing written in shadow mode; "prsteward is behind"
when the sweep is overdue; a create never confirmed never opens a second issue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.summary import SummaryPoster, scope_marker
from ledger import summary as ledger_summary
from ledger.repositories import get_repository
from tests.summary.conftest import ActingWorld, acting_scenario

World = Callable[..., Awaitable[ActingWorld]]
CONFIG = "mode: {mode}\nsummary:\n  enabled: true\n  min-interval-minutes: 60\n"
PULLS = [
    {
        "number": 11,
        "title": "Fix crash",
        "author": "dave",
        "created": "-3d",
        "checks": {"ci": "failure"},
    },
    {
        "number": 12,
        "title": "Add docs",
        "author": "carol",
        "created": "-10d",
        "checks": {"ci": "success"},
        "requested_reviewers": ["alice"],
    },
]
CREATE = "POST /repos/{owner}/{repo}/issues"
EDIT = "PATCH /repos/{owner}/{repo}/issues/{issue_number}"
COMMENT = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"


async def start(acting_world: World, mode: str = "act") -> tuple[ActingWorld, SummaryPoster]:
    world = await acting_world(
        acting_scenario(
            mode="", pulls=PULLS, files={".github/prsteward.yml": CONFIG.format(mode=mode)}
        )
    )
    await cycle(world)
    poster = SummaryPoster(
        world.db,
        client_for=world.app.installation,
        pacer=world.executor.pacer,
        clock=lambda: world.server.sim.clock.now(),
    )
    return world, poster


async def cycle(world: ActingWorld) -> None:
    await world.sync()
    await world.evaluate()


async def summarise(world: ActingWorld, poster: SummaryPoster) -> tuple[str, dict[str, int]]:
    """One summary pass; its outcome and the sim writes it made (by endpoint)."""
    before = await world.writes()
    outcome = (await poster.run()).get("acme/widgets", "not due")
    after = await world.writes()
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    return outcome, delta


def summary_issues(world: ActingWorld) -> list[Any]:
    repo = world.server.sim.state.repo("acme", "widgets")
    marker = scope_marker("acme/widgets")
    return [i for i in repo.issues.values() if marker in (i.body or "")]


async def open_pull(world: ActingWorld, title: str) -> None:
    await world.control.event(
        "open_pull", repo="acme/widgets", title=title, author="erin", checks=["ci"]
    )


async def test_act_mode_creates_one_issue_then_edits_it_in_place(acting_world: World) -> None:
    world, poster = await start(acting_world)
    outcome, delta = await summarise(world, poster)
    assert (outcome, delta) == ("created", {CREATE: 1})
    [issue] = summary_issues(world)
    assert issue.title == "prsteward summary"
    assert "## Queue by tier" in issue.body and "acme/widgets#12 Add docs: waiting on you" in (
        issue.body
    )
    row = await get_repository(world.db, "acme/widgets")
    assert row is not None and row.summary_issue_number == issue.number

    edits = 0
    for title in ("Speed up parser", "Drop Python 3.9"):
        await open_pull(world, title)
        await world.control.advance("61m")
        await cycle(world)
        outcome, delta = await summarise(world, poster)
        edits += 1
        assert (outcome, delta) == ("edited", {EDIT: 1})
        [same] = summary_issues(world)
        assert same.number == issue.number and f"| acme/widgets | act | {2 + edits} |" in same.body
    writes = await world.writes()
    assert writes.get(CREATE) == 1 and writes.get(EDIT) == edits
    state = await ledger_summary.summary_state(world.db, "acme/widgets")
    assert state.issue_number == issue.number and state.writes == 1 + edits
    # Never a comment on the summary issue.
    repo = world.server.sim.state.repo("acme", "widgets")
    assert [c for c in repo.comments.values() if c.issue_number == issue.number] == []


async def test_unchanged_body_is_not_written(acting_world: World) -> None:
    world, poster = await start(acting_world)
    assert (await summarise(world, poster))[0] == "created"
    for _ in range(2):  # a third hour would make the sweep overdue (3 cadences): "behind"
        await world.control.advance("61m")
        outcome, delta = await summarise(world, poster)
        assert (outcome, delta) == ("unchanged", {})
    assert len(summary_issues(world)) == 1


async def test_edits_wait_for_the_minimum_interval(acting_world: World) -> None:
    world, poster = await start(acting_world)
    assert (await summarise(world, poster))[0] == "created"
    await open_pull(world, "Speed up parser")
    await cycle(world)
    poster._checked.clear()  # a fresh process: the interval still holds (from the ledger)
    outcome, delta = await summarise(world, poster)
    assert (outcome, delta) == ("held", {})
    await world.control.advance("30m")
    assert await summarise(world, poster) == ("not due", {})  # checked under an interval ago
    await world.control.advance("31m")
    outcome, delta = await summarise(world, poster)
    assert (outcome, delta) == ("edited", {EDIT: 1})
    assert "| acme/widgets | act | 3 |" in summary_issues(world)[0].body


async def test_shadow_mode_writes_nothing_and_records_what_it_would_post(
    acting_world: World,
) -> None:
    world, poster = await start(acting_world, mode="shadow")
    outcome, delta = await summarise(world, poster)
    assert (outcome, delta) == ("shadow", {})
    assert summary_issues(world) == []
    state = await ledger_summary.summary_state(world.db, "acme/widgets")
    assert state.shadow_hash and state.shadow_at is not None and state.issue_number is None
    await world.control.advance("61m")
    assert await summarise(world, poster) == ("unchanged", {})
    assert (await world.writes()).get(CREATE) is None


async def test_shadow_body_lists_what_prsteward_would_do(acting_world: World) -> None:
    from bot.summary import render_summary, targets_of
    from ledger.repositories import list_repositories

    world, poster = await start(acting_world, mode="shadow")
    [target] = targets_of(await list_repositories(world.db))
    body = render_summary(target, await poster.gather([target], await world.now()))
    assert "## What prsteward would do" in body and "#11" in body
    assert "Shadow mode" in body


async def test_behind_line_when_the_sweep_is_overdue(acting_world: World) -> None:
    world, poster = await start(acting_world)
    assert (await summarise(world, poster))[0] == "created"
    assert "prsteward is behind" not in summary_issues(world)[0].body
    await world.control.advance("4h")  # no sweep for more than 3 cadences (1 h)
    outcome, delta = await summarise(world, poster)
    assert (outcome, delta) == ("edited", {EDIT: 1})
    body = summary_issues(world)[0].body
    assert "> **prsteward is behind: " in body and "acme/widgets last swept" in body


async def test_a_create_never_confirmed_is_adopted_not_repeated(acting_world: World) -> None:
    world, poster = await start(acting_world)
    # A crash after GitHub made the issue and before the ledger heard of it.
    assert (await summarise(world, poster))[0] == "created"
    [issue] = summary_issues(world)
    from sqlalchemy import delete

    from ledger.models import Decision, table_of

    async with world.db.transaction() as session:
        decisions = table_of(Decision).c
        await session.execute(
            delete(table_of(Decision)).where(
                decisions.kind == "summary", decisions.rule_id == "summary.created"
            )
        )
    assert (await ledger_summary.summary_state(world.db, "acme/widgets")).creating
    await open_pull(world, "Speed up parser")
    await world.control.advance("61m")
    await cycle(world)
    poster._checked.clear()
    outcome, delta = await summarise(world, poster)
    assert outcome == "edited" and delta == {EDIT: 1}  # found by its marker, then edited
    assert [i.number for i in summary_issues(world)] == [issue.number]
    state = await ledger_summary.summary_state(world.db, "acme/widgets")
    assert state.issue_number == issue.number and not state.creating


async def test_no_second_issue_when_the_marker_cannot_be_looked_for(acting_world: World) -> None:
    world, poster = await start(acting_world)
    await ledger_summary.record_summary(
        world.db, "acme/widgets", "summary.creating", "test", await world.now()
    )
    await world.control.add_fault(
        "status", path="/repos/acme/widgets/issues$", method="GET", status=404, count=5
    )
    outcome, delta = await summarise(world, poster)
    assert (outcome, delta) == ("unconfirmed", {})
    assert summary_issues(world) == []


ORG_CONFIG = (
    "mode: act\nsummary:\n  enabled: true\n  repository: acme/.github\n"
    "  title: acme PR queue\n  min-interval-minutes: 60\n"
)


def _repo(name: str, files: dict[str, str], pulls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "collaborators": {"alice": "admin"},
        "files": files,
        "pulls": pulls,
    }


async def test_one_org_issue_in_dot_github_for_every_repository(acting_world: World) -> None:
    world = await acting_world(
        {
            "installations": [
                {
                    "id": 1,
                    "account": "acme",
                    "repositories": [
                        _repo("widgets", {".github/prsteward.yml": ORG_CONFIG}, PULLS[:1]),
                        _repo("gadgets", {".github/prsteward.yml": ORG_CONFIG}, PULLS[1:]),
                        _repo(".github", {}, []),
                    ],
                }
            ]
        }
    )
    await world.sync()
    for name in ("acme/widgets", "acme/gadgets", "acme/.github"):
        await world.evaluate(name)
    poster = SummaryPoster(
        world.db, client_for=world.app.installation, clock=lambda: world.server.sim.clock.now()
    )
    assert await poster.run() == {"org:acme/.github": "created"}
    writes = await world.writes()
    assert writes.get(CREATE) == 1
    dot_github = world.server.sim.state.repo("acme", ".github")
    [issue] = [i for i in dot_github.issues.values() if scope_marker("org:acme/.github") in i.body]
    assert issue.title == "acme PR queue"
    assert "acme/widgets" in issue.body and "acme/gadgets" in issue.body
    for name in ("widgets", "gadgets"):
        assert world.server.sim.state.repo("acme", name).issues == {} or all(
            "prsteward:summary" not in (i.body or "")
            for i in world.server.sim.state.repo("acme", name).issues.values()
        )
    await world.control.advance("61m")
    assert await poster.run() == {"org:acme/.github": "unchanged"}


async def test_exhausted_jobs_and_boundaries_are_announced(acting_world: World) -> None:
    from ledger import candidates as ledger_candidates
    from ledger import jobs as job_store
    from ledger.models import JobState

    world, poster = await start(acting_world)
    now = await world.now()
    job, _ = await job_store.create_job(
        world.db,
        job_store.NewJob(
            repository="acme/widgets",
            number=11,
            trigger_kind="failing_ci",
            trigger_fingerprint="t-11",
            budget_tokens=300_000,
            budget_dollars=3.0,
            max_attempts=2,
            start_head_sha="0" * 40,
        ),
        now,
        lambda _id, _attempt: {},
    )
    assert job is not None and job.id is not None
    for target in (
        JobState.LEASED,
        JobState.CLAIMED_DONE,
        JobState.VERIFYING,
        JobState.BUDGET_EXHAUSTED,
    ):
        assert await job_store.move(world.db, job.id, target, "test", "out of budget", now)
    await ledger_candidates.open_boundary(
        world.db,
        1,
        await world.db_repository(),
        "label",
        http_status=403,
        message="Resource not accessible by integration",
        accepted_permissions="issues=write",
        now=now,
    )
    assert (await summarise(world, poster))[0] == "created"
    body = summary_issues(world)[0].body
    stored = await job_store.get_job(world.db, job.id)
    assert stored is not None
    assert stored.state == JobState.BUDGET_EXHAUSTED.value
    assert "## Waiting for a budget grant: 1" in body
    assert f"prsteward jobs grant {job.id}" in body and "/prsteward budget +50k" in body
    assert "- BUDGET_EXHAUSTED: 1" in body  # escalations by state
    assert "label denied (HTTP 403)" in body and "issues=write" in body


def test_a_long_body_is_cut_to_fit_an_issue() -> None:
    from bot.summary import MAX_BODY, _fit

    body = "".join(f"- line {i}\n" for i in range(20_000))
    fitted = _fit(body)
    assert len(fitted) <= MAX_BODY and fitted.endswith("see `prsteward report`)_\n")
    assert _fit("short\n") == "short\n"


async def test_a_refused_create_is_recorded_and_retried_once_per_interval(
    acting_world: World,
) -> None:
    world, poster = await start(acting_world)
    await world.control.add_fault(
        "status", path="/repos/acme/widgets/issues$", method="POST", status=403, count=1
    )
    assert (await summarise(world, poster))[0] == "failed"
    state = await ledger_summary.summary_state(world.db, "acme/widgets")
    assert not state.creating and state.issue_number is None
    before = (await world.requests()).copy()
    await world.control.advance("5m")
    assert await summarise(world, poster) == ("not due", {})
    assert await world.requests() == before  # not attempted again within the interval
    await world.control.advance("56m")
    assert (await summarise(world, poster))[0] == "created"
    assert len(summary_issues(world)) == 1
