"""Installations and repositories on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.db import Ledger
from ledger.repositories import (
    RepositoryListing,
    get_installation,
    get_repository,
    list_repositories,
    mark_config_error_reported,
    mark_installation_removed,
    mark_repository_removed,
    record_config,
    record_config_error,
    record_poll_check,
    record_sweep,
    set_watch_only,
    upsert_installation,
    upsert_listed_repositories,
    upsert_repository,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


async def test_installation_upsert_keeps_fields_not_given(ledger: Ledger) -> None:
    await upsert_installation(
        ledger, 42, "acme", NOW, permissions={"pull_requests": "write"}, events=["push"]
    )
    await upsert_installation(ledger, 42, "acme-renamed", LATER)

    installation = await get_installation(ledger, 42)
    assert installation is not None
    assert installation.account_login == "acme-renamed"
    assert installation.permissions == {"pull_requests": "write"}
    assert installation.events == ["push"]
    assert (installation.created_at, installation.updated_at) == (NOW, LATER)


async def test_removed_installation_comes_back_on_upsert(ledger: Ledger) -> None:
    await upsert_installation(ledger, 42, "acme", NOW)
    assert await mark_installation_removed(ledger, 42, LATER) is True
    removed = await get_installation(ledger, 42)
    assert removed is not None and removed.removed_at == LATER

    await upsert_installation(ledger, 42, "acme", LATER)

    back = await get_installation(ledger, 42)
    assert back is not None and back.removed_at is None
    assert await mark_installation_removed(ledger, 999, LATER) is False


async def test_repository_upsert_returns_a_stable_id(ledger: Ledger) -> None:
    await upsert_installation(ledger, 42, "acme", NOW)

    first = await upsert_repository(ledger, "acme/widget", NOW, installation_id=42, github_id=7)
    second = await upsert_repository(ledger, "acme/widget", LATER, archived=True)

    assert first == second
    repository = await get_repository(ledger, "acme/widget")
    assert repository is not None
    assert (repository.installation_id, repository.github_id) == (42, 7)
    assert repository.archived is True
    assert repository.default_branch == "main"


async def test_list_repositories_filters_installation_and_removed(ledger: Ledger) -> None:
    await upsert_installation(ledger, 1, "a", NOW)
    await upsert_installation(ledger, 2, "b", NOW)
    await upsert_repository(ledger, "b/z", NOW, installation_id=2)
    await upsert_repository(ledger, "a/y", NOW, installation_id=1)
    await upsert_repository(ledger, "a/x", NOW, installation_id=1)
    await mark_repository_removed(ledger, "a/y", LATER)

    assert [r.full_name for r in await list_repositories(ledger)] == ["a/x", "b/z"]
    assert [r.full_name for r in await list_repositories(ledger, installation_id=1)] == ["a/x"]
    everything = await list_repositories(ledger, include_removed=True)
    assert [r.full_name for r in everything] == ["a/x", "a/y", "b/z"]


async def test_poll_check_and_sweep_state_are_recorded(ledger: Ledger) -> None:
    await upsert_repository(ledger, "acme/widget", NOW)

    await record_poll_check(ledger, "acme/widget", NOW, 'W/"abc"', "Mon, 23 Nov 2026 12:00:00 GMT")
    await record_sweep(ledger, "acme/widget", NOW, ok=True)
    await record_sweep(ledger, "acme/widget", LATER, ok=False, error="GraphQL timeout")

    repository = await get_repository(ledger, "acme/widget")
    assert repository is not None
    assert repository.poll_etag == 'W/"abc"'
    assert repository.last_checked_at == NOW
    assert (repository.last_sweep_at, repository.last_sweep_ok_at) == (LATER, NOW)
    assert repository.last_sweep_error == "GraphQL timeout"


async def test_bad_config_keeps_last_valid_and_is_reported_once(ledger: Ledger) -> None:
    await upsert_repository(ledger, "acme/widget", NOW)
    await record_config(ledger, "acme/widget", {"mode": "act"}, "sha1", NOW)

    await record_config_error(ledger, "acme/widget", "line 2: unknown key 'mdoe'", LATER)
    await mark_config_error_reported(ledger, "acme/widget", LATER)
    await record_config_error(
        ledger, "acme/widget", "line 2: unknown key 'mdoe'", LATER + timedelta(hours=1)
    )

    repository = await get_repository(ledger, "acme/widget")
    assert repository is not None
    assert repository.config == {"mode": "act"}
    assert repository.config_error_at == LATER
    assert repository.config_error_reported_at == LATER

    await record_config(ledger, "acme/widget", {"mode": "shadow"}, "sha2", LATER)
    fixed = await get_repository(ledger, "acme/widget")
    assert fixed is not None
    assert (fixed.config, fixed.config_error, fixed.config_error_reported_at) == (
        {"mode": "shadow"},
        None,
        None,
    )


def listing(name: str, *, ignored: bool = False, branch: str = "main") -> RepositoryListing:
    return RepositoryListing(name, 42, 1000 + len(name), branch, False, True, ignored)


async def test_listed_repositories_are_created_updated_and_live_again(ledger: Ledger) -> None:
    await upsert_installation(ledger, 42, "acme", NOW)
    await upsert_listed_repositories(ledger, [listing("acme/a"), listing("acme/bb")], NOW)
    await record_config(ledger, "acme/a", {"mode": "act"}, "sha1", NOW)
    await mark_repository_removed(ledger, "acme/a", NOW)

    await upsert_listed_repositories(
        ledger, [listing("acme/a", ignored=True, branch="trunk"), listing("acme/ccc")], LATER
    )
    again = await get_repository(ledger, "acme/a")
    assert again is not None
    assert (again.ignored, again.default_branch, again.removed_at) == (True, "trunk", None)
    assert (again.installation_id, again.github_id, again.private) == (42, 1006, True)
    assert (again.created_at, again.updated_at) == (NOW, LATER)
    assert again.config == {"mode": "act"}  # what discovery does not list is kept
    untouched = await get_repository(ledger, "acme/bb")
    assert untouched is not None and untouched.updated_at == NOW
    names = [r.full_name for r in await list_repositories(ledger)]
    assert names == ["acme/a", "acme/bb", "acme/ccc"]


async def test_watch_only_and_ignored_flags(ledger: Ledger) -> None:
    await upsert_installation(ledger, 42, "acme", NOW)
    await upsert_repository(ledger, "acme/widget", NOW)

    await set_watch_only(ledger, "acme/widget", True, "3 failed verifications", NOW)
    await upsert_listed_repositories(ledger, [listing("acme/widget", ignored=True)], NOW)
    demoted = await get_repository(ledger, "acme/widget")
    assert demoted is not None
    assert (demoted.watch_only, demoted.watch_only_reason, demoted.watch_only_since) == (
        True,
        "3 failed verifications",
        NOW,
    )
    assert demoted.ignored is True

    await set_watch_only(ledger, "acme/widget", False, None, LATER)
    restored = await get_repository(ledger, "acme/widget")
    assert restored is not None
    assert (restored.watch_only, restored.watch_only_reason) == (False, None)


async def test_updates_to_unknown_repository_report_false(ledger: Ledger) -> None:
    assert await record_sweep(ledger, "nobody/nothing", NOW, ok=True) is False
    assert await record_config_error(ledger, "nobody/nothing", "x", NOW) is False
