"""``installation`` and ``installation_repositories``: who installed us, on which repositories."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.handlers import Event, Router, get
from bot.handlers.effects import (
    AddRepositories,
    Effect,
    Ignore,
    LiftBoundaries,
    RemoveInstallation,
    RemoveRepositories,
    UpsertInstallation,
)


def _repos(items: Any) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    if not isinstance(items, list):
        return (), ()
    names: list[str] = []
    ids: list[int | None] = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("full_name"), str):
            names.append(item["full_name"])
            ids.append(item["id"] if isinstance(item.get("id"), int) else None)
    return tuple(names), tuple(ids)


def _upsert(event: Event, installation_id: int, suspended: bool) -> UpsertInstallation:
    inst = event.payload.get("installation")
    account = get(inst, "account")
    permissions = get(inst, "permissions")
    events = get(inst, "events")
    return UpsertInstallation(
        installation_id=installation_id,
        account_login=str(get(account, "login") or ""),
        account_type=str(get(account, "type") or "Organization"),
        suspended=suspended,
        permissions=dict(permissions) if isinstance(permissions, Mapping) else {},
        events=tuple(str(e) for e in events) if isinstance(events, list) else (),
    )


def on_installation(event: Event) -> list[Effect]:
    installation_id = get(event.payload, "installation", "id")
    if not isinstance(installation_id, int):
        return [Ignore("installation event without an installation id")]
    action = event.action
    if action == "deleted":
        return [RemoveInstallation(installation_id)]
    if action in ("created", "new_permissions_accepted", "unsuspend", "suspend"):
        effects: list[Effect] = [_upsert(event, installation_id, suspended=action == "suspend")]
        names, ids = _repos(event.payload.get("repositories"))
        if names and action == "created":
            effects.append(AddRepositories(installation_id, names, ids))
        if action == "new_permissions_accepted":
            effects.append(LiftBoundaries(installation_id, "installation.new_permissions_accepted"))
        return effects
    return [Ignore(f"installation.{action}")]


def on_installation_repositories(event: Event) -> list[Effect]:
    installation_id = get(event.payload, "installation", "id")
    if not isinstance(installation_id, int):
        return [Ignore("installation_repositories without an installation id")]
    effects: list[Effect] = [_upsert(event, installation_id, suspended=False)]
    added, added_ids = _repos(event.payload.get("repositories_added"))
    removed, _ = _repos(event.payload.get("repositories_removed"))
    if added:
        effects.append(AddRepositories(installation_id, added, added_ids))
    if removed:
        effects.append(RemoveRepositories(installation_id, removed))
    if added:  # a repository given back to the App: its old boundaries may not hold any more
        effects.append(
            LiftBoundaries(installation_id, "installation_repositories.added", tuple(added))
        )
    return effects


def register(router: Router) -> None:
    router.register("installation")(on_installation)
    router.register("installation_repositories")(on_installation_repositories)
