"""Sync state: one cursor per source, stream and repo, where each source's and repo's collection
started, and a short history of runs.

Saved atomically to ``_deliverypulse/state.json`` under the dataset root. The collect driver
commits a cursor only after the rows it covers are durable in Parquet, so a killed run at worst
fetches a page again; it never skips one. The collection's start is saved in the same write as
the first cursors of a repo: ``since`` when the run had one, else ``None`` (the source's whole
history). A later run with an earlier ``since`` (or none) moves it earlier; a completed full
refresh replaces it.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from deliverypulse.store.files import write_text_atomic

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

    def __init__(self, root: Path) -> None:
        self.path = root / "_deliverypulse" / "state.json"
        self._guard = threading.Lock()
        self._data: dict[str, Any] = {
            "version": STATE_VERSION,
            "cursors": {},
            "starts": {},
            "runs": [],
        }
        if self.path.exists():
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            self._data.update(loaded)

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
        write_text_atomic(self.path, json.dumps(self._data, indent=1, sort_keys=True))


def _earlier(saved: str | None, since: datetime | None) -> str | None:
    """The earlier of a saved start and a run's ``since``; ``None`` (everything) is earliest."""
    if saved is None or since is None:
        return None
    return min(datetime.fromisoformat(saved), since).isoformat()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
