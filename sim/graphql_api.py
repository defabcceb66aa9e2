"""GraphQL at ``/graphql``: documents run with graphql-core against GitHub's published schema
(`@octokit/graphql-schema`, ``sim/data/schema.graphql``) with resolvers over the sim state.

Cost and limits follow GitHub's documentation: every connection needs ``first`` or ``last`` in
1..100; at most 500,000 nodes; cost = connection requests (assuming full pages) / 100, rounded,
at least 1, charged to the installation's 5,000 points an hour.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLWrappingType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
    value_from_ast,
)

from sim.core import Simulator
from sim.state import (
    CheckRun,
    CommitStatus,
    Issue,
    IssueComment,
    PullRequest,
    Repository,
    Review,
    SimState,
    iso,
    latest_reviews,
    node_id,
    review_decision,
)

MAX_NODES = 500_000
MAX_PAGE = 100


@functools.cache
def github_schema() -> GraphQLSchema:
    """GitHub's schema, built once per process (its SDL has lint issues: SDL checks are off)."""
    sdl = resources.files("sim").joinpath("data/schema.graphql").read_text(encoding="utf-8")
    return build_schema(sdl, assume_valid_sdl=True, no_location=True)


# ----------------------------------------------------------------------------- cost analysis


@dataclass(slots=True)
class CostReport:
    requests: int = 0
    nodes: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cost(self) -> int:
        return max(1, round(self.requests / 100))


def _named_type(type_: Any) -> Any:
    while isinstance(type_, GraphQLWrappingType):
        type_ = type_.of_type
    return type_


def analyse_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any],
) -> CostReport:
    """GitHub's published rate-limit formula and pagination rules, over a validated document."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    report = CostReport()
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    assert root is not None

    def walk(
        selection_set: SelectionSetNode | None, parent: Any, multiplier: int, path: list[str]
    ) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                visit_field(selection, parent, multiplier, path)
            elif isinstance(selection, InlineFragmentNode):
                target = (
                    schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                walk(selection.selection_set, target, multiplier, path)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments[selection.name.value]
                walk(
                    fragment.selection_set,
                    schema.get_type(fragment.type_condition.name.value),
                    multiplier,
                    path,
                )

    def visit_field(node: FieldNode, parent: Any, multiplier: int, path: list[str]) -> None:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, (GraphQLObjectType, GraphQLInterfaceType)
        ):
            return
        definition = parent.fields.get(name)
        if definition is None:
            return
        child_type = _named_type(definition.type)
        here = [*path, node.alias.value if node.alias else name]
        if child_type.name.endswith("Connection"):
            args = {
                arg.name.value: value_from_ast(
                    arg.value, definition.args[arg.name.value].type, variables
                )
                for arg in node.arguments
                if arg.name.value in definition.args
            }
            page = args.get("first") if args.get("first") is not None else args.get("last")
            which = "first" if args.get("first") is not None else "last"
            if page is None:
                report.errors.append(
                    {
                        "type": "MISSING_PAGINATION_BOUNDARIES",
                        "path": here,
                        "locations": [],
                        "message": f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.",
                    }
                )
                return
            if not 1 <= int(page) <= MAX_PAGE:
                report.errors.append(
                    {
                        "type": "EXCESSIVE_PAGINATION",
                        "path": here,
                        "locations": [],
                        "message": f"Requesting {page} records on the `{name}` connection exceeds the `{which}` limit of {MAX_PAGE} records.",
                    }
                )
                return
            report.requests += multiplier
            report.nodes += multiplier * int(page)
            if report.nodes > MAX_NODES and not any(
                e["type"] == "MAX_NODE_LIMIT_EXCEEDED" for e in report.errors
            ):
                report.errors.append(
                    {
                        "type": "MAX_NODE_LIMIT_EXCEEDED",
                        "path": here,
                        "locations": [],
                        "message": (
                            f"By the time this query traverses to the {name} connection, it is requesting up to "
                            f"{report.nodes:,} possible nodes which exceeds the maximum limit of {MAX_NODES:,}."
                        ),
                    }
                )
            walk(node.selection_set, child_type, multiplier * int(page), here)
            return
        walk(node.selection_set, child_type, multiplier, here)

    walk(operation.selection_set, root, 1, [])
    return report


# ----------------------------------------------------------------------------- resolvers


def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"cursor:v2:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])
    except (ValueError, IndexError) as error:
        raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.") from error


def connection(
    items: Sequence[Any],
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """A Relay connection over ``items`` (already in order)."""
    start = decode_cursor(after) + 1 if after else 0
    end = decode_cursor(before) if before else len(items)
    start, end = max(0, start), min(len(items), end)
    if first is not None:
        end = min(end, start + first)
    elif last is not None:
        start = max(start, end - last)
    window = list(items[start:end])
    edges = [{"cursor": encode_cursor(start + i), "node": item} for i, item in enumerate(window)]
    return {
        "nodes": window,
        "edges": edges,
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def paged(items_fn: Callable[[], Sequence[Any]]) -> Callable[..., dict[str, Any]]:
    def resolve(
        info: Any,
        first: int | None = None,
        last: int | None = None,
        after: str | None = None,
        before: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        return connection(items_fn(), first, last, after, before)

    return resolve


class Resolvers:
    """Builds resolver objects: dicts whose callables graphql-core's default resolver calls."""

    def __init__(self, state: SimState, web: str) -> None:
        self.state = state
        self.web = web

    def actor(self, login: str | None) -> dict[str, Any] | None:
        if login is None:
            return None
        user = self.state.user(login)
        typename = (
            "Bot"
            if user.type == "Bot"
            else ("Organization" if user.type == "Organization" else "User")
        )
        return {
            "__typename": typename,
            "login": user.graphql_login,
            "id": node_id("U", user.id),
            "databaseId": user.id,
            "url": f"{self.web}/{user.login}",
            "avatarUrl": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "resourcePath": f"/{user.login}",
        }

    def repository(self, repo: Repository) -> dict[str, Any]:
        def pull_requests(
            info: Any,
            states: list[str] | None = None,
            labels: list[str] | None = None,
            baseRefName: str | None = None,
            headRefName: str | None = None,
            orderBy: dict[str, str] | None = None,
            first: int | None = None,
            last: int | None = None,
            after: str | None = None,
            before: str | None = None,
        ) -> dict[str, Any]:
            wanted = {s.lower() for s in states} if states else None
            pulls = [
                p
                for p in repo.pulls.values()
                if wanted is None or self.pull_state(p).lower() in wanted
            ]
            if labels:
                pulls = [p for p in pulls if set(labels) & set(p.labels)]
            if baseRefName:
                pulls = [p for p in pulls if p.base_ref == baseRefName]
            if headRefName:
                pulls = [p for p in pulls if p.head_ref == headRefName]
            order = orderBy or {"field": "CREATED_AT", "direction": "ASC"}
            key = (
                (lambda p: (p.updated_at, p.number))
                if order.get("field") == "UPDATED_AT"
                else (lambda p: (p.created_at, p.number))
            )
            pulls.sort(key=key, reverse=order.get("direction") == "DESC")
            return connection(
                _LazyList(pulls, lambda p: self.pull(repo, p)), first, last, after, before
            )

        def pull_request(info: Any, number: int) -> dict[str, Any] | None:
            pull = repo.pulls.get(number)
            return self.pull(repo, pull) if pull else None

        def issue(info: Any, number: int) -> dict[str, Any] | None:
            found = repo.issues.get(number)
            return self.issue(repo, found) if found else None

        return {
            "__typename": "Repository",
            "id": node_id("R", repo.id),
            "databaseId": repo.id,
            "name": repo.name,
            "nameWithOwner": repo.full_name,
            "owner": self.actor(repo.owner),
            "isArchived": repo.archived,
            "isPrivate": repo.private,
            "isDisabled": False,
            "isFork": False,
            "url": f"{self.web}/{repo.full_name}",
            "createdAt": iso(repo.created_at),
            "updatedAt": iso(repo.pushed_at),
            "pushedAt": iso(repo.pushed_at),
            "defaultBranchRef": {
                "name": repo.default_branch,
                "target": {"__typename": "Commit", "oid": repo.branches.get(repo.default_branch)},
            },
            "pullRequests": pull_requests,
            "pullRequest": pull_request,
            "issue": issue,
        }

    @staticmethod
    def pull_state(pull: PullRequest) -> str:
        if pull.merged_at is not None:
            return "MERGED"
        return "OPEN" if pull.state == "open" else "CLOSED"

    def pull(self, repo: Repository, pull: PullRequest) -> dict[str, Any]:
        state = self.state

        def review_requests() -> list[dict[str, Any]]:
            return [
                {"requestedReviewer": self.actor(login), "asCodeOwner": False}
                for login in pull.requested_reviewers
            ]

        def commits() -> list[dict[str, Any]]:
            return [{"commit": self.commit(repo, pull)}]

        def comments() -> list[dict[str, Any]]:
            found = sorted(
                (c for c in repo.comments.values() if c.issue_number == pull.number),
                key=lambda c: c.id,
            )
            return [self.comment(c) for c in found]

        def closing() -> list[dict[str, Any]]:
            return [
                self.issue(repo, repo.issues[n]) for n in pull.closing_issues if n in repo.issues
            ]

        return {
            "__typename": "PullRequest",
            "id": node_id("PR", pull.id),
            "databaseId": pull.id,
            "number": pull.number,
            "title": pull.title,
            "body": pull.body or "",
            "url": f"{self.web}/{repo.full_name}/pull/{pull.number}",
            "state": self.pull_state(pull),
            "closed": pull.state == "closed",
            "merged": pull.merged_at is not None,
            "author": self.actor(pull.user),
            "authorAssociation": pull.author_association,
            "isDraft": pull.draft,
            "locked": pull.locked,
            "createdAt": iso(pull.created_at),
            "updatedAt": iso(pull.updated_at),
            "closedAt": iso(pull.closed_at) if pull.closed_at else None,
            "mergedAt": iso(pull.merged_at) if pull.merged_at else None,
            "baseRefName": pull.base_ref,
            "baseRefOid": pull.base_sha,
            "headRefName": pull.head_ref,
            "headRefOid": pull.head_sha,
            "mergeable": pull.mergeable,
            "mergeStateStatus": state.merge_state_status(repo, pull),
            "reviewDecision": review_decision(pull),
            "additions": pull.additions,
            "deletions": pull.deletions,
            "changedFiles": pull.changed_files,
            "autoMergeRequest": None,
            "milestone": None,
            "repository": lambda info: self.repository(repo),
            "labels": paged(
                lambda: [
                    {"name": n, "color": repo.labels[n].color if n in repo.labels else "ededed"}
                    for n in pull.labels
                ]
            ),
            "assignees": paged(lambda: [self.actor(login) for login in pull.assignees]),
            "reviewRequests": paged(review_requests),
            "commits": paged(commits),
            "latestReviews": paged(lambda: [self.review(r) for r in latest_reviews(pull)]),
            "reviews": paged(
                lambda: [self.review(r) for r in sorted(pull.reviews, key=lambda r: r.id)]
            ),
            "comments": paged(comments),
            "closingIssuesReferences": paged(closing),
        }

    def commit(self, repo: Repository, pull: PullRequest) -> dict[str, Any]:
        runs = self.state.check_runs_for(repo, pull.head_sha)
        statuses = self.state.statuses_for(repo, pull.head_sha)
        rollup_state = self.state.rollup(repo, pull)
        rollup = None
        if rollup_state is not None:
            contexts = [self.check_run(repo, r) for r in runs] + [
                self.status_context(s) for s in statuses
            ]
            rollup = {"state": rollup_state, "contexts": paged(lambda: contexts)}
        committed = pull.head_committed_at or pull.created_at
        return {
            "__typename": "Commit",
            "oid": pull.head_sha,
            "abbreviatedOid": pull.head_sha[:7],
            "committedDate": iso(committed),
            "authoredDate": iso(committed),
            "message": "Update",
            "statusCheckRollup": rollup,
        }

    def check_run(self, repo: Repository, run: CheckRun) -> dict[str, Any]:
        return {
            "__typename": "CheckRun",
            "databaseId": run.id,
            "name": run.name,
            "status": run.status.upper(),
            "conclusion": run.conclusion.upper() if run.conclusion else None,
            "detailsUrl": f"{self.web}/{repo.full_name}/actions/runs/{run.check_suite_id}/job/{run.id}",
            "startedAt": iso(run.started_at),
            "completedAt": iso(run.completed_at) if run.completed_at else None,
            "checkSuite": {"databaseId": run.check_suite_id},
        }

    @staticmethod
    def status_context(status: CommitStatus) -> dict[str, Any]:
        return {
            "__typename": "StatusContext",
            "context": status.context,
            "state": status.state.upper(),
            "targetUrl": status.target_url,
            "description": status.description,
            "createdAt": iso(status.created_at),
        }

    def review(self, review: Review) -> dict[str, Any]:
        return {
            "databaseId": review.id,
            "author": self.actor(review.user),
            "authorAssociation": review.author_association,
            "state": review.state,
            "submittedAt": iso(review.submitted_at),
            "body": review.body,
        }

    def comment(self, comment: IssueComment) -> dict[str, Any]:
        return {
            "databaseId": comment.id,
            "author": self.actor(comment.user),
            "authorAssociation": comment.author_association,
            "createdAt": iso(comment.created_at),
            "updatedAt": iso(comment.updated_at),
            "body": comment.body,
        }

    def issue(self, repo: Repository, issue: Issue) -> dict[str, Any]:
        return {
            "__typename": "Issue",
            "id": node_id("I", issue.id),
            "number": issue.number,
            "title": issue.title,
            "state": issue.state.upper(),
            "stateReason": issue.state_reason.upper() if issue.state_reason else None,
            "closed": issue.state == "closed",
            "url": f"{self.web}/{repo.full_name}/issues/{issue.number}",
            "assignees": paged(lambda: [self.actor(login) for login in issue.assignees]),
        }


class _LazyList(Sequence[Any]):
    """Builds resolver dicts only for the page a connection returns (10,000-PR repos stay cheap)."""

    def __init__(self, items: list[Any], build: Callable[[Any], Any]) -> None:
        self._items = items
        self._build = build

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._build(item) for item in self._items[index]]
        return self._build(self._items[index])


# ----------------------------------------------------------------------------- execution


@dataclass(slots=True)
class Prepared:
    """A parsed, validated document with its cost, ready to charge and run."""

    document: DocumentNode | None
    operation: OperationDefinitionNode | None
    variables: dict[str, Any]
    report: CostReport
    errors: list[dict[str, Any]]


def prepare(query: str, variables: dict[str, Any] | None, operation_name: str | None) -> Prepared:
    schema = github_schema()
    variables = variables or {}
    document, problems = parsed(query)
    if document is None or problems:
        return Prepared(document, None, variables, CostReport(), problems)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return Prepared(
            document,
            None,
            variables,
            CostReport(),
            [{"message": "No operation given", "locations": []}],
        )
    report = analyse_cost(schema, document, operation, variables)
    return Prepared(document, operation, variables, report, list(report.errors))


@functools.lru_cache(maxsize=256)
def parsed(query: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
    """Parse and validate once per document text (pollers send the same few documents)."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, [_error(error)]
    return document, [_error(problem) for problem in validate(github_schema(), document)]


def _error(error: GraphQLError, kind: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"message": error.message}
    kind = kind or str((error.extensions or {}).get("type") or "")
    if kind:
        data["type"] = kind
    if error.locations:
        data["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        data["path"] = list(error.path)
    return data


def run(
    prepared: Prepared,
    resolvers: Resolvers,
    rate_limit: dict[str, Any],
    visible: set[int] | None,
    mutations: dict[str, Callable[..., Any]] | None = None,
) -> dict[str, Any]:
    """Executes a prepared document; ``rate_limit`` is what ``rateLimit { ... }`` answers,
    ``visible`` the repository ids the caller may see (None: all) and ``mutations`` the
    mutation fields' resolvers (``mutation_resolvers``)."""
    assert prepared.document is not None
    state = resolvers.state

    def repository(
        info: Any, owner: str, name: str, followRenames: bool = True
    ) -> dict[str, Any] | None:
        repo = state.repo(owner, name)
        if repo is None or not resolvers_can_see(repo):
            return None
        return resolvers.repository(repo)

    def resolvers_can_see(repo: Repository) -> bool:
        return visible is None or repo.id in visible

    root: dict[str, Any] = {
        "repository": repository,
        "rateLimit": lambda info, dryRun=False: rate_limit,
        **(mutations or {}),
    }
    result = execute_sync(
        github_schema(),
        prepared.document,
        root_value=root,
        variable_values=prepared.variables,
        operation_name=None,
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_error(error) for error in result.errors]
    data = result.data or {}
    if "repository" in data and data["repository"] is None:
        # GitHub answers an unknown (or invisible) repository with null and a NOT_FOUND error.
        owner = prepared.variables.get("owner")
        name = prepared.variables.get("name")
        body.setdefault("errors", []).append(
            {
                "type": "NOT_FOUND",
                "path": ["repository"],
                "locations": [],
                "message": f"Could not resolve to a Repository with the name '{owner}/{name}'.",
            }
        )
    return body


def iso_epoch(epoch: int) -> str:
    """``resetAt``: an epoch second on the sim clock as GitHub's DateTime."""
    from datetime import UTC, datetime

    return iso(datetime.fromtimestamp(epoch, UTC))


def cache_key(
    state: SimState, query: str, prepared: Prepared, visible: set[int] | None
) -> tuple[str, str, int, int] | None:
    """A key for documents that read one repository named by ``$owner``/``$name`` (prsteward's
    sweeps): every change to a repository bumps its version, so a cached result is current.
    None for anything else (never cached)."""
    owner, name = prepared.variables.get("owner"), prepared.variables.get("name")
    if not isinstance(owner, str) or not isinstance(name, str):
        return None
    if prepared.operation is None or prepared.operation.operation.value != "query":
        return None
    repo = state.repo(owner, name)
    if repo is None or (visible is not None and repo.id not in visible):
        return None
    variables = json.dumps(prepared.variables, sort_keys=True)
    return (query, variables, repo.id, state.repo_versions.get(repo.id, 0))


def with_rate_limit(cached: dict[str, Any], rate_limit: dict[str, Any]) -> dict[str, Any]:
    """A cached result with this request's ``rateLimit`` answer."""
    data = cached.get("data")
    if not isinstance(data, dict):
        return cached
    fresh = dict(data)
    for key, value in data.items():
        if isinstance(value, dict) and "cost" in value and set(value) <= set(rate_limit):
            fresh[key] = {field: rate_limit[field] for field in value}
    return {**cached, "data": fresh}


# ----------------------------------------------------------------------------- mutations


def is_mutation(prepared: Prepared) -> bool:
    return prepared.operation is not None and prepared.operation.operation.value == "mutation"


def mutation_fields(prepared: Prepared) -> list[str]:
    """The root fields a mutation document calls (``convertPullRequestToDraft``, ...)."""
    if not is_mutation(prepared) or prepared.operation is None:
        return []
    return [
        selection.name.value
        for selection in prepared.operation.selection_set.selections
        if isinstance(selection, FieldNode)
    ]


def decode_node_id(value: object) -> tuple[str, int] | None:
    """(prefix, database id) of a global node id made by ``sim.state.node_id``."""
    if not isinstance(value, str) or "_" not in value:
        return None
    prefix, _, encoded = value.partition("_")
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except ValueError:
        return None
    kind, _, number = decoded.partition(":")
    if kind != prefix or not number.isdigit():
        return None
    return prefix, int(number)


def find_pull_node(
    state: SimState, value: object, visible: set[int] | None
) -> tuple[Repository, PullRequest] | None:
    """The pull request a ``PR_...`` node id names, if the caller can see it."""
    decoded = decode_node_id(value)
    if decoded is None or decoded[0] != "PR":
        return None
    for repo in state.repos.values():
        if visible is not None and repo.id not in visible:
            continue
        for pull in repo.pulls.values():
            if pull.id == decoded[1]:
                return repo, pull
    return None


def not_found_node(value: object) -> GraphQLError:
    return GraphQLError(
        f"Could not resolve to a node with the global id of '{value}'",
        extensions={"type": "NOT_FOUND"},
    )


def forbidden() -> GraphQLError:
    return GraphQLError("Resource not accessible by integration", extensions={"type": "FORBIDDEN"})


def mutation_resolvers(
    sim: Simulator,
    resolvers: Resolvers,
    visible: set[int] | None,
    permissions: dict[str, str] | None,
    performed: list[str],
) -> dict[str, Callable[..., Any]]:
    """The mutations prsteward sends, as GitHub answers them: the change goes through
    ``sim/events.py`` (state, then the webhook), the payload has the schema's shape, an
    unknown or invisible node id is ``NOT_FOUND`` and a missing ``pull_requests: write``
    permission ``FORBIDDEN``. Each mutation that changed something is appended to
    ``performed`` (the caller counts them as writes)."""
    from sim import events

    def set_draft(field: str, draft: bool) -> Callable[..., Any]:
        def resolve(info: Any, input: dict[str, Any]) -> dict[str, Any]:
            target = input.get("pullRequestId")
            found = find_pull_node(sim.state, target, visible)
            if found is None:
                raise not_found_node(target)
            if permissions is not None and permissions.get("pull_requests") != "write":
                raise forbidden()
            repo, pull = found
            events.set_draft(sim, repo, pull, sim.bot_login, draft)
            performed.append(field)
            return {
                "clientMutationId": input.get("clientMutationId"),
                "pullRequest": resolvers.pull(repo, pull),
            }

        return resolve

    return {
        "convertPullRequestToDraft": set_draft("convertPullRequestToDraft", True),
        "markPullRequestReadyForReview": set_draft("markPullRequestReadyForReview", False),
    }
