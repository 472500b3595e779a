"""The Parquet store: upserts by key, atomic files, readers with no options, old schemas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deliverypulse.errors import DataError
from deliverypulse.store import SCHEMA_VERSION, ParquetStore, spec_for
from deliverypulse.store.coerce import coerce_frame, to_arrow

SPEC = spec_for("deployments")


def rows(ids: list[int], status: str = "success", source: str = "web") -> pa.Table:
    records = [
        {
            "repo": "org/app",
            "deployment_id": str(i),
            "status": status,
            "created_at": f"2024-01-{10 - i % 9:02d}T00:00:00Z",
            "approvers": ["ann", "bob"],
        }
        for i in ids
    ]
    return to_arrow(SPEC, coerce_frame(SPEC, records, source=source))


def test_upsert_adds_new_rows_and_replaces_existing_ones(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    assert store.upsert("deployments", "web", rows([1, 2, 3])) == 3
    assert store.upsert("deployments", "web", rows([3, 4], status="failure")) == 1
    table = store.read("deployments").to_pandas()
    assert sorted(table["deployment_id"]) == ["1", "2", "3", "4"]
    status = dict(zip(table["deployment_id"], table["status"], strict=True))
    assert status == {"1": "success", "2": "success", "3": "failure", "4": "failure"}


def test_rewriting_the_same_rows_changes_nothing(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    store.upsert("deployments", "web", rows([1, 2]))
    first = store.read("deployments")
    assert store.upsert("deployments", "web", rows([1, 2])) == 0
    assert store.read("deployments").equals(first)


def test_duplicate_keys_within_one_batch_keep_the_last(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    batch = pa.concat_tables([rows([7]), rows([7], status="error")]).unify_dictionaries()
    store.upsert("deployments", "web", batch)
    table = store.read("deployments")
    assert table.num_rows == 1
    assert table["status"].to_pylist() == ["error"]


def test_rows_are_sorted_by_time_and_files_carry_the_schema_version(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    store.upsert("deployments", "web", rows([1, 2, 3, 4, 5]))
    path = store.partition_path("deployments", "web")
    created = pq.read_table(path)["created_at"].to_pylist()
    assert created == sorted(created)
    metadata = pq.read_schema(path).metadata
    assert metadata[b"deliverypulse.schema_version"] == SCHEMA_VERSION.encode()
    assert metadata[b"deliverypulse.table"] == b"deployments"


def test_dataset_reads_with_no_options_in_pandas_and_pyarrow(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    store.upsert("deployments", "web", rows([1, 2]))
    store.upsert("deployments", "api", rows([1], source="api"))
    frame = pd.read_parquet(tmp_path / "deployments")
    assert len(frame) == 3
    assert sorted(frame["source"].astype(str)) == ["api", "web", "web"]
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    table = pq.read_table(tmp_path / "deployments")
    assert table.num_rows == 3
    assert table.schema.field("approvers").type == pa.list_(pa.string())


def test_leftover_temp_files_are_invisible_to_readers(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    store.upsert("deployments", "web", rows([1]))
    partition = store.partition_path("deployments", "web").parent
    (partition / ".tmp-deadbeef-part-0.parquet").write_bytes(b"PAR1 torn write")
    assert len(pd.read_parquet(tmp_path / "deployments")) == 1
    assert store.read("deployments").num_rows == 1


def test_a_file_from_an_older_schema_is_read_with_new_columns_null(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    old_schema = pa.schema([f for f in SPEC.schema if f.name not in ("creator", "updated_at")])
    old = rows([1]).select(old_schema.names).cast(old_schema)
    path = store.partition_path("deployments", "web")
    path.parent.mkdir(parents=True)
    pq.write_table(old, path)
    table = store.read("deployments")
    assert table.schema.names == SPEC.schema.names
    assert table["creator"].to_pylist() == [None]
    store.upsert("deployments", "web", rows([2]))
    assert pq.read_schema(path).names == SPEC.schema.names


def test_a_corrupt_partition_is_a_clear_error(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path)
    path = store.partition_path("deployments", "web")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"cannot read .*part-0\.parquet"):
        store.read("deployments")


def test_unknown_table_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown table 'deploys'.*deployments"):
        ParquetStore(tmp_path).read("deploys")


def test_a_bucketed_file_has_row_groups_a_repo_filter_can_skip(tmp_path: Path) -> None:
    """In a dataset made with repo buckets, each part is sorted by repo and cut into
    BUCKETED_ROW_GROUP-row groups, so a group's repo statistics name a narrow range and a reader
    filtering by repo (the distributed engine's workers) skips the rest of the file."""
    from deliverypulse.store.buckets import settle_buckets
    from deliverypulse.store.location import resolve
    from deliverypulse.store.parquet import BUCKETED_ROW_GROUP

    rows = 3 * BUCKETED_ROW_GROUP + 5
    repos = [f"org/r{i % 9}" for i in range(rows)]
    frame = pd.DataFrame(
        {"source": "git", "repo": repos, "sha": [f"{i:040x}" for i in range(rows)]}
    )
    settle_buckets(resolve(tmp_path), 2, fresh=True)
    store = ParquetStore(tmp_path)
    spec = spec_for("commits")
    store.upsert("commits", "git", to_arrow(spec, coerce_frame(spec, frame)))
    files = sorted((tmp_path / "commits" / "source=git").glob("part-*.parquet"))
    assert len(files) == 2
    groups = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        column = meta.schema.names.index("repo")
        ranges = [
            (
                meta.row_group(g).column(column).statistics.min,
                meta.row_group(g).column(column).statistics.max,
            )
            for g in range(meta.num_row_groups)
        ]
        assert all(meta.row_group(g).num_rows <= BUCKETED_ROW_GROUP for g in range(len(ranges)))
        # Sorted by repo: each group starts where the one before ended.
        assert all(ranges[g][1] <= ranges[g + 1][0] for g in range(len(ranges) - 1))
        groups += len(ranges)
    assert groups >= 4  # 196,613 rows in groups of at most 65,536
    one = store.read("commits", repos=["org/r4"])
    assert one.num_rows == repos.count("org/r4")
