"""Periods, time zones, grouping, summaries and the shape of the metrics table."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from deliverypulse.dataset import Dataset
from deliverypulse.dora import METRIC_COLUMNS, OptionError, metrics, summary
from deliverypulse.errors import DataError


def deploy(deployment_id: str, finished: str, repo: str = "o/a", **extra: Any) -> dict[str, Any]:
    created = (pd.Timestamp(finished) - pd.Timedelta(minutes=10)).isoformat()
    return {
        "repo": repo,
        "deployment_id": deployment_id,
        "environment": "production",
        "is_production": True,
        "sha": deployment_id,
        "status": "success",
        "created_at": created,
        "finished_at": finished,
        **extra,
    }


def counts(table: pd.DataFrame) -> dict[str, int]:
    return {
        str(period.date()): int(n)
        for period, n in zip(table["period"], table["deployments"], strict=True)
    }


def test_month_boundary_moves_with_the_time_zone() -> None:
    # 2024-03-31 22:30 UTC is 2024-04-01 00:30 in Berlin (summer time began that night).
    ds = Dataset.from_frames(
        deployments=[deploy("a", "2024-03-15T12:00Z"), deploy("b", "2024-03-31T22:30Z")]
    )
    assert counts(metrics(ds)) == {"2024-03-01": 2}
    berlin = metrics(ds, tz="Europe/Berlin")
    assert counts(berlin) == {"2024-03-01": 1, "2024-04-01": 1}
    assert berlin["period"].iloc[1] == pd.Timestamp("2024-04-01T00:00", tz="Europe/Berlin")
    assert berlin["period_days"].tolist() == [31, 30]


def test_week_boundary_moves_with_the_time_zone() -> None:
    # Sunday 2024-01-07 20:00 UTC is Monday 05:00 in Tokyo: next week there.
    ds = Dataset.from_frames(
        deployments=[deploy("a", "2024-01-03T12:00Z"), deploy("b", "2024-01-07T20:00Z")]
    )
    assert counts(metrics(ds, period="week")) == {"2024-01-01": 2}
    assert counts(metrics(ds, period="week", tz="Asia/Tokyo")) == {
        "2024-01-01": 1,
        "2024-01-08": 1,
    }
    # ...and in Los Angeles Monday 2024-01-01 03:00 UTC is still Sunday 2023-12-31.
    ds = Dataset.from_frames(deployments=[deploy("c", "2024-01-01T03:00Z")])
    assert counts(metrics(ds, period="week", tz="America/Los_Angeles")) == {"2023-12-25": 1}


def test_quiet_periods_are_rows_with_zero() -> None:
    ds = Dataset.from_frames(
        deployments=[deploy("a", "2024-01-02T12:00Z"), deploy("b", "2024-01-17T12:00Z")]
    )
    table = metrics(ds, period="week")
    assert counts(table) == {"2024-01-01": 1, "2024-01-08": 0, "2024-01-15": 1}
    # One a week is 1/7 per day: exactly "once per week", the edge of high.
    assert table["deployment_frequency_cluster"].tolist() == ["high", "low", "high"]


def test_frequency_per_day_and_deployment_days_per_week() -> None:
    # February 2024 has 29 days; three deployments on two days.
    ds = Dataset.from_frames(
        deployments=[
            deploy("a", "2024-02-05T09:00Z"),
            deploy("b", "2024-02-05T15:00Z"),
            deploy("c", "2024-02-20T09:00Z"),
        ]
    )
    row = metrics(ds).iloc[0]
    assert row["period_days"] == 29
    assert row["deployments"] == 3
    assert row["deployment_days"] == 2
    # Rates are per day of a month's average length (365.25 / 12 days), not of February's 29,
    # so the same count rates the same in every month.
    assert row["deployments_per_day"] == pytest.approx(3 / (365.25 / 12))
    assert row["deployment_days_per_week"] == pytest.approx(2 * 7 / (365.25 / 12))
    assert row["deployment_frequency_cluster"] == "medium"  # ≈ 0.099 per day: under weekly


def test_group_by_a_user_column_and_by_repo() -> None:
    deployments = pd.DataFrame(
        [
            deploy("a", "2024-01-02T12:00Z", repo="o/a"),
            deploy("b", "2024-01-03T12:00Z", repo="o/b"),
            deploy("c", "2024-01-04T12:00Z", repo="o/c"),
        ]
    )
    deployments["team"] = ["red", "red", "blue"]
    ds = Dataset.from_frames(deployments=deployments)
    by_team = metrics(ds, by="team").set_index("team")
    assert by_team["deployments"].to_dict() == {"blue": 1, "red": 2}
    by_repo = metrics(ds, by=["team", "repo"])
    assert len(by_repo) == 3
    assert int(metrics(ds)["deployments"].sum()) == 3


def test_missing_group_column_is_a_clear_error() -> None:
    ds = Dataset.from_frames(deployments=[deploy("a", "2024-01-02T12:00Z")])
    with pytest.raises(DataError, match="cannot group by 'team'"):
        metrics(ds, by="team")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"period": "year"}, "period must be one of week, month"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"benchmarks": "2019"}, "benchmarks must be one of 2021, 2023"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    ds = Dataset.from_frames(deployments=[deploy("a", "2024-01-02T12:00Z")])
    with pytest.raises(OptionError, match=message):
        metrics(ds, **options)


def test_empty_dataset() -> None:
    table = metrics(Dataset(), by="repo")
    assert table.empty
    assert list(table.columns) == ["repo", "period", "period_days", *METRIC_COLUMNS]
    assert summary(Dataset()).empty


def test_one_repo_only_summary() -> None:
    ds = Dataset.from_frames(
        deployments=[
            deploy("a", "2024-01-01T09:00Z"),
            deploy("b", "2024-01-01T18:00Z"),
            deploy("c", "2024-01-10T09:00Z"),
        ]
    )
    row = summary(ds, by="repo").iloc[0]
    assert row["repo"] == "o/a"
    assert row["days"] == 10  # 1st to 10th inclusive
    assert row["deployments"] == 3
    assert row["deployments_per_day"] == pytest.approx(0.3)
    assert row["deployment_days_per_week"] == pytest.approx(2 * 7 / 10)
    assert row["start"] == pd.Timestamp("2024-01-01", tz="UTC")
    assert row["end"] == pd.Timestamp("2024-01-10", tz="UTC")
    assert row["deployment_frequency_cluster"] == "high"  # between daily and weekly


def test_non_production_and_cancelled_deployments_do_not_count() -> None:
    ds = Dataset.from_frames(
        deployments=[
            deploy("a", "2024-01-02T12:00Z"),
            deploy("b", "2024-01-03T12:00Z", status="cancelled"),
            deploy("c", "2024-01-04T12:00Z", environment="staging", is_production=False),
        ]
    )
    row = metrics(ds).iloc[0]
    assert (row["deployments"], row["deployment_attempts"]) == (1, 1)


def test_benchmarks_2021_change_the_clusters() -> None:
    ds = Dataset.from_frames(
        deployments=[deploy("a", "2024-01-02T12:00Z"), deploy("b", "2024-01-03T12:00Z")]
    )
    # Two deployments in 31 days: 2023 medium (weekly to monthly), 2021 high (to monthly).
    assert metrics(ds).iloc[0]["deployment_frequency_cluster"] == "medium"
    assert metrics(ds, benchmarks="2021").iloc[0]["deployment_frequency_cluster"] == "high"
