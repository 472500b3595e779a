"""Sync state: one cursor per source, stream and repo, where each source's and repo's collection
started, and a short history of runs.

Saved atomically to ``_deliverypulse/state.json`` under the dataset root. The collect driver
commits a cursor only after the rows it covers are durable in Parquet, so a killed run at worst
fetches a page again; it never skips one. The collection's start is saved in the same write as
the first cursors of a repo: ``since`` when the run had one, else ``None`` (the source's whole
history). A later run with an earlier ``since`` (or none) moves it earlier; a completed full
refresh replaces it.

On object storage the file is one object, replaced whole by every save (a PUT is atomic); a
damaged one is set aside by copy and delete.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from deliverypulse.errors import StorageError
from deliverypulse.store.buckets import bucket_of, read_buckets
from deliverypulse.store.files import write_text_atomic
from deliverypulse.store.location import Location, resolve

log = logging.getLogger(__name__)

STATE_PARTS = ("_deliverypulse", "state.json")
STATE_VERSION = 1
MAX_RUNS_KEPT = 50
#: The repo name under which a source's own start is kept (a source's start covers the rows of
#: repos it collected under other names, such as an incident service mapped to a repo).
SOURCE_START = ""


#: Where a set of cursors and starts is saved: ``state.json`` (``None``) or a (source,
#: bucket) file.
Home = tuple[str, int] | None


class Start(NamedTuple):
    """Where the collection of one source (``repo`` ``""``) or repo started.

    ``since``: the run's ``since`` (aware UTC), or ``None`` when it read the whole history.
    ``reset``: a full refresh that re-read everything: replace the saved start instead of
    keeping the earlier of the two.
    """

    source: str
    repo: str
    since: datetime | None
    reset: bool = False


class SyncState:
    """Cursors and run history of one dataset. Thread-safe; every change is saved at once.

    In a dataset with repo buckets (:mod:`.buckets`) a repo's cursors and start live in
    ``state-<k>-<source>.json`` of its source and bucket, and the run history in
    ``state.json``; reading merges them all. A collect worker (one per source and bucket) opens
    the state with ``bucket=k`` and then writes only its source's file of that bucket.
    """

    def __init__(
        self,
        root: Path | str | Location,
        *,
        set_aside_damaged: bool = False,
        buckets: int | None = None,
        bucket: int | None = None,
    ) -> None:
        """Read the state of the dataset at ``root``.

        A damaged file (truncated, empty, not the shape we write) is a :class:`StorageError`
        that says what to do; with ``set_aside_damaged`` (a full refresh, which needs no
        cursor) it is renamed ``state.json.damaged`` and the run starts from an empty state.
        ``buckets``: the dataset's repo buckets (default: what it records); ``bucket``: write
        only that bucket's file (every cursor and start saved goes there).
        """
        self.location = resolve(root)
        self.buckets = read_buckets(self.location) if buckets is None else buckets
        self.bucket = bucket
        #: The state file: a local path, or its URL on object storage.
        self.path: Path | str = self._where(STATE_PARTS)
        self._guard = threading.Lock()
        self._data: dict[str, Any] = self._load(STATE_PARTS, set_aside_damaged)
        self._parts: dict[tuple[str, int], dict[str, Any]] = {}
        if self.buckets > 1:
            for name in self.location.files(STATE_PARTS[0]):
                home = _bucket_file(name)
                if home is not None and home[1] < self.buckets:
                    self._parts[home] = self._load(_bucket_parts(home), set_aside_damaged)

    def _where(self, parts: tuple[str, str]) -> Path | str:
        if self.location.local is not None:
            return self.location.path(*parts)
        return self.location.show(*parts)

    def _load(self, parts: tuple[str, str], set_aside_damaged: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"version": STATE_VERSION, "cursors": {}, "starts": {}}
        if parts == STATE_PARTS:
            data["runs"] = []
        path, text = self._where(parts), b""
        if isinstance(path, Path):
            if not path.exists():
                return data
        else:
            found = self.location.read_bytes(*parts)
            if found is None:
                return data
            text = found
        try:
            data.update(_read(path) if isinstance(path, Path) else _parse(text, path))
        except StorageError:
            if not set_aside_damaged:
                raise
            self._set_aside(parts)
        return data

    def _set_aside(self, parts: tuple[str, str] = STATE_PARTS) -> None:
        path = self._where(parts)
        if isinstance(path, Path):
            damaged: Path | str = path.with_name(path.name + ".damaged")
            path.replace(damaged)
        else:
            target = (parts[0], parts[1] + ".damaged")
            self.location.move(parts, target)
            damaged = self.location.show(*target)
        log.warning("%s was damaged; set aside as %s, starting afresh", path, damaged)

    def _home(self, source: str, repo: str) -> Home:
        """The (source, bucket) file a repo's entries are saved in (``None``: ``state.json``)."""
        if self.buckets == 1:
            return None
        if self.bucket is not None:
            return source, self.bucket
        return source, bucket_of(repo, self.buckets)

    def _doc(self, home: Home) -> dict[str, Any]:
        if home is None:
            return self._data
        return self._parts.setdefault(home, {"version": STATE_VERSION, "cursors": {}, "starts": {}})

    def _docs(self) -> list[dict[str, Any]]:
        return [self._data, *(self._parts[k] for k in sorted(self._parts))]

    def cursor(self, source: str, stream: str, repo: str) -> str | None:
        for doc in (self._doc(self._home(source, repo)), self._data):
            entry = doc["cursors"].get(source, {}).get(stream, {}).get(repo)
            if entry is not None:
                return entry.get("cursor")  # type: ignore[no-any-return]
        return None

    def cursors(self) -> list[dict[str, Any]]:
        """Every cursor as a flat row: source, stream, repo, cursor, saved_at."""
        merged: dict[tuple[str, str, str], dict[str, Any]] = {}
        for doc in self._docs():
            for source, streams in doc["cursors"].items():
                for stream, repos in streams.items():
                    for repo, entry in repos.items():
                        merged[(source, stream, repo)] = entry
        return [
            {"source": source, "stream": stream, "repo": repo, **entry}
            for (source, stream, repo), entry in sorted(merged.items())
        ]

    def set_cursor(self, source: str, stream: str, repo: str, cursor: str) -> None:
        self.set_cursors([(source, stream, repo, cursor)])

    def set_cursors(
        self, cursors: list[tuple[str, str, str, str]], starts: list[Start] | None = None
    ) -> None:
        """Save several (source, stream, repo, cursor) at once, with the collection starts they
        imply, in one atomic write (per bucket file)."""
        with self._guard:
            saved_at = _now()
            touched: set[Home] = set()
            for source, stream, repo, cursor in cursors:
                home = self._home(source, repo)
                touched.add(home)
                streams = self._doc(home)["cursors"].setdefault(source, {})
                streams.setdefault(stream, {})[repo] = {"cursor": cursor, "saved_at": saved_at}
            touched |= self._merge_starts(starts or [], saved_at, touched)
            self._save(touched)

    def set_starts(self, starts: list[Start]) -> None:
        """Record collection starts on their own (a completed full refresh), atomically."""
        if not starts:
            return
        with self._guard:
            self._save(self._merge_starts(starts, _now(), set()))

    def starts(self) -> list[dict[str, Any]]:
        """Every recorded start as a row: source, repo (``""`` for the source's own), since (an
        ISO time, or ``None`` for the whole history) and first_run_at. A source's own start
        kept in several bucket files is the earliest of them."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for doc in self._docs():
            for source, repos in doc.get("starts", {}).items():
                for repo, entry in repos.items():
                    old = merged.get((source, repo))
                    merged[(source, repo)] = entry if old is None else _earliest(old, entry)
        return [
            {"source": source, "repo": repo, **entry}
            for (source, repo), entry in sorted(merged.items())
        ]

    def _merge_starts(self, starts: list[Start], saved_at: str, touched: set[Home]) -> set[Home]:
        """Fold ``starts`` in; returns the files changed. A source's own start goes to the
        source's files this save writes anyway (a worker: its own; else bucket 0's)."""
        changed: set[Home] = set()
        for start in starts:
            if start.repo != SOURCE_START:
                homes: set[Home] = {self._home(start.source, start.repo)}
            elif self.buckets == 1:
                homes = {None}
            elif self.bucket is not None:
                homes = {(start.source, self.bucket)}
            else:
                homes = {
                    home for home in touched if home is not None and home[0] == start.source
                } or {(start.source, 0)}
            for home in homes:
                _merge_start(self._doc(home).setdefault("starts", {}), start, saved_at)
            changed |= homes
        return changed

    def clear(self, source: str) -> None:
        with self._guard:
            for doc in self._docs():
                doc["cursors"].pop(source, None)
                doc.get("starts", {}).pop(source, None)
            self._save({None, *self._parts})

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self._data["runs"])

    def record_run(self, run: dict[str, Any]) -> None:
        with self._guard:
            self._data["runs"] = [*self._data["runs"], run][-MAX_RUNS_KEPT:]
            self._save({None})

    def _save(self, homes: set[Home]) -> None:
        for home in sorted(homes, key=lambda k: ("", -1) if k is None else k):
            parts = STATE_PARTS if home is None else _bucket_parts(home)
            text = json.dumps(self._doc(home), indent=1, sort_keys=True)
            path = self._where(parts)
            if not isinstance(path, Path):
                self.location.write_bytes(text.encode("utf-8"), *parts)
                continue
            try:
                write_text_atomic(path, text)
            except OSError as error:
                raise StorageError(
                    f"cannot write {path}: {error.strerror or error}; free space or fix the "
                    "folder's permissions and rerun (rows already stored are kept; the pages "
                    "they came from are read again)"
                ) from None


def _bucket_parts(home: tuple[str, int]) -> tuple[str, str]:
    source, bucket = home
    return STATE_PARTS[0], f"state-{bucket}-{source}.json"


def _bucket_file(name: str) -> tuple[str, int] | None:
    """The (source, bucket) of a ``state-<k>-<source>.json`` file name, else ``None``."""
    match = re.fullmatch(r"state-(\d+)-(.+)\.json", name)
    return None if match is None else (match[2], int(match[1]))


def _merge_start(table: dict[str, Any], start: Start, saved_at: str) -> None:
    repos = table.setdefault(start.source, {})
    since = None if start.since is None else start.since.isoformat()
    old = repos.get(start.repo)
    if old is None:
        repos[start.repo] = {"since": since, "first_run_at": saved_at}
    elif start.reset:
        repos[start.repo] = {**old, "since": since}
    else:
        repos[start.repo] = {**old, "since": _earlier(old.get("since"), start.since)}


def _earliest(one: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """One start from two files' entries for it: the earlier since and first run."""
    since = other.get("since")
    found = _earlier(one.get("since"), None if since is None else datetime.fromisoformat(since))
    runs = [r for r in (one.get("first_run_at"), other.get("first_run_at")) if r]
    return {**one, "since": found, "first_run_at": min(runs) if runs else None}


def _earlier(saved: str | None, since: datetime | None) -> str | None:
    """The earlier of a saved start and a run's ``since``; ``None`` (everything) is earliest."""
    if saved is None or since is None:
        return None
    return min(datetime.fromisoformat(saved), since).isoformat()


def _damaged(path: Path | str, why: str) -> StorageError:
    return StorageError(
        f"{path} is damaged ({why}); it holds only cursors and run history, the data is safe: "
        "run 'deliverypulse collect --full-refresh' to re-read everything and rewrite it (the "
        "damaged file is kept as state.json.damaged), or delete it to do the same"
    )


def _read(path: Path) -> dict[str, Any]:
    """The saved state, checked to be the shape this module writes."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _damaged(path, "not UTF-8 text") from None
    except OSError as error:
        raise StorageError(
            f"cannot read {path}: {error.strerror or error}; check its permissions"
        ) from None
    return _parse(text, path)


def _parse(text: str | bytes, path: Path | str) -> dict[str, Any]:
    """The state in ``text``, checked to be the shape this module writes."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _damaged(path, "not UTF-8 text") from None
    if not text.strip():
        raise _damaged(path, "the file is empty")
    try:
        loaded = json.loads(text)
    except ValueError as error:
        raise _damaged(path, f"not valid JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise _damaged(path, "not a JSON object")
    cursors, starts, runs = (
        loaded.get("cursors", {}),
        loaded.get("starts", {}),
        loaded.get("runs", []),
    )
    if not isinstance(runs, list):
        raise _damaged(path, "'runs' is not a list")
    for name, table in (("cursors", cursors), ("starts", starts)):
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            raise _damaged(path, f"{name!r} is not a table of tables")
    for streams in cursors.values():
        for repos in streams.values():
            if not isinstance(repos, dict) or not all(
                isinstance(entry, dict) and isinstance(entry.get("cursor"), str | None)
                for entry in repos.values()
            ):
                raise _damaged(path, "a cursor entry is not the shape deliverypulse writes")
    for repos in starts.values():
        if not all(isinstance(entry, dict) for entry in repos.values()):
            raise _damaged(path, "a start entry is not the shape deliverypulse writes")
    return loaded


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
