"""The list endpoints as the stream reader uses them: items created in a span, oldest first,
in offset pages, and the cursor.

Every request sends ``query`` (``createdAt>=<ms> AND createdAt<<ms>``, epoch milliseconds, and
the source's own ``query``), ``sort=createdAt``, ``order=asc``, ``limit`` (at most 100) and
``offset``; ``paging.next`` in the body says whether another page follows. Opsgenie has no
range limit, so a span is one window; the connector never pages past ``offset + limit``
:data:`MAX_OFFSET` (a bound of ours: the OpenAPI gives none) and reads the rest of the span from
the last creation time seen (items seen twice are kept once).

- https://docs.opsgenie.com/docs/incident-api#list-incidents
- https://docs.opsgenie.com/docs/alert-api#list-alerts
- https://docs.opsgenie.com/docs/pagination
- https://support.atlassian.com/opsgenie/docs/search-queries-for-alerts/ (``createdAt`` terms)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from deliverypulse.errors import DataError
from deliverypulse.http import HTTPClient
from deliverypulse.streams import iso, maybe_time
from deliverypulse_opsgenie.settings import Settings

JSONObject = dict[str, Any]
#: The deepest ``offset + limit`` the connector asks for in one query.
MAX_OFFSET = 20_000


class Opsgenie(Protocol):
    """The connector as the stream reader sees it."""

    @property
    def api(self) -> ListAPI: ...

    @property
    def settings(self) -> Settings: ...


@dataclass(frozen=True)
class Span:
    """Where the walk stands (the same rules as the PagerDuty connector's cursor).

    start: the next run reads items created from here (minus the overlap): the end of the last
        complete walk, held back to its oldest open item (within the look-back).
    read_from, until: the creation span the last complete walk read, and when; an item
        created in it and not updated since (before ``until`` less the overlap) is unchanged.
    filters: the query's filters when it was written (other filters: start over).
    """

    start: str | None = None
    read_from: str | None = None
    until: str | None = None
    filters: str | None = None

    @classmethod
    def load(cls, text: str | None) -> Span:
        try:
            raw = json.loads(text) if text else {}
        except ValueError:
            raw = {}  # a cursor from another version or a hand edit: start over
        if not isinstance(raw, dict):
            return cls()
        known = ("start", "read_from", "until", "filters")
        return cls(**{k: str(raw[k]) for k in known if raw.get(k)})

    def dump(self) -> str:
        values = {k: v for k, v in self.__dict__.items() if v}
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def unchanged(self, created_at: Any, updated_at: Any, overlap: timedelta) -> bool:
        created, updated = maybe_time(created_at), maybe_time(updated_at)
        read_from, until = maybe_time(self.read_from), maybe_time(self.until)
        if not (created and updated and read_from and until):
            return False
        return read_from <= created < until - overlap and updated < until - overlap


def millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class ListAPI:
    """Reads ``/v1/incidents`` or ``/v2/alerts`` through the core's HTTP client."""

    def __init__(self, client: HTTPClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def span(
        self, start: datetime | None, end: datetime, repo: str | None = None
    ) -> Iterator[list[JSONObject]]:
        """Every item created in ``[start, end)`` (from the beginning when ``start`` is None),
        oldest first, a page at a time, each once."""
        limit = self.settings.page_size
        seen: set[str] = set()
        since = start
        while True:
            offset, last = 0, None
            while offset + limit <= MAX_OFFSET:
                terms = [f"createdAt>={millis(since)}"] if since else []
                terms.append(f"createdAt<{millis(end)}")
                if self.settings.query:
                    terms.append(f"({self.settings.query})")
                params = {
                    "query": " AND ".join(terms),
                    "sort": "createdAt",
                    "order": "asc",
                    "limit": limit,
                    "offset": offset,
                }
                data = self.client.get(self.settings.path, params, repo=repo).data
                body = data if isinstance(data, dict) else {}
                items = [i for i in body.get("data") or [] if isinstance(i, dict)]
                fresh = [i for i in items if str(i.get("id")) not in seen]
                seen.update(str(i.get("id")) for i in fresh)
                if fresh:
                    yield fresh
                if items:
                    last = maybe_time(items[-1].get("createdAt")) or last
                paging = body.get("paging")
                if not items or not (isinstance(paging, dict) and paging.get("next")):
                    return
                offset += len(items)
            if last is None or (since is not None and last <= since):
                raise DataError(
                    f"more than {MAX_OFFSET:,} {self.settings.api} created at "
                    f"{iso(since) if since else 'one instant'}: narrow the source's query",
                    table="incidents",
                )
            since = last
