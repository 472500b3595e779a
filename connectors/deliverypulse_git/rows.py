"""A stream's rows as plain columns, compared with an earlier run's before any frame is built.

An incremental run derives every row again in memory; comparing plain values (ints, strings,
lists, None) per key is exact and cheap, and only the rows that differ become a DataFrame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Table:
    """Rows as columns of equal length; ``key`` names the column that identifies a row."""

    key: str
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.columns[self.key])

    @classmethod
    def of(cls, key: str, names: Sequence[str], rows: Sequence[dict[str, Any]]) -> Table:
        """Columns ``names`` from a list of row dicts."""
        return cls(key, {name: [row[name] for row in rows] for name in names})

    def where(self, keep: Sequence[bool]) -> Table:
        """The rows whose flag in ``keep`` is true."""
        if all(keep):
            return self
        return Table(
            self.key,
            {
                name: [value for value, kept in zip(values, keep, strict=True) if kept]
                for name, values in self.columns.items()
            },
        )

    def changed_since(self, before: Table) -> Table:
        """The rows that ``before`` lacks or holds with other values (same columns, in the
        same order). Rows only ``before`` has are not returned: stored rows are never
        deleted by a collect (a full refresh drops them)."""
        if list(before.columns) != list(self.columns):
            raise ValueError("tables with other columns cannot be compared")
        old = dict(
            zip(before.columns[before.key], zip(*before.columns.values(), strict=True), strict=True)
        )
        rows = zip(*self.columns.values(), strict=True)
        keys = self.columns[self.key]
        return self.where([old.get(key) != row for key, row in zip(keys, rows, strict=True)])
