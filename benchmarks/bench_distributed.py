"""Benchmark: metrics of an organisation of many small repos through a two-worker Dask
LocalCluster against the same in one process — wall time and peak memory (max RSS) of each
worker, next to the in-process run's and the largest repo's own, all in one run.

The organisation is bench_metrics' generator with fewer pull requests per repo (default
10,000 repos x 50 = 500,000 changes, about 2.5 million commits), saved twice: the plain layout
(one file per source, sorted by time) and with repo buckets (each bucket's file sorted by
repo). The workers read their partition's repos from the files themselves
(``store.parquet.read_repos``: only their buckets' files and the row groups that may hold
their repos), so each holds one partition at a time. The bucketed copy runs with the default
partitions (smaller ones there), with as many as the plain copy got, and with
``--small-partitions``. Every step runs in a fresh process so its peak is its own; the load
average is printed with the figures (time is noisy on a shared machine, peak memory much less).

    python benchmarks/bench_distributed.py                   # 10,000 repos
    python benchmarks/bench_distributed.py --repos 500       # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_metrics  # the generator, next to this file

from deliverypulse.store.buckets import settle_buckets
from deliverypulse.store.location import resolve


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(out: str, repos: int, changes: int, buckets: int = 1) -> dict[str, Any]:
    bench_metrics.CHANGES_PER_REPO = changes
    started = time.perf_counter()
    ds = bench_metrics.generate(repos)
    # A dataset made with repo buckets keeps each bucket's repos in their own file, sorted by
    # repo, so a worker's repo filter reads less.
    settle_buckets(resolve(out), buckets, fresh=True)
    ds.save(out)
    largest = ds.commits["repo"].value_counts().index[0]
    return {
        "repos": repos,
        "deployments": len(ds.deployments),
        "changes": len(ds.changes),
        "commits": len(ds.commits),
        "largest_repo": str(largest),
        "generate_and_save_s": round(time.perf_counter() - started, 1),
    }


def in_process(path: str, repo: str | None) -> dict[str, Any]:
    """``summary`` by repo of the whole dataset (or of one repo) in this process."""
    import deliverypulse as dp

    started = time.perf_counter()
    ds = dp.load(path) if repo is None else dp.load(path, repos=[repo])
    loaded = time.perf_counter() - started
    table = dp.summary(ds, by=["repo"])
    return {
        "load_s": round(loaded, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "rows": len(table),
        "peak_rss_mb": round(_peak_mb()),
        "deployments": int(table["deployments"].sum()),
    }


def one_repo(changes: int) -> dict[str, Any]:
    """One repo of the same shape generated in memory and summarised: its own peak, without
    reading the organisation's files."""
    import deliverypulse as dp

    bench_metrics.CHANGES_PER_REPO = changes
    started = time.perf_counter()
    table = dp.summary(bench_metrics.generate(1), by=["repo"])
    return {
        "wall_s": round(time.perf_counter() - started, 1),
        "rows": len(table),
        "peak_rss_mb": round(_peak_mb()),
    }


def repo_as_a_worker(path: str, repo: str) -> dict[str, Any]:
    """The largest repo read and prepared the way a worker does it (``read_repos``, then
    prepare), in a process that imported what a worker has: its peak counted from the
    moment the task starts (the client-side tables it needs are made first, then the peak is
    reset), so it compares with a worker's."""
    import distributed  # noqa: F401  (a worker has it imported)
    import numpy as np

    from deliverypulse.dora import engine
    from deliverypulse.dora.options import MetricOptions

    root = resolve(path)
    options = MetricOptions.build(None)
    small = engine._small_tables(root, options)
    mine = small.incidents["repo"].astype("string").str.casefold() == repo.casefold()
    shared = engine._shared(
        small, engine.Partition((repo,), 0), mine.fillna(False).to_numpy(dtype=bool)
    )
    del small
    engine.trim_memory()
    start = _rss_mb()
    Path("/proc/self/clear_refs").write_text("5")  # the peak counts from here
    started = time.perf_counter()
    prepared = engine._prepare_on_disk(path, (repo,), shared, options, None)
    return {
        "wall_s": round(time.perf_counter() - started, 1),
        "deployments": int(np.asarray(prepared.outcomes["is_success"], dtype=bool).sum()),
        "rss_before_mb": round(start),
        "peak_rss_mb": round(_hwm_mb()),
    }


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _hwm_mb() -> float:
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def on_dask(path: str, partitions: int | None) -> dict[str, Any]:
    """The same through a LocalCluster of two single-threaded worker processes."""
    import distributed

    import deliverypulse as dp
    from deliverypulse.dora.engine import DaskEngine

    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        baseline = client.run(_worker_peak_mb)
        started = time.perf_counter()
        with distributed.get_task_stream(client) as stream:
            engine = DaskEngine(client, partitions=partitions)
            table = dp.summary(path, by=["repo"], engine=engine)
        wall = time.perf_counter() - started
        peaks = client.run(_worker_peak_mb)
    return {
        "partitions": len({task["key"] for task in stream.data}),
        "wall_s": round(wall, 1),
        "rows": len(table),
        "deployments": int(table["deployments"].sum()),
        "client_peak_rss_mb": round(_peak_mb()),
        "worker_idle_rss_mb": sorted(round(v) for v in baseline.values()),
        "worker_peak_rss_mb": sorted(round(v) for v in peaks.values()),
    }


def _worker_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(step: str, *arguments: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--step", step, *arguments],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    if done.returncode != 0:
        raise SystemExit(f"{step} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=50, help="pull requests per repo")
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument(
        "--small-partitions",
        type=int,
        default=32,
        help="partitions of the bucketed copy's second run",
    )
    parser.add_argument(
        "--buckets", type=int, default=16, help="repo buckets of the second, bucketed copy"
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--repo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "generate":
        print(json.dumps(generate(args.path, args.repos, args.changes, args.buckets)))
    elif args.step == "in_process":
        print(json.dumps(in_process(args.path, args.repo)))
    elif args.step == "one_repo":
        print(json.dumps(one_repo(args.changes)))
    elif args.step == "as_a_worker":
        print(json.dumps(repo_as_a_worker(args.path, args.repo)))
    elif args.step == "dask":
        print(json.dumps(on_dask(args.path, args.partitions)))
    else:
        report = _run_all(args)
        print(json.dumps(report, indent=2))
        print(_table(report))


def _run_all(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as out:
        sizes = ["--repos", str(args.repos), "--changes", str(args.changes)]
        shape = _child("generate", "--path", out, *sizes, "--buckets", "1")
        bucketed = os.path.join(out, "bucketed")
        _child("generate", "--path", bucketed, *sizes, "--buckets", str(args.buckets))
        extra = [] if args.partitions is None else ["--partitions", str(args.partitions)]
        small = ["--partitions", str(args.small_partitions)]
        largest = shape["largest_repo"]
        report: dict[str, Any] = {
            "dataset": shape,
            "in_process": _child("in_process", "--path", out),
            "largest_repo_in_memory": _child("one_repo", "--changes", str(args.changes)),
            "largest_repo_read_from_plain": _child("in_process", "--path", out, "--repo", largest),
            "largest_repo_read_from_bucketed": _child(
                "in_process", "--path", bucketed, "--repo", largest
            ),
            "largest_repo_as_a_worker_plain": _child(
                "as_a_worker", "--path", out, "--repo", largest
            ),
            "largest_repo_as_a_worker_bucketed": _child(
                "as_a_worker", "--path", bucketed, "--repo", largest
            ),
            "dask_plain": _child("dask", "--path", out, *extra),
            "dask_bucketed": _child("dask", "--path", bucketed, *extra),
        }
        same = ["--partitions", str(report["dask_plain"]["partitions"])]
        report["dask_bucketed_as_many_as_plain"] = _child("dask", "--path", bucketed, *same)
        report["dask_bucketed_small_partitions"] = _child("dask", "--path", bucketed, *small)
    expected = report["in_process"]["deployments"]
    report["same_deployments_counted"] = all(
        report[name]["deployments"] == expected for name in report if name.startswith("dask")
    )
    report["load_average_1min"] = [round(load_before[0], 1), round(os.getloadavg()[0], 1)]
    return report


def _table(report: dict[str, Any]) -> str:
    """Peak memory and wall time of each run, one line each: the workers' next to the
    one-process baseline and the largest repo's own."""
    lines = [
        f"{report['dataset']['repos']:,} repos, {report['dataset']['commits']:,} commits; "
        f"load average {report['load_average_1min'][0]} at start, "
        f"{report['load_average_1min'][1]} at end (2 cores)",
        f"{'run':58s} {'peak MB':>14s} {'wall s':>7s}",
    ]

    def line(label: str, peak: str, wall: Any = "") -> None:
        lines.append(f"{label:58s} {peak:>14s} {wall!s:>7s}")

    one = report["in_process"]
    line("one process, whole organisation", f"{one['peak_rss_mb']}", one["wall_s"])
    alone = report["largest_repo_in_memory"]
    line("largest repo alone, in memory", f"{alone['peak_rss_mb']}", alone["wall_s"])
    for layout in ("plain", "bucketed"):
        run = report[f"largest_repo_read_from_{layout}"]
        line(f"largest repo alone, dp.load from the {layout} dataset", f"{run['peak_rss_mb']}")
    for layout in ("plain", "bucketed"):
        run = report[f"largest_repo_as_a_worker_{layout}"]
        line(
            f"largest repo alone as a worker task, {layout} (from {run['rss_before_mb']})",
            f"{run['peak_rss_mb']}",
            run["wall_s"],
        )
    for name, label in (
        ("dask_plain", "plain"),
        ("dask_bucketed", "bucketed"),
        ("dask_bucketed_as_many_as_plain", "bucketed"),
        ("dask_bucketed_small_partitions", "bucketed"),
    ):
        run = report[name]
        peaks = "/".join(str(v) for v in run["worker_peak_rss_mb"])
        idle = "/".join(str(v) for v in run["worker_idle_rss_mb"])
        line(
            f"dask worker, {label}, {run['partitions']} partitions (idle {idle})",
            peaks,
            run["wall_s"],
        )
    lines.append(f"same deployments counted everywhere: {report['same_deployments_counted']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
