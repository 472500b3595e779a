"""``deliverypulse collect``, ``status`` and ``connectors``: filling a dataset and looking at it."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from deliverypulse.cli._errors import handle_errors
from deliverypulse.cli._options import DATASET
from deliverypulse.collector import run_collect
from deliverypulse.config import DEFAULT_OUTPUT, config_from_dict, load_config, parse_since
from deliverypulse.connector import available_connectors, load_connector
from deliverypulse.errors import ConfigError, DeliveryPulseError
from deliverypulse.progress import NullProgress, Progress, TerminalProgress
from deliverypulse.store import ParquetStore, SyncState
from deliverypulse.store.location import resolve
from deliverypulse.store.schemas import TABLES

DEFAULT_CONFIG = "deliverypulse.toml"


@click.command("collect")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Config file (default: ./{DEFAULT_CONFIG}).",
)
@click.option(
    "--git",
    "git_path",
    type=click.Path(path_type=Path),
    help="Collect one local git repository; no config needed.",
)
@click.option(
    "--deployments",
    help="With --git: 'tags:REGEX' (tag names) or 'branch:NAME' (its merges); "
    "default: release-version tags, with or without 'v'.",
)
@click.option(
    "-o",
    "--out",
    type=DATASET,
    help="Dataset directory or URL, e.g. s3://bucket/prefix (overrides [output] path).",
)
@click.option("--since", help="Collect nothing older than this date (YYYY-MM-DD).")
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Ignore saved cursors and read everything again; rows the source no longer returns "
    "are removed (only where the refresh completed).",
)
@click.option(
    "--wait",
    "lock_timeout",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for another run writing the same dataset.",
)
@click.option(
    "--buckets",
    type=click.IntRange(1, 1024),
    help="Repo buckets of a new dataset (fixed then): part files and cursor files per bucket, "
    "so --scheduler can collect buckets in parallel. Default 1.",
)
@click.option(
    "--scheduler",
    help="Collect on this Dask scheduler (tcp://host:8786): one task per source and repo "
    "bucket. Workers read tokens from their own environment and must reach the dataset.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress line (default: only on a terminal).",
)
@handle_errors
def collect_command(
    config_path: Path | None,
    git_path: Path | None,
    deployments: str | None,
    out: Path | str | None,
    since: str | None,
    full_refresh: bool,
    lock_timeout: float,
    buckets: int | None,
    scheduler: str | None,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Collect deployments, changes, commits, test runs and incidents into the dataset."""
    if config_path and git_path:
        raise click.UsageError("give either --config or --git, not both")
    if deployments is not None and git_path is None:
        raise click.UsageError("--deployments goes with --git (in a config, set it per source)")
    since_at = _since(since)
    if git_path is not None:
        source = {"type": "git", "path": str(git_path)}
        if deployments is not None:
            source["deployments"] = deployments
        config = config_from_dict(
            {
                "sources": [source],
                "output": {"path": str(out or DEFAULT_OUTPUT)},
            }
        )
    else:
        path = config_path or Path(DEFAULT_CONFIG)
        if config_path is None and not path.exists():
            raise ConfigError(f"no {DEFAULT_CONFIG} here; pass --config FILE or --git PATH")
        config = load_config(path, output=out)
    show_progress = sys.stderr.isatty() if progress is None else progress
    reporter: Progress = TerminalProgress() if show_progress and not as_json else NullProgress()
    summary = run_collect(
        config,
        since=since_at,
        full_refresh=full_refresh,
        progress=reporter,
        lock_timeout=lock_timeout,
        buckets=buckets,
        client=scheduler,
    )
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in summary.lines():
            click.echo(line, err=not summary.ok and "FAILED" in line)
    if not summary.ok:
        sys.exit(1)


def _since(value: str | None) -> datetime | None:
    try:
        return parse_since(value)
    except ConfigError:
        raise click.BadParameter(
            f"{value!r} is not a date (expected YYYY-MM-DD)", param_hint="--since"
        ) from None


@click.command("status")
@click.argument("directory", required=False, type=DATASET, default=DEFAULT_OUTPUT)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable status.")
@handle_errors
def status_command(directory: Path | str, as_json: bool) -> None:
    """Rows per table and source, every cursor, and the last run of a dataset (a folder or a
    URL such as s3://bucket/prefix)."""
    location = resolve(directory)
    if not location.exists():
        raise DeliveryPulseError(f"no dataset at {directory}: run 'deliverypulse collect' first")
    store = ParquetStore(location)
    state = SyncState(location)
    rows = [
        {"table": table, "source": source, "rows": store.count(table, source)}
        for table in TABLES
        for source in store.sources(table)
    ]
    last_run = state.runs[-1] if state.runs else None
    if as_json:
        click.echo(
            json.dumps({"tables": rows, "cursors": state.cursors(), "last_run": last_run}, indent=2)
        )
        return
    click.echo(f"dataset {location.local.resolve() if location.local else location}")
    click.echo("\ntables:")
    for row in rows or [{"table": "(none)", "source": "", "rows": 0}]:
        click.echo(f"  {row['table']:<20} {row['source']:<24} {row['rows']:>10,}")
    click.echo("\ncursors:")
    for cursor in state.cursors() or [
        {"source": "(none)", "stream": "", "repo": "", "cursor": "", "saved_at": ""}
    ]:
        click.echo(
            f"  {cursor['source']:<16} {cursor['stream']:<12} {cursor['repo']:<28} "
            f"{str(cursor['cursor'])[:40]:<40} {cursor['saved_at']}"
        )
    click.echo("\nlast run:")
    if last_run is None:
        click.echo("  never")
    else:
        state_word = (
            "ok"
            if last_run["ok"]
            else "FAILED: "
            + ", ".join(
                sorted(
                    set(last_run["source_errors"])
                    | {s["source"] for s in last_run["streams"] if not s["ok"]}
                )
            )
        )
        click.echo(f"  {last_run['started_at']} → {last_run['finished_at']}  {state_word}")


@click.command("connectors")
@handle_errors
def connectors_command() -> None:
    """List the installed connectors, their streams (what each reads, what it runs after) and
    config keys."""
    for name, entry_point in sorted(available_connectors().items()):
        try:
            connector = load_connector(name)
        except DeliveryPulseError as error:
            click.echo(f"{name}  (broken: {error})")
            continue
        click.echo(f"{name}  [{entry_point.value}]")
        click.echo(f"  streams: {', '.join(connector.streams)}")
        for stream in connector.stream_specs:
            details = [f"reads {stream.reads}"] if stream.reads else []
            if stream.after:
                details.append(f"after {', '.join(stream.after)}")
            table = f" -> {stream.table}" if stream.table and stream.table != stream.name else ""
            click.echo(f"    {stream.name}{table}" + (f": {'; '.join(details)}" if details else ""))
        for key, option in connector.options.items():
            default = f" (default {option.default!r})" if option.default is not None else ""
            click.echo(f"  {key}: {option.help}{default}")
