"""Webhook handlers: one small module per concern, registered on one ordered router.

A handler is a pure function ``(Event) -> list[Effect]``; it never touches the network or the
ledger (``bot.apply`` does). Handlers run in registration order, so their effects are applied in
a fixed order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.handlers.effects import Effect, Ignore

Handler = Callable[["Event"], list[Effect]]


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook delivery, parsed: always the raw dict; the typed model when it fitted."""

    name: str
    delivery_id: str
    payload: Mapping[str, Any]
    typed: Any = field(default=None, compare=False)

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def repository(self) -> str | None:
        repo = self.payload.get("repository")
        name = repo.get("full_name") if isinstance(repo, Mapping) else None
        return name if isinstance(name, str) and name else None

    @property
    def installation_id(self) -> int | None:
        inst = self.payload.get("installation")
        value = inst.get("id") if isinstance(inst, Mapping) else None
        return value if isinstance(value, int) else None


def get(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]...`` or None when any step is missing or not an object."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def pr_numbers(items: Any) -> tuple[int, ...]:
    """Numbers from a list of ``{number: ...}`` objects (check/workflow ``pull_requests``)."""
    if not isinstance(items, list):
        return ()
    return tuple(
        sorted(
            {
                i["number"]
                for i in items
                if isinstance(i, Mapping) and isinstance(i.get("number"), int)
            }
        )
    )


class Router:
    """Ordered dispatch: ``(event, action or None)`` -> handlers, in registration order."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str | None, Handler]] = []

    def register(self, event: str, action: str | None = None) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self._routes.append((event, action, handler))
            return handler

        return decorator

    def handlers_for(self, event: Event) -> list[Handler]:
        return [
            handler
            for name, action, handler in self._routes
            if name == event.name and (action is None or action == event.action)
        ]

    @property
    def events(self) -> frozenset[str]:
        return frozenset(name for name, _, _ in self._routes)

    def dispatch(self, event: Event) -> list[Effect]:
        handlers = self.handlers_for(event)
        if not handlers:
            what = event.name + (f".{event.action}" if event.action else "")
            return [Ignore(f"no handler for {what}")]
        effects: list[Effect] = []
        for handler in handlers:
            effects.extend(handler(event))
        return effects


def default_router() -> Router:
    """The router with every prsteward handler registered."""
    from bot.handlers import checks, installations, issues, pull_requests, push, reviews

    router = Router()
    for module in (pull_requests, reviews, checks, push, installations, issues):
        module.register(router)
    return router
