"""The ``test_runs`` stream (GitHub Actions workflow runs), and a named workflow's runs as
deployments; both from the REST list, a hundred runs per request, newest first.

The first page is a conditional request: when no run started or changed since the last
collection, GitHub answers 304 and the stream costs one request that the rate limit ignores.

- https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-repository
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from deliverypulse.connector import Page
from deliverypulse_github.context import StreamContext, older_than, page
from deliverypulse_github.cursor import WalkCursor, earliest, latest, parse_time, shift

#: Runs still queued or running keep the watermark back this far at most.
OPEN_LOOKBACK_DAYS = 2
CONCLUSION_STATUS = {
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "cancelled": "cancelled",
    "skipped": "inactive",
    "neutral": "inactive",
    "stale": "inactive",
    "action_required": "blocked",
}
RUNNING_STATUS = {
    "waiting": "waiting",
    "in_progress": "in_progress",
    "pending": "queued",
    "queued": "queued",
    "requested": "queued",
}


def walk_rest(
    ctx: StreamContext,
    path: str,
    params: Mapping[str, Any],
    cursor: WalkCursor,
    items_key: str | None,
    time_of: str,
    repo: str,
) -> Iterator[tuple[list[dict[str, Any]], WalkCursor, bool]]:
    """Walk a newest-first REST list down to the watermark, Link header by Link header.

    Only a completed walk stores the first page's ETag: a cut-short walk restarts from the
    top next time (its pages are upserted again, never duplicated).
    """
    floor = ctx.floor(cursor)
    first_etag: str | None = None
    for number, response in enumerate(
        ctx.client.paginate(path, params, etag=cursor.etag, repo=repo)
    ):
        if response.not_modified:
            yield [], cursor, True
            return
        if number == 0:
            first_etag = response.etag
        data = response.data
        items = data.get(items_key, []) if items_key and isinstance(data, dict) else data
        items = [i for i in items or [] if isinstance(i, dict)]
        fresh = [i for i in items if not older_than(i.get(time_of), floor)]
        cursor = cursor.advance(latest(*(i.get(time_of) for i in fresh)))
        if len(fresh) < len(items) or not response.next_url:
            yield fresh, replace(cursor.complete(), etag=first_etag), True
            return
        yield fresh, replace(cursor, etag=None), False


def _walk_runs(
    ctx: StreamContext, repo: str, cursor_text: str | None
) -> Iterator[tuple[list[dict[str, Any]], WalkCursor]]:
    """Workflow runs, holding the watermark back for runs that had not completed."""
    cursor = WalkCursor.load(cursor_text)
    open_since = cursor.extra.get("open")
    start = replace(cursor, extra={})
    walk = walk_rest(
        ctx,
        f"/repos/{repo}/actions/runs",
        {"per_page": 100},
        start,
        "workflow_runs",
        "created_at",
        repo,
    )
    for runs, next_cursor, finished in walk:
        if next_cursor is start:
            yield runs, cursor  # not modified: the cursor stays as it was
            return
        open_since = earliest(
            open_since, *(r.get("created_at") for r in runs if r.get("status") != "completed")
        )
        extra = {"open": open_since} if open_since else {}
        if finished:
            since = next_cursor.since
            if open_since and since:
                since = earliest(since, latest(open_since, shift(since, days=-OPEN_LOOKBACK_DAYS)))
            next_cursor = replace(next_cursor, since=since, extra={})
        else:
            next_cursor = replace(next_cursor, extra=extra)
        yield runs, next_cursor


def read_test_runs(ctx: StreamContext, repo: str, cursor_text: str | None) -> Iterator[Page]:
    for runs, cursor in _walk_runs(ctx, repo, cursor_text):
        yield page([test_run_record(r) for r in runs], cursor)


def test_run_record(run: Mapping[str, Any]) -> dict[str, Any]:
    """One ``test_runs`` row from a REST workflow run."""
    started = run.get("run_started_at") or run.get("created_at")
    finished = run.get("updated_at") if run.get("status") == "completed" else None
    duration = None
    if started and finished:
        duration = (parse_time(str(finished)) - parse_time(str(started))).total_seconds()
    return {
        "run_id": str(run["id"]),
        "name": run.get("name"),
        "sha": run.get("head_sha"),
        "ref": run.get("head_branch"),
        "event": run.get("event"),
        "status": run.get("status"),
        "conclusion": run.get("conclusion"),
        "created_at": run.get("created_at"),
        "started_at": started,
        "finished_at": finished,
        "duration_s": duration,
        "attempt": run.get("run_attempt"),
        "url": run.get("html_url"),
    }


def _is_workflow(run: Mapping[str, Any], workflow: str) -> bool:
    """A run of ``workflow``, named either by its display name or its file (deploy.yml)."""
    file = str(run.get("path") or "").split("@", 1)[0].rsplit("/", 1)[-1]
    return run.get("name") == workflow or file == workflow


def read_workflow_deployments(
    ctx: StreamContext, repo: str, cursor_text: str | None, workflow: str
) -> Iterator[Page]:
    for runs, cursor in _walk_runs(ctx, repo, cursor_text):
        records = [_deployment_from_run(r, workflow) for r in runs if _is_workflow(r, workflow)]
        yield page(records, cursor)


def _deployment_from_run(run: Mapping[str, Any], workflow: str) -> dict[str, Any]:
    if run.get("status") == "completed":
        status = CONCLUSION_STATUS.get(str(run.get("conclusion")), "failure")
    else:
        status = RUNNING_STATUS.get(str(run.get("status")), "queued")
    return {
        "deployment_id": f"run-{run['id']}",
        "environment": workflow,
        "is_production": True,
        "sha": run.get("head_sha"),
        "ref": run.get("head_branch"),
        "created_at": run.get("created_at"),
        "finished_at": run.get("updated_at") if run.get("status") == "completed" else None,
        "status": status,
        "approval_required": None,
        "is_rollback": False,
        "url": run.get("html_url"),
        "creator": (run.get("actor") or {}).get("login"),
        "updated_at": run.get("updated_at"),
    }
