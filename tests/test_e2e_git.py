"""Issue acceptance, as a new user would run it: `collect --git REPO --out D` twice, same rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from gitrepo import BOB, GitRepo

import deliverypulse as dp


def build_repo(path: Path) -> GitRepo:
    repo = GitRepo(path)
    repo.commit("Initial commit", date="2024-03-01T09:00:00+02:00", files={"a.txt": "1\n"})
    repo.tag("v1.0.0", date="2024-03-01T10:00:00+02:00")
    for number, day in ((11, 4), (12, 5)):
        repo.checkout(f"feature-{number}", new=True)
        repo.commit(
            f"Work on {number}",
            date=f"2024-03-0{day}T08:00:00-05:00",
            author=BOB,
            files={f"f{number}.txt": "x\n" * number},
        )
        repo.checkout("main")
        repo.merge(
            f"feature-{number}",
            f"Merge pull request #{number} from octo/feature-{number}",
            f"Feature {number}",
            date=f"2024-03-0{day}T12:00:00+00:00",
        )
    repo.tag("v1.1.0", date="2024-03-06T10:00:00+00:00")
    repo.commit("Fix typo (#13)", date="2024-03-07T10:00:00+00:00", files={"a.txt": "2\n"})
    repo.tag("v1.1.1", date="2024-03-07T11:00:00+00:00")
    return repo


def collect(repo: Path, out: Path) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deliverypulse",
            "collect",
            "--git",
            str(repo),
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshot(out: Path) -> dict[str, pd.DataFrame]:
    ds = dp.load(out)
    return {name: ds.table(name) for name in ("deployments", "changes", "commits")}


def test_collect_twice_gives_the_same_rows(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "shop")
    out = tmp_path / "data"
    first = collect(repo.path, out)
    fetched = {s["stream"]: s["fetched"] for s in first["streams"]}
    assert fetched == {"deployments": 3, "changes": 3, "commits": 6}
    before = snapshot(out)

    second = collect(repo.path, out)
    assert {s["added"] for s in second["streams"]} == {0}
    after = snapshot(out)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame)

    # a full refresh re-reads everything and still duplicates nothing
    subprocess.run(
        [
            sys.executable,
            "-m",
            "deliverypulse",
            "collect",
            "--git",
            str(repo.path),
            "--out",
            str(out),
            "--full-refresh",
        ],
        check=True,
        capture_output=True,
    )
    for name, frame in before.items():
        pd.testing.assert_frame_equal(snapshot(out)[name], frame)

    changes = before["changes"].set_index("change_id")
    assert changes.loc["11", "first_commit_at"] == pd.Timestamp("2024-03-04T13:00:00Z")
    assert changes.loc["13", "merge_sha"] == repo.sha("HEAD")


def test_new_commits_are_picked_up_incrementally(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "shop")
    out = tmp_path / "data"
    collect(repo.path, out)
    repo.commit("Another fix (#14)", date="2024-03-08T10:00:00+00:00", files={"b.txt": "b\n"})
    repo.tag("v1.1.2", date="2024-03-08T11:00:00+00:00")
    added = {s["stream"]: s["added"] for s in collect(repo.path, out)["streams"]}
    assert added == {"deployments": 1, "changes": 1, "commits": 1}
    assert len(dp.load(out).deployments) == 4
