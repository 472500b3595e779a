"""One rate-limit and fault policy for every HTTP-speaking connector, free of any HTTP library.

A response is classified from its status, headers and (for GraphQL) body into *ok*, *retry after
N seconds*, *rate-limited until T* or *fatal*; the caller's client only carries the decision out.
The GitHub connector drives it from httpx, the GitLab connector from ``requests``. It follows
GitHub's own guidance:

- https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
- https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
- https://docs.github.com/en/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api

and understands GitLab's ``RateLimit-*`` header spelling as well.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

from deliverypulse.errors import (
    APIError,
    AuthError,
    FatalAPIError,
    NotFoundError,
    RateLimitError,
    RetryableAPIError,
)

#: GitHub's advice when a secondary limit names no Retry-After: wait at least a minute.
SECONDARY_LIMIT_MIN_WAIT = 60.0
#: Statuses worth retrying as they are: the server (or a proxy in front of it) failed.
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504, 520, 521, 522, 524})


class Outcome(Enum):
    """What to do with a response."""

    OK = "ok"
    RETRY = "retry"  # transient: wait ``wait_seconds`` (or back off) and send it again
    RATE_LIMITED = "rate_limited"  # the budget is spent until ``reset_at``
    FATAL = "fatal"  # sending it again gives the same answer


@dataclass(frozen=True)
class Verdict:
    """The classification of one response; ``wait_seconds`` None means "use the backoff"."""

    outcome: Outcome
    reason: str = ""
    wait_seconds: float | None = None
    reset_at: datetime | None = None
    status: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value, whatever the case of its name (plain dicts are not case-insensitive)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Retry-After as seconds from ``now``: either delta-seconds or an HTTP date."""
    value = header(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def rate_limit_reset(headers: Mapping[str, str], now: float) -> float | None:
    """The epoch second the primary limit resets (GitHub ``x-ratelimit-reset``, GitLab
    ``RateLimit-Reset``; both are epoch seconds)."""
    value = header(headers, "x-ratelimit-reset") or header(headers, "ratelimit-reset")
    if value is None:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    # A small number is a delta (the IETF draft's meaning), not an epoch second.
    return now + reset if reset < 1_000_000_000 else reset


def rate_limit_remaining(headers: Mapping[str, str]) -> int | None:
    value = header(headers, "x-ratelimit-remaining") or header(headers, "ratelimit-remaining")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _looks_like_secondary_limit(body: str) -> bool:
    text = body.lower()
    return "secondary rate limit" in text or "abuse" in text


def classify(
    status: int,
    headers: Mapping[str, str],
    url: str,
    body: str = "",
    *,
    now: float | None = None,
) -> Verdict:
    """Classify one HTTP response. ``body`` is only read for 403/429 (primary or secondary
    limit, or a plain permission error?) and may be empty."""
    now = time.time() if now is None else now
    if 200 <= status < 300 or status == 304:
        return Verdict(Outcome.OK, status=status)
    if status in (403, 429):
        retry_after = retry_after_seconds(headers, now)
        remaining = rate_limit_remaining(headers)
        if retry_after is not None:
            return Verdict(
                Outcome.RETRY, "secondary rate limit (Retry-After)", retry_after, status=status
            )
        if remaining == 0:
            reset = rate_limit_reset(headers, now)
            reset_at = datetime.fromtimestamp(reset, UTC) if reset is not None else None
            wait = max(0.0, reset - now) + 1.0 if reset is not None else SECONDARY_LIMIT_MIN_WAIT
            return Verdict(
                Outcome.RATE_LIMITED, "primary rate limit exhausted", wait, reset_at, status=status
            )
        if status == 429 or _looks_like_secondary_limit(body):
            return Verdict(
                Outcome.RETRY, "secondary rate limit", SECONDARY_LIMIT_MIN_WAIT, status=status
            )
        return Verdict(Outcome.FATAL, "forbidden", status=status)
    if status in RETRYABLE_STATUSES:
        return Verdict(Outcome.RETRY, f"server error {status}", status=status)
    return Verdict(Outcome.FATAL, f"HTTP {status}", status=status)


@dataclass
class RetryPolicy:
    """How long to keep trying, and how long to wait between tries.

    ``max_rate_limit_wait`` bounds a single wait for a rate limit: beyond it the run stops
    cleanly with :class:`RateLimitError` (state of completed pages is kept) instead of
    hanging a cron job for an hour.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_rate_limit_wait: float = 900.0
    max_rate_limit_waits: int = 5
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with (half) jitter for try number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def secondary_wait(self, suggested: float, repeat: int) -> float:
        """A secondary-limit wait: at least ``suggested``, growing on repeats, with jitter so
        that concurrent workers do not all come back in the same second."""
        base = suggested * (2 ** max(0, repeat - 1)) if suggested else self.backoff(repeat)
        return base + self.rng.uniform(0, max(1.0, base * 0.1))


@dataclass(frozen=True)
class ErrorContext:
    """What an error message needs to tell a human what broke, without any secret."""

    source: str | None = None
    token_env: str | None = None
    repo: str | None = None


def error_for(
    verdict: Verdict,
    *,
    url: str,
    request_id: str | None,
    context: ErrorContext,
    detail: str = "",
) -> APIError:
    """The deliverypulse exception for a response that will not be retried (any more)."""
    status = verdict.status
    common: dict[str, Any] = {
        "status": status,
        "url": url,
        "request_id": request_id,
        "source": context.source,
    }
    suffix = f": {detail}" if detail else ""
    if verdict.outcome is Outcome.RATE_LIMITED:
        return RateLimitError(f"rate limit exhausted{suffix}", reset_at=verdict.reset_at, **common)
    if verdict.outcome is Outcome.RETRY:
        return RetryableAPIError(f"gave up after retries ({verdict.reason}){suffix}", **common)
    token = f"the token in ${context.token_env}" if context.token_env else "the credentials"
    if status == 401:
        return AuthError(
            f"authentication failed: {token} was rejected (expired or revoked?){suffix}", **common
        )
    if status == 403:
        return AuthError(f"permission denied: {token} lacks access{suffix}", **common)
    if status == 404:
        what = f"repo {context.repo!r}" if context.repo else "resource"
        return NotFoundError(f"{what} not found, or {token} cannot see it{suffix}", **common)
    return FatalAPIError(f"request failed ({verdict.reason}){suffix}", **common)


class RateBudget:
    """The rate limit shared by every worker of one source (or one token).

    Workers call :meth:`before_request` before each request and :meth:`observe` with each
    response's headers. When a resource's remaining count reaches zero, or a secondary limit
    was hit, *every* worker waits, not only the one that saw it. Thread-safe.
    """

    def __init__(
        self,
        *,
        max_wait: float = 900.0,
        reserve: int = 0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_wait = max_wait
        self.reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._remaining: dict[str, int] = {}
        self._reset: dict[str, float] = {}
        self._paused_until = 0.0
        self.waited = 0.0

    def remaining(self, resource: str = "core") -> int | None:
        with self._lock:
            return self._remaining.get(resource)

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (a secondary limit applies to the whole token)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def before_request(self, resource: str = "core") -> None:
        """Wait for the budget if it is spent; raise RateLimitError if the wait is too long."""
        wait, reset_at = self._needed_wait(resource)
        if wait <= 0:
            return
        if wait > self.max_wait:
            raise RateLimitError(
                f"rate limit for {resource!r} spent; waiting {wait:.0f}s exceeds the maximum "
                f"of {self.max_wait:.0f}s (max_rate_limit_wait)",
                reset_at=reset_at,
            )
        deadline = self._clock() + wait
        self.waited += wait
        self._sleep(wait)
        with self._lock:
            # The wait is served: clear what caused it rather than trusting the clock, so an
            # injected (instant) sleep in tests behaves like a real one.
            if self._paused_until <= deadline:
                self._paused_until = 0.0
            if reset_at is not None:
                self._remaining.pop(resource, None)
                self._reset.pop(resource, None)

    def _needed_wait(self, resource: str) -> tuple[float, datetime | None]:
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            reset_at = None
            remaining = self._remaining.get(resource)
            reset = self._reset.get(resource)
            if remaining is not None and reset is not None and reset > now:
                if remaining <= self.reserve:
                    wait = max(wait, reset - now + 1.0)
                    reset_at = datetime.fromtimestamp(reset, UTC)
                else:
                    # Count this request now, so that concurrent workers do not all spend
                    # the last unit before any response comes back.
                    self._remaining[resource] = remaining - 1
            return wait, reset_at

    def observe(self, headers: Mapping[str, str], resource: str | None = None) -> None:
        """Learn the budget from a response's rate-limit headers."""
        remaining = rate_limit_remaining(headers)
        if remaining is None:
            return
        now = self._clock()
        reset = rate_limit_reset(headers, now)
        name = header(headers, "x-ratelimit-resource") or resource or "core"
        with self._lock:
            known_reset = self._reset.get(name)
            if reset is not None and (known_reset is None or abs(reset - known_reset) > 1):
                # A new window: the header's count is the truth.
                self._reset[name] = reset
                self._remaining[name] = remaining
            else:
                # Same window: responses may arrive out of order; the smaller count is newer.
                self._remaining[name] = min(remaining, self._remaining.get(name, remaining))
