"""The core policy under ``requests``-based clients: one owner of retries and waits."""

from __future__ import annotations

import pytest
import requests
import responses

from deliverypulse.errors import AuthError, RetryableAPIError
from deliverypulse.http import PolicyAdapter, RateBudget, RequestStats, RetryPolicy, policy_session
from deliverypulse.http.policy import ErrorContext

URL = "https://git.example.test/api/v4/projects/1"


def session(slept: list[float], stats: RequestStats, attempts: int = 4) -> requests.Session:
    adapter = PolicyAdapter(
        context=ErrorContext(source="gl", token_env="GL_TOKEN"),
        policy=RetryPolicy(max_attempts=attempts, base_delay=1.0),
        budget=RateBudget(sleep=slept.append, clock=lambda: 1_000.0),
        stats=stats,
        sleep=slept.append,
    )
    return policy_session(adapter)


@responses.activate
def test_a_5xx_burst_is_retried_with_backoff_then_succeeds() -> None:
    responses.get(URL, status=502)
    responses.get(URL, status=503)
    responses.get(URL, json={"id": 1})
    slept: list[float] = []
    stats = RequestStats()
    response = session(slept, stats).get(URL)
    assert response.json() == {"id": 1}
    assert (stats.total, stats.retries) == (3, 2)
    assert len(slept) == 2 and all(0 < s <= 60 for s in slept)


@responses.activate
def test_truncated_json_is_retried() -> None:
    responses.get(URL, body='{"id": 1, "na', content_type="application/json")
    responses.get(URL, json={"id": 1})
    stats = RequestStats()
    assert session([], stats).get(URL).json() == {"id": 1}
    assert stats.total == 2


@responses.activate
def test_retry_after_waits_on_the_shared_budget_without_spending_an_attempt() -> None:
    responses.get(URL, status=429, headers={"Retry-After": "7"})
    responses.get(URL, json={"id": 1})
    slept: list[float] = []
    stats = RequestStats()
    assert session(slept, stats, attempts=1).get(URL).status_code == 200
    assert stats.waited_seconds == 7
    assert stats.total == 2


@responses.activate
def test_giving_up_and_auth_failures_are_deliverypulse_errors_naming_the_token_variable() -> None:
    responses.get(URL, status=500, headers={"X-Request-Id": "req-42"})
    with pytest.raises(RetryableAPIError, match=r"gave up after 2 attempts.*request id req-42"):
        session([], RequestStats(), attempts=2).get(URL)
    responses.replace(responses.GET, URL, status=401, json={"message": "401 Unauthorized"})
    with pytest.raises(AuthError, match="GL_TOKEN") as caught:
        session([], RequestStats()).get(URL)
    assert caught.value.status == 401
