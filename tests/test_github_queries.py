"""Every GraphQL document the GitHub connector can send validates against GitHub's schema."""

from __future__ import annotations

import pytest
from deliverypulse_github import queries
from fake_github import github_schema
from graphql import parse, validate


@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_query_is_valid_against_githubs_schema(name: str) -> None:
    errors = validate(github_schema(), parse(queries.ALL[name]))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("count", [1, 2, queries.REVIEW_BATCH])
def test_batched_deployment_review_query_is_valid(count: int) -> None:
    document = queries.deployment_reviews_query(count)
    assert not validate(github_schema(), parse(document))
    assert document.count("resource(url:") == count


@pytest.mark.parametrize("count", [1, 2, queries.PULL_REQUESTS_PAGE])
def test_batched_pull_request_commits_query_is_valid(count: int) -> None:
    document = queries.pull_request_commits_query(count)
    assert not validate(github_schema(), parse(document))
    assert document.count("pullRequest(number:") == count
    # Only the two dates the first commit needs, a full page at a time.
    assert "commits(first: 100, after:" in document and "oid" not in document


def test_pull_request_page_lists_a_full_page_of_commit_dates() -> None:
    # The first commit is the earliest authored among all of them, so the page lists as many
    # as GitHub allows (only their dates) and says whether there are more.
    block = queries.PULL_REQUESTS.split(f"commits(first: {queries.PULL_REQUEST_COMMITS})")[1]
    block = block.split("reviews(")[0]
    assert "pageInfo { hasNextPage endCursor }" in block and "totalCount" in block
    assert "nodes { commit { authoredDate committedDate } }" in block
    assert queries.PULL_REQUEST_COMMITS == 100


def test_validation_would_catch_a_wrong_field() -> None:
    # Guards the test above: a field GitHub does not have (Deployment.reviewers) is rejected.
    broken = queries.DEPLOYMENTS.replace("commitOid", "commitOid reviewers { totalCount }")
    assert validate(github_schema(), parse(broken))


def test_pages_stay_within_githubs_limits() -> None:
    # GitHub rejects first > 100, and a query over 500,000 nodes; our biggest page is
    # 50 pull requests x (100 commits + 50 reviews + 20 labels + 10 comments + 1 event).
    per_pull = queries.PULL_REQUEST_COMMITS + 50 + 20 + 10 + 1
    assert queries.PULL_REQUESTS_PAGE * per_pull < 500_000
    assert queries.PULL_REQUESTS_PAGE * queries.PULL_REQUEST_COMMITS < 500_000  # a follow-up
    pages = (queries.PAGE, queries.DEPLOYMENTS_PAGE, queries.PULL_REQUESTS_PAGE)
    assert max(*pages, queries.PULL_REQUEST_COMMITS) <= 100
