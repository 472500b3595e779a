"""The ``test_runs`` stream (GitHub Actions workflow runs), and a named workflow's runs as
deployments; both from the REST list, a hundred runs per request, newest first.

The first page is a conditional request: when no run started or changed since the last
collection, GitHub answers 304 and the stream costs one request that the rate limit ignores.

- https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-repository
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.rules import AUTOMATION
from deliverypulse.streams import NewestFirst, Step, StreamRun, WalkCursor, seconds_between
from deliverypulse_github.api import GitHub, rest_fetch, resumed

#: Newest first by creation; a run still queued or running keeps the watermark back (two days
#: at most) so that its conclusion is read when it comes.
WALK = NewestFirst(
    "created_at",
    unfinished=lambda run: run.get("status") != "completed",
    lookback=timedelta(days=2),
)
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


def _walk_runs(github: GitHub, run: StreamRun) -> Iterator[Step[WalkCursor]]:
    fetch = rest_fetch(
        github.client,
        f"/repos/{run.repo}/actions/runs",
        {"per_page": 100},
        run.repo,
        items_key="workflow_runs",
    )
    return WALK.walk(fetch, resumed(run.cursor), run.since)


def read_test_runs(github: GitHub, run: StreamRun) -> Iterator[Page]:
    for step in _walk_runs(github, run):
        yield Page([test_run_record(r) for r in step.items], step.cursor)


def test_run_record(run: Mapping[str, Any]) -> dict[str, Any]:
    """One ``test_runs`` row from a REST workflow run."""
    started = run.get("run_started_at") or run.get("created_at")
    finished = run.get("updated_at") if run.get("status") == "completed" else None
    duration = seconds_between(started, finished)
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


def read_workflow_deployments(github: GitHub, run: StreamRun, workflow: str) -> Iterator[Page]:
    for step in _walk_runs(github, run):
        records = [
            _deployment_from_run(r, workflow) for r in step.items if _is_workflow(r, workflow)
        ]
        yield Page(records, step.cursor)


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
        "is_rollback": None,  # GitHub marks no run as a rollback; the core decides from order
        "url": run.get("html_url"),
        "creator": (run.get("actor") or {}).get("login"),
        "started_by": AUTOMATION,  # a workflow run, whoever triggered it
        "updated_at": run.get("updated_at"),
    }
