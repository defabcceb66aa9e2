"""JSON shapes of GitHub's REST objects (and webhook payload objects, which are the same shapes),
built from sim state. Field sets follow GitHub's REST description (`@octokit/openapi`) and the
example payloads of `@octokit/webhooks-examples`; ``tests/sim/test_fidelity.py`` checks both.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from sim.state import (
    App,
    CheckRun,
    CommitStatus,
    Installation,
    Issue,
    IssueComment,
    Label,
    PullFile,
    PullRequest,
    Reaction,
    Repository,
    Review,
    SimState,
    User,
    iso,
    node_id,
)

Json = dict[str, Any]

INSTALLATION_PERMISSIONS = {
    "actions": "write",
    "checks": "write",
    "contents": "read",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
    "statuses": "read",
    "members": "read",
}
INSTALLATION_EVENTS = [
    "check_run",
    "check_suite",
    "issue_comment",
    "issues",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "status",
    "workflow_run",
]


class Renderer:
    """Turns state into GitHub JSON; ``api`` is the sim's REST root, ``web`` its 'github.com'."""

    def __init__(self, state: SimState, api: str, web: str | None = None) -> None:
        self.state = state
        self.api = api.rstrip("/")
        self.web = (web or api).rstrip("/")
        # Rendered users and repositories are shared by every answer that embeds them (a pull
        # embeds its repository twice): callers must copy before changing one.
        self._users: dict[tuple[str, str], Json] = {}
        self._repos: dict[tuple[int, int, int], Json] = {}

    # -------------------------------------------------------------------- users and apps
    def user(self, login: str) -> Json:
        user = self.state.user(login)
        return self.user_obj(user)

    def user_obj(self, user: User) -> Json:
        key = (user.login, user.type)
        cached = self._users.get(key)
        if cached is None:
            cached = self._users[key] = self._user_obj(user)
        return cached

    def _user_obj(self, user: User) -> Json:
        base = f"{self.api}/users/{user.login}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": node_id("U" if user.type != "Bot" else "BOT", user.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": base,
            "html_url": f"{self.web}/{user.login}",
            "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}",
            "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs",
            "repos_url": f"{base}/repos",
            "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events",
            "type": user.type,
            "user_view_type": "public",
            "site_admin": user.site_admin,
        }

    def app(self, app: App) -> Json:
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": node_id("A", app.id),
            "client_id": f"Iv1.{app.id:016x}",
            "owner": self.user(app.owner),
            "name": app.name,
            "description": "prsteward (simulated)",
            "external_url": f"{self.web}/apps/{app.slug}",
            "html_url": f"{self.web}/apps/{app.slug}",
            "created_at": iso(app.created_at),
            "updated_at": iso(app.created_at),
            "permissions": INSTALLATION_PERMISSIONS,
            "events": INSTALLATION_EVENTS,
            "installations_count": sum(
                1 for inst in self.state.installations.values() if inst.app_id == app.id
            ),
        }

    def installation(self, installation: Installation) -> Json:
        app = self.state.apps[installation.app_id]
        account = self.state.user(installation.account)
        return {
            "id": installation.id,
            "client_id": f"Iv1.{app.id:016x}",
            "account": self.user_obj(account),
            "repository_selection": "selected",
            "access_tokens_url": f"{self.api}/app/installations/{installation.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web}/organizations/{account.login}/settings/installations/{installation.id}",
            "app_id": app.id,
            "app_slug": app.slug,
            "target_id": account.id,
            "target_type": "Organization" if account.type == "Organization" else "User",
            "permissions": installation.permissions or INSTALLATION_PERMISSIONS,
            "events": INSTALLATION_EVENTS,
            "created_at": iso(installation.created_at),
            "updated_at": iso(installation.created_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def installation_ref(self, installation_id: int) -> Json:
        """The short ``installation`` object every App webhook payload carries."""
        return {"id": installation_id, "node_id": node_id("MDIzOkludGVncmF0aW9u", installation_id)}

    # -------------------------------------------------------------------- repositories
    def repository(self, repo: Repository, *, full: bool = False) -> Json:
        # Every change to a repository's PRs and issues goes through sim/events.py, which bumps
        # its version; pushed_at covers base moves.
        key = (repo.id, self.state.repo_versions.get(repo.id, 0), int(repo.pushed_at.timestamp()))
        cached = self._repos.get(key)
        if cached is None:
            cached = self._repos[key] = self._repository(repo)
        if not full:
            return cached
        return {
            **cached,
            "network_count": 0,
            "subscribers_count": 0,
            "permissions": {
                "admin": False,
                "maintain": False,
                "push": False,
                "triage": False,
                "pull": True,
            },
        }

    def _repository(self, repo: Repository) -> Json:
        base = f"{self.api}/repos/{repo.full_name}"
        owner = self.state.user(repo.owner)
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open") + sum(
            1 for p in repo.pulls.values() if p.state == "open"
        )
        data: Json = {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user_obj(owner),
            "html_url": f"{self.web}/{repo.full_name}",
            "description": repo.description,
            "fork": False,
            "url": base,
            "forks_url": f"{base}/forks",
            "keys_url": f"{base}/keys{{/key_id}}",
            "collaborators_url": f"{base}/collaborators{{/collaborator}}",
            "teams_url": f"{base}/teams",
            "hooks_url": f"{base}/hooks",
            "issue_events_url": f"{base}/issues/events{{/number}}",
            "events_url": f"{base}/events",
            "assignees_url": f"{base}/assignees{{/user}}",
            "branches_url": f"{base}/branches{{/branch}}",
            "tags_url": f"{base}/tags",
            "blobs_url": f"{base}/git/blobs{{/sha}}",
            "git_tags_url": f"{base}/git/tags{{/sha}}",
            "git_refs_url": f"{base}/git/refs{{/sha}}",
            "trees_url": f"{base}/git/trees{{/sha}}",
            "statuses_url": f"{base}/statuses/{{sha}}",
            "languages_url": f"{base}/languages",
            "stargazers_url": f"{base}/stargazers",
            "contributors_url": f"{base}/contributors",
            "subscribers_url": f"{base}/subscribers",
            "subscription_url": f"{base}/subscription",
            "commits_url": f"{base}/commits{{/sha}}",
            "git_commits_url": f"{base}/git/commits{{/sha}}",
            "comments_url": f"{base}/comments{{/number}}",
            "issue_comment_url": f"{base}/issues/comments{{/number}}",
            "contents_url": f"{base}/contents/{{+path}}",
            "compare_url": f"{base}/compare/{{base}}...{{head}}",
            "merges_url": f"{base}/merges",
            "archive_url": f"{base}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{base}/downloads",
            "issues_url": f"{base}/issues{{/number}}",
            "pulls_url": f"{base}/pulls{{/number}}",
            "milestones_url": f"{base}/milestones{{/number}}",
            "notifications_url": f"{base}/notifications{{?since,all,participating}}",
            "labels_url": f"{base}/labels{{/name}}",
            "releases_url": f"{base}/releases{{/id}}",
            "deployments_url": f"{base}/deployments",
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.pushed_at),
            "pushed_at": iso(repo.pushed_at),
            "git_url": f"git://sim/{repo.full_name}.git",
            "ssh_url": f"git@sim:{repo.full_name}.git",
            "clone_url": f"{self.web}/{repo.full_name}.git",
            "svn_url": f"{self.web}/{repo.full_name}",
            "homepage": None,
            "size": 100,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": "Python",
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": repo.archived,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "forks": 0,
            "open_issues": open_issues,
            "watchers": 0,
            "default_branch": repo.default_branch,
            "custom_properties": {},
        }
        return data

    def repository_short(self, repo: Repository) -> Json:
        """The short repository form of installation webhooks."""
        return {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
        }

    # -------------------------------------------------------------------- labels, comments
    def label(self, repo: Repository, name: str) -> Json:
        label = repo.labels.get(name) or Label(id=0, name=name)
        return {
            "id": label.id,
            "node_id": node_id("LA", label.id),
            "url": f"{self.api}/repos/{repo.full_name}/labels/{name}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
        }

    def reactions_rollup(self, repo: Repository, comment: IssueComment) -> Json:
        counts = {
            key: 0 for key in ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")
        }
        for reaction in comment.reactions:
            counts[reaction.content] = counts.get(reaction.content, 0) + 1
        return {
            "url": f"{self.api}/repos/{repo.full_name}/issues/comments/{comment.id}/reactions",
            "total_count": len(comment.reactions),
            **counts,
        }

    def comment(self, repo: Repository, comment: IssueComment) -> Json:
        return {
            "url": f"{self.api}/repos/{repo.full_name}/issues/comments/{comment.id}",
            "html_url": f"{self.web}/{repo.full_name}/pull/{comment.issue_number}#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{repo.full_name}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": node_id("IC", comment.id),
            "user": self.user(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": comment.author_association,
            "body": comment.body,
            "reactions": self.reactions_rollup(repo, comment),
            "performed_via_github_app": None,
        }

    def reaction(self, reaction: Reaction) -> Json:
        return {
            "id": reaction.id,
            "node_id": node_id("REA", reaction.id),
            "user": self.user(reaction.user),
            "content": reaction.content,
            "created_at": iso(reaction.created_at),
        }

    # -------------------------------------------------------------------- pulls and issues
    def _branch(self, repo: Repository, ref: str, sha: str) -> Json:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user(repo.owner),
            "repo": self.repository(repo),
        }

    def pull(self, repo: Repository, pull: PullRequest, *, detail: bool = True) -> Json:
        base = f"{self.api}/repos/{repo.full_name}"
        html = f"{self.web}/{repo.full_name}/pull/{pull.number}"
        comments = sum(1 for c in repo.comments.values() if c.issue_number == pull.number)
        data: Json = {
            "url": f"{base}/pulls/{pull.number}",
            "id": pull.id,
            "node_id": node_id("PR", pull.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{base}/issues/{pull.number}",
            "number": pull.number,
            "state": pull.state,
            "locked": pull.locked,
            "title": pull.title,
            "user": self.user(pull.user),
            "body": pull.body,
            "created_at": iso(pull.created_at),
            "updated_at": iso(pull.updated_at),
            "closed_at": iso(pull.closed_at) if pull.closed_at else None,
            "merged_at": iso(pull.merged_at) if pull.merged_at else None,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": self.user(pull.assignees[0]) if pull.assignees else None,
            "assignees": [self.user(login) for login in pull.assignees],
            "requested_reviewers": [self.user(login) for login in pull.requested_reviewers],
            "requested_teams": [],
            "labels": [
                {**self.label(repo, name), "archived_by": None} for name in pull.labels
            ],  # githubkit's models require archived_by (see github-facts.md)
            "milestone": None,
            "draft": pull.draft,
            "commits_url": f"{base}/pulls/{pull.number}/commits",
            "review_comments_url": f"{base}/pulls/{pull.number}/comments",
            "review_comment_url": f"{base}/pulls/comments{{/number}}",
            "comments_url": f"{base}/issues/{pull.number}/comments",
            "statuses_url": f"{base}/statuses/{pull.head_sha}",
            "head": self._branch(repo, pull.head_ref, pull.head_sha),
            "base": self._branch(repo, pull.base_ref, pull.base_sha),
            "_links": {
                "self": {"href": f"{base}/pulls/{pull.number}"},
                "html": {"href": html},
                "issue": {"href": f"{base}/issues/{pull.number}"},
                "comments": {"href": f"{base}/issues/{pull.number}/comments"},
                "review_comments": {"href": f"{base}/pulls/{pull.number}/comments"},
                "review_comment": {"href": f"{base}/pulls/comments{{/number}}"},
                "commits": {"href": f"{base}/pulls/{pull.number}/commits"},
                "statuses": {"href": f"{base}/statuses/{pull.head_sha}"},
            },
            "author_association": pull.author_association,
            "auto_merge": None,
            "active_lock_reason": None,
        }
        if detail:
            mergeable = {"MERGEABLE": True, "CONFLICTING": False}.get(pull.mergeable)
            data.update(
                {
                    "merged": pull.merged_at is not None,
                    "mergeable": mergeable,
                    "rebaseable": mergeable,
                    "mergeable_state": self.state.merge_state_status(repo, pull).lower(),
                    "merged_by": self.user(pull.merged_by) if pull.merged_by else None,
                    "comments": comments,
                    "review_comments": 0,
                    "maintainer_can_modify": False,
                    "commits": pull.commits,
                    "additions": pull.additions,
                    "deletions": pull.deletions,
                    "changed_files": pull.changed_files,
                }
            )
        return data

    def issue(self, repo: Repository, issue: Issue | PullRequest) -> Json:
        base = f"{self.api}/repos/{repo.full_name}"
        is_pull = isinstance(issue, PullRequest)
        html = f"{self.web}/{repo.full_name}/{'pull' if is_pull else 'issues'}/{issue.number}"
        comments = sum(1 for c in repo.comments.values() if c.issue_number == issue.number)
        data: Json = {
            "url": f"{base}/issues/{issue.number}",
            "repository_url": base,
            "labels_url": f"{base}/issues/{issue.number}/labels{{/name}}",
            "comments_url": f"{base}/issues/{issue.number}/comments",
            "events_url": f"{base}/issues/{issue.number}/events",
            "html_url": html,
            "id": issue.id,
            "node_id": node_id("I", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user(issue.user),
            "labels": [self.label(repo, name) for name in issue.labels],
            "state": issue.state,
            "locked": False,
            "assignee": self.user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user(login) for login in issue.assignees],
            "milestone": None,
            "comments": comments,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at) if issue.closed_at else None,
            "author_association": issue.author_association,
            "active_lock_reason": None,
            "body": issue.body,
            "reactions": {
                "url": f"{base}/issues/{issue.number}/reactions",
                "total_count": 0,
                **{
                    k: 0
                    for k in ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")
                },
            },
            "timeline_url": f"{base}/issues/{issue.number}/timeline",
            "performed_via_github_app": None,
            "state_reason": issue.state_reason if isinstance(issue, Issue) else None,
        }
        data["draft"] = issue.draft if isinstance(issue, PullRequest) else False
        if isinstance(issue, PullRequest):
            data["pull_request"] = {
                "url": f"{base}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": iso(issue.merged_at) if issue.merged_at else None,
            }
        return data

    def review(self, repo: Repository, pull: PullRequest, review: Review) -> Json:
        html = f"{self.web}/{repo.full_name}/pull/{pull.number}"
        base = f"{self.api}/repos/{repo.full_name}/pulls/{pull.number}"
        return {
            "id": review.id,
            "node_id": node_id("PRR", review.id),
            "user": self.user(review.user),
            "body": review.body,
            "commit_id": review.commit_id,
            "submitted_at": iso(review.submitted_at),
            "state": review.state.lower(),
            "html_url": f"{html}#pullrequestreview-{review.id}",
            "pull_request_url": base,
            "author_association": review.author_association,
            "_links": {
                "html": {"href": f"{html}#pullrequestreview-{review.id}"},
                "pull_request": {"href": base},
            },
        }

    def pull_file(self, repo: Repository, pull: PullRequest, entry: PullFile) -> Json:
        blob = hashlib.sha1(
            f"{pull.head_sha}:{entry.filename}".encode(), usedforsecurity=False
        ).hexdigest()
        data: Json = {
            "sha": blob,
            "filename": entry.filename,
            "status": entry.status,
            "additions": entry.additions,
            "deletions": entry.deletions,
            "changes": entry.additions + entry.deletions,
            "blob_url": f"{self.web}/{repo.full_name}/blob/{pull.head_sha}/{entry.filename}",
            "raw_url": f"{self.web}/{repo.full_name}/raw/{pull.head_sha}/{entry.filename}",
            "contents_url": f"{self.api}/repos/{repo.full_name}/contents/{entry.filename}?ref={pull.head_sha}",
        }
        if entry.patch is not None:
            data["patch"] = entry.patch
        return data

    # -------------------------------------------------------------------- checks and statuses
    def check_suite(self, repo: Repository, suite_id: int, sha: str) -> Json:
        runs = [r for r in repo.check_runs.get(sha, []) if r.check_suite_id == suite_id]
        latest = {r.name: r for r in sorted(runs, key=lambda r: r.id)}.values()
        if any(r.status != "completed" for r in latest):
            status, conclusion = "in_progress", None
        elif any(r.conclusion in {"failure", "timed_out", "cancelled"} for r in latest):
            status, conclusion = "completed", "failure"
        else:
            status, conclusion = "completed", "success"
        started = min((r.started_at for r in runs), default=self.state.now())
        head_branch = next(
            (p.head_ref for p in repo.pulls.values() if p.head_sha == sha), repo.default_branch
        )
        return {
            "id": suite_id,
            "node_id": node_id("CS", suite_id),
            "head_branch": head_branch,
            "head_sha": sha,
            "status": status,
            "conclusion": conclusion,
            "url": f"{self.api}/repos/{repo.full_name}/check-suites/{suite_id}",
            "before": None,
            "after": sha,
            "pull_requests": [self.pull_ref(repo, p) for p in self.state.pull_by_sha(repo, sha)],
            "app": self.actions_app(),
            "repository": self.repository(repo),
            "created_at": iso(started),
            "updated_at": iso(self.state.now()),
            "check_runs_url": f"{self.api}/repos/{repo.full_name}/check-suites/{suite_id}/check-runs",
            "head_commit": self.head_commit(repo, sha),
            "latest_check_runs_count": len(list(latest)),
            "rerequestable": True,
            "runs_rerequestable": True,
        }

    def head_commit(self, repo: Repository, sha: str) -> Json:
        return {
            "id": sha,
            "tree_id": sha[::-1],
            "message": "Update",
            "timestamp": iso(self.state.now()),
            "author": {"name": repo.owner, "email": f"{repo.owner}@users.noreply.sim"},
            "committer": {"name": repo.owner, "email": f"{repo.owner}@users.noreply.sim"},
        }

    def actions_app(self) -> Json:
        return {
            "id": 15368,
            "slug": "github-actions",
            "node_id": "MDM6QXBwMTUzNjg=",
            "client_id": "Iv1.05c79e9ad1f6bdfa",
            "owner": {**self.user("github"), "type": "Organization"},
            "name": "GitHub Actions",
            "description": "Automate your workflow from idea to production",
            "external_url": "https://help.github.com/en/actions",
            "html_url": "https://github.com/apps/github-actions",
            "created_at": "2018-07-30T09:30:17Z",
            "updated_at": "2019-12-10T19:04:12Z",
            "permissions": {  # as in GitHub's example check_run payloads
                "actions": "write",
                "administration": "write",
                "checks": "write",
                "contents": "write",
                "deployments": "write",
                "issues": "write",
                "members": "write",
                "metadata": "read",
                "organization_administration": "write",
                "organization_hooks": "write",
                "organization_plan": "read",
                "organization_projects": "write",
                "organization_user_blocking": "write",
                "pages": "write",
                "pull_requests": "write",
                "repository_hooks": "write",
                "repository_projects": "write",
                "statuses": "write",
                "team_discussions": "write",
                "vulnerability_alerts": "read",
            },
            "events": ["check_run", "check_suite", "pull_request", "push"],
        }

    def pull_ref(self, repo: Repository, pull: PullRequest) -> Json:
        """The minimal PR reference of check payloads."""
        return {
            "url": f"{self.api}/repos/{repo.full_name}/pulls/{pull.number}",
            "id": pull.id,
            "number": pull.number,
            "head": {
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "repo": {
                    "id": repo.id,
                    "url": f"{self.api}/repos/{repo.full_name}",
                    "name": repo.name,
                },
            },
            "base": {
                "ref": pull.base_ref,
                "sha": pull.base_sha,
                "repo": {
                    "id": repo.id,
                    "url": f"{self.api}/repos/{repo.full_name}",
                    "name": repo.name,
                },
            },
        }

    def check_run(self, repo: Repository, run: CheckRun) -> Json:
        html = f"{self.web}/{repo.full_name}/actions/runs/{run.check_suite_id}/job/{run.id}"
        return {
            "id": run.id,
            "name": run.name,
            "node_id": node_id("CR", run.id),
            "head_sha": run.head_sha,
            "external_id": str(run.id),
            "url": f"{self.api}/repos/{repo.full_name}/check-runs/{run.id}",
            "html_url": html,
            "details_url": html,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": iso(run.started_at),
            "completed_at": iso(run.completed_at) if run.completed_at else None,
            "output": {
                "title": run.conclusion or run.status,
                "summary": f"{run.name}: {run.conclusion or run.status}",
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{self.api}/repos/{repo.full_name}/check-runs/{run.id}/annotations",
            },
            "check_suite": {"id": run.check_suite_id},
            "app": self.actions_app(),
            "pull_requests": [
                self.pull_ref(repo, p) for p in self.state.pull_by_sha(repo, run.head_sha)
            ],
        }

    def status(self, repo: Repository, status: CommitStatus) -> Json:
        return {
            "url": f"{self.api}/repos/{repo.full_name}/statuses/{status.sha}",
            "avatar_url": None,
            "id": status.id,
            "node_id": node_id("SC", status.id),
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "created_at": iso(status.created_at),
            "updated_at": iso(status.updated_at),
            "creator": self.user(status.creator),
        }

    def content_file(self, repo: Repository, path: str, text: str, ref: str) -> Json:
        raw = text.encode()
        blob = hashlib.sha1(b"blob %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()
        encoded = base64.encodebytes(raw).decode()  # GitHub wraps base64 at 60/76 columns
        url = f"{self.api}/repos/{repo.full_name}/contents/{path}?ref={ref}"
        html = f"{self.web}/{repo.full_name}/blob/{ref}/{path}"
        git = f"{self.api}/repos/{repo.full_name}/git/blobs/{blob}"
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": encoded,
            "sha": blob,
            "url": url,
            "git_url": git,
            "html_url": html,
            "download_url": f"{self.web}/{repo.full_name}/raw/{ref}/{path}",
            "_links": {"self": url, "git": git, "html": html},
        }
