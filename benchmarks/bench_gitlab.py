"""Requests and wall time of the GitLab connector against a per-object python-gitlab baseline,
both on the same synthetic project served by the fake GitLab with a fixed latency per request.

The project (at ``--scale 1``): 5,000 merged merge requests with approvals and notes (merge
commits, squashes and fast-forwards), 2,000 production deployments (plus staging ones), 10,000
pipelines with 3 jobs each, and incidents. The connector runs a full ``run_collect`` into a
Parquet dataset, then a nightly rerun with nothing new. The baseline is the loop one would
write with python-gitlab: list everything, then per merge request its approvals, commits and
notes, per pipeline its details and test report summary, per production deployment its merge
requests, plus the same commit and incident lists the connector reads. Run::

    /work/venv/bin/python benchmarks/bench_gitlab.py --scale 1 --latency 0.05

``--scale 0.1`` gives about the same ratios in a tenth of the time.

Printed side by side: the baseline, the connector *before* the bulk reads of issue 15 (figures
recorded at commit 4a778aa with this script, ``RECORDED_BEFORE``; shown when the scale and
latency match), and the connector now, first run and nightly rerun.

Figures (2026-12-06, ``--scale 0.1 --latency 0.05``, the issue's measure): baseline 3,705
requests; before 544 (6.8x fewer); now 325 (11.4x fewer), rerun 5. What went: one
``/deployments/:id/merge_requests`` per successful production deployment (171; now only off
the default branch, plus one ``/projects/:id`` for the default branch) and
``/merge_requests/:iid/commits`` for squashed merge requests (50; from one ``all=true`` commits
walk now). Left per object: 200 test report summaries (production pipelines; no bulk
endpoint) and 20 fast-forwarded merge requests' commits. Wall time hardly moved (8.4 s before,
9.1 s now, against 200.0 s for the baseline): the per-object calls that went ran four at a
time off the critical path. At ``--scale 1`` (connector only, ``--skip-baseline``): before
5,396 requests in 75.6 s, now 3,193 in 73.9 s; the baseline made 37,038 (2026-11-26), 11.6x
now. At scale 1 the synthetic timeline runs into 2028, past the clock, so the rerun re-reads
what is "later than now" (1,922 requests before, 1,167 now) instead of costing 5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gitlab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_gitlab import FakeGitLab, Scenario, synthetic_project

from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.streams import Runtime

TOKEN = "glpat-benchmark-0123456789"
PROJECT = "acme/app"
BEFORE_COMMIT = "4a778aa"
#: The connector before issue 15's bulk reads, measured with this script at commit 4a778aa on
#: 2026-12-06, keyed by (scale, latency): first run and rerun, requests and seconds, and the
#: first run's requests by endpoint.
RECORDED_BEFORE: dict[tuple[float, float], dict[str, Any]] = {
    (0.1, 0.05): {
        "first": (544, 8.42),
        "rerun": (5, 0.34),
        "endpoints": {
            "/pipelines/:id/test_report_summary": 200,
            "/deployments/:id/merge_requests": 171,
            "/merge_requests/:id/commits": 70,
            "/repository/commits": 30,
            "/jobs": 30,
            "/events": 22,
            "/pipelines": 10,
            "/merge_requests": 5,
            "/deployments": 3,
            "/environments": 1,
            "/protected_environments": 1,
            "/issues": 1,
        },
    },
    (1.0, 0.05): {
        "first": (5396, 75.64),
        "rerun": (1922, 25.91),
        "endpoints": {
            "/pipelines/:id/test_report_summary": 2000,
            "/deployments/:id/merge_requests": 1714,
            "/merge_requests/:id/commits": 700,
            "/jobs": 300,
            "/repository/commits": 286,
            "/events": 213,
            "/pipelines": 100,
            "/merge_requests": 50,
            "/deployments": 30,
            "/environments": 1,
            "/protected_environments": 1,
            "/issues": 1,
        },
    },
}


@dataclass
class Measure:
    name: str
    requests: int
    seconds: float
    by_endpoint: Counter[str]
    waited: float = 0.0  # seconds of backoffs and rate-limit waits (the fake sets no limits)
    recorded: bool = False  # figures recorded from an earlier commit, not measured now


def endpoint_counts(server: FakeGitLab) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in server.log:
        tail = request.path.split(f"/projects/{PROJECT}", 1)[-1] or request.path
        counts["/".join(":id" if part.isdigit() else part for part in tail.split("/"))] += 1
    return counts


def run_connector(server: FakeGitLab, out: Path, name: str) -> Measure:
    os.environ["GL_BENCH_TOKEN"] = TOKEN
    source = {
        "type": "gitlab",
        "project": PROJECT,
        "url": server.url,
        "token_env": "GL_BENCH_TOKEN",
    }
    config = config_from_dict({"output": {"path": str(out)}, "sources": [source]})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    server.clear_log()
    started = time.perf_counter()
    summary = run_collect(config, runtime=Runtime(sleep=sleep))
    seconds = time.perf_counter() - started
    if not summary.ok:
        raise SystemExit("connector run failed: " + "; ".join(summary.lines()))
    return Measure(name, len(server.log), seconds, endpoint_counts(server), sum(waits))


def run_baseline(server: FakeGitLab) -> Measure:
    """The per-object loop, written as python-gitlab's documentation suggests."""
    server.clear_log()
    started = time.perf_counter()
    gl = gitlab.Gitlab(server.url, private_token=TOKEN, per_page=100)
    project = gl.projects.get(PROJECT, lazy=True)
    for mr in project.mergerequests.list(state="merged", iterator=True):
        mr.approvals.get()
        list(mr.commits())
        list(mr.notes.list(iterator=True))
    for pipeline in project.pipelines.list(iterator=True):
        detail = project.pipelines.get(pipeline.id)
        detail.test_report_summary.get()
    for deployment in project.deployments.list(iterator=True):
        if deployment.environment["name"] == "production" and deployment.status == "success":
            list(deployment.mergerequests.list(iterator=True))
    list(project.commits.list(iterator=True, with_stats=True))
    list(project.issues.list(iterator=True, issue_type="incident"))
    seconds = time.perf_counter() - started
    return Measure("baseline (per object)", len(server.log), seconds, endpoint_counts(server))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 5,000 MRs, 10,000 pipelines")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    scenario = Scenario(
        merge_requests=round(5000 * args.scale),
        deployments=round(2000 * args.scale),
        pipelines=round(10000 * args.scale),
        incidents=max(1, round(20 * args.scale)),
    )
    built = time.perf_counter()
    project = synthetic_project(PROJECT, scenario=scenario)
    production = sum(d["environment"]["name"] == "production" for d in project.deployments)
    print(
        f"synthetic project: {len(project.merge_requests):,} merged MRs, "
        f"{len(project.events):,} events, {len(project.commits):,} commits, "
        f"{production:,} production deployments ({len(project.deployments):,} in all), "
        f"{len(project.pipelines):,} pipelines, {len(project.jobs):,} jobs "
        f"(built in {time.perf_counter() - built:.1f}s); latency {args.latency * 1000:.0f} ms"
    )
    results: list[Measure] = []
    with (
        FakeGitLab(latency=args.latency, token=TOKEN) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        server.add_project(project)
        results.append(run_connector(server, Path(tmp) / "data", "deliverypulse now (first run)"))
        results.append(run_connector(server, Path(tmp) / "data", "deliverypulse now (rerun)"))
        if not args.skip_baseline:
            results.append(run_baseline(server))
    recorded = RECORDED_BEFORE.get((round(args.scale, 3), round(args.latency, 3)))
    before: list[Measure] = []
    if recorded:
        for run, label in (("first", "first run"), ("rerun", "rerun")):
            requests, seconds = recorded[run]
            counts = Counter(recorded["endpoints"]) if run == "first" else Counter()
            name = f"deliverypulse before ({label})"
            before.append(Measure(name, requests, seconds, counts, recorded=True))
    rows = [*results[2:], *before, *results[:2]]
    print(f"\n{'':34} {'requests':>10} {'wall s':>9} {'waited s':>9}")
    for measure in rows:
        recorded_note = f"  (recorded at {BEFORE_COMMIT})" if measure.recorded else ""
        print(
            f"{measure.name:34} {measure.requests:>10,} {measure.seconds:>9.1f} "
            f"{measure.waited:>9.1f}{recorded_note}"
        )
    figures: dict[str, Any] = {
        "scale": args.scale,
        "latency_s": args.latency,
        "runs": {
            m.name: {"requests": m.requests, "seconds": round(m.seconds, 2), "waited": m.waited}
            for m in rows
        },
        "endpoints": {m.name: dict(m.by_endpoint.most_common()) for m in rows if m.by_endpoint},
    }
    ours = results[0]
    if before:
        figures["before_over_now"] = round(before[0].requests / ours.requests, 2)
        print(f"\nbefore / now: {before[0].requests / ours.requests:.1f}x requests")
    if len(results) == 3:
        baseline = results[2]
        ratio = baseline.requests / ours.requests
        speed = baseline.seconds / ours.seconds
        figures["request_ratio"] = round(ratio, 2)
        figures["time_ratio"] = round(speed, 2)
        if before:
            then = baseline.requests / before[0].requests
            figures["request_ratio_before"] = round(then, 2)
            print(f"baseline / deliverypulse before: {then:.1f}x requests")
        print(f"baseline / deliverypulse now: {ratio:.1f}x requests, {speed:.1f}x wall time")
    print("\nrequests by endpoint:")
    for measure in rows:
        top = ", ".join(f"{k} {v:,}" for k, v in measure.by_endpoint.most_common(8))
        if top:
            print(f"  {measure.name}: {top}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
