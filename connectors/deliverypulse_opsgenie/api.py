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

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from deliverypulse.errors import DataError
from deliverypulse.http import HTTPClient
from deliverypulse.streams import iso, offset_walk
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

        def fetch(since: datetime | None, offset: int) -> tuple[list[JSONObject], bool]:
            terms = [f"createdAt>={millis(since)}"] if since else []
            terms.append(f"createdAt<{millis(end)}")
            if self.settings.query:
                terms.append(f"({self.settings.query})")
            params = {
                "query": " AND ".join(terms),
                "sort": "createdAt",
                "order": "asc",
                "limit": self.settings.page_size,
                "offset": offset,
            }
            data = self.client.get(self.settings.path, params, repo=repo).data
            body = data if isinstance(data, dict) else {}
            items = [i for i in body.get("data") or [] if isinstance(i, dict)]
            paging = body.get("paging")
            return items, isinstance(paging, dict) and bool(paging.get("next"))

        def too_many(since: datetime | None) -> DataError:
            return DataError(
                f"more than {MAX_OFFSET:,} {self.settings.api} created at "
                f"{iso(since) if since else 'one instant'}: narrow the source's query",
                table="incidents",
            )

        yield from offset_walk(
            fetch,
            since=start,
            limit=self.settings.page_size,
            max_offset=MAX_OFFSET,
            created="createdAt",
            too_many=too_many,
        )
