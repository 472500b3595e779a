"""Collection on a Dask cluster: each source's repos fanned out to workers by repo bucket.

The driver (``collect(..., client=...)``) holds the dataset lock, lists each source's repos and
groups them by bucket (:func:`~deliverypulse.store.buckets.bucket_of`); one task per (source,
bucket) then runs the ordinary per-repo collection on a worker and writes only that bucket's
part files and its source's ``state-<k>-<source>.json``. No two tasks write the same file or
object, so they need no lock of their own, and the driver's lock keeps other writers out.

Tasks carry the source's config, never a token's value: each worker reads the token from its
own environment (``token_env``), so the variables must be set where the workers run.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deliverypulse.errors import ConfigError
from deliverypulse.redaction import redact
from deliverypulse.sources import SourceConfig
from deliverypulse.store.buckets import bucket_of
from deliverypulse.store.location import Location
from deliverypulse.streams import Runtime

if TYPE_CHECKING:
    from deliverypulse.config import Config

log = logging.getLogger("deliverypulse.fanout")

#: How long to wait for a scheduler given by address.
CONNECT_TIMEOUT = "10s"


@dataclass(frozen=True)
class BucketJob:
    """One task: a source's repos of one bucket. Holds no secret (tokens stay in env vars)."""

    source: SourceConfig
    location: Location
    buckets: int
    bucket: int
    repos: tuple[str, ...]
    full_refresh: bool
    concurrency: int
    runtime: Runtime | None = None


@dataclass(frozen=True)
class Steps:
    """The collector's functions the fan-out calls: list a source, make its empty results, and
    the task a worker runs for one :class:`BucketJob`."""

    open_source: Callable[..., Any]
    stream_results: Callable[[SourceConfig], dict[str, Any]]
    task: Callable[[BucketJob], BucketOutcome]


@dataclass
class BucketOutcome:
    """What a task sends back: per-stream counts, and why it could not finish, if so."""

    results: dict[str, Any] = field(default_factory=dict)  # collector.StreamResult by stream
    error: str | None = None


def connect(client: Any) -> tuple[Any, Any]:
    """``client`` (a ``distributed.Client`` or a scheduler address) as a client, and the one
    opened here to close afterwards (or ``None``)."""
    if not isinstance(client, str):
        if not hasattr(client, "submit") or not hasattr(client, "gather"):
            raise ConfigError(
                "client must be a distributed.Client or a scheduler address "
                f"('tcp://host:8786'), not {type(client).__name__}"
            )
        return client, None
    try:
        distributed: Any = importlib.import_module("distributed")
    except ImportError as error:
        raise ConfigError(
            f"collecting on a cluster needs dask and distributed ({error}): "
            "pip install 'deliverypulse[distributed]'"
        ) from None
    try:
        opened = distributed.Client(client, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as error:
        raise ConfigError(f"cannot reach the Dask scheduler at {client}: {error}") from None
    return opened, opened


def collect_on_cluster(
    client: Any,
    sources: list[SourceConfig],
    location: Location,
    buckets: int,
    summary: Any,
    full_refresh: bool,
    config: Config,
    runtime: Runtime | None,
    steps: Steps,
) -> None:
    """Submit one task per (source, repo bucket), gather them, and fold their counts into
    ``summary`` (a ``collector.RunSummary``) as an in-process run would (one result per source
    and stream). ``steps``: the collector's functions (it imports this module, not back)."""
    open_source, stream_results = steps.open_source, steps.stream_results
    client, opened = connect(client)
    try:
        pending: list[tuple[SourceConfig, Any]] = []
        for source in sources:
            found = open_source(source, runtime, summary)
            if found is None:
                continue
            connector, repos = found
            connector.close()  # the workers open their own
            results = stream_results(source)
            summary.results.extend(results.values())
            groups: dict[int, list[str]] = defaultdict(list)
            for repo in repos:
                groups[bucket_of(repo, buckets)].append(repo)
            for bucket, names in sorted(groups.items()):
                job = BucketJob(
                    source,
                    location,
                    buckets,
                    bucket,
                    tuple(names),
                    full_refresh,
                    config.concurrency,
                    runtime,
                )
                future = client.submit(steps.task, job, pure=False)
                pending.append((source, (future, results)))
        for source, (future, results) in pending:
            try:
                outcome: BucketOutcome = future.result()
            except Exception as error:  # a worker lost, a task that could not be shipped
                message = redact(f"a collect task failed: {type(error).__name__}: {error}")
                summary.source_errors[source.name] = message
                log.error("%s: %s", source.name, message)
                continue
            for name, result in outcome.results.items():
                if name in results:
                    results[name].add(result)
            if outcome.error is not None:
                summary.source_errors[source.name] = outcome.error
                log.error("%s: %s", source.name, outcome.error)
    finally:
        if opened is not None:
            opened.close()
