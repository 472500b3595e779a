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


def test_validation_would_catch_a_wrong_field() -> None:
    # Guards the test above: a field GitHub does not have (Deployment.reviewers) is rejected.
    broken = queries.DEPLOYMENTS.replace("commitOid", "commitOid reviewers { totalCount }")
    assert validate(github_schema(), parse(broken))


def test_pages_stay_within_githubs_limits() -> None:
    # GitHub rejects first > 100, and a query over 500,000 nodes; our biggest page is
    # 50 pull requests x (50 reviews + 20 labels + 10 comments + 2).
    assert queries.PULL_REQUESTS_PAGE * (50 + 20 + 10 + 2) < 500_000
    assert max(queries.PAGE, queries.DEPLOYMENTS_PAGE, queries.PULL_REQUESTS_PAGE) <= 100
