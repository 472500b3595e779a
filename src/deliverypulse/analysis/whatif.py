"""``Analysis.what_if``: per repo (or team) with gated deployments, what dropping the gate would
save in lead time, and what the data says about failures without it.

The saving: every change the group deployed keeps its lead time (first commit → deployed)
less the approval wait of the deployment that shipped it (0 for an ungated one); the estimate
is the actual median lead time minus the median of those shortened lead times, with a paired
percentile-bootstrap interval over the changes (scipy, fixed seed). It counts only the waiting
for approval, not the batching a gate may cause (changes queueing up for the next approved
deployment), so it is a lower bound of what the gate costs.

The failures: within the group, the gated minus the ungated change failure rate with Newcombe's
hybrid score interval (statsmodels ``confint_proportions_2indep(method="newcomb")``), or a note
when the group has no ungated deployments to compare with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.analysis import stats as st
from deliverypulse.analysis import verdict as words
from deliverypulse.analysis.batches import hours, strata_of
from deliverypulse.analysis.model import WHAT_IF_COLUMNS, WHAT_IF_DETAIL_COLUMNS, empty_what_if
from deliverypulse.dora.prepared import Prepared

NO_UNGATED = "no ungated deployments to compare with"


def change_waits(prepared: Prepared, strata: str) -> pd.DataFrame:
    """One row per deployed change in the window with a lead time (negative spans dropped, as
    in the metrics): its stratum, lead time and its deployment's approval wait in hours (0 when
    that deployment was not gated or its wait is unknown)."""
    deployments = prepared.dataset.deployments
    rows = prepared.lead_deployment
    lead = hours(prepared.lead["lead_time"]).to_numpy(dtype=float)
    wait = hours(deployments["approved_at"] - deployments["approval_requested_at"]).to_numpy(
        dtype=float
    )[rows]
    gated = deployments["approval_required"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    wait = np.where(gated[rows] & np.isfinite(wait) & (wait >= 0), wait, 0.0)
    frame = pd.DataFrame(
        {
            "stratum": strata_of(prepared.dataset, rows, strata).array,
            "lead_h": lead,
            "wait_h": wait,
            "deployment": np.asarray(rows, dtype=np.int64),  # its row in dataset.deployments
        }
    )
    kept: pd.DataFrame = frame.loc[np.isfinite(lead) & (lead >= 0)].reset_index(drop=True)
    return kept


def _saving(lead: st.FloatArray, wait: st.FloatArray) -> tuple[float | None, ...]:
    """(saved, low, high, median lead, median lead without the waits) in hours."""
    if lead.size < 2:
        return None, None, None, None, None
    shortened = np.maximum(lead - wait, 0.0)
    actual, without = float(np.median(lead)), float(np.median(shortened))
    saved = actual - without
    if not (wait > 0).any():
        return saved, 0.0, 0.0, actual, without

    def difference(x: st.FloatArray, y: st.FloatArray, axis: int = -1) -> Any:
        return np.median(x, axis=axis) - np.median(y, axis=axis)

    low, high = st.bootstrap((lead, shortened), difference, paired=True)
    return saved, low, high, actual, without


def _difference(
    gated: tuple[int, int], ungated: tuple[int, int]
) -> tuple[float | None, float | None, float | None]:
    """Gated minus ungated failure rate with Newcombe's interval (statsmodels)."""
    (gated_failed, gated_n), (ungated_failed, ungated_n) = gated, ungated
    if not gated_n or not ungated_n:
        return None, None, None
    from statsmodels.stats.proportion import confint_proportions_2indep

    with st.caught([]):
        low, high = confint_proportions_2indep(
            gated_failed,
            gated_n,
            ungated_failed,
            ungated_n,
            method="newcomb",
            compare="diff",
            alpha=st.ALPHA,
        )
    estimate = gated_failed / gated_n - ungated_failed / ungated_n
    return estimate, st.finite(low), st.finite(high)


def _points(value: float) -> str:
    """A change in a rate as signed percentage points: "+8", "-22", "0"."""
    rounded = round(value * 100)
    return f"{rounded:+d}" if rounded else "0"


def plain(
    row: dict[str, Any],
    unit: str,
    *,
    control: str = "the gate",
    labels: tuple[str, str] = ("gated", "ungated"),
) -> str:
    """The row in plain words, for a board. ``control``: what would be dropped ("the gate",
    "CAB approval"); ``labels``: the deployments under it and the others."""
    yes, no = labels
    name = row["group"]
    saved = row["lead_time_saved_median_h"]
    gated_n = row["gated_deployments"]
    if saved is None:
        total = row["approval_wait_total_h"]
        waited = "" if total is None else f" ({words.hours(total)} of approval waiting in all)"
        first = (
            f"Dropping {control} on {name} would remove the approval wait of "
            f"{words.count(gated_n, f'{yes} deployment')}{waited}, but too few changes have a "
            "lead time to say what it would save per change"
        )
    else:
        low, high = row["lead_time_saved_low_h"], row["lead_time_saved_high_h"]
        interval = (
            ""
            if low is None or high is None or low == high
            else f" (95 % interval {words.hours(low)} to {words.hours(high)})"
        )
        first = (
            f"Dropping {control} on {name} would have saved a median {words.hours(saved)} per "
            f"change{interval}"
        )
    gated = f"{row['gated_failures']} of {gated_n} {yes}"
    if row["failure_difference"] is None:
        return (
            f"{first}; with no {no} deployments to compare with on {name}, the data cannot say "
            f"whether {control} prevented any failure."
        )
    counts = f"{gated} and {row['ungated_failures']} of {row['ungated_deployments']} {no}"
    low, high = row["failure_difference_low"], row["failure_difference_high"]
    if low is None or high is None:
        return f"{first}; the data cannot show that {control} prevented any failure ({counts})."
    # Without the gate the rate moves by ungated - gated: from -high to -low.
    change = f"from {_points(-high)} to {_points(-low)} percentage points"
    if high < 0:
        return (
            f"{first}; but {yes} deployments failed less often ({counts} deployments failed): "
            f"without {control} the change failure rate could rise, by {change}."
        )
    if low > 0:
        return (
            f"{first}; {yes} deployments failed more often, not less ({counts} deployments "
            f"failed), so the data show no failure {control} prevented ({change} without it)."
        )
    return (
        f"{first}; the data cannot show that {control} prevented any failure ({counts} "
        f"deployments failed; without {control} the change failure rate could move {change})."
    )


def comparison_row(
    group: str,
    controlled: pd.DataFrame,
    others: pd.DataFrame,
    waits: pd.Series,
    lead_h: pd.Series,
    wait_h: pd.Series,
    note: str,
) -> dict[str, Any]:
    """One what-if row (``WHAT_IF_COLUMNS`` and details but ``plain``): deployments that went
    through a control (a gate, CAB approval) against the others of the same stratum, and the
    lead time saved if the control's waits went. Shared by the gate and the change board."""
    waiting = waits.to_numpy(dtype=float)
    waiting = waiting[np.isfinite(waiting)]
    saved, low, high, actual, without = _saving(
        lead_h.to_numpy(dtype=float), wait_h.to_numpy(dtype=float)
    )
    counts = (
        (int(controlled["failed"].sum()), len(controlled)),
        (int(others["failed"].sum()), len(others)),
    )
    difference, diff_low, diff_high = _difference(*counts)
    return {
        "group": group,
        "gated_deployments": len(controlled),
        "approval_wait_median_h": float(np.median(waiting)) if waiting.size else None,
        "approval_wait_total_h": float(waiting.sum()) if waiting.size else None,
        "lead_time_saved_median_h": saved,
        "lead_time_saved_low_h": low,
        "lead_time_saved_high_h": high,
        "failure_difference": difference,
        "failure_difference_low": diff_low,
        "failure_difference_high": diff_high,
        "failure_note": note,
        "gated_failures": counts[0][0],
        "ungated_deployments": len(others),
        "ungated_failures": counts[1][0],
        "changes": len(lead_h),
        "median_lead_time_h": actual,
        "median_lead_time_without_waits_h": without,
    }


def what_if(table: pd.DataFrame, prepared: Prepared, strata: str, unit: str) -> pd.DataFrame:
    """One row per stratum with gated deployments (``WHAT_IF_COLUMNS`` then
    ``WHAT_IF_DETAIL_COLUMNS``), in order of the stratum's name. ``table``: the analysis's
    per-deployment table."""
    known = table.loc[table["gated"].notna().to_numpy(dtype=bool)]
    is_gated = known["gated"].to_numpy(dtype=bool)
    groups = sorted(set(known.loc[is_gated, "stratum"].astype(str)))
    if not groups:
        return empty_what_if()
    changes = change_waits(prepared, strata)
    records = []
    for group in groups:
        mine = known.loc[(known["stratum"].astype(str) == group).to_numpy(dtype=bool)]
        flag = mine["gated"].to_numpy(dtype=bool)
        gated, ungated = mine.loc[flag], mine.loc[~flag]
        own = changes.loc[(changes["stratum"].astype(str) == group).to_numpy(dtype=bool)]
        row = comparison_row(
            group,
            gated,
            ungated,
            gated["approval_wait_h"],
            own["lead_h"],
            own["wait_h"],
            NO_UNGATED if ungated.empty else "",
        )
        row["plain"] = plain(row, unit)
        records.append(row)
    columns = [*WHAT_IF_COLUMNS, *WHAT_IF_DETAIL_COLUMNS]
    return pd.DataFrame.from_records(records, columns=columns)


__all__ = ["NO_UNGATED", "change_waits", "comparison_row", "plain", "what_if"]
