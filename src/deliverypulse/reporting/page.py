"""Build the page: prepare once, compute every number from that value (summary, metrics,
analysis), turn them into tiles, charts and tables (``content``), and render the template.
"""

from __future__ import annotations

from datetime import UTC, datetime

import jinja2
import markupsafe
import pandas as pd

from deliverypulse.analysis import Analysis
from deliverypulse.dataset import Dataset
from deliverypulse.dora.prepared import Prepared, resolve
from deliverypulse.dora.table import metrics, summary
from deliverypulse.pseudonyms import PERSON_COLUMNS, pseudonym_key
from deliverypulse.reporting import board, changeboard, charts, controls
from deliverypulse.reporting import content as parts
from deliverypulse.reporting import formatting as fmt
from deliverypulse.reporting.incidents import incident_summary

TEMPLATE = "template.html.j2"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("deliverypulse.reporting", ""),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["safe_svg"] = lambda svg: markupsafe.Markup(svg or "")
    return environment


def _subtitle(overall: pd.DataFrame, by_repo: pd.DataFrame, tz: str) -> str:
    if overall.empty:
        return "No production deployments in this dataset yet."
    row = overall.iloc[0]
    repos = len(by_repo)
    noun = "repository" if repos == 1 else "repositories"
    zone = "" if tz == "UTC" else f" ({tz})"
    start, end = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
    return (
        f"{start.day} {start:%b %Y} to {end.day} {end:%b %Y}{zone} "
        f"({fmt.count(row['days'])} days) · "
        f"{repos} {noun} · {fmt.count(row['deployment_attempts'])} production deployments"
    )


def build_page(
    data: Dataset | Prepared,
    options: parts.Options,
    *,
    title: str | None = None,
    analysis: Analysis | None = None,
    generated_at: datetime | None = None,
    show_names: bool = False,
) -> parts.Page:
    """Compute every number the page shows from one prepared value: summary, metrics and the
    analysis count the same links, changes and failures.

    People are not the unit: unless ``show_names``, every person column of every table
    (author, creator, approvers, reviewers...) is a pseudonym under the dataset's key
    (:func:`deliverypulse.pseudonyms.pseudonym_key`) before anything is computed, so no name
    can reach the page."""
    prepared = resolve(data, options.metrics)
    if not show_names:
        prepared = prepared.pseudonymised(pseudonym_key(prepared.dataset.path))
        if analysis is not None and analysis.parameters.get("strata") in PERSON_COLUMNS:
            # Stratified by people: made again on the pseudonyms, with the same parameters.
            from deliverypulse.analysis import analyze

            given = analysis.parameters
            analysis = analyze(
                prepared,
                batch_bins=given["batch_bins"],
                min_deployments=given["min_deployments"],
                min_per_group=given["min_per_group"],
                min_window_days=given["min_window_days"],
                strata=given["strata"],
            )
    metric = prepared.options
    overall = summary(prepared)
    by_repo = summary(prepared, by=["repo"])
    rated = {"repo": by_repo}
    by_team = None
    if "team" in prepared.dataset.deployments.columns:
        by_team = summary(prepared, by=["team"])
        rated["team"] = by_team
    per_period = metrics(prepared, period=options.period)
    if analysis is None:
        from deliverypulse.analysis import analyze

        analysis = analyze(prepared)
    empty = overall.empty or int(overall["deployment_attempts"].iloc[0]) == 0
    nothing = "No production deployments in this dataset, so there is nothing to chart yet."

    trends_svg = trends_table = trends_change = None
    trends_message: str | None = nothing
    if not empty and len(per_period) >= 2:
        trends_svg = charts.trends(per_period, options.period, metric.benchmarks)
        trends_table = parts.trends_table(per_period, options.period)
        trends_change = board.period_change(
            per_period, options.period, overall["end"].iloc[0], parts.period_label
        )
        trends_message = None
    elif not empty:
        trends_message = (
            f"All deployments fall in one {options.period}, so there is no trend to draw yet; "
            "the headline numbers above are that period's."
        )

    stage_rows = parts.breakdown_rows(overall, by_repo) if not empty else pd.DataFrame()
    breakdown_svg = breakdown_table = None
    breakdown_message: str | None = nothing
    if not stage_rows.empty:
        breakdown_svg = charts.lead_time_breakdown(stage_rows)
        breakdown_table = parts.breakdown_table(stage_rows)
        breakdown_message = None
    elif not empty:
        breakdown_message = "No deployed change has the timestamps the stages need."

    gates = parts.gate_comparison(analysis)
    gated_known = analysis.deployments["gated"].dropna()
    if empty:
        gates = _replace_message(gates, nothing)
    elif gated_known.empty:
        gates = _replace_message(
            gates,
            "No deployment records whether it needed an approval, so gated and ungated "
            "deployments cannot be compared.",
        )
    elif not gated_known.astype(bool).any():
        gates = _replace_message(
            gates,
            "No deployment in this dataset waited for an approval gate, so there is no gated "
            "group to compare with.",
        )
    elif gated_known.astype(bool).all():
        gates = _replace_message(
            gates, "Every deployment was gated, so there is no ungated group to compare with."
        )
    batch = parts.comparison(
        analysis.batch_size,
        "failure-by-batch-size",
        xlabel="changes each deployment shipped or tried to ship",
        note=parts.batch_note(analysis),
    )
    if empty:
        batch = _replace_message(batch, nothing)
    elif batch.svg is None:
        batch = _replace_message(batch, "No deployment could be linked to the changes it shipped.")

    repos_table: parts.Table | None = None
    if empty:
        repos_message: str | None = nothing
    elif len(by_repo) == 1:
        repos_message = (
            f"All deployments come from one repository, {by_repo['repo'].iloc[0]}: the headline "
            "numbers above are its numbers, and no comparison between repos is possible."
        )
    else:
        repos_table = parts.repos_table(by_repo, analysis)
        repos_message = None

    others = tuple(
        (finding.question, board.plain(finding))
        for finding in analysis.findings
        if not board.leading(analysis, finding) and board.plain(finding) and finding.enough_data
    )
    teams_table = (
        parts.repos_table(by_team, analysis, unit="team")
        if by_team is not None and not empty and len(by_team)
        else None
    )
    what_if = analysis.what_if
    what_if_table = (
        parts.Table(board.WHAT_IF_LABELS, board.what_if_rows(what_if)) if len(what_if) else None
    )
    stamp = generated_at or datetime.now(UTC)
    return parts.Page(
        title=title or "Software delivery performance",
        subtitle=_subtitle(overall, by_repo, metric.tz),
        generated=f"{stamp:%Y-%m-%d %H:%M} UTC",
        tiles=parts.tiles(overall, rated),
        empty=empty,
        headline_message=(
            "No production deployments in this dataset yet: once deployments are collected, "
            "this page shows how often the team deploys, how long changes wait and how often "
            "releases fail."
            if empty
            else None
        ),
        headline=analysis.headline,
        answer=board.answer(analysis),
        what_if=board.what_if_sentences(what_if),
        what_if_table=what_if_table,
        warnings=() if empty else board.warnings(analysis, prepared.outcomes),
        caveats=tuple(analysis.caveats),
        technical=parts.technical(analysis),
        enough_data=analysis.enough_data,
        period=options.period,
        counted=board.deployment_sources(prepared.dataset.deployments, prepared.outcomes),
        spread_units=tuple(rated),
        trends_svg=trends_svg,
        trends_table=trends_table,
        trends_message=trends_message,
        trends_change=trends_change,
        breakdown_svg=breakdown_svg,
        breakdown_table=breakdown_table,
        breakdown_message=breakdown_message,
        batch=batch,
        gates=gates,
        other_findings=others,
        change_board=None if empty else changeboard.section(analysis),
        controls=controls.section(analysis),
        repos_table=repos_table,
        repos_message=repos_message,
        teams_table=teams_table,
        definitions=parts.definitions(parts.Options(options.period, metric), analysis),
        benchmarks=parts.benchmarks_table(metric.benchmarks),
        benchmarks_year=metric.benchmarks,
        incidents=incident_summary(prepared),
    )


def _replace_message(comparison: parts.Comparison, message: str) -> parts.Comparison:
    return parts.Comparison(
        comparison.question, None, None, comparison.statement, comparison.note, message
    )


def render(page: parts.Page) -> str:
    """The page as HTML text."""
    template = _environment().get_template(TEMPLATE)
    return template.render(
        page=page, cluster_colours=charts.CLUSTER_COLOURS, stage_colours=charts.STAGE_COLOURS
    )


__all__ = ["build_page", "render"]
