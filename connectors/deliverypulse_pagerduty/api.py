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

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from deliverypulse.errors import DataError
from deliverypulse.http import HTTPClient
from deliverypulse.streams import iso, maybe_time
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


@dataclass(frozen=True)
class Span:
    """Where the incident walk stands.

    start: the next run reads incidents created from here (minus the overlap): the end of the
        last complete walk, held back to its oldest unresolved incident (within the look-back).
    read_from, until: the creation range the last complete walk read, and when; an incident
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
        """Whether the last complete walk stored this incident as it is now."""
        created, updated = maybe_time(created_at), maybe_time(updated_at)
        read_from, until = maybe_time(self.read_from), maybe_time(self.until)
        if not (created and updated and read_from and until):
            return False
        return read_from <= created < until - overlap and updated < until - overlap


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
        limit = self.settings.page_size
        seen: set[str] = set()
        since = start
        while True:
            offset, last = 0, None
            while True:
                if offset + limit > MAX_OFFSET:
                    break  # split: the rest of the window from the last creation time seen
                params = {
                    **self._filters(),
                    "since": iso(since),
                    "until": iso(end),
                    "sort_by": "created_at:asc",
                    "limit": limit,
                    "offset": offset,
                }
                data = self.client.get("/incidents", params, repo=repo).data
                body = data if isinstance(data, dict) else {}
                items = [i for i in body.get("incidents") or [] if isinstance(i, dict)]
                fresh = [i for i in items if str(i.get("id")) not in seen]
                seen.update(str(i.get("id")) for i in fresh)
                if fresh:
                    yield fresh
                if items:
                    last = maybe_time(items[-1].get("created_at")) or last
                if not items or not body.get("more"):
                    return
                offset += len(items)
            if last is None or last <= since:
                raise DataError(
                    f"more than {MAX_OFFSET:,} incidents created at {iso(since)}: "
                    "narrow the source with urgencies, statuses or services",
                    table="incidents",
                )
            since = last
