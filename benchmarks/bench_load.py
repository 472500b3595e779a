"""Benchmark: ``dp.load`` against ``pyarrow.parquet.read_table`` on the same files.

A synthetic dataset (``bench_metrics.generate``: 2,000 pull requests, ~10,000 commits and 200
deployments per repo) is written by the store (``Dataset.save``), then each reader runs in a
child process of its own, so that its time and peak memory (max RSS, minus what the
interpreter and imports take before reading) are its own. Every child imports pyarrow and
deliverypulse before its clock starts, so neither reader's time includes imports; what is timed
is a fresh process's first call, one-time costs inside the call included:

- ``read_table``: ``pyarrow.parquet.read_table`` of every table's files (the floor);
- ``load``: ``deliverypulse.load`` (list and string columns stay Arrow-backed);
- ``load_python_lists``: the same with list columns turned into Python lists
  (``from_arrow(python_lists=True)``), how ``load`` read them before.

    python benchmarks/bench_load.py                  # 250 repos (~105 MB of Parquet)
    python benchmarks/bench_load.py --repos 20       # a quick check
    python benchmarks/bench_load.py --keep /tmp/d    # write the dataset there (reused if it exists)

Each reader's median wall time and CPU time (user + system, every thread) is printed with its
ratio to ``read_table``'s; the CPU time is the steadier figure on a shared machine. Of it,
the system time (``sys_s``) is mostly first-touch page faults on new memory, which on a
virtual machine cost about as much as the decoding: every megabyte a reader allocates is time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

READERS = ("read_table", "load", "load_python_lists")
KEYS = ("s", "cpu_s", "sys_s", "peak_mb")


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(reader: str, root: Path) -> dict[str, Any]:
    """Time one reader on ``root`` in this (fresh) process."""
    import pyarrow.parquet as pq

    import deliverypulse as dp
    from deliverypulse.dataset import Dataset
    from deliverypulse.store.coerce import from_arrow
    from deliverypulse.store.parquet import ParquetStore
    from deliverypulse.store.schemas import TABLES

    before = _status_mb("VmRSS")
    times = os.times()
    started = time.perf_counter()
    if reader == "read_table":
        tables = [pq.read_table(path) for path in sorted(root.iterdir()) if path.is_dir()]
        rows = sum(table.num_rows for table in tables)
    elif reader == "load":
        ds = dp.load(root)
        rows = sum(ds.summary().values())
    else:
        store = ParquetStore(root)
        frames = {name: from_arrow(store.read(name), python_lists=True) for name in TABLES}
        rows = sum(Dataset(**frames).summary().values())
    seconds = time.perf_counter() - started
    done = os.times()
    return {
        "reader": reader,
        "s": round(seconds, 3),
        "cpu_s": round(done.user + done.system - times.user - times.system, 3),
        "sys_s": round(done.system - times.system, 3),
        "peak_mb": round(_status_mb("VmHWM") - before),
        "rows": rows,
    }


def write(root: Path, repos: int) -> float:
    """The synthetic dataset of ``repos`` repos, saved by the store; its size in MB."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_metrics import generate

    generate(repos).save(root)
    return sum(path.stat().st_size for path in root.rglob("*.parquet")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=250)
    parser.add_argument("--runs", type=int, default=3, help="runs per reader (median kept)")
    parser.add_argument(
        "--keep", type=Path, help="write the dataset to this folder and keep it (reused if present)"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    if args.keep is not None:
        root = args.keep
        run(root, args.repos, args.runs, reuse=root.exists())
        return
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder:
        run(Path(folder) / "data", args.repos, args.runs, reuse=False)


def run(root: Path, repos: int, runs: int, *, reuse: bool) -> None:
    """Write (or reuse) the dataset at ``root``, then time every reader ``runs`` times."""
    if reuse:
        size = sum(path.stat().st_size for path in root.rglob("*.parquet")) / 1e6
    else:
        size = write(root, repos)
    print(json.dumps({"repos": repos, "parquet_mb": round(size, 1), "reused": reuse}), flush=True)
    results: dict[str, list[dict[str, Any]]] = {reader: [] for reader in READERS}
    for _ in range(runs):
        for reader in READERS:  # interleaved, so a busy moment hits every reader alike
            done = subprocess.run(
                [sys.executable, __file__, "--child", reader, str(root)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[reader].append(json.loads(done.stdout))
    floor = {key: statistics.median(run[key] for run in results["read_table"]) for key in KEYS}
    for reader, done_runs in results.items():
        median = {key: statistics.median(run[key] for run in done_runs) for key in KEYS}
        print(
            json.dumps(
                {
                    "reader": reader,
                    "median_s": round(median["s"], 3),
                    "runs_s": [run["s"] for run in done_runs],
                    "median_cpu_s": round(median["cpu_s"], 3),
                    "median_sys_s": round(median["sys_s"], 3),
                    "peak_mb": median["peak_mb"],
                    "x_read_table_time": round(median["s"] / floor["s"], 2),
                    "x_read_table_cpu": round(median["cpu_s"] / floor["cpu_s"], 2),
                    "x_read_table_memory": round(median["peak_mb"] / floor["peak_mb"], 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
