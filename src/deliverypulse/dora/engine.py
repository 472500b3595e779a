"""The distributed engine: :func:`prepare` mapped over repo partitions on a Dask cluster.

Every heavy step (linking, the change table, outcomes, lead-time rows) is a function of one
repo's frames, except two things that cross repos, which decide the partitions:

* an incident is charged to the last deployment of *any* repo of its service (the catalogue's
  ``repos`` of every service that names it), to its own repo's, to the deployment its
  ``caused_by`` change request covered, and counts once with the incident it duplicates
  (``correlation_id``); so those repos and incidents land in one partition;
* change requests are linked to deployments once, on the client, over the whole dataset
  (:func:`~deliverypulse.dora.prepared.with_change_request_links`); each partition gets the
  links of its own deployments.

Repos (compared without case, so every source's copy of a repo goes together) are grouped into
connected components of those ties, and the components into partitions of about
``partition_rows`` rows (deployments + changes + commits): largest first onto the lightest, or,
for a dataset with repo buckets, in runs of its files' order (bucket, then repo). Each
partition is prepared on a worker — read there from the dataset's files when the engine is
given a path (only its buckets' files and the row groups that may hold its repos), so a worker
holds one partition at a time; arrow allocates from the C heap during a task and the heap is
trimmed after it — and only its per-deployment and per-change rows come back;
:meth:`Prepared.combine` puts them together and the metrics are computed from all rows in this
process (pooled medians and rates: rows are combined, results never averaged). dask and
distributed are imported only here, and only when asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deliverypulse.dataset import Dataset, empty_frame, load
from deliverypulse.dora.options import MetricOptions
from deliverypulse.dora.prepared import Prepared, prepare, with_change_request_links
from deliverypulse.errors import DeliveryPulseError, OptionError
from deliverypulse.linking import Links
from deliverypulse.store.buckets import bucket_of, read_buckets
from deliverypulse.store.catalogue import normal
from deliverypulse.store.coerce import from_arrow
from deliverypulse.store.location import Location, resolve
from deliverypulse.store.parquet import ParquetStore, read_repos

INSTALL_HINT = "pip install 'deliverypulse[distributed]'"
#: Tables a worker reads from the dataset's files, only its partition's repos.
WORKER_TABLES = ("deployments", "changes", "commits")
#: How long to wait for a scheduler given by address.
CONNECT_TIMEOUT = "20s"
#: Rows (deployments + changes + commits) per partition by default.
PARTITION_ROWS = 500_000
#: ... and for a dataset on disk with repo buckets: on the 10,000-repo bench (3.1 million rows)
#: a worker peaked at 0.44 GB with 7 partitions, 0.34 GB with 16 and 0.29 GB with 32.
BUCKETED_PARTITION_ROWS = 150_000
#: Tables whose rows count towards a partition's size.
_WEIGHED = ("deployments", "changes", "commits")


class EngineError(DeliveryPulseError):
    """The distributed engine could not run: dask missing, or a worker kept dying."""


def require_distributed() -> Any:
    """The ``distributed`` module, or an :class:`EngineError` saying how to install it."""
    try:
        import distributed
    except ImportError as error:
        raise EngineError(
            f"the distributed engine needs dask and distributed ({error}): {INSTALL_HINT}"
        ) from None
    return distributed


@dataclass(frozen=True)
class DaskEngine:
    """How to run on a Dask cluster: ``client`` (a ``distributed.Client``), ``partitions``
    (how many; default: enough for about ``partition_rows`` rows each, and at least two per
    worker) and ``in_flight`` (partitions handed out at once; default two per worker thread, so
    a worker holds few partitions at a time).

    ``partition_rows`` defaults to :data:`PARTITION_ROWS`, or :data:`BUCKETED_PARTITION_ROWS`
    for a dataset on disk made with repo buckets: there a partition reads only its own run of
    row groups, so smaller partitions (a worker's peak follows their size) cost little more
    reading, while in one file sorted by time every partition decodes the whole file."""

    client: Any
    partitions: int | None = None
    partition_rows: int | None = None
    in_flight: int | None = None


@dataclass(frozen=True)
class Partition:
    """One partition: its repos as the dataset spells them, and its size in rows."""

    repos: tuple[str, ...]
    rows: int


def as_engine(engine: Any) -> tuple[DaskEngine, Any]:
    """``engine`` (a :class:`DaskEngine`, a ``distributed.Client``, or a scheduler address) as
    a :class:`DaskEngine`, and a client to close afterwards (one opened here) or None."""
    if isinstance(engine, DaskEngine):
        return engine, None
    if isinstance(engine, str):
        distributed = require_distributed()
        try:
            client = distributed.Client(engine, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise EngineError(f"cannot reach the Dask scheduler at {engine}: {error}") from None
        return DaskEngine(client), client
    if not hasattr(engine, "submit") or not hasattr(engine, "scheduler_info"):
        raise OptionError(
            "engine must be a distributed.Client, a DaskEngine or a scheduler address "
            f"('tcp://host:8786'), not {type(engine).__name__}"
        )
    return DaskEngine(engine), None


# --- partitions ------------------------------------------------------------------------------


def _folded(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.casefold()


def _components(
    repos: pd.Series, incidents: pd.DataFrame, services: Dataset, links: pd.DataFrame
) -> tuple[pd.Series, np.ndarray]:
    """Per repo (folded, ``repos``' order) and per incident row: the connected component of the
    ties that cross repos (see the module docstring)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    names = pd.Index(repos.drop_duplicates().tolist())
    n_incidents = len(incidents)
    size = len(names) + n_incidents
    edges: list[tuple[np.ndarray, np.ndarray]] = []

    def node(folded: Sequence[str]) -> np.ndarray:
        return np.asarray(names.get_indexer(list(folded)), dtype=np.int64)

    lookup: dict[str, set[str]] = {}
    for service in services.catalogue:
        repos_of = {repo.strip().casefold() for repo in service.repos}
        for item in (service.name, *service.incident_services, *service.configuration_items):
            lookup.setdefault(normal(item), set()).update(repos_of)
    for members in lookup.values():
        known = node(sorted(members))
        known = known[known >= 0]
        if known.size > 1:
            edges.append((known[:-1], known[1:]))
    if n_incidents:
        own = np.arange(len(names), size, dtype=np.int64)
        repo_node = node(_folded(incidents["repo"]).fillna("").tolist())
        hit = repo_node >= 0
        edges.append((own[hit], repo_node[hit]))
        named = incidents["service"].astype("string") if "service" in incidents else None
        if named is not None:
            for i, name in zip(np.flatnonzero(named.notna()), named.dropna(), strict=True):
                known = node(sorted(lookup.get(normal(name), ())))
                known = known[known >= 0]
                edges.append((np.full(known.size, own[i]), known))
        edges.extend(_duplicate_edges(incidents, own))
        edges.extend(_cause_edges(incidents, links, own, node))
    if edges:
        left = np.concatenate([a for a, _ in edges])
        right = np.concatenate([b for _, b in edges])
    else:
        left = right = np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(left.size), (left, right)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    return pd.Series(labels[: len(names)], index=names), labels[len(names) :]


def _duplicate_edges(
    incidents: pd.DataFrame, own: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Incidents whose ``correlation_id`` is another's ``incident_id`` go together."""
    if "correlation_id" not in incidents:
        return
    asked = pd.DataFrame(
        {"_i": own, "_id": incidents["correlation_id"].astype("string").str.strip().to_numpy()}
    ).dropna()
    known = pd.DataFrame({"_j": own, "_id": incidents["incident_id"].astype("string").to_numpy()})
    pairs = asked.merge(known, on="_id")
    yield pairs["_i"].to_numpy(np.int64), pairs["_j"].to_numpy(np.int64)


def _cause_edges(
    incidents: pd.DataFrame, links: pd.DataFrame, own: np.ndarray, node: Any
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """An incident whose ``caused_by`` change request covered deployments goes with their
    repos."""
    if "caused_by" not in incidents or links.empty:
        return
    rows = pd.DataFrame(
        {
            "_i": own,
            "change_request_source": incidents["source"].astype("string").to_numpy(),
            "change_request_id": incidents["caused_by"].astype("string").to_numpy(),
        }
    ).dropna()
    covered = links[["change_request_source", "change_request_id", "repo"]].astype("string")
    pairs = rows.merge(covered, on=["change_request_source", "change_request_id"])
    repo_node = node(_folded(pairs["repo"]).tolist())
    hit = repo_node >= 0
    yield pairs["_i"].to_numpy(np.int64)[hit], repo_node[hit]


def plan_partitions(
    weights: pd.Series,
    incidents: pd.DataFrame,
    services: Dataset,
    links: pd.DataFrame,
    count: int,
    buckets: int = 1,
) -> tuple[list[Partition], np.ndarray]:
    """``weights`` (rows per repo as the dataset spells it) split into at most ``count``
    partitions that keep every tie across repos inside one, balanced by rows; and per incident
    row its partition.

    One bucket: largest component first, onto the lightest partition. A dataset of ``buckets``
    repo buckets is cut in the order of its files instead (bucket, then repo, each component at
    its first repo), into runs of about equal rows: a partition then opens one or two buckets'
    files and reads a run of their row groups, not a few rows of every group of every file."""
    folded = _folded(pd.Series(weights.index, dtype="string"))
    component, incident_component = _components(folded, incidents, services, links)
    repo_component = component.reindex(folded.to_numpy()).to_numpy(np.int64)
    sizes = pd.Series(weights.to_numpy(np.int64)).groupby(repo_component).sum()
    names = np.asarray(weights.index, dtype=object)
    if buckets > 1:
        count = max(1, min(count, len(sizes)))
        assigned, loads = _cut_in_file_order(names, repo_component, sizes, count, buckets)
    else:
        assigned, loads, count = _lightest_first(sizes, count)
    where = np.array([assigned[int(c)] for c in repo_component], dtype=np.int64)
    partitions = [
        Partition(tuple(sorted(str(name) for name in names[where == p])), int(loads[p]))
        for p in range(count)
    ]
    # An incident tied to no repo of the dataset charges nothing; any partition may keep it.
    incident_part = np.array([assigned.get(int(c), 0) for c in incident_component], dtype=np.int64)
    keep = [i for i, part in enumerate(partitions) if part.repos]
    renumber = np.full(count, 0, dtype=np.int64)
    renumber[keep] = np.arange(len(keep))
    return [partitions[i] for i in keep], renumber[incident_part]


def _lightest_first(sizes: pd.Series, count: int) -> tuple[dict[int, int], np.ndarray, int]:
    """Components (``sizes``: rows per label) largest first onto the lightest partition."""
    order = sizes.sort_values(ascending=False, kind="stable")
    count = max(1, min(count, len(order)))
    loads = np.zeros(count, dtype=np.int64)
    assigned: dict[int, int] = {}
    for label, rows in zip(order.index.to_numpy(np.int64), order.to_numpy(np.int64), strict=True):
        target = int(np.argmin(loads))
        assigned[int(label)] = target
        loads[target] += int(rows)
    return assigned, loads, count


def _cut_in_file_order(
    names: np.ndarray, repo_component: np.ndarray, sizes: pd.Series, count: int, buckets: int
) -> tuple[dict[int, int], np.ndarray]:
    """Components in the order their first repo has in a bucketed dataset's files (bucket,
    then repo as spelled: how each part is sorted), cut into ``count`` runs of about
    ``total / count`` rows: a component goes to the run its first row falls in."""
    place = pd.DataFrame(
        {
            "bucket": [bucket_of(str(name), buckets) for name in names],
            "repo": names.astype(str),
            "component": repo_component,
        }
    ).sort_values(["bucket", "repo"], kind="stable")
    order = place["component"].drop_duplicates().to_numpy(np.int64)
    rows = sizes.reindex(order).to_numpy(np.int64)
    total = max(1, int(rows.sum()))
    starts = np.cumsum(rows) - rows
    target = np.minimum(starts * count // total, count - 1)
    loads = np.bincount(target, weights=rows, minlength=count).astype(np.int64)
    return dict(zip(order.tolist(), target.tolist(), strict=True)), loads


# --- the client side -------------------------------------------------------------------------


def _weights_in_memory(ds: Dataset) -> pd.Series:
    counts = [getattr(ds, name)["repo"].astype("string").value_counts() for name in _WEIGHED]
    weights: pd.Series = pd.concat(counts).groupby(level=0).sum().astype(np.int64)
    return weights


def _repo_column(store: ParquetStore, table: str, source: str) -> pa.Table:
    """Only the ``repo`` column of one source's partition files (one per repo bucket), local
    or on object storage."""
    where = store.location
    columns = []
    for parts in store.bucket_parts(table, source):
        if where.local is not None:
            if where.path(*parts).exists():
                columns.append(pq.read_table(where.path(*parts), columns=["repo"]))
            continue
        try:
            with where.filesystem.open_input_file(where.key(*parts)) as handle:
                columns.append(pq.read_table(handle, columns=["repo"]))
        except FileNotFoundError:
            continue
    return pa.concat_tables(columns) if columns else pa.table({"repo": pa.array([], pa.string())})


def _weights_on_disk(root: Location) -> pd.Series:
    """Rows per repo, reading only the ``repo`` column of each file."""
    store = ParquetStore(root)
    counts = []
    for name in _WEIGHED:
        for source in store.sources(name):
            column = _repo_column(store, name, source)
            values = column["repo"].combine_chunks().value_counts()
            counts.append(
                pd.Series(
                    values.field("counts").to_numpy(),
                    index=pd.Index(values.field("values").to_pylist(), dtype="string"),
                )
            )
    if not counts:
        return pd.Series(dtype=np.int64)
    return pd.concat(counts).groupby(level=0).sum().astype(np.int64)


def _small_tables(root: Location, options: MetricOptions) -> Dataset:
    """What the client reads of a dataset on disk: every table but the per-repo heavy ones
    (deployments too when change requests must be linked here)."""
    tables = ("incidents", "change_requests", "deployment_change_requests", "repo_teams")
    ds = load(root, tables=tables)
    if not ds.change_requests.empty and ds.deployment_change_requests.empty:
        deployments = load(root, tables=("deployments",)).deployments
        linked = with_change_request_links(
            dataclasses.replace(ds, deployments=deployments), options
        )
        ds = dataclasses.replace(ds, deployment_change_requests=linked.deployment_change_requests)
    return ds


def _part_of(frame: pd.DataFrame, repos: Sequence[str]) -> pd.DataFrame:
    return frame.loc[frame["repo"].isin(repos).to_numpy(dtype=bool)].reset_index(drop=True)


def _shared(small: Dataset, partition: Partition, incidents: np.ndarray) -> dict[str, Any]:
    """The small tables one partition needs: its incidents, the change-request links of its
    deployments and the change requests they name; the catalogue, teams and starts whole."""
    links = _part_of(small.deployment_change_requests, partition.repos)
    requests = small.change_requests.iloc[:0]
    if not links.empty:
        named = pd.MultiIndex.from_frame(
            links[["change_request_source", "change_request_id"]].astype(str)
        )
        own = pd.MultiIndex.from_frame(
            small.change_requests[["source", "change_request_id"]].astype(str)
        )
        requests = small.change_requests.loc[own.isin(named)].reset_index(drop=True)
    return {
        "incidents": small.incidents.loc[incidents].reset_index(drop=True),
        "deployment_change_requests": links,
        "change_requests": requests,
        "repo_teams": small.repo_teams,
        "services": small.services,
        "collection_start": small.collection_start,
    }


def _workers(client: Any) -> tuple[int, int]:
    """Workers and worker threads of the cluster (at least one of each)."""
    workers = client.scheduler_info(n_workers=-1)["workers"] if _takes_n(client) else None
    if workers is None:
        workers = client.scheduler_info()["workers"]
    threads = sum(int(info.get("nthreads", 1)) for info in workers.values())
    return max(1, len(workers)), max(1, threads)


def _takes_n(client: Any) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


def distributed_prepare(
    data: Dataset | str | os.PathLike[str],
    engine: Any,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    keywords: Mapping[str, Any] | None = None,
) -> Prepared:
    """:func:`prepare` of ``data`` run partition by partition on a Dask cluster, combined.

    ``data``: a Dataset (each partition's frames are sent to a worker) or the path of a
    dataset on disk (each worker reads its partition's deployments, changes and commits there,
    filtered by repo as pyarrow reads). ``engine``: a ``distributed.Client``, a
    :class:`DaskEngine` or a scheduler address. The result holds the same per-deployment and
    per-change rows as ``prepare(data)`` (in partition order), so the metrics computed from it
    are the same numbers."""
    require_distributed()
    if isinstance(links, Links):
        raise OptionError(
            "the distributed engine takes links as a deployment_changes table, not Links "
            "(their positions index the whole dataset)"
        )
    chosen = MetricOptions.build(options, **dict(keywords or {}))
    settings, opened = as_engine(engine)
    try:
        return _run(data, settings, chosen, links)
    finally:
        if opened is not None:
            opened.close()


def _run(
    data: Dataset | str | os.PathLike[str],
    engine: DaskEngine,
    options: MetricOptions,
    links: pd.DataFrame | None,
) -> Prepared:
    # A dataset on disk: a local folder or a URL (s3://...) every worker can read too.
    root = None if isinstance(data, Dataset) else resolve(os.fspath(data))
    if root is None:
        assert isinstance(data, Dataset)
        small = with_change_request_links(data, options)
        weights = _weights_in_memory(data)
    else:
        if not root.exists():
            load(root)  # the one "no dataset at ..." message
        small = _small_tables(root, options)
        weights = _weights_on_disk(root)
    workers, threads = _workers(engine.client)
    buckets = 1 if root is None else read_buckets(root)
    size = engine.partition_rows or (PARTITION_ROWS if buckets == 1 else BUCKETED_PARTITION_ROWS)
    total = int(weights.sum())
    count = engine.partitions or max(2 * workers, math.ceil(total / size))
    partitions, incident_part = plan_partitions(
        weights, small.incidents, small, small.deployment_change_requests, count, buckets
    )
    if not partitions:  # no rows at all: nothing to spread
        whole = data if isinstance(data, Dataset) else load(root)  # type: ignore[arg-type]
        return prepare(whole, options, links=links)

    def task(index: int, partition: Partition) -> tuple[Any, tuple[Any, ...]]:
        shared = _shared(small, partition, incident_part == index)
        given = None if links is None else _part_of(links, partition.repos)
        if root is not None:
            where = str(root.local) if root.local is not None else root.url
            return _prepare_on_disk, (where, partition.repos, shared, options, given)
        assert isinstance(data, Dataset)
        frames = {name: _part_of(getattr(data, name), partition.repos) for name in WORKER_TABLES}
        part = dataclasses.replace(data, **frames, **shared, path=None)
        part = dataclasses.replace(
            part,
            test_runs=empty_frame("test_runs"),
            deployment_changes=empty_frame("deployment_changes"),
        )
        return _prepare_sent, (part, options, given)

    in_flight = engine.in_flight or 2 * threads
    results = _map(engine.client, [task(i, p) for i, p in enumerate(partitions)], in_flight)
    return Prepared.combine(_explain(results, partitions))


def _map(client: Any, tasks: Sequence[tuple[Any, tuple[Any, ...]]], in_flight: int) -> list[Any]:
    """Run ``tasks`` (function, arguments) on the cluster, at most ``in_flight`` at once, and
    return each one's result or exception, in order. A worker that dies is replaced by Dask
    and its task rerun elsewhere (up to the scheduler's ``allowed-failures``)."""
    distributed = require_distributed()
    results: list[Any] = [None] * len(tasks)
    pending = iter(enumerate(tasks))
    running: dict[Any, int] = {}

    def submit() -> bool:
        for index, (function, arguments) in pending:
            future = client.submit(function, *arguments, pure=False)
            running[future] = index
            return True
        return False

    for _ in range(min(in_flight, len(tasks))):
        submit()
    queue = distributed.as_completed(list(running))
    for future in queue:
        index = running.pop(future)
        try:
            results[index] = future.result()
        except Exception as error:  # handed back with its partition
            results[index] = error
        future.release()
        if submit():
            newest = next(reversed(running))
            queue.add(newest)
    return results


def _explain(results: list[Any], partitions: list[Partition]) -> list[Prepared]:
    """The results, or the first failure: our own errors as they were raised on the worker,
    a worker that kept dying as an :class:`EngineError` naming the partition."""
    for result, partition in zip(results, partitions, strict=True):
        if isinstance(result, DeliveryPulseError):
            raise result
        if isinstance(result, BaseException):
            shown = ", ".join(partition.repos[:3]) + (" ..." if len(partition.repos) > 3 else "")
            raise EngineError(
                f"the Dask cluster could not prepare the partition of {shown} "
                f"({len(partition.repos)} repos, {partition.rows} rows): "
                f"{type(result).__name__}: {result}"
            ) from result
    return list(results)


# --- the worker side -------------------------------------------------------------------------


def _prepare_part(ds: Dataset, options: MetricOptions, links: pd.DataFrame | None) -> Prepared:
    """On a worker: prepare one partition and keep only its per-deployment and per-change
    rows: the commit graph stays here, and so do the dataset's own changes (``changes`` holds
    each of them again, which is what the metrics read)."""
    prepared = prepare(ds, options, links=links)
    dataset = dataclasses.replace(
        prepared.dataset,
        commits=prepared.dataset.commits.iloc[:0],
        changes=prepared.dataset.changes.iloc[:0],
        test_runs=prepared.dataset.test_runs.iloc[:0],
    )
    return dataclasses.replace(
        prepared,
        dataset=dataset,
        links=Links.empty(),
        link_change=np.zeros(0, dtype=np.int64),
    )


def _prepare_sent(ds: Dataset, options: MetricOptions, links: pd.DataFrame | None) -> Prepared:
    """On a worker: prepare one partition sent from the client (an in-memory Dataset)."""
    with _task_memory():
        return _prepare_part(ds, options, links)


def _prepare_on_disk(
    root: str,
    repos: tuple[str, ...],
    shared: dict[str, Any],
    options: MetricOptions,
    links: pd.DataFrame | None,
) -> Prepared:
    """On a worker: read one partition's repos from the dataset's files — only their buckets'
    files and row groups (:func:`~deliverypulse.store.parquet.read_repos`) — then prepare it."""
    with _task_memory():
        store = ParquetStore(root)
        frames: dict[str, Any] = {
            name: from_arrow(read_repos(store, name, list(repos))) for name in WORKER_TABLES
        }
        return _prepare_part(Dataset(**frames, **shared), options, links)


@contextlib.contextmanager
def _task_memory() -> Iterator[None]:
    """Run a task with arrow allocating from the C heap, then trim the heap.

    Arrow's default pool (mimalloc or jemalloc) keeps the pages it frees for itself, and
    numpy and pandas (the C heap) cannot reuse them, so a task's reads and its pandas work each
    grew the worker: on the 10,000-repo bench a 436,000-row partition peaked at 0.50 GB with
    mimalloc and 0.37-0.40 GB on the system pool. After the task, the heap's free pages go back
    to the system, so the next task starts from what the worker holds, not this one's peak.
    The previous pool is put back for the worker's other work."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
        trim_memory()


def trim_memory() -> bool:
    """Give freed memory back to the system: arrow's pool's unused pages and the C heap's
    (glibc's ``malloc_trim``). False where there is no glibc."""
    import ctypes
    import gc

    gc.collect()
    pa.default_memory_pool().release_unused()
    pa.system_memory_pool().release_unused()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


__all__ = [
    "BUCKETED_PARTITION_ROWS",
    "INSTALL_HINT",
    "PARTITION_ROWS",
    "DaskEngine",
    "EngineError",
    "Partition",
    "as_engine",
    "distributed_prepare",
    "plan_partitions",
    "require_distributed",
]
