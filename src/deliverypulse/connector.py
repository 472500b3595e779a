"""The connector protocol and registry: what a plugin declares, and how the core finds it.

A connector is a class registered under the entry-point group ``deliverypulse.connectors``.
It declares its streams (:class:`~deliverypulse.streams.Stream` values) and config keys
(:class:`~deliverypulse.sources.Option` values) and its readers yield :class:`Page` objects;
the core owns cursors, state, retries policy, classification, writing, progress and error
reporting, and injects a :class:`~deliverypulse.streams.Runtime`. See
``examples/csv_connector`` for a third-party one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa

from deliverypulse.errors import UnknownConnectorError
from deliverypulse.sources import Option, SourceConfig
from deliverypulse.store.coerce import Records, to_frame
from deliverypulse.streams import DEFAULT_RUNTIME, Page, Runtime, Stream, StreamRun

ENTRY_POINT_GROUP = "deliverypulse.connectors"


def merge_pages(pages: Iterable[Page], min_rows: int) -> Iterator[Page]:
    """Merge consecutive pages of one table until they hold ``min_rows`` rows.

    The core's per-page cost (schema coercion) hardly depends on a page's size, so the collect
    driver merges small API pages before coercing them. A merged page carries the last cursor
    of its pages. If reading fails, what was merged is still handed over first, so an error
    loses nothing that was already read.
    """
    pending: list[Records] = []
    rows = 0
    cursor: Any = None
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
    """Base class of every connector. Subclasses say what differs; the core does the rest.

    Declare ``streams`` as :class:`~deliverypulse.streams.Stream` values; the class then also
    offers their names as ``streams`` and the declarations as ``stream_specs``. (A connector
    that declares plain names instead implements :meth:`read` itself.)
    """

    #: The entry-point name, used as ``type = "..."`` in the config.
    type_name: ClassVar[str] = ""
    #: Streams this connector can produce: declared as ``Stream`` values (or plain names, the
    #: old style); once the class exists, always their names (``stream_specs`` keeps the
    #: declarations). Typed loosely so that both spellings type-check in subclasses.
    streams: ClassVar[tuple[Any, ...]] = ()
    #: The declared streams, in declared order (filled from ``streams`` by the class).
    stream_specs: ClassVar[tuple[Stream, ...]] = ()
    #: Config keys beyond the common ones (see ``deliverypulse.sources.COMMON_OPTIONS``).
    options: ClassVar[Mapping[str, Option]] = {}
    #: How many repos the core may collect at once for one source.
    concurrency: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: tuple[Any, ...] = tuple(cls.__dict__.get("streams", ()))
        if declared and all(isinstance(stream, Stream) for stream in declared):
            cls.stream_specs = declared
            cls.streams = tuple(stream.name for stream in declared)

    def __init__(self, source: SourceConfig, runtime: Runtime = DEFAULT_RUNTIME) -> None:
        self.source = source
        self.runtime = runtime

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
        """Check the source's options beyond their types; raise ``ConfigError``."""

    @abstractmethod
    def repos(self) -> Iterable[str]:
        """The repos (``owner/name`` or project paths) this source covers."""

    @classmethod
    def stream(cls, name: str) -> Stream:
        """The declared stream called ``name``."""
        for spec in cls.stream_specs:
            if spec.name == name:
                return spec
        raise KeyError(f"{cls.type_name} connector has no declared stream {name!r}")

    def read_stream(self, run: StreamRun) -> Iterator[Page]:
        """Yield the pages of one declared stream for one repo (the core's entry point)."""
        if self.stream_specs:
            return run.stream.read(self, run)
        return self.read(run.stream.name, run.repo, run.cursor.dump() or None)

    def read(self, stream: str, repo: str, cursor: str | None) -> Iterator[Page]:
        """Yield pages of ``stream`` for ``repo``, resuming after the ``cursor`` text.

        Declared streams need not override this: it loads the stream's cursor and runs its
        reader (handy in tests and notebooks; the core calls :meth:`read_stream`).
        """
        spec = self.stream(stream)
        run = StreamRun(spec, repo, spec.cursor.load(cursor), self.runtime, self.source.since)
        return self.read_stream(run)

    def close(self) -> None:
        """Release clients and connections."""


def legacy_stream(name: str) -> Stream:
    """A stand-in declaration for a connector that lists plain stream names."""

    def read(connector: Any, run: StreamRun) -> Iterator[Page]:
        return iter(())

    return Stream(name, read)


def stream_run(
    connector: type[Connector], name: str, repo: str, cursor: str | None, **kwargs: Any
) -> StreamRun:
    """The :class:`StreamRun` the core hands ``connector``'s stream ``name`` for ``repo``."""
    spec = connector.stream(name) if connector.stream_specs else legacy_stream(name)
    return StreamRun(spec, repo, spec.cursor.load(cursor), **kwargs)


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


__all__ = [
    "ENTRY_POINT_GROUP",
    "Connector",
    "Option",  # re-exported: declared in deliverypulse.sources
    "Page",
    "SourceConfig",  # re-exported: declared in deliverypulse.sources
    "available_connectors",
    "legacy_stream",
    "load_connector",
    "merge_pages",
    "register_connector",
    "stream_run",
]
