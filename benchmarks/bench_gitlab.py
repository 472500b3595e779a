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

Figures (2026-11-26, ``--scale 1 --latency 0.05``, one run): deliverypulse 5,396 requests in
78.5 s (rerun with nothing new: 5 requests, 0.3 s); baseline 37,038 requests in 1,940.5 s:
6.9x fewer requests, 24.7x less wall time (part of that from running per-object calls four at
a time). The baseline reads a test report summary for all 10,000 pipelines; ours for the 2,000
behind production deployments (``test_reports = "all"`` would add 8,000 requests).
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


@dataclass
class Measure:
    name: str
    requests: int
    seconds: float
    by_endpoint: Counter[str]
    waited: float = 0.0  # seconds of backoffs and rate-limit waits (the fake sets no limits)


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
        results.append(run_connector(server, Path(tmp) / "data", "deliverypulse (first run)"))
        results.append(run_connector(server, Path(tmp) / "data", "deliverypulse (rerun)"))
        if not args.skip_baseline:
            results.append(run_baseline(server))
    print(f"\n{'':28} {'requests':>10} {'wall s':>9} {'waited s':>9}")
    for measure in results:
        print(
            f"{measure.name:28} {measure.requests:>10,} {measure.seconds:>9.1f} "
            f"{measure.waited:>9.1f}"
        )
    figures: dict[str, Any] = {
        "scale": args.scale,
        "latency_s": args.latency,
        "runs": {
            m.name: {"requests": m.requests, "seconds": round(m.seconds, 2), "waited": m.waited}
            for m in results
        },
        "endpoints": {m.name: dict(m.by_endpoint.most_common()) for m in results},
    }
    if len(results) == 3:
        ours, baseline = results[0], results[2]
        ratio = baseline.requests / ours.requests
        speed = baseline.seconds / ours.seconds
        figures["request_ratio"] = round(ratio, 2)
        figures["time_ratio"] = round(speed, 2)
        print(f"\nbaseline / deliverypulse: {ratio:.1f}x requests, {speed:.1f}x wall time")
    print("\nrequests by endpoint:")
    for measure in results:
        top = ", ".join(f"{k} {v:,}" for k, v in measure.by_endpoint.most_common(8))
        print(f"  {measure.name}: {top}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
