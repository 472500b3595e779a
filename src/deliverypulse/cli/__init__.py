"""The ``deliverypulse`` command line: a thin shell over the Python API, one module per stage.

    collect / status / connectors   -> collect.py   (connectors -> store)
    metrics                         -> metrics.py   (link -> metrics)
    analyze                         -> analyze.py   (batch size and approval gates)
    report                          -> report.py    (the HTML page)
    demo                            -> demo.py      (all of it, offline, on a bundled sample)

Every command fails the same way (``_errors.py``): one line on stderr, exit 1 when a source or
the run failed, 2 on bad usage or configuration, never a traceback unless ``--debug``.
"""

from __future__ import annotations

import logging

import click

from deliverypulse._version import __version__
from deliverypulse.cli._errors import fail, handle_errors
from deliverypulse.cli.analyze import analyze_command
from deliverypulse.cli.collect import collect_command, connectors_command, status_command
from deliverypulse.cli.demo import demo_command
from deliverypulse.cli.metrics import metrics_command
from deliverypulse.cli.report import report_command
from deliverypulse.memory import reuse_freed_memory
from deliverypulse.redaction import install_log_redaction


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deliverypulse")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
@click.option("--debug", is_flag=True, help="Log everything and show tracebacks.")
def main(verbose: bool, debug: bool) -> None:
    """Measure software delivery: DORA metrics from GitHub, GitLab and git, into Parquet."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("deliverypulse").setLevel(level)
    install_log_redaction()


for command in (
    collect_command,
    status_command,
    connectors_command,
    metrics_command,
    analyze_command,
    report_command,
    demo_command,
):
    main.add_command(command)


def run() -> None:
    """The ``deliverypulse`` program: the CLI in a process of its own, which keeps freed
    memory for reuse (:mod:`deliverypulse.memory`; tests call :func:`main` in-process and
    leave the allocator alone)."""
    reuse_freed_memory()
    main()


__all__ = ["fail", "handle_errors", "main", "run"]
