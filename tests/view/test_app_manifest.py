"""app.yml asks for exactly what bot/ uses: the events it handles and the permissions of the
REST and GraphQL calls it makes. A new call or handler fails here until app.yml (and the table
below) say which permission it needs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.handlers import default_router

ROOT = Path(__file__).resolve().parents[2]
# Delivered to every App without subscribing (the manifest may not list them).
AUTOMATIC_EVENTS = {"installation", "installation_repositories"}
LEVEL = {"read": 1, "write": 2}

# (method, path with {} for each placeholder) -> (permission, level); None: App JWT, no permission.
REST_PERMISSIONS: dict[tuple[str, str], tuple[str, str] | None] = {
    ("GET", "/app/installations"): None,
    ("GET", "/installation/repositories"): ("metadata", "read"),
    ("GET", "/repos/{}/pulls"): ("pull_requests", "read"),
    ("PATCH", "/repos/{}/pulls/{}"): ("pull_requests", "write"),
    ("GET", "/repos/{}/issues/{}/comments"): ("pull_requests", "read"),
    ("POST", "/repos/{}/issues/{}/comments"): ("pull_requests", "write"),
    ("PATCH", "/repos/{}/issues/comments/{}"): ("pull_requests", "write"),
    ("POST", "/repos/{}/issues/{}/labels"): ("pull_requests", "write"),
    ("DELETE", "/repos/{}/issues/{}/labels/{}"): ("pull_requests", "write"),
    ("GET", "/repos/{}/commits/{}/check-runs"): ("checks", "read"),
    ("POST", "/repos/{}/check-suites/{}/rerequest"): ("checks", "write"),
    ("POST", "/repos/{}/actions/runs/{}/rerun-failed-jobs"): ("actions", "write"),
    ("GET", "/repos/{}/contents/{}"): ("contents", "read"),
    ("POST", "/graphql"): None,  # by field, below
    ("GET", "/repos/{}/collaborators/{}/permission"): ("metadata", "read"),
    ("GET", "/repos/{}/compare/{}...{}"): ("contents", "read"),
    ("POST", "/repos/{}/issues"): ("issues", "write"),
    ("PATCH", "/repos/{}/issues/{}"): ("issues", "write"),
    ("POST", "/repos/{}/issues/comments/{}/reactions"): ("pull_requests", "write"),
    ("POST", "/app/hook/deliveries/{}/attempts"): None,  # App JWT
    ("GET", "/app/hook/deliveries"): None,  # App JWT
}
# GraphQL fields bot/ reads or mutates -> the permission they need.
GRAPHQL_PERMISSIONS = {
    "pullRequests": ("pull_requests", "read"),
    "pullRequest(": ("pull_requests", "read"),
    "convertPullRequestToDraft": ("pull_requests", "write"),
    "statusCheckRollup": ("checks", "read"),
    "StatusContext": ("statuses", "read"),
    "closingIssuesReferences": ("issues", "read"),
}
# Events -> the permission a subscription needs.
EVENT_PERMISSIONS = {
    "check_run": ("checks", "read"),
    "check_suite": ("checks", "read"),
    "issue_comment": ("issues", "read"),
    "issues": ("issues", "read"),
    "pull_request": ("pull_requests", "read"),
    "pull_request_review": ("pull_requests", "read"),
    "pull_request_review_comment": ("pull_requests", "read"),
    "pull_request_review_thread": ("pull_requests", "read"),
    "push": ("contents", "read"),
    "status": ("statuses", "read"),
    "workflow_run": ("actions", "read"),
}
VIEW_FILES = {"dashboard.py", "report.py", "metrics.py", "demo.py", "summary.py", "docs.py"}

_CALL = re.compile(
    r"""["'](GET|POST|PATCH|PUT|DELETE)["']\s*,\s*f?["'](/[^"']*)["']"""
    r"""|paginate_rest\(\s*f?["'](/[^"']*)["']""",
    re.S,
)


def _manifest() -> dict:
    return yaml.safe_load((ROOT / "app.yml").read_text())


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if path.name not in VIEW_FILES
    }


def rest_calls() -> set[tuple[str, str, str]]:
    calls = set()
    for name, text in _sources().items():
        for match in _CALL.finditer(text):
            method = match.group(1) or "GET"
            path = re.sub(r"\{[^{}]*\}", "{}", match.group(2) or match.group(3))
            calls.add((method, path, name))
    return calls


def test_events_are_exactly_the_handled_ones() -> None:
    handled = {event for event, _action, _handler in default_router()._routes}
    assert set(_manifest()["default_events"]) == handled - AUTOMATIC_EVENTS


def test_every_rest_call_is_known() -> None:
    calls = rest_calls()
    assert calls, "the scan found no REST call at all: the pattern is broken"
    unknown = {(m, p, f) for m, p, f in calls if (m, p) not in REST_PERMISSIONS}
    assert unknown == set(), "add these calls to REST_PERMISSIONS and app.yml"


def test_permissions_are_exactly_the_used_ones() -> None:
    needed: dict[str, str] = {"metadata": "read"}

    def need(permission: str, level: str) -> None:
        if LEVEL[level] > LEVEL.get(needed.get(permission, ""), 0):
            needed[permission] = level

    for method, path, _file in rest_calls():
        found = REST_PERMISSIONS.get((method, path))
        if found is not None:
            need(*found)
    text = "\n".join(_sources().values())
    for field, permission in GRAPHQL_PERMISSIONS.items():
        if field in text:
            need(*permission)
    for event in _manifest()["default_events"]:
        need(*EVENT_PERMISSIONS[event])
    assert _manifest()["default_permissions"] == needed


def test_manifest_shape() -> None:
    manifest = _manifest()
    assert manifest["hook_attributes"]["url"].endswith("/webhooks")
    assert manifest["public"] is False
