"""Scenarios: a YAML/JSON description of an organisation (installations, repositories, PRs and
everything on them) loaded into a ``Simulator``, and scripted events applied to it. The format is
documented in ``sim/README.md``; ``sim/generate.py`` writes large synthetic ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from sim import events
from sim.core import Simulator
from sim.limits import FAULT_KINDS, FaultRule
from sim.state import (
    CheckRun,
    CommitStatus,
    IssueComment,
    PullFile,
    Repository,
    Review,
    fake_sha,
    parse_time,
)

RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ScenarioError(ValueError):
    """A scenario file or event that does not make sense; says where."""


def seconds_of(value: str | int | float) -> float:
    """``90``, ``"90s"``, ``"10m"``, ``"2h"``, ``"30d"`` -> seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    match = RELATIVE.match(value if value[:1] in "+-" else "+" + value)
    if not match:
        raise ScenarioError(f"not a duration: {value!r} (use 90, 90s, 10m, 2h, 30d, 1w)")
    sign = -1 if match.group(1) == "-" else 1
    return sign * float(match.group(2)) * UNIT_SECONDS[match.group(3)]


def moment(value: Any, now: datetime) -> datetime:
    """An ISO timestamp, or a duration relative to the sim clock (``-30d``, ``+2h``)."""
    if value is None:
        return now
    if isinstance(value, datetime):
        return parse_time(value)
    text = str(value)
    if RELATIVE.match(text):
        return now + timedelta(seconds=seconds_of(text))
    return parse_time(text)


def read_scenario(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping")
    return data


def load(sim: Simulator, scenario: Mapping[str, Any]) -> None:
    """Builds the organisation described by ``scenario`` into ``sim`` (no webhooks are sent)."""
    if "clock" in scenario:
        sim.clock.set(
            parse_time(scenario["clock"]), rate=float(scenario.get("clock_rate", sim.clock.rate))
        )
    elif "clock_rate" in scenario:
        sim.clock.set(sim.clock.now(), rate=float(scenario["clock_rate"]))
    sim.limit_config.update(scenario.get("limits") or {})
    for key, value in (scenario.get("options") or {}).items():
        if not hasattr(sim.options, key):
            raise ScenarioError(f"options.{key}: unknown option")
        setattr(sim.options, key, type(getattr(sim.options, key))(value))
    for key, value in (scenario.get("webhook") or {}).items():
        if not hasattr(sim.webhooks.config, key):
            raise ScenarioError(f"webhook.{key}: unknown setting")
        setattr(sim.webhooks.config, key, value)
    for fault in scenario.get("faults") or []:
        sim.add_fault(fault_rule(fault))
    for index, inst in enumerate(scenario.get("installations") or []):
        where = f"installations[{index}]"
        installation = sim.add_installation(
            int(inst.get("id", index + 1)),
            str(inst["account"]),
            inst.get("account_type", "Organization"),
        )
        for r_index, repo_spec in enumerate(inst.get("repositories") or []):
            load_repo(
                sim,
                installation.id,
                installation.account,
                repo_spec,
                f"{where}.repositories[{r_index}]",
            )
    for index, step in enumerate(scenario.get("timeline") or []):
        schedule_step(sim, step, f"timeline[{index}]")


def fault_rule(spec: Mapping[str, Any]) -> FaultRule:
    kind = str(spec.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise ScenarioError(f"fault kind {kind!r}: one of {sorted(FAULT_KINDS)}")
    allowed = set(FaultRule.__dataclass_fields__) - {"id", "hits"}
    unknown = set(spec) - allowed
    if unknown:
        raise ScenarioError(f"fault: unknown fields {sorted(unknown)}")
    return FaultRule(**{k: v for k, v in spec.items()})


def load_repo(
    sim: Simulator, installation_id: int | None, owner: str, spec: Mapping[str, Any], where: str
) -> Repository:
    now = sim.clock.now()
    name = str(spec["name"])
    repo = Repository(
        id=int(spec.get("id") or sim.state.next_id()),
        owner=str(spec.get("owner", owner)),
        name=name,
        installation_id=installation_id,
        created_at=moment(spec.get("created", "-365d"), now),
        pushed_at=moment(spec.get("pushed", "-1d"), now),
        default_branch=str(spec.get("default_branch", "main")),
        private=bool(spec.get("private", False)),
        archived=bool(spec.get("archived", False)),
        description=spec.get("description"),
        files={str(k): str(v) for k, v in (spec.get("files") or {}).items()},
        collaborators={str(k): str(v) for k, v in (spec.get("collaborators") or {}).items()},
    )
    sim.state.add_repo(repo)
    for label in spec.get("labels") or []:
        events.ensure_label(sim, repo, str(label))
    for i_index, issue_spec in enumerate(spec.get("issues") or []):
        load_issue(sim, repo, issue_spec, f"{where}.issues[{i_index}]")
    for p_index, pull_spec in enumerate(spec.get("pulls") or []):
        load_pull(sim, repo, pull_spec, f"{where}.pulls[{p_index}]")
    return repo


def load_issue(sim: Simulator, repo: Repository, spec: Mapping[str, Any], where: str) -> None:
    now = sim.clock.now()
    issue = events.create_issue(
        sim,
        repo,
        title=str(spec.get("title", f"Issue {spec.get('number', '')}")),
        author=str(spec.get("author", repo.owner)),
        body=spec.get("body"),
        labels=list(spec.get("labels") or []),
        number=spec.get("number"),
        emit_event=False,
    )
    issue.created_at = moment(spec.get("created", "-60d"), now)
    issue.updated_at = moment(spec.get("updated", spec.get("created", "-60d")), now)
    issue.assignees = list(spec.get("assignees") or [])
    state = spec.get("state", "open")
    if state not in {"open", "closed"}:
        raise ScenarioError(f"{where}.state: open or closed")
    if state == "closed":
        issue.state = "closed"
        issue.state_reason = spec.get("state_reason", "completed")
        issue.closed_at = issue.updated_at


def load_pull(sim: Simulator, repo: Repository, spec: Mapping[str, Any], where: str) -> None:
    now = sim.clock.now()
    author = str(spec.get("author", "contributor"))
    if spec.get("author_type"):
        sim.state.user(author, str(spec["author_type"]))
    pull = events.open_pull(
        sim,
        repo,
        title=str(spec.get("title", f"Change {spec.get('number', '')}")),
        author=author,
        body=spec.get("body"),
        head_ref=spec.get("head_ref"),
        base_ref=spec.get("base_ref"),
        draft=bool(spec.get("draft", False)),
        number=spec.get("number"),
        emit_event=False,
        author_association=spec.get("author_association"),
    )
    pull.created_at = moment(spec.get("created", "-7d"), now)
    pull.updated_at = moment(spec.get("updated", spec.get("created", "-7d")), now)
    pull.head_committed_at = pull.created_at
    if "head_sha" in spec:
        pull.head_sha = str(spec["head_sha"])
    pull.labels = [str(n) for n in spec.get("labels") or []]
    for label in pull.labels:
        events.ensure_label(sim, repo, label)
    pull.assignees = [str(n) for n in spec.get("assignees") or []]
    pull.requested_reviewers = [str(n) for n in spec.get("requested_reviewers") or []]
    pull.closing_issues = [int(n) for n in spec.get("closes") or []]
    mergeable = str(spec.get("mergeable", "MERGEABLE")).upper()
    if mergeable not in {"MERGEABLE", "CONFLICTING", "UNKNOWN"}:
        raise ScenarioError(f"{where}.mergeable: MERGEABLE, CONFLICTING or UNKNOWN")
    pull.mergeable = mergeable
    if spec.get("behind"):
        repo.branches[pull.base_ref] = fake_sha(repo.full_name, "base", "moved")
    for key in ("additions", "deletions", "changed_files", "commits"):
        if key in spec:
            setattr(pull, key, int(spec[key]))
    if spec.get("files"):
        pull.files = [
            PullFile(
                filename=str(f["filename"]),
                status=str(f.get("status", "modified")),
                additions=int(f.get("additions", 0)),
                deletions=int(f.get("deletions", 0)),
                patch=f.get("patch"),
            )
            for f in spec["files"]
        ]
        pull.changed_files = len(pull.files)
        pull.additions = sum(f.additions for f in pull.files)
        pull.deletions = sum(f.deletions for f in pull.files)
    checks: Mapping[str, str] = spec.get("checks") or {}
    flaky = set(spec.get("flaky") or [])
    if checks:
        suite_id = events.suite_id_for(sim, repo, pull.head_sha)
        for name, outcome in checks.items():
            done = outcome not in {"pending", "queued", "in_progress"}
            run = CheckRun(
                id=sim.state.next_id(),
                name=str(name),
                head_sha=pull.head_sha,
                status="completed"
                if done
                else ("in_progress" if outcome == "in_progress" else "queued"),
                conclusion=str(outcome) if done else None,
                started_at=pull.updated_at,
                completed_at=pull.updated_at if done else None,
                check_suite_id=suite_id,
                flaky=name in flaky,
            )
            repo.check_runs.setdefault(pull.head_sha, []).append(run)
    for context, state in (spec.get("statuses") or {}).items():
        status = CommitStatus(
            id=sim.state.next_id(),
            sha=pull.head_sha,
            context=str(context),
            state=str(state),
            description=None,
            target_url=None,
            creator="ci-bot[bot]",
            created_at=pull.updated_at,
            updated_at=pull.updated_at,
        )
        repo.statuses.setdefault(pull.head_sha, []).append(status)
    for review in spec.get("reviews") or []:
        user = str(review["user"])
        pull.reviews.append(
            Review(
                id=sim.state.next_id(),
                user=user,
                state=str(review.get("state", "COMMENTED")).upper(),
                body=str(review.get("body", "")),
                author_association=str(
                    review.get("association") or events.association(sim, repo, user)
                ),
                submitted_at=moment(review.get("at"), now) if review.get("at") else pull.updated_at,
                commit_id=pull.head_sha,
            )
        )
    for comment in spec.get("comments") or []:
        user = str(comment["user"])
        sim.state.user(user, comment.get("user_type"))
        at = moment(comment.get("at"), now) if comment.get("at") else pull.updated_at
        item = IssueComment(
            id=sim.state.next_id(),
            repo_id=repo.id,
            issue_number=pull.number,
            user=user,
            body=str(comment.get("body", "")),
            author_association=str(
                comment.get("association") or events.association(sim, repo, user)
            ),
            created_at=at,
            updated_at=at,
        )
        repo.comments[item.id] = item
        sim.state.comment_repo[item.id] = repo.id
    state = str(spec.get("state", "open"))
    if state in {"closed", "merged"}:
        pull.state = "closed"
        pull.closed_at = pull.updated_at
        if state == "merged":
            pull.merged_at = pull.updated_at
            pull.merged_by = repo.owner
            pull.merge_commit_sha = fake_sha(repo.full_name, pull.number, "merge")
    elif state != "open":
        raise ScenarioError(f"{where}.state: open, closed or merged")


# ----------------------------------------------------------------------------- scripted events

EVENT_TYPES = (
    "ci",
    "status",
    "review",
    "comment",
    "push",
    "base_moved",
    "close",
    "merge",
    "reopen",
    "open_pull",
    "label",
    "unlabel",
    "draft",
    "edit",
    "open_issue",
    "close_issue",
    "install",
    "installation_repositories",
    "new_permissions_accepted",
    "request_review",
    "file",
)


def apply_event(sim: Simulator, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Applies one scripted event now; returns what it produced (ids, SHAs)."""
    kind = spec.get("type")
    if kind not in EVENT_TYPES:
        raise ScenarioError(f"event type {kind!r}: one of {', '.join(EVENT_TYPES)}")
    if kind == "install":
        events.install(
            sim,
            int(spec["installation"]),
            str(spec["account"]),
            [str(n) for n in spec.get("repositories") or []],
            spec.get("user"),
        )
        return {"type": kind, "installation": int(spec["installation"])}
    if kind == "new_permissions_accepted":
        events.accept_permissions(
            sim,
            int(spec["installation"]),
            {str(k): str(v) for k, v in (spec.get("permissions") or {}).items()},
            spec.get("user"),
        )
        return {"type": kind, "installation": int(spec["installation"])}
    if kind == "installation_repositories":
        events.change_installation_repos(
            sim,
            int(spec["installation"]),
            added=[str(n) for n in spec.get("added") or []],
            removed=[str(n) for n in spec.get("removed") or []],
            sender=spec.get("user"),
        )
        return {"type": kind, "installation": int(spec["installation"])}
    repo = events.find_repo(sim, str(spec.get("repo", "")))

    def pull() -> Any:
        return events.find_pull(repo, int(spec.get("pr", spec.get("number", 0))))

    actor = spec.get("user")
    result: dict[str, Any] = {"type": kind, "repo": repo.full_name}
    if kind == "ci":
        target = pull()
        events.ci_result(
            sim,
            repo,
            target,
            str(spec.get("conclusion", "success")),
            checks=spec.get("checks"),
            flaky=bool(spec.get("flaky", False)),
        )
        result["sha"] = target.head_sha
    elif kind == "status":
        target = pull()
        events.set_status(
            sim,
            repo,
            target.head_sha,
            str(spec.get("context", "ci")),
            str(spec.get("state", "success")),
        )
    elif kind == "review":
        target = pull()
        review = events.submit_review(
            sim,
            repo,
            target,
            str(actor or "maintainer"),
            str(spec.get("state", "APPROVED")),
            str(spec.get("body", "")),
        )
        result["review_id"] = review.id
    elif kind == "comment":
        number = int(spec.get("pr", spec.get("issue", spec.get("number", 0))))
        login = str(actor or "commenter")
        if spec.get("user_type"):
            sim.state.user(login, str(spec["user_type"]))
        comment = events.add_comment(
            sim,
            repo,
            number,
            login,
            str(spec.get("body", "")),
            author_association=spec.get("association"),
        )
        result["comment_id"] = comment.id
    elif kind == "push":
        target = pull()
        result["sha"] = events.push_head(
            sim,
            repo,
            target,
            actor,
            checks=spec.get("checks"),
            rebase=bool(spec.get("rebase") or spec.get("resolves_conflict")),
        )
    elif kind == "request_review":
        target = pull()
        reviewers = spec.get("reviewers", [spec["reviewer"]] if "reviewer" in spec else [])
        if isinstance(reviewers, str):
            reviewers = [reviewers]
        if not reviewers:
            raise ScenarioError("request_review: reviewers (logins)")
        result["requested"] = events.request_review(
            sim, repo, target, [str(r) for r in reviewers], str(actor or target.user)
        )
    elif kind == "file":
        delete = bool(spec.get("delete"))
        if not delete and not isinstance(spec.get("content"), str):
            raise ScenarioError("file: content (text), or delete: true")
        result["sha"] = events.change_file(
            sim,
            repo,
            str(spec.get("path", "")),
            None if delete else str(spec["content"]),
            sender=actor,
            message=spec.get("message"),
        )
    elif kind == "base_moved":
        result["sha"] = events.move_base(
            sim,
            repo,
            branch=spec.get("branch"),
            conflicts=[int(n) for n in spec.get("conflicts") or []],
            sender=actor,
        )
    elif kind in {"close", "merge"}:
        events.close_pull(
            sim,
            repo,
            pull(),
            str(actor or repo.owner),
            merged=kind == "merge" or bool(spec.get("merged")),
        )
    elif kind == "reopen":
        events.reopen_pull(sim, repo, pull(), str(actor or repo.owner))
    elif kind == "open_pull":
        created = events.open_pull(
            sim,
            repo,
            title=str(spec.get("title", "New change")),
            author=str(actor or spec.get("author", "contributor")),
            body=spec.get("body"),
            draft=bool(spec.get("draft", False)),
            head_ref=spec.get("head_ref"),
        )
        created.closing_issues = [int(n) for n in spec.get("closes") or []]
        if spec.get("checks"):
            events.start_checks(sim, repo, created.head_sha, list(spec["checks"]))
        result["number"] = created.number
        result["sha"] = created.head_sha
    elif kind == "label":
        events.add_labels(
            sim,
            repo,
            int(spec.get("pr", spec.get("number", 0))),
            [str(spec["name"])],
            str(actor or repo.owner),
        )
    elif kind == "unlabel":
        events.remove_label(
            sim,
            repo,
            int(spec.get("pr", spec.get("number", 0))),
            str(spec["name"]),
            str(actor or repo.owner),
        )
    elif kind == "draft":
        events.set_draft(
            sim, repo, pull(), str(actor or pull().user), bool(spec.get("draft", True))
        )
    elif kind == "edit":
        target = pull()
        events.edit_pull(
            sim,
            repo,
            target,
            str(actor or target.user),
            title=spec.get("title"),
            body=spec.get("body"),
        )
    elif kind == "open_issue":
        issue = events.create_issue(
            sim,
            repo,
            title=str(spec.get("title", "New issue")),
            author=str(actor or repo.owner),
            body=spec.get("body"),
        )
        result["number"] = issue.number
    elif kind == "close_issue":
        issue = events.find_issue(repo, int(spec.get("issue", spec.get("number", 0))))
        events.update_issue(
            sim,
            repo,
            issue,
            str(actor or repo.owner),
            state="closed",
            state_reason=str(spec.get("reason", "completed")),
        )
    return result


def schedule_step(sim: Simulator, step: Mapping[str, Any], where: str) -> None:
    """A timeline step: an event applied when the sim clock reaches ``at`` (``+10m``)."""
    at = moment(step.get("at", "+0s"), sim.clock.now())
    spec = {k: v for k, v in step.items() if k != "at"}
    if spec.get("type") not in EVENT_TYPES:
        raise ScenarioError(f"{where}.type: one of {', '.join(EVENT_TYPES)}")

    def fire() -> None:
        apply_event(sim, spec)

    sim.state.schedule(at, fire)
