"""What every stream reader of one GitHub source shares: the HTTP client and the options."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.http import HTTPClient
from deliverypulse.patterns import BOT_PATTERN, HOTFIX_PATTERN
from deliverypulse_github.cursor import WalkCursor, iso, latest, parse_time

DEFAULT_HOTFIX = HOTFIX_PATTERN
DEFAULT_BOTS = BOT_PATTERN


@dataclass(frozen=True)
class StreamContext:
    """Shared, read-only settings of one source."""

    client: HTTPClient
    production: re.Pattern[str]
    hotfix: re.Pattern[str]
    bots: re.Pattern[str]
    incident_labels: tuple[str, ...]
    deployments: str
    since: datetime | None

    def is_bot(self, actor: Mapping[str, Any] | None) -> bool:
        if not actor:
            return False
        return actor.get("__typename") == "Bot" or bool(self.bots.search(login(actor) or ""))

    def floor(self, cursor: WalkCursor) -> str | None:
        """The oldest time still worth reading: the watermark, or the source's ``since``."""
        configured = iso(self.since) if self.since else None
        return latest(cursor.since, configured)


def split_repo(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    return owner, name


def login(actor: Mapping[str, Any] | None) -> str | None:
    if not actor:
        return None
    value = actor.get("login")
    return str(value) if value else None


def older_than(value: str | None, floor: str | None) -> bool:
    return bool(value and floor and parse_time(value) < parse_time(floor))


def nodes(connection: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not connection:
        return []
    return [n for n in connection.get("nodes") or [] if n]


def walk_graphql(
    ctx: StreamContext,
    query: str,
    variables: Mapping[str, Any],
    path: Sequence[str],
    cursor: WalkCursor,
    time_of: str | Callable[[Mapping[str, Any]], str | None],
    repo: str,
    on_data: Callable[[dict[str, Any]], None] | None = None,
    allow_partial: bool = False,
) -> Iterator[tuple[list[dict[str, Any]], WalkCursor, bool]]:
    """Walk a newest-first GraphQL connection down to the watermark.

    Yields (nodes newer than the floor, cursor to save after storing them, finished). The
    cursor of an unfinished page resumes the walk; the last one moves the watermark.
    """
    floor = ctx.floor(cursor)
    when = time_of if callable(time_of) else _field(time_of)
    for data, connection in ctx.client.graphql_pages(
        query, variables, path, after=cursor.after, repo=repo, allow_partial=allow_partial
    ):
        if on_data is not None:
            on_data(data)
        batch = nodes(connection)
        fresh = [n for n in batch if not older_than(when(n), floor)]
        reached_floor = len(fresh) < len(batch)
        page_info = connection.get("pageInfo") or {}
        cursor = cursor.advance(latest(*(when(n) for n in fresh)))
        if reached_floor or not page_info.get("hasNextPage"):
            yield fresh, cursor.complete(), True
            return
        cursor = WalkCursor(
            cursor.since, cursor.high, page_info.get("endCursor"), cursor.etag, cursor.extra
        )
        yield fresh, cursor, False


def _field(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    def get(node: Mapping[str, Any]) -> str | None:
        value = node.get(name)
        return str(value) if value else None

    return get


def page(
    records: list[dict[str, Any]], cursor: WalkCursor | None, table: str | None = None
) -> Page:
    return Page(records=records, cursor=cursor.dump() if cursor else None, table=table)
