"""The ``change_requests`` stream: ``change_request`` records with what their approver rows
(``sysapproval_approver``) say, and the deployment references in their text.

Requests, per run: one ``updated_after`` walk of ``change_request`` and one of the approver
rows of change requests (``sysapproval.sys_class_name=change_request``), each from a little
before its own watermark (``overlap_minutes``: a change is updated long after it opens, and a
pipeline may write a sha into an old change). A change whose approver rows moved but which did
not is fetched by sys_id; on later runs, the approver rows of the changes to store are fetched
by ``sysapprovalIN`` (100 changes a request) so approvers and times are complete. A rerun with
nothing new costs one request per table.

Columns from approver rows: ``approvers`` (who approved), ``approval_requested_at`` (the first
row's creation: the first request, so a rejected-then-approved change counts its wait from
there), ``approved_at`` (the last approval, else the change's ``approval_set``), ``rejected_at``
(the last rejection, else ``approval_set`` if the change stands rejected). The rows carry no
"acted on" time of their own: a row's ``sys_updated_on`` is used.

- https://www.servicenow.com/docs/bundle/latest/page/product/change-management/concept/c_ITILChangeManagement.html
- https://www.servicenow.com/docs/bundle/latest/page/administer/service-administration/concept/c_Approvals.html
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.store.catalogue import normal, repos_by_item
from deliverypulse.streams import StreamRun, UpdatedAfter, Walks, latest, parse_time
from deliverypulse_servicenow.api import (
    JSONObject,
    ServiceNow,
    display,
    sn_time,
    sys_id,
    updated_at,
    value,
)
from deliverypulse_servicenow.references import references

CHANGE_FIELDS = (
    "sys_id",
    "number",
    "type",
    "state",
    "approval",
    "approval_set",
    "cab_required",
    "cab_date",
    "cab_date_time",
    "opened_at",
    "start_date",
    "end_date",
    "work_start",
    "work_end",
    "closed_at",
    "close_code",
    "cmdb_ci",
    "assignment_group",
    "short_description",
    "description",
    "implementation_plan",
    "close_notes",
    "work_notes",
    "sys_updated_on",
)
APPROVAL_FIELDS = ("sys_id", "sysapproval", "approver", "state", "sys_created_on", "sys_updated_on")
APPROVALS_OF_CHANGES = "sysapproval.sys_class_name=change_request"
#: ServiceNow's change states (choice values of ``change_request.state``).
STATES = {
    "-5": "new",
    "-4": "assess",
    "-3": "authorize",
    "-2": "scheduled",
    "-1": "implement",
    "0": "review",
    "3": "closed",
    "4": "canceled",
}
CHUNK = 1_000


def read_change_requests(sn: ServiceNow, run: StreamRun) -> Iterator[Page]:
    """Change requests updated (or whose approvals were) since the watermarks."""
    api, settings = sn.api, sn.settings
    walks: Walks = run.cursor
    first_run = not walks.walks
    overlap = timedelta(minutes=settings.overlap_minutes)
    walk = UpdatedAfter(id_of=sys_id, time_of=updated_at, overlap=overlap)
    changes: dict[str, JSONObject] = {}
    fetch = api.updated_after("change_request", CHANGE_FIELDS, settings.change_query, repo=run.repo)
    for step in walk.walk(fetch, walks.get("change_request"), run.since):
        changes.update((sys_id(c), c) for c in step.items)
        walks = walks.with_walk("change_request", step.cursor)
    rows: dict[str, list[JSONObject]] = defaultdict(list)
    fetch = api.updated_after(
        "sysapproval_approver", APPROVAL_FIELDS, APPROVALS_OF_CHANGES, repo=run.repo
    )
    for step in walk.walk(fetch, walks.get("sysapproval_approver"), run.since):
        for row in step.items:
            rows[value(row, "sysapproval")].append(row)
        walks = walks.with_walk("sysapproval_approver", step.cursor)
    # Changes whose approvals moved but which did not themselves.
    missing = sorted(set(rows) - set(changes))
    for change in api.by_ids("change_request", CHANGE_FIELDS, "sys_id", missing, repo=run.repo):
        changes[sys_id(change)] = change
    incomplete = [i for i, c in changes.items() if _may_lack_rows(c, rows.get(i), first_run, run)]
    if incomplete:
        for row in api.by_ids(
            "sysapproval_approver", APPROVAL_FIELDS, "sysapproval", incomplete, repo=run.repo
        ):
            known = rows[value(row, "sysapproval")]
            if sys_id(row) not in {sys_id(r) for r in known}:
                known.append(row)
    if not changes:
        if walks != run.cursor:
            yield Page([], cursor=walks)
        return
    lookup = repos_by_item(settings.services)
    records = [
        _record(c, rows.get(i, []), settings.url, run.repo, lookup) for i, c in changes.items()
    ]
    records.sort(key=lambda r: r["updated_at"] or "")
    for start in range(0, len(records), CHUNK):
        last = start + CHUNK >= len(records)
        yield Page(records[start : start + CHUNK], cursor=walks if last else None)


def _may_lack_rows(
    change: Mapping[str, Any], found: list[JSONObject] | None, first_run: bool, run: StreamRun
) -> bool:
    """Whether the approver rows read by the walk may not be all of ``change``'s."""
    if not first_run:
        return True  # its older rows were read by earlier runs, not this one
    if found:
        opened = sn_time(value(change, "opened_at"))
        return bool(run.since and opened and parse_time(opened) < run.since)
    return value(change, "approval") not in ("", "not requested", "not_required")


def _record(
    change: Mapping[str, Any],
    approvals: list[JSONObject],
    instance: str,
    fallback_repo: str,
    lookup: Mapping[str, tuple[str, ...]],
) -> JSONObject:
    approval = value(change, "approval")
    approval_set = sn_time(value(change, "approval_set"))
    approved = [r for r in approvals if value(r, "state") == "approved"]
    rejected = [r for r in approvals if value(r, "state") == "rejected"]
    requested = [t for r in approvals if (t := sn_time(value(r, "sys_created_on")))]
    approved_at = latest(*(updated_at(r) for r in approved))
    if approval == "approved":
        approved_at = approved_at or approval_set
    rejected_at = latest(*(updated_at(r) for r in rejected))
    if approval == "rejected":
        rejected_at = latest(rejected_at, approval_set)
    item = display(change, "cmdb_ci")
    repos = lookup.get(normal(item), ()) if item else ()
    cab = sn_time(value(change, "cab_date_time")) or sn_time(value(change, "cab_date"))
    state = value(change, "state")
    text = [
        display(change, name)
        for name in ("short_description", "description", "implementation_plan", "close_notes")
    ]
    text.append(display(change, "work_notes"))  # a journal: only its display value has text
    return {
        "repo": repos[0] if len(repos) == 1 else fallback_repo,
        "change_request_id": value(change, "number"),
        "number": value(change, "number"),
        "type": value(change, "type") or None,
        "state": STATES.get(state, display(change, "state").lower() or None),
        "approval": approval or None,
        "cab_required": _bool(value(change, "cab_required")),
        "cab_at": cab,
        "opened_at": sn_time(value(change, "opened_at")),
        "approval_requested_at": min(requested, key=parse_time) if requested else None,
        "approved_at": approved_at,
        "rejected_at": rejected_at,
        "approvers": sorted({n for r in approved if (n := display(r, "approver"))}),
        "planned_start": sn_time(value(change, "start_date")),
        "planned_end": sn_time(value(change, "end_date")),
        "work_start": sn_time(value(change, "work_start")),
        "work_end": sn_time(value(change, "work_end")),
        "closed_at": sn_time(value(change, "closed_at")),
        "close_code": value(change, "close_code") or None,
        "configuration_item": item or None,
        "assignment_group": display(change, "assignment_group") or None,
        "title": display(change, "short_description") or None,
        "url": f"{instance}/change_request.do?sys_id={sys_id(change)}",
        "references": references(text),
        "sys_id": sys_id(change),
        "updated_at": updated_at(change),
    }


def _bool(text: str) -> bool | None:
    if text in ("true", "false"):
        return text == "true"
    return None
