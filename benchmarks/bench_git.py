"""How fast the git connector reads a large history, in full and incrementally.

Builds a synthetic repository with ``git fast-import`` (https://git-scm.com/docs/git-fast-import):
pull-request merges, squash commits, direct pushes and a version tag every ~50 commits. Then
times, side by side: the one ``git log --first-parent --numstat`` a full read cannot avoid;
GitConnector reading all three streams from scratch; reruns with nothing new, after one new
tag on a stored commit, and after 10 new commits (seconds, commits git listed, commits git
sized, rows yielded); and, as the naive baseline, one ``git log -1`` process per commit on a
sample. ``--real PATH`` also measures a clone of a real repository (cloned to a scratch
folder first, so the original is never written). Run::

    /work/venv/bin/python benchmarks/bench_git.py --commits 20000 --real /work/real/psf+requests
"""

from __future__ import annotations

import argparse
import os
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


def read_all(path: Path, cursors: dict[str, str]) -> tuple[float, dict[str, int], str, str]:
    """One run of every stream (with the core's classification of changes, as a collect
    stores them) from ``cursors``: seconds, rows per stream, the new cursors (updated in
    place) and what git and the cache gave."""
    config = config_from_dict({"sources": [{"type": "git", "path": str(path)}]})
    source = config.sources[0]
    started = time.perf_counter()
    connector = GitConnector(source)
    (repo,) = connector.repos()
    rows: dict[str, int] = {}
    for stream in connector.streams:
        for page in connector.read(stream, repo, cursors.get(stream)):
            records = classified(source, stream, page.records)
            assert isinstance(records, pd.DataFrame)
            rows[stream] = rows.get(stream, 0) + len(records)
            cursors[stream] = page.cursor_text or cursors.get(stream, "")
    elapsed = time.perf_counter() - started
    stats = connector.stats
    return elapsed, rows, f"{stats.read:,} listed, {stats.sized:,} sized", f"{stats.cached:,}"


def git(path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.strip()


def time_numstat(path: Path) -> float:
    """The one unavoidable full read: sizes of the mainline's and the tags' first-parent
    history, as the connector asks for them."""
    started = time.perf_counter()
    subprocess.run(
        ["git", "-C", str(path), "log", "--first-parent", "--diff-merges=first-parent",
         "--numstat", "--find-renames", "--no-ext-diff", "--no-textconv", "--format=%x1e%H",
         "HEAD", "--tags"],
        stdout=subprocess.DEVNULL,
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def add_commits(path: Path, count: int) -> None:
    """``count`` new commits on the checked-out branch, each changing a file, the last tagged
    as a release (so deployments, changes and commits all move)."""
    clock = int(git(path, "log", "-1", "--format=%ct")) + 60
    for number in range(count):
        when = f"{clock + 60 * number} +0000"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_DATE": when,
        }
        (path / "bench-new.txt").write_text(f"{number}\n" * (number + 1), encoding="utf-8")
        git(path, "add", "bench-new.txt", env=env)
        git(path, "commit", "-q", "-m", f"Bench change {number} (#{900_000 + number})", env=env)
    git(path, "tag", "99.0.1")


def measure(path: Path, label: str) -> None:
    """Full read against the numstat floor, then the three reruns, printed as one table."""
    commits = int(git(path, "rev-list", "--count", "HEAD", "--tags"))
    floor = time_numstat(path)
    cursors: dict[str, str] = {}
    runs = [("full read (no cursor)", *read_all(path, cursors))]
    runs.append(("rerun, nothing new", *read_all(path, cursors)))
    git(path, "tag", "99.0.0", "HEAD~3")
    runs.append(("rerun, 1 new tag on a stored commit", *read_all(path, cursors)))
    add_commits(path, 10)
    runs.append(("rerun, 10 new commits + a tag", *read_all(path, cursors)))
    print(f"\n{label}: {commits:,} commits; git log --first-parent --numstat: {floor:.2f} s")
    print(f"  {'run':<38}{'seconds':>9}{'x numstat':>11}  {'git read':<26}{'cached':>9}  rows")
    for name, seconds, rows, read, cached in runs:
        shown = ", ".join(f"{stream} {count:,}" for stream, count in rows.items())
        print(
            f"  {name:<38}{seconds:>9.2f}{seconds / floor:>10.2f}x  {read:<26}{cached:>9}  "
            f"{shown or 'none'}"
        )


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
    parser.add_argument("--real", type=Path, action="append", default=[], help="a real clone")
    args = parser.parse_args(argv)
    version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True)
    print(f"({version.stdout.strip()}, Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "synthetic"
        started = time.perf_counter()
        commits = build_repo(path, args.commits)
        print(
            f"built {commits} commits with git fast-import in {time.perf_counter() - started:.1f} s"
        )
        measure(path, "synthetic")
        naive = time_one_process_per_commit(path, args.sample)
        print(
            f"\nbaseline, one git process per commit ({args.sample} sampled): {naive:,.0f} "
            f"commits/s -> {commits / naive:.0f} s for the synthetic repo"
        )
        for real in args.real:
            clone = Path(scratch) / real.name
            subprocess.run(["git", "clone", "-q", str(real), str(clone)], check=True)
            measure(clone, real.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
