"""The ``incidents`` stream: issues of type incident (GitLab's incident management), or issues
with any of the configured ``incident_labels``.

One ``updated_after`` walk per label (GitLab's ``labels`` filter means "all of these", so each
label is its own walk with its own watermark), or one walk of ``issue_type=incident``.

- https://docs.gitlab.com/api/issues/#list-project-issues
- https://docs.gitlab.com/operations/incident_management/incidents/
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from deliverypulse.connector import Page
from deliverypulse_gitlab.api import JSONObject, project_path
from deliverypulse_gitlab.context import StreamContext
from deliverypulse_gitlab.cursor import Watermark

INCIDENT_TYPE = "issue_type=incident"


def read_incidents(ctx: StreamContext, repo: str, cursor: str | None) -> Iterator[Page]:
    walks = _load(cursor)
    filters = [f"labels={label}" for label in ctx.incident_labels] or [INCIDENT_TYPE]
    for name in filters:
        state = Watermark.load(walks.get(name))
        key, _, value = name.partition("=")
        params: dict[str, Any] = {
            key: value,
            "scope": "all",  # leaving out ``state`` lists open and closed ones alike
            "order_by": "updated_at",
            "sort": "asc",
        }
        updated_after = state.query_from(ctx.since)
        if updated_after:
            params["updated_after"] = updated_after
        for page in ctx.api.pages(f"{project_path(repo)}/issues", params):
            rows = [_record(i) for i in page if state.is_new(str(i["id"]), i.get("updated_at"))]
            state = state.advance([(str(i["id"]), i.get("updated_at") or "") for i in page])
            walks[name] = state.dump()
            yield Page(rows, cursor=json.dumps(walks, sort_keys=True))


def _load(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


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
