"""A deliverypulse connector for CSV exports (change requests, incidents) of other tools.

Everything a connector needs comes from deliverypulse's public API: ``Connector``, ``Option``,
``Page`` and ``SourceConfig``. The core validates the config keys declared here, keeps the
cursor, coerces the rows to the table schema and writes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import ClassVar

import pandas as pd

import deliverypulse as dp

LIST_COLUMNS = ("approvers", "labels")


class CsvConnector(dp.Connector):
    """Reads ``deployments_file`` and ``incidents_file``; each file is one stream."""

    type_name = "csv"
    streams = ("deployments", "incidents")
    options: ClassVar[dict[str, dp.Option]] = {
        "repo": dp.Option(
            str, required=True, help="repo the rows belong to (unless a column says)"
        ),
        "deployments_file": dp.Option(str, help="CSV of deployments / change requests"),
        "incidents_file": dp.Option(str, help="CSV of incidents"),
        "columns": dp.Option(dict, {}, help="rename columns: their name -> ours"),
        "delimiter": dp.Option(str, ",", help="field separator"),
    }

    @classmethod
    def validate(cls, source: dp.SourceConfig) -> None:
        if not source.get("deployments_file") and not source.get("incidents_file"):
            raise source.error("give deployments_file, incidents_file or both", "deployments_file")
        for key in ("deployments_file", "incidents_file"):
            if source.get(key) and not source.path(key).is_file():
                raise source.error(f"file {source.path(key)} does not exist", key)

    def repos(self) -> Iterable[str]:
        return [self.source.get("repo")]

    def read(self, stream: str, repo: str, cursor: str | None) -> Iterator[dp.Page]:
        key = f"{stream}_file"
        if not self.source.get(key):
            return
        path = self.source.path(key)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest == cursor:
            return
        frame = pd.read_csv(
            path, sep=self.source.get("delimiter"), dtype=str, keep_default_na=False
        )
        frame = frame.rename(columns=dict(self.source.get("columns"))).replace("", None)
        for column in LIST_COLUMNS:
            if column in frame.columns:
                frame[column] = frame[column].map(
                    lambda text: [part.strip() for part in text.split(";")] if text else None
                )
        yield dp.Page(records=frame, cursor=digest)
