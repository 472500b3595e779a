"""``deliverypulse demo``: the whole pipeline, offline, on a bundled sample organisation.

It prints what a first real run would: one line per source and stream, the five headline
figures with the spread of the repos' own DORA ratings (the same strings as the report's
tiles), the analysis's headline, where the report is, and what to try next. The demo's modules
(fake servers, the sample, graphql-core) load only when this command runs.
"""

from __future__ import annotations

import shlex
import sys
import textwrap
from pathlib import Path

import click
import pandas as pd

from deliverypulse.cli._errors import handle_errors
from deliverypulse.progress import NullProgress, Progress, TerminalProgress

DEFAULT_DIRECTORY = Path("deliverypulse-demo")


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIRECTORY,
    show_default=True,
    help="Folder for the demo's dataset and config (rerunning into it is safe).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the HTML report (default: OUT/report.html).",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.05, max=4.0),
    default=1.0,
    show_default=True,
    help="Size of the sample: 1 is six months of six repos; smaller is quicker.",
)
@handle_errors
def demo_command(out: Path, output: Path | None, scale: float) -> None:
    """Collect, measure and report on a bundled sample organisation, offline.

    Local fake GitHub and GitLab servers (on 127.0.0.1, for this run only) serve six repos to
    the real connectors; then link, metrics, analysis and the HTML report run as on your data.
    """
    from deliverypulse.demo import run_demo

    terminal = sys.stderr.isatty()
    progress: Progress = _ThenReport() if terminal else NullProgress()
    try:
        result = run_demo(out, report_path=output, scale=scale, progress=progress)
    finally:
        if terminal:
            click.echo("\r\033[K", err=True, nl=False)
    if not terminal:
        for line in result.collect.lines():
            click.echo(line)
        click.echo()
    for line in headline_lines(result.summary, result.by_repo):
        click.echo(line)
    if result.analysis.headline:
        click.echo()
        click.echo(textwrap.fill(result.analysis.headline, 96))
    directory = shlex.quote(str(out))
    click.echo()
    click.echo(f"Report: {result.report}")
    click.echo()
    click.echo("Next, try:")
    for command in (
        f"deliverypulse metrics {directory} --by repo",
        f"deliverypulse analyze {directory}",
        f"deliverypulse status {directory}",
    ):
        click.echo(f"  {command}")


class _ThenReport(TerminalProgress):
    """The collect progress line, then a line saying what the remaining seconds are for."""

    def close(self) -> None:
        super().close()
        self.out.write("linking, measuring, analysing and writing the report...")
        self.out.flush()


def headline_lines(summary: pd.DataFrame, by_repo: pd.DataFrame | None = None) -> list[str]:
    """The report's five headline tiles as aligned text lines: label, pooled figure, and the
    spread of the repos' own DORA ratings ("1 of 6 repos elite, 4 high, 1 medium"), never one
    rating for the pooled organisation.

    The figures and spreads are the tiles' own strings, so what the terminal says is what the
    page says.
    """
    from deliverypulse.reporting.content import tiles

    shown = tiles(summary, {"repo": by_repo} if by_repo is not None else None)
    width = max(len(tile.label) for tile in shown)
    figure_width = max(len(tile.text) for tile in shown)
    lines = []
    for tile in shown:
        if tile.spreads:
            rating = "; ".join(spread.text for spread in tile.spreads)
        else:
            rating = "no rating" if tile.rated else "no DORA cluster"
        lines.append(f"{tile.label:<{width}}  {tile.text:<{figure_width}}  {rating}")
    return lines


__all__ = ["demo_command", "headline_lines"]
