"""Reconciliation end to end against the in-process sim: the ledger matches the sim exactly,
and a quiet cycle costs one conditional request per repository and no GraphQL points."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.github import GitHubApp
from bot.reconcile import Reconciler, RepositoryFilter
from ledger import pulls, repositories
from ledger.db import Ledger
from ledger.migrate import upgrade_async
from policies.snapshot import CheckOutcome, snapshot_from_json

SimFactory = Callable[..., Awaitable[Any]]


def big_scenario(open_count: int = 300, closed_count: int = 5) -> dict[str, Any]:
    """One repository with ``open_count`` open PRs of every kind and a few closed ones."""
    pulls_spec: list[dict[str, Any]] = []
    for n in range(1, open_count + 1):
        spec: dict[str, Any] = {
            "number": n,
            "title": f"Change {n}",
            "body": f"Body of change {n}" + (" Fixes #1" if n % 50 == 0 else ""),
            "author": "dependabot[bot]" if n % 17 == 0 else f"user{n % 23}",
            "created": f"-{(n % 90) + 1}d",
            "updated": f"-{n % 30}h" if n % 30 else "-1h",
            "checks": {"ci": ["success", "failure", "pending"][n % 3]},
        }
        if n % 7 == 0:
            spec["labels"] = ["bug"] if n % 14 else ["bug", "needs-rebase"]
        if n % 11 == 0:
            spec["draft"] = True
        if n % 13 == 0:
            spec["mergeable"] = "CONFLICTING"
        if n % 19 == 0:
            spec["reviews"] = [{"user": "alice", "state": "CHANGES_REQUESTED", "body": "Tests?"}]
        if n % 29 == 0:
            spec["comments"] = [{"user": "bob", "body": f"ping {n}", "at": "-2h"}]
        if n % 31 == 0:
            spec["statuses"] = {"ci/legacy": "failure"}
        if n % 50 == 0:
            spec["closes"] = [1]
        pulls_spec.append(spec)
    for k in range(closed_count):
        pulls_spec.append(
            {
                "number": open_count + 1 + k,
                "title": f"Closed {k}",
                "author": "carol",
                "state": "merged" if k % 2 else "closed",
                "created": "-40d",
                "updated": "-20d",
            }
        )
    return {
        "installations": [
            {
                "id": 1,
                "account": "acme",
                "repositories": [
                    {
                        "name": "big",
                        "collaborators": {"alice": "admin", "bob": "write"},
                        "labels": ["bug", "needs-rebase"],
                        "issues": [{"number": 1, "title": "An issue", "author": "alice"}],
                        "pulls": pulls_spec,
                    },
                    {"name": "quiet", "pulls": [{"number": 1, "title": "Lonely", "author": "x"}]},
                    {
                        "name": "private-ignored",
                        "pulls": [{"number": 1, "title": "No", "author": "x"}],
                    },
                ],
            }
        ]
    }


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Ledger]:
    await upgrade_async(sqlite_url)
    ledger = Ledger(sqlite_url)
    yield ledger
    await ledger.close()


def app_for(server: Any) -> GitHubApp:
    return GitHubApp(
        app_id=server.app_id, private_key=server.private_key_pem, api_url=server.base_url
    )


def assert_matches(sim_pull: dict[str, Any], snapshot_json: dict[str, Any]) -> None:
    snap = snapshot_from_json(snapshot_json)
    number = sim_pull["number"]
    assert snap.number == number
    assert snap.title == sim_pull["title"], number
    assert snap.body == (sim_pull["body"] or ""), number
    assert snap.author.login == sim_pull["author"], number
    assert snap.author.is_bot == sim_pull["author"].endswith("[bot]"), number
    assert snap.author.association.value == sim_pull["author_association"], number
    assert snap.state.value == sim_pull["state"], number
    assert snap.is_draft == sim_pull["draft"], number
    assert list(snap.labels) == sim_pull["labels"], number
    assert list(snap.assignees) == sim_pull["assignees"], number
    assert list(snap.review_requests) == sim_pull["requested_reviewers"], number
    assert snap.created_at.isoformat().replace("+00:00", "Z") == sim_pull["created_at"], number
    assert snap.updated_at.isoformat().replace("+00:00", "Z") == sim_pull["updated_at"], number
    assert snap.base_ref == sim_pull["base_ref"] and snap.base_sha == sim_pull["base_sha"], number
    assert snap.head_ref == sim_pull["head_ref"] and snap.head_sha == sim_pull["head_sha"], number
    assert snap.mergeable.value == sim_pull["mergeable"], number
    assert snap.merge_state_status == sim_pull["merge_state_status"], number
    assert snap.review_decision == sim_pull["review_decision"], number
    assert snap.checks_state == sim_pull["rollup"], number
    expected_runs = {r["name"]: r for r in sim_pull["check_runs"]}
    runs = {c.name: c for c in snap.checks if c.kind == "check_run"}
    assert set(runs) == set(expected_runs), number
    for name, run in runs.items():
        conclusion = expected_runs[name]["conclusion"]
        if conclusion is None:
            assert run.outcome is CheckOutcome.PENDING, (number, name)
        elif conclusion == "success":
            assert run.outcome is CheckOutcome.SUCCESS, (number, name)
        elif conclusion == "failure":
            assert run.outcome is CheckOutcome.FAILURE, (number, name)
    statuses = {c.name: c.outcome.value for c in snap.checks if c.kind == "status"}
    assert statuses == {
        s["context"]: {"success": "success", "failure": "failure", "error": "failure"}.get(
            s["state"], "pending"
        )
        for s in sim_pull["statuses"]
    }, number
    assert not snap.partial


@pytest.mark.slow
async def test_300_prs__ledger_matches_sim_then_quiet_cycle_is_free(
    sim_factory: SimFactory, db: Ledger
) -> None:
    server = await sim_factory(scenario=big_scenario())
    reconciler = Reconciler(
        app_for(server), db, repository_allowed=RepositoryFilter.from_text("", "acme/private-*")
    )
    targets = await reconciler.discover()
    assert sorted(t.full_name for t in targets) == ["acme/big", "acme/quiet"]
    ignored = await repositories.get_repository(db, "acme/private-ignored")
    assert ignored is not None and ignored.ignored

    first = {r.repository: r for r in await reconciler.run_cycle()}
    assert first["acme/big"].mode == "full" and first["acme/big"].read == 300
    assert not first["acme/big"].errors

    state = await server.control.state("acme/big")
    sim_pulls = {p["number"]: p for p in state["repositories"][0]["pulls"]}
    assert len(sim_pulls) == 300
    ledger_open = {p.number: p for p in await pulls.list_open(db, "acme/big")}
    assert set(ledger_open) == set(sim_pulls)
    for number, sim_pull in sim_pulls.items():
        row = ledger_open[number]
        assert row.snapshot is not None
        assert_matches(sim_pull, row.snapshot)
        assert len(await pulls.list_observations(db, "acme/big", number)) == 1
    assert await pulls.get_pull(db, "acme/big", 301) is None  # closed before we started
    assert await pulls.get_pull(db, "acme/private-ignored", 1) is None

    await server.control.reset_accounting()
    quiet = await reconciler.run_cycle()
    accounting = await server.control.accounting()
    assert [r.unchanged for r in quiet] == [True, True]
    assert sum(accounting["graphql_points"].values()) == 0
    assert accounting["requests"] == {"GET /repos/{owner}/{repo}/pulls": 2}
    assert sum(accounting["conditional_hits"].values()) == 2
    assert sum(accounting["charged"].values()) == 0


async def test_changes_between_cycles__read_and_recorded_once(
    sim_factory: SimFactory, db: Ledger
) -> None:
    server = await sim_factory(scenario=big_scenario(open_count=30, closed_count=0))
    reconciler = Reconciler(app_for(server), db)
    await reconciler.discover()
    await reconciler.run_cycle(only="acme/big")

    await server.control.event("label", repo="acme/big", pr=3, name="bug")
    await server.control.event("close", repo="acme/big", pr=4)
    await server.control.event("merge", repo="acme/big", pr=5)
    opened = await server.control.event("open_pull", repo="acme/big", title="Fresh", user="zed")
    await server.control.event("ci", repo="acme/big", pr=6, conclusion="failure")

    # Webhooks would mark #6 dirty (CI does not bump updatedAt); do it as the handler would.
    from datetime import UTC, datetime

    await pulls.mark_dirty(db, "acme/big", [6], "check_run.completed", datetime.now(UTC))
    results = await reconciler.run_cycle(only="acme/big")
    assert results[0].mode == "incremental", results[0].describe()
    assert 3 in results[0].changed and opened["number"] in results[0].changed
    assert 6 in results[0].changed
    row3 = await pulls.get_pull(db, "acme/big", 3)
    assert row3 is not None and "bug" in row3.snapshot["labels"]  # type: ignore[index]
    row6 = await pulls.get_pull(db, "acme/big", 6)
    assert row6 is not None and not row6.dirty
    assert any(c["outcome"] == "failure" for c in row6.snapshot["checks"])  # type: ignore[index]

    # Closures do not show in the open list: the full sweep finds them and learns why.
    full = await reconciler.run_cycle(only="acme/big", full=True)
    assert sorted(full[0].closed) == [4, 5]
    closed = await pulls.get_pull(db, "acme/big", 4)
    merged = await pulls.get_pull(db, "acme/big", 5)
    assert closed is not None and closed.state == "closed"
    assert merged is not None and merged.state == "merged"
    again = await reconciler.run_cycle(only="acme/big", full=True)
    assert again[0].changed == [] and again[0].closed == []


async def test_discover__forgets_what_github_no_longer_lists(
    sim_factory: SimFactory, db: Ledger
) -> None:
    from datetime import UTC, datetime

    server = await sim_factory(scenario="sim/scenarios/small.yml")
    now = datetime.now(UTC)
    await repositories.upsert_installation(db, 1, "acme", now)
    await repositories.upsert_repository(db, "acme/gone", now, installation_id=1)
    await repositories.upsert_installation(db, 99, "uninstalled", now)
    await repositories.upsert_repository(db, "old/repo", now, installation_id=99)
    reconciler = Reconciler(app_for(server), db)
    targets = await reconciler.discover()
    assert sorted(t.full_name for t in targets) == ["acme/gadgets", "acme/widgets"]
    gone = await repositories.get_repository(db, "acme/gone")
    assert gone is not None and gone.removed_at is not None
    installation = await repositories.get_installation(db, 99)
    assert installation is not None and installation.removed_at is not None
    known = sorted(t.full_name for t in await reconciler.known_targets())
    assert known == ["acme/gadgets", "acme/widgets"]


async def test_suspended_installation__not_swept(sim_factory: SimFactory, db: Ledger) -> None:
    from datetime import UTC, datetime

    server = await sim_factory(scenario="sim/scenarios/small.yml")
    reconciler = Reconciler(app_for(server), db)
    await reconciler.discover()
    await repositories.upsert_installation(db, 1, "acme", datetime.now(UTC), suspended=True)
    assert await reconciler.run_cycle() == []


async def test_a_node_read_again_unchanged__not_normalised_unless_the_ledger_moved(
    sim_factory: SimFactory, db: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    import bot.reconcile
    from ledger.models import ObservationSource

    server = await sim_factory(scenario=big_scenario(open_count=30, closed_count=0))
    reconciler = Reconciler(app_for(server), db)
    await reconciler.discover()
    await reconciler.run_cycle(only="acme/big")
    before = await pulls.get_pull(db, "acme/big", 3)
    assert before is not None and before.snapshot is not None

    normalised: list[int] = []
    real = bot.reconcile.graphql_snapshot_json

    def counting(repository: str, node: Any) -> Any:
        normalised.append(int(node["number"]))
        return real(repository, node)

    monkeypatch.setattr(bot.reconcile, "graphql_snapshot_json", counting)
    again = await reconciler.run_cycle(only="acme/big", full=True)
    assert again[0].read == 30 and again[0].changed == [] and normalised == []

    # A webhook's partial snapshot changed #3's stored fingerprint: the same node read again
    # is encoded and recorded as a change, exactly as it was first recorded.
    partial = {**before.snapshot, "title": "from a webhook", "partial": True}
    await pulls.record_snapshot(
        db, "acme/big", 3, partial, "webhook-fp", ObservationSource.WEBHOOK, datetime.now(UTC)
    )
    third = await reconciler.run_cycle(only="acme/big", full=True)
    assert third[0].changed == [3] and normalised == [3]
    after = await pulls.get_pull(db, "acme/big", 3)
    assert after is not None
    assert after.snapshot == before.snapshot and after.fingerprint == before.fingerprint
    assert len(await pulls.list_observations(db, "acme/big", 3)) == 3


# --- a restarted reconciler: node digests kept in the ledger -------------------------------------


@pytest.fixture
async def any_db(database_url: str) -> AsyncIterator[Ledger]:
    """A ledger on SQLite and on PostgreSQL."""
    await upgrade_async(database_url)
    ledger = Ledger(database_url)
    yield ledger
    await ledger.close()


def count_normalisations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The numbers of the PR nodes ``bot.reconcile`` normalises from now on."""
    import bot.reconcile

    normalised: list[int] = []
    real = bot.reconcile.graphql_snapshot_json

    def counting(repository: str, node: Any) -> Any:
        normalised.append(int(node["number"]))
        return real(repository, node)

    monkeypatch.setattr(bot.reconcile, "graphql_snapshot_json", counting)
    return normalised


async def swept_once(sim_factory: SimFactory, db: Ledger) -> Any:
    """A sim with 30 open PRs in acme/big, discovered and swept once into ``db`` by a
    reconciler that is then dropped (what a new one finds after a restart)."""
    server = await sim_factory(scenario=big_scenario(open_count=30, closed_count=0))
    first = Reconciler(app_for(server), db)
    await first.discover()
    await first.run_cycle(only="acme/big")
    return server


async def test_a_new_reconciler_on_a_warm_ledger__normalises_only_the_changed_node(
    sim_factory: SimFactory, any_db: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await swept_once(sim_factory, any_db)
    assert len(await pulls.known_nodes(any_db, "acme/big")) == 30
    await server.control.event("label", repo="acme/big", pr=3, name="bug")
    normalised = count_normalisations(monkeypatch)

    restarted = Reconciler(app_for(server), any_db)  # nothing in memory
    result = (await restarted.run_cycle(only="acme/big", full=True))[0]

    assert result.read == 30 and result.changed == [3] and not result.errors
    assert normalised == [3]
    state = await server.control.state("acme/big")
    sim_pull = next(p for p in state["repositories"][0]["pulls"] if p["number"] == 3)
    row = await pulls.get_pull(any_db, "acme/big", 3)
    assert row is not None and row.snapshot is not None
    assert_matches(sim_pull, row.snapshot)
    assert "bug" in row.snapshot["labels"]
    # What it stored is what the next restarted one trusts: nothing normalised at all.
    normalised.clear()
    again = await Reconciler(app_for(server), any_db).run_cycle(only="acme/big", full=True)
    assert again[0].read == 30 and again[0].changed == [] and normalised == []


async def test_a_new_reconciler__dirty_reads_and_incremental_sweeps_use_the_ledgers_digests(
    sim_factory: SimFactory, db: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    server = await swept_once(sim_factory, db)
    normalised = count_normalisations(monkeypatch)

    # A webhook marked #4 dirty, though its node did not change: read by number, not normalised.
    await pulls.mark_dirty(db, "acme/big", [4], "check_run.completed", datetime.now(UTC))
    dirty = await Reconciler(app_for(server), db).run_cycle(only="acme/big")
    assert dirty[0].mode == "dirty" and dirty[0].read == 1 and dirty[0].changed == []
    assert normalised == []

    # An incremental sweep after a change: only the changed node is normalised.
    await server.control.event("label", repo="acme/big", pr=8, name="bug")
    incremental = await Reconciler(app_for(server), db).run_cycle(only="acme/big")
    assert incremental[0].mode == "incremental", incremental[0].describe()
    assert incremental[0].changed == [8] and normalised == [8]


async def test_a_new_reconciler__a_node_whose_row_a_webhook_overwrote_is_recorded_again(
    sim_factory: SimFactory, db: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from ledger.models import ObservationSource

    server = await swept_once(sim_factory, db)
    before = await pulls.get_pull(db, "acme/big", 3)
    assert before is not None and before.snapshot is not None and before.node_digest
    partial = {**before.snapshot, "title": "from a webhook", "partial": True}
    await pulls.record_snapshots(
        db,
        "acme/big",
        [pulls.SnapshotItem(3, partial, "webhook-fp")],
        ObservationSource.WEBHOOK,
        datetime.now(UTC),
        mark_open_dirty="pull_request.edited",
    )
    normalised = count_normalisations(monkeypatch)

    restarted = Reconciler(app_for(server), db)
    result = (await restarted.run_cycle(only="acme/big", full=True))[0]

    assert result.changed == [3] and normalised == [3]
    after = await pulls.get_pull(db, "acme/big", 3)
    assert after is not None and not after.dirty
    assert (after.snapshot, after.fingerprint) == (before.snapshot, before.fingerprint)
    assert after.node_digest == before.node_digest  # the node's again, with its snapshot
    assert len(await pulls.list_observations(db, "acme/big", 3)) == 3


async def test_a_new_reconciler__distrusts_digests_of_another_normaliser_or_snapshot(
    sim_factory: SimFactory, db: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.reconcile
    from ledger.models import PullRequest, table_of

    server = await swept_once(sim_factory, db)
    # An older release (which does not know node_digest) rewrote #5's snapshot: the stored
    # digest stays, the fingerprint it was bound to does not.
    before = await pulls.get_pull(db, "acme/big", 5)
    assert before is not None and before.snapshot is not None and before.node_digest
    table = table_of(PullRequest)
    async with db.transaction() as session:
        await session.execute(
            table.update()
            .where(table.c.number == 5)
            .values(fingerprint="old-release", snapshot={**before.snapshot, "title": "old"})
        )
    normalised = count_normalisations(monkeypatch)

    restarted = Reconciler(app_for(server), db)
    result = (await restarted.run_cycle(only="acme/big", full=True))[0]
    assert result.changed == [5] and normalised == [5]
    after = await pulls.get_pull(db, "acme/big", 5)
    assert after is not None
    assert (after.snapshot, after.fingerprint) == (before.snapshot, before.fingerprint)

    # A release whose normaliser (policies/) differs trusts none of them.
    normalised.clear()
    monkeypatch.setattr(bot.reconcile, "_NORMALISER_KEY", b"another release" * 2)
    upgraded = Reconciler(app_for(server), db)
    result = (await upgraded.run_cycle(only="acme/big", full=True))[0]
    assert result.changed == [] and sorted(normalised) == list(range(1, 31))
    normalised.clear()
    steady = await Reconciler(app_for(server), db).run_cycle(only="acme/big", full=True)
    assert steady[0].changed == [] and normalised == []
