"""``from_arrow`` (what ``load`` turns each table into): the canonical dtypes and the values
written down by hand, whatever the Arrow chunks look like (many chunks, slices with offsets,
nulls, an all-null chunk, a dictionary column), and a frame that takes assignments without
touching the table it came from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import deliverypulse as dp
from deliverypulse.dataset import Dataset
from deliverypulse.store.coerce import LIST_DTYPE, from_arrow

STAMP = pa.timestamp("us", tz="UTC")


def _chunked() -> pa.Table:
    """Six rows in three chunks; the first a slice (offset 1) of a longer array."""
    numbers = pa.array([100, 1, None, 3, 200], pa.int64()).slice(1, 3)  # 1, None, 3
    times = pa.array([0, 1_000_000, None, 3_000_000, 0], STAMP).slice(1, 3)
    flags = pa.array([False, True, None, False, True], pa.bool_()).slice(1, 3)
    return pa.table(
        {
            "source": pa.chunked_array(
                [
                    pa.array(["x", "gh", "gh", "gl"]).slice(1, 3).dictionary_encode(),
                    pa.array(["gl", "gh"]).dictionary_encode(),
                    pa.array(["gh"]).dictionary_encode(),
                ]
            ),
            "name": pa.chunked_array([["a", None, "c"], ["d", "e"], [None]], pa.string()),
            "count": pa.chunked_array(
                [numbers, pa.nulls(2, pa.int64()), pa.array([-(2**62)], pa.int64())]
            ),
            "small": pa.chunked_array([[1, 2, None], [4, 5], [6]], pa.int32()),
            "at": pa.chunked_array(
                [times, pa.array([None, 4_000_000], STAMP), pa.array([5_000_000], STAMP)]
            ),
            "ok": pa.chunked_array([flags, pa.array([True, True]), pa.array([None], pa.bool_())]),
            "share": pa.chunked_array([[0.5, None, 1.5], [2.0, None], [3.0]], pa.float64()),
            "tags": pa.chunked_array(
                [[["p", "q"], None, []], [["r"], None], [["s"]]], pa.list_(pa.string())
            ),
        }
    )


def _utc(seconds: float | None) -> pd.Timestamp | None:
    return None if seconds is None else pd.Timestamp(datetime.fromtimestamp(seconds, UTC))


def test_values_and_dtypes_whatever_the_chunks() -> None:
    frame = from_arrow(_chunked())
    assert frame.dtypes.to_dict() == {
        "source": pd.StringDtype(),
        "name": pd.StringDtype(),
        "count": pd.Int64Dtype(),
        "small": pd.Int64Dtype(),
        "at": pd.DatetimeTZDtype("us", "UTC"),
        "ok": pd.BooleanDtype(),
        "share": pd.Float64Dtype(),
        "tags": LIST_DTYPE,
    }
    assert isinstance(frame.index, pd.RangeIndex) and len(frame) == 6

    def cells(name: str) -> list[object]:
        return [None if pd.isna(v) else v for v in frame[name].astype(object)]

    assert cells("source") == ["gh", "gh", "gl", "gl", "gh", "gh"]
    assert cells("name") == ["a", None, "c", "d", "e", None]
    assert cells("count") == [1, None, 3, None, None, -(2**62)]
    assert cells("small") == [1, 2, None, 4, 5, 6]
    assert cells("at") == [_utc(1), None, _utc(3), None, _utc(4), _utc(5)]
    assert cells("ok") == [True, None, False, True, True, None]
    assert cells("share") == [0.5, None, 1.5, 2.0, None, 3.0]
    assert [v if isinstance(v, list) else None for v in frame["tags"].tolist()] == [
        ["p", "q"],
        None,
        [],
        ["r"],
        None,
        ["s"],
    ]


def test_an_empty_table_keeps_its_dtypes() -> None:
    frame = from_arrow(_chunked().schema.empty_table())
    assert len(frame) == 0
    assert frame.dtypes.to_dict() == from_arrow(_chunked()).dtypes.to_dict()


def test_the_frame_takes_assignments_and_the_table_stays_as_read() -> None:
    # One chunk without nulls: the case where a conversion could hand out a read-only view.
    table = pa.table(
        {
            "at": pa.array([1_000_000, 2_000_000], STAMP),
            "count": pa.array([1, 2], pa.int64()),
            "ok": pa.array([True, False]),
            "name": pa.array(["a", "b"]),
        }
    )
    frame = from_arrow(table)
    frame.loc[0, "at"] = pd.NaT
    frame.loc[1, "at"] = pd.Timestamp("2030-01-01", tz="UTC")
    frame.loc[0, "count"] = 7
    frame.loc[1, "ok"] = pd.NA
    frame.loc[0, "name"] = "z"
    assert frame["at"].isna().tolist() == [True, False]
    assert frame.loc[1, "at"] == pd.Timestamp("2030-01-01", tz="UTC")
    assert frame["count"].tolist() == [7, 2]
    assert frame["ok"].isna().tolist() == [False, True]
    assert frame["name"].tolist() == ["z", "b"]
    assert table.to_pydict() == {
        "at": [_utc(1), _utc(2)],
        "count": [1, 2],
        "ok": [True, False],
        "name": ["a", "b"],
    }


@pytest.mark.parametrize("python_lists", [False, True])
def test_python_lists_only_changes_the_list_columns(python_lists: bool) -> None:
    frame = from_arrow(_chunked(), python_lists=python_lists)
    assert frame["tags"].dtype == (object if python_lists else LIST_DTYPE)
    assert frame["count"].dtype == pd.Int64Dtype()


def test_a_loaded_frame_is_a_working_copy(tmp_path: Path) -> None:
    """Changing a loaded frame changes neither the files nor the next load."""
    Dataset.from_frames(
        commits=[
            {"repo": "o/a", "sha": "s1", "authored_at": "2024-01-01T00:00:00Z", "additions": 5},
            {"repo": "o/a", "sha": "s2", "authored_at": "2024-01-02T00:00:00Z", "additions": 9},
        ]
    ).save(tmp_path)
    ds = dp.load(tmp_path)
    ds.commits.loc[0, "authored_at"] = pd.Timestamp("2030-01-01", tz="UTC")
    ds.commits.loc[0, "additions"] = 100
    again = dp.load(tmp_path).commits
    assert again["authored_at"].tolist() == [
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-01-02", tz="UTC"),
    ]
    assert again["additions"].tolist() == [5, 9]
