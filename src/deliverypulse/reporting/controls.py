"""The report's "What catches problems" section: ``Analysis.controls`` (peer review, tests,
automated deployment, approval gates, the change board) ranked by what the data can show, each
with "with / without" counts a person can check, the honest caveats, and the tests and odds
ratios one layer down. The CLI's ``analyze`` text shows the same ranking and words.

Only the analysis and plain formatting are imported at module level, so the CLI can use the
ranking and wording without loading the page machinery (matplotlib, jinja2)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from deliverypulse.analysis import Analysis
from deliverypulse.analysis.controls import control_caveats, ranked_controls
from deliverypulse.reporting import formatting as fmt

if TYPE_CHECKING:
    from deliverypulse.reporting.content import ControlsSection

HEADING = "What catches problems"

#: What each verdict says, and where it ranks: what the data can show first.
VERDICT_WORDS = {
    "fewer failures": "Fewer failures, within the same repos",
    "more failures": "More failures, within the same repos",
    "no clear difference": "No clear difference in failures",
    "cannot tell": "Cannot tell",
}
#: The verdicts that rest on an estimate (anything else is "cannot tell", and says why).
ESTIMATED = ("fewer failures", "more failures", "no clear difference")

COLUMNS = (
    "Control",
    "With it",
    "Without it",
    "What the data shows",
    "Median lead time with / without",
)
TECHNICAL_COLUMNS = (
    "Control",
    "Failure rate with (likely range)",
    "Failure rate without (likely range)",
    "Deployments the data cannot place",
    "Repos with deployments both ways",
    "Within repo: odds ratio (95 % interval)",
    "Within-repo test",
    "All controls together: odds ratio (95 % interval)",
    "Model",
)

#: Shown whatever the numbers: what this kind of comparison can and cannot show (the
#: analysis's own ``controls_caveats``; these are for an analysis made without them).
CAVEATS = control_caveats("repo")

EMPTY = (
    "Nothing to compare yet: no production deployment in this data records which controls "
    "(review, tests, automated deployment, approvals) it went through."
)


#: The controls, what the data can show first (the order the analysis's sentences follow).
ranked = ranked_controls


def share(failures: Any, deployments: Any, rate: Any = None) -> str:
    """ "9 of 140 failed, 6 %": the counts first, so a person can check the rate."""
    total = fmt.number(deployments)
    if not total:
        return "no deployments"
    failed = fmt.number(failures) or 0.0
    fraction = fmt.number(rate)
    fraction = failed / total if fraction is None else fraction
    percent = "under 1 %" if 0 < fraction < 0.005 else fmt.percent(fraction, 0)
    return f"{fmt.count(failed)} of {fmt.count(total)} failed, {percent}"


def shows(row: dict[str, Any]) -> str:
    """What the data shows about one control, in words; "cannot tell" says why."""
    verdict = str(row.get("verdict") or "cannot tell")
    words = VERDICT_WORDS.get(verdict, verdict.capitalize())
    if verdict in ESTIMATED:
        return words
    with_it, without = (
        fmt.number(row.get("with_deployments")),
        fmt.number(row.get("without_deployments")),
    )
    if not with_it and not without:
        return f"{words}: no deployment records it"
    if not with_it:
        return f"{words}: no deployment had it"
    if not without:
        return f"{words}: every deployment had it"
    if not fmt.number(row.get("strata_both_ways")):
        return f"{words}: no repo deploys both with and without it"
    if row.get("adjusted_test") and fmt.number(row.get("adjusted_odds_ratio")) is None:
        return f"{words}: within each repo it always went with another control"
    return f"{words}: too few deployments to compare"


def lead_times(row: dict[str, Any]) -> str:
    """ "1.5 days / 5.0 hours": the median lead time with the control and without it."""
    with_it = fmt.duration(row.get("median_lead_time_with_h"))
    without = fmt.duration(row.get("median_lead_time_without_h"))
    return f"{with_it} / {without}"


def label(row: dict[str, Any]) -> str:
    """The control as a board reads it (its name when the analysis gave no label)."""
    text = row.get("label")
    return str(text) if isinstance(text, str) and text else str(row.get("control"))


def rows(analysis: Analysis) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each control (ranked) with its cells (``COLUMNS``)."""
    return tuple(
        (
            str(row["control"]),
            (
                label(row),
                share(row.get("with_failures"), row.get("with_deployments"), row.get("with_rate")),
                share(
                    row.get("without_failures"),
                    row.get("without_deployments"),
                    row.get("without_rate"),
                ),
                shows(row),
                lead_times(row),
            ),
        )
        for row in _records(ranked(analysis.controls))
    )


def _range(rate: Any, low: Any, high: Any) -> str:
    if fmt.number(rate) is None:
        return fmt.MISSING
    if fmt.number(low) is None or fmt.number(high) is None:
        return fmt.percent(rate)
    return f"{fmt.percent(rate)} ({fmt.percent(low)} to {fmt.percent(high)})"


def odds(ratio: Any, low: Any, high: Any) -> str:
    """An odds ratio with its interval; an unbounded side in words, not as a dash."""
    if not _known(ratio):
        return "cannot estimate"
    if not _known(low) and not _known(high):
        return _bound(ratio)
    return f"{_bound(ratio)} ({_bound(low)} to {_bound(high)})"


def _infinite(value: Any) -> bool:
    try:
        return value is not None and value is not pd.NA and math.isinf(float(value))
    except (TypeError, ValueError):
        return False


def _known(value: Any) -> bool:
    return fmt.number(value) is not None or _infinite(value)


def _bound(value: Any) -> str:
    if _infinite(value):
        return "no upper bound" if float(value) > 0 else "no lower bound"
    return fmt.estimate(value)


def method(test: Any, p_value: Any) -> str:
    """ "Mantel-Haenszel, p = 0.012"; a dash when nothing was tested."""
    name = test if isinstance(test, str) and test else ""
    p_text = fmt.p_value(p_value)
    if not name:
        return fmt.MISSING if p_text == fmt.MISSING else p_text
    return name if p_text == fmt.MISSING else f"{name}, {p_text}"


def technical_rows(analysis: Analysis) -> tuple[tuple[str, ...], ...]:
    """One layer down (``TECHNICAL_COLUMNS``): intervals, the unplaced deployments, the
    repos that compare like with like, and each model's odds ratio and test."""
    return tuple(
        (
            label(row),
            _range(row.get("with_rate"), row.get("with_rate_low"), row.get("with_rate_high")),
            _range(
                row.get("without_rate"), row.get("without_rate_low"), row.get("without_rate_high")
            ),
            fmt.count(row.get("unknown_deployments")),
            fmt.count(row.get("strata_both_ways")),
            odds(row.get("within_odds_ratio"), row.get("within_low"), row.get("within_high")),
            method(row.get("within_test"), row.get("within_p")),
            odds(row.get("adjusted_odds_ratio"), row.get("adjusted_low"), row.get("adjusted_high")),
            method(row.get("adjusted_test"), row.get("adjusted_p")),
        )
        for row in _records(ranked(analysis.controls))
    )


def never_vary(analysis: Analysis) -> tuple[str, ...]:
    """The labels of controls no repo deploys both with and without, in ranked order."""
    table = ranked(analysis.controls)
    if table.empty:
        return ()
    both = pd.to_numeric(table["strata_both_ways"], errors="coerce").fillna(0)
    return tuple(label(row) for row in _records(table.loc[both.eq(0)]))


def caveats(analysis: Analysis) -> tuple[str, ...]:
    """The fixed caveats, the last naming the controls that never vary within a repo here."""
    fixed = list(analysis.controls_caveats or CAVEATS)
    stuck = never_vary(analysis)
    if stuck:
        names = ", ".join(stuck[:-1]) + (" and " if len(stuck) > 1 else "") + stuck[-1]
        fixed[-1] += f" Here no repo deploys both with and without: {names}."
    return tuple(fixed)


def sentences(analysis: Analysis) -> tuple[str, ...]:
    """``controls_verdict`` after its first sentence, without the caveats (shown apart)."""
    shown = set(analysis.controls_caveats) | set(CAVEATS)
    return tuple(line for line in analysis.controls_verdict[1:] if line not in shown)


def lead(analysis: Analysis) -> str | None:
    """The sentence a board reads first: the first of ``controls_verdict`` (or, without one,
    the best-ranked control's own plain sentence)."""
    if analysis.controls_verdict:
        return analysis.controls_verdict[0]
    table = ranked(analysis.controls)
    if table.empty:
        return None
    text = table["plain"].iloc[0]
    return text if isinstance(text, str) and text else None


def section(analysis: Analysis, *, chart: bool = True) -> ControlsSection:
    """The section; with no controls to compare, just the one line that says so."""
    from deliverypulse.reporting.content import ControlsSection, Table

    if analysis.controls.empty:
        return ControlsSection(message=EMPTY)
    ranked_rows = rows(analysis)
    svg = None
    if chart:
        from deliverypulse.reporting import charts

        svg = charts.control_rates(ranked(analysis.controls))
    return ControlsSection(
        lead=lead(analysis),
        keys=tuple(key for key, _ in ranked_rows),
        table=Table(COLUMNS, tuple(cells for _, cells in ranked_rows)),
        sentences=sentences(analysis),
        caveats=caveats(analysis),
        technical=Table(TECHNICAL_COLUMNS, technical_rows(analysis)),
        svg=svg,
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(key): value for key, value in row.items()} for row in frame.to_dict("records")]


__all__ = [
    "CAVEATS",
    "COLUMNS",
    "EMPTY",
    "HEADING",
    "TECHNICAL_COLUMNS",
    "VERDICT_WORDS",
    "caveats",
    "lead",
    "never_vary",
    "odds",
    "ranked",
    "rows",
    "section",
    "sentences",
    "share",
    "shows",
    "technical_rows",
]
