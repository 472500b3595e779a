"""Plain sentences from the numbers: what each comparison shows, what it cannot show, and the
caveats (too little data, confounding by repo, a short window, observational data).

Every sentence is built from a Finding's numbers, so the words never claim more than the test.
"""

from __future__ import annotations

import pandas as pd

from deliverypulse.analysis.model import Estimate
from deliverypulse.analysis.stats import ALPHA, MANTEL_HAENSZEL

#: How much the crude and the within-repo odds ratios may differ (as a ratio) before the
#: verdict calls the comparison confounded, even when both agree on significance.
CONFOUNDING_RATIO = 1.5
#: Share of the compared deployments that must sit in repos holding both groups; below it,
#: the groups come from different repos and repo confounds the comparison.
MIN_OVERLAP_SHARE = 0.5

CAUSATION = (
    "This is an observational comparison: it shows association, not cause. Teams choose which "
    "deployments to gate and how much to batch, so riskier work may be gated or batched on "
    "purpose, and other differences between deployments are not accounted for."
)


def number(value: float | None) -> str:
    """A short number for a sentence: two decimals, none from 100 up; "n/a" when missing."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def p_text(p_value: float | None) -> str:
    if p_value is None:
        return "p n/a"
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def percent(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value:.0%}"


def interval(estimate: Estimate) -> str:
    """ "odds ratio 2.1 (95 % CI 1.3 to 3.4; Mantel-Haenszel ..., p = 0.004)"."""
    return (
        f"{estimate.effect} {number(estimate.estimate)} (95 % CI {number(estimate.ci_low)} to "
        f"{number(estimate.ci_high)}; {estimate.test}, {p_text(estimate.p_value)})"
    )


def significant(estimate: Estimate, null: float) -> int:
    """+1 or -1 when the estimate differs from ``null`` at the 5 % level, else 0."""
    if estimate.estimate is None or estimate.p_value is None or estimate.p_value >= ALPHA:
        return 0
    if estimate.ci_low is not None and estimate.ci_low > null:
        return 1
    if estimate.ci_high is not None and estimate.ci_high < null:
        return -1
    return 0


def gate_statement(
    estimate: Estimate, rates: tuple[float | None, float | None], counts: tuple[int, int]
) -> str:
    """What the gated-vs-ungated failure comparison shows (enough data assumed)."""
    gated_rate, ungated_rate = rates
    if estimate.estimate is None:
        return (
            "The failure rates of gated and ungated deployments cannot be compared "
            f"({estimate.note or 'no estimate'})."
        )
    within = " within the same repos" if estimate.test == MANTEL_HAENSZEL else ""
    side = significant(estimate, 1.0)
    shown = f"{percent(gated_rate)} vs {percent(ungated_rate)} failed, {interval(estimate)}"
    if side > 0:
        return f"Gated deployments failed more often than ungated ones{within}: {shown}."
    if side < 0:
        return f"Gated deployments failed less often than ungated ones{within}: {shown}."
    return (
        "No difference in failure rate between gated and ungated deployments could be shown"
        f"{within} ({counts[0]} gated, {counts[1]} ungated): {shown}. The interval is the range "
        "of effects the data still allows."
    )


def batch_statement(estimate: Estimate) -> str:
    """What the logistic model of failure on batch size shows (enough data assumed)."""
    if estimate.estimate is None:
        return f"The effect of batch size on failure cannot be estimated ({estimate.note})."
    side = significant(estimate, 1.0)
    if side > 0:
        return f"Bigger batches failed more often: {interval(estimate)}."
    if side < 0:
        return f"Bigger batches failed less often: {interval(estimate)}."
    return (
        "No link between batch size and failure could be shown: "
        f"{interval(estimate)}. The interval is the range of effects the data still allows."
    )


def lead_statement(estimate: Estimate, subject: str, more: str, less: str) -> str:
    """A lead-time or recovery comparison in one sentence."""
    if estimate.estimate is None:
        return f"{subject} cannot be compared ({estimate.note})."
    null = 0.0
    side = significant(estimate, null)
    if side > 0:
        return f"{more}: {interval(estimate)}."
    if side < 0:
        return f"{less}: {interval(estimate)}."
    return f"No difference in {subject.lower()} could be shown: {interval(estimate)}."


def disagreement(crude: Estimate, stratified: Estimate) -> bool:
    """Whether the crude and the within-repo estimates tell different stories."""
    if crude.estimate is None or stratified.estimate is None:
        return False
    if significant(crude, 1.0) != significant(stratified, 1.0):
        return True
    low, high = sorted((max(crude.estimate, 1e-9), max(stratified.estimate, 1e-9)))
    return high / low > CONFOUNDING_RATIO


def window_text(window: tuple[pd.Timestamp | None, pd.Timestamp | None]) -> str:
    start, end = window
    if start is None or end is None:
        return "in the window"
    return f"between {start:%Y-%m-%d} and {end:%Y-%m-%d}"


__all__ = [
    "CAUSATION",
    "CONFOUNDING_RATIO",
    "MIN_OVERLAP_SHARE",
    "batch_statement",
    "disagreement",
    "gate_statement",
    "interval",
    "lead_statement",
    "number",
    "p_text",
    "percent",
    "significant",
    "window_text",
]
