"""The GraphQL documents the GitHub connector sends, each validated against GitHub's schema in
the tests (``tests/test_github_queries.py``).

One query fetches a page of objects *with* their children (a pull request's reviews, commit
times and ready-for-review event; a deployment's statuses), which is what makes N pull
requests cost N/50 requests instead of N x 4. A pull request's commits are not listed in
authored order (a rebase or reorder moves them), so its first commit is the earliest authored
time among all of them: the page brings up to 100 per pull request (only two dates each), and
only pull requests with more ask again, all of one page's in one request.

- https://docs.github.com/en/graphql/reference/objects#pullrequest
- https://docs.github.com/en/graphql/reference/objects#deployment
- https://docs.github.com/en/graphql/reference/objects#workflowrun (deploymentReviews)
- https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api
"""

from __future__ import annotations

#: Pull requests per page; each brings up to 100 commits, 50 reviews, 20 labels and 10
#: comments, which keeps a page far below GitHub's 500,000-node limit and its 10-second timeout.
PULL_REQUESTS_PAGE = 50
#: Commits of a pull request per page (GitHub's largest ``first``). GitHub lists at most 250
#: commits of a pull request, so a longer one costs at most two follow-up pages.
PULL_REQUEST_COMMITS = 100
#: Deployments per page (each with up to 20 statuses).
DEPLOYMENTS_PAGE = 100
#: Commits, releases, tags, repositories per page.
PAGE = 100
#: Workflow runs looked up per deployment-review batch.
REVIEW_BATCH = 50


def repository_list(
    operation: str, connection: str, order: str, fields: str, *, filters: str = "", with_: str = ""
) -> str:
    """A query for one page of a repository's connection, newest first by ``order``, with
    ``fields`` for each node; ``with_`` adds repository fields that ride along with the page."""
    arguments = (
        f"{filters}first: $first, after: $after, orderBy: {{field: {order}, direction: DESC}}"
    )
    return (
        f"\nquery {operation}($owner: String!, $name: String!, $first: Int!, $after: String) {{\n"
        "  repository(owner: $owner, name: $name) {\n"
        f"{with_}    {connection}({arguments}) {{\n"
        "      pageInfo { hasNextPage endCursor }\n"
        f"      nodes {{\n{fields}      }}\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


PULL_REQUESTS = repository_list(
    "PullRequests",
    "pullRequests",
    "UPDATED_AT",
    """\
        number
        title
        body
        url
        state
        isDraft
        createdAt
        updatedAt
        mergedAt
        closedAt
        baseRefName
        headRefName
        additions
        deletions
        changedFiles
        author { __typename login }
        mergeCommit { oid }
        labels(first: 20) { nodes { name } }
        commits(first: 100) {
          totalCount
          pageInfo { hasNextPage endCursor }
          nodes { commit { authoredDate committedDate } }
        }
        reviews(first: 50) {
          totalCount
          nodes { state submittedAt createdAt author { __typename login } }
        }
        comments(first: 10) { nodes { createdAt author { __typename login } } }
        timelineItems(first: 1, itemTypes: [READY_FOR_REVIEW_EVENT]) {
          nodes { ... on ReadyForReviewEvent { createdAt } }
        }
""",
)

#: The environments and their protection rules (required reviewers) ride along with the
#: first deployments page, so the approval gates cost no request of their own.
ENVIRONMENTS_FIELD = """    environments(first: 50) {
      nodes {
        name
        protectionRules(first: 10) {
          nodes {
            type
            reviewers(first: 20) {
              nodes {
                __typename
                ... on User { login }
                ... on Team { slug }
              }
            }
          }
        }
      }
    }
"""

#: A deployment with its statuses; the creator's ``__typename`` (``Bot`` or ``User``) and the
#: statuses' log URLs (an Actions run) say what started it.
DEPLOYMENT_FIELDS = """\
        id
        databaseId
        createdAt
        updatedAt
        environment
        originalEnvironment
        description
        task
        state
        commitOid
        ref { name }
        creator { __typename login }
        statuses(first: 20) {
          totalCount
          nodes { state createdAt environment logUrl }
        }
"""

#: Deployments without the environments, for tokens that may not read them.
DEPLOYMENTS_ONLY = repository_list(
    "DeploymentsWithoutEnvironments", "deployments", "CREATED_AT", DEPLOYMENT_FIELDS
)

#: Deployments with the environments, for tokens that may read them.
DEPLOYMENTS = repository_list(
    "Deployments", "deployments", "CREATED_AT", DEPLOYMENT_FIELDS, with_=ENVIRONMENTS_FIELD
)

DEPLOYMENT_STATUSES = """
query DeploymentStatuses($id: ID!, $first: Int!, $after: String) {
  node(id: $id) {
    ... on Deployment {
      statuses(first: $first, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { state createdAt environment logUrl }
      }
    }
  }
}
"""

COMMITS = """
query Commits(
  $owner: String!, $name: String!, $first: Int!, $after: String, $since: GitTimestamp
) {
  repository(owner: $owner, name: $name) {
    defaultBranchRef {
      name
      target {
        ... on Commit {
          history(first: $first, after: $after, since: $since) {
            pageInfo { hasNextPage endCursor }
            nodes {
              oid
              authoredDate
              committedDate
              messageHeadline
              author { name user { login } }
              parents(first: 5) { nodes { oid } }
              associatedPullRequests(first: 1) { nodes { number } }
            }
          }
        }
      }
    }
  }
}
"""

RELEASES = repository_list(
    "Releases",
    "releases",
    "CREATED_AT",
    """\
        databaseId
        name
        tagName
        url
        createdAt
        publishedAt
        isDraft
        isPrerelease
        author { login }
        tagCommit { oid }
""",
)

TAGS = repository_list(
    "Tags",
    "refs",
    "TAG_COMMIT_DATE",
    """\
        name
        target {
          __typename
          oid
          ... on Commit { committedDate }
          ... on Tag {
            tagger { date }
            target { oid ... on Commit { committedDate } }
          }
        }
""",
    filters='refPrefix: "refs/tags/", ',
)

ORG_REPOSITORIES = """
query OrgRepositories($login: String!, $first: Int!, $after: String) {
  organization(login: $login) {
    repositories(first: $first, after: $after, isArchived: false, isFork: false,
                 orderBy: {field: NAME, direction: ASC}) {
      pageInfo { hasNextPage endCursor }
      nodes { nameWithOwner }
    }
  }
}
"""


def deployment_reviews_query(count: int) -> str:
    """One query for the environment approvals of ``count`` workflow runs (aliases r0..rN),
    looked up by URL because a deployment only knows its run through its status's log URL."""
    variables = ", ".join(f"$u{i}: URI!" for i in range(count))
    fields = "\n".join(f"  r{i}: resource(url: $u{i}) {{ ...RunReviews }}" for i in range(count))
    return f"""
query DeploymentReviews({variables}) {{
{fields}
}}

fragment RunReviews on WorkflowRun {{
  databaseId
  deploymentReviews(first: 10) {{
    nodes {{
      state
      comment
      user {{ login }}
      environments(first: 10) {{ nodes {{ name }} }}
    }}
  }}
}}
"""


def pull_request_commits_query(count: int) -> str:
    """One query for the next page of commits of ``count`` pull requests (aliases p0..pN, with
    variables ``$nI`` the number and ``$aI`` the cursor), for those with more than one page."""
    variables = ", ".join(f"$n{i}: Int!, $a{i}: String" for i in range(count))
    fields = "\n".join(
        f"    p{i}: pullRequest(number: $n{i}) {{\n"
        f"      commits(first: {PULL_REQUEST_COMMITS}, after: $a{i}) {{ ...CommitTimes }}\n"
        "    }"
        for i in range(count)
    )
    return f"""
query PullRequestCommits($owner: String!, $name: String!, {variables}) {{
  repository(owner: $owner, name: $name) {{
{fields}
  }}
}}

fragment CommitTimes on PullRequestCommitConnection {{
  pageInfo {{ hasNextPage endCursor }}
  nodes {{ commit {{ authoredDate committedDate }} }}
}}
"""


#: Every fixed document, for the schema-validation test.
ALL = {
    "PullRequests": PULL_REQUESTS,
    "Deployments": DEPLOYMENTS,
    "DeploymentsOnly": DEPLOYMENTS_ONLY,
    "DeploymentStatuses": DEPLOYMENT_STATUSES,
    "Commits": COMMITS,
    "Releases": RELEASES,
    "Tags": TAGS,
    "OrgRepositories": ORG_REPOSITORIES,
}
