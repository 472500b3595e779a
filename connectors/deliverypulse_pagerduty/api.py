"""``GET /incidents`` as the stream reader uses it: creation windows within PagerDuty's
six-month limit, classic (offset) paging within its 10,000-record limit, and the cursor.

Every request sends ``since`` and ``until`` (so PagerDuty's default one-month range never
hides older incidents), ``sort_by=created_at:asc``, ``limit`` (at most 100) and ``offset``, and
the source's ``statuses[]``, ``urgencies[]`` and ``service_ids[]``. ``more`` in the body says
whether another page follows. A window holding more incidents than ``offset + limit <=
10,000`` lets it page is split where paging stopped: the rest of the window is read as a new
window from the last creation time seen (incidents seen twice are kept once).

A first run without the source's ``since`` asks once with ``date_range=all`` (which ignores
``since``/``until``) and ``limit=1`` for the oldest incident, and walks windows from there.

- https://developer.pagerduty.com/api-reference/9d0b4b12e36f9-list-incidents
- https://developer.pagerduty.com/docs/rest-api-v2/pagination/ (classic pagination)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from deliverypulse.errors import DataError
from deliverypulse.http import HTTPClient
from deliverypulse.streams import iso, offset_walk
from deliverypulse_pagerduty.settings import Settings

JSONObject = dict[str, Any]
#: PagerDuty's maximum ``since``..``until`` range is six months; 180 days is always within it.
WINDOW = timedelta(days=180)
#: Classic pagination serves ``offset + limit`` up to 10,000.
MAX_OFFSET = 10_000


class PagerDuty(Protocol):
    """The connector as the stream reader sees it."""

    @property
    def api(self) -> IncidentsAPI: ...

    @property
    def settings(self) -> Settings: ...


def windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` in consecutive windows of at most :data:`WINDOW`."""
    while start < end:
        stop = min(start + WINDOW, end)
        yield start, stop
        start = stop


class IncidentsAPI:
    """Reads ``/incidents`` through the core's HTTP client (its retries and waits)."""

    def __init__(self, client: HTTPClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def _filters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.settings.statuses:
            params["statuses[]"] = list(self.settings.statuses)
        if self.settings.urgencies:
            params["urgencies[]"] = list(self.settings.urgencies)
        if self.settings.service_ids:
            params["service_ids[]"] = list(self.settings.service_ids)
        return params

    def oldest(self, repo: str | None = None) -> str | None:
        """The creation time of the oldest incident the filters select (one request)."""
        params = {
            **self._filters(),
            "date_range": "all",
            "sort_by": "created_at:asc",
            "limit": 1,
            "offset": 0,
        }
        data = self.client.get("/incidents", params, repo=repo).data
        incidents = data.get("incidents") if isinstance(data, dict) else None
        first = incidents[0] if incidents and isinstance(incidents[0], dict) else {}
        created = first.get("created_at")
        return str(created) if created else None

    def window(
        self, start: datetime, end: datetime, repo: str | None = None
    ) -> Iterator[list[JSONObject]]:
        """Every incident created in ``[start, end)``, oldest first, a page at a time, each once."""
        filters = self._filters()

        def fetch(since: datetime | None, offset: int) -> tuple[list[JSONObject], bool]:
            params = {
                **filters,
                "since": iso(since or start),
                "until": iso(end),
                "sort_by": "created_at:asc",
                "limit": self.settings.page_size,
                "offset": offset,
            }
            data = self.client.get("/incidents", params, repo=repo).data
            body = data if isinstance(data, dict) else {}
            items = [i for i in body.get("incidents") or [] if isinstance(i, dict)]
            return items, bool(body.get("more"))

        def too_many(since: datetime | None) -> DataError:
            return DataError(
                f"more than {MAX_OFFSET:,} incidents created at {iso(since or start)}: "
                "narrow the source with urgencies, statuses or services",
                table="incidents",
            )

        yield from offset_walk(
            fetch,
            since=start,
            limit=self.settings.page_size,
            max_offset=MAX_OFFSET,
            created="created_at",
            too_many=too_many,
        )
