"""Time helpers every stage shares: UTC timestamps and int64 microseconds.

Integers make the linker's and the metrics' comparisons and sorts cheap; one definition keeps
"missing" the same everywhere (the smallest int64, which sorts first).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: A missing timestamp in microseconds (``NaT`` viewed as int64).
NAT = np.iinfo(np.int64).min


def as_micros(column: pd.Series) -> IntArray:
    """UTC timestamps as int64 microseconds; missing values are :data:`NAT`."""
    values = column.to_numpy(dtype="datetime64[us]")
    return values.view(np.int64)


def utc(value: Any) -> pd.Timestamp:
    """A timestamp in UTC; a naive value is taken as UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def utc_micros(value: Any) -> int:
    """One timestamp (naive taken as UTC) as int64 microseconds."""
    return int(as_micros(pd.Series([utc(value)]))[0])


__all__ = ["NAT", "BoolArray", "IntArray", "as_micros", "utc", "utc_micros"]
