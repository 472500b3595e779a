"""List columns are Arrow-backed (``LIST_DTYPE``) from ``load`` and ``from_frames``, and every
stage that reads them gives the same answer for Arrow lists and for plain Python lists (a
``Dataset`` built by hand)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_link import CHANGES, COMMITS, DEPLOYS, pairs

import deliverypulse as dp
import deliverypulse.linking as dplink
from deliverypulse.analysis.controls import first_parents, reviewed_changes
from deliverypulse.dataset import Dataset
from deliverypulse.errors import DataError
from deliverypulse.pseudonyms import pseudonymise, pseudonymise_frame
from deliverypulse.rules import hotfix_flags
from deliverypulse.store.coerce import LIST_DTYPE, from_arrow, list_array
from deliverypulse.store.parquet import ParquetStore

LIST_COLUMNS = {
    "commits": ["parents"],
    "changes": ["approvers", "labels"],
    "deployments": ["approvers"],
    "incidents": ["labels"],
}


def with_python_lists(ds: Dataset) -> Dataset:
    """The same dataset with every list column as an object column of Python lists."""
    frames = {
        table: getattr(ds, table).assign(
            **{
                name: pd.Series(getattr(ds, table)[name].tolist(), dtype=object).map(
                    lambda value: value if isinstance(value, list) else None
                )
                for name in names
            }
        )
        for table, names in LIST_COLUMNS.items()
    }
    return dataclasses.replace(ds, **frames)


@pytest.fixture
def linked() -> Dataset:
    return Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=DEPLOYS)


def test_from_frames_and_load_give_arrow_lists(linked: Dataset, tmp_path: Path) -> None:
    ds = Dataset.from_frames(
        commits=COMMITS,
        changes=[
            {"repo": "o/a", "change_id": "1", "created_at": "2024-01-01", "labels": ("a", 2)},
            {"repo": "o/a", "change_id": "2", "created_at": "2024-01-01"},
            {
                "repo": "o/a",
                "change_id": "3",
                "created_at": "2024-01-01",
                "labels": np.array(["x"]),
                "approvers": [],
            },
        ],
    )
    assert ds.changes["labels"].dtype == LIST_DTYPE
    assert ds.changes["labels"].tolist() == [["a", "2"], pd.NA, ["x"]]
    assert ds.changes["approvers"].tolist() == [pd.NA, pd.NA, []]
    assert ds.commits["parents"].iloc[3] == ["c1", "f1"]
    ds.save(tmp_path / "data")
    loaded = dp.load(tmp_path / "data")
    for table, names in LIST_COLUMNS.items():
        for name in names:
            assert getattr(loaded, table)[name].dtype == LIST_DTYPE, (table, name)
    assert loaded.changes.sort_values("change_id")["labels"].tolist() == [["a", "2"], pd.NA, ["x"]]
    by_sha = dict(zip(loaded.commits["sha"], loaded.commits["parents"].tolist(), strict=True))
    assert by_sha == {row["sha"]: row["parents"] for row in COMMITS}
    assert isinstance(loaded.commits["sha"].dtype, pd.StringDtype)
    assert loaded.commits["sha"].dtype.storage == "pyarrow"


def test_a_list_column_that_holds_no_lists_is_an_error() -> None:
    with pytest.raises(DataError, match=r"'labels'.*'bug' is not a list of strings"):
        Dataset.from_frames(
            changes=[{"repo": "o/a", "change_id": "1", "created_at": "2024-01-01", "labels": "bug"}]
        )
    numbers = pd.DataFrame(
        {"repo": ["o/a"], "change_id": ["1"], "created_at": ["2024-01-01"]}
    ).assign(labels=pd.Series([[1, 2]], dtype=pd.ArrowDtype(pa.list_(pa.int64()))))
    assert Dataset.from_frames(changes=numbers).changes["labels"].tolist() == [["1", "2"]]


def test_python_lists_on_request_only(tmp_path: Path, linked: Dataset) -> None:
    linked.save(tmp_path / "data")
    table = ParquetStore(tmp_path / "data").read("commits")
    old = from_arrow(table, python_lists=True)
    assert old["parents"].dtype == object
    assert from_arrow(table)["parents"].dtype == LIST_DTYPE
    assert [list(v) if isinstance(v, list) else v for v in old["parents"]] == [
        v if isinstance(v, list) else None for v in from_arrow(table)["parents"].tolist()
    ]


def test_linking_reads_either_kind_of_list(linked: Dataset) -> None:
    plain = with_python_lists(linked)
    assert plain.commits["parents"].dtype == object
    expected = {("d2", "PR1"), ("d2", "PR2"), ("d3", "t3")}  # d1 is the first: nothing
    assert pairs(dplink.link(linked)) == expected
    assert pairs(dplink.link(plain)) == expected
    assert dp.metrics(linked).equals(dp.metrics(plain))


def test_hotfix_labels_in_either_kind() -> None:
    titles = pd.Series(["a", "b", "c", "d"])
    python = pd.Series([["urgent", "Hotfix"], None, [], ["hot", "fix"]])
    arrow = pd.Series(list_array(python), dtype=LIST_DTYPE)
    expected = [True, False, False, False]  # "hot fix" across two labels is no match
    assert hotfix_flags("(?i)hotfix", titles, None, python).tolist() == expected
    assert hotfix_flags("(?i)hotfix", titles, None, arrow).tolist() == expected


def test_pseudonyms_of_list_cells_in_either_kind() -> None:
    python = pd.Series([["Ann", "bob"], None, [], ["ann "]])
    arrow = pd.Series(list_array(python), dtype=LIST_DTYPE, index=[4, 5, 6, 7])
    ann, bob = pseudonymise("ann", "k"), pseudonymise("bob", "k")
    assert pseudonymise(python, "k").tolist() == [[ann, bob], None, [], [ann]]
    hidden = pseudonymise(arrow, "k")
    assert hidden.dtype == LIST_DTYPE and hidden.index.tolist() == [4, 5, 6, 7]
    assert hidden.tolist() == [[ann, bob], pd.NA, [], [ann]]
    frame = pseudonymise_frame(pd.DataFrame({"approvers": arrow.iloc[2:]}), "k")
    assert frame["approvers"].tolist() == [[], [ann]]


def test_first_parents_and_reviews_in_either_kind() -> None:
    python = pd.Series([["p1", "p2"], None, [], ["p3"]], index=[9, 8, 7, 6])
    arrow = pd.Series(list_array(python), dtype=LIST_DTYPE, index=[9, 8, 7, 6])
    for parents in (python, arrow):
        first = first_parents(parents)
        assert first.index.tolist() == [9, 8, 7, 6]
        assert first.tolist() == ["p1", pd.NA, pd.NA, "p3"]
    merged = pd.Timestamp("2024-01-02", tz="UTC")
    approved = pd.Timestamp("2024-01-01", tz="UTC")
    base = pd.DataFrame(
        {
            "author": ["ann", "ann", "ann"],
            "merged_at": [merged] * 3,
            "first_review_at": [pd.NaT] * 3,
            "first_approval_at": [approved] * 3,
        }
    )
    approvers = pd.Series([["ann"], ["bob", "ann"], None])
    # Only the author approved: not reviewed; someone else did, or nobody is named: reviewed.
    expected = [False, True, True]
    assert reviewed_changes(base.assign(approvers=approvers)).tolist() == expected
    arrow_approvers = pd.Series(list_array(approvers), dtype=LIST_DTYPE)
    assert reviewed_changes(base.assign(approvers=arrow_approvers)).tolist() == expected
