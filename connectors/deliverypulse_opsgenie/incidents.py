"""The ``incidents`` stream: Opsgenie incidents (``BaseIncident``) or alerts (``BaseAlert``)
created since the cursor's start, as ``incidents`` rows.

Requests, per run: one span from the cursor's start (the previous run's end less
``overlap_minutes``, held back to its oldest open item, at most ``open_lookback_days``) — or
from the source's ``since``, or from the beginning on a first run — to now, one request per
100 items (at least one). A rerun with nothing new costs one request.

Columns: ``incident_id`` is Opsgenie's id (``tiny:<tinyId>`` is a label), ``severity`` the
priority (``P1``..``P5``), ``status`` Opsgenie's (incidents: open, resolved, closed; alerts:
open, closed), ``labels`` the tags. ``service`` is the first of the item's
``impactedServices`` (sent by the Incident API, not in the OpenAPI description) and tags that
the ``services`` option or the ``[[services]]`` catalogue names. ``resolved_at``: the
OpenAPI's ``BaseIncident`` has no resolution time, so a resolved or closed incident's
``updatedAt`` (its last change: the resolution, unless a note came later); a closed alert's
``createdAt`` plus ``report.closeTime`` (milliseconds it took to close), else its
``updatedAt``. ``urgency`` and ``url`` are not given by the API. ``repo`` is the one repo the
catalogue gives the service, else the API host.

- https://docs.opsgenie.com/docs/incident-api#list-incidents
- https://docs.opsgenie.com/docs/alert-api#list-alerts
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.store.catalogue import normal, repos_by_item
from deliverypulse.streams import (
    Span,
    StreamRun,
    earliest,
    held_back,
    iso,
    latest,
    shift,
)
from deliverypulse_opsgenie.api import JSONObject, Opsgenie


def read_incidents(og: Opsgenie, run: StreamRun) -> Iterator[Page]:
    """Items created in the span the cursor leaves to read, a page at a time."""
    api, settings = og.api, og.settings
    now = run.runtime.clock()
    overlap = timedelta(minutes=settings.overlap_minutes)
    lookback = timedelta(days=settings.open_lookback_days)
    cursor, start = run.cursor.resume(settings.filters, run.since, overlap)
    lookup = repos_by_item(settings.catalogue)
    known = settings.keep_services | frozenset(lookup)
    oldest_open: str | None = None
    for items in api.span(start, now, run.repo):
        chosen = [i for i in items if not settings.services or _names(i) & settings.keep_services]
        oldest_open = earliest(
            oldest_open, *(i.get("createdAt") for i in chosen if i.get("status") == "open")
        )
        rows = [
            _record(i, settings.api, settings.host, known, lookup)
            for i in chosen
            if not cursor.unchanged(i.get("createdAt"), i.get("updatedAt"), overlap)
        ]
        reached = earliest(latest(*(i.get("createdAt") for i in items)), iso(now))
        mark = held_back(reached, oldest_open, lookback)
        yield Page(rows, cursor=Span(start=mark, filters=settings.filters))
    yield Page(
        [],
        cursor=Span(
            start=held_back(iso(now), oldest_open, lookback),
            read_from=iso(start) if start else None,
            until=iso(now),
            filters=settings.filters,
        ),
    )


def _candidates(item: Mapping[str, Any]) -> list[str]:
    impacted = item.get("impactedServices")
    services = [str(s) for s in impacted] if isinstance(impacted, list) else []
    return services + [str(t) for t in item.get("tags") or []]


def _names(item: Mapping[str, Any]) -> set[str]:
    return {normal(name) for name in _candidates(item)}


def _resolved_at(item: Mapping[str, Any], api: str) -> str | None:
    status = item.get("status")
    if api == "incidents":
        return item.get("updatedAt") if status in ("resolved", "closed") else None
    if status != "closed":
        return None
    report = item.get("report") or {}
    close = report.get("closeTime") if isinstance(report, dict) else None
    created = item.get("createdAt")
    if isinstance(close, int) and not isinstance(close, bool) and created:
        return shift(str(created), seconds=close / 1000)
    return item.get("updatedAt")


def _record(
    item: Mapping[str, Any],
    api: str,
    host: str,
    known: frozenset[str],
    lookup: Mapping[str, tuple[str, ...]],
) -> JSONObject:
    service = next((n for n in _candidates(item) if normal(n) in known), None)
    repos = lookup.get(normal(service), ()) if service else ()
    tags = [str(t) for t in item.get("tags") or []]
    labels = [*tags, f"tiny:{item['tinyId']}"] if item.get("tinyId") else tags
    return {
        "repo": repos[0] if len(repos) == 1 else host,
        "incident_id": item.get("id"),
        "title": item.get("message") or None,
        "created_at": item.get("createdAt"),
        "resolved_at": _resolved_at(item, api),
        "severity": item.get("priority") or None,
        "labels": labels,
        "url": None,
        "service": service,
        "urgency": None,
        "status": item.get("status"),
        "caused_by": None,
    }
