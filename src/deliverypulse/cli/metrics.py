"""``deliverypulse metrics``: the DORA metrics table on a terminal, or as CSV, JSON or Parquet.

Errors follow the CLI's convention: one line
on stderr, exit 1; a bad option exits 2.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deliverypulse.cli._errors import handle_errors, usage_errors
from deliverypulse.cli._options import (
    dataset_directory,
    format_option,
    period_option,
    show_names_option,
    since_option,
    tz_option,
    until_option,
)
from deliverypulse.dataset import Dataset, load
from deliverypulse.dora import SIGNALS, MetricOptions, metrics, summary
from deliverypulse.dora.clusters import BENCHMARKS
from deliverypulse.errors import DataError, OptionError
from deliverypulse.pseudonyms import PERSON_COLUMNS, pseudonym_key, pseudonymise_frame
from deliverypulse.store.files import write_atomic
from deliverypulse.store.location import resolve

MISSING = "-"
METRICS_FILE = Path("metrics") / "part-0.parquet"

#: The columns a terminal shows, with their headings; every column is in csv/json/parquet.
_SHOWN = {
    "deployments": "deploys",
    "deployment_days_per_week": "days/wk",
    "lead_time_median_hours": "lead time",
    "merge_to_deploy_median_hours": "merge→deploy",
    "change_failure_rate": "fail rate",
    "recovery_median_hours": "recovery",
    "rework_rate": "rework",
    "deployment_frequency_cluster": "freq",
    "lead_time_cluster": "lead",
    "change_failure_rate_cluster": "fail",
    "recovery_cluster": "recov",
}


def _duration(hours: Any) -> str:
    if hours is None or (isinstance(hours, float) and math.isnan(hours)) or pd.isna(hours):
        return MISSING
    value = float(hours)
    if value < 1:
        return f"{value * 60:.0f}m"
    if value < 48:
        return f"{value:.1f}h"
    return f"{value / 24:.1f}d"


def _percent(rate: Any) -> str:
    return MISSING if pd.isna(rate) else f"{float(rate) * 100:.0f}%"


def render_table(table: pd.DataFrame, groups: list[str], head: list[str]) -> str:
    """The key columns, formatted for people: durations in m/h/d, rates in percent."""
    if table.empty:
        return "No production deployments in this dataset."
    shown = pd.DataFrame()
    for name in groups:
        shown[name] = table[name].astype("string").fillna(MISSING)
    for name in head:
        if name in ("period", "start", "end"):
            shown[name] = table[name].map(lambda stamp: stamp.strftime("%Y-%m-%d"))
        else:
            shown[name] = table[name].astype("Int64").astype("string")
    for name, heading in _SHOWN.items():
        column = table[name]
        if name.endswith("_hours"):
            shown[heading] = column.map(_duration)
        elif name.endswith("_rate"):
            shown[heading] = column.map(_percent)
        elif name == "deployment_days_per_week":
            shown[heading] = column.map(lambda value: f"{value:.1f}")
        else:
            shown[heading] = column.astype("string").fillna(MISSING)
    return shown.to_string(index=False)


def _write_metrics(directory: Path | str, table: pd.DataFrame) -> Path | str:
    """Replace DIR/metrics/part-0.parquet with ``table``, atomically (on object storage: one
    whole-object PUT)."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    location = resolve(directory)
    if location.local is None:
        sink = pa.BufferOutputStream()
        pq.write_table(arrow, sink)
        location.write_bytes(sink.getvalue().to_pybytes(), *METRICS_FILE.parts)
        return location.show(*METRICS_FILE.parts)
    target = location.local / METRICS_FILE
    write_atomic(target, lambda temp: pq.write_table(arrow, temp))
    return target


@click.command("metrics")
@dataset_directory
@period_option("Calendar weeks (Monday start) or months.")
@click.option(
    "--by",
    "by",
    multiple=True,
    help="Group by a column of deployments: source, repo, team (from the service catalogue), "
    "or one you added. Repeatable.",
)
@tz_option
@format_option(["table", "csv", "json", "parquet"])
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output (required for parquet on a terminal).",
)
@click.option("--summary", "headline", is_flag=True, help="One row per group for the whole range.")
@click.option(
    "--signals",
    default=",".join(SIGNALS),
    show_default=True,
    help="Failure signals for the change failure rate.",
)
@click.option("--revert-window", default="7D", show_default=True)
@click.option(
    "--incident-lookback",
    default="7D",
    show_default=True,
    help="How long before an incident on a service its deployment may have finished.",
)
@click.option(
    "--benchmarks", type=click.Choice(sorted(BENCHMARKS)), default="2023", show_default=True
)
@click.option("--include-bots", is_flag=True, help="Keep changes by bots in the lead time.")
@click.option("--no-trunk", is_flag=True, help="Commits without a pull request are no changes.")
@click.option(
    "--environment",
    "environments",
    multiple=True,
    help="Treat these environments as production (default: is_production). Repeatable.",
)
@since_option
@until_option
@click.option(
    "--write", "write", is_flag=True, help="Also store the table as DIR/metrics/part-0.parquet."
)
@click.option(
    "--scheduler",
    "scheduler",
    metavar="ADDRESS",
    help="Prepare the data over repo partitions on this Dask scheduler (tcp://host:8786); "
    "each worker reads its repos from DIRECTORY, so it must see the same path. "
    "Needs pip install 'deliverypulse[distributed]'.",
)
@show_names_option
@handle_errors
def metrics_command(
    directory: Path | str,
    period: str,
    by: tuple[str, ...],
    tz: str,
    output_format: str,
    output: Path | None,
    headline: bool,
    signals: str,
    revert_window: str,
    incident_lookback: str,
    benchmarks: str,
    include_bots: bool,
    no_trunk: bool,
    environments: tuple[str, ...],
    since: str | None,
    until: str | None,
    write: bool,
    show_names: bool,
    scheduler: str | None,
) -> None:
    """DORA metrics of the dataset in DIRECTORY, per period (and group)."""
    if output_format == "parquet" and output is None and sys.stdout.isatty():
        raise click.UsageError("--format parquet needs --output FILE (or a pipe)")
    groups = list(by)
    # A dataset that cannot be read is a data error (exit 1), not usage. With a scheduler the
    # workers read it, each its own repos; here only the small tables are read.
    ds: Dataset | Path | str = load(directory) if scheduler is None else directory
    with usage_errors(OptionError, ValueError, DataError):
        options = MetricOptions.build(
            tz=tz,
            failure_signals=tuple(name.strip() for name in signals.split(",") if name.strip()),
            revert_window=revert_window,
            incident_lookback=incident_lookback,
            benchmarks=benchmarks,
            exclude_bots=not include_bots,
            trunk=not no_trunk,
            environments=environments or None,
            since=since,
            until=until,
        )
        table = (
            summary(ds, groups or None, options=options, engine=scheduler)
            if headline
            else metrics(ds, period, groups or None, options=options, engine=scheduler)
        )
    if not show_names:
        people = [name for name in groups if name in PERSON_COLUMNS]
        table = pseudonymise_frame(table, pseudonym_key(directory), people)
    if write:
        stored = _write_metrics(directory, table)
        click.echo(f"wrote {len(table)} rows to {stored}", err=True)
    head = ["start", "end", "days"] if headline else ["period", "period_days"]
    _emit(table, output_format, output, groups, head)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _emit(
    table: pd.DataFrame, output_format: str, output: Path | None, groups: list[str], head: list[str]
) -> None:
    if output_format == "parquet":
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if output is not None:
            write_atomic(output, lambda temp: pq.write_table(arrow, temp))
        else:
            sink = pa.BufferOutputStream()
            pq.write_table(arrow, sink)
            sys.stdout.buffer.write(sink.getvalue().to_pybytes())
        return
    if output_format == "csv":
        text = table.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
    elif output_format == "json":
        text = table.to_json(orient="records", date_format="iso", indent=2) + "\n"
    else:
        width = shutil.get_terminal_size((160, 24)).columns
        with pd.option_context("display.width", width):
            text = render_table(table, groups, [h for h in head if h != "period_days"]) + "\n"
    if output is not None:
        write_atomic(output, lambda temp: _write_text(temp, text))
    else:
        click.echo(text, nl=False)


__all__ = ["metrics_command", "render_table"]
