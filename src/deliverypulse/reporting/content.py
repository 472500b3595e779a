"""What the report says, as plain values: headline tiles, chart SVGs, tables as text, the verdict
and the definitions of the options used. The template only lays these out.

Kept apart from the template so the numbers can be tested without parsing HTML, and so every
number on the page comes from exactly one call to the metrics or the analysis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from deliverypulse.analysis import Analysis, Finding
from deliverypulse.dora.clusters import BENCHMARKS
from deliverypulse.dora.options import MetricOptions
from deliverypulse.dora.periods import check_period
from deliverypulse.reporting import charts
from deliverypulse.reporting import formatting as fmt

CLUSTER_METRICS = {
    "deployment_frequency": "deployments_per_day",
    "lead_time": "lead_time_median_hours",
    "change_failure_rate": "change_failure_rate",
    "recovery": "recovery_median_hours",
}
SIGNAL_TEXT = {
    "status": "its own status is failure or error",
    "rollback": "a later deployment rolled it back (flagged, or redeployed an older sha)",
    "revert": "a change it shipped was reverted within {window}",
    "hotfix": "a hotfix was merged within {window} after it",
    "incident": "an incident opened after it and before the next successful deployment",
}


@dataclass(frozen=True)
class Segment:
    """Part of a tile's detail line; a ``metric`` segment is a number a script may read."""

    text: str
    metric: str = ""
    value: str = ""


@dataclass(frozen=True)
class Tile:
    """One headline number: what it is, its value as read and as data, and its DORA cluster."""

    metric: str  # the summary() column it shows, for data-metric
    label: str
    text: str  # as read: "1.7 per day"
    value: str  # raw number for data-value
    cluster: str | None
    detail: tuple[Segment, ...]

    @property
    def number(self) -> str:
        return fmt.split(self.text)[0]

    @property
    def unit(self) -> str:
        return fmt.split(self.text)[1]


@dataclass(frozen=True)
class Table:
    """A table of strings; ``clusters`` colours a cell by its column name."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    clusters: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Comparison:
    """A finding of the analysis as the page shows it: chart, table, statement, test."""

    question: str
    svg: str | None
    table: Table | None
    statement: str
    test: str
    message: str | None  # shown instead of the chart when there is nothing to compare


@dataclass(frozen=True)
class Page:
    title: str
    subtitle: str
    generated: str
    tiles: tuple[Tile, ...]
    empty: bool  # no production deployment: the page shows the message instead of sections
    headline_message: str | None
    verdict: tuple[str, ...]
    caveats: tuple[str, ...]
    enough_data: bool
    period: str
    trends_svg: str | None
    trends_table: Table | None
    trends_message: str | None
    breakdown_svg: str | None
    breakdown_table: Table | None
    breakdown_message: str | None
    batch: Comparison
    gates: Comparison
    other_findings: tuple[tuple[str, str], ...]
    repos_table: Table | None
    repos_message: str | None
    definitions: tuple[tuple[str, str], ...]
    benchmarks: Table
    benchmarks_year: str
    options: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Options:
    """What a report was made with: its own options and the metric options, which its
    definitions echo."""

    period: str = "month"
    """Period of the trend charts and table: ``week`` or ``month``."""

    metrics: MetricOptions | None = None
    """How everything on the page is counted (time zone and benchmarks included); ``None``:
    as the prepared value given to the page was prepared, or the defaults."""

    def __post_init__(self) -> None:
        check_period(self.period)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name."""
    return [{str(key): value for key, value in row.items()} for row in frame.to_dict("records")]


def _first(frame: pd.DataFrame) -> dict[str, Any]:
    rows = records(frame.head(1))
    return rows[0] if rows else {}


def _cluster(row: dict[str, Any], metric: str) -> str | None:
    value = row.get(f"{metric}_cluster")
    return None if value is None or pd.isna(value) else str(value)


def _counted(row: dict[str, Any], metric: str) -> Segment:
    """A count inside a tile's detail line, marked so a script can read it."""
    return Segment(fmt.count(row.get(metric)), metric, fmt.raw(row.get(metric)))


def tiles(overall: pd.DataFrame) -> tuple[Tile, ...]:
    """The five headline numbers, each with the counts behind it."""
    row = _first(overall)
    get = row.get
    if not row:
        return tuple(
            Tile(metric, label, fmt.MISSING, "", None, ())
            for metric, label in (
                ("deployments_per_day", "Deployment frequency"),
                ("lead_time_median_hours", "Lead time for changes"),
                ("change_failure_rate", "Change failure rate"),
                ("recovery_median_hours", "Recovery time"),
                ("rework_rate", "Rework rate"),
            )
        )
    return (
        Tile(
            "deployments_per_day",
            "Deployment frequency",
            fmt.frequency(get("deployments_per_day")),
            fmt.raw(get("deployments_per_day")),
            _cluster(row, "deployment_frequency"),
            (
                _counted(row, "deployments"),
                Segment(f" successful production deployments in {fmt.count(get('days'))} days"),
            ),
        ),
        Tile(
            "lead_time_median_hours",
            "Lead time for changes",
            fmt.duration(get("lead_time_median_hours")),
            fmt.raw(get("lead_time_median_hours")),
            _cluster(row, "lead_time"),
            (
                Segment("median of "),
                _counted(row, "lead_time_count"),
                Segment(
                    " changes, first commit to production; 1 in 10 took over "
                    f"{fmt.duration(get('lead_time_p90_hours'))}"
                ),
            ),
        ),
        Tile(
            "change_failure_rate",
            "Change failure rate",
            fmt.percent(get("change_failure_rate")),
            fmt.raw(get("change_failure_rate")),
            _cluster(row, "change_failure_rate"),
            (
                _counted(row, "failed_deployments"),
                Segment(" of "),
                _counted(row, "deployment_attempts"),
                Segment(" production deployments needed intervention"),
            ),
        ),
        Tile(
            "recovery_median_hours",
            "Recovery time",
            fmt.duration(get("recovery_median_hours")),
            fmt.raw(get("recovery_median_hours")),
            _cluster(row, "recovery"),
            (
                Segment("median time to restore service after a failed deployment; "),
                _counted(row, "unrecovered"),
                Segment(" not yet recovered"),
            ),
        ),
        Tile(
            "rework_rate",
            "Rework rate",
            fmt.percent(get("rework_rate")),
            fmt.raw(get("rework_rate")),
            None,
            (
                _counted(row, "rework_deployments"),
                Segment(" unplanned deployments: reverts, hotfixes, fixes after a failure"),
            ),
        ),
    )


def period_label(stamp: Any, period: str) -> str:
    when = pd.Timestamp(stamp)
    return f"week of {when:%d %b %Y}" if period == "week" else f"{when:%B %Y}"


def trends_table(table: pd.DataFrame, period: str) -> Table:
    rows = tuple(
        (
            period_label(row["period"], period),
            fmt.count(row["deployments"]),
            fmt.duration(row["lead_time_median_hours"]),
            fmt.percent(row["change_failure_rate"]),
            fmt.duration(row["recovery_median_hours"]),
        )
        for row in records(table)
    )
    columns = (
        period.capitalize(),
        "Deployments",
        "Median lead time",
        "Change failure rate",
        "Median recovery",
    )
    return Table(columns, rows)


STAGES = ("coding", "pickup", "review", "deploy")


def breakdown_rows(overall: pd.DataFrame, by_repo: pd.DataFrame) -> pd.DataFrame:
    """One row per repo (when there are several) and one for everything: median hours of each
    lead-time stage."""
    columns = [f"{stage}_median_hours" for stage in STAGES] + ["lead_time_median_hours"]
    whole = overall[columns].assign(label="All repos")
    parts = [whole]
    if len(by_repo) > 1:
        parts.append(by_repo[["repo", *columns]].rename(columns={"repo": "label"}))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.rename(columns={f"{stage}_median_hours": stage for stage in STAGES})
    has_stage = frame[list(STAGES)].notna().any(axis=1)
    return frame.loc[has_stage].reset_index(drop=True)


def breakdown_table(rows: pd.DataFrame) -> Table:
    body = tuple(
        (
            str(item["label"]),
            *(fmt.duration(item[stage]) for stage in STAGES),
            fmt.duration(item["lead_time_median_hours"]),
        )
        for item in records(rows)
    )
    return Table(("", "Coding", "Pickup", "Review", "Deploy", "Lead time"), body)


def comparison(
    finding: Finding, name: str, colours: Iterable[str] | None = None, xlabel: str = ""
) -> Comparison:
    """A finding with its chart, unless no group has a deployment to show."""
    groups = finding.groups
    shown = groups.loc[groups["deployments"].fillna(0).astype(int) > 0].reset_index(drop=True)
    table = Table(
        (
            "Group",
            "Deployments",
            "Failed",
            "Change failure rate",
            "95 % interval",
            "Median lead time",
            "Median recovery",
        ),
        tuple(
            (
                str(row["group"]),
                fmt.count(row["deployments"]),
                fmt.count(row["failures"]),
                fmt.percent(row["change_failure_rate"]),
                f"{fmt.percent(row['cfr_low'], 0)} to {fmt.percent(row['cfr_high'], 0)}",
                fmt.duration(row["median_lead_time_h"]),
                fmt.duration(row["median_recovery_h"]),
            )
            for row in records(groups)
        ),
    )
    test = _test_text(finding)
    if finding.test and finding.test in finding.statement:
        test = ""  # the statement already names the test and its numbers
    if shown.empty:
        return Comparison(finding.question, None, None, finding.statement, test, None)
    palette = None if colours is None else list(colours)
    if palette is not None:
        palette = [palette[index] for index in shown.index] if len(palette) == len(groups) else None
    svg = charts.failure_rates(shown, name, palette, xlabel)
    return Comparison(finding.question, svg, table, finding.statement, test, None)


def _test_text(finding: Finding) -> str:
    if finding.estimate is None:
        return f"{finding.test}: not enough data for an estimate" if finding.test else ""
    interval = ""
    if finding.ci_low is not None and finding.ci_high is not None:
        interval = f" (95 % CI {finding.ci_low:.2f} to {finding.ci_high:.2f})"
    return (
        f"{finding.effect}: {finding.estimate:.2f}{interval}; {finding.test}, "
        f"{fmt.p_value(finding.p_value)}"
    )


def repos_table(by_repo: pd.DataFrame, analysis: Analysis) -> Table:
    """One row per repo: its headline numbers with clusters, how often it is gated and how big
    its batches are (from the analysis's per-deployment table)."""
    per_deployment = analysis.deployments
    gated_share = per_deployment.groupby("repo")["gated"].apply(
        lambda values: values.dropna().astype(float).mean() if values.notna().any() else None
    )
    batch = per_deployment.groupby("repo")["batch_changes"].median()
    rows, clusters = [], []
    for row in records(by_repo):
        repo = str(row["repo"])
        rows.append(
            (
                repo,
                fmt.count(row["deployments"]),
                fmt.frequency(row["deployments_per_day"]),
                fmt.duration(row["lead_time_median_hours"]),
                f"{fmt.percent(row['change_failure_rate'], 0)} "
                f"({fmt.count(row['failed_deployments'])}/{fmt.count(row['deployment_attempts'])})",
                fmt.duration(row["recovery_median_hours"]),
                fmt.percent(gated_share.get(repo), 0),
                fmt.count(batch.get(repo)),
            )
        )
        clusters.append(
            {
                "Frequency": _cluster(row, "deployment_frequency") or "",
                "Lead time": _cluster(row, "lead_time") or "",
                "Failure rate": _cluster(row, "change_failure_rate") or "",
                "Recovery": _cluster(row, "recovery") or "",
            }
        )
    columns = (
        "Repo",
        "Deployments",
        "Frequency",
        "Lead time",
        "Failure rate",
        "Recovery",
        "Gated",
        "Median batch",
    )
    return Table(columns, tuple(rows), tuple(clusters))


def _bound(metric: str, value: float) -> str:
    if metric == "deployment_frequency":
        return fmt.frequency(value)
    if metric == "change_failure_rate":
        return fmt.percent(value, 0)
    return fmt.duration(value)


def benchmarks_table(year: str) -> Table:
    """The DORA cluster bounds in force, in words."""
    names = {
        "deployment_frequency": "Deployment frequency",
        "lead_time": "Lead time for changes",
        "change_failure_rate": "Change failure rate",
        "recovery": "Recovery time",
    }
    signs = {"higher": "≥ ", "lower": "< ", "at_most": "≤ "}
    rows = []
    for metric, bands in BENCHMARKS[year].items():
        sign = signs[bands.direction]
        elite, high, medium = (sign + _bound(metric, bound) for bound in bands.bounds)
        rows.append((names[metric], elite, high, medium, "anything else"))
    return Table(("Metric", "Elite", "High", "Medium", "Low"), tuple(rows))


def definitions(options: Options, analysis: Analysis) -> tuple[tuple[str, str], ...]:
    """Each metric's definition with the options this report was made with filled in."""
    metric = options.metrics or MetricOptions()
    window = metric.revert_window
    whole_days = window == pd.Timedelta(days=window.days)
    window_text = (
        f"{window.days} days" if whole_days else fmt.duration(window.total_seconds() / 3600)
    )
    if metric.environments is None:
        production = (
            "Deployments to an environment flagged as production, or, where the flag is unknown, "
            "to an environment named prod or production."
        )
    else:
        production = f"Deployments to the environments {', '.join(metric.environments)}."
    signals = "; ".join(
        SIGNAL_TEXT[name].format(window=window_text) for name in metric.failure_signals
    )
    bots = (
        "Changes by bots (flagged as bots, or authors such as dependabot, renovate or any name "
        "ending in [bot] or -bot) are left out."
        if metric.exclude_bots
        else "Changes by bots are included."
    )
    trunk = (
        "A commit pushed straight to the main branch, without a pull request, counts as a change "
        "of its own."
        if metric.trunk
        else "Only pull or merge requests count as changes; direct commits are ignored."
    )
    weeks = " (weeks start on Monday)" if options.period == "week" else ""
    bins = analysis.parameters.get("batch_bins")
    groups = f" Groups: {', '.join(map(str, bins))} changes and up." if bins else ""
    since = (
        f"Only what happened from {fmt.day(metric.since)} on."
        if metric.since is not None
        else "Each repo's history starts where its collection started (or, where the whole "
        "history was collected, at its first production deployment), so the first deployment "
        "does not sweep up years of older changes."
    )
    if metric.until is not None:
        since += f" Nothing from {fmt.day(metric.until)} on is counted."
    return (
        ("Production deployment", production + " " + since),
        (
            "Deployment frequency",
            "Successful production deployments per day, over the days from the first to the "
            f"last in the data; trends count them per calendar {options.period} in "
            f"{metric.tz}{weeks}.",
        ),
        (
            "Lead time for changes",
            "From a change's first commit to the end of the first successful production "
            f"deployment that shipped it (as DORA defines it). {bots} {trunk} Negative spans "
            "are data errors and are left out.",
        ),
        (
            "Lead-time stages",
            "Coding: first commit to the pull request being ready for review. Pickup: to the first "
            "review by someone other than the author. Review: to the merge. Deploy: from the "
            "merge to production.",
        ),
        (
            "Change failure rate",
            "Production deployments that needed intervention divided by production deployment "
            f"attempts (successful or failed). A deployment failed if {signals}.",
        ),
        (
            "Failed deployment recovery time",
            "From a failed deployment (or the incident's opening) to the next successful "
            "production deployment, or the incident's resolution.",
        ),
        (
            "Deployment rework rate",
            "Deployments that were unplanned — they ship a revert or hotfix, roll back, or follow "
            "a failed deployment to fix it — divided by production deployment attempts.",
        ),
        (
            "Batch size",
            "The number of changes a production deployment shipped (linked through the commit "
            f"graph).{groups}",
        ),
        (
            "Gated deployment",
            "A deployment that had to wait for an approval (required reviewers, a change "
            "advisory board). Deployments whose gate is unknown are left out of that comparison.",
        ),
        (
            "Intervals and tests",
            "Ranges are 95 % Wilson intervals for a rate. Comparisons are stratified by repo "
            "(Mantel-Haenszel) where there are several, so one risky repo cannot make the "
            "result; the test behind each comparison is named under its chart.",
        ),
    )


__all__ = [
    "Comparison",
    "Options",
    "Page",
    "Segment",
    "Table",
    "Tile",
    "benchmarks_table",
    "breakdown_rows",
    "breakdown_table",
    "comparison",
    "definitions",
    "repos_table",
    "tiles",
    "trends_table",
]
