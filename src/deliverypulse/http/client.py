"""An httpx client that carries out :mod:`deliverypulse.http.policy`: retries, rate-limit waits,
Link-header and GraphQL-cursor pagination, conditional GETs (ETag / If-None-Match) and request
counting for tests and benchmarks.

One client is shared by all the worker threads of a source (httpx.Client is thread-safe), so
they share one connection pool and one :class:`~deliverypulse.http.policy.RateBudget`.

- https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
- https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
  (conditional requests: a 304 does not count against the primary rate limit)
- https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from deliverypulse.errors import GraphQLAPIError, NotFoundError
from deliverypulse.http.policy import (
    ErrorContext,
    Outcome,
    RateBudget,
    RetryPolicy,
    Verdict,
    classify,
    error_for,
    header,
    rate_limit_reset,
)
from deliverypulse.http.stats import RequestStats
from deliverypulse.redaction import redact

log = logging.getLogger("deliverypulse.http")

JSON = Any
#: Returns the current token (or None); called per request so that short-lived tokens
#: (GitHub App installation tokens) can be refreshed underneath the client.
TokenSource = Callable[[], str | None]


@dataclass(frozen=True)
class JSONResponse:
    """A successful (or not-modified) response with its decoded body."""

    status: int
    data: JSON
    headers: Mapping[str, str]
    url: str

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return header(self.headers, "etag")

    @property
    def next_url(self) -> str | None:
        return next_link(header(self.headers, "link"))


def next_link(link_header: str | None) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 Link header, as GitHub and GitLab send it."""
    if not link_header:
        return None
    for part in link_header.split(","):
        pieces = part.split(";")
        target = pieces[0].strip()
        if target.startswith("<") and target.endswith(">"):
            rels = {p.strip().replace('"', "") for p in pieces[1:]}
            if "rel=next" in rels:
                return target[1:-1]
    return None


class HTTPClient:
    """Sends requests under the policy and returns decoded JSON; raises deliverypulse errors.

    ``sleep`` and ``clock`` are injectable so tests never wait for real.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: TokenSource | None = None,
        source: str | None = None,
        token_env: str | None = None,
        policy: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        max_in_flight: int = 8,
        headers: Mapping[str, str] | None = None,
        graphql_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.graphql_url = graphql_url or f"{self.base_url}/graphql"
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.budget = budget or RateBudget(
            max_wait=self.policy.max_rate_limit_wait, clock=clock, sleep=self._recorded_sleep
        )
        self.context = ErrorContext(source=source, token_env=token_env)
        self.stats = RequestStats()
        self._token = token or (lambda: None)
        self._slots = threading.BoundedSemaphore(max(1, max_in_flight))
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers=dict(headers or {}),
            follow_redirects=True,
        )

    # -- public API -----------------------------------------------------------------------

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        etag: str | None = None,
        repo: str | None = None,
    ) -> JSONResponse:
        """GET a JSON document; with ``etag``, a 304 comes back as ``not_modified``."""
        extra = {"If-None-Match": etag} if etag else {}
        return self._send("GET", self._absolute(url), params=params, headers=extra, repo=repo)

    def paginate(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        etag: str | None = None,
        repo: str | None = None,
    ) -> Iterator[JSONResponse]:
        """Follow ``rel="next"`` Link headers. Only the first page is conditional: if it is
        not modified, a single 304 page is yielded and paging stops."""
        response = self.get(url, params, etag=etag, repo=repo)
        yield response
        while not response.not_modified and response.next_url:
            response = self.get(response.next_url, repo=repo)  # next already has the params
            yield response

    def graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        repo: str | None = None,
        allow_partial: bool = False,
    ) -> dict[str, Any]:
        """Run a GraphQL query and return its ``data``.

        Errors with no data raise :class:`GraphQLAPIError` (or NotFoundError when GitHub says
        NOT_FOUND). With ``allow_partial`` the data that did come back is returned and each
        error is logged with its path, so a missing object does not sink a whole batch.
        """
        body = {"query": query, "variables": dict(variables or {})}
        response = self._send("POST", self.graphql_url, json_body=body, repo=repo)
        payload = response.data if isinstance(response.data, dict) else {}
        errors = payload.get("errors") or []
        data = payload.get("data")
        if errors:
            summary = "; ".join(_describe_graphql_error(e) for e in errors[:5])
            if data and allow_partial:
                log.warning(
                    "%s: GraphQL returned partial data: %s",
                    self.context.source or "graphql",
                    redact(summary),
                )
            else:
                kinds = {str(e.get("type", "")) for e in errors if isinstance(e, dict)}
                common: dict[str, Any] = {
                    "url": self.graphql_url,
                    "source": self.context.source,
                    "request_id": _request_id(response.headers),
                }
                if "NOT_FOUND" in kinds:
                    what = f"repo {repo!r}" if repo else "object"
                    raise NotFoundError(f"{what} not found: {summary}", **common)
                raise GraphQLAPIError(f"GraphQL errors: {summary}", errors=errors, **common)
        if not isinstance(data, dict):
            raise GraphQLAPIError(
                "GraphQL response has no data", url=self.graphql_url, source=self.context.source
            )
        return data

    def graphql_pages(
        self,
        query: str,
        variables: Mapping[str, Any],
        connection_path: Sequence[str],
        *,
        after: str | None = None,
        repo: str | None = None,
        allow_partial: bool = False,
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Page through the connection at ``connection_path`` with ``$after``; yields (data,
        connection). The caller may stop early; ``connection["pageInfo"]["endCursor"]`` is
        the resume point."""
        while True:
            data = self.graphql(
                query, {**variables, "after": after}, repo=repo, allow_partial=allow_partial
            )
            connection = dig(data, connection_path)
            if connection is None:
                what = f"repo {repo!r}" if repo else ".".join(connection_path)
                raise NotFoundError(
                    f"{what} not found (empty GraphQL result)",
                    url=self.graphql_url,
                    source=self.context.source,
                )
            yield data, connection
            page_info = connection.get("pageInfo") or {}
            if not page_info.get("hasNextPage") or not page_info.get("endCursor"):
                return
            after = page_info["endCursor"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the retry loop -------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        repo: str | None = None,
    ) -> JSONResponse:
        is_graphql = url == self.graphql_url
        resource = "graphql" if is_graphql else "core"
        context = ErrorContext(self.context.source, self.context.token_env, repo)
        attempt = 0
        limit_waits = 0
        tries = 0
        while True:
            attempt += 1
            self.budget.before_request(resource)
            response, verdict, data = self._attempt(method, url, params, headers, json_body)
            self.stats.record(
                response.status_code if response is not None else None,
                url=url,
                is_graphql=is_graphql,
                is_retry=tries > 0,
            )
            tries += 1
            if response is not None:
                self.budget.observe(response.headers, resource)
            if verdict.ok and response is not None:
                return JSONResponse(response.status_code, data, response.headers, str(response.url))
            shown_url = str(response.url) if response is not None else _with_params(url, params)
            request_id = _request_id(response.headers) if response is not None else None
            if verdict.outcome is Outcome.FATAL:
                raise error_for(
                    verdict,
                    url=shown_url,
                    request_id=request_id,
                    context=context,
                    detail=_message(response),
                )
            if verdict.outcome is Outcome.RATE_LIMITED or verdict.wait_seconds is not None:
                limit_waits += 1
                attempt -= 1  # waiting out a limit is not a failed attempt
                wait = verdict.wait_seconds or 0.0
                if verdict.outcome is Outcome.RETRY:  # secondary limit: grow, add jitter
                    wait = self.policy.secondary_wait(wait, limit_waits)
                if wait > self.policy.max_rate_limit_wait or limit_waits > (
                    self.policy.max_rate_limit_waits
                ):
                    raise error_for(
                        Verdict(
                            Outcome.RATE_LIMITED,
                            verdict.reason,
                            wait,
                            verdict.reset_at,
                            verdict.status,
                        ),
                        url=shown_url,
                        request_id=request_id,
                        context=context,
                        detail=f"{verdict.reason}; would wait {wait:.0f}s, more than "
                        f"max_rate_limit_wait={self.policy.max_rate_limit_wait:.0f}s",
                    )
                log.info("%s: %s; waiting %.0fs", context.source or "http", verdict.reason, wait)
                self.budget.pause(wait)  # every worker of this token holds off
                continue
            if attempt >= self.policy.max_attempts:
                raise error_for(
                    verdict,
                    url=shown_url,
                    request_id=request_id,
                    context=context,
                    detail=_message(response),
                )
            delay = self.policy.backoff(attempt)
            log.info(
                "%s: %s; retry %d in %.1fs",
                context.source or "http",
                verdict.reason,
                attempt,
                delay,
            )
            self._recorded_sleep(delay)

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json_body: Any,
    ) -> tuple[httpx.Response | None, Verdict, JSON]:
        """One try: the response (None if the connection failed), its verdict and its JSON."""
        request_headers = dict(headers or {})
        token = self._token()
        if token:
            request_headers["Authorization"] = f"Bearer {token}"
        try:
            with self._slots:
                response = self._http.request(
                    method, url, params=params, headers=request_headers, json=json_body
                )
        except httpx.TransportError as error:  # refused, reset, dropped, timed out
            return None, Verdict(Outcome.RETRY, f"connection error ({type(error).__name__})"), None
        body = response.text if response.status_code in (403, 429) else ""
        verdict = classify(
            response.status_code, response.headers, str(response.url), body, now=self.clock()
        )
        data: JSON = None
        if verdict.ok and response.status_code != 304:
            try:
                data = orjson.loads(response.content) if response.content else None
            except ValueError:
                return (
                    response,
                    Verdict(
                        Outcome.RETRY, "truncated or invalid JSON body", status=response.status_code
                    ),
                    None,
                )
            if url == self.graphql_url and isinstance(data, dict):
                verdict = _graphql_rate_limit(data, response.headers, self.clock(), verdict)
        return response, verdict, data

    def _recorded_sleep(self, seconds: float) -> None:
        self.stats.record_wait(seconds)
        self.sleep(seconds)

    def _absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return f"{self.base_url}/{url.lstrip('/')}"


def _graphql_rate_limit(
    data: Mapping[str, Any], headers: Mapping[str, str], now: float, verdict: Verdict
) -> Verdict:
    """GitHub answers a spent GraphQL budget with 200 and an error of type RATE_LIMITED."""
    for error in data.get("errors") or []:
        if isinstance(error, dict) and error.get("type") == "RATE_LIMITED":
            reset = rate_limit_reset(headers, now)
            reset_at = datetime.fromtimestamp(reset, UTC) if reset else None
            wait = max(0.0, reset - now) + 1.0 if reset else 60.0
            return Verdict(
                Outcome.RATE_LIMITED, "GraphQL rate limit exhausted", wait, reset_at, status=200
            )
    return verdict


def dig(data: Any, path: Sequence[str]) -> Any:
    """``data[path[0]][path[1]]...``, or None as soon as a step is missing."""
    for step in path:
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data


def _request_id(headers: Mapping[str, str]) -> str | None:
    return header(headers, "x-github-request-id") or header(headers, "x-request-id")


def _message(response: httpx.Response | None) -> str:
    """The provider's own error message (GitHub and GitLab put it in ``message``; ServiceNow
    in ``{"error": {"message": ..., "detail": ...}, "status": "failure"}``)."""
    if response is None:
        return ""
    try:
        payload = response.json()
    except ValueError:
        return ""
    message = payload.get("message") if isinstance(payload, dict) else None
    envelope = payload.get("error") if isinstance(payload, dict) else None
    if not message and isinstance(envelope, dict) and envelope.get("message"):
        detail = envelope.get("detail")
        message = f"{envelope['message']}{f' ({detail})' if detail else ''}"
    return redact(str(message)[:300]) if message else ""


def _describe_graphql_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    path = ".".join(str(p) for p in error.get("path") or [])
    kind = error.get("type")
    text = str(error.get("message", "unknown error"))
    return f"{kind + ': ' if kind else ''}{text}{' at ' + path if path else ''}"


def _with_params(url: str, params: Mapping[str, Any] | None) -> str:
    return str(httpx.URL(url, params=dict(params))) if params else url
