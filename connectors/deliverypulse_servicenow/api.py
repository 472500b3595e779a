"""The Table API as the stream readers use it: ``GET /api/now/table/{table}`` pages, the
record's values and display values, ServiceNow's times, and a cursor of several walks.

Every request asks for ``sysparm_display_value=all`` and ``sysparm_exclude_reference_link=
true``, so every field comes back as ``{"display_value": ..., "value": ...}``: ``value`` is
what the database holds (choice codes such as ``-1`` or ``normal``, a reference's sys_id, a
time as ``YYYY-MM-DD HH:MM:SS`` in UTC) and ``display_value`` what a person reads (a
configuration item's or an approver's name, a change's number, the entries of a journal field
such as ``work_notes``, which have no database value). ``false`` would need a second request
per record for names and journal text; ``true`` would give times in the integration user's
time zone and display format. Only the fields the connector uses are asked for
(``sysparm_fields``).

Paging: ``sysparm_query=...^ORDERBYsys_updated_on^ORDERBYsys_id`` with ``sysparm_limit`` (the
largest page the instance allows; it caps the limit itself) and ``sysparm_offset``. A page is
asked for ``PAGE_OVERLAP`` records before the end of the previous one, and records are
de-duplicated by sys_id, because a record updated during a walk moves to the end of the order
and shifts the ones behind it forward; the ``Link`` (``rel="next"``) and ``X-Total-Count``
headers say whether there is more.

- https://www.servicenow.com/docs/bundle/latest/page/integrate/inbound-rest/concept/c_TableAPI.html
- https://developer.servicenow.com/blog.do?p=/post/dot-walking-in-the-rest-table-api-2/
- https://support.servicenow.com/kb?id=kb_article_view&sysparm_article=KB0534905 (Table API FAQs)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from deliverypulse.errors import DataError
from deliverypulse.http import HTTPClient, next_link
from deliverypulse.http.policy import header
from deliverypulse.streams import parse_time
from deliverypulse_servicenow.settings import Settings

JSONObject = dict[str, Any]
#: Records asked for again at the start of each next page (see the module docstring).
PAGE_OVERLAP = 50
#: sys_ids per ``sys_idIN...`` request (keeps URLs well under common 8 KB limits).
IDS_PER_REQUEST = 100
SN_TIME = "%Y-%m-%d %H:%M:%S"


class ServiceNow(Protocol):
    """The connector as a stream reader sees it."""

    @property
    def api(self) -> TableAPI: ...

    @property
    def settings(self) -> Settings: ...


def value(record: Mapping[str, Any], name: str) -> str:
    """A field's database value ("" when empty or missing), whatever the display mode."""
    raw = record.get(name)
    if isinstance(raw, dict):
        raw = raw.get("value")
    return "" if raw is None else str(raw)


def display(record: Mapping[str, Any], name: str) -> str:
    """A field's display value ("" when empty or missing)."""
    raw = record.get(name)
    if isinstance(raw, dict):
        raw = raw.get("display_value", raw.get("value"))
    return "" if raw is None else str(raw)


def sn_time(text: str) -> str | None:
    """ServiceNow's ``YYYY-MM-DD HH:MM:SS`` (UTC) as ISO-8601 with ``Z``; a date alone is
    midnight UTC; None for an empty value."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            parsed = datetime.strptime(text, "%Y-%m-%d")
        else:
            parsed = datetime.strptime(text, SN_TIME)
    except ValueError:
        raise DataError(f"not a ServiceNow time: {text!r}", table="servicenow") from None
    return parsed.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def query_time(iso_time: str) -> str:
    """An ISO time as an encoded query's value (text times in queries are UTC)."""
    return parse_time(iso_time).astimezone(UTC).strftime(SN_TIME)


def updated_at(record: Mapping[str, Any]) -> str | None:
    return sn_time(value(record, "sys_updated_on"))


def sys_id(record: Mapping[str, Any]) -> str:
    return value(record, "sys_id")


class TableAPI:
    """Reads tables of one instance through the core's HTTP client (its retries and waits)."""

    def __init__(self, client: HTTPClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def path(self, table: str) -> str:
        return f"/api/now/table/{table}"

    def pages(
        self, table: str, fields: Iterable[str], query: str, *, repo: str | None = None
    ) -> Iterator[list[JSONObject]]:
        """Every record matching ``query`` (ordering included), one page at a time, each
        record once."""
        limit = self.settings.page_size
        params = {
            "sysparm_query": query,
            "sysparm_fields": ",".join(fields),
            "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true",
            "sysparm_limit": str(limit),
        }
        seen: set[str] = set()
        offset = 0
        while True:
            response = self.client.get(
                self.path(table), {**params, "sysparm_offset": str(offset)}, repo=repo
            )
            data = response.data if isinstance(response.data, dict) else {}
            items = [r for r in data.get("result") or [] if isinstance(r, dict)]
            fresh = [r for r in items if sys_id(r) not in seen]
            seen.update(sys_id(r) for r in fresh)
            if fresh:
                yield fresh
            if not items or not _more(response.headers, offset, len(items), limit):
                return
            step = len(items) - PAGE_OVERLAP if len(items) > PAGE_OVERLAP else len(items)
            offset += step

    def updated_after(
        self, table: str, fields: Iterable[str], condition: str = "", *, repo: str | None = None
    ) -> Callable[[str | None], Iterator[list[JSONObject]]]:
        """The ``fetch`` of an ``UpdatedAfter`` walk: records oldest update first, from the
        lower bound the walk gives."""
        chosen = tuple(fields)

        def fetch(after: str | None) -> Iterator[list[JSONObject]]:
            parts = [condition] if condition else []
            if after:
                parts.append(f"sys_updated_on>={query_time(after)}")
            parts += ["ORDERBYsys_updated_on", "ORDERBYsys_id"]
            return self.pages(table, chosen, "^".join(parts), repo=repo)

        return fetch

    def by_ids(
        self,
        table: str,
        fields: Iterable[str],
        column: str,
        ids: Iterable[str],
        condition: str = "",
        *,
        repo: str | None = None,
    ) -> list[JSONObject]:
        """Records whose ``column`` is one of ``ids`` (``IDS_PER_REQUEST`` ids a request)."""
        wanted = sorted({i for i in ids if i})
        chosen = tuple(fields)
        found: list[JSONObject] = []
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            chunk = ",".join(wanted[start : start + IDS_PER_REQUEST])
            parts = [condition] if condition else []
            query = "^".join([*parts, f"{column}IN{chunk}", "ORDERBYsys_id"])
            for page in self.pages(table, chosen, query, repo=repo):
                found.extend(page)
        return found


def _more(headers: Mapping[str, str], offset: int, count: int, limit: int) -> bool:
    """Whether another page follows: the Link header's ``next``, else X-Total-Count, else a
    full page."""
    link = header(headers, "link")
    if link is not None:
        return next_link(link) is not None
    total = header(headers, "x-total-count")
    if total is not None and total.strip().isdigit():
        return offset + count < int(total)
    return count >= limit
