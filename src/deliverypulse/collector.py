"""The collect driver: runs every source's connector and stores what it yields.

For each source, repo and stream it resumes from the saved cursor, coerces each page to its
table's schema, upserts the rows into Parquet and only then commits the page's cursor. One
failing source (or repo) is recorded and the others go on; the caller decides the exit code.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pandas as pd
import pyarrow as pa

from deliverypulse.config import Config, load_config
from deliverypulse.connector import Connector, legacy_stream, load_connector, merge_pages
from deliverypulse.dataset import Dataset, load
from deliverypulse.errors import (
    AuthError,
    CollectError,
    ConfigError,
    DeliveryPulseError,
    StorageError,
)
from deliverypulse.fanout import BucketJob, BucketOutcome, Steps, collect_on_cluster
from deliverypulse.names import repo_problem
from deliverypulse.progress import NullProgress, Progress
from deliverypulse.redaction import redact
from deliverypulse.rules import classify_changes
from deliverypulse.sources import SourceConfig
from deliverypulse.store import DatasetLock, ParquetStore, SyncState, spec_for
from deliverypulse.store.buckets import bucket_of, settle_buckets
from deliverypulse.store.catalogue import write_catalogue
from deliverypulse.store.coerce import Records, coerce_frame, to_arrow, to_frame
from deliverypulse.store.files import remove_stale_temp_files
from deliverypulse.store.location import Location, is_url
from deliverypulse.store.state import SOURCE_START, Start
from deliverypulse.streams import (
    DEFAULT_RUNTIME,
    Runtime,
    Shared,
    Stream,
    StreamRun,
    clamp_cursor,
    ordered,
)

log = logging.getLogger("deliverypulse.collector")

#: Rows buffered per source before they are written (and the cursors committed).
FLUSH_ROWS = 50_000
#: Small API pages are merged up to this many rows before they are coerced to the schema.
MERGED_PAGE_ROWS = 1_000


@dataclass
class StreamResult:
    """What one source's stream did in a run (summed over its repos)."""

    source: str
    stream: str
    repos: int = 0
    fetched: int = 0
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, other: StreamResult) -> None:
        """Fold another repo's counts for the same stream into this total."""
        self.repos += other.repos
        self.fetched += other.fetched
        self.added += other.added
        self.removed += other.removed
        self.seconds += other.seconds
        self.errors.extend(other.errors)

    def line(self) -> str:
        """The one summary line a cron job shows for this stream."""
        head = f"{self.source} {self.stream}: "
        body = (
            f"{self.repos} repo{'s' if self.repos != 1 else ''}, {self.fetched:,} rows fetched, "
            f"{self.added:,} new, "
            + (f"{self.removed:,} removed, " if self.removed else "")
            + f"{self.seconds:.1f}s"
        )
        if self.errors:
            return f"{head}FAILED ({'; '.join(self.errors)}) after {body}"
        return head + body


@dataclass
class RunSummary:
    """The outcome of one collect run."""

    output: Path | str
    started_at: datetime
    finished_at: datetime | None = None
    results: list[StreamResult] = field(default_factory=list)
    source_errors: dict[str, str] = field(default_factory=dict)
    #: Where the dataset is (with the endpoint of a URL), for reading it back.
    location: Location | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.source_errors and all(r.ok for r in self.results)

    @property
    def failed_sources(self) -> list[str]:
        failed = set(self.source_errors) | {r.source for r in self.results if not r.ok}
        return sorted(failed)

    def lines(self) -> list[str]:
        lines = [r.line() for r in self.results]
        lines += [f"{name}: FAILED ({message})" for name, message in self.source_errors.items()]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds")
            if self.finished_at
            else None,
            "ok": self.ok,
            "streams": [{**asdict(r), "ok": r.ok} for r in self.results],
            "source_errors": dict(self.source_errors),
        }


def run_collect(
    config: Config | Path | str,
    *,
    output: Path | str | None = None,
    since: datetime | None = None,
    full_refresh: bool = False,
    progress: Progress | None = None,
    lock_timeout: float = 0.0,
    runtime: Runtime | None = None,
    buckets: int | None = None,
    client: Any = None,
) -> RunSummary:
    """Collect every source of ``config`` into its dataset; never raises for a source failure.

    ``runtime`` (clock, sleep, HTTP transport) is handed to every connector; tests use it to
    route connectors to local servers and to skip rate-limit waits. ``buckets``: how many repo
    buckets a new dataset gets (fixed then; see :mod:`deliverypulse.store.buckets`).
    ``client``: a ``distributed.Client`` or scheduler address; each source's repo buckets
    are then collected by the cluster's workers, one task per bucket (:mod:`.fanout`).
    """
    if not isinstance(config, Config):
        config = load_config(config, output=output)
    elif output is not None:
        config = replace(
            config, output=str(output).rstrip("/") if is_url(output) else Path(output).resolve()
        )
    progress = progress or NullProgress()
    location = _make_output(config)
    summary = RunSummary(output=config.output, started_at=datetime.now(UTC), location=location)
    with DatasetLock(location, timeout=lock_timeout):
        if location.local is not None:  # object stores get whole objects only: no temp files
            removed = remove_stale_temp_files(location.local)
            if removed:
                log.info("removed %d temporary files left by an interrupted run", removed)
        count = settle_buckets(location, buckets, fresh=buckets is not None and _fresh(location))
        store = ParquetStore(location, buckets=count)
        state = SyncState(location, set_aside_damaged=full_refresh, buckets=count)
        if config.services:  # a config without [[services]] (collect --git) keeps the stored one
            write_catalogue(location, config.services)  # the linking stage reads it back
        sources = [
            source if since is None else replace(source, options={**source.options, "since": since})
            for source in config.sources
        ]
        if client is not None:
            steps = Steps(open_source, stream_results, collect_bucket)
            collect_on_cluster(
                client, sources, location, count, summary, full_refresh, config, runtime, steps
            )
        else:
            for source in sources:
                _collect_source(
                    source, store, state, summary, full_refresh, progress, config, runtime
                )
        summary.finished_at = datetime.now(UTC)
        try:
            state.record_run(summary.to_dict())
        except StorageError as error:  # the rows and cursors were saved; only the record is lost
            log.warning("the run record was not saved: %s", error)
    progress.close()
    return summary


def _fresh(location: Location) -> bool:
    """Whether the dataset holds no rows and no cursors yet (its buckets can still be chosen)."""
    return not any(
        name.endswith(".parquet") or name.startswith("_deliverypulse/state")
        for name in location.files()
    )


def _make_output(config: Config) -> Location:
    """Create the dataset folder, or say at once (exit 2) why it cannot be: a path under a
    file, a folder without write permission, a device; on object storage a missing bucket, no
    permission, an endpoint that does not answer."""
    location = config.location()
    if location.local is None:
        try:
            location.check_writable()
        except StorageError as error:
            raise ConfigError(
                f"{error}; choose a bucket and prefix you can write (--out URL, or [output] "
                "path in the config)",
                file=config.path,
                key="output.path",
            ) from None
        return location
    try:
        location.local.mkdir(parents=True, exist_ok=True)
        probe = location.local / "_deliverypulse"
        probe.mkdir(exist_ok=True)
        if not os.access(probe, os.W_OK):
            raise PermissionError(13, "Permission denied")
        return location
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(
            f"the dataset folder {config.output} cannot be used: {reason}; choose a folder "
            "you can write (--out DIR, or [output] path in the config)",
            file=config.path,
            key="output.path",
        ) from None


class CollectOptions(TypedDict, total=False):
    """The keywords :func:`collect` passes on to :func:`run_collect` (documented there)."""

    output: Path | str | None
    since: datetime | None
    full_refresh: bool
    progress: Progress | None
    lock_timeout: float
    runtime: Runtime | None
    buckets: int | None
    client: Any


def collect(config: Config | Path | str, **options: Unpack[CollectOptions]) -> Dataset:
    """Collect like the CLI does and return the dataset; raise if any source failed.

    Takes :func:`run_collect`'s keywords. The rows of the sources that succeeded are stored
    either way; the raised :class:`CollectError` carries the run summary.
    """
    summary = run_collect(config, **options)
    if not summary.ok:
        raise CollectError(
            "collect failed for "
            + ", ".join(summary.failed_sources)
            + ": "
            + "; ".join(line for line in summary.lines() if "FAILED" in line),
            summary=summary,
        )
    return load(summary.location or summary.output)


def _collect_source(
    source: SourceConfig,
    store: ParquetStore,
    state: SyncState,
    summary: RunSummary,
    full_refresh: bool,
    progress: Progress,
    config: Config,
    runtime: Runtime | None = None,
) -> None:
    opened = open_source(source, runtime, summary)
    if opened is None:
        return
    connector, repos = opened
    results = stream_results(source)
    summary.results.extend(results.values())
    try:
        error = collect_repos(
            connector,
            source,
            repos,
            store,
            state,
            results,
            full_refresh,
            progress,
            config.concurrency,
        )
    finally:
        connector.close()
    if error is not None:
        summary.source_errors[source.name] = error


def open_source(
    source: SourceConfig, runtime: Runtime | None, summary: RunSummary
) -> tuple[Connector, list[str]] | None:
    """The source's connector and the repos it lists (names that could steer a request
    elsewhere dropped and recorded); ``None`` with the error recorded when it cannot list."""
    try:
        connector_class = load_connector(source.type)
        connector = connector_class(source, runtime or DEFAULT_RUNTIME)
        repos = list(connector.repos())
    except DeliveryPulseError as error:
        summary.source_errors[source.name] = str(error)
        log.error("%s: %s", source.name, error)
        return None
    except Exception as error:  # a connector bug must not stop the other sources
        summary.source_errors[source.name] = _describe(error)
        log.error("%s: connector failed: %s", source.name, _describe(error), exc_info=_debug())
        return None
    refused = [(repo, problem) for repo in repos if (problem := repo_problem(repo))]
    if refused:
        # A provider's list (an organisation's repositories) is input like any other: a name
        # that would steer a request or a path elsewhere is skipped, said, and fails the run.
        repos = [repo for repo in repos if not repo_problem(repo)]
        summary.source_errors[source.name] = "; ".join(
            f"repo name {repo!r} skipped: {problem}" for repo, problem in refused
        )
        log.error("%s: %s", source.name, summary.source_errors[source.name])
    return connector, repos


def source_streams(source: SourceConfig) -> list[Stream]:
    """The streams of ``source`` this run reads, in the order they must run."""
    connector_class = load_connector(source.type)
    declared = connector_class.stream_specs or tuple(
        legacy_stream(name) for name in connector_class.streams
    )
    return [s for s in ordered(declared, source.streams or None) if s.wanted(source.options)]


def stream_results(source: SourceConfig) -> dict[str, StreamResult]:
    """An empty result per stream the run reads of ``source``."""
    return {s.name: StreamResult(source.name, s.name) for s in source_streams(source)}


def collect_repos(
    connector: Connector,
    source: SourceConfig,
    repos: list[str],
    store: ParquetStore,
    state: SyncState,
    results: dict[str, StreamResult],
    full_refresh: bool,
    progress: Progress,
    concurrency: int,
    bucket: int | None = None,
) -> str | None:
    """Collect ``repos`` of one source into ``store`` (only repo ``bucket``'s files when given:
    a cluster worker's share) and count into ``results``; returns why the rows read could not
    be stored, or ``None``. The caller closes ``connector``."""
    streams = source_streams(source)
    connector_class = type(connector)
    workers = max(1, min(connector_class.concurrency, concurrency, len(repos) or 1))
    writer = _SourceWriter(store, state, source.name, results, full_refresh, source.since, bucket)
    run = _RepoRun(
        connector,
        source,
        state,
        writer,
        streams,
        results,
        full_refresh,
        progress,
        started=connector.runtime.clock(),
    )
    try:
        if workers == 1:
            for repo in repos:
                if not run.collect_repo(repo):
                    break
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix=source.name) as pool:
                list(pool.map(run.collect_repo, repos))
    finally:
        # Rows of completed pages are good even if a later page or repo failed: write them,
        # and the cursors that cover them.
        try:
            writer.flush()
        except StorageError as error:  # a full disk: say so; nothing stored is lost
            log.error("%s: %s", source.name, error)
            return str(error)
    if full_refresh:
        # Only now that every row read is durable, and only where the read completed.
        everything = run.clean and len(run.completed) == len(repos)
        writer.replace_unread(run.completed, everything)
    return None


def collect_bucket(job: BucketJob) -> BucketOutcome:
    """Run on a worker (:mod:`.fanout`): collect ``job.repos`` into bucket ``job.bucket``'s
    files only, and send back the per-stream counts."""
    outcome = BucketOutcome(results=stream_results(job.source))
    store = ParquetStore(job.location, buckets=job.buckets)
    try:
        state = SyncState(
            job.location,
            buckets=job.buckets,
            bucket=job.bucket,
            set_aside_damaged=job.full_refresh,
        )
    except DeliveryPulseError as error:
        outcome.error = str(error)
        return outcome
    try:  # not connector.repos(): the driver listed them, and a list costs requests
        connector = load_connector(job.source.type)(job.source, job.runtime or DEFAULT_RUNTIME)
    except DeliveryPulseError as error:
        outcome.error = str(error)
        return outcome
    except Exception as error:  # a connector bug: one line, no secret
        outcome.error = redact(f"connector failed: {type(error).__name__}: {error}")
        return outcome
    try:
        outcome.error = collect_repos(
            connector,
            job.source,
            list(job.repos),
            store,
            state,
            outcome.results,
            job.full_refresh,
            NullProgress(),
            job.concurrency,
            job.bucket,
        )
    finally:
        connector.close()
    return outcome


class _SourceWriter:
    """Buffers one source's rows across its repos and streams; writes them, then the cursors.

    Writing per repo would rewrite the source's growing partition once per repo (quadratic in
    an org's size); here a write happens every ``FLUSH_ROWS`` rows and at the end. A cursor is
    registered with the page it covers and saved only after a write that holds that page.
    Thread-safe: the repos of a source run on several threads.
    """

    def __init__(
        self,
        store: ParquetStore,
        state: SyncState,
        source: str,
        results: dict[str, StreamResult],
        full_refresh: bool = False,
        since: datetime | None = None,
        bucket: int | None = None,
    ) -> None:
        self.store = store
        self.bucket = bucket  # a cluster worker's own repo bucket: it writes no other
        self.state = state
        self.source = source
        self.results = results
        self.full_refresh = full_refresh
        self.since = since
        self.lock = threading.Lock()  # also guards the totals in ``results``
        self._frames: dict[tuple[str, int], list[pd.DataFrame]] = defaultdict(list)
        self._rows = 0
        self._cursors: dict[tuple[str, str], str] = {}
        self._starting: set[str] = set()  # repos whose reads set where their collection starts
        # A full refresh keeps the keys of every row it read, per table and repo read.
        self._seen: dict[tuple[str, str], list[pd.DataFrame]] = defaultdict(list)

    def starts_here(self, repo: str) -> None:
        """This run's reads of ``repo`` say where its collection starts: it had no cursors (a
        first collection, or a full refresh), or the run has a ``since`` (which can move the
        start earlier). A run without ``since`` that resumes from cursors reads only what is
        new, so it leaves the start alone."""
        with self.lock:
            self._starting.add(repo)

    def add(
        self, table: str, frame: pd.DataFrame, repo: str, cursor: tuple[str, str] | None
    ) -> None:
        """Buffer one page's rows, read for ``repo``; ``cursor`` is (stream, value) if the page
        carries one."""
        with self.lock:
            if len(frame):
                # The bucket of the repo read, not of the rows' repo column: an incident
                # service's rows may name other repos, and must stay in this writer's files.
                bucket = self.bucket
                if bucket is None:
                    bucket = bucket_of(repo, self.store.buckets)
                self._frames[(table, bucket)].append(frame)
                self._rows += len(frame)
                if self.full_refresh:
                    key = [name for name in spec_for(table).key if name != "source"]
                    columns = key if "repo" in key else [*key, "repo"]
                    self._seen[(table, repo)].append(frame[columns])
            if cursor is not None:
                stream, value = cursor
                self._cursors[(stream, repo)] = value
                if self._rows >= FLUSH_ROWS:
                    self._flush()

    def replace_unread(self, completed: dict[str, set[str]], everything: bool) -> None:
        """After a full refresh: drop the rows it did not read again, only in the tables and
        repos whose streams all completed (all of the source's rows when ``everything``
        completed), then record that their collection now starts at this run's ``since``."""
        with self.lock:
            tables = sorted({table for names in completed.values() for table in names})
            for table in tables:
                repos = {repo for repo, names in completed.items() if table in names}
                seen = [
                    frame
                    for (name, repo), frames in self._seen.items()
                    if name == table and repo in repos
                    for frame in frames
                ]
                spec = spec_for(table)
                key = [name for name in spec.key if name != "source"]
                keys = (
                    pd.concat(seen, ignore_index=True)
                    if seen
                    else pd.DataFrame({name: pd.Series(dtype="string") for name in key})
                )
                scope = None if everything else repos
                keys_table = pa.Table.from_pandas(keys[key].astype("string"), preserve_index=False)
                removed = self.store.keep_only(table, self.source, keys_table, scope, self.bucket)
                if removed:
                    log.info("%s %s: %d rows the source no longer has", self.source, table, removed)
                if table in self.results:
                    self.results[table].removed += removed
            starts = [Start(self.source, repo, self.since, reset=True) for repo in completed]
            if everything:
                starts.append(Start(self.source, SOURCE_START, self.since, reset=True))
            self.state.set_starts(starts)
            self._seen.clear()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        for (table, bucket), frames in list(self._frames.items()):
            try:
                rows = _concat_arrow(table, frames)
                added = self.store.upsert(table, self.source, rows, bucket)
            except OSError as error:
                self._frames.clear()
                self._cursors.clear()  # their rows were not stored: those pages are read again
                raise StorageError(
                    f"could not write {table} of source {self.source!r} under "
                    f"{self.store.root}: {error.strerror or error}; free space or fix the "
                    "folder's permissions and rerun (rows already stored are kept, and the "
                    "pages not stored are read again)"
                ) from None
            if table in self.results:
                self.results[table].added += added
        self._frames.clear()
        self._rows = 0
        if self._cursors or self._starting:
            # The collection's start goes with the first cursors of a repo, in the same write.
            starts = [Start(self.source, repo, self.since) for repo in sorted(self._starting)]
            if starts:
                starts.append(Start(self.source, SOURCE_START, self.since))
            self.state.set_cursors(
                [
                    (self.source, stream, repo, value)
                    for (stream, repo), value in self._cursors.items()
                ],
                starts,
            )
            self._cursors.clear()
            self._starting.clear()


@dataclass
class _RepoRun:
    connector: Connector
    source: SourceConfig
    state: SyncState
    writer: _SourceWriter
    streams: list[Stream]  # in the order they must run
    results: dict[str, StreamResult]
    full_refresh: bool
    progress: Progress
    started: datetime = field(default_factory=lambda: datetime.now(UTC))  # cursors stop here
    stopped: bool = False
    warned_clock: bool = False  # one warning per source and run about times in the future
    #: Per repo whose streams all ran: the tables none of its failed streams reads or wrote.
    completed: dict[str, set[str]] = field(default_factory=dict)
    clean: bool = True  # no stream of any repo failed

    def collect_repo(self, repo: str) -> bool:
        """Collect every stream of one repo; False once the source should stop (auth).

        Repos run on several threads: each stream counts into its own ``StreamResult`` and
        merges it into the source's total under a lock, so no count is lost to a race.
        """
        shared = Shared()  # what a stream hands the streams declared after it, for this repo
        first = all(self.state.cursor(self.source.name, s.name, repo) is None for s in self.streams)
        if self.full_refresh or first or self.source.since is not None:
            self.writer.starts_here(repo)
        good: set[str] = set()
        bad: set[str] = set()
        for spec in self.streams:
            stream, total = spec.name, self.results[spec.name]
            if self.stopped:
                return False
            result = StreamResult(self.source.name, stream, repos=1)
            started = time.monotonic()
            self.progress.stream_started(self.source.name, stream, repo)
            written = {spec.table_name}
            try:
                self._collect_stream(spec, repo, result, shared, written)
            except DeliveryPulseError as error:
                result.errors.append(f"{repo}: {error}")
                log.error("%s %s %s: %s", self.source.name, stream, repo, error)
                self.stopped = isinstance(error, AuthError)
            except Exception as error:
                result.errors.append(f"{repo}: {_describe(error)}")
                log.error(
                    "%s %s %s failed: %s",
                    self.source.name,
                    stream,
                    repo,
                    _describe(error),
                    exc_info=_debug(),
                )
            finally:
                result.seconds = time.monotonic() - started
                with self.writer.lock:
                    total.add(result)
                self.progress.stream_finished(self.source.name, stream, repo)
                (good if result.ok else bad).update(written)
                self.clean &= result.ok
        if not self.stopped:
            with self.writer.lock:
                self.completed[repo] = good - bad
        return not self.stopped

    def _collect_stream(
        self, spec: Stream, repo: str, result: StreamResult, shared: Shared, written: set[str]
    ) -> None:
        stream = spec.name
        text = None if self.full_refresh else self.state.cursor(self.source.name, stream, repo)
        run = StreamRun(
            spec,
            repo,
            spec.cursor.load(text),
            self.connector.runtime,
            self.source.since,
            shared,
        )
        for page in merge_pages(self.connector.read_stream(run), MERGED_PAGE_ROWS):
            table = page.table or spec.table_name
            written.add(table)
            records = classified(self.source, table, page.records)
            frame = coerce_frame(spec_for(table), records, source=self.source.name, repo=repo)
            if table == spec.table_name:
                result.fetched += len(frame)
            self.progress.rows_fetched(self.source.name, stream, repo, len(frame))
            cursor, clamped = clamp_cursor(page.cursor, self.started)
            if clamped and not self.warned_clock:
                self.warned_clock = True
                log.warning(
                    "%s %s %s: a time later than this run's start (a clock that lies?); the "
                    "rows are stored, the cursor stays at the run's start",
                    self.source.name,
                    stream,
                    repo,
                )
            text = replace(page, cursor=cursor).cursor_text
            checkpoint = None if text is None else (stream, text)
            self.writer.add(table, frame, repo, checkpoint)


def classified(source: SourceConfig, table: str, records: Records) -> Records:
    """A page's rows as the core stores them: connectors record facts, and the core decides
    reverts, hotfixes and bots of ``changes`` rows with the source's patterns (``rules``).

    Public so that a connector's tests can see its rows exactly as a collect stores them.
    """
    if table != "changes":
        return records
    return classify_changes(
        to_frame(records), hotfix=source.hotfix.pattern, bots=source.bots.pattern
    )


def _concat_arrow(table: str, frames: Iterable[pd.DataFrame]) -> pa.Table:
    spec = spec_for(table)
    return pa.concat_tables([to_arrow(spec, frame) for frame in frames]).unify_dictionaries()


def _debug() -> bool:
    """Tracebacks go to the log only under ``--debug``; otherwise one line says what failed."""
    return log.isEnabledFor(logging.DEBUG)


def _describe(error: BaseException) -> str:
    return redact(f"{type(error).__name__}: {error}")
