"""Numbers as a person reads them: durations in the unit that fits, rates as percentages,
deployment frequency per day, week or month.

The report shows these strings and keeps the raw value beside them (``data-value``), so a reader
sees "3.2 days" while a test or a script can still read 76.8 hours.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

MISSING = "—"
_MONTH_DAYS = 365.25 / 12


def number(value: Any) -> float | None:
    """A finite float, or None for anything missing (None, NA, NaN, NaT)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def duration(hours: Any) -> str:
    """``hours`` in minutes, hours, days or weeks, whichever reads best (two significant
    figures below ten units, so 1.5 days and 36 minutes, not 1.5417 days)."""
    value = number(hours)
    if value is None:
        return MISSING
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return _unit(value, "hour")
    if value < 24 * 14:
        return _unit(value / 24, "day")
    return _unit(value / (24 * 7), "week")


def _unit(amount: float, name: str) -> str:
    shown = f"{amount:.1f}" if amount < 10 else f"{amount:.0f}"
    plural = "" if shown in ("1", "1.0") else "s"
    return f"{shown} {name}{plural}"


def percent(fraction: Any, digits: int = 1) -> str:
    """0.1234 as "12.3 %"."""
    value = number(fraction)
    return MISSING if value is None else f"{value * 100:.{digits}f} %"


def frequency(per_day: Any) -> str:
    """Deployments per day, or per week or month when that is the natural cadence."""
    value = number(per_day)
    if value is None:
        return MISSING
    if value >= 1:
        return f"{value:.1f} per day"
    if value * 7 >= 1:
        return f"{value * 7:.1f} per week"
    return f"{value * _MONTH_DAYS:.1f} per month"


def count(value: Any) -> str:
    """An integer with thousands separators ("1,204"); missing as a dash."""
    amount = number(value)
    return MISSING if amount is None else f"{round(amount):,}"


def p_value(value: Any) -> str:
    """A p-value the way a paper prints it: "p < 0.001" or "p = 0.042"."""
    amount = number(value)
    if amount is None:
        return MISSING
    return "p < 0.001" if amount < 0.001 else f"p = {amount:.3f}"


#: The analysis's effect names with a plain reading first (the technical name kept after it).
EFFECTS = {
    "odds ratio": "how many times the odds of failing (odds ratio)",
    "odds ratio per doubling of batch size": (
        "how the odds of failing change when a batch doubles (odds ratio per doubling)"
    ),
    "difference in median (h)": "how much longer, in hours (difference in medians)",
    "Spearman's rho": "how closely the two rise together, from -1 to 1 (Spearman's rho)",
    "median (h)": "the middle value, in hours (median)",
}


def effect(name: str) -> str:
    """An effect's name as a person reads it, the technical name in brackets."""
    return EFFECTS.get(name, name)


def estimate(value: Any) -> str:
    """An estimate with three significant figures ("3.13", "139", "0.0412")."""
    amount = number(value)
    if amount is None:
        return MISSING
    return f"{amount:.3g}" if abs(amount) < 1000 else f"{amount:,.0f}"


def day(value: Any) -> str:
    """A timestamp as its date ("2024-06-28")."""
    if value is None or value is pd.NaT or value is pd.NA:
        return MISSING
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def split(text: str) -> tuple[str, str]:
    """ "1.7 per day" as ("1.7", "per day"): the page sets the number large, the unit small."""
    number_part, _, unit = text.partition(" ")
    return number_part, unit


def raw(value: Any) -> str:
    """The machine-readable form of a number for a ``data-value`` attribute ("" if missing)."""
    amount = number(value)
    return "" if amount is None else repr(amount)


__all__ = [
    "MISSING",
    "count",
    "day",
    "duration",
    "effect",
    "estimate",
    "frequency",
    "number",
    "p_value",
    "percent",
    "raw",
    "split",
]
