"""The ``incidents`` stream: issues carrying one of the configured labels (default
``incident``), updated since the last run, a hundred per REST request.

GitHub's ``labels`` filter wants *all* the labels given, so each incident label is its own
conditional walk (usually a 304). Pull requests, which the issues API also lists, are skipped.

- https://docs.github.com/en/rest/issues/issues#list-repository-issues
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.streams import NewestFirst, StreamRun, WalkCursor
from deliverypulse_github.api import GitHub, rest_fetch

_SEVERITY = re.compile(r"(?i)^(sev(erity)?[-: ]?\s*\w+|p[0-4])$")
#: Issues newest-updated first (and ``since`` the floor, so GitHub sends only those).
WALK = NewestFirst("updated_at")


def read_incidents(github: GitHub, run: StreamRun) -> Iterator[Page]:
    """One walk per incident label; the stream's cursor keeps each label's cursor."""
    per_label: dict[str, str] = dict(run.cursor.extra.get("labels") or {})
    for label in github.settings.incident_labels:
        cursor = WalkCursor.load(per_label.get(label))
        params: dict[str, Any] = {
            "labels": label,
            "state": "all",
            "sort": "updated",
            "direction": "desc",
            "per_page": 100,
        }
        floor = cursor.floor(run.since)
        if floor:
            params["since"] = floor
        fetch = rest_fetch(github.client, f"/repos/{run.repo}/issues", params, run.repo)
        for step in WALK.walk(fetch, cursor, run.since):
            per_label[label] = step.cursor.dump()
            records = [incident_record(i) for i in step.items if "pull_request" not in i]
            yield Page(records, WalkCursor(extra={"labels": dict(per_label)}))


def incident_record(issue: Mapping[str, Any]) -> dict[str, Any]:
    """One ``incidents`` row from a REST issue; a ``sev1``/``severity:high``/``P1`` label
    gives the severity."""
    labels = [
        str(label.get("name") if isinstance(label, dict) else label)
        for label in issue.get("labels") or []
    ]
    severity = next((label for label in labels if _SEVERITY.match(label)), None)
    return {
        "incident_id": str(issue["number"]),
        "title": issue.get("title"),
        "created_at": issue.get("created_at"),
        "resolved_at": issue.get("closed_at") if issue.get("state") == "closed" else None,
        "severity": severity,
        "labels": labels,
        "url": issue.get("html_url"),
    }
