"""Benchmark: metrics of an organisation of many small repos through a two-worker Dask
LocalCluster against the same in one process — wall time and peak memory (max RSS) of each
worker, of the in-process run, and of preparing the largest repo alone.

The organisation is bench_metrics' generator with fewer pull requests per repo (default
10,000 repos x 50 = 500,000 changes, about 2.5 million commits), saved as a dataset; the
workers read their partition's repos from it themselves (``load(..., repos=...)``), so each
holds one partition at a time. Every step runs in a fresh process so its peak is its own.

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
        table = dp.summary(path, by=["repo"], engine=DaskEngine(client, partitions=partitions))
        wall = time.perf_counter() - started
        peaks = client.run(_worker_peak_mb)
    return {
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
    elif args.step == "dask":
        print(json.dumps(on_dask(args.path, args.partitions)))
    else:
        with tempfile.TemporaryDirectory() as out:
            shape = _child(
                "generate",
                "--path",
                out,
                "--repos",
                str(args.repos),
                "--changes",
                str(args.changes),
                "--buckets",
                "1",
            )
            bucketed = os.path.join(out, "bucketed")
            _child(
                "generate",
                "--path",
                bucketed,
                "--repos",
                str(args.repos),
                "--changes",
                str(args.changes),
                "--buckets",
                str(args.buckets),
            )
            extra = [] if args.partitions is None else ["--partitions", str(args.partitions)]
            report = {
                "dataset": shape,
                "in_process": _child("in_process", "--path", out),
                "dask_2_workers": _child("dask", "--path", out, *extra),
                f"dask_2_workers_{args.buckets}_buckets": _child(
                    "dask", "--path", bucketed, *extra
                ),
                "largest_repo_read_from_the_dataset": _child(
                    "in_process", "--path", out, "--repo", shape["largest_repo"]
                ),
                "one_repo_in_memory": _child("one_repo", "--changes", str(args.changes)),
            }
            same = report["in_process"]["deployments"] == report["dask_2_workers"]["deployments"]
            report["same_deployments_counted"] = same
            print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
