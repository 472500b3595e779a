"""A Parquet file in the dataset that is not ours is an error naming it, never rows of nulls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import deliverypulse as dp
from deliverypulse.errors import DataError


def _foreign(root: Path, table: str = "deployments") -> Path:
    path = root / table / "source=web" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"city": ["Leeds", "York"], "population": [1, 2]}), path)
    return path


def test_load_names_a_foreign_file(tmp_path: Path) -> None:
    path = _foreign(tmp_path)
    with pytest.raises(DataError) as caught:
        dp.load(tmp_path)
    message = str(caught.value)
    assert str(path) in message and "not a deliverypulse deployments file" in message
    assert "'deployment_id'" in message


def test_an_older_file_missing_only_optional_columns_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "deployments" / "source=web" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"source": ["web"], "repo": ["o/r"], "deployment_id": ["1"]}), path)
    ds = dp.load(tmp_path)
    assert ds.deployments["deployment_id"].tolist() == ["1"]
    assert ds.deployments["status"].isna().all()


def test_metrics_on_a_foreign_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = _foreign(tmp_path, "changes")
    done = subprocess.run(
        [sys.executable, "-m", "deliverypulse", "metrics", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert str(path) in done.stderr and done.stderr.count("\n") == 1
