"""Scripted events change state as GitHub would, on the sim clock; webhook deliveries are
signed, logged per App, droppable, duplicable and redeliverable through GitHub's REST routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from githubkit.webhooks import verify

from tests.sim.helpers import SMALL_SCENARIO, Receiver, app_jwt, installation_client

Factory = Callable[..., Awaitable[Any]]
REPO = "acme/widgets"


def pull_of(state: dict[str, Any], number: int) -> dict[str, Any]:
    return next(p for p in state["repositories"][0]["pulls"] if p["number"] == number)


async def test_push_resets_checks_and_mergeable_is_unknown_for_a_while(
    sim_factory: Factory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    before = pull_of(await server.control.state(REPO), 10)
    result = await server.control.event("push", repo=REPO, pr=10)
    after = pull_of(await server.control.state(REPO), 10)
    assert result["sha"] == after["head_sha"] != before["head_sha"]
    assert after["mergeable"] == "UNKNOWN" and after["merge_state_status"] == "UNKNOWN"
    assert after["rollup"] == "PENDING" and [r["status"] for r in after["check_runs"]] == ["queued"]
    await server.control.advance("31s")
    assert pull_of(await server.control.state(REPO), 10)["mergeable"] == "MERGEABLE"


async def test_base_moves_and_causes_a_conflict(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.event("base_moved", repo=REPO, conflicts=[15])
    moved = await server.control.state(REPO)
    assert pull_of(moved, 15)["mergeable"] == "UNKNOWN"
    assert pull_of(moved, 10)["mergeable"] == "UNKNOWN"
    await server.control.advance("1m")
    settled = await server.control.state(REPO)
    assert pull_of(settled, 15)["mergeable"] == "CONFLICTING"
    assert pull_of(settled, 15)["merge_state_status"] == "DIRTY"
    assert pull_of(settled, 10)["mergeable"] == "MERGEABLE"


async def test_rerun_failed_jobs_passes_flaky_ci_and_fails_real_failures(
    sim_factory: Factory,
) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    state = await server.control.state(REPO)
    flaky_suite = pull_of(state, 12)["check_runs"][0]["suite_id"]
    broken_suite = pull_of(state, 11)["check_runs"][0]["suite_id"]
    async with installation_client(server) as gh:
        for suite in (flaky_suite, broken_suite):
            answer = await gh.post(f"/repos/acme/widgets/actions/runs/{suite}/rerun-failed-jobs")
            assert answer.status_code == 201
    running = await server.control.state(REPO)
    assert pull_of(running, 12)["rollup"] == "PENDING"
    await server.control.advance("5m")
    done = await server.control.state(REPO)
    assert pull_of(done, 12)["rollup"] == "SUCCESS"
    assert {r["name"]: r["conclusion"] for r in pull_of(done, 11)["check_runs"]} == {
        "ci": "failure",
        "lint": "success",
    }
    usage = await server.control.accounting()
    assert (
        usage["writes"]["POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs"] == 2
    )


async def test_reviews_comments_ci_and_closing_issues_show_in_state(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.events(
        [
            {"type": "review", "repo": REPO, "pr": 14, "user": "alice", "state": "APPROVED"},
            {"type": "ci", "repo": REPO, "pr": 11, "conclusion": "success"},
            {"type": "comment", "repo": REPO, "pr": 10, "user": "outsider", "body": "+1"},
            {"type": "comment", "repo": REPO, "pr": 10, "user": "renovate[bot]", "body": "rebased"},
            {"type": "close_issue", "repo": REPO, "issue": 2, "reason": "not_planned"},
            {"type": "merge", "repo": REPO, "pr": 20},
        ]
    )
    state = await server.control.state(REPO, closed=True)
    assert pull_of(state, 14)["review_decision"] == "APPROVED"
    assert pull_of(state, 11)["rollup"] == "SUCCESS"
    assert [(c["user"], c["association"]) for c in pull_of(state, 10)["comments"]] == [
        ("outsider", "NONE"),
        ("renovate[bot]", "NONE"),
    ]
    assert pull_of(state, 20)["state"] == "MERGED"
    issue = next(i for i in state["repositories"][0]["issues"] if i["number"] == 2)
    assert (issue["state"], issue["state_reason"]) == ("closed", "not_planned")


async def test_timeline_events_fire_when_the_clock_reaches_them(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    assert pull_of(await server.control.state(REPO), 11)["comments"] == []
    await server.control.advance("2h")
    comments = pull_of(await server.control.state(REPO), 11)["comments"]
    assert [c["body"] for c in comments] == ["CI is red, please look."]


async def test_unknown_event_is_refused_with_the_list(sim_server: Any) -> None:
    async with httpx.AsyncClient(base_url=sim_server.base_url) as client:
        answer = await client.post("/_sim/events", json={"type": "explode", "repo": REPO})
    assert answer.status_code == 400 and "ci, status, review" in answer.json()["message"]


async def test_deliveries_are_signed_and_in_order(sim_factory: Factory, receiver: Receiver) -> None:
    server = await sim_factory(SMALL_SCENARIO, webhook_url=receiver.url)
    await server.control.event("comment", repo=REPO, pr=10, user="bob", body="one")
    await server.control.event("label", repo=REPO, pr=10, name="bug")
    await server.control.drain_webhooks()
    assert [event for event, _ in receiver.events()] == ["issue_comment", "pull_request"]
    for headers, body in receiver.received:
        assert verify(server.webhook_secret, body, headers["X-Hub-Signature-256"])
        assert headers["X-GitHub-Hook-ID"] and headers["X-GitHub-Delivery"]
        assert headers["X-GitHub-Hook-Installation-Target-Type"] == "integration"
        assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(server.app_id)
    assert json.loads(receiver.received[1][1])["label"]["name"] == "bug"


async def test_dropped_and_failed_deliveries_are_logged_and_redelivered_with_the_same_guid(
    sim_factory: Factory, receiver: Receiver
) -> None:
    server = await sim_factory(SMALL_SCENARIO, webhook_url=receiver.url)
    await server.control.configure_webhook(drop_next=1)
    await server.control.event("comment", repo=REPO, pr=10, user="bob", body="dropped")
    receiver.status = 503  # down
    await server.control.event("comment", repo=REPO, pr=10, user="bob", body="refused")
    await server.control.drain_webhooks()
    receiver.status = 202
    assert receiver.received == []
    jwt_headers = {"Authorization": f"Bearer {app_jwt(server)}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=jwt_headers) as app_client:
        first = await app_client.get("/app/hook/deliveries", params={"per_page": 1})
        assert 'rel="next"' in first.headers["Link"]
        next_url = first.headers["Link"].split(";")[0].strip("<>")
        second = await app_client.get(next_url)
        listed = first.json() + second.json()
        assert [d["status_code"] for d in listed] == [503, 0]
        assert all(not d["redelivery"] for d in listed)
        for delivery in listed:
            answer = await app_client.post(f"/app/hook/deliveries/{delivery['id']}/attempts")
            assert answer.status_code == 202
        await server.control.drain_webhooks()
        after = (await app_client.get("/app/hook/deliveries")).json()
    assert sorted(guid for _, guid in receiver.events()) == sorted(d["guid"] for d in listed)
    redeliveries = [d for d in after if d["redelivery"]]
    assert len(redeliveries) == 2 and all(d["status"] == "OK" for d in redeliveries)


async def test_duplicated_delivery_arrives_twice_with_one_guid(
    sim_factory: Factory, receiver: Receiver
) -> None:
    server = await sim_factory(SMALL_SCENARIO, webhook_url=receiver.url)
    await server.control.configure_webhook(duplicate_next=1)
    await server.control.event(
        "review", repo=REPO, pr=10, user="alice", state="CHANGES_REQUESTED", body="no"
    )
    await server.control.drain_webhooks()
    events = receiver.events()
    assert [e for e, _ in events] == ["pull_request_review", "pull_request_review"]
    assert events[0][1] == events[1][1]
    assert receiver.received[0][1] == receiver.received[1][1]


async def test_api_writes_emit_webhooks_and_are_counted(
    sim_factory: Factory, receiver: Receiver
) -> None:
    server = await sim_factory(SMALL_SCENARIO, webhook_url=receiver.url)
    async with installation_client(server) as gh:
        await gh.post("/repos/acme/widgets/issues/17/labels", json={"labels": ["stale"]})
        await gh.patch("/repos/acme/widgets/pulls/17", json={"state": "closed"})
        created = await gh.post("/repos/acme/widgets/issues", json={"title": "prsteward report"})
    await server.control.drain_webhooks()
    assert [e for e, _ in receiver.events()] == ["pull_request", "pull_request", "issues"]
    actions = [json.loads(body)["action"] for _, body in receiver.received]
    assert actions == ["labeled", "closed", "opened"]
    sender = json.loads(receiver.received[0][1])["sender"]
    assert sender["login"] == "prsteward[bot]" and sender["type"] == "Bot"
    assert created.json()["user"]["login"] == "prsteward[bot]"
    usage = await server.control.accounting()
    assert usage["totals"]["writes"] == 3


async def test_reset_with_state_restores_the_scenario(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    await server.control.event("merge", repo=REPO, pr=10)
    assert 10 not in [
        p["number"] for p in (await server.control.state(REPO))["repositories"][0]["pulls"]
    ]
    await server.control.reset(state=True)
    assert 10 in [
        p["number"] for p in (await server.control.state(REPO))["repositories"][0]["pulls"]
    ]
    assert (await server.control.accounting())["totals"]["requests"] == 0


async def test_a_new_installation_and_its_repositories_become_visible(
    sim_factory: Factory, receiver: Receiver
) -> None:
    server = await sim_factory(SMALL_SCENARIO, webhook_url=receiver.url)
    await server.control.event("install", installation=2, account="globex", repositories=["app"])
    await server.control.event("installation_repositories", installation=2, added=["lib"])
    await server.control.drain_webhooks()
    payloads = [json.loads(body) for _, body in receiver.received]
    assert [(p["action"], p["installation"]["id"]) for p in payloads] == [
        ("created", 2),
        ("added", 2),
    ]
    assert [r["full_name"] for r in payloads[0]["repositories"]] == ["globex/app"]
    assert [r["full_name"] for r in payloads[1]["repositories_added"]] == ["globex/lib"]
    async with installation_client(server, 2) as gh:
        names = [
            r["full_name"]
            for r in (await gh.get("/installation/repositories")).json()["repositories"]
        ]
        hidden = await gh.get("/repos/acme/widgets/pulls")
    assert names == ["globex/app", "globex/lib"]
    assert hidden.status_code == 404  # another installation's repository
    await server.control.event("installation_repositories", installation=2, removed=["lib"])
    async with installation_client(server, 2) as gh:
        assert (await gh.get("/repos/globex/lib")).status_code == 404


async def test_a_slow_receiver_is_a_failed_delivery(
    sim_factory: Factory, receiver: Receiver
) -> None:
    server = await sim_factory(SMALL_SCENARIO, webhook_url=receiver.url)
    await server.control.configure_webhook(timeout_seconds=0.2)
    receiver.delay = 1.0
    await server.control.event("comment", repo=REPO, pr=10, user="bob", body="slow")
    await server.control.drain_webhooks()
    [delivery] = await server.control.deliveries()
    assert delivery["status"] == "timed out" and delivery["status_code"] == 0


async def test_closing_a_pr_moves_the_open_lists_last_modified(sim_factory: Factory) -> None:
    server = await sim_factory(SMALL_SCENARIO)
    async with installation_client(server) as gh:
        first = await gh.get("/repos/acme/widgets/pulls", params={"sort": "updated", "per_page": 1})
        await server.control.advance("1h")
        await server.control.event("close", repo=REPO, pr=17)
        again = await gh.get(
            "/repos/acme/widgets/pulls",
            params={"sort": "updated", "per_page": 1},
            headers={"If-Modified-Since": first.headers["Last-Modified"]},
        )
    assert again.status_code == 200


async def test_a_running_clock_fires_timeline_events_by_itself(
    sim_factory: Factory, receiver: Receiver
) -> None:
    scenario = {
        "clock_rate": 3600,  # an hour a second
        "installations": [
            {
                "id": 1,
                "account": "acme",
                "repositories": [{"name": "widgets", "pulls": [{"number": 1, "title": "x"}]}],
            }
        ],
        "timeline": [
            {"at": "+1h", "type": "comment", "repo": REPO, "pr": 1, "user": "bob", "body": "ping"}
        ],
    }
    server = await sim_factory(scenario, webhook_url=receiver.url)
    await asyncio.wait_for(receiver.arrived.wait(), timeout=20)
    assert receiver.events()[0][0] == "issue_comment"
    assert pull_of(await server.control.state(REPO), 1)["comments"][0]["body"] == "ping"
