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
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from deliverypulse.errors import StorageError
from deliverypulse.store.files import write_text_atomic
from deliverypulse.store.location import Location, resolve

log = logging.getLogger(__name__)

STATE_PARTS = ("_deliverypulse", "state.json")
STATE_VERSION = 1
MAX_RUNS_KEPT = 50
#: The repo name under which a source's own start is kept (a source's start covers the rows of
#: repos it collected under other names, such as an incident service mapped to a repo).
SOURCE_START = ""


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
    """Cursors and run history of one dataset. Thread-safe; every change is saved at once."""

    def __init__(self, root: Path | str | Location, *, set_aside_damaged: bool = False) -> None:
        """Read the state of the dataset at ``root``.

        A damaged file (truncated, empty, not the shape we write) is a :class:`StorageError`
        that says what to do; with ``set_aside_damaged`` (a full refresh, which needs no
        cursor) it is renamed ``state.json.damaged`` and the run starts from an empty state.
        """
        self.location = resolve(root)
        #: The state file: a local path, or its URL on object storage.
        self.path: Path | str = (
            self.location.path(*STATE_PARTS)
            if self.location.local is not None
            else self.location.show(*STATE_PARTS)
        )
        self._guard = threading.Lock()
        self._data: dict[str, Any] = {
            "version": STATE_VERSION,
            "cursors": {},
            "starts": {},
            "runs": [],
        }
        path, text = self.path, b""
        if isinstance(path, Path):
            if not path.exists():
                return
        else:
            found = self.location.read_bytes(*STATE_PARTS)
            if found is None:
                return
            text = found
        try:
            self._data.update(_read(path) if isinstance(path, Path) else _parse(text, path))
        except StorageError:
            if not set_aside_damaged:
                raise
            self._set_aside()

    def _set_aside(self) -> None:
        if isinstance(self.path, Path):
            damaged: Path | str = self.path.with_name(self.path.name + ".damaged")
            self.path.replace(damaged)
        else:
            target = (STATE_PARTS[0], STATE_PARTS[1] + ".damaged")
            self.location.move(STATE_PARTS, target)
            damaged = self.location.show(*target)
        log.warning("%s was damaged; set aside as %s, starting afresh", self.path, damaged)

    def cursor(self, source: str, stream: str, repo: str) -> str | None:
        entry = self._data["cursors"].get(source, {}).get(stream, {}).get(repo)
        return None if entry is None else entry.get("cursor")

    def cursors(self) -> list[dict[str, Any]]:
        """Every cursor as a flat row: source, stream, repo, cursor, saved_at."""
        rows = []
        for source, streams in sorted(self._data["cursors"].items()):
            for stream, repos in sorted(streams.items()):
                for repo, entry in sorted(repos.items()):
                    rows.append({"source": source, "stream": stream, "repo": repo, **entry})
        return rows

    def set_cursor(self, source: str, stream: str, repo: str, cursor: str) -> None:
        with self._guard:
            streams = self._data["cursors"].setdefault(source, {})
            streams.setdefault(stream, {})[repo] = {
                "cursor": cursor,
                "saved_at": _now(),
            }
            self._save()

    def set_cursors(
        self, cursors: list[tuple[str, str, str, str]], starts: list[Start] | None = None
    ) -> None:
        """Save several (source, stream, repo, cursor) at once, with the collection starts they
        imply, in one atomic write."""
        with self._guard:
            saved_at = _now()
            for source, stream, repo, cursor in cursors:
                streams = self._data["cursors"].setdefault(source, {})
                streams.setdefault(stream, {})[repo] = {"cursor": cursor, "saved_at": saved_at}
            self._merge_starts(starts or [], saved_at)
            self._save()

    def set_starts(self, starts: list[Start]) -> None:
        """Record collection starts on their own (a completed full refresh), atomically."""
        if not starts:
            return
        with self._guard:
            self._merge_starts(starts, _now())
            self._save()

    def starts(self) -> list[dict[str, Any]]:
        """Every recorded start as a row: source, repo (``""`` for the source's own), since (an
        ISO time, or ``None`` for the whole history) and first_run_at."""
        rows = []
        for source, repos in sorted(self._data.get("starts", {}).items()):
            for repo, entry in sorted(repos.items()):
                rows.append({"source": source, "repo": repo, **entry})
        return rows

    def _merge_starts(self, starts: list[Start], saved_at: str) -> None:
        table = self._data.setdefault("starts", {})
        for start in starts:
            repos = table.setdefault(start.source, {})
            since = None if start.since is None else start.since.isoformat()
            old = repos.get(start.repo)
            if old is None:
                repos[start.repo] = {"since": since, "first_run_at": saved_at}
            elif start.reset:
                repos[start.repo] = {**old, "since": since}
            else:
                repos[start.repo] = {**old, "since": _earlier(old.get("since"), start.since)}

    def clear(self, source: str) -> None:
        with self._guard:
            self._data["cursors"].pop(source, None)
            self._data.get("starts", {}).pop(source, None)
            self._save()

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self._data["runs"])

    def record_run(self, run: dict[str, Any]) -> None:
        with self._guard:
            self._data["runs"] = [*self._data["runs"], run][-MAX_RUNS_KEPT:]
            self._save()

    def _save(self) -> None:
        text = json.dumps(self._data, indent=1, sort_keys=True)
        if not isinstance(self.path, Path):
            self.location.write_bytes(text.encode("utf-8"), *STATE_PARTS)
            return
        try:
            write_text_atomic(self.path, text)
        except OSError as error:
            raise StorageError(
                f"cannot write {self.path}: {error.strerror or error}; free space or fix the "
                "folder's permissions and rerun (rows already stored are kept; the pages they "
                "came from are read again)"
            ) from None


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
