"""Sync state: one cursor per source, stream and repo, plus a short history of runs.

Saved atomically to ``_deliverypulse/state.json`` under the dataset root. The collect driver
commits a cursor only after the rows it covers are durable in Parquet, so a killed run at worst
fetches a page again; it never skips one.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deliverypulse.store.files import write_text_atomic

STATE_VERSION = 1
MAX_RUNS_KEPT = 50


class SyncState:
    """Cursors and run history of one dataset. Thread-safe; every change is saved at once."""

    def __init__(self, root: Path) -> None:
        self.path = root / "_deliverypulse" / "state.json"
        self._guard = threading.Lock()
        self._data: dict[str, Any] = {"version": STATE_VERSION, "cursors": {}, "runs": []}
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

    def set_cursors(self, cursors: list[tuple[str, str, str, str]]) -> None:
        """Save several (source, stream, repo, cursor) at once, in one atomic write."""
        with self._guard:
            saved_at = _now()
            for source, stream, repo, cursor in cursors:
                streams = self._data["cursors"].setdefault(source, {})
                streams.setdefault(stream, {})[repo] = {"cursor": cursor, "saved_at": saved_at}
            self._save()

    def clear(self, source: str) -> None:
        with self._guard:
            self._data["cursors"].pop(source, None)
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
