"""The ``incidents`` stream: ``incident`` records updated since the watermark, with their
service, urgency, status and the change request that caused them (``caused_by``).

``repo`` is the one repo the service catalogue gives the incident's configuration item or
business service (else the instance). ``severity`` is ServiceNow's priority as ``P1``..``P5``.
``correlation_id`` is the id an integration stored on the incident (the PagerDuty and Opsgenie
integrations store their incident's id there); the metrics count such a pair once.

- https://www.servicenow.com/docs/bundle/latest/page/product/incident-management/concept/c_IncidentManagement.html
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.store.catalogue import normal, repos_by_item
from deliverypulse.streams import StreamRun, UpdatedAfter, Walks
from deliverypulse_servicenow.api import (
    JSONObject,
    ServiceNow,
    display,
    sn_time,
    sys_id,
    updated_at,
    value,
)

INCIDENT_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "opened_at",
    "resolved_at",
    "closed_at",
    "state",
    "urgency",
    "priority",
    "category",
    "cmdb_ci",
    "business_service",
    "caused_by",
    "correlation_id",
    "sys_updated_on",
)
STATUSES = {
    "1": "new",
    "2": "in_progress",
    "3": "on_hold",
    "6": "resolved",
    "7": "closed",
    "8": "canceled",
}
URGENCIES = {"1": "high", "2": "medium", "3": "low"}


def read_incidents(sn: ServiceNow, run: StreamRun) -> Iterator[Page]:
    """Incidents updated since the watermark, a page at a time."""
    api, settings = sn.api, sn.settings
    walks: Walks = run.cursor
    overlap = timedelta(minutes=settings.overlap_minutes)
    walk = UpdatedAfter(id_of=sys_id, time_of=updated_at, overlap=overlap)
    fetch = api.updated_after("incident", INCIDENT_FIELDS, settings.incident_query, repo=run.repo)
    lookup = repos_by_item(settings.services)
    for step in walk.walk(fetch, walks.get("incident"), run.since):
        if step.finished:
            break  # its cursor is the last page's
        walks = walks.with_walk("incident", step.cursor)
        rows = [_record(i, settings.url, run.repo, lookup) for i in step.items]
        yield Page(rows, cursor=walks)


def _record(
    incident: Mapping[str, Any],
    instance: str,
    fallback_repo: str,
    lookup: Mapping[str, tuple[str, ...]],
) -> JSONObject:
    service = display(incident, "business_service")
    item = display(incident, "cmdb_ci")
    repos: tuple[str, ...] = ()
    for name in (item, service):
        if name and not repos:
            repos = lookup.get(normal(name), ())
    status = value(incident, "state")
    priority = value(incident, "priority")
    category = value(incident, "category")
    return {
        "repo": repos[0] if len(repos) == 1 else fallback_repo,
        "incident_id": value(incident, "number"),
        "title": display(incident, "short_description") or None,
        "created_at": sn_time(value(incident, "opened_at")),
        "resolved_at": sn_time(value(incident, "resolved_at"))
        or sn_time(value(incident, "closed_at")),
        "severity": f"P{priority}" if priority else None,
        "labels": [category] if category else [],
        "url": f"{instance}/incident.do?sys_id={sys_id(incident)}",
        "service": service or item or None,
        "urgency": URGENCIES.get(value(incident, "urgency")),
        "status": STATUSES.get(status, display(incident, "state").lower() or None),
        "caused_by": display(incident, "caused_by") or None,
        "correlation_id": value(incident, "correlation_id") or None,
    }
