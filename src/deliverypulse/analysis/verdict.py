"""Plain sentences from the numbers: what each comparison shows, what it cannot show, and the
caveats (too little data, confounding by repo, a short window, observational data).

Every sentence is built from a Finding's numbers, so the words never claim more than the test.
"""

from __future__ import annotations

import math

import pandas as pd

from deliverypulse.analysis.model import Estimate
from deliverypulse.analysis.stats import ALPHA

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
    if math.isinf(value):
        return "infinity" if value > 0 else "-infinity"
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
    unit = estimate.scope.removeprefix("within ") if estimate.scope.startswith("within") else ""
    within = f" within the same {unit}s" if unit else ""
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


def hours(value: float | None) -> str:
    """Hours for a plain sentence: "23 h", "1.5 h", "n/a"."""
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value:,.0f} h" if abs(value) >= 10 else f"{value:.1f} h"


def count(number: int, singular: str, plural: str | None = None) -> str:
    """ "1 repo", "2 repos"."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def gate_plain(
    *,
    unit: str,
    strata: int,
    gated: tuple[int, int],
    ungated: tuple[int, int],
    expected: float | None,
    estimate: Estimate,
    enough: bool,
    min_per_group: int,
    min_deployments: int,
    labels: tuple[str, str] = ("gated", "ungated"),
    control: str = "the gate",
) -> str:
    """The within-repo gate result for a board: the countable numbers (deployments in repos
    that deploy both ways only), then what they can and cannot show. ``gated`` and ``ungated``
    are (failures, deployments); ``expected``: gated failures expected if, within each repo,
    the gate made no difference. Never claims a difference ``estimate`` does not show."""
    (gated_failed, gated_n), (ungated_failed, ungated_n) = gated, ungated
    yes, no = labels
    verb = "deploys" if strata == 1 else "deploy"
    counts = (
        f"In the {count(strata, unit)} that {verb} both ways, {gated_failed} of {gated_n} {yes} "
        f"and {ungated_failed} of {ungated_n} {no} deployments failed"
    )
    if strata > 1 and expected is not None:
        counts += (
            f" ({expected:.1f} {yes} failures would be expected if, within each {unit}, {control} "
            "made no difference)"
        )
    if gated_failed + ungated_failed == 0:
        return f"{counts}: with no failure to compare, there is not enough data to say."
    if estimate.estimate is None:
        return f"{counts}: not enough data to compare them within each {unit}."
    side = significant(estimate, 1.0)
    direction = "more" if side > 0 else "less"
    small = [name for name, n in ((yes, gated_n), (no, ungated_n)) if n < min_per_group]
    if not enough:
        few = (
            f"with so few {' and '.join(small)} deployments"
            if small
            else f"with only {gated_n + ungated_n} deployments"
        )
        if side:
            return (
                f"{counts}; {yes} deployments failed {direction} often here, but {few} there is "
                "not enough data to be sure."
            )
        if small and gated_n + ungated_n >= min_deployments:
            return f"{counts}; {few} this could be chance."
        return f"{counts}; {few} this could be chance: not enough data to say."
    if side:
        return (
            f"{counts}: within the same {unit}s {yes} deployments failed {direction} often, by "
            "more than chance would explain."
        )
    near = 0.8 <= estimate.estimate <= 1.25
    if near:
        return (
            f"{counts}: within the same {unit}s {yes} and {no} deployments failed about "
            "equally often, so the data show no difference."
        )
    return (
        f"{counts}; within the same {unit}s this difference could be chance: the data do not "
        f"show that {control} changes how often deployments fail."
    )


def outcome_words(estimate: Estimate, null: float, more: str, less: str, none: str) -> str:
    """ "more" / "less" when the estimate differs from ``null`` at the 5 % level, else
    ``none``."""
    side = significant(estimate, null)
    return more if side > 0 else less if side < 0 else none


__all__ = [
    "CAUSATION",
    "CONFOUNDING_RATIO",
    "MIN_OVERLAP_SHARE",
    "batch_statement",
    "count",
    "disagreement",
    "gate_plain",
    "gate_statement",
    "hours",
    "interval",
    "lead_statement",
    "number",
    "outcome_words",
    "p_text",
    "percent",
    "significant",
    "window_text",
]
