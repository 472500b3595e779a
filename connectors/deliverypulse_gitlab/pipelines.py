"""The ``test_runs`` stream: pipelines with timings from their jobs, and test report summary
counts where GitLab has them.

Requests: the pipeline list by ``updated_after`` (one page per 100 pipelines); one walk of the
project's jobs, newest first with keyset pagination, back to the oldest updated pipeline (a
pipeline's start and finish are its first job's start and last job's finish; no GET per
pipeline); and one ``test_report_summary`` per pipeline worth it: by default the pipelines
behind production deployments (``test_reports = "production"``; the ``deployments`` stream,
declared before this one, shares their ids), or every finished pipeline
(``"all"``), or none. A production pipeline older than the updated ones costs one more GET for
its own row.

- https://docs.gitlab.com/api/pipelines/#list-project-pipelines
- https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline
- https://docs.gitlab.com/api/jobs/#list-project-jobs
- https://docs.gitlab.com/api/pipelines/#get-a-test-report-summary-for-a-pipeline
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.streams import StreamRun, UpdatedAfter, Watermark, parse_time, seconds_between
from deliverypulse_gitlab.api import PER_PAGE, GitLabAPI, JSONObject, project_path
from deliverypulse_gitlab.deployments import PRODUCTION_PIPELINES
from deliverypulse_gitlab.settings import Reading, Settings

FINISHED = frozenset({"success", "failed", "canceled", "skipped"})
CONCLUSIONS = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "skipped",
}
CHUNK = 500


@dataclass
class _Timing:
    started_at: str | None = None
    finished_at: str | None = None
    jobs: int = 0

    def add(self, job: Mapping[str, Any]) -> None:
        self.jobs += 1
        started, finished = job.get("started_at"), job.get("finished_at")
        if started and (
            self.started_at is None or parse_time(started) < parse_time(self.started_at)
        ):
            self.started_at = str(started)
        if finished and (
            self.finished_at is None or parse_time(finished) > parse_time(self.finished_at)
        ):
            self.finished_at = str(finished)


@dataclass
class _Batch:
    pipelines: list[JSONObject]
    timings: dict[int, _Timing] = field(default_factory=lambda: defaultdict(_Timing))
    summaries: dict[int, Mapping[str, Any]] = field(default_factory=dict)


def read_test_runs(connector: Reading, run: StreamRun) -> Iterator[Page]:
    """Pipelines updated since the watermark, timed from the jobs walk, with test report
    summaries for the production pipelines the ``deployments`` stream shared."""
    api, settings = connector.api, connector.settings
    cursor: Watermark = run.cursor
    base = project_path(run.repo)
    new: list[JSONObject] = []
    walked = cursor
    for step in UpdatedAfter().walk(api.updated_after(f"{base}/pipelines"), cursor, run.since):
        new.extend(step.items)
        walked = step.cursor
    new.sort(key=lambda p: parse_time(p.get("updated_at") or p["created_at"]))
    # Production pipelines whose report is still owed: from this run's deployments, and those
    # carried over because they had not finished last time.
    owed = set(run.shared("deployments", PRODUCTION_PIPELINES, frozenset())) | {
        int(i) for i in cursor.extra.get("owed_reports") or []
    }
    if settings.test_reports != "production":
        owed = set()
    by_id = {int(p["id"]): p for p in new}
    older = sorted(owed - set(by_id))
    for single in api.each(lambda i: api.get_optional(f"{base}/pipelines/{i}"), older):
        if isinstance(single, dict):
            by_id[int(single["id"])] = single
            new.append(single)
    batch = _Batch(new)
    untimed = {i for i, p in by_id.items() if "started_at" not in p}
    # Whatever the jobs walk left out (old pipelines that changed late) costs a GET each.
    left_out = sorted(_time_from_jobs(api, base, batch, untimed))
    singles = api.each(lambda i: api.get_optional(f"{base}/pipelines/{i}"), left_out)
    for pipeline_id, single in zip(left_out, singles, strict=True):
        if isinstance(single, dict):
            by_id[pipeline_id].update(single)
    _fetch_summaries(api, base, batch, _report_targets(settings, owed, by_id))
    # A production pipeline still running is owed its report until it finishes.
    still_owed = sorted(i for i in owed if by_id.get(i, {}).get("status") not in FINISHED)
    rows = [_record(p, batch) for p in new]
    done = walked.with_extra(owed_reports=still_owed)
    if not rows and not (walked.updated_at and done != cursor):
        return
    # Every row of the batch was timed from one jobs walk, so the cursor covers them all.
    for start in range(0, max(len(rows), 1), CHUNK):
        last = start + CHUNK >= len(rows)
        yield Page(rows[start : start + CHUNK], cursor=done if last else None)


def _report_targets(
    settings: Settings, owed: set[int], by_id: Mapping[int, JSONObject]
) -> list[int]:
    """The finished pipelines whose test report summary is worth a request."""
    if settings.test_reports == "all":
        targets = set(by_id)
    elif settings.test_reports == "production":
        targets = owed & set(by_id)
    else:
        targets = set()
    return sorted(i for i in targets if by_id[i].get("status") in FINISHED)


def _fetch_summaries(
    api: GitLabAPI,
    base: str,
    batch: _Batch,
    pipeline_ids: list[int],
) -> None:
    summaries = api.each(
        lambda i: api.get_optional(f"{base}/pipelines/{i}/test_report_summary"),
        pipeline_ids,
    )
    for pipeline_id, summary in zip(pipeline_ids, summaries, strict=True):
        if isinstance(summary, dict):
            batch.summaries[pipeline_id] = summary


def _time_from_jobs(api: GitLabAPI, base: str, batch: _Batch, wanted: set[int]) -> set[int]:
    """Walk the project's jobs newest first, timing the wanted pipelines, and return those it
    did not reach.

    A pipeline's jobs are all created after it, so once the walk has gone past a pipeline's
    creation it has seen all its jobs. The walk stops early when reaching the pipelines still
    ahead would take more pages (estimated from the jobs per hour seen so far) than GETting
    them one by one: an old pipeline whose job was retried today costs one GET, not a walk
    back through months of jobs. On a first run the walk goes all the way.
    """
    ahead = sorted(
        (
            (parse_time(p["created_at"]), int(p["id"]))
            for p in batch.pipelines
            if int(p["id"]) in wanted
        ),
        reverse=True,
    )
    if not ahead:
        return set()
    params = {"pagination": "keyset", "order_by": "id", "sort": "desc"}
    passed = 0  # ahead[:passed] have been walked past
    jobs_seen = 0
    newest = None
    for page in api.pages(f"{base}/jobs", params):
        if not page:
            return set()
        for job in page:
            pipeline_id = int((job.get("pipeline") or {}).get("id") or 0)
            if pipeline_id in wanted:
                batch.timings[pipeline_id].add(job)
        jobs_seen += len(page)
        newest = newest or parse_time(page[0]["created_at"])
        reached = parse_time(page[-1]["created_at"])
        while passed < len(ahead) and ahead[passed][0] > reached:
            passed += 1  # every job of this pipeline has been seen
        remaining = len(ahead) - passed
        if remaining == 0:
            return set()
        walked = max((newest - reached).total_seconds(), 1.0)
        still_to_walk = (reached - ahead[-1][0]).total_seconds()
        pages_to_go = jobs_seen / walked * still_to_walk / PER_PAGE
        if remaining < pages_to_go:
            return {pipeline_id for _, pipeline_id in ahead[passed:]}
    return set()  # every job there is has been seen


def _record(pipeline: Mapping[str, Any], batch: _Batch) -> JSONObject:
    pipeline_id = int(pipeline["id"])
    timing = batch.timings.get(pipeline_id, _Timing())
    status = str(pipeline.get("status") or "")
    started_at = pipeline.get("started_at") or timing.started_at
    finished_at = pipeline.get("finished_at") or (
        timing.finished_at if status in FINISHED else None
    )
    duration = seconds_between(started_at, finished_at)
    summary = (batch.summaries.get(pipeline_id) or {}).get("total") or {}
    failed = summary.get("failed")
    if failed is not None:
        failed = int(failed) + int(summary.get("error") or 0)
    return {
        "run_id": str(pipeline_id),
        "name": pipeline.get("name"),
        "sha": pipeline.get("sha"),
        "ref": pipeline.get("ref"),
        "event": pipeline.get("source"),
        "status": status,
        "conclusion": CONCLUSIONS.get(status),
        "created_at": pipeline.get("created_at"),
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_s": duration,
        "attempt": None,
        "tests_total": summary.get("count"),
        "tests_failed": failed,
        "tests_skipped": summary.get("skipped"),
        "url": pipeline.get("web_url"),
    }
