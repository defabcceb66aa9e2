"""The sim's in-memory GitHub: apps, installations, repositories, pull requests and what hangs off
them, plus a simulated clock. Plain dataclasses with slots so a 10,000-PR organisation stays lean.

Nothing here does I/O; ``sim/rest.py``, ``sim/graphql_api.py`` and ``sim/events.py`` read and change
it, and ``sim/webhooks.py`` turns changes into deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """GitHub's timestamp format: seconds, UTC, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fake_sha(*parts: object) -> str:
    """A deterministic 40-hex commit SHA."""
    return hashlib.sha1("/".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def node_id(prefix: str, number: int) -> str:
    """An opaque global node id in the style of GitHub's (``PR_kw...``)."""
    return prefix + "_" + base64.b64encode(f"{prefix}:{number}".encode()).decode().rstrip("=")


class SimClock:
    """Simulated time. It moves when the control plane advances it, and also with the wall clock
    at ``rate`` sim seconds per real second when ``rate`` > 0 (0: only by hand, for tests)."""

    def __init__(self, start: datetime | None = None, rate: float = 0.0) -> None:
        self._base = (start or DEFAULT_START).astimezone(UTC).replace(microsecond=0)
        self._rate = rate
        self._anchor = time.monotonic()

    def now(self) -> datetime:
        if self._rate <= 0:
            return self._base
        elapsed = (time.monotonic() - self._anchor) * self._rate
        return (self._base + timedelta(seconds=elapsed)).replace(microsecond=0)

    def timestamp(self) -> int:
        return int(self.now().timestamp())

    @property
    def rate(self) -> float:
        return self._rate

    def set(self, moment: datetime, rate: float | None = None) -> None:
        self._base = moment.astimezone(UTC).replace(microsecond=0)
        self._anchor = time.monotonic()
        if rate is not None:
            self._rate = rate

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sim clock never goes back")
        self.set(self.now() + timedelta(seconds=seconds))
        return self.now()


# ----------------------------------------------------------------------------- entities


@dataclass(slots=True)
class User:
    login: str
    id: int
    type: str = "User"  # "User" | "Bot" | "Organization"
    site_admin: bool = False

    @property
    def graphql_login(self) -> str:
        """GraphQL names bots without the ``[bot]`` suffix REST uses."""
        return self.login.removesuffix("[bot]") if self.type == "Bot" else self.login


@dataclass(slots=True)
class App:
    id: int
    slug: str
    name: str
    owner: str
    public_key_pem: str
    webhook_secret: str
    created_at: datetime


@dataclass(slots=True)
class Installation:
    id: int
    app_id: int
    account: str  # login of the org or user it is installed on
    created_at: datetime
    repository_ids: list[int] = field(default_factory=list)
    suspended: bool = False
    permissions: dict[str, str] | None = None  # None: the App's default (sim.objects)


@dataclass(slots=True)
class AccessToken:
    token: str
    installation_id: int
    expires_at: datetime


@dataclass(slots=True)
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass(slots=True)
class Reaction:
    id: int
    user: str
    content: str
    created_at: datetime


@dataclass(slots=True)
class IssueComment:
    id: int
    repo_id: int
    issue_number: int
    user: str
    body: str
    author_association: str
    created_at: datetime
    updated_at: datetime
    reactions: list[Reaction] = field(default_factory=list)


@dataclass(slots=True)
class Review:
    id: int
    user: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED
    body: str
    author_association: str
    submitted_at: datetime
    commit_id: str


@dataclass(slots=True)
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str  # queued | in_progress | completed
    conclusion: str | None  # success | failure | neutral | cancelled | skipped | timed_out | ...
    started_at: datetime
    completed_at: datetime | None
    check_suite_id: int
    flaky: bool = False  # a re-run passes


@dataclass(slots=True)
class CommitStatus:
    id: int
    sha: str
    context: str
    state: str  # error | failure | pending | success
    description: str | None
    target_url: str | None
    creator: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class PullFile:
    filename: str
    status: str
    additions: int
    deletions: int
    patch: str | None


@dataclass(slots=True)
class PullRequest:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    author_association: str
    created_at: datetime
    updated_at: datetime
    base_ref: str
    base_sha: str
    head_ref: str
    head_sha: str
    draft: bool = False
    state: str = "open"  # open | closed
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    mergeable: str = "MERGEABLE"  # MERGEABLE | CONFLICTING | UNKNOWN
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    closing_issues: list[int] = field(default_factory=list)
    commits: int = 1
    additions: int = 10
    deletions: int = 2
    changed_files: int = 1
    files: list[PullFile] | None = None
    locked: bool = False
    head_committed_at: datetime | None = None


@dataclass(slots=True)
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    author_association: str
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Repository:
    id: int
    owner: str
    name: str
    installation_id: int | None
    created_at: datetime
    pushed_at: datetime
    default_branch: str = "main"
    private: bool = False
    archived: bool = False
    description: str | None = None
    branches: dict[str, str] = field(default_factory=dict)  # ref -> head SHA
    files: dict[str, str] = field(default_factory=dict)  # path -> text (repository contents)
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> admin|write|read...
    labels: dict[str, Label] = field(default_factory=dict)
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: dict[int, IssueComment] = field(default_factory=dict)  # by comment id
    check_runs: dict[str, list[CheckRun]] = field(default_factory=dict)  # by head SHA
    statuses: dict[str, list[CommitStatus]] = field(default_factory=dict)  # by SHA
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


# ----------------------------------------------------------------------------- derived views

FAILING_CONCLUSIONS = {"failure", "cancelled", "timed_out", "action_required", "startup_failure"}
PASSING_CONCLUSIONS = {"success", "neutral", "skipped"}


def latest_check_runs(runs: list[CheckRun]) -> list[CheckRun]:
    """The newest run per check name (a re-run replaces the earlier one)."""
    newest: dict[str, CheckRun] = {}
    for run in runs:
        if run.name not in newest or run.id > newest[run.name].id:
            newest[run.name] = run
    return sorted(newest.values(), key=lambda run: run.name)


def latest_statuses(statuses: list[CommitStatus]) -> list[CommitStatus]:
    newest: dict[str, CommitStatus] = {}
    for status in statuses:
        if status.context not in newest or status.id > newest[status.context].id:
            newest[status.context] = status
    return sorted(newest.values(), key=lambda status: status.context)


def rollup_state(runs: list[CheckRun], statuses: list[CommitStatus]) -> str | None:
    """GitHub's ``statusCheckRollup.state``: None without any check or status."""
    if not runs and not statuses:
        return None
    states: set[str] = set()
    for run in runs:
        if run.status != "completed":
            states.add("PENDING")
        elif run.conclusion in FAILING_CONCLUSIONS:
            states.add("FAILURE")
        else:
            states.add("SUCCESS")
    for status in statuses:
        states.add(status.state.upper())
    for state in ("ERROR", "FAILURE", "PENDING", "EXPECTED"):
        if state in states:
            return state
    return "SUCCESS"


def review_decision(pull: PullRequest) -> str:
    """Latest APPROVED/CHANGES_REQUESTED per reviewer decides; branch protection requires one."""
    latest: dict[str, str] = {}
    for review in sorted(pull.reviews, key=lambda review: review.id):
        if review.state in {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}:
            latest[review.user] = review.state
    if "CHANGES_REQUESTED" in latest.values():
        return "CHANGES_REQUESTED"
    if "APPROVED" in latest.values():
        return "APPROVED"
    return "REVIEW_REQUIRED"


def latest_reviews(pull: PullRequest) -> list[Review]:
    """The newest review per reviewer, as GraphQL's ``latestReviews``."""
    latest: dict[str, Review] = {}
    for review in sorted(pull.reviews, key=lambda review: review.id):
        latest[review.user] = review
    return sorted(latest.values(), key=lambda review: review.id)


# ----------------------------------------------------------------------------- the whole sim


class SimState:
    """Every entity, indexed by id; ids come from one counter so they are unique and stable."""

    def __init__(self, clock: SimClock | None = None) -> None:
        self.clock = clock or SimClock()
        self._ids = itertools.count(1000)
        self.users: dict[str, User] = {}
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.repos: dict[int, Repository] = {}
        self.repos_by_name: dict[str, Repository] = {}  # "owner/name" lowercased
        self.check_suite_repo: dict[int, int] = {}  # check suite (= workflow run) id -> repo id
        self.check_suite_sha: dict[int, str] = {}
        self.comment_repo: dict[int, int] = {}  # comment id -> repo id
        self._timers: list[tuple[datetime, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        # A change counter per repository: ETag/Last-Modified of list answers follow it.
        self.repo_versions: dict[int, int] = {}

    # ids and users
    def next_id(self) -> int:
        return next(self._ids)

    def user(self, login: str, kind: str | None = None) -> User:
        existing = self.users.get(login)
        if existing is None:
            user_type = kind or ("Bot" if login.endswith("[bot]") else "User")
            existing = User(login=login, id=self.next_id(), type=user_type)
            self.users[login] = existing
        elif kind is not None:
            existing.type = kind
        return existing

    def now(self) -> datetime:
        return self.clock.now()

    # repositories
    def add_repo(self, repo: Repository) -> Repository:
        self.repos[repo.id] = repo
        self.repos_by_name[repo.full_name.lower()] = repo
        self.user(repo.owner)
        if repo.default_branch not in repo.branches:
            repo.branches[repo.default_branch] = fake_sha(repo.full_name, "base", 0)
        if repo.installation_id is not None:
            installation = self.installations[repo.installation_id]
            if repo.id not in installation.repository_ids:
                installation.repository_ids.append(repo.id)
        return repo

    def repo(self, owner: str, name: str) -> Repository | None:
        return self.repos_by_name.get(f"{owner}/{name}".lower())

    def touch(self, repo: Repository) -> None:
        self.repo_versions[repo.id] = self.repo_versions.get(repo.id, 0) + 1

    def pull_by_sha(self, repo: Repository, sha: str) -> list[PullRequest]:
        return [pull for pull in repo.pulls.values() if pull.head_sha == sha]

    def check_runs_for(self, repo: Repository, sha: str) -> list[CheckRun]:
        return latest_check_runs(repo.check_runs.get(sha, []))

    def statuses_for(self, repo: Repository, sha: str) -> list[CommitStatus]:
        return latest_statuses(repo.statuses.get(sha, []))

    def rollup(self, repo: Repository, pull: PullRequest) -> str | None:
        return rollup_state(
            self.check_runs_for(repo, pull.head_sha), self.statuses_for(repo, pull.head_sha)
        )

    def merge_state_status(self, repo: Repository, pull: PullRequest) -> str:
        if pull.state != "open":
            return "UNKNOWN"
        if pull.mergeable == "UNKNOWN":
            return "UNKNOWN"
        if pull.mergeable == "CONFLICTING":
            return "DIRTY"
        if pull.draft:
            return "DRAFT"
        rollup = self.rollup(repo, pull)
        if rollup in {"FAILURE", "ERROR"} or review_decision(pull) != "APPROVED":
            return "BLOCKED"
        if rollup == "PENDING":
            return "UNSTABLE"
        if repo.branches.get(pull.base_ref) != pull.base_sha:
            return "BEHIND"
        return "CLEAN"

    def installation_repos(self, installation_id: int) -> Iterator[Repository]:
        installation = self.installations[installation_id]
        for repo_id in installation.repository_ids:
            yield self.repos[repo_id]

    # timers: things GitHub does "a while later" (mergeability computed)
    def schedule(self, at: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (at, next(self._timer_seq), action))

    def run_due_timers(self) -> int:
        """Run every timer due at the current sim time; returns how many ran."""
        ran = 0
        now = self.now()
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action()
            ran += 1
        return ran

    def pending_timers(self) -> int:
        return len(self._timers)
