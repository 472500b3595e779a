"""The published DORA performance clusters, as data, and a vectorised classifier.

Each metric has a direction and ordered bounds: a value gets the best cluster whose bound it
meets. Sources and our reading of gaps and overlaps are in docs/metrics.md.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from deliverypulse.dora.periods import AVERAGE_DAYS
from deliverypulse.errors import OptionError

CLUSTERS = ("elite", "high", "medium", "low")
_MONTH_DAYS = AVERAGE_DAYS["month"]


class Bands(NamedTuple):
    """``higher``: value ≥ bound is that cluster; ``lower``: value < bound; ``at_most``: ≤."""

    direction: Literal["higher", "lower", "at_most"]
    bounds: tuple[float, float, float]  # elite, high, medium; anything else is low


#: Units: deployment frequency in deployments per day, lead time and recovery in hours,
#: change failure rate as a fraction.
BENCHMARKS: dict[str, dict[str, Bands]] = {
    # Accelerate State of DevOps 2023, as restated by the DORA quick check.
    "2023": {
        "deployment_frequency": Bands("higher", (1.0, 1 / 7, 1 / _MONTH_DAYS)),
        "lead_time": Bands("lower", (24.0, 24.0 * 7, 24.0 * _MONTH_DAYS)),
        "change_failure_rate": Bands("at_most", (0.05, 0.10, 0.15)),
        "recovery": Bands("lower", (1.0, 24.0, 24.0 * 7)),
    },
    # Accelerate State of DevOps 2021, table "software delivery performance".
    "2021": {
        "deployment_frequency": Bands("higher", (1.0, 1 / _MONTH_DAYS, 1 / (6 * _MONTH_DAYS))),
        "lead_time": Bands("lower", (1.0, 24.0 * 7, 24.0 * 6 * _MONTH_DAYS)),
        "change_failure_rate": Bands("at_most", (0.15, 0.30, 0.30)),
        "recovery": Bands("lower", (1.0, 24.0, 24.0 * 7)),
    },
}


def check_benchmarks(benchmarks: str) -> str:
    year = str(benchmarks)
    if year not in BENCHMARKS:
        raise OptionError(
            f"benchmarks must be one of {', '.join(sorted(BENCHMARKS))}, not {benchmarks!r}"
        )
    return year


def classify(values: pd.Series, metric: str, benchmarks: str = "2023") -> pd.Series:
    """The DORA cluster of each value (missing where the value is missing)."""
    bands = BENCHMARKS[check_benchmarks(benchmarks)][metric]
    numbers = pd.to_numeric(values, errors="coerce").astype("Float64")
    array = numbers.to_numpy(dtype=float, na_value=np.nan)
    elite, high, medium = bands.bounds
    if bands.direction == "higher":
        conditions = [array >= elite, array >= high, array >= medium]
    elif bands.direction == "lower":
        conditions = [array < elite, array < high, array < medium]
    else:
        conditions = [array <= elite, array <= high, array <= medium]
    labels = np.select(conditions, list(CLUSTERS[:3]), default="low").astype(object)
    labels[np.isnan(array)] = None
    return pd.Series(labels, index=values.index, dtype="string")


__all__ = ["BENCHMARKS", "CLUSTERS", "Bands", "check_benchmarks", "classify"]
