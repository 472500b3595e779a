"""``deliverypulse report``: write the HTML report of a dataset.

The report's imports (matplotlib, jinja2, the analysis) load only when this command runs, not on
every ``collect`` from a cron job.
"""

from __future__ import annotations

from pathlib import Path

import click

from deliverypulse.cli._errors import handle_errors
from deliverypulse.config import DEFAULT_OUTPUT
from deliverypulse.dora.periods import check_tz
from deliverypulse.errors import OptionError


def _time_zone(_context: click.Context, _parameter: click.Parameter, value: str) -> str:
    """Reject an unknown time zone as a usage error (exit 2) before any work is done."""
    try:
        return check_tz(value)
    except OptionError as error:
        raise click.BadParameter(str(error)) from None


@click.command("report")
@click.argument(
    "directory", required=False, type=click.Path(path_type=Path), default=DEFAULT_OUTPUT
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the HTML file.",
)
@click.option(
    "--period",
    type=click.Choice(["week", "month"]),
    default="month",
    show_default=True,
    help="Period of the trend charts.",
)
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    callback=_time_zone,
    help="Time zone of the periods and dates (e.g. Europe/Berlin).",
)
@click.option("--title", help="Title at the top of the page.")
def report_command(directory: Path, output: Path, period: str, tz: str, title: str | None) -> None:
    """Write one self-contained HTML report (opens offline) of the dataset in DIRECTORY."""
    handle_errors(_write)(directory, output, period, tz, title)


def _write(directory: Path, output: Path, period: str, tz: str, title: str | None) -> None:
    from deliverypulse.dataset import load
    from deliverypulse.reporting import report

    written = report(load(directory), output, period=period, tz=tz, title=title)
    click.echo(str(written))


__all__ = ["report_command"]
