"""Benchmark: requests and wall time to collect GitHub data, ours against a per-object loop.

One synthetic repo of 5,000 merged pull requests (3 reviews each), 2,000 deployments (4 statuses
each) and 10,000 workflow runs, served by the local fake GitHub (tests/fake_github.py) with 50 ms
of latency per request. The baseline lists objects and then fetches each pull request's reviews
and commits and each deployment's statuses, one request each, as a PyGithub loop would. Then 50
smaller repos, collected one after another and concurrently.

    python benchmarks/bench_github.py              # the full figures (the baseline takes minutes)
    python benchmarks/bench_github.py --scale 0.05 # a quick run
    python benchmarks/bench_github.py --only many --repo-size 0.01  # 50 tiny repos
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_github import Repo, make_repo, serve_in_process  # noqa: E402

from deliverypulse.collector import run_collect  # noqa: E402
from deliverypulse.config import config_from_dict  # noqa: E402

TOKEN = "bench-token-0123456789"
STREAMS = ["deployments", "changes", "test_runs"]


class World(Protocol):
    url: str

    def clear_log(self) -> None: ...
    def count(self) -> int: ...


class RemoteWorld:
    """The fake GitHub running in a process of its own, so that the server's CPU (GitHub's,
    in real life) does not compete with the collector's for one interpreter."""

    def __init__(self, url: str) -> None:
        self.url = url

    def clear_log(self) -> None:
        httpx.post(f"{self.url}/_fake/clear")

    def count(self) -> int:
        return int(httpx.get(f"{self.url}/_fake/count").json()["requests"])


@contextlib.contextmanager
def fake_github(
    make: Callable[[], list[Repo]], latency: float, cache: bool = False
) -> Iterator[RemoteWorld]:
    """The fake GitHub in a child process; ``cache`` answers repeated requests from memory."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=serve_in_process,
        args=(make, send),
        kwargs={"token": TOKEN, "latency": latency, "cache": cache},
        daemon=True,
    )
    process.start()
    try:
        yield RemoteWorld(receive.recv())
    finally:
        process.kill()
        process.join()


def ours(world: World, repos: list[str], concurrency: int) -> tuple[int, float]:
    """Requests and seconds for deliverypulse to collect ``repos`` into a fresh dataset."""
    os.environ["BENCH_GITHUB_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as output:
        config = config_from_dict(
            {
                "output": {"path": output},
                "collect": {"concurrency": concurrency},
                "sources": [
                    {
                        "type": "github",
                        "name": "bench",
                        "repos": repos,
                        "api_url": world.url,
                        "token_env": "BENCH_GITHUB_TOKEN",
                        "streams": STREAMS,
                        "concurrency": concurrency,
                    }
                ],
            }
        )
        world.clear_log()
        started = time.perf_counter()
        summary = run_collect(config)
        seconds = time.perf_counter() - started
        if not summary.ok:
            raise SystemExit("collect failed: " + "; ".join(summary.lines()))
        return world.count(), seconds


def baseline(world: World, repo: str) -> tuple[int, float]:
    """A PyGithub-style loop: list, then one request per object for its children."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json"}
    world.clear_log()
    started = time.perf_counter()
    with httpx.Client(base_url=world.url, headers=headers, timeout=60) as http:

        def pages(path: str, **params: object) -> list[dict[str, object]]:
            items: list[dict[str, object]] = []
            url: str | None = path
            query: dict[str, object] | None = {"per_page": 100, **params}
            while url:
                response = http.get(url, params=query)
                response.raise_for_status()
                body = response.json()
                items += body["workflow_runs"] if isinstance(body, dict) else body
                url, query = response.links.get("next", {}).get("url"), None
            return items

        for pull in pages(f"/repos/{repo}/pulls", state="all"):
            if pull.get("merged_at"):
                pages(f"/repos/{repo}/pulls/{pull['number']}/reviews")
                pages(f"/repos/{repo}/pulls/{pull['number']}/commits")
        for deployment in pages(f"/repos/{repo}/deployments"):
            pages(f"/repos/{repo}/deployments/{deployment['id']}/statuses")
        pages(f"/repos/{repo}/actions/runs")
    return world.count(), time.perf_counter() - started


def one_repo(scale: float, latency: float, with_baseline: bool) -> None:
    """The request and time figures for one big repo, ours against the per-object loop."""

    def big() -> list[Repo]:
        return [
            make_repo(
                "bench",
                "big",
                pulls=scaled(5000, scale),
                reviews=3,
                deployments=scaled(2000, scale),
                statuses=4,
                runs=scaled(10_000, scale),
                incidents=0,
            )
        ]

    print(
        f"one repo: {scaled(5000, scale):,} merged pull requests x 3 reviews, "
        f"{scaled(2000, scale):,} deployments x 4 statuses, {scaled(10_000, scale):,} "
        f"workflow runs; {latency * 1000:.0f} ms latency per request"
    )
    with fake_github(big, latency) as world:
        our_requests, our_seconds = ours(world, ["bench/big"], concurrency=1)
        print(f"  deliverypulse : {our_requests:>7,} requests {our_seconds:>8.1f} s")
        if with_baseline:
            base_requests, base_seconds = baseline(world, "bench/big")
            print(f"  per-object    : {base_requests:>7,} requests {base_seconds:>8.1f} s")
            print(
                f"  => {base_requests / our_requests:.0f}x fewer requests, "
                f"{base_seconds / our_seconds:.1f}x less time"
            )


def many_repos(scale: float, latency: float, count: int, concurrency: int) -> None:
    """Wall time for ``count`` smaller repos (the big one times ``scale``), one after another
    and ``concurrency`` at a time."""
    pulls, deployments, runs = scaled(5000, scale), scaled(2000, scale), scaled(10_000, scale)

    def fleet() -> list[Repo]:
        return [
            make_repo(
                "fleet",
                f"svc{i:02d}",
                pulls=pulls,
                deployments=deployments,
                runs=runs,
                incidents=0,
                run_id_base=(i + 1) * 10_000_000,
            )
            for i in range(count)
        ]

    names = [f"fleet/svc{i:02d}" for i in range(count)]
    print(
        f"{count} repos of {pulls} pull requests, {deployments} deployments, {runs} runs each; "
        f"{latency * 1000:.0f} ms latency per request"
    )
    # The server answers from memory after a warm-up pass, so both runs see a server that
    # costs its latency and no CPU, as a big remote API would (graphql-core executing queries
    # in one local process would otherwise be the bottleneck being measured).
    with fake_github(fleet, latency, cache=True) as world:
        ours(world, names, concurrency=concurrency)  # warm-up, not measured
        seq_requests, seq_seconds = ours(world, names, concurrency=1)
        print(f"  one after another: {seq_requests:>6,} requests {seq_seconds:>7.1f} s")
        par_requests, par_seconds = ours(world, names, concurrency=concurrency)
        print(f"  {concurrency} at a time     : {par_requests:>6,} requests {par_seconds:>7.1f} s")
        print(f"  => {seq_seconds / par_seconds:.1f}x faster")


def scaled(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every size (0.05: quick)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--repos", type=int, default=50, help="repos in the concurrency run")
    parser.add_argument(
        "--repo-size",
        type=float,
        default=0.1,
        help="each of those repos, as a share of the big one",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-baseline", action="store_true", help="it takes minutes")
    parser.add_argument("--only", choices=["one", "many"], help="run only one of the parts")
    args = parser.parse_args()
    if args.only != "many":
        one_repo(args.scale, args.latency, not args.skip_baseline)
    if args.only != "one":
        many_repos(args.scale * args.repo_size, args.latency, args.repos, args.concurrency)


if __name__ == "__main__":
    main()
