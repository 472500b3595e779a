"""The Dataset: every table as a tidy pandas DataFrame, from Parquet or from hand-made frames."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from deliverypulse.errors import DeliveryPulseError
from deliverypulse.store.catalogue import (
    Service,
    read_catalogue,
    services_frame,
    services_from_frame,
    write_catalogue,
)
from deliverypulse.store.coerce import Records, coerce_frame, from_arrow, to_arrow
from deliverypulse.store.parquet import ParquetStore
from deliverypulse.store.schemas import TABLES, spec_for


def empty_frame(table: str) -> pd.DataFrame:
    """A zero-row frame with ``table``'s columns and dtypes."""
    return from_arrow(spec_for(table).schema.empty_table())


@dataclass
class Dataset:
    """The tables of one dataset. Columns and dtypes are fixed by ``deliverypulse.store.schemas``.

    Timestamps are UTC ``datetime64[us, UTC]``; text, integer, float and boolean columns use
    pandas' nullable dtypes; list columns (``labels``, ``parents``...) hold Python lists.
    Columns you add (``team``, say) travel along and can be used to group metrics.

    ``services`` is the service catalogue the data was collected with (the config's
    ``[[services]]``, stored as ``_deliverypulse/services.json``): one row per service with
    ``name``, ``repos``, ``configuration_items``, ``incident_services`` and ``team``.
    """

    deployments: pd.DataFrame = field(default_factory=partial(empty_frame, "deployments"))
    changes: pd.DataFrame = field(default_factory=partial(empty_frame, "changes"))
    commits: pd.DataFrame = field(default_factory=partial(empty_frame, "commits"))
    test_runs: pd.DataFrame = field(default_factory=partial(empty_frame, "test_runs"))
    incidents: pd.DataFrame = field(default_factory=partial(empty_frame, "incidents"))
    deployment_changes: pd.DataFrame = field(
        default_factory=partial(empty_frame, "deployment_changes")
    )
    change_requests: pd.DataFrame = field(default_factory=partial(empty_frame, "change_requests"))
    deployment_change_requests: pd.DataFrame = field(
        default_factory=partial(empty_frame, "deployment_change_requests")
    )
    services: pd.DataFrame = field(default_factory=lambda: services_frame(()))
    path: Path | None = None

    @classmethod
    def from_frames(
        cls,
        *,
        deployments: Records | None = None,
        changes: Records | None = None,
        commits: Records | None = None,
        test_runs: Records | None = None,
        incidents: Records | None = None,
        deployment_changes: Records | None = None,
        change_requests: Records | None = None,
        deployment_change_requests: Records | None = None,
        services: Iterable[Service] | pd.DataFrame | None = None,
        source: str = "manual",
    ) -> Dataset:
        """Build a Dataset from DataFrames or lists of dicts.

        Each table is coerced to its schema: missing optional columns are filled with nulls,
        ISO strings become UTC timestamps, a missing ``source`` becomes ``source``. A value that
        does not fit raises :class:`DataError` naming the table, column and row. ``services``
        is the catalogue: :class:`~deliverypulse.store.catalogue.Service` values or a frame
        like ``Dataset.services``.
        """
        given = {
            "deployments": deployments,
            "changes": changes,
            "commits": commits,
            "test_runs": test_runs,
            "incidents": incidents,
            "deployment_changes": deployment_changes,
            "change_requests": change_requests,
            "deployment_change_requests": deployment_change_requests,
        }
        frames = {
            name: coerce_frame(spec_for(name), data, source=source, keep_extra=True)
            for name, data in given.items()
            if data is not None
        }
        if services is not None:
            values = (
                services_from_frame(services)
                if isinstance(services, pd.DataFrame)
                else tuple(services)
            )
            frames["services"] = services_frame(values)
        return cls(**frames)  # type: ignore[arg-type]

    @property
    def catalogue(self) -> tuple[Service, ...]:
        """``services`` as values (what the linking stage reads)."""
        return services_from_frame(self.services)

    def table(self, name: str) -> pd.DataFrame:
        spec_for(name)
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def save(self, path: Path | str) -> None:
        """Upsert every table into the Parquet dataset at ``path`` (extra columns are dropped)."""
        store = ParquetStore(path)
        for name in TABLES:
            frame = self.table(name)
            spec = spec_for(name)
            for source, part in frame.groupby("source", sort=True, observed=True):
                store.upsert(name, str(source), to_arrow(spec, part.reset_index(drop=True)))
        if len(self.services):
            write_catalogue(Path(path), self.catalogue)

    def summary(self) -> dict[str, int]:
        return {name: len(self.table(name)) for name in TABLES}

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={count}" for name, count in self.summary().items())
        where = f" at {self.path}" if self.path else ""
        return f"<Dataset{where}: {counts}>"


def load(path: Path | str) -> Dataset:
    """Load the dataset at ``path`` (the ``[output] path`` of the config)."""
    root = Path(path)
    if not root.is_dir():
        raise DeliveryPulseError(
            f"no dataset at {root}: run 'deliverypulse collect' (or 'deliverypulse demo') first"
        )
    store = ParquetStore(root)
    tables = {name: from_arrow(store.read(name)) for name in TABLES}
    return Dataset(**tables, services=services_frame(read_catalogue(root)), path=root)


__all__ = ["Dataset", "empty_frame", "load"]
