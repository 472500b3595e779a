"""What a distributed engine's worker reads: only the part files of its repos' buckets, only
the row groups that may hold them, and partitions cut in the bucketed files' order."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from deliverypulse.dataset import Dataset, empty_frame
from deliverypulse.dora import engine as engine_module
from deliverypulse.dora.engine import plan_partitions
from deliverypulse.dora.options import MetricOptions
from deliverypulse.store import parquet as parquet_module
from deliverypulse.store.buckets import settle_buckets
from deliverypulse.store.location import resolve
from deliverypulse.store.parquet import ParquetStore, read_repos

BUCKETS = 4
REPOS = [f"org/r{k:02d}" for k in range(40)]


def hand_bucket(repo: str, buckets: int = BUCKETS) -> int:
    """The documented rule, computed here: blake2b (8 bytes, big-endian) of the lower-cased
    name, modulo the bucket count."""
    digest = hashlib.blake2b(repo.lower().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def _organisation() -> Dataset:
    """40 repos, repo k with 5 + k commits (so each repo's count is known by hand)."""
    commits = [
        {
            "repo": repo,
            "sha": f"{k:02d}{n:038d}",
            "committed_at": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=n * 7 + k),
        }
        for k, repo in enumerate(REPOS)
        for n in range(5 + k)
    ]
    return Dataset.from_frames(commits=commits, source="github")


@pytest.fixture
def bucketed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The organisation saved with 4 repo buckets in row groups of 16 rows (so a file has
    several and a repo filter can skip some)."""
    monkeypatch.setattr(parquet_module, "BUCKETED_ROW_GROUP", 16)
    settle_buckets(resolve(tmp_path), BUCKETS, fresh=True)
    _organisation().save(tmp_path)
    return tmp_path


def _spy_files(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    opened: list[tuple[str, ...]] = []
    real = parquet_module._read_repos_of

    def spy(location: Any, parts: tuple[str, str, str], *rest: Any) -> Any:
        found = real(location, parts, *rest)
        if found is not None:
            opened.append(parts)
        return found

    monkeypatch.setattr(parquet_module, "_read_repos_of", spy)
    return opened


def test_a_partition_opens_only_its_buckets_files(
    bucketed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = ["org/r03", "org/r17", "org/r30"]
    opened = _spy_files(monkeypatch)
    rows = read_repos(ParquetStore(bucketed), "commits", wanted)
    assert {parts[2] for parts in opened} == {
        f"part-{hand_bucket(repo)}.parquet" for repo in wanted
    }
    assert len({hand_bucket(repo) for repo in wanted}) < BUCKETS  # some files were left shut
    counts = pd.Series(rows["repo"].to_pylist()).value_counts().to_dict()
    assert counts == {"org/r03": 8, "org/r17": 22, "org/r30": 35}  # 5 + k commits each


def test_the_rows_read_are_those_the_whole_read_filters(bucketed: Path) -> None:
    store = ParquetStore(bucketed)
    wanted = REPOS[::3]
    # Against the whole table filtered here (``store.read(repos=...)`` is read_repos itself).
    whole = store.read("commits")
    expected = whole.filter(pc.is_in(whole["repo"], value_set=pa.array(wanted)))
    got = read_repos(store, "commits", wanted)
    assert got.num_rows == expected.num_rows > 0
    assert sorted(got["sha"].to_pylist()) == sorted(expected["sha"].to_pylist())
    assert store.read("commits", repos=wanted).equals(got)
    assert read_repos(store, "commits", ["org/nobody"]).num_rows == 0
    assert read_repos(store, "deployments", wanted).num_rows == 0  # no file at all


def test_row_groups_without_the_repos_are_not_decoded(
    bucketed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = ["org/r21"]
    asked: list[list[int]] = []
    real = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Any:
        asked.append(list(kwargs["row_groups"]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    read_repos(ParquetStore(bucketed), "commits", wanted)
    path = bucketed / "commits" / "source=github" / f"part-{hand_bucket('org/r21')}.parquet"
    file = pq.ParquetFile(path)
    holding = [
        i
        for i in range(file.num_row_groups)
        if "org/r21" in file.read_row_group(i, columns=["repo"])["repo"].to_pylist()
    ]
    assert file.num_row_groups > 2
    assert asked == [holding]  # 26 rows over 16-row groups: the two (or three) holding them


def test_bucketed_partitions_are_runs_of_the_files_order() -> None:
    weights = pd.Series(1, index=pd.Index(REPOS + [f"org/x{k:02d}" for k in range(24)]))
    ds = Dataset()
    parts, _ = plan_partitions(weights, ds.incidents, ds, empty_frame("deployment_changes"), 4, 4)
    order = sorted(weights.index, key=lambda repo: (hand_bucket(repo), repo))
    assert [part.rows for part in parts] == [16, 16, 16, 16]  # 64 repos of one row
    for k, part in enumerate(parts):
        assert set(part.repos) == set(order[16 * k : 16 * (k + 1)])


def test_a_worker_task_gives_the_arrow_pool_back(bucketed: Path) -> None:
    before = pa.default_memory_pool().backend_name
    shared = {
        name: getattr(Dataset(), name)
        for name in (
            "incidents",
            "deployment_change_requests",
            "change_requests",
            "repo_teams",
            "services",
            "collection_start",
        )
    }
    options = MetricOptions.build(None)
    result = engine_module._prepare_on_disk(
        str(bucketed), ("org/r01", "org/r02"), shared, options, None
    )
    assert pa.default_memory_pool().backend_name == before
    assert result.dataset.commits.empty  # the commit graph stays on the worker
