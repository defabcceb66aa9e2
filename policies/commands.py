"""``/prsteward`` commands in PR comments (issue 12 item 6), parsed and judged. Pure.

Only people with write access may steer prsteward: the same check as the maintainer-feedback
trigger, except that no bot may command it, allowlisted or not, and never the App itself. Commands
from others are parsed, marked not accepted, and recorded by the caller; an unknown command gets
one short help line. Each command has a key (repository, PR, comment id), so a redelivered
comment never runs twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from policies.config import Config
from policies.history import Commands
from policies.snapshot import Comment, PullRequestSnapshot
from policies.triggers import COMMAND_PREFIX, has_write_access, is_app, is_bot


class CommandName(StrEnum):
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    PAUSE = "pause"
    RESUME = "resume"
    REFRESH = "refresh"
    ESCALATE = "escalate"
    EXPLAIN = "explain"
    BUDGET = "budget"
    FAMILY = "family"  # family continue | close: read by bot/families.py (issue 14)


HELP_LINE = (
    "prsteward commands: `freeze`, `unfreeze`, `pause`, `resume`, `refresh`, `escalate`, "
    "`explain`, `budget +50k` / `budget +$5`, `family continue` / `family close` "
    "(maintainers only)."
)

_LINE = re.compile(r"^\s*/prsteward\b[ \t]*(?P<rest>[^\n]*)$", re.IGNORECASE | re.MULTILINE)
_TOKENS = re.compile(r"^\+?(?P<n>\d+(?:\.\d+)?)(?P<unit>[km]?)$", re.IGNORECASE)
_DOLLARS = re.compile(r"^\+?\$(?P<n>\d+(?:\.\d+)?)$|^\+?(?P<m>\d+(?:\.\d+)?)\$$")


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    key: str  # "owner/repo#N:command:<comment id>": run at most once
    comment_id: int
    author: str
    name: CommandName | None  # None: not a known command
    args: tuple[str, ...]
    accepted: bool
    rule_id: str
    reason: str
    help: str | None = None  # the one-line answer to an unknown command
    grant_tokens: int | None = None
    grant_dollars: float | None = None


def may_command(comment: Comment, config: Config, maintainers: frozenset[str]) -> bool:
    """Write access, not a bot of any kind, never the App."""
    author = comment.author
    if is_app(author.login, config) or is_bot(author):
        return False
    return has_write_access(author, config, maintainers)


def _parse_grant(args: tuple[str, ...]) -> tuple[int | None, float | None]:
    tokens: int | None = None
    dollars: float | None = None
    for arg in args:
        money = _DOLLARS.match(arg)
        if money is not None:
            dollars = float(money.group("n") or money.group("m"))
            continue
        amount = _TOKENS.match(arg)
        if amount is not None:
            scale = {"": 1, "k": 1_000, "m": 1_000_000}[amount.group("unit").lower()]
            tokens = int(float(amount.group("n")) * scale)
    return tokens, dollars


def parse_command(
    snapshot: PullRequestSnapshot,
    comment: Comment,
    config: Config,
    maintainers: frozenset[str] = frozenset(),
) -> ParsedCommand | None:
    """The first ``/prsteward`` line of ``comment``, judged; None when there is none."""
    if COMMAND_PREFIX not in comment.body.lower():
        return None
    match = _LINE.search(comment.body)
    if match is None:
        return None
    words = tuple(match.group("rest").split())
    key = f"{snapshot.repository}#{snapshot.number}:command:{comment.id}"
    verb = words[0].lower() if words else ""
    args = words[1:]
    name = CommandName(verb) if verb in CommandName.__members__.values() else None
    if not may_command(comment, config, maintainers):
        return ParsedCommand(
            key,
            comment.id,
            comment.author.login,
            name,
            args,
            False,
            "command.not-allowed",
            f"{comment.author.login} has no write access (or is a bot): recorded, ignored",
        )
    if name is None:
        return ParsedCommand(
            key,
            comment.id,
            comment.author.login,
            None,
            args,
            False,
            "command.unknown",
            f"unknown command {verb!r}" if verb else "no command given",
            help=HELP_LINE,
        )
    tokens, dollars = _parse_grant(args) if name is CommandName.BUDGET else (None, None)
    if name is CommandName.BUDGET and tokens is None and dollars is None:
        return ParsedCommand(
            key,
            comment.id,
            comment.author.login,
            name,
            args,
            False,
            "command.budget.unparsed",
            "budget needs an amount such as +50k (tokens) or +$5",
            help=HELP_LINE,
        )
    return ParsedCommand(
        key,
        comment.id,
        comment.author.login,
        name,
        args,
        True,
        f"command.{name.value}",
        f"{comment.author.login}: /prsteward {name.value}",
        grant_tokens=tokens,
        grant_dollars=dollars,
    )


def parse_commands(
    snapshot: PullRequestSnapshot,
    config: Config,
    maintainers: frozenset[str] = frozenset(),
    done_keys: frozenset[str] = frozenset(),
) -> tuple[ParsedCommand, ...]:
    """Every command on the PR not yet handled (``done_keys``), oldest first."""
    found = []
    for comment in sorted(snapshot.comments, key=lambda c: (c.created_at, c.id)):
        parsed = parse_command(snapshot, comment, config, maintainers)
        if parsed is not None and parsed.key not in done_keys:
            found.append(parsed)
    return tuple(found)


def apply_commands(state: Commands, commands: Iterable[ParsedCommand]) -> Commands:
    """The switches in effect after ``commands`` (accepted ones only, in order)."""
    for command in commands:
        if not command.accepted:
            continue
        if command.name is CommandName.FREEZE:
            state = replace(state, frozen=True)
        elif command.name is CommandName.UNFREEZE:
            state = replace(state, frozen=False)
        elif command.name is CommandName.PAUSE:
            state = replace(state, paused=True)
        elif command.name is CommandName.RESUME:
            state = replace(state, paused=False)
        elif command.name is CommandName.ESCALATE:
            state = replace(state, escalate_comment_id=command.comment_id)
    return state
