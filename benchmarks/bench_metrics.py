"""Benchmark: link plus every metric on a synthetic dataset, at 10 %, 30 % and 100 % of
1,000 repos / 200,000 production deployments / 2,000,000 changes / 10,000,000 commits, and
the speed-up against a straightforward per-deployment loop on a small slice.

Each size runs in its own child process so that its peak memory (max RSS) is its own, in
three forms: ``arrow`` (list columns Arrow-backed, what ``dp.load`` gives; the library as a
notebook runs it), ``arrow+reuse`` (the same in a process that keeps freed memory for reuse,
as the ``deliverypulse`` program runs: :func:`deliverypulse.memory.reuse_freed_memory`) and,
as the baseline, ``python`` (Python lists, how ``load`` gave them before;
``from_arrow(python_lists=True)``). The growth exponent of linking and of link + metrics from
the smallest size to the largest is printed for each (1.0: time grows like the data).

    python benchmarks/bench_metrics.py                 # 10 %, 30 %, 100 %
    python benchmarks/bench_metrics.py --scale 0.01    # a quick check (what CI could run)
    python benchmarks/bench_metrics.py --forms arrow+reuse   # one form only
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections import deque
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

import deliverypulse.linking as dplink
from deliverypulse.dataset import Dataset, empty_frame
from deliverypulse.dora import metrics, prepare, summary
from deliverypulse.selection import successful_deployments
from deliverypulse.store.coerce import from_arrow
from deliverypulse.store.schemas import spec_for

FULL_REPOS = 1_000
CHANGES_PER_REPO = 2_000
CHANGES_PER_DEPLOYMENT = 10
START = np.datetime64("2024-01-01T00:00:00", "us")
HOUR = np.timedelta64(3_600_000_000, "us")
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: How list columns are held: "arrow" (what ``dp.load`` gives) or "python" (the old form).
LISTS = {"form": "arrow"}


def shas(ids: np.ndarray) -> pa.Array:
    """40-hex-digit strings, unique per id, built with numpy (no Python loop)."""
    ids = ids.astype(np.uint64)
    mixed = (ids * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(0xD1B54A32D192ED03)
    digits = np.empty((ids.size, 40), dtype=np.uint8)
    for position in range(16):
        digits[:, position] = HEX[(mixed >> np.uint64(4 * position)) & np.uint64(15)]
        digits[:, 24 + position] = HEX[(ids >> np.uint64(4 * (15 - position))) & np.uint64(15)]
    digits[:, 16:24] = HEX[0]
    array = pa.array(digits.view("S40").ravel()).cast(pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _frame(table: str, columns: dict[str, Any]) -> pd.DataFrame:
    """A canonical frame from arrow arrays (what ``dataset.load`` would give)."""
    spec = spec_for(table)
    arrays = []
    for field in spec.schema:
        if field.name in columns:
            value = columns[field.name]
            array = value if isinstance(value, (pa.Array, pa.ChunkedArray)) else pa.array(value)
            arrays.append(
                array.cast(field.type) if field.name != "source" else array.cast(pa.string())
            )
        else:
            arrays.append(
                pa.nulls(
                    len(next(iter(columns.values()))),
                    type=field.type if field.name != "source" else pa.string(),
                )
            )
    schema = pa.schema(
        [f if f.name != "source" else pa.field("source", pa.string()) for f in spec.schema]
    )
    table = pa.Table.from_arrays(arrays, schema=schema)
    return from_arrow(table, python_lists=LISTS["form"] == "python")


def generate(repos: int, seed: int = 7) -> Dataset:
    """``repos`` repos, each 2,000 pull requests (a side branch of 1-4 commits, then a merge
    commit or a squash), a production deployment after every 10, 5 % failed deployments, 1 %
    reverts, an incident every 20 deployments; ~5 commits per change in total."""
    rng = np.random.default_rng(seed)
    n_changes = repos * CHANGES_PER_REPO
    change_repo = np.repeat(np.arange(repos), CHANGES_PER_REPO)
    position = np.tile(np.arange(CHANGES_PER_REPO), repos)
    feature = rng.integers(1, 5, n_changes)  # side-branch commits per change (mean 2.5)
    extra = rng.integers(0, 4, n_changes)  # more PR commits, squashed away (mean 1.5)
    per_change = feature + extra + 1  # + the merge (or squash) commit
    first = np.concatenate(([0], np.cumsum(per_change)[:-1]))
    n_commits = int(per_change.sum())
    owner = np.repeat(np.arange(n_changes), per_change)
    offset = np.arange(n_commits) - np.repeat(first, per_change)
    merge_row = first + per_change - 1
    is_merge = np.zeros(n_commits, dtype=bool)
    is_merge[merge_row] = True
    squash = rng.random(n_changes) < 0.3
    merged_at = START + position * 4 * HOUR + change_repo * np.timedelta64(60_000_000, "us")
    first_commit = merged_at - rng.integers(2, 96, n_changes) * HOUR
    sha_all = shas(np.arange(n_commits))
    # Parents: a side-branch commit follows the previous one (the first follows the previous
    # merge); a merge commit has the previous merge and the branch tip; a squash only the
    # previous merge. The squashed extra commits hang off the branch tip, never merged.
    previous_merge = np.where(position > 0, merge_row - per_change, -1)[owner]
    prev_in_branch = np.arange(n_commits) - 1
    first_parent = np.where(offset == 0, previous_merge, prev_in_branch)
    branch_tip = (first + feature - 1)[owner]
    first_parent = np.where(is_merge, previous_merge, first_parent)
    second_parent = np.where(is_merge & ~squash[owner], branch_tip, -1)
    second_parent = np.where(is_merge, second_parent, -1)
    counts = (first_parent >= 0).astype(np.int64) + (second_parent >= 0)
    flat = np.stack([first_parent, second_parent], axis=1).ravel()
    flat = flat[flat >= 0]
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    parents = pa.ListArray.from_arrays(pa.array(offsets), sha_all.take(pa.array(flat)))
    share = (offset.astype(np.float64) + 1) / per_change[owner]
    committed = first_commit[owner] + ((merged_at - first_commit)[owner] * share).astype("m8[us]")
    repo_names = pa.array([f"org/repo-{i:04d}" for i in range(repos)])
    commit_repo = repo_names.take(pa.array(change_repo[owner]))
    change_ids = pa.array(np.char.add("PR-", np.arange(n_changes).astype("U8")).astype(object))
    commits = _frame(
        "commits",
        {
            "source": pa.array(np.full(n_commits, "bench", dtype=object)),
            "repo": commit_repo,
            "sha": sha_all,
            "parents": parents,
            "committed_at": pa.array(committed),
            "authored_at": pa.array(committed),
            "change_id": pc_if(~is_merge, change_ids.take(pa.array(owner))),
        },
    )
    reverts = rng.random(n_changes) < 0.01
    reverted = np.where(reverts & (position > 5), np.arange(n_changes) - 3, -1)
    changes = _frame(
        "changes",
        {
            "source": pa.array(np.full(n_changes, "bench", dtype=object)),
            "repo": repo_names.take(pa.array(change_repo)),
            "change_id": change_ids,
            "author": pa.array(
                np.where(rng.random(n_changes) < 0.05, "dependabot[bot]", "dev").astype(object)
            ),
            "created_at": pa.array(first_commit + HOUR),
            "first_commit_at": pa.array(first_commit),
            "first_review_at": pa.array(first_commit + 2 * HOUR),
            "merged_at": pa.array(merged_at),
            "merge_sha": sha_all.take(pa.array(merge_row)),
            "is_revert": pa.array(reverted >= 0),
            "reverts": pc_if(reverted >= 0, change_ids.take(pa.array(np.maximum(reverted, 0)))),
            "state": pa.array(np.full(n_changes, "merged", dtype=object)),
        },
    )
    per_repo = CHANGES_PER_REPO // CHANGES_PER_DEPLOYMENT
    n_deploy = repos * per_repo
    last_change = (
        (np.arange(n_deploy) % per_repo + 1) * CHANGES_PER_DEPLOYMENT
        - 1
        + (np.arange(n_deploy) // per_repo) * CHANGES_PER_REPO
    )
    created = merged_at[last_change] + HOUR
    status = np.where(rng.random(n_deploy) < 0.05, "failure", "success").astype(object)
    deploy_repo = repo_names.take(pa.array(np.arange(n_deploy) // per_repo))
    deployments = _frame(
        "deployments",
        {
            "source": pa.array(np.full(n_deploy, "bench", dtype=object)),
            "repo": deploy_repo,
            "deployment_id": pa.array(
                np.char.add("D-", np.arange(n_deploy).astype("U8")).astype(object)
            ),
            "environment": pa.array(np.full(n_deploy, "production", dtype=object)),
            "is_production": pa.array(np.ones(n_deploy, dtype=bool)),
            "sha": sha_all.take(pa.array(merge_row[last_change])),
            "created_at": pa.array(created),
            "finished_at": pa.array(created + 10 * 60_000_000),
            "status": pa.array(status),
        },
    )
    n_incidents = n_deploy // 20
    incident_deploy = rng.integers(0, n_deploy, n_incidents)
    opened = created[incident_deploy] + rng.integers(1, 30, n_incidents) * HOUR
    incidents = _frame(
        "incidents",
        {
            "source": pa.array(np.full(n_incidents, "bench", dtype=object)),
            "repo": deploy_repo.take(pa.array(incident_deploy)),
            "incident_id": pa.array(
                np.char.add("I-", np.arange(n_incidents).astype("U8")).astype(object)
            ),
            "created_at": pa.array(opened),
            "resolved_at": pa.array(opened + rng.integers(1, 48, n_incidents) * HOUR),
        },
    )
    return Dataset(
        deployments=deployments,
        changes=changes,
        commits=commits,
        incidents=incidents,
        test_runs=empty_frame("test_runs"),
    )


def pc_if(mask: np.ndarray, values: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.if_else(pa.array(mask), values, pa.nulls(len(values), pa.string()))


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (Linux): VmRSS now, VmHWM the peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")


def minor_faults() -> int:
    """Pages this process has faulted in so far (each a fresh page from the kernel)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(fraction: float, form: str = "arrow") -> dict[str, Any]:
    """Generate, then time link, metrics (month, by repo) and summary (by repo) from one
    prepared value (what a notebook or the report does)."""
    lists = "python" if form == "python" else "arrow"
    if form == "arrow+reuse":
        from deliverypulse.memory import reuse_freed_memory

        if not reuse_freed_memory():
            raise SystemExit("arrow+reuse needs glibc (Linux)")
    LISTS["form"] = lists
    repos = max(1, round(FULL_REPOS * fraction))
    started = time.perf_counter()
    ds = generate(repos)
    generated = time.perf_counter() - started
    generation_peak = _status_mb("VmHWM")
    dataset_rss = _status_mb("VmRSS")
    reset_peak()
    faults0, cpu0, started = minor_faults(), cpu_s(), time.perf_counter()
    links = dplink.find_links(ds)
    linked = time.perf_counter() - started
    link_cpu = cpu_s() - cpu0
    prepared = prepare(ds, links=links)
    prepared_at = time.perf_counter() - started
    monthly = metrics(prepared, period="month", by="repo")
    monthly_at = time.perf_counter() - started
    headline = summary(prepared, by="repo")
    total = time.perf_counter() - started
    cpu = cpu_s() - cpu0
    faults = minor_faults() - faults0
    return {
        "form": form,
        "fraction": fraction,
        "repos": repos,
        "deployments": len(ds.deployments),
        "changes": len(ds.changes),
        "commits": len(ds.commits),
        "links": len(links),
        "generate_s": round(generated, 2),
        "link_s": round(linked, 2),
        "prepare_s": round(prepared_at - linked, 2),
        "metrics_month_s": round(monthly_at - prepared_at, 2),
        "summary_s": round(total - monthly_at, 2),
        "link_metrics_summary_s": round(total, 2),
        "cpu_s": round(cpu, 2),
        "link_cpu_s": round(link_cpu, 2),
        "page_faults": faults,
        "rows": [len(monthly), len(headline)],
        "generation_peak_rss_mb": round(generation_peak),
        "dataset_rss_mb": round(dataset_rss),
        "peak_rss_during_link_and_metrics_mb": round(_status_mb("VmHWM")),
        "working_memory_mb": round(_status_mb("VmHWM") - dataset_rss),
    }


def naive_link(ds: Dataset) -> pd.DataFrame:
    """The straightforward way: per deployment, walk the ancestors of its sha and of the
    previous deployment's sha (``git rev-list prev..sha``) in Python."""
    parents = {
        (repo, sha): list(ps or [])
        for repo, sha, ps in zip(
            ds.commits["repo"], ds.commits["sha"], ds.commits["parents"], strict=True
        )
    }
    by_merge = {
        (repo, sha): change
        for repo, sha, change in zip(
            ds.changes["repo"], ds.changes["merge_sha"], ds.changes["change_id"], strict=True
        )
    }
    rows = []
    success = successful_deployments(ds)
    for repo, group in success.groupby("repo", sort=True):
        previous: set[str] | None = None
        for deployment_id, sha in zip(group["deployment_id"], group["sha"], strict=True):
            seen: set[str] = set()
            queue = deque([sha])
            while queue:
                current = queue.popleft()
                if current in seen or (repo, current) not in parents:
                    continue
                seen.add(current)
                queue.extend(parents[(repo, current)])
            if previous is not None:
                for commit in seen - previous:
                    change = by_merge.get((repo, commit))
                    if change is not None:
                        rows.append((repo, deployment_id, change))
            previous = seen
    return pd.DataFrame(rows, columns=["repo", "deployment_id", "change_id"])


def speedup(repos: int = 10) -> dict[str, Any]:
    ds = generate(repos, seed=11)
    started = time.perf_counter()
    ours = dplink.link(ds, trunk=False)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = naive_link(ds)
    naive_s = time.perf_counter() - started
    key = ["repo", "deployment_id", "change_id"]
    same = set(map(tuple, ours[key].astype(object).to_numpy().tolist())) == set(
        map(tuple, theirs[key].to_numpy().tolist())
    )
    return {
        "slice_repos": repos,
        "slice_commits": len(ds.commits),
        "vectorised_link_s": round(ours_s, 3),
        "naive_loop_s": round(naive_s, 3),
        "speedup": round(naive_s / ours_s, 1),
        "same_links": bool(same),
    }


def exponent(small: dict[str, Any], large: dict[str, Any], key: str) -> float | None:
    """How time grows with the data between two runs: 1.0 is linear."""
    if small[key] <= 0 or large["commits"] <= small["commits"]:
        return None
    return round(
        math.log(large[key] / small[key]) / math.log(large["commits"] / small["commits"]), 2
    )


FORMS = ("arrow", "arrow+reuse", "python")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the full size")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument(
        "--forms", default=",".join(FORMS), help="comma-separated: " + ", ".join(FORMS)
    )
    parser.add_argument("--slice-repos", type=int, default=10)
    args = parser.parse_args()
    forms = [form for form in args.forms.split(",") if form]
    if unknown := set(forms) - set(FORMS):
        parser.error(f"unknown form(s) {sorted(unknown)}; choose from {', '.join(FORMS)}")
    if args.child is not None:
        print(json.dumps(run_once(args.child, forms[0])))
        return
    print(json.dumps(speedup(args.slice_repos)), flush=True)
    runs: dict[str, list[dict[str, Any]]] = {form: [] for form in forms}
    for share in (0.1, 0.3, 1.0):
        fraction = share * args.scale
        for form in forms:
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(fraction), "--forms", form],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[form].append(json.loads(child.stdout))
            print(child.stdout.strip(), flush=True)
        if len(forms) > 1:
            print(
                json.dumps(
                    {
                        "fraction": fraction,
                        "order": forms,
                        "link_metrics_summary_s": [
                            runs[form][-1]["link_metrics_summary_s"] for form in forms
                        ],
                        "cpu_s": [runs[form][-1]["cpu_s"] for form in forms],
                        "page_faults": [runs[form][-1]["page_faults"] for form in forms],
                        "peak_rss_mb": [
                            runs[form][-1]["peak_rss_during_link_and_metrics_mb"] for form in forms
                        ],
                        "dataset_rss_mb": [runs[form][-1]["dataset_rss_mb"] for form in forms],
                        "working_memory_mb": [
                            runs[form][-1]["working_memory_mb"] for form in forms
                        ],
                    }
                ),
                flush=True,
            )
    for form, done in runs.items():
        print(
            json.dumps(
                {
                    "form": form,
                    "growth_exponent_link": exponent(done[0], done[-1], "link_s"),
                    "growth_exponent_link_metrics": exponent(
                        done[0], done[-1], "link_metrics_summary_s"
                    ),
                    "growth_exponent_link_cpu": exponent(done[0], done[-1], "link_cpu_s"),
                    "growth_exponent_link_metrics_cpu": exponent(done[0], done[-1], "cpu_s"),
                    "from_to_commits": [done[0]["commits"], done[-1]["commits"]],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
