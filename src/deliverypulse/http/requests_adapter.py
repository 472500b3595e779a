"""A ``requests`` adapter that carries out :mod:`deliverypulse.http.policy`, for connectors
built on clients that speak through ``requests`` (python-gitlab, PyGithub).

Build the client with its own retries and rate-limit waits off and hand it a session from
:func:`policy_session`: the adapter then waits for the shared
:class:`~deliverypulse.http.policy.RateBudget`, retries 5xx, dropped connections and truncated
JSON with the policy's backoff, obeys 429 ``Retry-After`` / ``RateLimit-Reset``, and raises
deliverypulse errors (naming the source, the token variable, status, URL and request id; never
the token) when it gives up. The client therefore only ever sees a final, successful response,
and the core policy is the one owner of the retry decision.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from deliverypulse.errors import APIError, RetryableAPIError
from deliverypulse.http import policy as http_policy
from deliverypulse.http.stats import RequestStats

log = logging.getLogger("deliverypulse.http.requests")

Sleep = Callable[[float], None]

#: Failures of the connection itself: the request may not have reached the provider, or its answer
#: was cut off. All are worth another try.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class PolicyAdapter(HTTPAdapter):
    """A ``requests`` adapter that sends each request until the policy says it is done.

    ``context`` names the source and token variable for error messages; ``repo_of_thread``
    returns the project the calling thread is collecting (for "project not found" messages).
    """

    def __init__(
        self,
        *,
        context: http_policy.ErrorContext,
        policy: http_policy.RetryPolicy,
        budget: http_policy.RateBudget,
        stats: RequestStats,
        sleep: Sleep = time.sleep,
        timeout: float = 60.0,
        repo_of_thread: Callable[[], str | None] = lambda: None,
    ) -> None:
        super().__init__(max_retries=0, pool_maxsize=16)
        self.context = context
        self.policy = policy
        self.budget = budget
        self.stats = stats
        self.sleep = sleep
        self.timeout = timeout
        self.repo_of_thread = repo_of_thread

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        attempt = 0
        rate_limit_waits = 0
        while True:
            attempt += 1
            self.budget.before_request()
            try:
                response = super().send(
                    request,
                    stream=False,
                    timeout=timeout or self.timeout,
                    verify=verify,
                    cert=cert,
                    proxies=proxies,
                )
                body = response.content  # read it all here, so a cut-off body is retried here
            except CONNECTION_ERRORS as error:
                self.stats.record(None, url=url, is_retry=attempt > 1)
                reason = f"connection failed ({type(error).__name__})"
                self._back_off_or_raise(attempt, reason, url, None)
                continue
            self.stats.record(response.status_code, url=url, is_retry=attempt > 1)
            self.budget.observe(response.headers)
            verdict = http_policy.classify(
                response.status_code, response.headers, url, _text(body, response.status_code)
            )
            if verdict.ok and _is_truncated_json(response, body):
                verdict = http_policy.Verdict(
                    http_policy.Outcome.RETRY, "truncated JSON body", status=response.status_code
                )
            if verdict.ok:
                return response
            request_id = http_policy.header(response.headers, "x-request-id") or http_policy.header(
                response.headers, "x-github-request-id"
            )
            if verdict.outcome is http_policy.Outcome.FATAL:
                raise self._error(verdict, url, request_id, _provider_message(body))
            if (
                verdict.wait_seconds is not None
                or verdict.outcome is http_policy.Outcome.RATE_LIMITED
            ):
                # A rate limit (429 with Retry-After / RateLimit-Reset) holds back every worker
                # of the source, not only this one: pause the shared budget and wait on it.
                rate_limit_waits += 1
                wait = verdict.wait_seconds if verdict.wait_seconds is not None else 60.0
                if rate_limit_waits > self.policy.max_rate_limit_waits:
                    raise self._error(verdict, url, request_id, "still rate-limited")
                if wait > self.policy.max_rate_limit_wait:
                    limited = http_policy.Verdict(
                        http_policy.Outcome.RATE_LIMITED,
                        verdict.reason,
                        wait,
                        verdict.reset_at,
                        verdict.status,
                    )
                    raise self._error(
                        limited,
                        url,
                        request_id,
                        f"waiting {wait:.0f}s exceeds max_rate_limit_wait "
                        f"({self.policy.max_rate_limit_wait:.0f}s)",
                    )
                log.info("%s: %s; waiting %.0fs", self.context.source, verdict.reason, wait)
                self.stats.record_wait(wait)
                self.budget.pause(wait)
                attempt -= 1  # a rate-limit wait is not a failed attempt
                continue
            self._back_off_or_raise(attempt, verdict.reason, url, verdict, request_id)

    def _back_off_or_raise(
        self,
        attempt: int,
        reason: str,
        url: str,
        verdict: http_policy.Verdict | None,
        request_id: str | None = None,
    ) -> None:
        if attempt >= self.policy.max_attempts:
            if verdict is None:
                raise RetryableAPIError(
                    f"gave up after {attempt} attempts: {reason}",
                    url=url,
                    source=self.context.source,
                )
            raise self._error(verdict, url, request_id, f"gave up after {attempt} attempts")
        delay = self.policy.backoff(attempt)
        log.info("%s: %s on %s; retrying in %.1fs", self.context.source, reason, url, delay)
        self.stats.record_wait(delay)
        self.sleep(delay)

    def _error(
        self, verdict: http_policy.Verdict, url: str, request_id: str | None, detail: str
    ) -> APIError:
        context = http_policy.ErrorContext(
            source=self.context.source,
            token_env=self.context.token_env,
            repo=self.repo_of_thread(),
        )
        return http_policy.error_for(
            verdict, url=url, request_id=request_id, context=context, detail=detail
        )


def _text(body: bytes, status: int) -> str:
    """The body as text, only where :func:`http_policy.classify` reads it (403 and 429)."""
    if status not in (403, 429):
        return ""
    return body[:2000].decode("utf-8", "replace")


def _is_truncated_json(response: requests.Response, body: bytes) -> bool:
    """A JSON response that does not parse was cut off on the way (a proxy, a dropped
    connection with a matching Content-Length); asking again is the cure."""
    if "json" not in response.headers.get("content-type", ""):
        return False
    try:
        json.loads(body)
    except ValueError:
        return True
    return False


def _provider_message(body: bytes) -> str:
    """The provider's own one-line reason (``{"message": ...}`` or ``{"error": ...}``), if any."""
    try:
        data = json.loads(body[:4000])
    except ValueError:
        return ""
    if isinstance(data, dict):
        message = data.get("message") or data.get("error") or ""
        return str(message)[:200]
    return ""


def policy_session(adapter: PolicyAdapter) -> requests.Session:
    """A session that sends every request through ``adapter`` (http and https alike)."""
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
