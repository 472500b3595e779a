"""What every stream reader of the GitHub connector uses: the connector as readers see it, small
accessors for GraphQL nodes, and the two fetch adapters that turn GitHub's pages into the
core's :class:`~deliverypulse.streams.RawPage` values for a ``NewestFirst`` walk.

- https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api (endCursor)
- https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api (Link)
- https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
  (conditional requests: a 304 does not count against the primary rate limit)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from deliverypulse.http import HTTPClient
from deliverypulse.streams import RawPage, WalkCursor
from deliverypulse_github.settings import Settings

JSONObject = dict[str, Any]
#: ``fetch(after, etag)``: what ``NewestFirst.walk`` pages through.
Fetch = Callable[[str | None, str | None], Iterable[RawPage]]


class GitHub(Protocol):
    """The connector as a stream reader sees it: one HTTP client and the source's settings."""

    @property
    def client(self) -> HTTPClient: ...

    @property
    def settings(self) -> Settings: ...


def split_repo(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    return owner, name


def login(actor: Mapping[str, Any] | None) -> str | None:
    if not actor:
        return None
    value = actor.get("login")
    return str(value) if value else None


def nodes(connection: Mapping[str, Any] | None) -> list[JSONObject]:
    if not connection:
        return []
    return [n for n in connection.get("nodes") or [] if n]


def repository_variables(repo: str, first: int) -> JSONObject:
    """The ``$owner``, ``$name`` and ``$first`` variables of a repository query."""
    owner, name = split_repo(repo)
    return {"owner": owner, "name": name, "first": first}


def graphql_pages(
    client: HTTPClient,
    query: str,
    variables: Mapping[str, Any],
    path: Sequence[str],
    *,
    repo: str,
    after: str | None = None,
    allow_partial: bool = False,
) -> Iterator[tuple[JSONObject, RawPage]]:
    """A GraphQL connection's pages from ``after`` on, each with the whole ``data`` it came in
    (a deployments page also carries the environments)."""
    for data, connection in client.graphql_pages(
        query, variables, path, after=after, repo=repo, allow_partial=allow_partial
    ):
        info = connection.get("pageInfo") or {}
        token = info.get("endCursor") if info.get("hasNextPage") else None
        yield data, RawPage(nodes(connection), next=token)


def graphql_fetch(client: HTTPClient, query: str, connection: str, repo: str, first: int) -> Fetch:
    """A newest-first connection of ``repo`` (``repository.<connection>``) as a ``fetch``
    (GraphQL has no ETags to send)."""
    variables = repository_variables(repo, first)
    path = ("repository", connection)

    def fetch(after: str | None, etag: str | None) -> Iterator[RawPage]:
        for _, raw in graphql_pages(client, query, variables, path, repo=repo, after=after):
            yield raw

    return fetch


def rest_fetch(
    client: HTTPClient,
    path: str,
    params: Mapping[str, Any],
    repo: str,
    items_key: str | None = None,
) -> Fetch:
    """A newest-first REST list as a ``fetch``: Link header to Link header, the first page
    conditional on ``etag`` (a 304 ends the walk with nothing new); ``after`` is a next URL."""

    def fetch(after: str | None, etag: str | None) -> Iterator[RawPage]:
        responses = (
            client.paginate(after, repo=repo)  # a next URL already carries the parameters
            if after
            else client.paginate(path, params, etag=etag, repo=repo)
        )
        for response in responses:
            if response.not_modified:
                yield RawPage([], not_modified=True)
                return
            data = response.data
            items = data.get(items_key, []) if items_key and isinstance(data, dict) else data
            found = [item for item in items or [] if isinstance(item, dict)]
            yield RawPage(found, next=response.next_url, etag=response.etag)

    return fetch


def resumed(cursor: WalkCursor) -> WalkCursor:
    """A saved cursor as the walk takes it: one written before the core kept unfinished items
    in ``open`` kept them in ``extra["open"]``."""
    extra = dict(cursor.extra)
    legacy = extra.pop("open", None)
    if legacy is None:
        return cursor
    return replace(cursor.note_open(str(legacy)), extra=extra)
