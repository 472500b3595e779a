"""The report's "Change board" section: ``Analysis.change_board`` as a table a person can check,
the within-repo comparison of CAB-approved and other deployments in plain words, and what
dropping CAB approval would save. Shown only when the dataset holds change requests."""

from __future__ import annotations

from typing import Any

from deliverypulse.analysis import Analysis
from deliverypulse.reporting import formatting as fmt
from deliverypulse.reporting.content import ChangeBoardSection, Table

#: How each change type is named on the page.
TYPE_LABELS = {
    "normal": "Normal: approved by the change board (CAB)",
    "standard": "Standard: pre-approved",
    "emergency": "Emergency",
    "none": "No change request",
}

COLUMNS = (
    "Change type",
    "Deployments",
    "Failed",
    "Failure rate (likely range)",
    "Typical wait for approval",
    "Typical lead time",
    "Change requests",
)


def _rate(row: dict[Any, Any]) -> str:
    rate = fmt.number(row.get("change_failure_rate"))
    if rate is None:
        return fmt.MISSING
    low, high = row.get("change_failure_rate_low"), row.get("change_failure_rate_high")
    if fmt.number(low) is None or fmt.number(high) is None:
        return fmt.percent(rate)
    return f"{fmt.percent(rate)} ({fmt.percent(low)} to {fmt.percent(high)})"


def rows(analysis: Analysis) -> tuple[tuple[str, ...], ...]:
    """``Analysis.change_board`` as text cells (``COLUMNS``), types with no deployment left out."""
    found = []
    for row in analysis.change_board.to_dict("records"):
        if not row["deployments"]:
            continue
        kind = str(row["change_type"])
        found.append(
            (
                TYPE_LABELS.get(kind, kind.capitalize()),
                fmt.count(row["deployments"]),
                fmt.count(row["failures"]),
                _rate(row),
                fmt.duration(row.get("approval_wait_median_h")),
                fmt.duration(row.get("lead_time_median_h")),
                fmt.count(row.get("change_requests")) if kind != "none" else fmt.MISSING,
            )
        )
    return tuple(found)


def section(analysis: Analysis) -> ChangeBoardSection | None:
    """The section, or None when the dataset holds no change requests."""
    if analysis.change_board.empty:
        return None
    finding = analysis.finding("change_board")
    what_if = analysis.change_board_what_if
    return ChangeBoardSection(
        table=Table(COLUMNS, rows(analysis)),
        sentence=finding.plain,
        what_if=tuple(str(text) for text in what_if.get("plain", ()) if isinstance(text, str)),
    )


__all__ = ["COLUMNS", "TYPE_LABELS", "rows", "section"]
