"""The ``incidents`` stream: issues of type incident (GitLab's incident management), or issues
with any of the configured ``incident_labels``.

One ``updated_after`` walk per label (GitLab's ``labels`` filter means "all of these", so each
label is its own walk with its own watermark), or one walk of ``issue_type=incident``.

- https://docs.gitlab.com/api/issues/#list-project-issues
- https://docs.gitlab.com/operations/incident_management/incidents/
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.streams import StreamRun, UpdatedAfter, Walks
from deliverypulse_gitlab.api import JSONObject, project_path
from deliverypulse_gitlab.settings import Reading

INCIDENT_TYPE = "issue_type=incident"


def read_incidents(connector: Reading, run: StreamRun) -> Iterator[Page]:
    """Incident issues updated since each filter's watermark, a page at a time."""
    walks: Walks = run.cursor
    labels = connector.settings.incident_labels
    path = f"{project_path(run.repo)}/issues"
    for name in [f"labels={label}" for label in labels] or [INCIDENT_TYPE]:
        key, _, value = name.partition("=")
        # Leaving out ``state`` lists open and closed ones alike.
        fetch = connector.api.updated_after(path, {key: value, "scope": "all"})
        for step in UpdatedAfter().walk(fetch, walks.get(name), run.since):
            if step.finished:
                break  # its cursor is the last page's
            walks = walks.with_walk(name, step.cursor)
            yield Page([_record(i) for i in step.items], cursor=walks)


def _record(issue: Mapping[str, Any]) -> JSONObject:
    labels = [str(label) for label in issue.get("labels") or []]
    severity = issue.get("severity")
    if not severity or severity == "UNKNOWN":
        scoped = [
            label.split("::", 1)[1] for label in labels if label.lower().startswith("severity::")
        ]
        severity = scoped[0] if scoped else None
    return {
        "incident_id": str(issue["iid"]),
        "title": issue.get("title"),
        "created_at": issue.get("created_at"),
        "resolved_at": issue.get("closed_at"),
        "severity": str(severity).lower() if severity else None,
        "labels": labels,
        "url": issue.get("web_url"),
    }
