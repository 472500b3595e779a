"""``deliverypulse analyze``: the batch-size, approval-gate and controls analysis on a terminal or
as JSON.

Errors follow the CLI's convention: one line on stderr, exit 1 (2 for a bad
option).
"""

from __future__ import annotations

import json
import math
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import click
import pandas as pd

from deliverypulse.analysis import (
    DEFAULT_BINS,
    Analysis,
    AnalysisError,
    Estimate,
    Finding,
    analyze,
)
from deliverypulse.cli._errors import handle_errors, usage_errors
from deliverypulse.cli._options import (
    F,
    dataset_directory,
    format_option,
    show_names_option,
    until_option,
)
from deliverypulse.dataset import load
from deliverypulse.dora.options import MetricOptions
from deliverypulse.dora.prepared import prepare
from deliverypulse.errors import OptionError
from deliverypulse.pseudonyms import pseudonym_key
from deliverypulse.reporting import controls
from deliverypulse.reporting import formatting as fmt


def parse_bins(value: str) -> tuple[int, ...]:
    """ "1,2,4,8" gives (1, 2, 4, 8); anything else is a clear usage error."""
    try:
        return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give increasing whole numbers separated by commas, e.g. 1,2,4,8"
        ) from None


def parse_since(value: str | None) -> pd.Timestamp | None:
    """A date or timestamp (UTC when no zone is given); a clear usage error otherwise."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give a date, e.g. 2024-01-01") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _cell(value: object, digits: int = 1) -> str:
    """A number for a table cell; "-" when missing."""
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def group_lines(finding: Finding) -> list[str]:
    """The groups of a finding as a small aligned table."""
    groups = finding.groups
    header = ["group", "deploys", "failed", "CFR", "95% CI", "lead h", "recovery h"]
    rows = [header]
    for record in groups.to_dict("records"):
        rate = record["change_failure_rate"]
        rows.append(
            [
                str(record["group"]),
                str(record["deployments"]),
                str(record["failures"]),
                "-" if _cell(rate) == "-" else f"{rate:.0%}",
                "-"
                if _cell(record["cfr_low"]) == "-"
                else f"{record['cfr_low']:.0%}-{record['cfr_high']:.0%}",
                _cell(record["median_lead_time_h"]),
                _cell(record["median_recovery_h"]),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def strata_lines(finding: Finding, unit: str) -> list[str]:
    """Per repo (or team): gated and ungated deployments with their failures; the within
    comparison uses those that deploy both ways (marked *)."""
    rows = [["  " + unit, "gated", "failed", "ungated", "failed"]]
    for record in finding.strata.to_dict("records"):
        mark = "* " if record["both_ways"] else "  "
        rows.append(
            [
                mark + str(record["stratum"]),
                str(record["gated_deployments"]),
                str(record["gated_failures"]),
                str(record["ungated_deployments"]),
                str(record["ungated_failures"]),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  "
        + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return [*lines, "  * deploys both ways: counted in the within comparison"]


def estimate_line(estimate: Estimate) -> str:
    """A secondary estimate in one line (the main one is in the finding's statement)."""
    if estimate.estimate is None:
        return f"  also {estimate.test}: cannot estimate" + (
            f" ({estimate.note})" if estimate.note else ""
        )
    high = (
        "no upper bound"
        if estimate.ci_high is None or math.isinf(estimate.ci_high)
        else _cell(estimate.ci_high, 2)
    )
    p_value = "" if estimate.p_value is None else f", p = {estimate.p_value:.3g}"
    value = "infinite" if math.isinf(estimate.estimate) else f"{estimate.estimate:.2f}"
    return (
        f"  also {estimate.test} [{estimate.scope}]: {estimate.effect} {value} "
        f"(95% CI {_cell(estimate.ci_low, 2)} to {high}{p_value})"
    )


def _bullets(sentences: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for sentence in sentences:
        lines += textwrap.wrap(sentence, width, initial_indent="- ", subsequent_indent="  ")
    return lines


def render_text(result: Analysis, width: int) -> str:
    """Plain words first (the headline, each finding's plain sentence, what dropping the gate
    would do, the caveats), then the technical detail: one block per finding with its groups,
    its one-method statement and every other estimate made for it."""
    start, end = result.window
    span = f"{start:%Y-%m-%d} to {end:%Y-%m-%d}" if start is not None and end is not None else "-"
    plain = [line for line in result.verdict if line not in result.caveats]
    lines = [
        f"{len(result.deployments)} production deployments, {span}"
        + ("" if result.enough_data else "  (not enough data)"),
        "",
        "Verdict",
        *_bullets(plain, width),
    ]
    if len(result.what_if):
        lines += ["", "What if the gate went", *_bullets(list(result.what_if["plain"]), width)]
    lines += change_board_lines(result, width)
    lines += controls_lines(result, width)
    lines += ["", "Caveats", *_bullets(list(result.caveats), width)]
    lines += ["", "Technical detail"]
    for finding in result.findings:
        scope = (
            f" [{finding.scope}]" if finding.scope and finding.scope not in finding.question else ""
        )
        lines += ["", finding.question + scope]
        if finding.name == "gates" and len(finding.strata):
            lines += strata_lines(finding, str(result.parameters.get("strata", "repo")))
        elif finding.name in ("gates_crude", "batch_size"):
            lines += group_lines(finding)
        lines += textwrap.wrap(
            finding.statement, width, initial_indent="  ", subsequent_indent="  "
        )
        lines += [estimate_line(estimate) for estimate in finding.estimates[1:]]
    if result.change_board_finding is not None and not result.change_board.empty:
        finding = result.change_board_finding
        lines += [
            "",
            f"{finding.question} [{finding.scope}]" if finding.scope else finding.question,
        ]
        lines += textwrap.wrap(
            finding.statement, width, initial_indent="  ", subsequent_indent="  "
        )
    lines += controls_technical_lines(result, width)
    return "\n".join(lines)


def controls_lines(result: Analysis, width: int) -> list[str]:
    """ "What catches problems" in plain words: the sentence a board reads first, each control
    ranked by what the data can show with its with / without counts and lead times, the rest
    of the verdict and the caveats; one line when there is nothing to compare."""
    lines = ["", controls.HEADING]
    if result.controls.empty:
        return [
            *lines,
            *textwrap.wrap(controls.EMPTY, width, initial_indent="  ", subsequent_indent="  "),
        ]
    first = controls.lead(result)
    if first:
        lines += _bullets([first], width)
    for number, (_, cells) in enumerate(controls.rows(result), start=1):
        name, with_it, without, shows, lead_times = cells
        lines += textwrap.wrap(
            f"{number}. {name}: {shows}",
            width,
            initial_indent="  ",
            subsequent_indent="     ",
        )
        lines += [
            f"     with it:    {with_it}",
            f"     without it: {without}",
            f"     median lead time with / without: {lead_times}",
        ]
    lines += _bullets(list(controls.sentences(result)), width)
    lines += ["Read with care:", *_bullets(list(controls.caveats(result)), width)]
    return lines


def _tested(method: str) -> str:
    return "" if method == fmt.MISSING else f" ({method})"


def controls_technical_lines(result: Analysis, width: int) -> list[str]:
    """Per control, one layer down: the unplaced deployments, the repos compared like with
    like, the within-repo and all-controls odds ratios with their tests."""
    if result.controls.empty:
        return []
    lines = ["", "Which controls go with fewer failures? [within repo, then all together]"]
    for cells in controls.technical_rows(result):
        name, _, _, unknown, both, within, within_test, adjusted, model = cells
        text = (
            f"{name}: within repo odds ratio {within}{_tested(within_test)}; all controls "
            f"together {adjusted}{_tested(model)}; {both} repos deploy both ways; {unknown} "
            "deployments cannot be placed"
        )
        lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    ")
    return lines


def change_board_lines(result: Analysis, width: int) -> list[str]:
    """The change board in plain words: one line per change type with its counts, the
    within-repo sentence and what dropping CAB approval would save (nothing without change
    requests)."""
    board = result.change_board
    if board.empty:
        return []
    lines = [
        "",
        "Change board",
        f"  {'type':<12} {'deployments':>11}  {'failed':>6}  {'failure rate (95 % CI)':<26}  "
        f"{'wait':>7}  {'lead time':>8}",
    ]

    def hours(value: object) -> str:
        number = None if value is None else float(str(value))
        return "-" if number is None or math.isnan(number) else f"{number:.1f} h"

    def pct(value: object) -> str:
        return f"{float(str(value)) * 100:.1f}"

    for row in board.to_dict("records"):
        if not row["deployments"]:
            continue
        rate = (
            f"{pct(row['change_failure_rate'])} % "
            f"({pct(row['change_failure_rate_low'])}-{pct(row['change_failure_rate_high'])})"
        )
        lines.append(
            f"  {row['change_type']:<12} {row['deployments']:>11}  {row['failures']:>6}  "
            f"{rate:<26}  {hours(row['approval_wait_median_h']):>7}  "
            f"{hours(row['lead_time_median_h']):>8}"
        )
    lines += _bullets([result.finding("change_board").plain], width)
    lines += _bullets(list(result.change_board_what_if.get("plain", [])), width)
    return lines


def _at_least_one(name: str, default: int, help: str) -> Callable[[F], F]:
    return click.option(
        name, type=click.IntRange(min=1), default=default, show_default=True, help=help
    )


@click.command("analyze")
@dataset_directory
@format_option(["text", "json"], "Plain text for a terminal, or JSON for other tools.")
@_at_least_one("--min-deployments", 30, "Fewest production deployments for any conclusion.")
@_at_least_one("--min-per-group", 10, "Fewest deployments in each group compared.")
@click.option(
    "--bins",
    default=",".join(str(edge) for edge in DEFAULT_BINS),
    show_default=True,
    help="Lower edges of the batch-size groups, in changes (1,2,4,8 gives 1, 2-3, 4-7, 8+).",
)
@click.option(
    "--strata",
    default="repo",
    show_default=True,
    help="What the leading comparisons hold fixed: repo, or a column of the deployments (team).",
)
@click.option("--since", help="Analyse only deployments finished on or after this date.")
@until_option
@show_names_option
@handle_errors
def analyze_command(
    directory: Path | str,
    output_format: str,
    min_deployments: int,
    min_per_group: int,
    bins: str,
    strata: str,
    since: str | None,
    until: str | None,
    show_names: bool,
) -> None:
    """Do big batches and approval gates make releases safer? Tests on the dataset in DIRECTORY.

    People (a --strata of creators, say) appear as pseudonyms unless --show-names is given."""
    edges = parse_bins(bins)
    start = parse_since(since)
    end = parse_since(until)
    with usage_errors(AnalysisError, OptionError):
        prepared = prepare(load(directory), MetricOptions.build(since=start, until=end))
        if not show_names:
            prepared = prepared.pseudonymised(pseudonym_key(directory))
        result = analyze(
            prepared,
            batch_bins=edges,
            min_deployments=min_deployments,
            min_per_group=min_per_group,
            strata=strata,
        )
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        return
    width = min(shutil.get_terminal_size((100, 24)).columns, 100) - 2
    click.echo(render_text(result, width))


__all__ = ["analyze_command", "render_text"]
