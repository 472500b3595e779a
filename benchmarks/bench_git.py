"""How fast the git connector reads a large history, against one-process-per-commit reading.

Builds a synthetic repository with ``git fast-import`` (https://git-scm.com/docs/git-fast-import):
pull-request merges, squash commits, direct pushes and a version tag every ~50 commits. Then
times GitConnector reading all three streams, a rerun with nothing new, and, as a baseline, one
``git log -1`` process per commit on a sample. Run::

    /work/venv/bin/python benchmarks/bench_git.py --commits 20000
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from deliverypulse_git import GitConnector

from deliverypulse.collector import classified
from deliverypulse.config import config_from_dict

START = 1_600_000_000  # 2020-09-13, seconds since the epoch
OFFSETS = ("+0200", "-0500", "+0000", "+0530")


class FastImport:
    """Writes a fast-import stream: commits with marks, so merges and tags can name them."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.marks = 0
        self.clock = START
        self.commits = 0

    def _data(self, text: str) -> None:
        raw = text.encode()
        self.lines.append(b"data %d\n" % len(raw) + raw + b"\n")

    def commit(self, ref: str, message: str, parents: list[int], path: str) -> int:
        self.marks += 1
        self.commits += 1
        self.clock += 600
        offset = OFFSETS[self.marks % len(OFFSETS)]
        who = f"Dev {self.marks % 37} <dev{self.marks % 37}@example.com>"
        self.lines.append(f"commit {ref}\nmark :{self.marks}\n".encode())
        self.lines.append(f"author {who} {self.clock - 300} {offset}\n".encode())
        self.lines.append(f"committer {who} {self.clock} {offset}\n".encode())
        self._data(message)
        if parents:
            self.lines.append(f"from :{parents[0]}\n".encode())
        for parent in parents[1:]:
            self.lines.append(f"merge :{parent}\n".encode())
        self.lines.append(f"M 100644 inline {path}\n".encode())
        self._data("".join(f"line {self.marks} {n}\n" for n in range(self.marks % 7 + 1)))
        return self.marks

    def tag(self, name: str, mark: int) -> None:
        self.lines.append(f"tag {name}\nfrom :{mark}\n".encode())
        self.lines.append(
            f"tagger Release Bot <rel@example.com> {self.clock + 60} +0100\n".encode()
        )
        self._data(f"Release {name}")

    def stream(self) -> bytes:
        return b"".join(self.lines) + b"done\n"


def build_repo(path: Path, target_commits: int, seed: int = 7) -> int:
    """A repository of about ``target_commits`` commits; returns how many it has."""
    rng = random.Random(seed)
    script = FastImport()
    tip = script.commit("refs/heads/main", "Initial commit", [], "README.md")
    number = 0
    releases = 0
    next_release = 50
    while script.commits < target_commits:
        number += 1
        file = f"src/module_{rng.randrange(200)}.py"
        kind = rng.random()
        if kind < 0.45:  # a pull request of 1-4 commits, merged with a merge commit
            side = tip
            for step in range(rng.randint(1, 4)):
                side = script.commit(
                    "refs/heads/topic", f"Work on feature {number} step {step}", [side], file
                )
            tip = script.commit(
                "refs/heads/main",
                f"Merge pull request #{number} from octo/feature-{number}\n\nFeature {number}",
                [tip, side],
                file,
            )
        elif kind < 0.75:  # a squash merge
            tip = script.commit("refs/heads/main", f"Change {number} (#{number})", [tip], file)
        else:  # a direct push
            tip = script.commit("refs/heads/main", f"Tweak {number}", [tip], file)
        if script.commits >= next_release:
            releases += 1
            script.tag(f"v1.{releases}.0", tip)
            next_release += 50
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"], input=script.stream(), check=True
    )
    subprocess.run(["git", "-C", str(path), "reset", "-q", "--hard", "main"], check=True)
    return script.commits


def time_connector(path: Path) -> tuple[float, dict[str, int], float]:
    """Seconds to read all streams (with the core's classification of changes, as a collect
    stores them), the rows per stream, and seconds for a rerun."""
    config = config_from_dict({"sources": [{"type": "git", "path": str(path)}]})
    source = config.sources[0]
    started = time.perf_counter()
    connector = GitConnector(source)
    (repo,) = connector.repos()
    rows: dict[str, int] = {}
    cursor = None
    for stream in connector.streams:
        for page in connector.read(stream, repo, None):
            records = classified(source, stream, page.records)
            assert isinstance(records, pd.DataFrame)
            rows[stream] = rows.get(stream, 0) + len(records)
            cursor = page.cursor_text or cursor
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    rerun = GitConnector(source)
    for stream in rerun.streams:
        assert not list(rerun.read(stream, repo, cursor))
    return elapsed, rows, time.perf_counter() - started


def time_one_process_per_commit(path: Path, sample: int) -> float:
    """Commits per second when each commit costs its own ``git log -1`` process."""
    listing = subprocess.run(
        ["git", "-C", str(path), "rev-list", f"--max-count={sample}", "main"],
        capture_output=True,
        text=True,
        check=True,
    )
    shas = listing.stdout.split()
    started = time.perf_counter()
    for sha in shas:
        subprocess.run(
            ["git", "-C", str(path), "log", "-1", "--numstat", "--format=%H%x00%P%x00%an%x00%at",
             sha],
            capture_output=True,
            check=True,
        )  # fmt: skip
    return len(shas) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20_000, help="size of the synthetic repo")
    parser.add_argument("--sample", type=int, default=300, help="commits for the naive baseline")
    parser.add_argument("--keep", type=Path, help="build the repo here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "synthetic"
        started = time.perf_counter()
        commits = build_repo(path, args.commits)
        print(
            f"built {commits} commits with git fast-import in {time.perf_counter() - started:.1f} s"
        )
        elapsed, rows, rerun = time_connector(path)
        rate = rows["commits"] / elapsed
        print(
            f"GitConnector: {rows['commits']} commits, {rows['changes']} changes, "
            f"{rows['deployments']} deployments in {elapsed:.2f} s = {rate:,.0f} commits/s"
        )
        print(f"rerun with nothing new: {rerun * 1000:.0f} ms")
        version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True)
        print(f"({version.stdout.strip()}, Python {sys.version.split()[0]})")
        naive = time_one_process_per_commit(path, args.sample)
        print(
            f"baseline, one git process per commit ({args.sample} sampled): {naive:,.0f} commits/s"
            f" -> {rows['commits'] / naive:.0f} s for this repo ({rate / naive:.0f}x slower)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
