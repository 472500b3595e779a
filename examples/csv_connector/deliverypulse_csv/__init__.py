"""A deliverypulse connector for CSV exports (change requests, incidents) of other tools.

Everything a connector needs comes from deliverypulse's public API: ``Connector``, ``Option``,
``Page``, ``SourceConfig``, ``Stream``, ``StreamRun`` and ``TextCursor``. The core validates
the config keys declared here, keeps each stream's cursor, coerces the rows to the table's
schema and writes them. CSV as read here: https://docs.python.org/3/library/csv.html (through
``pandas.read_csv``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import pandas as pd

import deliverypulse as dp

LIST_COLUMNS = ("approvers", "labels")


@dataclass(frozen=True)
class Settings:
    """The source's options, typed, read once (the core filled in the declared defaults)."""

    repo: str
    files: dict[str, Path]  # stream name -> its CSV file
    columns: dict[str, str]  # their column name -> ours
    delimiter: str

    @classmethod
    def from_source(cls, source: dp.SourceConfig) -> Settings:
        files = {
            stream: source.path(f"{stream}_file")
            for stream in ("deployments", "incidents")
            if source.optional(f"{stream}_file", str)
        }
        columns = {str(k): str(v) for k, v in source.value("columns", dict).items()}
        return cls(source.value("repo", str), files, columns, source.value("delimiter", str))


def read_file(connector: CsvConnector, run: dp.StreamRun) -> Iterator[dp.Page]:
    """The whole file as one page, unless its content is what the cursor saw last time."""
    path = connector.settings.files.get(run.stream.name)
    if path is None:
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest == run.cursor.value:
        return
    settings = connector.settings
    frame = pd.read_csv(path, sep=settings.delimiter, dtype=str, keep_default_na=False)
    frame = frame.rename(columns=settings.columns).replace("", None)
    for column in LIST_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].map(
                lambda text: [part.strip() for part in text.split(";")] if text else None
            )
    yield dp.Page(records=frame, cursor=dp.TextCursor(digest))


class CsvConnector(dp.Connector):
    """Reads ``deployments_file`` and ``incidents_file``; each file is one stream."""

    type_name = "csv"
    streams = (
        dp.Stream("deployments", read_file, cursor=dp.TextCursor, reads="deployments_file"),
        dp.Stream("incidents", read_file, cursor=dp.TextCursor, reads="incidents_file"),
    )
    options: ClassVar[dict[str, dp.Option]] = {
        "repo": dp.Option(
            str, required=True, help="repo the rows belong to (unless a column says)"
        ),
        "deployments_file": dp.Option(str, help="CSV of deployments / change requests"),
        "incidents_file": dp.Option(str, help="CSV of incidents"),
        "columns": dp.Option(dict, {}, help="rename columns: their name -> ours"),
        "delimiter": dp.Option(str, ",", help="field separator"),
    }

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_source(self.source)

    @classmethod
    def validate(cls, source: dp.SourceConfig) -> None:
        settings = Settings.from_source(source)
        if not settings.files:
            raise source.error("give deployments_file, incidents_file or both", "deployments_file")
        for stream, path in settings.files.items():
            if not path.is_file():
                raise source.error(f"file {path} does not exist", f"{stream}_file")

    def repos(self) -> Iterable[str]:
        return [self.settings.repo]
