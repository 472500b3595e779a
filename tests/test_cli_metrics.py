"""``deliverypulse metrics`` on a dataset saved to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from deliverypulse.cli.metrics import metrics_command
from deliverypulse.dataset import Dataset


def deploy(
    deployment_id: str, finished: str, repo: str, status: str = "success"
) -> dict[str, object]:
    created = (pd.Timestamp(finished) - pd.Timedelta(minutes=10)).isoformat()
    return {
        "repo": repo,
        "deployment_id": deployment_id,
        "environment": "production",
        "is_production": True,
        "sha": deployment_id,
        "status": status,
        "created_at": created,
        "finished_at": finished,
    }


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    ds = Dataset.from_frames(
        deployments=[
            deploy("a1", "2024-01-02T12:00Z", "o/a"),
            deploy("a2", "2024-01-03T12:00Z", "o/a", status="failure"),
            deploy("a3", "2024-02-03T12:00Z", "o/a"),
            deploy("b1", "2024-01-05T12:00Z", "o/b"),
        ],
        changes=[
            {
                "repo": "o/a",
                "change_id": "1",
                "created_at": "2024-01-20T00:00Z",
                "first_commit_at": "2024-01-20T00:00Z",
                "merged_at": "2024-02-01T00:00Z",
            },
        ],
        source="web",
    )
    root = tmp_path / "data"
    ds.save(root)
    return root


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(metrics_command, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_table_on_a_terminal(dataset_dir: Path) -> None:
    code, out, _ = run(str(dataset_dir), "--by", "repo")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["repo", "period", "deploys"]
    assert len(lines) == 1 + 3  # o/a January and February, o/b January
    assert "50%" in out  # o/a January: one failure in two attempts


def test_json_and_csv(dataset_dir: Path) -> None:
    code, out, _ = run(str(dataset_dir), "--by", "repo", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    january = next(r for r in rows if r["repo"] == "o/a" and r["period"].startswith("2024-01"))
    assert january["deployment_attempts"] == 2 and january["change_failure_rate"] == 0.5
    february = next(r for r in rows if r["repo"] == "o/a" and r["period"].startswith("2024-02"))
    # Merged Feb 1st, shipped by a3 on Feb 3rd 12:00: 14.5 days after its first commit.
    assert february["lead_time_median_hours"] == pytest.approx(14 * 24 + 12)
    code, out, _ = run(str(dataset_dir), "--format", "csv", "--period", "week")
    assert code == 0
    assert out.splitlines()[0].startswith("period,period_days,deployments,")


def test_summary_flag(dataset_dir: Path) -> None:
    code, out, _ = run(str(dataset_dir), "--summary", "--format", "json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["deployments"] == 3 and row["days"] == 33  # Jan 2nd to Feb 3rd


def test_write_stores_a_metrics_table(dataset_dir: Path) -> None:
    code, _, err = run(str(dataset_dir), "--by", "repo", "--write")
    assert code == 0
    assert "wrote 3 rows" in err
    stored = pq.read_table(dataset_dir / "metrics" / "part-0.parquet").to_pandas()
    assert sorted(stored["repo"]) == ["o/a", "o/a", "o/b"]
    assert not list((dataset_dir / "metrics").glob(".tmp-*"))


def test_parquet_to_a_file(dataset_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "m.parquet"
    code, _, _ = run(str(dataset_dir), "--format", "parquet", "--output", str(target))
    assert code == 0
    assert pq.read_table(target).num_rows == 2  # January and February


def test_missing_dataset_is_one_line_exit_1(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "nowhere"))
    assert code == 1
    assert err.startswith("deliverypulse: error: no dataset at")
    assert len(err.strip().splitlines()) == 1


def test_bad_option_exits_2(dataset_dir: Path) -> None:
    code, _, err = run(str(dataset_dir), "--signals", "pager")
    assert code == 2
    assert "unknown failure signal" in err
    code, _, err = run(str(dataset_dir), "--by", "team")
    assert code == 2
    assert "cannot group by 'team'" in err
