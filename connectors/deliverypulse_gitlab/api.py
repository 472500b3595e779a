"""One GitLab source's API access: python-gitlab clients (one per worker thread) over the
policy transport, and a page walker that follows GitLab's pagination.

GitLab paginates by offset (``page``/``per_page`` with ``X-Next-Page``, ``X-Total`` and a
``Link`` header) or, on the endpoints that offer it, by keyset (``pagination=keyset``, next page
only in ``Link: <...>; rel="next"``). The walker follows ``Link`` when present and falls back to
``X-Next-Page``, so both work; it yields one page at a time so callers can stop early.

- https://docs.gitlab.com/api/rest/#pagination
- https://docs.gitlab.com/api/rest/#keyset-based-pagination
- https://python-gitlab.readthedocs.io/en/stable/api-usage-advanced.html
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

import gitlab
import gitlab.exceptions

from deliverypulse.errors import APIError, AuthError, NotFoundError
from deliverypulse.http.policy import ErrorContext, RateBudget, RetryPolicy
from deliverypulse.http.requests_adapter import PolicyAdapter, policy_session
from deliverypulse.http.stats import RequestStats
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime
from deliverypulse_gitlab.transport import endpoint_of, translate_gitlab_error

PER_PAGE = 100
#: Per-object calls (a deployment's merge requests, a pipeline's test report summary) in
#: flight at once for one project. They share the source's rate budget, which holds every
#: worker back when GitLab says the budget is spent.
PER_OBJECT_CONCURRENCY = 4
JSONObject = dict[str, Any]
Item = TypeVar("Item")
Result = TypeVar("Result")


class GitLabAPI:
    """What every stream of one source shares: clients, the rate budget and request counts.

    Waits (backoffs, rate limits) sleep and read the time through ``runtime``, so tests and
    the benchmark run them without waiting.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str | None,
        source: str,
        token_env: str | None,
        max_rate_limit_wait: float = 900.0,
        runtime: Runtime = DEFAULT_RUNTIME,
        policy: RetryPolicy | None = None,
        projects_at_once: int = 1,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.context = ErrorContext(source=source, token_env=token_env)
        self.policy = policy or RetryPolicy(max_rate_limit_wait=max_rate_limit_wait)
        self.budget = RateBudget(
            max_wait=max_rate_limit_wait,
            sleep=runtime.sleep,
            clock=lambda: runtime.clock().timestamp(),
        )
        self.stats = RequestStats(endpoint=endpoint_of)
        self.runtime = runtime
        self._local = threading.local()
        self._clients: list[gitlab.Gitlab] = []
        self._lock = threading.Lock()
        # One pool for the source's per-object calls, so its threads (and their clients and
        # connections) are reused, and all projects together stay within a fixed bound.
        self._per_object_workers = PER_OBJECT_CONCURRENCY * max(1, projects_at_once)
        self._pool: ThreadPoolExecutor | None = None

    # The project the calling thread works on, for error messages.
    @property
    def current_repo(self) -> str | None:
        return getattr(self._local, "repo", None)

    @current_repo.setter
    def current_repo(self, repo: str | None) -> None:
        self._local.repo = repo

    def client(self) -> gitlab.Gitlab:
        """This thread's python-gitlab client (a ``requests.Session`` is not shared across
        threads); all of them share the budget, the policy and the counts."""
        client: gitlab.Gitlab | None = getattr(self._local, "client", None)
        if client is None:
            adapter = PolicyAdapter(
                context=self.context,
                policy=self.policy,
                budget=self.budget,
                stats=self.stats,
                sleep=self.runtime.sleep,
                repo_of_thread=lambda: self.current_repo,
            )
            client = gitlab.Gitlab(
                self.url,
                private_token=self._token,
                session=policy_session(adapter),
                retry_transient_errors=False,
                keep_base_url=True,
                per_page=PER_PAGE,
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[list[JSONObject]]:
        """Every page of a list endpoint, one list of objects at a time."""
        query: dict[str, Any] = {"per_page": PER_PAGE, **(params or {})}
        next_url: str | None = path
        while next_url:
            response = self._get(next_url, query)
            data = _json(response, self.context)
            if not isinstance(data, list):
                raise translate_gitlab_error(
                    gitlab.exceptions.GitlabParsingError(error_message=f"{path}: not a list"),
                    self.context,
                )
            yield data
            link = response.links.get("next", {}).get("url")
            if link:
                next_url, query = link, {}
            elif response.headers.get("X-Next-Page"):
                query = {**query, "page": response.headers["X-Next-Page"]}
            else:
                next_url = None

    def updated_after(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Callable[[str | None], Iterator[list[JSONObject]]]:
        """The ``fetch`` of an :class:`~deliverypulse.streams.UpdatedAfter` walk over a list
        endpoint: its pages oldest update first, from the lower bound the walk gives."""

        def fetch(updated_after: str | None) -> Iterator[list[JSONObject]]:
            query = {**(params or {}), "order_by": "updated_at", "sort": "asc"}
            if updated_after:
                query["updated_after"] = updated_after
            return self.pages(path, query)

        return fetch

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One object (or one unpaginated list)."""
        return _json(self._get(path, dict(params or {})), self.context)

    def get_optional(self, path: str, params: Mapping[str, Any] | None = None) -> Any | None:
        """Like :meth:`get`, but None where the feature is missing or not licensed (404/403):
        protected environments, say, are a Premium feature."""
        try:
            return self.get(path, params)
        except (NotFoundError, AuthError):
            return None

    def text_optional(self, path: str, params: Mapping[str, Any] | None = None) -> str | None:
        """A raw text endpoint's body (a repository file), or None where there is none (a 404
        but GitLab's "404 Project Not Found": a missing project still raises)."""
        try:
            response = self._get(path, dict(params or {}))
        except NotFoundError as error:
            if "Project Not Found" in str(error):
                raise
            return None
        return str(response.text)

    def each(self, fetch: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """``fetch`` of every item, in the items' order, on the source's per-object pool
        (``PER_OBJECT_CONCURRENCY`` per project collected at once). The first error raised by
        any fetch is raised here."""
        if len(items) <= 1:
            return [fetch(item) for item in items]
        repo = self.current_repo

        def in_worker(item: Item) -> Result:
            self.current_repo = repo  # for this worker thread's error messages
            return fetch(item)

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._per_object_workers, thread_name_prefix="gitlab-each"
                )
            pool = self._pool
        return list(pool.map(in_worker, items))

    def _get(self, path: str, query: dict[str, Any]) -> Any:
        try:
            # python-gitlab must not retry or wait on its own: the adapter owns that decision.
            # (``obey_rate_limit`` is a per-request argument since python-gitlab 4.)
            return self.client().http_request(
                "get", path, query_data=query, obey_rate_limit=False, retry_transient_errors=False
            )
        except APIError:
            raise
        except gitlab.exceptions.GitlabError as error:
            raise translate_gitlab_error(error, self._thread_context()) from None

    def _thread_context(self) -> ErrorContext:
        return ErrorContext(self.context.source, self.context.token_env, self.current_repo)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            for client in self._clients:
                client.session.close()
            self._clients.clear()


def project_path(repo: str) -> str:
    """``/projects/group%2Fapp``: a project addressed by its URL-encoded path."""
    return f"/projects/{quote(repo, safe='')}"


def username(user: Mapping[str, Any] | None) -> str | None:
    """A GitLab user object's ``username``."""
    if not user:
        return None
    value = user.get("username")
    return str(value) if value else None


def _json(response: Any, context: ErrorContext) -> Any:
    try:
        return response.json()
    except ValueError:
        raise translate_gitlab_error(
            gitlab.exceptions.GitlabParsingError(error_message="response is not JSON"), context
        ) from None
