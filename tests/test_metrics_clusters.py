"""The DORA clusters at and around every bound, for 2023 and 2021."""

from __future__ import annotations

import pandas as pd
import pytest

from deliverypulse.dora import BENCHMARKS, classify

MONTH = 365.25 / 12


@pytest.mark.parametrize(
    ("metric", "value", "year", "expected"),
    [
        ("deployment_frequency", 3.0, "2023", "elite"),
        ("deployment_frequency", 1.0, "2023", "elite"),
        ("deployment_frequency", 0.99, "2023", "high"),
        ("deployment_frequency", 1 / 7, "2023", "high"),
        ("deployment_frequency", 0.14, "2023", "medium"),
        ("deployment_frequency", 1 / MONTH, "2023", "medium"),
        ("deployment_frequency", 0.03, "2023", "low"),
        ("deployment_frequency", 0.0, "2023", "low"),
        ("lead_time", 23.9, "2023", "elite"),
        ("lead_time", 24.0, "2023", "high"),
        ("lead_time", 167.9, "2023", "high"),
        ("lead_time", 168.0, "2023", "medium"),
        ("lead_time", 24 * MONTH, "2023", "low"),
        ("change_failure_rate", 0.05, "2023", "elite"),
        ("change_failure_rate", 0.051, "2023", "high"),
        ("change_failure_rate", 0.10, "2023", "high"),
        ("change_failure_rate", 0.15, "2023", "medium"),
        ("change_failure_rate", 0.16, "2023", "low"),
        ("recovery", 0.5, "2023", "elite"),
        ("recovery", 1.0, "2023", "high"),
        ("recovery", 23.0, "2023", "high"),
        ("recovery", 100.0, "2023", "medium"),
        ("recovery", 168.0, "2023", "low"),
        # 2021: elite lead time is under an hour; a day to a week is high.
        ("lead_time", 0.5, "2021", "elite"),
        ("lead_time", 5.0, "2021", "high"),
        ("lead_time", 24 * 30, "2021", "medium"),
        ("lead_time", 24 * 7 * 30, "2021", "low"),
        ("deployment_frequency", 0.5, "2021", "high"),  # weekly-to-daily gap → high
        ("deployment_frequency", 0.02, "2021", "medium"),  # monthly to half-yearly
        ("deployment_frequency", 0.001, "2021", "low"),
        ("change_failure_rate", 0.15, "2021", "elite"),
        ("change_failure_rate", 0.2, "2021", "high"),
        ("change_failure_rate", 0.31, "2021", "low"),
    ],
)
def test_bounds(metric: str, value: float, year: str, expected: str) -> None:
    assert classify(pd.Series([value]), metric, year).iloc[0] == expected


def test_missing_values_have_no_cluster() -> None:
    result = classify(pd.Series([float("nan"), None, 0.01]), "change_failure_rate")
    assert result.isna().tolist() == [True, True, False]


def test_tables_are_data() -> None:
    assert set(BENCHMARKS) == {"2021", "2023"}
    for year in BENCHMARKS.values():
        assert set(year) == {"deployment_frequency", "lead_time", "change_failure_rate", "recovery"}
