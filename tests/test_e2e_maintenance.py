"""Issue 10's first acceptance test: a library-style release flow, collected with no options.

The history is shaped like flask's: release tags without "v", a maintenance branch whose pull
requests ship in a patch release tagged after a newer minor, forward merges of the maintenance
branches into main, and archive / non-release tags. `collect --git` must find exactly the
releases, charge every pull request to the release that first contained it (asked of
`git tag --contains`, not of our code), and report a change failure rate of 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from gitrepo import BOB, GitRepo

import deliverypulse as dp

RELEASES = ["1.0.0", "1.1.0", "1.0.1", "1.1.1", "1.2.0"]


def pull_request(repo: GitRepo, number: int, into: str, day: str, *, style: str = "github") -> str:
    """A branch with one commit, merged into ``into`` the way GitHub writes it."""
    repo.checkout(into)
    repo.checkout(f"pr-{number}", new=True)
    repo.commit(
        f"Work for #{number}",
        date=f"2024-01-{day}T08:00:00-05:00",
        author=BOB,
        files={f"pr{number}.txt": f"{number}\n"},
    )
    repo.checkout(into)
    subject = (
        f"Merge pull request #{number} from octo/pr-{number}"
        if style == "github"
        else f"Change number {number} (#{number})"  # GitHub's "pull request title" message
    )
    return repo.merge(f"pr-{number}", subject, date=f"2024-01-{day}T12:00:00+00:00")


def build(path: Path) -> tuple[GitRepo, dict[str, str]]:
    repo = GitRepo(path)
    merges: dict[str, str] = {}
    repo.commit("Initial commit", date="2024-01-01T09:00:00+00:00", files={"app.py": "0\n"})
    repo.tag("1.0.0", date="2024-01-01T10:00:00+00:00")
    repo.git("branch", "1.0.x")
    merges["1"] = pull_request(repo, 1, "main", "05")
    repo.tag("1.1.0", date="2024-01-10T10:00:00+00:00")
    repo.git("branch", "1.1.x")
    # The 1.0 line: a pull request and a commit pushed straight to the branch, released as
    # 1.0.1 *after* 1.1.0, then merged forward into main.
    merges["2"] = pull_request(repo, 2, "1.0.x", "11", style="title")
    merges["release-1.0.1"] = repo.commit(
        "release version 1.0.1",
        date="2024-01-12T09:00:00+00:00",
        files={"CHANGES": "1.0.1\n"},
    )
    repo.tag("1.0.1", date="2024-01-12T10:00:00+00:00")
    repo.checkout("main")
    forward_1 = repo.merge("1.0.x", "Merge branch '1.0.x'", date="2024-01-13T09:00:00+00:00")
    merges["3"] = repo.commit(
        "Add a feature (#3)", date="2024-01-14T09:00:00+00:00", files={"app.py": "3\n"}
    )
    # The 1.1 line: a pull request merged forward *before* its patch release is tagged.
    merges["4"] = pull_request(repo, 4, "1.1.x", "15")
    repo.checkout("main")
    forward_2 = repo.merge("1.1.x", "Merge branch '1.1.x'", date="2024-01-16T09:00:00+00:00")
    repo.checkout("1.1.x")
    repo.tag("1.1.1", date="2024-01-17T10:00:00+00:00")
    merges["5"] = pull_request(repo, 5, "main", "18")
    repo.tag("1.2.0", date="2024-01-20T10:00:00+00:00")
    # Late non-release tags on old commits: an archive marker and a moving tag.
    repo.tag("1.0.x", "1.0.x", date="2024-02-01T10:00:00+00:00")
    repo.tag("nightly", "1.0.0", date="2024-02-02T10:00:00+00:00")
    merges["forward"] = f"{forward_1} {forward_2}"
    return repo, merges


def collect(repo: Path, out: Path, *options: str) -> None:
    command = [sys.executable, "-m", "deliverypulse", "collect", "--git", str(repo)]
    done = subprocess.run(
        [*command, "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def first_release(repo: GitRepo, sha: str, releases: pd.DataFrame) -> str:
    """The release git says first contained ``sha``: of the tags containing it, the earliest."""
    containing = set(repo.git("tag", "--contains", sha).split())
    chosen = releases.loc[releases["deployment_id"].isin(containing)]
    return str(chosen.sort_values("finished_at")["deployment_id"].iloc[0])


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, dict[str, str], Path]:
    root = tmp_path_factory.mktemp("maintenance")
    repo, merges = build(root / "lib")
    out = root / "data"
    collect(repo.path, out)
    return repo, merges, out


def test_no_options_find_exactly_the_releases(
    history: tuple[GitRepo, dict[str, str], Path],
) -> None:
    _, _, out = history
    ds = dp.load(out)
    ordered = ds.deployments.sort_values("finished_at")
    assert list(ordered["deployment_id"]) == RELEASES


def test_every_pull_request_ships_with_the_release_that_first_contained_it(
    history: tuple[GitRepo, dict[str, str], Path],
) -> None:
    repo, merges, out = history
    ds = dp.load(out)
    links = dp.link(ds)
    charged = dict(zip(links["change_id"], links["deployment_id"], strict=True))
    releases = ds.deployments
    expected = {
        change: first_release(repo, merges[key], releases)
        for change, key in (
            ("1", "1"),
            ("2", "2"),
            (merges["release-1.0.1"], "release-1.0.1"),
            ("3", "3"),
            ("4", "4"),
            ("5", "5"),
        )
    }
    # What git says, written out: #2 and the release commit ship in 1.0.1 (tagged after
    # 1.1.0), #4 in 1.1.1 although main merged it forward before the tag.
    assert expected == {
        "1": "1.1.0",
        "2": "1.0.1",
        merges["release-1.0.1"]: "1.0.1",
        "3": "1.2.0",
        "4": "1.1.1",
        "5": "1.2.0",
    }
    assert charged == expected  # and nothing else: the forward merges are no change
    for forward in merges["forward"].split():
        assert forward not in set(ds.changes["change_id"])
    bases = ds.changes.set_index("change_id")["base_ref"].to_dict()
    assert (bases["1"], bases["2"], bases["4"]) == ("main", "1.0.x", "1.1.x")
    # PR #2 waited one day, not the 9 days until main's next release.
    lead = dp.lead_times(ds).set_index("change_id")
    assert lead.loc["2", "deployed_at"] == pd.Timestamp("2024-01-12T10:00Z")


def test_change_failure_rate_is_zero(history: tuple[GitRepo, dict[str, str], Path]) -> None:
    _, _, out = history
    ds = dp.load(out)
    summary = dp.summary(ds)
    assert summary["change_failure_rate"].iloc[0] == 0
    assert not dp.deployment_outcomes(ds)["failed"].any()


def test_archive_tags_taken_in_on_purpose_roll_nothing_back(
    history: tuple[GitRepo, dict[str, str], Path], tmp_path: Path
) -> None:
    # With every tag that starts with a digit, "1.0.x" (a late tag of 1.0.1's commit) joins
    # the 1.0 line as a redeploy of what that line has live: no rollback, no failure.
    repo, _, _ = history
    collect(repo.path, tmp_path / "all", "--deployments", r"tags:^\d")
    ds = dp.load(tmp_path / "all")
    assert set(ds.deployments["deployment_id"]) == {*RELEASES, "1.0.x"}
    assert not dp.deployment_outcomes(ds)["failed"].any()
