"""The client-agnostic rate-limit and fault policy: classification, backoff, shared budget."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deliverypulse.errors import AuthError, FatalAPIError, NotFoundError, RateLimitError
from deliverypulse.http.policy import (
    SECONDARY_LIMIT_MIN_WAIT,
    ErrorContext,
    Outcome,
    RateBudget,
    RetryPolicy,
    classify,
    error_for,
)

NOW = 1_700_000_000.0
URL = "https://api.github.com/repos/o/r/pulls"


def test_success_and_not_modified_are_ok() -> None:
    assert classify(200, {}, URL, now=NOW).ok
    assert classify(304, {}, URL, now=NOW).ok


def test_primary_limit_waits_until_reset() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 120))}
    verdict = classify(403, headers, URL, now=NOW)
    assert verdict.outcome is Outcome.RATE_LIMITED
    assert verdict.wait_seconds == pytest.approx(121)
    assert verdict.reset_at == datetime.fromtimestamp(NOW + 120, UTC)


def test_retry_after_wins_for_secondary_limits_on_403_and_429() -> None:
    for status in (403, 429):
        verdict = classify(status, {"retry-after": "7"}, URL, now=NOW)
        assert verdict.outcome is Outcome.RETRY
        assert verdict.wait_seconds == 7


def test_retry_after_as_http_date() -> None:
    when = formatdate(NOW + 90, usegmt=True)
    verdict = classify(429, {"Retry-After": when}, URL, now=NOW)
    assert verdict.outcome is Outcome.RETRY
    assert verdict.wait_seconds == pytest.approx(90)


def test_secondary_limit_without_retry_after_waits_at_least_a_minute() -> None:
    body = '{"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}'
    verdict = classify(403, {"x-ratelimit-remaining": "4000"}, URL, body, now=NOW)
    assert verdict.outcome is Outcome.RETRY
    assert verdict.wait_seconds == SECONDARY_LIMIT_MIN_WAIT
    assert RetryPolicy(rng=random.Random(1)).secondary_wait(60, 1) >= 60


def test_plain_403_is_a_permission_error_and_404_not_found() -> None:
    assert classify(403, {"x-ratelimit-remaining": "10"}, URL, '{"message":"nope"}').outcome is (
        Outcome.FATAL
    )
    assert classify(404, {}, URL).outcome is Outcome.FATAL
    assert classify(502, {}, URL).outcome is Outcome.RETRY
    assert classify(422, {}, URL).outcome is Outcome.FATAL


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=30, rng=random.Random(0))
    delays = [policy.backoff(n) for n in range(1, 8)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(30, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] > delays[0]


def test_errors_name_source_token_variable_and_repo_never_the_token() -> None:
    context = ErrorContext(source="web", token_env="GITHUB_TOKEN", repo="octo/web")
    auth = error_for(classify(401, {}, URL), url=URL, request_id="AB:12", context=context)
    assert isinstance(auth, AuthError)
    assert "web" in str(auth) and "$GITHUB_TOKEN" in str(auth) and "AB:12" in str(auth)
    missing = error_for(classify(404, {}, URL), url=URL, request_id=None, context=context)
    assert isinstance(missing, NotFoundError) and "octo/web" in str(missing)
    other = error_for(classify(422, {}, URL), url=URL, request_id=None, context=context)
    assert isinstance(other, FatalAPIError) and other.status == 422


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_makes_every_worker_wait_when_spent() -> None:
    clock = FakeClock()
    budget = RateBudget(max_wait=900, clock=clock, sleep=clock.sleep)
    budget.observe({"x-ratelimit-remaining": "2", "x-ratelimit-reset": str(int(NOW + 60))})
    budget.before_request()
    budget.before_request()
    assert clock.slept == []
    budget.before_request()  # the third request would overdraw: wait for the reset
    assert clock.slept == [pytest.approx(61)]


def test_budget_raises_with_reset_time_when_wait_too_long() -> None:
    clock = FakeClock()
    budget = RateBudget(max_wait=30, clock=clock, sleep=clock.sleep)
    budget.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW + 600))})
    with pytest.raises(RateLimitError) as caught:
        budget.before_request()
    assert caught.value.reset_at == datetime.fromtimestamp(NOW + 600, UTC)
    assert clock.slept == []


def test_budget_is_thread_safe_and_never_overdraws() -> None:
    clock = FakeClock()
    waits: list[float] = []
    budget = RateBudget(max_wait=900, clock=clock, sleep=waits.append)
    budget.observe({"x-ratelimit-remaining": "100", "x-ratelimit-reset": str(int(NOW + 60))})

    def worker() -> None:
        for _ in range(25):
            budget.before_request()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 200 requests against a budget of 100: at least one wait, and the count went to zero.
    assert waits, "no worker waited although the budget was overdrawn"


def test_secondary_pause_holds_all_workers() -> None:
    clock = FakeClock()
    budget = RateBudget(max_wait=900, clock=clock, sleep=clock.sleep)
    budget.pause(30)
    budget.before_request("graphql")
    assert clock.slept == [pytest.approx(30)]
    budget.before_request("graphql")
    assert len(clock.slept) == 1


@given(
    status=st.integers(min_value=100, max_value=599),
    remaining=st.one_of(st.none(), st.integers(min_value=0, max_value=5000)),
    retry_after=st.one_of(st.none(), st.integers(min_value=0, max_value=3600)),
)
def test_classification_invariants(
    status: int, remaining: int | None, retry_after: int | None
) -> None:
    headers = {"x-ratelimit-reset": str(int(NOW + 500))}
    if remaining is not None:
        headers["x-ratelimit-remaining"] = str(remaining)
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    verdict = classify(status, headers, URL, now=NOW)
    if 200 <= status < 300 or status == 304:
        assert verdict.ok
    elif status in (403, 429) and retry_after is not None:
        assert verdict.outcome is Outcome.RETRY and verdict.wait_seconds == retry_after
    elif status in (403, 429) and remaining == 0:
        assert verdict.outcome is Outcome.RATE_LIMITED and verdict.wait_seconds == 501
    elif status >= 500:
        assert verdict.outcome in (Outcome.RETRY, Outcome.FATAL)
    else:
        assert verdict.outcome in (Outcome.FATAL, Outcome.RETRY)
        assert verdict.outcome is Outcome.FATAL or status == 429
    assert verdict.wait_seconds is None or verdict.wait_seconds >= 0
