"""The connector protocol and registry: what a plugin declares, and how the core finds it.

A connector is a class registered under the entry-point group ``deliverypulse.connectors``.
It declares its streams and config keys and yields :class:`Page` objects; the core owns state,
retries policy, writing, progress and error reporting. See ``examples/csv_connector`` for a
third-party one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import pyarrow as pa

from deliverypulse.errors import UnknownConnectorError
from deliverypulse.store.coerce import Records, to_frame

if TYPE_CHECKING:
    from deliverypulse.config import SourceConfig

ENTRY_POINT_GROUP = "deliverypulse.connectors"


@dataclass(frozen=True)
class Option:
    """A config key a connector accepts: its type(s), default and one line of help."""

    kind: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    help: str = ""

    def describe(self) -> str:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


@dataclass
class Page:
    """Records read from one page of a provider, and the cursor that is safe once they are stored.

    ``cursor=None`` means "no checkpoint here". ``table`` defaults to the stream being read; a
    connector may also emit rows for another table (say, the commits a pull request query
    returned alongside the pull requests).
    """

    records: Records
    cursor: str | None = None
    table: str | None = None


def merge_pages(pages: Iterable[Page], min_rows: int) -> Iterator[Page]:
    """Merge consecutive pages of one table until they hold ``min_rows`` rows.

    The core's per-page cost (schema coercion) hardly depends on a page's size, so the collect
    driver merges small API pages before coercing them. A merged page carries the last cursor
    of its pages. If reading fails, what was merged is still handed over first, so an error
    loses nothing that was already read.
    """
    pending: list[Records] = []
    rows = 0
    cursor: str | None = None
    table: str | None = None

    def merged() -> Page:
        records: Records
        if all(isinstance(part, list) for part in pending):
            records = [row for part in pending for row in part]
        else:
            records = pd.concat([to_frame(part) for part in pending], ignore_index=True)
        return Page(records, cursor, table)

    try:
        for page in pages:
            if pending and page.table != table:
                yield merged()
                pending, rows, cursor = [], 0, None
            records = page.records
            if not isinstance(records, (list, pd.DataFrame, pa.Table)):
                records = list(records)
            pending.append(records)
            rows += len(records)
            cursor, table = page.cursor or cursor, page.table
            if rows >= min_rows:
                yield merged()
                pending, rows, cursor = [], 0, None
    except Exception:
        if pending or cursor:
            yield merged()
        raise
    if pending or cursor:
        yield merged()


class Connector(ABC):
    """Base class of every connector. Subclasses say what differs; the core does the rest."""

    #: The entry-point name, used as ``type = "..."`` in the config.
    type_name: ClassVar[str] = ""
    #: Streams (tables) this connector can produce.
    streams: ClassVar[tuple[str, ...]] = ()
    #: Config keys beyond the common ones (name, type, token_env, since, streams, production).
    options: ClassVar[Mapping[str, Option]] = {}
    #: How many repos the core may collect at once for one source.
    concurrency: ClassVar[int] = 1

    def __init__(self, source: SourceConfig) -> None:
        self.source = source

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
        """Check the source's options beyond their types; raise ``ConfigError``."""

    @abstractmethod
    def repos(self) -> Iterable[str]:
        """The repos (``owner/name`` or project paths) this source covers."""

    @abstractmethod
    def read(self, stream: str, repo: str, cursor: str | None) -> Iterator[Page]:
        """Yield pages of ``stream`` for ``repo``, resuming after ``cursor`` when given."""

    def close(self) -> None:
        """Release clients and connections."""


_registered: dict[str, type[Connector]] = {}


def register_connector(connector: type[Connector]) -> type[Connector]:
    """Make a connector class available in this process without packaging it.

    Meant for notebooks and tests; a connector for others to install should register itself
    through the ``deliverypulse.connectors`` entry-point group instead. Usable as a decorator.
    """
    if not connector.type_name:
        raise UnknownConnectorError(f"{connector.__name__} has no type_name")
    _registered[connector.type_name] = connector
    return connector


def available_connectors() -> dict[str, EntryPoint]:
    """Installed connectors by type name, first-party and third-party alike."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for name, connector in _registered.items():
        value = f"{connector.__module__}:{connector.__qualname__}"
        found[name] = EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
    return found


def load_connector(type_name: str) -> type[Connector]:
    """The connector class registered as ``type_name``, or an error listing the installed ones."""
    if type_name in _registered:
        return _registered[type_name]
    installed = available_connectors()
    if type_name not in installed:
        names = ", ".join(sorted(installed)) or "none"
        raise UnknownConnectorError(
            f"unknown connector type {type_name!r}; installed connectors: {names}", key="type"
        )
    try:
        loaded = installed[type_name].load()
    except Exception as error:  # a broken plugin must not take the CLI down
        raise UnknownConnectorError(
            f"connector {type_name!r} ({installed[type_name].value}) failed to load: "
            f"{type(error).__name__}: {error}",
            key="type",
        ) from error
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise UnknownConnectorError(
            f"entry point {type_name!r} ({installed[type_name].value}) is not a "
            "deliverypulse.Connector subclass",
            key="type",
        )
    return loaded
