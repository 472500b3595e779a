"""Calendar periods in a time zone: Monday-start weeks or months, as integer indices.

Integers keep grouping cheap; :func:`period_start` turns an index back into the local midnight
that labels it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from deliverypulse.errors import OptionError

Period = Literal["week", "month"]
PERIODS: tuple[str, ...] = ("week", "month")
IntArray = npt.NDArray[np.int64]

_DAY_US = 86_400 * 1_000_000
_EPOCH_WEEKDAY_OFFSET = 3  # 1970-01-01 was a Thursday; the Monday before is day -3


def check_period(period: str) -> Period:
    if period not in PERIODS:
        raise OptionError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    return "week" if period == "week" else "month"


def check_tz(tz: str) -> str:
    try:
        pd.Timestamp("2024-01-01", tz=tz)
    except Exception as error:  # pytz/zoneinfo raise different types
        raise OptionError(f"unknown time zone {tz!r}") from error
    return tz


def local_day(timestamps: pd.Series, tz: str) -> IntArray:
    """Days since 1970-01-01 of each timestamp's local date in ``tz`` (missing: min int64)."""
    local = timestamps.dt.tz_convert(tz).dt.tz_localize(None)
    micros: IntArray = local.to_numpy(dtype="datetime64[us]").view(np.int64)
    missing = micros == np.iinfo(np.int64).min
    days: IntArray = np.where(missing, micros, np.floor_divide(micros, _DAY_US))
    return days


def period_index(days: IntArray, period: Period) -> IntArray:
    """Period number of each local day: weeks since 1969-12-29, or months since 1970-01."""
    if period == "week":
        return np.floor_divide(days + _EPOCH_WEEKDAY_OFFSET, 7)
    dates = days.astype("datetime64[D]")
    months = dates.astype("datetime64[M]").astype(np.int64)
    return months


def first_day(index: IntArray, period: Period) -> IntArray:
    """Local day number of the first day of each period."""
    if period == "week":
        return index * 7 - _EPOCH_WEEKDAY_OFFSET
    return index.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def period_days(index: IntArray, period: Period) -> IntArray:
    """Number of days in each period (7, or the month's length)."""
    if period == "week":
        return np.full(index.shape, 7, dtype=np.int64)
    return first_day(index + 1, period) - first_day(index, period)


#: The average length of a period in days: a month is a year's twelfth (365.25 / 12 days),
#: so a rate per period does not depend on a month's calendar length.
AVERAGE_DAYS: dict[str, float] = {"week": 7.0, "month": 365.25 / 12}


def day_start(days: IntArray, tz: str) -> pd.Series:
    """Local midnight of each day number, as a time-zone-aware timestamp.

    A midnight that does not exist (a DST jump at 00:00) moves forward to the first instant
    that does; an ambiguous one takes the first (daylight) reading.
    """
    naive = pd.Series(pd.to_datetime(days.astype("datetime64[D]")).as_unit("us"))
    return naive.dt.tz_localize(
        tz, nonexistent="shift_forward", ambiguous=np.ones(len(naive), dtype=bool)
    )


__all__ = [
    "AVERAGE_DAYS",
    "PERIODS",
    "OptionError",
    "Period",
    "check_period",
    "check_tz",
    "day_start",
    "first_day",
    "local_day",
    "period_days",
    "period_index",
]
