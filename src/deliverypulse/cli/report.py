"""``deliverypulse report``: write the HTML report of a dataset.

The report's imports (matplotlib, jinja2, the analysis) load only when this command runs, not on
every ``collect`` from a cron job.
"""

from __future__ import annotations

from pathlib import Path

import click

from deliverypulse.cli._errors import handle_errors, usage_errors
from deliverypulse.cli._options import (
    dataset_directory,
    period_option,
    show_names_option,
    since_option,
    tz_option,
    until_option,
)
from deliverypulse.errors import OptionError


@click.command("report")
@dataset_directory
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the HTML file.",
)
@period_option("Period of the trend charts.")
@tz_option
@click.option("--title", help="Title at the top of the page.")
@since_option
@until_option
@show_names_option
def report_command(
    directory: Path | str,
    output: Path,
    period: str,
    tz: str,
    title: str | None,
    since: str | None,
    until: str | None,
    show_names: bool,
) -> None:
    """Write one self-contained HTML report (opens offline) of the dataset in DIRECTORY.

    People appear as pseudonyms unless --show-names is given."""
    handle_errors(_write)(directory, output, period, tz, title, since, until, show_names)


def _write(
    directory: Path | str,
    output: Path,
    period: str,
    tz: str,
    title: str | None,
    since: str | None,
    until: str | None,
    show_names: bool = False,
) -> None:
    from deliverypulse.dataset import load
    from deliverypulse.dora.options import MetricOptions
    from deliverypulse.reporting import report

    with usage_errors(OptionError, ValueError):
        options = MetricOptions.build(since=since, until=until)
    written = report(
        load(directory),
        output,
        period=period,
        tz=tz,
        title=title,
        options=options,
        show_names=show_names,
    )
    click.echo(str(written))


__all__ = ["report_command"]
