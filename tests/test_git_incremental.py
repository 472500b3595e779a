"""Incremental git collection: a rerun reads from git only what is new, and stores exactly what
one full run over the final repository stores.

Every step collects into one dataset incrementally and, as the reference, into a fresh dataset
in one full run; the stored tables must be equal. What git read is counted at the one place
the connector streams git's output, and checked against ``git rev-list --count NEW --not OLD``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from deliverypulse_git import GitConnector
from deliverypulse_git.gitlog import Git
from gitrepo import BOB, GitRepo

import deliverypulse as dp
from deliverypulse.config import config_from_dict
from deliverypulse.store import ParquetStore
from deliverypulse.store.schemas import spec_for

TABLES = ("deployments", "changes", "commits")


class GitSpy:
    """Counts the records of every streamed git command: ``log`` (commits read) and
    ``numstat`` (commits sized)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, int]] = []
        original = Git.stream
        calls = self.calls

        def stream(git: Git, args: list[str], separator: bytes, stdin: str = "") -> Iterator[str]:
            kind = "numstat" if "--numstat" in args else "log"
            count = 0
            for record in original(git, args, separator, stdin):
                count += 1
                yield record
            calls.append((kind, count))

        monkeypatch.setattr(Git, "stream", stream)

    def take(self) -> dict[str, int]:
        """Records per kind since the last call (a kind with no call is absent)."""
        totals: dict[str, int] = {}
        for kind, count in self.calls:
            totals[kind] = totals.get(kind, 0) + count
        self.calls.clear()
        return totals


def collect(repo: GitRepo, out: Path, *, full_refresh: bool = False) -> dict[str, int]:
    """One collect of ``repo`` into ``out``; the rows fetched per stream."""
    config = config_from_dict({"sources": [{"type": "git", "path": str(repo.path)}]}, output=out)
    summary = dp.run_collect(config, full_refresh=full_refresh)
    assert summary.ok, summary.lines()
    return {result.stream: result.fetched for result in summary.results}


def stored(out: Path, table: str) -> pd.DataFrame:
    spec = spec_for(table)
    frame = ParquetStore(out).read(table).to_pandas()
    key = [name for name in spec.key if name != "source"]
    frame["source"] = frame["source"].astype(str)
    return frame.sort_values(key).reset_index(drop=True)


def assert_same_as_full_run(repo: GitRepo, out: Path, scratch: Path) -> None:
    """The incremental dataset ``out`` holds exactly the rows of one full run now."""
    scratch.mkdir(exist_ok=True)
    reference = scratch / f"full-{len(list(scratch.iterdir()))}"
    collect(repo, reference)
    for table in TABLES:
        pd.testing.assert_frame_equal(stored(out, table), stored(reference, table), obj=table)


def new_commits(repo: GitRepo, new: list[str], old: list[str]) -> int:
    """What git itself says is new: commits reachable from ``new`` and not from ``old``."""
    return int(repo.git("rev-list", "--count", *new, "--not", *old))


def tips(repo: GitRepo) -> list[str]:
    refs = repo.git("for-each-ref", "--format=%(objectname)^{commit}", "refs/heads", "refs/tags")
    return [repo.sha(ref) for ref in refs.split()]


def pull_request(repo: GitRepo, number: int, branch: str, day: int, *, base: str = "main") -> str:
    repo.checkout(branch, new=True)
    repo.commit(
        f"Work on {branch}",
        date=f"2024-05-{day:02}T08:00:00-05:00",
        author=BOB,
        files={f"{branch}.txt": f"{branch}\n" * number},
    )
    repo.checkout(base)
    return repo.merge(
        branch,
        f"Merge pull request #{number} from octo/{branch}",
        f"Feature {number}",
        date=f"2024-05-{day:02}T12:00:00+00:00",
    )


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """main with pull requests, a squash merge and a direct push, release tags without "v",
    and a maintenance branch 1.0.x with a pull request of its own and its own release."""
    repo = GitRepo(tmp_path / "app")
    repo.commit("Initial commit", date="2024-05-01T09:00:00+02:00", files={"a.txt": "1\n"})
    repo.tag("1.0.0", date="2024-05-01T10:00:00+00:00")
    pull_request(repo, 1, "feature-1", 2)
    repo.commit("Add cache (#2)", date="2024-05-03T09:00:00+00:00", files={"cache.txt": "c\n"})
    repo.commit("Tweak docs", date="2024-05-03T10:00:00+00:00", files={"a.txt": "1\n2\n"})
    repo.tag("1.1.0", date="2024-05-03T11:00:00+00:00")
    repo.checkout("1.0.x", new=True, start="1.0.0")
    pull_request(repo, 3, "fix-login", 4, base="1.0.x")
    repo.tag("1.0.1", date="2024-05-04T13:00:00+00:00")
    repo.checkout("main")
    return repo


def test_a_new_tag_on_a_stored_commit_reads_no_history(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = GitSpy(monkeypatch)
    out = tmp_path / "incremental"
    first = collect(repo, out)
    assert first == {"deployments": 3, "changes": 3, "commits": 7}
    read = spy.take()
    assert read["log"] == new_commits(repo, tips(repo), []) == 7
    # Nothing new: nothing is read at all.
    assert collect(repo, out) == {"deployments": 0, "changes": 0, "commits": 0}
    assert spy.take() == {}
    # A release tag on a commit already stored: one deployment row, no git log of any kind.
    repo.tag("1.1.1", "main~1", date="2024-05-06T09:00:00+00:00")
    assert collect(repo, out) == {"deployments": 1, "changes": 0, "commits": 0}
    assert spy.take() == {}
    assert_same_as_full_run(repo, out, tmp_path / "reference")
    assert stored(out, "deployments")["deployment_id"].tolist() == [
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "1.1.1",
    ]


def test_new_commits_are_read_alone_and_rows_of_old_ones_follow_the_graph(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = GitSpy(monkeypatch)
    out = tmp_path / "incremental"
    collect(repo, out)
    cache_sha = repo.sha("main~1")  # "Add cache (#2)", stored by the first run
    old_tips = tips(repo)
    spy.take()
    # A pull request reverting #2 (stored in the first run), the maintenance line merged
    # forward, a squash merge and a release.
    repo.checkout("revert-cache", new=True)
    repo.git("revert", "--no-edit", cache_sha, date="2024-05-07T08:00:00+00:00")
    repo.checkout("main")
    repo.merge(
        "revert-cache",
        "Merge pull request #5 from octo/revert-cache",
        "Revert the cache",
        date="2024-05-07T12:00:00+00:00",
    )
    repo.merge("1.0.x", "Merge branch '1.0.x'", date="2024-05-08T09:00:00+00:00")
    repo.commit("Faster login (#6)", date="2024-05-08T10:00:00+00:00", files={"b.txt": "b\n"})
    repo.tag("1.2.0", date="2024-05-08T11:00:00+00:00")
    fetched = collect(repo, out)
    read = spy.take()
    expected = new_commits(repo, tips(repo), old_tips)
    assert expected == 4
    assert read["log"] == expected  # only the new commits were listed
    # Sized: the new commits on main's first-parent history (the revert inside #5 is no
    # line's commit), and nothing already stored.
    assert read["numstat"] == 3
    assert_same_as_full_run(repo, out, tmp_path / "reference")
    changes = stored(out, "changes").set_index("change_id")
    # The revert names a commit stored by the first run; the graph still resolves it.
    assert changes.loc["5", "reverts"] == "2"
    assert bool(changes.loc["5", "is_revert"])
    # Merged forward, 1.0.x is a line: its pull request's base is the branch now. The full
    # run says so too, and the rerun re-stored that older change.
    assert changes.loc["3", "base_ref"] == "1.0.x"
    assert fetched["changes"] == 3  # #5, #6 and the re-described #3
    assert fetched["deployments"] == 1


def test_force_push_deleted_tag_and_lost_tip_keep_what_was_stored(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "incremental"
    collect(repo, out)
    maintenance = repo.git("rev-list", "1.0.x", "--not", "main").split()
    base = repo.sha("main")
    repo.commit("Work in progress (#7)", date="2024-05-09T09:00:00+00:00", files={"w.txt": "w\n"})
    dropped = [repo.sha("main"), repo.commit("Tweak", date="2024-05-09T10:00:00+00:00")]
    collect(repo, out)
    # Force-push: main rewritten, a tag deleted, and the old tip garbage-collected away.
    repo.git("reset", "-q", "--hard", base)
    repo.git("tag", "-d", "1.0.1")
    repo.commit("Redo (#8)", date="2024-05-10T09:00:00+00:00", files={"w.txt": "r\n"})
    repo.git("reflog", "expire", "--expire=now", "--all")
    repo.git("gc", "-q", "--prune=now")
    with pytest.raises(AssertionError):  # the old tip is gone from the repository
        repo.git("cat-file", "-e", dropped[1])
    fetched = collect(repo, out)
    assert fetched["commits"] == 1 and fetched["changes"] == 1
    reference = tmp_path / "reference"
    collect(repo, reference)
    # History is append-only: the rewritten commits, their change, the deleted tag's
    # deployment and the maintenance commits only that tag reached stay stored; everything
    # else equals a full run.
    for table, key, gone in (
        ("commits", "sha", {*dropped, *maintenance}),
        ("changes", "change_id", {"7", "3"}),
        ("deployments", "deployment_id", {"1.0.1"}),
    ):
        mine, full = stored(out, table), stored(reference, table)
        assert set(mine[key]) - set(full[key]) == gone
        kept = mine[~mine[key].isin(gone)].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, full, obj=table)
    # A full refresh re-reads everything from git and drops what the repository lost.
    collect(repo, out, full_refresh=True)
    for table in TABLES:
        pd.testing.assert_frame_equal(stored(out, table), stored(reference, table), obj=table)


def test_a_lost_or_lying_cache_costs_a_full_read_never_wrong_rows(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = GitSpy(monkeypatch)
    out = tmp_path / "incremental"
    collect(repo, out)
    connector = GitConnector(
        config_from_dict({"sources": [{"type": "git", "path": str(repo.path)}]}).sources[0]
    )
    cache = connector.cache_path()
    assert cache.exists() and cache.is_relative_to(repo.path / ".git")
    spy.take()
    # Lost: the whole history is read again, and still only the new row is stored.
    cache.unlink()
    repo.commit("Later (#9)", date="2024-05-11T09:00:00+00:00")
    assert collect(repo, out) == {"deployments": 0, "changes": 1, "commits": 1}
    assert spy.take()["log"] == new_commits(repo, tips(repo), []) == 8
    # Lying: a cache whose roots claim more than it holds is caught by its missing parents.
    from deliverypulse_git import history

    held = history.load(cache, connector._fingerprint())
    assert held is not None
    positions = [p for p, sha in enumerate(held.commits.shas) if sha != repo.sha("main~1")]
    lie = history.History(held.subset(positions), held.sizes, held.roots)
    history.save(cache, lie, connector._fingerprint())
    repo.commit("Even later (#10)", date="2024-05-12T09:00:00+00:00")
    assert collect(repo, out) == {"deployments": 0, "changes": 1, "commits": 1}
    assert spy.take()["log"] == 1 + 9  # the new commit, then the whole history
    assert_same_as_full_run(repo, out, tmp_path / "reference")


def test_a_new_mailmap_renames_stored_authors(repo: GitRepo, tmp_path: Path) -> None:
    out = tmp_path / "incremental"
    collect(repo, out)
    (repo.path / ".mailmap").write_text(f"Robert Roy <{BOB[1]}>\n", encoding="utf-8")
    fetched = collect(repo, out)
    # Names of every commit may change: the cache is dropped and every row stored again.
    assert fetched == {"deployments": 3, "changes": 3, "commits": 7}
    assert (stored(out, "commits")["author"] == "Robert Roy").sum() == 2  # Bob's two commits
    assert_same_as_full_run(repo, out, tmp_path / "reference")
