"""The ``incidents`` stream: PagerDuty incidents created since the cursor's start, with their
service, urgency, priority, status and resolution time.

Requests, per run: the creation span from the cursor's start (the previous run's end less
``overlap_minutes``, held back to its oldest unresolved incident, at most
``open_lookback_days``) — or from the source's ``since``, or from the oldest incident (one
``date_range=all`` request) on a first run — to now, in windows of at most 180 days, each
costing one request per 100 incidents (at least one). A rerun with nothing new costs one
request: the one window from the held-back start to now.

Columns: ``incident_id`` is PagerDuty's id, ``severity`` the priority's name (``P1``..) when the
account uses priorities, ``service`` the service's name, ``labels`` hold ``service_id:<id>``,
``incident_number:<n>`` and ``team:<name>`` per team; ``resolved_at`` only when resolved.
``repo`` is the one repo the ``[[services]]`` catalogue gives the service (by name or id),
else the API host (``api.pagerduty.com``).

- https://developer.pagerduty.com/api-reference/9d0b4b12e36f9-list-incidents
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.store.catalogue import normal, repos_by_item
from deliverypulse.streams import Span, StreamRun, earliest, held_back, iso, latest, parse_time
from deliverypulse_pagerduty.api import JSONObject, PagerDuty, windows


def read_incidents(pd: PagerDuty, run: StreamRun) -> Iterator[Page]:
    """Incidents created in the span the cursor leaves to read, a page at a time."""
    api, settings = pd.api, pd.settings
    now = run.runtime.clock()
    overlap = timedelta(minutes=settings.overlap_minutes)
    lookback = timedelta(days=settings.open_lookback_days)
    cursor, start = run.cursor.resume(settings.filters, run.since, overlap)
    if start is None:  # a first run without since: start at the oldest incident there is
        oldest = api.oldest(run.repo)
        start = parse_time(oldest) if oldest else now
    lookup = repos_by_item(settings.catalogue)
    keep = settings.keep_services
    oldest_open: str | None = None
    for window_start, window_end in windows(start, now):
        for items in api.window(window_start, window_end, run.repo):
            chosen = [i for i in items if not keep or _service_names(i) & keep]
            oldest_open = earliest(
                oldest_open, *(i.get("created_at") for i in chosen if i.get("status") != "resolved")
            )
            rows = [
                _record(i, settings.host, lookup)
                for i in chosen
                if not cursor.unchanged(i.get("created_at"), i.get("updated_at"), overlap)
            ]
            reached = earliest(latest(*(i.get("created_at") for i in items)), iso(now))
            # A checkpoint: a resumed run reads again from here (and stores what it reads).
            mark = held_back(reached, oldest_open, lookback)
            yield Page(rows, cursor=Span(start=mark, filters=settings.filters))
    yield Page(
        [],
        cursor=Span(
            start=held_back(iso(now), oldest_open, lookback),
            read_from=iso(start),
            until=iso(now),
            filters=settings.filters,
        ),
    )


def _service_names(incident: Mapping[str, Any]) -> set[str]:
    service = incident.get("service") or {}
    return {normal(service[k]) for k in ("id", "summary") if service.get(k)}


def _record(
    incident: Mapping[str, Any], host: str, lookup: Mapping[str, tuple[str, ...]]
) -> JSONObject:
    service = incident.get("service") or {}
    repos: tuple[str, ...] = ()
    for name in (service.get("summary"), service.get("id")):
        if name and not repos:
            repos = lookup.get(normal(name), ())
    priority = incident.get("priority") or {}
    labels = [f"service_id:{service['id']}"] if service.get("id") else []
    if incident.get("incident_number") is not None:
        labels.append(f"incident_number:{incident['incident_number']}")
    labels += [f"team:{t['summary']}" for t in incident.get("teams") or [] if t.get("summary")]
    status = incident.get("status")
    return {
        "repo": repos[0] if len(repos) == 1 else host,
        "incident_id": incident.get("id"),
        "title": incident.get("title") or None,
        "created_at": incident.get("created_at"),
        "resolved_at": incident.get("resolved_at") if status == "resolved" else None,
        "severity": priority.get("summary") or priority.get("name") or None,
        "labels": labels,
        "url": incident.get("html_url"),
        "service": service.get("summary") or service.get("id"),
        "urgency": incident.get("urgency"),
        "status": status,
        "caused_by": None,
    }
