"""Families in the shell (issue 14): read diffs of the PRs that matter, keep families, gate escalations.

:class:`FamilyWatch` is the engine's hook (``Engine.families``). For each evaluated PR:

1. **Does it matter?** Authored by a bot or a configured agent account (``agent-logins``), or it has
   an escalation (a job in its history, or an ESCALATE candidate now). Others are never read.
2. **Fingerprint once per head SHA.** ``GET /repos/{o}/{r}/pulls/{n}/files`` (one request for up to
   100 files), only when the ledger has no fingerprint of that SHA and the installation's API
   budget allows a read; ``policies.codemotion.fingerprint`` makes it; ``ledger.families`` keeps it.
3. **Families per repository** (``policies.families.find_families``) from every fingerprinted PR,
   with the maintainers' answers (``/prsteward family continue|close`` on member PRs, the tracking
   issue closed). Each response reached is recorded once as a ``family`` decision.
4. **One tracking issue per family** once a helper is proposed or it consolidates, created once and
   edited in place when its text changes (marker ``<!-- prsteward:family:KEY -->``), in act mode
   only; shadow mode records the body's hash on the family row instead.
5. **Gate**: the PR's ESCALATE candidates are suppressed (``family``) when the family stops it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ledger import families as ledger_families
from ledger.db import Ledger
from ledger.models import PullRequest, Repository
from policies.codemotion import FINGERPRINT_VERSION, CodeMotion, PullFile, fingerprint
from policies.config import Config, TriggerKind
from policies.families import (
    FamilyControl,
    FamilyVerdict,
    Member,
    SpendPoint,
    body_hash,
    family_commands,
    find_families,
    issue_title,
    member_stop,
    render_issue,
)
from policies.history import PullRequestHistory
from policies.snapshot import CheckOutcome, PullRequestSnapshot, snapshot_from_json
from policies.triage import CandidateKind, Decision, Suppression
from policies.triggers import is_bot

log = logging.getLogger("prsteward.families")

FILES_PER_PAGE = 100
MAX_FILE_PAGES = 3  # a PR with more than 300 files is fingerprinted from its first 300
SKELETON_KEPT = 200  # skeleton lines kept in the ledger (for explaining, not comparing)
# The issue is edited at once when the family's state changes, else at most this often.
ISSUE_EDIT_INTERVAL = timedelta(minutes=10)


class FilesClient(Protocol):
    """What families need of an installation client (``bot.github.InstallationClient``)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        write: bool = False,
    ) -> Any: ...


def matters(
    snapshot: PullRequestSnapshot, config: Config, history: PullRequestHistory, decision: Decision
) -> bool:
    """Worth a diff read: a bot or agent author, or an escalation (a job, or an ESCALATE the
    decision proposes now: a suppressed one costs nothing, so it needs no family to stop it)."""
    if is_bot(snapshot.author):
        return True
    login = snapshot.author.login.lower()
    if login in config.agent_names or login.removesuffix("[bot]") in config.agent_names:
        return True
    return bool(history.jobs or decision.escalations)


def _motion_json(motion: CodeMotion) -> tuple[dict[str, Any], dict[str, Any]]:
    """(surfaces, skeleton) as stored; only the first ``SKELETON_KEPT`` skeleton lines are kept
    (hash and MinHash cover all of them, and only they are compared)."""
    data = motion.to_json()
    data["skeleton_total"] = len(data["skeleton"])
    data["skeleton"] = data["skeleton"][:SKELETON_KEPT]
    surfaces = {"paths": data.pop("surfaces"), "slot_tokens": data.pop("slot_tokens")}
    return surfaces, data


def motion_of(surfaces: dict[str, Any], skeleton: dict[str, Any]) -> CodeMotion:
    """A stored fingerprint back as a :class:`CodeMotion`."""
    return CodeMotion.from_json(
        {
            **skeleton,
            "surfaces": surfaces.get("paths", []),
            "slot_tokens": surfaces.get("slot_tokens", []),
        }
    )


def _checks(snapshot: dict[str, Any] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not snapshot:
        return (), ()
    green = sorted(
        {
            c["name"]
            for c in snapshot.get("checks", ())
            if c.get("outcome") == CheckOutcome.SUCCESS.value
        }
    )
    red = sorted(
        {
            c["name"]
            for c in snapshot.get("checks", ())
            if c.get("outcome") == CheckOutcome.FAILURE.value
        }
    )
    return tuple(green), tuple(red)


def member_from(row: ledger_families.MemberRow) -> Member:
    pull = row.pull
    snap = pull.snapshot or {}
    green, red = _checks(snap)
    created = snap.get("created_at")
    return Member(
        number=pull.number,
        title=str(snap.get("title", "")),
        head_ref=str(snap.get("head_ref", "")),
        created_at=datetime.fromisoformat(created)
        if isinstance(created, str)
        else pull.first_seen_at,
        motion=motion_of(row.fingerprint.surfaces, row.fingerprint.skeleton),
        state=pull.state,
        green_checks=green,
        failing_checks=red,
        jobs=row.jobs,
        spend=tuple(SpendPoint(at, tokens, dollars) for at, tokens, dollars in row.spend),
    )


def _control(details: dict[str, Any], state: str, reason: str | None) -> FamilyControl:
    continued = details.get("continued_at")
    return FamilyControl(
        closed=state == "closed",
        closed_reason=reason if state == "closed" else None,
        continued_at=datetime.fromisoformat(continued) if isinstance(continued, str) else None,
    )


@dataclass
class FamilyWatch:
    """The engine's families hook; see the module docstring."""

    db: Ledger
    client_for: Callable[[int], FilesClient] | None = None  # installation id -> client
    files_requests: int = 0  # diff reads made (one per PR per new head SHA)
    issue_writes: int = 0
    _verdicts: dict[int, tuple[tuple[Any, ...], tuple[FamilyVerdict, ...]]] = field(
        default_factory=dict
    )
    _held_issues: set[str] = field(default_factory=set)  # family keys with an edit held back

    async def gate(
        self,
        row: Repository,
        pull: PullRequest,
        snapshot: PullRequestSnapshot,
        config: Config,
        history: PullRequestHistory,
        decision: Decision,
        now: datetime,
        *,
        acting: bool,
    ) -> Decision:
        """Fingerprint the PR if it matters, update the repository's families, and suppress the
        PR's escalations that a family stops. Never raises: a failure leaves ``decision`` as is."""
        if not config.families.enabled or row.id is None:
            return decision
        if not matters(snapshot, config, history, decision):
            return decision  # never read, never a member: no family can stop it
        try:
            await self.ensure_fingerprint(row, pull, snapshot, now)
            families = await self.evaluate(row, config, now, acting=acting)
        except Exception:  # families must never stop the engine: logged, decision kept
            log.exception("families for %s#%s failed", row.full_name, snapshot.number)
            return decision
        return suppress_stopped(decision, families)

    async def ensure_fingerprint(
        self, row: Repository, pull: PullRequest, snapshot: PullRequestSnapshot, now: datetime
    ) -> CodeMotion | None:
        """The PR's fingerprint at its head SHA: from the ledger, else one files read."""
        assert row.id is not None
        cached = await ledger_families.get_fingerprint(self.db, row.id, snapshot.head_sha)
        if cached is not None and cached.skeleton.get("version") == FINGERPRINT_VERSION:
            return motion_of(cached.surfaces, cached.skeleton)
        if self.client_for is None or row.installation_id is None:
            return None
        client = self.client_for(row.installation_id)
        budget = getattr(client, "budget", None)
        if budget is not None and not budget.may_spend("core", 1, now):
            return None  # next time: the budget comes first
        files = await self.read_files(client, row.full_name, snapshot.number)
        if files is None:
            return None
        motion = fingerprint(snapshot.head_sha, files, snapshot.title, snapshot.head_ref)
        surfaces, skeleton = _motion_json(motion)
        await ledger_families.save_fingerprint(
            self.db,
            row.id,
            pull.id,
            snapshot.head_sha,
            surfaces,
            skeleton,
            now,
            replace=cached is not None,  # an older FINGERPRINT_VERSION: recomputed once
        )
        return motion

    async def read_files(
        self, client: FilesClient, repository: str, number: int
    ) -> list[PullFile] | None:
        """``GET /repos/{o}/{r}/pulls/{n}/files``: one page for up to 100 files, at most
        ``MAX_FILE_PAGES``."""
        files: list[PullFile] = []
        url: str | None = f"/repos/{repository}/pulls/{number}/files"
        params: dict[str, Any] | None = {"per_page": FILES_PER_PAGE}
        pages = 0
        while url and pages < MAX_FILE_PAGES:
            pages += 1
            self.files_requests += 1
            response = await client.request("GET", url, params=params)
            if response.status_code >= 400:
                log.info("files of %s#%s: HTTP %s", repository, number, response.status_code)
                return None
            files += [PullFile.from_json(f) for f in response.json() if isinstance(f, dict)]
            url = response.links.get("next", {}).get("url")
            params = None
        return files

    async def evaluate(
        self, row: Repository, config: Config, now: datetime, *, acting: bool
    ) -> tuple[FamilyVerdict, ...]:
        """The repository's families now; family rows, decisions and issues kept up to date."""
        assert row.id is not None
        rows = await ledger_families.repository_members(self.db, row.id)
        if len(rows) < 2:
            return ()
        stored = {f.family_key: f for f in await ledger_families.list_families(self.db, row.id)}
        members = [member_from(r) for r in rows]
        answers = self._answers(rows, config)
        controls = {
            key: _control(family.details or {}, family.state, family.state_reason)
            for key, family in stored.items()
        }
        version = (
            tuple(
                (m.number, m.motion.head_sha, m.state, m.green_checks, len(m.spend))
                for m in members
            ),
            tuple(sorted((k, c.closed, c.continued_at) for k, c in controls.items())),
            tuple(answers),
        )
        cached = self._verdicts.get(row.id)
        if cached is not None and cached[0] == version and not any(m.spend for m in members):
            for family in cached[1]:  # unchanged: only an issue edit that was held back
                if family.key in self._held_issues:
                    await self._keep(
                        row, family, stored.get(family.key), config, now, acting=acting
                    )
            return cached[1]
        families = find_families(row.full_name, members, controls, config, now)
        if answers:
            for family in families:
                await self._apply_answers(row, family, answers, stored, now)
            families = find_families(row.full_name, members, self._controls(stored), config, now)
        for family in families:
            await self._keep(row, family, stored.get(family.key), config, now, acting=acting)
        self._verdicts[row.id] = (version, families)
        return families

    @staticmethod
    def _controls(stored: dict[str, Any]) -> dict[str, FamilyControl]:
        return {
            key: _control(family.details or {}, family.state, family.state_reason)
            for key, family in stored.items()
        }

    @staticmethod
    def _answers(
        rows: Sequence[ledger_families.MemberRow], config: Config
    ) -> list[tuple[int, str, datetime]]:
        out: list[tuple[int, str, datetime]] = []
        for member in rows:
            comments = (member.pull.snapshot or {}).get("comments") or []
            if not any("family" in str(c.get("body", "")).lower() for c in comments):
                continue  # no family command here: skip parsing the snapshot
            assert member.pull.snapshot is not None
            snapshot = snapshot_from_json(member.pull.snapshot)
            for verb, at in family_commands(snapshot, config, frozenset(config.maintainers)):
                out.append((member.pull.number, verb, at))
        return sorted(out, key=lambda a: a[2])

    async def _apply_answers(
        self,
        row: Repository,
        family: FamilyVerdict,
        answers: Sequence[tuple[int, str, datetime]],
        stored: dict[str, Any],
        now: datetime,
    ) -> FamilyVerdict:
        """Fold ``/prsteward family continue|close`` on this family's members into its row."""
        assert row.id is not None
        numbers = {m.number for m in family.members}
        mine = [a for a in answers if a[0] in numbers]
        if not mine:
            return family
        family_row = stored.get(family.key)
        details = dict(family_row.details or {}) if family_row is not None else {}
        handled = set(details.get("answers", []))
        for number, verb, at in mine:
            token = f"{number}:{verb}:{at.isoformat()}"
            if token in handled:
                continue
            handled.add(token)
            if verb == "continue":
                details["continued_at"] = max(
                    at.isoformat(), str(details.get("continued_at") or "")
                )
            await ledger_families.record_family_decision(
                self.db,
                row.id,
                None,
                f"family.answer.{verb}",
                f"a maintainer answered `/prsteward family {verb}` on #{number}",
                now,
                {"family_key": family.key, "pull": number},
            )
            if verb == "close":
                details["closed_by"] = f"/prsteward family close on #{number}"
        details["answers"] = sorted(handled)
        closed = "closed_by" in details
        saved = await ledger_families.upsert_family(
            self.db,
            row.id,
            family.key,
            state="closed" if closed else family.state.value,
            state_reason=str(details["closed_by"]) if closed else family.state_reason,
            members=[m.number for m in family.members],
            details=details,
            now=now,
        )
        stored[family.key] = saved
        return family

    async def _keep(
        self,
        row: Repository,
        family: FamilyVerdict,
        previous: Any,
        config: Config,
        now: datetime,
        *,
        acting: bool,
    ) -> None:
        """Family row, one decision per response reached, the tracking issue."""
        assert row.id is not None
        details = dict(previous.details or {}) if previous is not None else {}
        recorded = set(details.get("responses", []))
        for response in family.responses:
            if response.rule_id in recorded:
                continue
            recorded.add(response.rule_id)
            await ledger_families.record_family_decision(
                self.db,
                row.id,
                None,
                response.rule_id,
                response.reason,
                now,
                {"family_key": family.key, "at_member": response.at_member},
            )
        summary = {
            "responses": sorted(recorded),
            "surfaces": list(family.surfaces),
            "invariant": family.invariant,
            "tokens": family.tokens,
            "dollars": family.dollars,
            "median_tokens_per_member": family.median_tokens_per_member,
            "tokens_not_spent": family.tokens_not_spent,
            "tokens_not_spent_by_rule": family.tokens_not_spent_by_rule,
            "burn_tokens_last_hour": family.burn_tokens_last_hour,
            "stopped": [v.number for v in family.stopped_members],
        }
        saved = await ledger_families.upsert_family(
            self.db,
            row.id,
            family.key,
            state=family.state.value,
            state_reason=family.state_reason,
            members=[m.number for m in family.members],
            details=summary,
            now=now,
        )
        if family.wants_issue and config.families.tracking_issue and family.state.value != "closed":
            await self._issue(row, family, saved, now, acting=acting)

    async def _issue(
        self, row: Repository, family: FamilyVerdict, saved: Any, now: datetime, *, acting: bool
    ) -> None:
        """Create the family's issue once; edit it in place when its text changed."""
        assert saved.id is not None
        body = render_issue(family)
        digest = body_hash(body)
        details = saved.details or {}
        if not acting:
            if details.get("shadow_issue_hash") != digest:
                await ledger_families.set_family_details(
                    self.db, saved.id, now, shadow_issue_hash=digest
                )
            return
        if details.get("issue_hash") == digest or self.client_for is None:
            return
        written_at = details.get("issue_written_at")
        if (
            saved.tracking_issue_number is not None
            and details.get("issue_state") == family.state.value
            and isinstance(written_at, str)
            and now - datetime.fromisoformat(written_at) < ISSUE_EDIT_INTERVAL
        ):
            self._held_issues.add(family.key)
            return  # same state, edited recently: the new members wait for the next edit
        self._held_issues.discard(family.key)
        if row.installation_id is None:
            return
        client = self.client_for(row.installation_id)
        title = issue_title(family)
        if saved.tracking_issue_number is None:
            if details.get("issue_creating"):
                return  # an earlier create may have landed: never open a second issue blindly
            await ledger_families.set_family_details(self.db, saved.id, now, issue_creating=True)
            self.issue_writes += 1
            response = await client.request(
                "POST",
                f"/repos/{row.full_name}/issues",
                json={"title": title, "body": body},
                write=True,
            )
            if response.status_code >= 400:
                await ledger_families.set_family_details(
                    self.db,
                    saved.id,
                    now,
                    issue_creating=False,
                    issue_error=f"HTTP {response.status_code}",
                )
                return
            number = int(response.json()["number"])
            await ledger_families.set_family_details(
                self.db,
                saved.id,
                now,
                tracking_issue_number=number,
                issue_hash=digest,
                issue_creating=False,
                issue_state=family.state.value,
                issue_written_at=now.isoformat(),
            )
            return
        self.issue_writes += 1
        response = await client.request(
            "PATCH",
            f"/repos/{row.full_name}/issues/{saved.tracking_issue_number}",
            json={"title": title, "body": body},
            write=True,
        )
        if response.status_code >= 400:
            return
        await ledger_families.set_family_details(
            self.db,
            saved.id,
            now,
            issue_hash=digest,
            issue_state=family.state.value,
            issue_written_at=now.isoformat(),
        )
        if response.json().get("state") == "closed":
            reason = f"tracking issue #{saved.tracking_issue_number} closed by a maintainer"
            await ledger_families.close_family(self.db, saved.id, reason, now)
            await ledger_families.record_family_decision(
                self.db, row.id or 0, None, "family.closed", reason, now, {"family_key": family.key}
            )


def _maintainer_asked(candidate: Any) -> bool:
    """A ``/prsteward escalate`` from a maintainer: a person already decided, no family stops it."""
    trigger = candidate.trigger
    return trigger is not None and trigger.kind is TriggerKind.MANUAL


def suppress_stopped(decision: Decision, families: Sequence[FamilyVerdict]) -> Decision:
    """``decision`` with its ESCALATE candidates suppressed (``family``) when a family stops
    this PR, and the stop as a note. A maintainer's ``/prsteward escalate`` is never stopped."""
    hit = member_stop(families, decision.number)
    if hit is None:
        return decision
    family, verdict = hit
    assert verdict.stop_rule_id is not None and verdict.stop_reason is not None
    candidates = tuple(
        c.suppress(Suppression.FAMILY, verdict.stop_rule_id, verdict.stop_reason)
        if c.kind is CandidateKind.ESCALATE and not _maintainer_asked(c)
        else c
        for c in decision.candidates
    )
    note = f"{verdict.stop_rule_id}: {verdict.stop_reason} (family {family.key})"
    return replace(decision, candidates=candidates, notes=(*decision.notes, note))


def lane_members(
    pulls: Sequence[dict[str, Any]], start: datetime, *, minutes_apart: float = 4
) -> list[Member]:
    """Family members from scenario PR specs with ``files`` (``sim.families.same_shape_family``),
    arriving ``minutes_apart`` from ``start`` in list order: for the bench's replay
    (``policies.families.replay_arrivals``), without a sim or a ledger."""
    members = []
    for index, spec in enumerate(pulls):
        files = [PullFile.from_json(f) for f in spec.get("files", ())]
        title, head_ref = str(spec.get("title", "")), str(spec.get("head_ref", ""))
        checks = spec.get("checks") or {}
        members.append(
            Member(
                number=int(spec["number"]),
                title=title,
                head_ref=head_ref,
                created_at=start + timedelta(minutes=minutes_apart * index),
                motion=fingerprint(f"{int(spec['number']):040x}", files, title, head_ref),
                green_checks=tuple(sorted(n for n, c in checks.items() if c == "success")),
                failing_checks=tuple(sorted(n for n, c in checks.items() if c == "failure")),
            )
        )
    return members
