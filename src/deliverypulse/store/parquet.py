"""The Parquet dataset: one hive-style directory per table, one file per source.

``<root>/<table>/source=<name>/part-0.parquet`` holds every row of that source, sorted by the
table's time column. Writes are upserts by primary key: the partition is read, merged with the
new rows (new wins), sorted and written atomically, so reruns never duplicate or lose a row.

The root is a local folder (temp file, fsync, rename) or a :class:`~.location.Location` on object
storage, where each file is one whole-object PUT under its final key.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deliverypulse.errors import DataError
from deliverypulse.names import check_source_name
from deliverypulse.store.files import write_atomic
from deliverypulse.store.location import Location, resolve
from deliverypulse.store.schemas import SCHEMA_VERSION, TableSpec, spec_for

PART_NAME = "part-0.parquet"


class ParquetStore:
    """Reads and upserts the tables of one dataset root."""

    def __init__(self, root: Path | str | Location) -> None:
        self.location = resolve(root)
        self.root: Path | str = self.location.local or self.location.url
        self._guard = threading.Lock()

    def partition_parts(self, table: str, source: str) -> tuple[str, str, str]:
        """Where ``source``'s rows of ``table`` live, relative to the root; a name that is no
        folder name (``..``, ``a/b``) is refused, so nothing is ever written outside it."""
        return table, f"source={check_source_name(source)}", PART_NAME

    def partition_path(self, table: str, source: str) -> Path:
        """The partition's file in a local dataset."""
        return self.location.path(*self.partition_parts(table, source))

    def sources(self, table: str) -> list[str]:
        if self.location.local is None:
            suffix = "/" + PART_NAME
            return sorted(
                name.removesuffix(suffix).split("=", 1)[1]
                for name in self.location.files(table)
                if name.startswith("source=") and name.endswith(suffix) and name.count("/") == 1
            )
        directory = self.location.path(table)
        if not directory.is_dir():
            return []
        return sorted(
            p.name.split("=", 1)[1]
            for p in directory.iterdir()
            if p.is_dir() and p.name.startswith("source=") and (p / PART_NAME).exists()
        )

    def read(
        self, table: str, sources: list[str] | None = None, repos: list[str] | None = None
    ) -> pa.Table:
        """All rows of ``table`` (optionally only some sources, and only rows of some
        ``repos``) with the table's schema. ``repos`` is a filter pyarrow applies while it
        reads, batch by batch, so a worker of the distributed engine holds only its repos."""
        spec = spec_for(table)
        parts = [
            self._read_partition(spec, table, source, repos)
            for source in (sources if sources is not None else self.sources(table))
        ]
        parts = [p for p in parts if p is not None]
        if not parts:
            return spec.schema.empty_table()
        return pa.concat_tables(parts).unify_dictionaries().combine_chunks()

    def count(self, table: str, source: str) -> int:
        if self.location.local is None:
            return self.location.parquet_rows(*self.partition_parts(table, source))
        path = self.partition_path(table, source)
        return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else 0

    def upsert(self, table: str, source: str, rows: pa.Table) -> int:
        """Merge ``rows`` (all of ``source``) into the partition; returns rows added."""
        spec = spec_for(table)
        if rows.num_rows == 0:
            return 0
        with self._guard:
            existing = self._read_partition(spec, table, source)
            before = 0 if existing is None else existing.num_rows
            combined = (
                rows if existing is None else pa.concat_tables([existing, rows.cast(spec.schema)])
            )
            merged = _sorted(spec, _latest_per_key(spec, combined))
            self._store(table, source, merged)
            return int(merged.num_rows) - before

    def replace(self, table: str, source: str, rows: pa.Table) -> None:
        """Overwrite a partition (for derived tables such as ``deployment_changes``)."""
        spec = spec_for(table)
        with self._guard:
            merged = _sorted(spec, _latest_per_key(spec, rows.cast(spec.schema)))
            self._store(table, source, merged)

    def keep_only(
        self, table: str, source: str, keys: pa.Table, repos: set[str] | None = None
    ) -> int:
        """Drop the partition's rows that a full refresh did not read again; returns how many.

        ``keys``: the primary-key columns (without ``source``) of every row the refresh read.
        ``repos``: drop only rows of these repos (``None``: of the whole source). The partition
        is rewritten atomically, and only when a row goes.
        """
        spec = spec_for(table)
        key = [name for name in spec.key if name != "source"]
        with self._guard:
            existing = self._read_partition(spec, table, source)
            if existing is None or existing.num_rows == 0:
                return 0
            columns = key if "repo" in key else [*key, "repo"]
            ours = existing.select(columns).to_pandas(types_mapper=_as_string)
            seen = keys.select(key).to_pandas(types_mapper=_as_string).drop_duplicates()
            found = ours.merge(seen.assign(__seen=True), on=key, how="left")["__seen"]
            drop = found.isna().to_numpy(dtype=bool).copy()
            if repos is not None:
                drop &= ours["repo"].isin(sorted(repos)).to_numpy(dtype=bool)
            if not drop.any():
                return 0
            kept = existing.filter(pa.array(~drop))
            self._store(table, source, kept)
            return int(drop.sum())

    def _store(self, table: str, source: str, rows: pa.Table) -> None:
        """Write a whole partition: atomically by temp file and rename on a local disk, as one
        object PUT on object storage."""
        parts = self.partition_parts(table, source)
        if self.location.local is None:
            self.location.write_bytes(_encode(rows), *parts)
        else:
            write_atomic(self.location.path(*parts), lambda temp: _write(rows, temp))

    def _read_partition(
        self, spec: TableSpec, table: str, source: str, repos: list[str] | None = None
    ) -> pa.Table | None:
        parts = self.partition_parts(table, source)
        where = self.location.show(*parts)
        # Only some repos: a filter pyarrow applies while it reads (the engine's workers).
        filters = None if repos is None else pc.field("repo").isin(repos)
        try:
            if self.location.local is None:
                found = self.location.read_parquet(*parts, filters=filters)
            else:
                path = self.location.path(*parts)
                found = pq.read_table(path, filters=filters) if path.exists() else None
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"cannot read {where}: {error}", table=spec.name) from error
        return None if found is None else _conform(spec, found, where)


def _as_string(arrow_type: pa.DataType) -> object:
    """Key columns as pandas strings, so keys from a file and from a run compare alike."""
    return pd.StringDtype()


def _conform(spec: TableSpec, table: pa.Table, path: Path | str) -> pa.Table:
    """Bring a file written by an older schema version up to the current one.

    A file without the table's key columns is not ours (a stray export, another tool's file):
    reading it as rows of nulls would corrupt every figure, so it is an error naming it.
    """
    if table.schema.equals(spec.schema, check_metadata=False):
        return table
    missing = [name for name in spec.key if name not in table.column_names]
    if missing:
        raise DataError(
            f"{path} is not a deliverypulse {spec.name} file: it has no "
            f"{', '.join(repr(name) for name in missing)} column "
            f"(it has {', '.join(table.column_names[:8]) or 'no columns'}); move it out of the "
            "dataset folder or delete it",
            table=spec.name,
            column=missing[0],
        )
    columns = []
    for field in spec.schema:
        if field.name in table.column_names:
            try:
                columns.append(table[field.name].cast(field.type))
            except pa.ArrowInvalid as error:
                raise DataError(
                    f"{path}: column {field.name!r} cannot be read as {field.type}: {error}",
                    table=spec.name,
                    column=field.name,
                ) from error
        else:
            columns.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(columns, schema=spec.schema)


def _latest_per_key(spec: TableSpec, table: pa.Table) -> pa.Table:
    """Keep the last row for each primary key (rows later in ``table`` are newer)."""
    key = [name for name in spec.key if name != "source"]
    order = pa.array(np.arange(table.num_rows, dtype=np.int64))
    keyed = pa.table({**{name: table[name] for name in key}, "__order": order})
    last = keyed.group_by(key, use_threads=False).aggregate([("__order", "max")])
    keep = np.sort(last["__order_max"].to_numpy())
    return table.take(pa.array(keep))


def _sorted(spec: TableSpec, table: pa.Table) -> pa.Table:
    keys = [(spec.time_column, "ascending")] + [
        (name, "ascending") for name in spec.key if name not in ("source", spec.time_column)
    ]
    return table.sort_by(keys).combine_chunks()


def _stamped(table: pa.Table) -> pa.Table:
    metadata = dict(table.schema.metadata or {})
    metadata[b"deliverypulse.schema_version"] = SCHEMA_VERSION.encode()
    return table.replace_schema_metadata(metadata)


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(_stamped(table), path, compression="zstd")


def _encode(table: pa.Table) -> bytes:
    """The Parquet file's bytes, made in memory so the object is PUT whole or not at all."""
    sink = pa.BufferOutputStream()
    pq.write_table(_stamped(table), sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())
