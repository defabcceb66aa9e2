"""GraphQL documents prsteward sends to GitHub. The sim executes them against GitHub's own schema,
and ``tests/sim/test_fidelity.py`` validates every document here against that schema."""

from __future__ import annotations

# One page = up to 100 open PRs of one repository with everything the policies need.
# Cost by GitHub's formula: 1 + 100 x (labels, assignees, reviewRequests, commits, contexts,
# latestReviews, comments, closingIssuesReferences) + 100 x 5 (assignees of each of up to 5 closing
# issues) = 1,301 requests -> 13 points a page (the sim charges the same).
OPEN_PULL_REQUESTS = """
query OpenPullRequests($owner: String!, $name: String!, $cursor: String) {
  rateLimit { cost remaining resetAt limit used }
  repository(owner: $owner, name: $name) {
    databaseId
    nameWithOwner
    isArchived
    pullRequests(states: OPEN, first: 100, after: $cursor, orderBy: {field: UPDATED_AT, direction: DESC}) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        ...PullRequestFields
      }
    }
  }
}

fragment PullRequestFields on PullRequest {
  id
  number
  title
  body
  url
  state
  author { __typename login }
  authorAssociation
  isDraft
  createdAt
  updatedAt
  baseRefName
  baseRefOid
  headRefName
  headRefOid
  mergeable
  mergeStateStatus
  reviewDecision
  additions
  deletions
  changedFiles
  autoMergeRequest { enabledAt }
  milestone { title }
  labels(first: 20) { nodes { name } }
  assignees(first: 10) { nodes { login } }
  reviewRequests(first: 10) {
    nodes { requestedReviewer { __typename ... on User { login } ... on Team { slug } ... on Bot { login } } }
  }
  commits(last: 1) {
    nodes {
      commit {
        oid
        committedDate
        statusCheckRollup {
          state
          contexts(first: 50) {
            nodes {
              __typename
              ... on CheckRun { name status conclusion detailsUrl completedAt }
              ... on StatusContext { context state targetUrl createdAt }
            }
          }
        }
      }
    }
  }
  latestReviews(first: 10) {
    nodes { databaseId author { __typename login } authorAssociation state submittedAt body }
  }
  comments(last: 10) {
    nodes { databaseId author { __typename login } authorAssociation createdAt body }
  }
  closingIssuesReferences(first: 5) {
    nodes { number state stateReason assignees(first: 3) { nodes { login } } }
  }
}
"""

# Re-read a handful of PRs (marked dirty by webhooks) by number in one request.
# Built per call with aliases: pr0: pullRequest(number: 12) { ...PullRequestFields }.
PULL_REQUESTS_BY_NUMBER_TEMPLATE = """
query PullRequestsByNumber($owner: String!, $name: String!) {{
  rateLimit {{ cost remaining resetAt limit used }}
  repository(owner: $owner, name: $name) {{
{selections}
  }}
}}
""" + OPEN_PULL_REQUESTS[OPEN_PULL_REQUESTS.index("fragment PullRequestFields") :].replace(
    "{", "{{"
).replace("}", "}}")


def pull_requests_by_number(numbers: list[int]) -> str:
    """A document reading exactly these PRs of one repository (at most 100)."""
    if not 1 <= len(numbers) <= 100:
        raise ValueError("between 1 and 100 PR numbers per query")
    selections = "\n".join(
        f"    pr{n}: pullRequest(number: {n}) {{ ...PullRequestFields }}" for n in numbers
    )
    return PULL_REQUESTS_BY_NUMBER_TEMPLATE.format(selections=selections)


ALL_DOCUMENTS = {
    "OpenPullRequests": OPEN_PULL_REQUESTS,
    "PullRequestsByNumber(sample)": pull_requests_by_number([1, 2, 3]),
}
