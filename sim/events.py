"""Changes to the sim, made the way GitHub makes them: state first, then the webhook deliveries
GitHub would send. REST writes and scripted events (``POST /_sim/events``) both come through here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sim.core import Simulator
from sim.objects import Json
from sim.state import (
    CheckRun,
    CommitStatus,
    Issue,
    IssueComment,
    Label,
    PullRequest,
    Repository,
    Review,
    fake_sha,
)


class EventError(ValueError):
    """A scripted event that does not fit the state (unknown repo, PR, ...)."""


# ----------------------------------------------------------------------------- helpers


def association(sim: Simulator, repo: Repository, login: str) -> str:
    """GitHub's author association as an installation token sees it."""
    if login == repo.owner:
        return "OWNER"
    if sim.state.user(login).type == "Bot":
        return "NONE"
    permission = repo.collaborators.get(login)
    if permission in {"admin", "maintain", "write"}:
        return "MEMBER"
    if permission is not None:
        return "COLLABORATOR"
    if any(pull.user == login and pull.merged_at for pull in repo.pulls.values()):
        return "CONTRIBUTOR"
    return "NONE"


def envelope(sim: Simulator, repo: Repository, sender: str, **fields: Any) -> Json:
    """The fields every App webhook carries, after the event's own."""
    payload: Json = dict(fields)
    payload["repository"] = sim.render.repository(repo)
    owner = sim.state.user(repo.owner)
    if owner.type == "Organization":
        payload["organization"] = {
            "login": owner.login,
            "id": owner.id,
            "node_id": sim.render.user_obj(owner)["node_id"],
            "url": f"{sim.base_url}/orgs/{owner.login}",
            "repos_url": f"{sim.base_url}/orgs/{owner.login}/repos",
            "events_url": f"{sim.base_url}/orgs/{owner.login}/events",
            "hooks_url": f"{sim.base_url}/orgs/{owner.login}/hooks",
            "issues_url": f"{sim.base_url}/orgs/{owner.login}/issues",
            "members_url": f"{sim.base_url}/orgs/{owner.login}/members{{/member}}",
            "public_members_url": f"{sim.base_url}/orgs/{owner.login}/public_members{{/member}}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{owner.id}?v=4",
            "description": None,
        }
    payload["sender"] = sim.render.user(sender)
    if repo.installation_id is not None:
        payload["installation"] = sim.render.installation_ref(repo.installation_id)
    return payload


def emit(sim: Simulator, repo: Repository, event: str, payload: Json) -> None:
    sim.state.touch(repo)
    if repo.installation_id is None:
        return  # GitHub sends an App nothing about repositories it is not installed on
    sim.webhooks.emit(event, payload, installation_id=repo.installation_id, repository_id=repo.id)


def find_repo(sim: Simulator, full_name: str) -> Repository:
    owner, _, name = full_name.partition("/")
    repo = sim.state.repo(owner, name)
    if repo is None:
        raise EventError(f"no repository {full_name!r}")
    return repo


def find_pull(repo: Repository, number: int) -> PullRequest:
    pull = repo.pulls.get(number)
    if pull is None:
        raise EventError(f"no pull request #{number} in {repo.full_name}")
    return pull


def pull_event(
    sim: Simulator, repo: Repository, pull: PullRequest, action: str, sender: str, **extra: Any
) -> None:
    payload = envelope(
        sim,
        repo,
        sender,
        action=action,
        number=pull.number,
        pull_request=sim.render.pull(repo, pull),
        **extra,
    )
    emit(sim, repo, "pull_request", payload)


def touch_pull(sim: Simulator, pull: PullRequest) -> None:
    pull.updated_at = sim.state.now()


def suite_id_for(sim: Simulator, repo: Repository, sha: str) -> int:
    for run in repo.check_runs.get(sha, []):
        return run.check_suite_id
    suite_id = sim.state.next_id()
    sim.state.check_suite_repo[suite_id] = repo.id
    sim.state.check_suite_sha[suite_id] = sha
    return suite_id


# ----------------------------------------------------------------------------- pull requests


def open_pull(
    sim: Simulator,
    repo: Repository,
    *,
    title: str,
    author: str,
    body: str | None = None,
    head_ref: str | None = None,
    base_ref: str | None = None,
    draft: bool = False,
    number: int | None = None,
    emit_event: bool = True,
    author_association: str | None = None,
) -> PullRequest:
    now = sim.state.now()
    number = number or repo.next_number
    repo.next_number = max(repo.next_number, number + 1)
    base = base_ref or repo.default_branch
    base_sha = repo.branches.setdefault(base, fake_sha(repo.full_name, "base", 0))
    pull = PullRequest(
        id=sim.state.next_id(),
        number=number,
        title=title,
        body=body,
        user=author,
        author_association=author_association or association(sim, repo, author),
        created_at=now,
        updated_at=now,
        base_ref=base,
        base_sha=base_sha,
        head_ref=head_ref or f"{author.removesuffix('[bot]')}/change-{number}",
        head_sha=fake_sha(repo.full_name, number, "head", 0),
        draft=draft,
        head_committed_at=now,
    )
    sim.state.user(author)
    repo.pulls[number] = pull
    if emit_event:
        pull_event(sim, repo, pull, "opened", author)
    else:
        sim.state.touch(repo)
    return pull


def close_pull(
    sim: Simulator, repo: Repository, pull: PullRequest, sender: str, *, merged: bool = False
) -> None:
    if pull.state == "closed":
        return
    now = sim.state.now()
    pull.state = "closed"
    pull.closed_at = now
    if merged:
        pull.merged_at = now
        pull.merged_by = sender
        pull.merge_commit_sha = fake_sha(repo.full_name, pull.number, "merge")
        repo.branches[pull.base_ref] = pull.merge_commit_sha
    touch_pull(sim, pull)
    pull_event(sim, repo, pull, "closed", sender)


def reopen_pull(sim: Simulator, repo: Repository, pull: PullRequest, sender: str) -> None:
    if pull.state == "open" or pull.merged_at is not None:
        return
    pull.state = "open"
    pull.closed_at = None
    touch_pull(sim, pull)
    pull_event(sim, repo, pull, "reopened", sender)


def edit_pull(
    sim: Simulator,
    repo: Repository,
    pull: PullRequest,
    sender: str,
    *,
    title: str | None = None,
    body: str | None = None,
) -> None:
    changes: Json = {}
    if title is not None and title != pull.title:
        changes["title"] = {"from": pull.title}
        pull.title = title
    if body is not None and body != pull.body:
        changes["body"] = {"from": pull.body or ""}
        pull.body = body
    if changes:
        touch_pull(sim, pull)
        pull_event(sim, repo, pull, "edited", sender, changes=changes)


def set_draft(
    sim: Simulator, repo: Repository, pull: PullRequest, sender: str, draft: bool
) -> None:
    if pull.draft == draft:
        return
    pull.draft = draft
    touch_pull(sim, pull)
    pull_event(sim, repo, pull, "converted_to_draft" if draft else "ready_for_review", sender)


def ensure_label(sim: Simulator, repo: Repository, name: str) -> Label:
    label = repo.labels.get(name)
    if label is None:
        label = Label(id=sim.state.next_id(), name=name)
        repo.labels[name] = label
    return label


def add_labels(
    sim: Simulator, repo: Repository, number: int, names: list[str], sender: str
) -> None:
    target: PullRequest | Issue = repo.pulls.get(number) or find_issue(repo, number)
    for name in names:
        if name in target.labels:
            continue
        label = ensure_label(sim, repo, name)
        target.labels.append(name)
        target.updated_at = sim.state.now()
        label_json = sim.render.label(repo, label.name)
        if isinstance(target, PullRequest):
            pull_event(sim, repo, target, "labeled", sender, label=label_json)
        else:
            issue_event(sim, repo, target, "labeled", sender, label=label_json)


def remove_label(sim: Simulator, repo: Repository, number: int, name: str, sender: str) -> bool:
    target: PullRequest | Issue = repo.pulls.get(number) or find_issue(repo, number)
    if name not in target.labels:
        return False
    target.labels.remove(name)
    target.updated_at = sim.state.now()
    label_json = sim.render.label(repo, name)
    if isinstance(target, PullRequest):
        pull_event(sim, repo, target, "unlabeled", sender, label=label_json)
    else:
        issue_event(sim, repo, target, "unlabeled", sender, label=label_json)
    return True


# ----------------------------------------------------------------------------- commits, CI


def push_head(
    sim: Simulator,
    repo: Repository,
    pull: PullRequest,
    sender: str | None = None,
    *,
    sha: str | None = None,
    checks: list[str] | None = None,
    rebase: bool = False,
) -> str:
    """The author pushes: new head SHA, checks start over (queued), mergeability recomputed.

    ``rebase``: the new head sits on the base branch as it is now (a rebase or a merge of the
    base that resolves a conflict): the PR's base SHA moves there (no longer BEHIND) and
    mergeability settles to MERGEABLE after the UNKNOWN period."""
    before = pull.head_sha
    pull.head_sha = sha or fake_sha(repo.full_name, pull.number, "head", sim.state.next_id())
    pull.commits += 1
    pull.head_committed_at = sim.state.now()
    touch_pull(sim, pull)
    previous = sim.state.check_runs_for(repo, before)
    names = checks if checks is not None else [run.name for run in previous]
    if rebase:
        pull.base_sha = repo.branches.setdefault(pull.base_ref, pull.base_sha)
        settle_to = "MERGEABLE"
    else:
        settle_to = pull.mergeable if pull.mergeable != "UNKNOWN" else "MERGEABLE"
    mark_mergeable_unknown(sim, repo, pull, settle_to=settle_to)
    pull_event(
        sim, repo, pull, "synchronize", sender or pull.user, before=before, after=pull.head_sha
    )
    if names:
        start_checks(sim, repo, pull.head_sha, names)
    return pull.head_sha


def mark_mergeable_unknown(
    sim: Simulator,
    repo: Repository,
    pull: PullRequest,
    *,
    settle_to: str,
    seconds: int | None = None,
) -> None:
    """GitHub computes mergeability in the background: UNKNOWN now, ``settle_to`` later."""
    pull.mergeable = "UNKNOWN"
    delay = sim.options.mergeable_unknown_seconds if seconds is None else seconds
    head = pull.head_sha

    def settle() -> None:
        if pull.head_sha == head and pull.mergeable == "UNKNOWN":
            pull.mergeable = settle_to
            sim.state.touch(repo)

    if delay <= 0:
        settle()
    else:
        sim.state.schedule(sim.state.now() + timedelta(seconds=delay), settle)


def start_checks(
    sim: Simulator, repo: Repository, sha: str, names: list[str], *, flaky: set[str] | None = None
) -> list[CheckRun]:
    suite_id = suite_id_for(sim, repo, sha)
    now = sim.state.now()
    runs = []
    for name in names:
        run = CheckRun(
            id=sim.state.next_id(),
            name=name,
            head_sha=sha,
            status="queued",
            conclusion=None,
            started_at=now,
            completed_at=None,
            check_suite_id=suite_id,
            flaky=name in (flaky or set()),
        )
        repo.check_runs.setdefault(sha, []).append(run)
        runs.append(run)
    for run in runs:
        emit(
            sim,
            repo,
            "check_run",
            envelope(
                sim,
                repo,
                "github-actions[bot]",
                action="created",
                check_run=check_run_payload(sim, repo, run),
            ),
        )
    return runs


def check_run_payload(sim: Simulator, repo: Repository, run: CheckRun) -> Json:
    data = sim.render.check_run(repo, run)
    data["check_suite"] = sim.render.check_suite(repo, run.check_suite_id, run.head_sha)
    return data


def complete_check(sim: Simulator, repo: Repository, run: CheckRun, conclusion: str) -> None:
    run.status = "completed"
    run.conclusion = conclusion
    run.completed_at = sim.state.now()
    # Like GitHub, a check finishing does not change the PR's updated_at: only the webhook says so.
    emit(
        sim,
        repo,
        "check_run",
        envelope(
            sim,
            repo,
            "github-actions[bot]",
            action="completed",
            check_run=check_run_payload(sim, repo, run),
        ),
    )
    suite_runs = [
        r
        for r in sim.state.check_runs_for(repo, run.head_sha)
        if r.check_suite_id == run.check_suite_id
    ]
    if all(r.status == "completed" for r in suite_runs):
        emit(
            sim,
            repo,
            "check_suite",
            envelope(
                sim,
                repo,
                "github-actions[bot]",
                action="completed",
                check_suite=sim.render.check_suite(repo, run.check_suite_id, run.head_sha),
            ),
        )


def ci_result(
    sim: Simulator,
    repo: Repository,
    pull: PullRequest,
    conclusion: str,
    *,
    checks: list[str] | None = None,
    flaky: bool = False,
) -> None:
    """CI finishes on the PR's head: the named checks (default: all, or ``ci``) conclude."""
    sha = pull.head_sha
    current = sim.state.check_runs_for(repo, sha)
    names = checks or [run.name for run in current] or ["ci"]
    existing = {run.name: run for run in current}
    missing = [
        name for name in names if name not in existing or existing[name].status == "completed"
    ]
    if missing:
        for run in start_checks(sim, repo, sha, missing):
            existing[run.name] = run
    for name in names:
        run = existing[name]
        run.flaky = flaky
        complete_check(sim, repo, run, conclusion)


def rerun_failed(sim: Simulator, repo: Repository, suite_id: int, sender: str) -> list[CheckRun]:
    """Re-run the failed jobs of a workflow run (= check suite): flaky ones pass, others fail again."""
    sha = sim.state.check_suite_sha.get(suite_id)
    if sha is None:
        raise EventError(f"no workflow run {suite_id}")
    failed = [
        run
        for run in sim.state.check_runs_for(repo, sha)
        if run.check_suite_id == suite_id
        and run.status == "completed"
        and run.conclusion in {"failure", "timed_out", "cancelled"}
    ]
    emit(
        sim,
        repo,
        "check_suite",
        envelope(
            sim,
            repo,
            sender,
            action="rerequested",
            check_suite=sim.render.check_suite(repo, suite_id, sha),
        ),
    )
    reruns = start_checks(sim, repo, sha, [run.name for run in failed])
    outcomes = {run.name: ("success" if run.flaky else "failure") for run in failed}
    for rerun in reruns:
        rerun.status = "in_progress"

    def finish() -> None:
        for rerun in reruns:
            if rerun.status != "completed":
                complete_check(sim, repo, rerun, outcomes[rerun.name])

    delay = sim.options.ci_duration_seconds
    if delay <= 0:
        finish()
    else:
        sim.state.schedule(sim.state.now() + timedelta(seconds=delay), finish)
    return reruns


def set_status(
    sim: Simulator,
    repo: Repository,
    sha: str,
    context: str,
    state: str,
    *,
    description: str | None = None,
    creator: str = "ci-bot[bot]",
) -> CommitStatus:
    now = sim.state.now()
    status = CommitStatus(
        id=sim.state.next_id(),
        sha=sha,
        context=context,
        state=state,
        description=description,
        target_url=f"{sim.base_url}/ci/{sha[:7]}/{context}",
        creator=creator,
        created_at=now,
        updated_at=now,
    )
    repo.statuses.setdefault(sha, []).append(status)  # the PR's updated_at stays, as on GitHub
    branches = [
        {
            "name": pull.head_ref,
            "commit": {"sha": sha, "url": f"{sim.base_url}/repos/{repo.full_name}/commits/{sha}"},
            "protected": False,
        }
        for pull in sim.state.pull_by_sha(repo, sha)
    ]
    commit_url = f"{sim.base_url}/repos/{repo.full_name}/commits/{sha}"
    payload = envelope(
        sim,
        repo,
        creator,
        id=status.id,
        sha=sha,
        name=repo.full_name,
        target_url=status.target_url,
        avatar_url=None,
        context=context,
        description=description,
        state=state,
        commit={
            "sha": sha,
            "node_id": f"C_{sha[:20]}",
            "commit": {
                "author": {
                    "name": "sim",
                    "email": "sim@example.com",
                    "date": status.created_at.isoformat(),
                },
                "committer": {
                    "name": "sim",
                    "email": "sim@example.com",
                    "date": status.created_at.isoformat(),
                },
                "message": "Update",
                "tree": {
                    "sha": sha[::-1],
                    "url": f"{sim.base_url}/repos/{repo.full_name}/git/trees/{sha[::-1]}",
                },
                "url": f"{sim.base_url}/repos/{repo.full_name}/git/commits/{sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": commit_url,
            "html_url": f"{sim.render.web}/{repo.full_name}/commit/{sha}",
            "comments_url": f"{commit_url}/comments",
            "author": sim.render.user(creator),
            "committer": sim.render.user(creator),
            "parents": [],
        },
        branches=branches,
        created_at=status.created_at.isoformat().replace("+00:00", "Z"),
        updated_at=status.updated_at.isoformat().replace("+00:00", "Z"),
    )
    emit(sim, repo, "status", payload)
    return status


def push_branch(
    sim: Simulator,
    repo: Repository,
    *,
    branch: str | None = None,
    sender: str | None = None,
    added: list[str] | None = None,
    modified: list[str] | None = None,
    removed: list[str] | None = None,
    message: str = "Update",
    conflicts: list[int] | None = None,
) -> str:
    """Someone pushes one commit to ``branch`` (default: the default branch): a ``push`` event
    with the paths in ``commits[]``; open PRs on it get UNKNOWN, then CONFLICTING (those in
    ``conflicts``) or what they were."""
    ref = branch or repo.default_branch
    before = repo.branches.get(ref, fake_sha(repo.full_name, "base", 0))
    after = fake_sha(repo.full_name, ref, sim.state.next_id())
    repo.branches[ref] = after
    repo.pushed_at = sim.state.now()
    pusher = sender or repo.owner
    identity = {"name": pusher, "email": f"{pusher}@users.noreply.sim", "username": pusher}
    head_commit = {
        **sim.render.head_commit(repo, after),
        "message": message,
        "author": identity,
        "committer": identity,
    }
    commit = {
        **head_commit,
        "distinct": True,
        "url": f"{sim.render.web}/{repo.full_name}/commit/{after}",
        "added": list(added or []),
        "removed": list(removed or []),
        "modified": list(modified or []),
    }
    payload = envelope(
        sim,
        repo,
        pusher,
        ref=f"refs/heads/{ref}",
        before=before,
        after=after,
        created=False,
        deleted=False,
        forced=False,
        base_ref=None,
        compare=f"{sim.render.web}/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
        commits=[commit],
        head_commit=commit,
        pusher={"name": pusher, "email": f"{pusher}@users.noreply.sim"},
    )
    # A push payload's repository is the older shape: owner with name/email, stargazers, ...
    repository = payload["repository"]
    payload["repository"] = {
        **repository,
        "stargazers": 0,
        "master_branch": repo.default_branch,
        "owner": {**repository["owner"], "name": repo.owner, "email": None},
    }
    emit(sim, repo, "push", payload)
    conflicting = set(conflicts or [])
    for pull in repo.pulls.values():
        if pull.state == "open" and pull.base_ref == ref:
            settle = "CONFLICTING" if pull.number in conflicting else pull.mergeable
            if settle == "UNKNOWN":
                settle = "MERGEABLE"
            mark_mergeable_unknown(sim, repo, pull, settle_to=settle)
    return after


def move_base(
    sim: Simulator,
    repo: Repository,
    *,
    branch: str | None = None,
    conflicts: list[int] | None = None,
    sender: str | None = None,
) -> str:
    """Someone pushes to the base branch: a ``push`` event; open PRs on it get UNKNOWN, then
    CONFLICTING (those in ``conflicts``) or MERGEABLE."""
    return push_branch(
        sim, repo, branch=branch, sender=sender, modified=["README.md"], conflicts=conflicts
    )


def change_file(
    sim: Simulator,
    repo: Repository,
    path: str,
    content: str | None,
    *,
    sender: str | None = None,
    message: str | None = None,
) -> str:
    """A commit to the default branch that writes ``path`` (``content`` None: deletes it), as
    ``GET .../contents/{path}`` then answers: a ``push`` event with the path in
    ``commits[].added/modified/removed``; open PRs on the branch are recomputed (UNKNOWN for a
    while, then what they were) and are BEHIND."""
    path = path.strip("/")
    if not path:
        raise EventError("file: a path")
    existed = path in repo.files
    added: list[str] = []
    modified: list[str] = []
    removed: list[str] = []
    if content is None:
        if not existed:
            raise EventError(f"no file {path!r} in {repo.full_name}")
        del repo.files[path]
        removed.append(path)
    else:
        repo.files[path] = content
        (modified if existed else added).append(path)
    verb = "Delete" if content is None else ("Update" if existed else "Create")
    return push_branch(
        sim,
        repo,
        sender=sender,
        message=message or f"{verb} {path}",
        added=added,
        modified=modified,
        removed=removed,
    )


# ----------------------------------------------------------------------------- reviews, comments


def submit_review(
    sim: Simulator, repo: Repository, pull: PullRequest, reviewer: str, state: str, body: str = ""
) -> Review:
    state = state.upper()
    if state not in {"APPROVED", "CHANGES_REQUESTED", "COMMENTED"}:
        raise EventError(f"review state {state!r}: APPROVED, CHANGES_REQUESTED or COMMENTED")
    review = Review(
        id=sim.state.next_id(),
        user=reviewer,
        state=state,
        body=body,
        author_association=association(sim, repo, reviewer),
        submitted_at=sim.state.now(),
        commit_id=pull.head_sha,
    )
    pull.reviews.append(review)
    if reviewer in pull.requested_reviewers:
        pull.requested_reviewers.remove(reviewer)
    touch_pull(sim, pull)
    emit(
        sim,
        repo,
        "pull_request_review",
        envelope(
            sim,
            repo,
            reviewer,
            action="submitted",
            review=sim.render.review(repo, pull, review),
            pull_request=sim.render.pull(repo, pull, detail=False),
        ),
    )
    return review


def request_review(
    sim: Simulator, repo: Repository, pull: PullRequest, reviewers: list[str], sender: str
) -> list[str]:
    """Review is requested (again) from ``reviewers``: one ``pull_request`` ``review_requested``
    per login not already requested. A reviewer whose latest review requested changes stays
    so (GitHub's review decision holds until they review again); returns who was added."""
    if pull.user in reviewers:
        raise EventError("Review cannot be requested from pull request author.")
    added: list[str] = []
    for login in reviewers:
        if login in pull.requested_reviewers:
            continue
        sim.state.user(login)
        pull.requested_reviewers.append(login)
        added.append(login)
        touch_pull(sim, pull)
        pull_event(
            sim, repo, pull, "review_requested", sender, requested_reviewer=sim.render.user(login)
        )
    return added


def add_comment(
    sim: Simulator,
    repo: Repository,
    number: int,
    author: str,
    body: str,
    *,
    author_association: str | None = None,
) -> IssueComment:
    target: PullRequest | Issue = repo.pulls.get(number) or find_issue(repo, number)
    now = sim.state.now()
    comment = IssueComment(
        id=sim.state.next_id(),
        repo_id=repo.id,
        issue_number=number,
        user=author,
        body=body,
        author_association=author_association or association(sim, repo, author),
        created_at=now,
        updated_at=now,
    )
    sim.state.user(author)
    repo.comments[comment.id] = comment
    sim.state.comment_repo[comment.id] = repo.id
    target.updated_at = now
    emit(
        sim,
        repo,
        "issue_comment",
        envelope(
            sim,
            repo,
            author,
            action="created",
            issue=sim.render.issue(repo, target),
            comment=sim.render.comment(repo, comment),
        ),
    )
    return comment


def edit_comment(
    sim: Simulator, repo: Repository, comment: IssueComment, body: str, sender: str
) -> None:
    previous = comment.body
    comment.body = body
    comment.updated_at = sim.state.now()
    target: PullRequest | Issue = repo.pulls.get(comment.issue_number) or find_issue(
        repo, comment.issue_number
    )
    emit(
        sim,
        repo,
        "issue_comment",
        envelope(
            sim,
            repo,
            sender,
            action="edited",
            changes={"body": {"from": previous}},
            issue=sim.render.issue(repo, target),
            comment=sim.render.comment(repo, comment),
        ),
    )


# ----------------------------------------------------------------------------- issues


def find_issue(repo: Repository, number: int) -> Issue:
    issue = repo.issues.get(number)
    if issue is None:
        raise EventError(f"no issue #{number} in {repo.full_name}")
    return issue


def issue_event(
    sim: Simulator,
    repo: Repository,
    issue: Issue | PullRequest,
    action: str,
    sender: str,
    **extra: Any,
) -> None:
    emit(
        sim,
        repo,
        "issues",
        envelope(sim, repo, sender, action=action, issue=sim.render.issue(repo, issue), **extra),
    )


def create_issue(
    sim: Simulator,
    repo: Repository,
    *,
    title: str,
    author: str,
    body: str | None = None,
    labels: list[str] | None = None,
    number: int | None = None,
    emit_event: bool = True,
) -> Issue:
    now = sim.state.now()
    number = number or repo.next_number
    repo.next_number = max(repo.next_number, number + 1)
    issue = Issue(
        id=sim.state.next_id(),
        number=number,
        title=title,
        body=body,
        user=author,
        author_association=association(sim, repo, author),
        created_at=now,
        updated_at=now,
        labels=list(labels or []),
    )
    for name in issue.labels:
        ensure_label(sim, repo, name)
    repo.issues[number] = issue
    if emit_event:
        issue_event(sim, repo, issue, "opened", author)
    else:
        sim.state.touch(repo)
    return issue


def update_issue(
    sim: Simulator,
    repo: Repository,
    issue: Issue,
    sender: str,
    *,
    title: str | None = None,
    body: str | None = None,
    state: str | None = None,
    state_reason: str | None = None,
) -> None:
    changes: Json = {}
    if title is not None and title != issue.title:
        changes["title"] = {"from": issue.title}
        issue.title = title
    if body is not None and body != issue.body:
        changes["body"] = {"from": issue.body or ""}
        issue.body = body
    now = sim.state.now()
    if changes:
        issue.updated_at = now
        issue_event(sim, repo, issue, "edited", sender, changes=changes)
    if state == "closed" and issue.state != "closed":
        issue.state = "closed"
        issue.state_reason = state_reason or "completed"
        issue.closed_at = now
        issue.updated_at = now  # PRs that reference it keep their updated_at, as on GitHub
        issue_event(sim, repo, issue, "closed", sender)
    elif state == "open" and issue.state != "open":
        issue.state = "open"
        issue.state_reason = "reopened"
        issue.closed_at = None
        issue.updated_at = now
        issue_event(sim, repo, issue, "reopened", sender)


# ----------------------------------------------------------------------------- installations


def install(
    sim: Simulator,
    installation_id: int,
    account: str,
    repo_names: list[str],
    sender: str | None = None,
) -> None:
    """The App is installed on ``account`` with these repositories (created when new):
    ``installation`` created."""
    from sim.state import Repository

    installation = sim.add_installation(installation_id, account)
    for name in repo_names:
        existing = sim.state.repo(account, name)
        if existing is None:
            now = sim.state.now()
            sim.state.add_repo(
                Repository(
                    id=sim.state.next_id(),
                    owner=account,
                    name=name,
                    installation_id=installation_id,
                    created_at=now,
                    pushed_at=now,
                )
            )
        else:
            existing.installation_id = installation_id
            sim.state.add_repo(existing)
    payload = {
        "action": "created",
        "installation": sim.render.installation(installation),
        "repositories": [
            sim.render.repository_short(repo)
            for repo in sim.state.installation_repos(installation_id)
        ],
        "requester": None,
        "sender": sim.render.user(sender or account),
    }
    sim.webhooks.emit("installation", payload, installation_id=installation_id, repository_id=None)


def accept_permissions(
    sim: Simulator,
    installation_id: int,
    permissions: dict[str, str],
    sender: str | None = None,
) -> None:
    """The owner accepted new permissions for the App (merged into the installation's):
    ``installation`` new_permissions_accepted."""
    from sim.objects import INSTALLATION_PERMISSIONS

    installation = sim.state.installations.get(installation_id)
    if installation is None:
        raise EventError(f"no installation {installation_id}")
    merged = dict(installation.permissions or INSTALLATION_PERMISSIONS)
    merged.update({str(k): str(v) for k, v in permissions.items()})
    installation.permissions = merged
    payload = {
        "action": "new_permissions_accepted",
        "installation": sim.render.installation(installation),
        "requester": None,
        "sender": sim.render.user(sender or installation.account),
    }
    sim.webhooks.emit("installation", payload, installation_id=installation_id, repository_id=None)


def change_installation_repos(
    sim: Simulator,
    installation_id: int,
    *,
    added: list[str],
    removed: list[str],
    sender: str | None = None,
) -> None:
    """Repositories added to or removed from an installation: ``installation_repositories``."""
    from sim.state import Repository

    installation = sim.state.installations.get(installation_id)
    if installation is None:
        raise EventError(f"no installation {installation_id}")
    added_repos: list[Repository] = []
    for name in added:
        repo = sim.state.repo(installation.account, name)
        if repo is None:
            now = sim.state.now()
            repo = Repository(
                id=sim.state.next_id(),
                owner=installation.account,
                name=name,
                installation_id=installation_id,
                created_at=now,
                pushed_at=now,
            )
        repo.installation_id = installation_id
        sim.state.add_repo(repo)
        added_repos.append(repo)
    removed_repos: list[Repository] = []
    for name in removed:
        repo = sim.state.repo(installation.account, name)
        if repo is None or repo.id not in installation.repository_ids:
            raise EventError(
                f"{installation.account}/{name} is not in installation {installation_id}"
            )
        installation.repository_ids.remove(repo.id)
        repo.installation_id = None
        removed_repos.append(repo)
    action = "added" if added_repos else "removed"
    payload = {
        "action": action,
        "installation": sim.render.installation(installation),
        "repository_selection": "selected",
        "repositories_added": [sim.render.repository_short(r) for r in added_repos],
        "repositories_removed": [sim.render.repository_short(r) for r in removed_repos],
        "requester": None,
        "sender": sim.render.user(sender or installation.account),
    }
    sim.webhooks.emit(
        "installation_repositories", payload, installation_id=installation_id, repository_id=None
    )
