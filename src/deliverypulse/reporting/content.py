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
from deliverypulse.reporting import board, charts
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
    detail: tuple[Segment, ...]
    #: The DORA ratings of each repo (and team) on its own: an organisation is not rated.
    spreads: tuple[board.Spread, ...] = ()
    rated: bool = True  # False: no DORA cluster exists for this metric (rework rate)

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
    """A finding of the analysis as the page shows it: chart, table, the plain sentence and,
    where the chart pools what the sentence compares within repos, why they differ."""

    question: str
    svg: str | None
    table: Table | None
    statement: str
    note: str
    message: str | None  # shown instead of the chart when there is nothing to compare


@dataclass(frozen=True)
class Technical:
    """One finding one layer down: its technical sentence and every estimate behind it."""

    question: str
    scope: str
    statement: str
    estimates: Table


@dataclass(frozen=True)
class ChangeBoardSection:
    """The "Change board" section (:mod:`deliverypulse.reporting.changeboard`)."""

    table: Table  # one row per change type with deployments
    sentence: str  # CAB-approved against other deployments, within repo, in plain words
    what_if: tuple[str, ...]  # what dropping CAB approval would save, per repo


@dataclass(frozen=True)
class ControlsSection:
    """The "What catches problems" section (:mod:`deliverypulse.reporting.controls`); with
    nothing to compare, only ``message``."""

    lead: str | None = None  # the first sentence of ``Analysis.controls_verdict``
    keys: tuple[str, ...] = ()  # the control of each table row, ranked ("fully_reviewed")
    table: Table | None = None  # with / without counts, what it shows, lead times
    sentences: tuple[str, ...] = ()  # the rest of ``controls_verdict``
    caveats: tuple[str, ...] = ()
    technical: Table | None = None  # tests, odds ratios and intervals: one layer down
    svg: str | None = None  # failure rate with and without each control
    message: str | None = None  # the one line shown when there is nothing to compare


@dataclass(frozen=True)
class Page:
    title: str
    subtitle: str
    generated: str
    tiles: tuple[Tile, ...]
    empty: bool  # no production deployment: the page shows the message instead of sections
    headline_message: str | None
    headline: str  # the first sentence a board reads
    answer: tuple[str, ...]  # each finding in plain words
    what_if: tuple[str, ...]  # "what if we dropped the gate", one sentence per repo or team
    what_if_table: Table | None
    warnings: tuple[str, ...]  # where a figure rests on weak ground, in plain words
    caveats: tuple[str, ...]  # the analysis's own caveats (technical: one layer down)
    technical: tuple[Technical, ...]
    enough_data: bool
    period: str
    counted: tuple[str, ...]  # what counted as a deployment, per source
    spread_units: tuple[str, ...]  # "repo", "team": what the ratings are the spread of
    trends_svg: str | None
    trends_table: Table | None
    trends_message: str | None
    trends_change: str | None
    breakdown_svg: str | None
    breakdown_table: Table | None
    breakdown_message: str | None
    batch: Comparison
    gates: Comparison
    other_findings: tuple[tuple[str, str], ...]
    repos_table: Table | None
    repos_message: str | None
    teams_table: Table | None
    definitions: tuple[tuple[str, str], ...]
    benchmarks: Table
    benchmarks_year: str
    options: tuple[tuple[str, str], ...] = field(default=())
    #: How the incidents were counted, and how many matched no deployment and why; ``None``
    #: when the data has no incidents.
    incidents: str | None = None
    change_board: ChangeBoardSection | None = None  # only when there are change requests
    controls: ControlsSection | None = None  # "What catches problems"


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


TILE_LABELS = (
    ("deployments_per_day", "Deployment frequency"),
    ("lead_time_median_hours", "Lead time for changes"),
    ("change_failure_rate", "Change failure rate"),
    ("recovery_median_hours", "Recovery time"),
    ("rework_rate", "Rework rate"),
)


def tiles(overall: pd.DataFrame, groups: dict[str, pd.DataFrame] | None = None) -> tuple[Tile, ...]:
    """The five headline numbers, each with the counts behind it. The numbers are the pooled
    figures; the rating is the spread of the DORA clusters of each repo (and team) on its
    own (``groups``: ``{"repo": summary(data, by=["repo"]), "team": ...}``), because DORA's
    clusters describe a team or service, not an organisation."""
    row = _first(overall)
    get = row.get

    def spreads(metric: str) -> tuple[board.Spread, ...]:
        column = board.RATED.get(metric)
        if column is None:
            return ()
        found = (board.spread(table, column, unit) for unit, table in (groups or {}).items())
        return tuple(item for item in found if item is not None and item.total)

    if not row:
        return tuple(
            Tile(metric, label, fmt.MISSING, "", (), rated=metric in board.RATED)
            for metric, label in TILE_LABELS
        )
    return (
        Tile(
            "deployments_per_day",
            "Deployment frequency",
            fmt.frequency(get("deployments_per_day")),
            fmt.raw(get("deployments_per_day")),
            (
                _counted(row, "deployments"),
                Segment(f" successful production deployments in {fmt.count(get('days'))} days"),
            ),
            spreads("deployments_per_day"),
        ),
        Tile(
            "lead_time_median_hours",
            "Lead time for changes",
            fmt.duration(get("lead_time_median_hours")),
            fmt.raw(get("lead_time_median_hours")),
            (
                Segment("median of "),
                _counted(row, "lead_time_count"),
                Segment(
                    " changes, first commit to production; 1 in 10 took over "
                    f"{fmt.duration(get('lead_time_p90_hours'))}"
                ),
            ),
            spreads("lead_time_median_hours"),
        ),
        Tile(
            "change_failure_rate",
            "Change failure rate",
            fmt.percent(get("change_failure_rate")),
            fmt.raw(get("change_failure_rate")),
            (
                _counted(row, "failed_deployments"),
                Segment(" of "),
                _counted(row, "deployment_attempts"),
                Segment(" production deployments needed intervention"),
            ),
            spreads("change_failure_rate"),
        ),
        Tile(
            "recovery_median_hours",
            "Recovery time",
            fmt.duration(get("recovery_median_hours")),
            fmt.raw(get("recovery_median_hours")),
            (
                Segment("median time to restore service, over "),
                _counted(row, "recovery_count"),
                Segment(" recoveries; "),
                _counted(row, "unrecovered"),
                Segment(" not yet recovered"),
            ),
            spreads("recovery_median_hours"),
        ),
        Tile(
            "rework_rate",
            "Rework rate",
            fmt.percent(get("rework_rate")),
            fmt.raw(get("rework_rate")),
            (
                _counted(row, "rework_deployments"),
                Segment(" unplanned deployments: reverts, hotfixes, fixes after a failure"),
            ),
            rated=False,
        ),
    )


def period_label(stamp: Any, period: str) -> str:
    when = pd.Timestamp(stamp)
    return f"week of {when:%d %b %Y}" if period == "week" else f"{when:%B %Y}"


def _with_change(text: str, change: str) -> str:
    return f"{text} ({change})" if change and change != "no change" else text


def trends_table(table: pd.DataFrame, period: str) -> Table:
    """One row per period: each figure with the count it rests on and its change against the
    period before."""
    rows = []
    previous: dict[str, Any] | None = None
    for row in records(table):

        def change(
            column: str, kind: str, row: dict[str, Any] = row, before: Any = previous
        ) -> str:
            return "" if before is None else board.delta(row[column], before[column], kind)

        rows.append(
            (
                period_label(row["period"], period),
                _with_change(fmt.count(row["deployments"]), change("deployments", "count")),
                _with_change(
                    fmt.duration(row["lead_time_median_hours"]),
                    change("lead_time_median_hours", "hours"),
                ),
                fmt.count(row["lead_time_count"]),
                _with_change(
                    fmt.percent(row["change_failure_rate"]),
                    change("change_failure_rate", "rate"),
                ),
                f"{fmt.count(row['failed_deployments'])} of "
                f"{fmt.count(row['deployment_attempts'])}",
                _with_change(
                    fmt.duration(row["recovery_median_hours"]),
                    change("recovery_median_hours", "hours"),
                ),
                fmt.count(row["recovery_count"]),
            )
        )
        previous = row
    columns = (
        period.capitalize(),
        "Deployments",
        "Median lead time",
        "Changes it rests on",
        "Change failure rate",
        "Failed of attempts",
        "Median recovery",
        "Recoveries",
    )
    return Table(columns, tuple(rows))


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


COMPARISON_COLUMNS = (
    "Group",
    "Deployments",
    "Needed intervention",
    "Change failure rate",
    "Likely range (95 %)",
    "Median lead time",
    "Median recovery",
)


def comparison_table(groups: pd.DataFrame) -> Table:
    return Table(
        COMPARISON_COLUMNS,
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


def comparison(
    finding: Finding,
    name: str,
    colours: Iterable[str] | None = None,
    xlabel: str = "",
    note: str = "",
) -> Comparison:
    """A finding with its chart, unless no group has a deployment to show; its sentence is the
    plain one."""
    groups = finding.groups
    shown = groups.loc[groups["deployments"].fillna(0).astype(int) > 0].reset_index(drop=True)
    table = comparison_table(groups)
    sentence = board.plain(finding)
    if shown.empty:
        return Comparison(finding.question, None, None, sentence, note, None)
    palette = None if colours is None else list(colours)
    if palette is not None:
        palette = [palette[index] for index in shown.index] if len(palette) == len(groups) else None
    svg = charts.failure_rates(shown, name, palette, xlabel)
    return Comparison(finding.question, svg, table, sentence, note, None)


def gate_comparison(analysis: Analysis) -> Comparison:
    """Gated against ungated: like with like first (only the repos that deploy both ways), then
    every repo pooled, labelled as mixing repos; the sentence is the finding's plain one."""
    from deliverypulse.analysis.stats import group_table

    finding = analysis.gates
    deployments = analysis.deployments
    mixed = board.mixed_repos(deployments)
    pooled = finding.groups
    colours = [charts.GATED, charts.PRIMARY]
    sentence = board.plain(finding)
    shown = pooled.loc[pooled["deployments"].fillna(0).astype(int) > 0]
    if shown.empty:
        return Comparison(finding.question, None, None, sentence, "", None)
    repos = deployments["repo"].nunique()
    if not mixed or len(mixed) == repos:
        svg = charts.failure_rates(pooled, "gated-vs-ungated", colours)
        return Comparison(finding.question, svg, comparison_table(pooled), sentence, "", None)
    inside = deployments.loc[deployments["repo"].isin(mixed)]
    within = group_table(inside, "gated", [True, False], ["gated", "ungated"])
    count = len(mixed)
    where = f"In the {count} repo{'s' if count > 1 else ''} that deploy both ways"
    svg = charts.failure_rate_panels(
        [
            (f"{where} (like with like)", within, colours),
            ("All repos pooled (mixes repos)", pooled, colours),
        ],
        "gated-vs-ungated",
    )
    labelled = pd.concat(
        [
            within.assign(group=within["group"] + " (repos that deploy both ways)"),
            pooled.assign(group=pooled["group"] + " (all repos pooled)"),
        ],
        ignore_index=True,
    )
    gated_elsewhere = int(deployments.loc[~deployments["repo"].isin(mixed), "gated"].eq(True).sum())
    note = (
        f"Read the left-hand bars: they compare deployments of the same repos "
        f"({board.join(mixed)}). The right-hand bars mix repos — {gated_elsewhere} gated "
        f"deployments come from repos that always gate and {len(deployments) - len(inside)} "
        "deployments in all from repos that deploy only one way — so they show differences "
        "between repos as much as the effect of the gate."
    )
    return Comparison(finding.question, svg, comparison_table(labelled), sentence, note, None)


def batch_note(analysis: Analysis) -> str:
    """Why the batch chart (every repo pooled) and its sentence (within repos) may differ,
    with the counts that show it; empty when the page has one repo."""
    finding = analysis.batch_size
    deployments = analysis.deployments
    if deployments.empty or deployments["repo"].nunique() < 2 or board.crude(finding):
        return ""
    groups = finding.groups.loc[finding.groups["deployments"].fillna(0).astype(int) > 0]
    if len(groups) < 2:
        return ""
    first, last = groups.iloc[0], groups.iloc[-1]
    alpha = 1 - float(analysis.parameters.get("confidence", 0.95))
    no_link = finding.p_value is None or finding.p_value >= alpha
    rises = fmt.number(last["cfr_low"]) is not None and float(last["cfr_low"]) > float(
        first["cfr_high"]
    )
    pooled = (
        "The bars pool every repo; the sentence compares deployments within the same repo, "
        "so that a repo that ships big batches and fails for other reasons cannot make the "
        "result."
    )
    if not (no_link and rises):
        return pooled
    biggest = deployments.loc[deployments["batch_group"].astype(object) == last["group"], "repo"]
    top = biggest.value_counts()
    names, covered = [], 0
    for repo, count in top.items():
        names.append(str(repo))
        covered += int(count)
        if covered * 2 >= len(biggest):
            break
    return (
        f"Why the bars and the sentence differ: the bars mix repos. {covered} of the "
        f"{len(biggest)} deployments of {last['group']} changes come from {board.join(names)}, "
        f"{'a repo that differs' if len(names) == 1 else 'repos that differ'} from the others "
        "in more than batch size. Compared within each repo, the data shows no clear link "
        "between batch size and failure."
    )


def technical(analysis: Analysis) -> tuple[Technical, ...]:
    """Every finding one layer down: its technical sentence and each estimate with its test."""
    found = []
    for item in analysis.findings:
        estimates = item.estimates or ()
        rows = tuple(
            (
                fmt.effect(estimate.effect),
                fmt.estimate(estimate.estimate),
                f"{fmt.estimate(estimate.ci_low)} to {fmt.estimate(estimate.ci_high)}"
                if estimate.ci_low is not None and estimate.ci_high is not None
                else fmt.MISSING,
                estimate.test,
                fmt.p_value(estimate.p_value),
                estimate.note,
            )
            for estimate in estimates
        )
        table = Table(
            ("What was estimated", "Estimate", "95 % interval", "Method", "p-value", "Note"),
            rows,
        )
        found.append(Technical(item.question, item.scope, item.statement, table))
    return tuple(found)


def repos_table(by_repo: pd.DataFrame, analysis: Analysis, unit: str = "repo") -> Table:
    """One row per repo (or team): its headline numbers, each with its own DORA rating, how
    often it is gated and how big its batches are (from the analysis's per-deployment
    table)."""
    per_deployment = analysis.deployments
    key = unit if unit in per_deployment.columns else None
    gated_share: pd.Series = pd.Series(dtype=float)
    batch: pd.Series = pd.Series(dtype=float)
    if key is not None:
        gated_share = per_deployment.groupby(key)["gated"].apply(
            lambda values: values.dropna().astype(float).mean() if values.notna().any() else None
        )
        batch = per_deployment.groupby(key)["batch_changes"].median()
    rows, clusters = [], []
    for row in records(by_repo):
        name = str(row[unit])
        rows.append(
            (
                name,
                fmt.count(row["deployments"]),
                fmt.frequency(row["deployments_per_day"]),
                fmt.duration(row["lead_time_median_hours"]),
                f"{fmt.percent(row['change_failure_rate'], 0)} "
                f"({fmt.count(row['failed_deployments'])}/{fmt.count(row['deployment_attempts'])})",
                fmt.duration(row["recovery_median_hours"]),
                fmt.percent(gated_share.get(name), 0),
                fmt.count(batch.get(name)),
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
        unit.capitalize(),
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
            "Ratings",
            "Each repo (and each team, where the data names teams) is placed in a DORA cluster "
            "on its own numbers; the headline shows how many repos fall in each cluster. The "
            "organisation as a whole is not rated: DORA's clusters describe teams and "
            "services, and a pooled figure can look elite when only one repo is.",
        ),
        (
            "Intervals and tests",
            "A likely range is a 95 % interval: for a rate, the Wilson interval. The comparison "
            "that leads compares deployments within the same repo (stratified by repo; exact "
            "conditional inference where groups are small), so one risky repo cannot make the "
            "result; the comparison across all repos is shown second and labelled. Each "
            "sentence's estimate, interval and p-value come from one method, listed with every "
            "other estimate under \u201cThe statistics behind each sentence\u201d.",
        ),
    )


__all__ = [
    "ChangeBoardSection",
    "Comparison",
    "ControlsSection",
    "Options",
    "Page",
    "Segment",
    "Table",
    "Technical",
    "Tile",
    "batch_note",
    "benchmarks_table",
    "breakdown_rows",
    "breakdown_table",
    "comparison",
    "comparison_table",
    "definitions",
    "gate_comparison",
    "repos_table",
    "technical",
    "tiles",
    "trends_table",
]
