"""Dataset.from_frames and load: canonical dtypes, coercion and clear rejections."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

import deliverypulse as dp


def test_from_frames_coerces_to_the_schema_and_keeps_user_columns() -> None:
    ds = dp.Dataset.from_frames(
        deployments=pd.DataFrame(
            {
                "repo": ["org/web"],
                "deployment_id": [42],
                "created_at": ["2024-05-01T12:00:00+02:00"],
                "status": ["success"],
                "is_production": ["true"],
                "team": ["payments"],
            }
        )
    )
    frame = ds.deployments
    assert frame.loc[0, "deployment_id"] == "42"
    assert frame.loc[0, "created_at"] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert frame.loc[0, "is_production"] is True or bool(frame.loc[0, "is_production"])
    assert str(frame["approval_required"].dtype) == "boolean"
    assert frame["approval_required"].isna().all()
    assert frame.loc[0, "team"] == "payments"
    assert frame.loc[0, "source"] == "manual"
    assert ds.changes.empty and list(ds.changes.columns)[:3] == ["source", "repo", "change_id"]


def test_aware_datetimes_in_any_zone_become_utc() -> None:
    local = datetime(2024, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=5)))
    ds = dp.Dataset.from_frames(
        incidents=[{"repo": "a/b", "incident_id": "1", "created_at": local}]
    )
    assert ds.incidents.loc[0, "created_at"] == pd.Timestamp("2023-12-31T20:30:00Z")


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [{"repo": "a/b", "deployment_id": "1", "created_at": "soon", "status": "success"}],
            r"column 'created_at', row 0: 'soon' is not a timestamp",
        ),
        (
            [{"deployment_id": "1", "created_at": "2024-01-01", "status": "success"}],
            r"required column 'repo' is missing",
        ),
        (
            [
                {
                    "repo": "a/b",
                    "deployment_id": "1",
                    "created_at": "2024-01-01",
                    "status": "ok",
                    "is_production": "maybe",
                }
            ],
            r"column 'is_production', row 0: 'maybe' is not true or false",
        ),
        (
            [{"repo": "a/b", "deployment_id": None, "created_at": "2024-01-01", "status": "ok"}],
            r"required column 'deployment_id' is empty in row 0",
        ),
    ],
)
def test_bad_rows_are_rejected_with_table_column_and_row(records: list, message: str) -> None:
    with pytest.raises(dp.DataError, match=message):
        dp.Dataset.from_frames(deployments=records)


def test_integer_columns_reject_fractions() -> None:
    with pytest.raises(dp.DataError, match=r"'additions', row 1: 2.5 is not a whole number"):
        dp.Dataset.from_frames(
            changes=[
                {"repo": "a/b", "change_id": "1", "created_at": "2024-01-01", "additions": 1},
                {"repo": "a/b", "change_id": "2", "created_at": "2024-01-01", "additions": 2.5},
            ]
        )


def test_save_then_load_round_trips_with_the_same_dtypes(tmp_path: Path) -> None:
    ds = dp.Dataset.from_frames(
        changes=[
            {
                "repo": "a/b",
                "change_id": "7",
                "created_at": "2024-01-02T03:04:05Z",
                "labels": ["bug", "hotfix"],
                "additions": 10,
                "is_bot": False,
            }
        ],
        source="gh",
    )
    ds.save(tmp_path)
    loaded = dp.load(tmp_path)
    assert loaded.changes.dtypes.equals(ds.changes.dtypes)
    assert loaded.changes.loc[0, "labels"] == ["bug", "hotfix"]
    assert loaded.changes.loc[0, "additions"] == 10
    assert loaded.path == tmp_path
    assert "changes=1" in repr(loaded)


def test_load_of_a_missing_directory_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(dp.DeliveryPulseError, match=r"no dataset at .*deliverypulse collect"):
        dp.load(tmp_path / "nope")
