"""Click parameters several commands share, declared once so they read and check alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from deliverypulse.dora.periods import check_tz
from deliverypulse.errors import OptionError
from deliverypulse.store.location import is_url

F = TypeVar("F", bound=Callable[..., Any])

#: Where ``collect`` writes and the reading commands look when given no folder.
DATASET_DIRECTORY = "deliverypulse-data"


def _time_zone(_context: click.Context, _parameter: click.Parameter, value: str) -> str:
    """Reject an unknown time zone as a usage error (exit 2) before any work is done."""
    try:
        return check_tz(value)
    except OptionError as error:
        raise click.BadParameter(str(error)) from None


class DatasetParam(click.ParamType[Path | str]):
    """A dataset: a local folder (a ``Path``) or a URL such as ``s3://bucket/prefix`` (kept as
    the string it is: ``Path`` would fold its ``//``)."""

    name = "directory"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path | str:
        if isinstance(value, Path):
            return value
        text = str(value)
        return text.rstrip("/") if is_url(text) else Path(text)


DATASET = DatasetParam()

#: The dataset a reading command works on (``metrics``, ``analyze``, ``report``): a folder or
#: a URL (``s3://bucket/prefix``, other fsspec URLs).
dataset_directory = click.argument(
    "directory",
    required=False,
    default=DATASET_DIRECTORY,
    type=DATASET,
)


def period_option(help: str) -> Callable[[F], F]:
    """``--period week|month``."""
    return click.option(
        "--period",
        type=click.Choice(["week", "month"]),
        default="month",
        show_default=True,
        help=help,
    )


tz_option = click.option(
    "--tz",
    default="UTC",
    show_default=True,
    callback=_time_zone,
    help="Time zone of the periods and dates (e.g. Europe/Berlin).",
)


def format_option(choices: list[str], help: str | None = None) -> Callable[[F], F]:
    """``--format`` among ``choices`` (the first is the default)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help=help,
    )


#: ``--since`` / ``--until``: the window of the metrics, the analysis and the report.
since_option = click.option(
    "--since",
    help="Start of the window (date, UTC): nothing before it is linked or counted "
    "(default: where each repo's collection started).",
)
until_option = click.option(
    "--until",
    help="End of the window (date, UTC, excluded): only deployments before it count, "
    "e.g. --since 2024-03-01 --until 2024-04-01 is March.",
)


show_names_option = click.option(
    "--show-names",
    "show_names",
    is_flag=True,
    help="Show people's names (creator, author...) instead of pseudonyms: for a team's own "
    "retrospective. Pseudonyms use $DELIVERYPULSE_PSEUDONYM_KEY, else the dataset's own key.",
)
