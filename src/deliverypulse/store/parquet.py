"""The Parquet dataset: one hive-style directory per table, one file per source (or per repo
bucket of a source).

``<root>/<table>/source=<name>/part-0.parquet`` holds every row of that source, sorted by the
table's time column. Writes are upserts by primary key: the partition is read, merged with the
new rows (new wins), sorted and written atomically, so reruns never duplicate or lose a row.

A dataset made with repo buckets (:mod:`.buckets`) keeps ``part-<k>.parquet`` per bucket
instead, each sorted by repo then time (so a reader filtering by repo skips row groups); reads
concatenate a source's parts and an upsert rewrites only the parts of the repos it holds.

The root is a local folder (temp file, fsync, rename) or a :class:`~.location.Location` on object
storage, where each file is one whole-object PUT under its final key.
"""

from __future__ import annotations

import bisect
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deliverypulse.errors import DataError
from deliverypulse.names import check_source_name
from deliverypulse.store.buckets import bucket_of, part_name, read_buckets
from deliverypulse.store.files import write_atomic
from deliverypulse.store.location import Location, resolve
from deliverypulse.store.schemas import SCHEMA_VERSION, TableSpec, spec_for

#: Rows per row group of a bucketed dataset's files (sorted by repo): small enough that a
#: reader filtering by repo skips most of a file, large enough to compress well.
BUCKETED_ROW_GROUP = 65_536
PART_NAME = "part-0.parquet"


class ParquetStore:
    """Reads and upserts the tables of one dataset root."""

    def __init__(self, root: Path | str | Location, *, buckets: int | None = None) -> None:
        """``buckets``: the dataset's repo buckets (default: what it records, 1 if nothing)."""
        self.location = resolve(root)
        self.root: Path | str = self.location.local or self.location.url
        self.buckets = read_buckets(self.location) if buckets is None else buckets
        self._guard = threading.Lock()

    def partition_parts(self, table: str, source: str, bucket: int = 0) -> tuple[str, str, str]:
        """Where ``source``'s rows of ``table`` (in repo ``bucket``) live, relative to the root;
        a name that is no folder name (``..``, ``a/b``) is refused, so nothing is ever written
        outside it."""
        return table, f"source={check_source_name(source)}", part_name(bucket)

    def partition_path(self, table: str, source: str, bucket: int = 0) -> Path:
        """The partition's file in a local dataset."""
        return self.location.path(*self.partition_parts(table, source, bucket))

    def bucket_parts(self, table: str, source: str) -> list[tuple[str, str, str]]:
        """Every place ``source``'s rows of ``table`` may be: one per bucket."""
        return [self.partition_parts(table, source, k) for k in range(self.buckets)]

    def sources(self, table: str) -> list[str]:
        names = {part_name(k) for k in range(self.buckets)}
        if self.location.local is None:
            found = set()
            for name in self.location.files(table):
                folder, _, file = name.partition("/")
                if folder.startswith("source=") and file in names:
                    found.add(folder.split("=", 1)[1])
            return sorted(found)
        directory = self.location.path(table)
        if not directory.is_dir():
            return []
        return sorted(
            p.name.split("=", 1)[1]
            for p in directory.iterdir()
            if p.is_dir()
            and p.name.startswith("source=")
            and any((p / name).exists() for name in sorted(names))
        )

    def read(
        self, table: str, sources: list[str] | None = None, repos: list[str] | None = None
    ) -> pa.Table:
        """All rows of ``table`` (optionally only some sources, and only rows of some
        ``repos``) with the table's schema. ``repos`` is a filter pyarrow applies while it
        reads, batch by batch, so a worker of the distributed engine holds only its repos."""
        spec = spec_for(table)
        if repos is not None and "repo" in spec.schema.names:
            # Only the buckets and row groups that can hold them, batch by batch.
            return read_repos(self, table, repos, sources=sources)
        parts = [
            self._read_partition(spec, table, source, repos, bucket)
            for source in (sources if sources is not None else self.sources(table))
            for bucket in range(self.buckets)
        ]
        parts = [p for p in parts if p is not None]
        if not parts:
            return spec.schema.empty_table()
        # No combine_chunks: pandas reads chunked columns as they are, and copying every
        # column into one chunk cost as much as the read itself (a fresh process's first load).
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts).unify_dictionaries()

    def count(self, table: str, source: str) -> int:
        return sum(self._count(table, source, k) for k in range(self.buckets))

    def _count(self, table: str, source: str, bucket: int) -> int:
        if self.location.local is None:
            return self.location.parquet_rows(*self.partition_parts(table, source, bucket))
        path = self.partition_path(table, source, bucket)
        return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else 0

    def upsert(self, table: str, source: str, rows: pa.Table, bucket: int | None = None) -> int:
        """Merge ``rows`` (all of ``source``) into the partition; returns rows added.

        ``bucket``: the repo bucket all of ``rows`` belong to (the collector's, from the repo
        it read them for); without it each row goes to the bucket of its ``repo`` column.
        """
        spec = spec_for(table)
        if rows.num_rows == 0:
            return 0
        added = 0
        for k, part in self._by_bucket(rows, bucket):
            with self._guard:
                existing = self._read_partition(spec, table, source, bucket=k)
                before = 0 if existing is None else existing.num_rows
                combined = (
                    part
                    if existing is None
                    else pa.concat_tables([existing, part.cast(spec.schema)])
                )
                merged = self._sorted(spec, _latest_per_key(spec, combined))
                self._store(table, source, merged, k)
                added += int(merged.num_rows) - before
        return added

    def replace(self, table: str, source: str, rows: pa.Table) -> None:
        """Overwrite a partition (for derived tables such as ``deployment_changes``)."""
        spec = spec_for(table)
        placed = dict(self._by_bucket(rows.cast(spec.schema), None))
        with self._guard:
            for k in range(self.buckets):
                if k in placed or k == 0:
                    part = placed.get(k, spec.schema.empty_table())
                    self._store(table, source, self._sorted(spec, _latest_per_key(spec, part)), k)
                else:
                    self._drop(table, source, k)

    def _by_bucket(self, rows: pa.Table, bucket: int | None) -> list[tuple[int, pa.Table]]:
        """``rows`` split by repo bucket, in bucket order."""
        if self.buckets == 1:
            return [(0, rows)]
        if bucket is not None:
            return [(bucket, rows)]
        if "repo" not in rows.column_names:
            return [(0, rows)]
        repos = rows["repo"].to_pylist()
        lookup = {repo: bucket_of(repo or "", self.buckets) for repo in set(repos)}
        where = np.fromiter((lookup[repo] for repo in repos), dtype=np.int64, count=len(repos))
        return [
            (int(k), rows.filter(pa.array(where == k)))
            for k in np.unique(where)  # only the buckets that get rows are rewritten
        ]

    def _sorted(self, spec: TableSpec, table: pa.Table) -> pa.Table:
        """By time (one bucket: the original order), or by repo then time in a bucket."""
        if self.buckets == 1 or "repo" not in table.column_names:
            return _sorted(spec, table)
        keys = [("repo", "ascending"), (spec.time_column, "ascending")] + [
            (name, "ascending")
            for name in spec.key
            if name not in ("source", "repo", spec.time_column)
        ]
        return table.sort_by(keys).combine_chunks()

    def _drop(self, table: str, source: str, bucket: int) -> None:
        parts = self.partition_parts(table, source, bucket)
        if self.location.local is None:
            self.location.delete(*parts)
        else:
            self.location.path(*parts).unlink(missing_ok=True)

    def keep_only(
        self,
        table: str,
        source: str,
        keys: pa.Table,
        repos: set[str] | None = None,
        bucket: int | None = None,
    ) -> int:
        """Drop the partition's rows that a full refresh did not read again; returns how many.

        ``keys``: the primary-key columns (without ``source``) of every row the refresh read.
        ``repos``: drop only rows of these repos (``None``: of the whole source). ``bucket``:
        look only at that repo bucket's part (a collect worker's own). Each part is rewritten
        atomically, and only when a row goes.
        """
        chosen = range(self.buckets) if bucket is None else [bucket]
        return sum(self._keep_only(table, source, keys, repos, k) for k in chosen)

    def _keep_only(
        self, table: str, source: str, keys: pa.Table, repos: set[str] | None, bucket: int
    ) -> int:
        spec = spec_for(table)
        key = [name for name in spec.key if name != "source"]
        with self._guard:
            existing = self._read_partition(spec, table, source, bucket=bucket)
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
            self._store(table, source, kept, bucket)
            return int(drop.sum())

    def _store(self, table: str, source: str, rows: pa.Table, bucket: int = 0) -> None:
        """Write a whole partition: atomically by temp file and rename on a local disk, as one
        object PUT on object storage."""
        parts = self.partition_parts(table, source, bucket)
        # Sorted by repo in a bucket, small row groups let a reader filtering by repo skip
        # the groups of other repos by their statistics (the engine's workers).
        groups = BUCKETED_ROW_GROUP if self.buckets > 1 else None
        if self.location.local is None:
            self.location.write_bytes(_encode(rows, groups), *parts)
        else:
            write_atomic(self.location.path(*parts), lambda temp: _write(rows, temp, groups))

    def _read_partition(
        self,
        spec: TableSpec,
        table: str,
        source: str,
        repos: list[str] | None = None,
        bucket: int = 0,
    ) -> pa.Table | None:
        parts = self.partition_parts(table, source, bucket)
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


def _write(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    pq.write_table(_stamped(table), path, compression="zstd", row_group_size=row_group_size)


def _encode(table: pa.Table, row_group_size: int | None = None) -> bytes:
    """The Parquet file's bytes, made in memory so the object is PUT whole or not at all."""
    sink = pa.BufferOutputStream()
    pq.write_table(_stamped(table), sink, compression="zstd", row_group_size=row_group_size)
    return bytes(sink.getvalue().to_pybytes())


#: Rows decoded at a time by :func:`read_repos`: the reader's scratch grows with it (decoding
#: the 10,000-repo bench's plain commits file for one repo peaked 0.24 GB at 16,384 rows, 0.31
#: GB at 65,536, in about the same time).
READ_BATCH_ROWS = 16_384


def read_repos(
    store: ParquetStore,
    table: str,
    repos: list[str],
    batch_rows: int = READ_BATCH_ROWS,
    sources: list[str] | None = None,
) -> pa.Table:
    """The rows of ``repos`` (as the dataset spells them) in ``table``, holding little else
    while reading: only the part files of those repos' buckets are opened, a row group whose
    ``repo`` statistics hold none of them is skipped, and the rest is decoded ``batch_rows``
    at a time and filtered batch by batch (``ParquetStore.read``'s filter decodes a file's
    row groups ahead, several times its result). What a distributed engine's worker reads."""
    spec = spec_for(table)
    wanted = sorted(set(repos))
    keep = pa.array(wanted, pa.string())
    buckets = sorted({bucket_of(repo, store.buckets) for repo in wanted})
    found = []
    for source in store.sources(table) if sources is None else sources:
        for bucket in buckets:
            parts = store.partition_parts(table, source, bucket)
            where = store.location.show(*parts)
            try:
                rows = _read_repos_of(store.location, parts, wanted, keep, batch_rows)
            except (pa.ArrowException, OSError) as error:
                raise DataError(f"cannot read {where}: {error}", table=spec.name) from error
            if rows is not None:
                found.append(_conform(spec, rows, where))
    if not found:
        return spec.schema.empty_table()
    return found[0] if len(found) == 1 else pa.concat_tables(found)


def _read_repos_of(
    location: Location,
    parts: tuple[str, str, str],
    wanted: list[str],
    keep: pa.Array,
    batch_rows: int,
) -> pa.Table | None:
    """One part file's rows of ``wanted`` (sorted), or ``None`` when there is no such file."""
    try:
        if location.local is not None:
            handle = pa.OSFile(str(location.path(*parts)))
        else:
            handle = location.filesystem.open_input_file(location.key(*parts))
    except FileNotFoundError:
        return None
    with handle:
        file = pq.ParquetFile(handle)
        groups = [
            i
            for i in range(file.metadata.num_row_groups)
            if _may_hold(file.metadata.row_group(i), wanted)
        ]
        batches = [
            batch.filter(pc.is_in(batch.column("repo"), value_set=keep))
            for batch in file.iter_batches(batch_size=batch_rows, row_groups=groups)
        ]
        return pa.Table.from_batches([b for b in batches if b.num_rows], schema=file.schema_arrow)


def _may_hold(group: pq.RowGroupMetaData, wanted: list[str]) -> bool:
    """Whether a row group may hold a row of ``wanted`` (sorted), by its ``repo`` min and max;
    a group without statistics may hold anything."""
    for i in range(group.num_columns):
        column = group.column(i)
        if column.path_in_schema != "repo":
            continue
        stats = column.statistics
        if stats is None or not stats.has_min_max:
            return True
        low, high = stats.min, stats.max
        if isinstance(low, bytes) or isinstance(high, bytes):
            return True
        first = bisect.bisect_left(wanted, low)
        return first < len(wanted) and wanted[first] <= high
    return True
