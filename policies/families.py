"""Same-shape families (issue 14): PRs in one repository that make the same code motion.

``find_families(members, controls, config, now) -> tuple[FamilyVerdict, ...]``, pure:

1. **Grouping.** Members (PRs with a :class:`~policies.codemotion.CodeMotion`, oldest first) whose
   surfaces coincide and whose skeletons match (identical, or MinHash Jaccard at least
   ``families.similarity-threshold``) form a family; a family needs two members.
2. **Substitution.** A member whose title or branch name differs from an earlier member's only by a
   counter or one slot (``S085`` -> ``S086``, ``..._X_review_ack`` -> ``..._Y_review_ack``) is a
   string substitution.
3. **Graduated responses**, each with a rule id and a reason (docs/policies.md#families):

   | rule id | default | response |
   |---|---|---|
   | ``family.name-invariant`` | 3 | the same checks green on the same surfaces: named in the ledger |
   | ``family.propose-helper`` | 3 | the same code motion: propose a manifest or helper |
   | ``family.consolidate`` | 5 | the same surfaces: one consolidation issue, no escalations for new members |
   | ``family-consolidation`` | | a member after the consolidation point: escalations suppressed |
   | ``family-substitution`` | 5 | a substitution after ``substitution-after`` members: stopped |
   | ``family-burn`` | 2M tokens/h | the family's hourly token burn crossed its ceiling: stopped |

   Every stop holds until a maintainer answers ``/prsteward family continue`` (members created up
   to that moment go on; the burn is measured from it) or closes the family (its issue closed, or
   ``/prsteward family close``).
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from policies.codemotion import CodeMotion
from policies.commands import may_command
from policies.config import Config
from policies.snapshot import PullRequestSnapshot

MARKER_PREFIX = "<!-- prsteward:family:"

_DIGITS = re.compile(r"\d+")
_SPLIT = re.compile(r"([^A-Za-z0-9]+)")
_FAMILY_COMMAND = re.compile(
    r"^\s*/prsteward[ \t]+family[ \t]+(?P<verb>continue|close)\b", re.IGNORECASE | re.MULTILINE
)


class FamilyState(StrEnum):
    FORMING = "forming"  # fewer members than any response needs
    NAMED = "named"  # invariant named / helper proposed
    CONSOLIDATING = "consolidating"  # consolidation issue; new members get no escalations
    STOPPED = "stopped"  # substitution or burn ceiling: waiting for a maintainer
    CLOSED = "closed"  # a maintainer closed the family


@dataclass(frozen=True, slots=True)
class SpendPoint:
    at: datetime
    tokens: int
    dollars: float = 0.0


@dataclass(frozen=True, slots=True)
class Member:
    """A PR (with its escalation jobs' spend) as a candidate family member."""

    number: int
    title: str
    head_ref: str
    created_at: datetime
    motion: CodeMotion
    state: str = "open"  # open | closed | merged
    green_checks: tuple[str, ...] = ()
    failing_checks: tuple[str, ...] = ()
    jobs: int = 0  # escalation jobs opened on it
    spend: tuple[SpendPoint, ...] = ()

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.spend)

    @property
    def dollars(self) -> float:
        return sum(p.dollars for p in self.spend)


@dataclass(frozen=True, slots=True)
class FamilyControl:
    """What maintainers said about a family (kept in the ledger by family key)."""

    closed: bool = False
    closed_reason: str | None = None
    continued_at: datetime | None = None  # the latest ``/prsteward family continue``


@dataclass(frozen=True, slots=True)
class Response:
    """One graduated response, reached at member ``at_member``."""

    rule_id: str
    reason: str
    at_member: int  # the PR number whose arrival reached it


@dataclass(frozen=True, slots=True)
class MemberVerdict:
    number: int
    index: int  # 1-based, by creation
    substitution_of: int | None = None  # the earlier member it substitutes (PR number)
    stop_rule_id: str | None = None  # family-substitution | family-consolidation | family-burn
    stop_reason: str | None = None

    @property
    def stopped(self) -> bool:
        return self.stop_rule_id is not None


@dataclass(frozen=True, slots=True)
class FamilyVerdict:
    """One family in a repository, with its responses and each member's verdict."""

    key: str
    repository: str
    surfaces: tuple[str, ...]
    members: tuple[Member, ...]
    verdicts: tuple[MemberVerdict, ...]
    responses: tuple[Response, ...]
    state: FamilyState
    state_reason: str
    invariant: str | None = None
    burn_tokens_last_hour: int = 0
    burn_ceiling: int = 0  # tokens per hour; 0 = off
    notes: tuple[str, ...] = field(default=())

    def verdict_for(self, number: int) -> MemberVerdict | None:
        return next((v for v in self.verdicts if v.number == number), None)

    @property
    def tokens(self) -> int:
        return sum(m.tokens for m in self.members)

    @property
    def dollars(self) -> float:
        return sum(m.dollars for m in self.members)

    @property
    def median_tokens_per_member(self) -> float:
        spent = [m.tokens for m in self.members if m.jobs > 0 or m.tokens > 0]
        return float(statistics.median(spent)) if spent else 0.0

    @property
    def stopped_members(self) -> tuple[MemberVerdict, ...]:
        return tuple(v for v in self.verdicts if v.stopped)

    @property
    def tokens_not_spent(self) -> int:
        """Estimate: each stopped member would have spent the family's median per member."""
        return int(self.median_tokens_per_member * len(self.stopped_members))

    @property
    def tokens_not_spent_by_rule(self) -> dict[str, int]:
        """The estimate per stop: ``family-substitution``, ``family-consolidation``, ``family-burn``."""
        stopped = Counter(v.stop_rule_id for v in self.verdicts if v.stop_rule_id is not None)
        median = self.median_tokens_per_member
        return {rule: int(median * count) for rule, count in sorted(stopped.items())}

    def has(self, rule_id: str) -> bool:
        return any(r.rule_id == rule_id for r in self.responses)

    @property
    def wants_issue(self) -> bool:
        """The family has a tracking issue once a helper is proposed or it consolidates."""
        return self.has("family.propose-helper") or self.has("family.consolidate")


# --- small named rules --------------------------------------------------------------------------


def same_surfaces(a: CodeMotion, b: CodeMotion) -> bool:
    """Two fingerprints touch the same normalised paths."""
    return a.surfaces == b.surfaces


def same_motion(a: CodeMotion, b: CodeMotion, threshold: float) -> bool:
    """Identical skeletons, or similar at least ``threshold`` (MinHash Jaccard)."""
    return a.skeleton_hash == b.skeleton_hash or a.similarity(b) >= threshold


def _words(text: str) -> list[str]:
    return _SPLIT.split(_DIGITS.sub("#", text.strip().lower()))


def is_substitution(a: str, b: str) -> bool:
    """``a`` and ``b`` differ, and only by counters (digit runs) and at most one word (slot)."""
    if not a or not b or a.strip().lower() == b.strip().lower():
        return False
    left, right = _words(a), _words(b)
    if len(left) != len(right):
        return False
    separators_differ = any(x != y for x, y in zip(left[1::2], right[1::2], strict=True))
    if separators_differ:
        return False
    differing = sum(1 for x, y in zip(left[0::2], right[0::2], strict=True) if x != y)
    return differing <= 1


def substitution_of(member: Member, earlier: Sequence[Member]) -> int | None:
    """The latest earlier member whose title or branch this one's is a substitution of."""
    for other in reversed(earlier):
        if is_substitution(member.title, other.title) or (
            member.head_ref and is_substitution(member.head_ref, other.head_ref)
        ):
            return other.number
    return None


def family_key(surfaces: Sequence[str], first: CodeMotion) -> str:
    """Stable while the family's first member stays: its surfaces and skeleton."""
    text = "\n".join([*surfaces, first.skeleton_hash])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def group(members: Iterable[Member], threshold: float) -> list[list[Member]]:
    """Members (oldest first) in groups of the same surfaces and code motion."""
    groups: list[list[Member]] = []
    ordered = sorted(members, key=lambda m: (m.created_at, m.number))
    for member in ordered:
        if member.motion.empty:
            continue
        for candidates in groups:
            head = candidates[0].motion
            if not same_surfaces(head, member.motion):
                continue
            if any(same_motion(m.motion, member.motion, threshold) for m in candidates):
                candidates.append(member)
                break
        else:
            groups.append([member])
    return groups


def invariant_of(members: Sequence[Member]) -> tuple[tuple[str, ...], int]:
    """The most common non-empty set of green checks, and how many members have it."""
    counts = Counter(tuple(sorted(m.green_checks)) for m in members if m.green_checks)
    if not counts:
        return (), 0
    checks, count = max(counts.items(), key=lambda item: (item[1], item[0]))
    return checks, count


def burn_last_hour(members: Sequence[Member], now: datetime, since: datetime | None) -> int:
    """Tokens the family spent in the last hour (from ``since`` when a maintainer continued)."""
    start = now - timedelta(hours=1)
    if since is not None and since > start:
        start = since
    return sum(p.tokens for m in members for p in m.spend if start <= p.at <= now)


def family_commands(
    snapshot: PullRequestSnapshot, config: Config, maintainers: frozenset[str]
) -> tuple[tuple[str, datetime], ...]:
    """``/prsteward family continue|close`` lines on a member PR, from people who may command."""
    found: list[tuple[str, datetime]] = []
    for comment in snapshot.comments:
        if not may_command(comment, config, maintainers):
            continue
        for match in _FAMILY_COMMAND.finditer(comment.body):
            found.append((match.group("verb").lower(), comment.created_at))
    return tuple(found)


# --- the entry point ----------------------------------------------------------------------------


def _surfaces_text(surfaces: Sequence[str]) -> str:
    return ", ".join(f"`{s}`" for s in surfaces)


def evaluate_family(
    repository: str,
    members: Sequence[Member],
    control: FamilyControl,
    config: Config,
    now: datetime,
) -> FamilyVerdict:
    """Responses and member verdicts for one family (members oldest first)."""
    rules = config.families
    surfaces = members[0].motion.surfaces
    key = family_key(surfaces, members[0].motion)
    where = _surfaces_text(surfaces)
    responses: list[Response] = []
    checks, invariant_count = invariant_of(members)
    invariant: str | None = None
    if invariant_count >= rules.name_invariant_at:
        invariant = f"checks {', '.join(checks)} green on {where}"
        holders = [m for m in members if tuple(sorted(m.green_checks)) == checks]
        responses.append(
            Response(
                "family.name-invariant",
                f"the same invariant ({invariant}) holds in {invariant_count} PRs",
                holders[rules.name_invariant_at - 1].number,
            )
        )
    if len(members) >= rules.propose_helper_at:
        responses.append(
            Response(
                "family.propose-helper",
                f"{len(members)} PRs make the same code motion on {where}: propose a manifest "
                "or helper that adds the next one as data",
                members[rules.propose_helper_at - 1].number,
            )
        )
    if len(members) >= rules.consolidate_at:
        responses.append(
            Response(
                "family.consolidate",
                f"{len(members)} PRs touch the same surfaces ({where}): consolidate; no "
                "escalations for new members",
                members[rules.consolidate_at - 1].number,
            )
        )
    continued = control.continued_at
    burn = burn_last_hour(members, now, continued)
    burning = rules.tokens_per_hour > 0 and burn > rules.tokens_per_hour
    verdicts: list[MemberVerdict] = []
    first_substitution: int | None = None
    for index, member in enumerate(members, start=1):
        earlier = members[: index - 1]
        substitutes = substitution_of(member, earlier) if earlier else None
        rule: str | None = None
        reason: str | None = None
        released = continued is not None and member.created_at <= continued
        if control.closed or released:
            pass
        elif (
            rules.stop_on_substitution
            and substitutes is not None
            and index > rules.substitution_after
        ):
            rule = "family-substitution"
            reason = (
                f"member {index} of a same-shape family on {where} is a string substitution of "
                f"#{substitutes}; stopped until a maintainer answers `/prsteward family "
                "continue` or closes the family"
            )
            first_substitution = first_substitution or member.number
        elif index > rules.consolidate_at:
            rule = "family-consolidation"
            reason = (
                f"member {index} of a family consolidating on {where} (since member "
                f"{rules.consolidate_at}): no escalations for new members until the family is "
                "consolidated or a maintainer answers `/prsteward family continue`"
            )
        if rule is None and burning and not control.closed:
            rule = "family-burn"
            reason = (
                f"the family burned {burn:,} tokens in the last hour (ceiling "
                f"{rules.tokens_per_hour:,}): stopped until a maintainer says the value changed "
                "(`/prsteward family continue`)"
            )
        verdicts.append(MemberVerdict(member.number, index, substitutes, rule, reason))
    if first_substitution is not None:
        responses.append(
            Response(
                "family-substitution",
                "the next member is a string substitution of an earlier one: stopped",
                first_substitution,
            )
        )
    if burning:
        responses.append(
            Response(
                "family-burn",
                f"{burn:,} tokens in the last hour > ceiling {rules.tokens_per_hour:,}",
                members[-1].number,
            )
        )
    state, state_reason = _state(control, responses, verdicts)
    return FamilyVerdict(
        key=key,
        repository=repository,
        surfaces=surfaces,
        members=tuple(members),
        verdicts=tuple(verdicts),
        responses=tuple(responses),
        state=state,
        state_reason=state_reason,
        invariant=invariant,
        burn_tokens_last_hour=burn,
        burn_ceiling=rules.tokens_per_hour,
    )


def _state(
    control: FamilyControl, responses: Sequence[Response], verdicts: Sequence[MemberVerdict]
) -> tuple[FamilyState, str]:
    if control.closed:
        return FamilyState.CLOSED, control.closed_reason or "closed by a maintainer"
    stops = [v for v in verdicts if v.stop_rule_id in {"family-substitution", "family-burn"}]
    if stops:
        return FamilyState.STOPPED, f"{stops[-1].stop_rule_id}: {stops[-1].stop_reason}"
    ids = {r.rule_id for r in responses}
    if "family.consolidate" in ids:
        return FamilyState.CONSOLIDATING, "same surfaces often enough: consolidate"
    if ids:
        return FamilyState.NAMED, "; ".join(sorted(ids))
    return FamilyState.FORMING, f"{len(verdicts)} members so far"


def find_families(
    repository: str,
    members: Iterable[Member],
    controls: dict[str, FamilyControl],
    config: Config,
    now: datetime,
) -> tuple[FamilyVerdict, ...]:
    """Every family (two members or more) among ``members`` of one repository."""
    if not config.families.enabled:
        return ()
    window = now - timedelta(days=config.families.window_days)
    recent = [m for m in members if m.created_at >= window]
    out: list[FamilyVerdict] = []
    for found in group(recent, config.families.similarity_threshold):
        if len(found) < 2:
            continue
        key = family_key(found[0].motion.surfaces, found[0].motion)
        out.append(
            evaluate_family(repository, found, controls.get(key, FamilyControl()), config, now)
        )
    return tuple(out)


def member_stop(
    families: Iterable[FamilyVerdict], number: int
) -> tuple[FamilyVerdict, MemberVerdict] | None:
    """The family stop that applies to PR ``number``, if any."""
    for family in families:
        verdict = family.verdict_for(number)
        if verdict is not None and verdict.stopped:
            return family, verdict
    return None


# --- the consolidation issue --------------------------------------------------------------------


def marker(key: str) -> str:
    return f"{MARKER_PREFIX}{key} -->"


def issue_title(family: FamilyVerdict) -> str:
    first = family.members[0]
    return f"prsteward: same-shape family ({len(family.members)} PRs since #{first.number})"


def render_issue(family: FamilyVerdict) -> str:
    """The family's tracking / consolidation issue: edited in place, stable unless it changed."""
    checks = sorted({c for m in family.members for c in (*m.green_checks, *m.failing_checks)})
    lines = [
        marker(family.key),
        f"### Same-shape family `{family.key}` in {family.repository}",
        "",
        f"- **State**: {family.state.value} ({family.state_reason})",
        f"- **Surfaces**: {_surfaces_text(family.surfaces)}",
        f"- **Members**: {len(family.members)}; **spend**: {family.tokens:,} tokens "
        f"(${family.dollars:.2f}), median {family.median_tokens_per_member:,.0f} tokens per "
        f"member; **tokens not spent** because of stops (estimate): {family.tokens_not_spent:,}",
        "- **Tokens not spent, per stop**: "
        + (", ".join(f"`{r}` {t:,}" for r, t in family.tokens_not_spent_by_rule.items()) or "none"),
        f"- **Burn**: {family.burn_tokens_last_hour:,} tokens in the last hour (ceiling "
        f"{family.burn_ceiling:,} per hour)",
        "",
        "#### Responses",
    ]
    lines += [f"- `{r.rule_id}` (at #{r.at_member}): {r.reason}" for r in family.responses]
    if family.has("family.propose-helper"):
        lines += [
            "",
            "#### Proposal",
            "These PRs repeat one code motion with renamed identifiers. Add the next one as data "
            "(a manifest entry) through one helper instead of another copy of the code.",
        ]
    lines += ["", "#### Coverage matrix (members × surfaces × checks)", ""]
    header = ["PR", "surfaces", *checks, "tokens", "stop"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for member, verdict in zip(family.members, family.verdicts, strict=True):
        cells = [f"#{member.number}", str(len(member.motion.surfaces))]
        for check in checks:
            cells.append(
                "green"
                if check in member.green_checks
                else "red"
                if check in member.failing_checks
                else "-"
            )
        cells += [f"{member.tokens:,}", verdict.stop_rule_id or ""]
        lines.append("| " + " | ".join(cells) + " |")
    proven = (
        f"- {family.invariant}, in every member that has it"
        if family.invariant
        else "- no invariant holds in enough members yet"
    )
    gaps = [
        f"- #{m.number}: {', '.join(m.failing_checks)} failing"
        for m in family.members
        if m.failing_checks
    ]
    lines += ["", "#### Closeout: what is proven", proven, "", "#### Missing gaps"]
    lines += gaps or ["- none seen: every member's checks agree"]
    lines += [
        "",
        "**What new truth does the next one buy that the last three did not?**",
        "",
        "Maintainers: answer `/prsteward family continue` on a member PR to let the stopped "
        "members go on, or close this issue to close the family.",
    ]
    return "\n".join(lines)


def body_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- replay (bench) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a lane of arrivals cost, with families on or off."""

    arrivals: int
    escalations_started: int
    tokens_spent: int
    stopped: dict[str, int]  # stop rule id -> members stopped by it
    tokens_not_spent: int  # stopped members x tokens per escalation


def replay_arrivals(
    repository: str,
    members: Sequence[Member],
    config: Config,
    tokens_per_escalation: int,
    *,
    families_on: bool = True,
) -> ReplayResult:
    """Members arrive in creation order, each wanting one escalation that spends
    ``tokens_per_escalation`` at its arrival; a member a family stops spends nothing. Pure: the
    bench's side-by-side of issue 14 (same lane, families on and off)."""
    if not families_on:
        config = config.model_copy(
            update={"families": config.families.model_copy(update={"enabled": False})}
        )
    ordered = sorted(members, key=lambda m: (m.created_at, m.number))
    arrived: list[Member] = []
    started = 0
    stopped: Counter[str] = Counter()
    for member in ordered:
        arrived.append(member)
        found = find_families(repository, arrived, {}, config, member.created_at)
        hit = member_stop(found, member.number)
        if hit is not None and hit[1].stop_rule_id is not None:
            stopped[hit[1].stop_rule_id] += 1
            continue
        started += 1
        spent = SpendPoint(member.created_at, tokens_per_escalation)
        arrived[-1] = Member(
            member.number,
            member.title,
            member.head_ref,
            member.created_at,
            member.motion,
            member.state,
            member.green_checks,
            member.failing_checks,
            member.jobs + 1,
            (*member.spend, spent),
        )
    not_spent = sum(stopped.values()) * tokens_per_escalation
    return ReplayResult(
        len(ordered), started, started * tokens_per_escalation, dict(stopped), not_spent
    )
