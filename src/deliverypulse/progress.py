"""Progress reporting, injectable so that the library itself never prints.

The CLI picks :class:`TerminalProgress` on a terminal (one live line on stderr) and
:class:`NullProgress` otherwise (cron gets only the summary lines at the end).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    """Receives events from a collect run."""

    def stream_started(self, source: str, stream: str, repo: str) -> None: ...

    def rows_fetched(self, source: str, stream: str, repo: str, count: int) -> None: ...

    def stream_finished(self, source: str, stream: str, repo: str) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    """Says nothing."""

    def stream_started(self, source: str, stream: str, repo: str) -> None:
        pass

    def rows_fetched(self, source: str, stream: str, repo: str, count: int) -> None:
        pass

    def stream_finished(self, source: str, stream: str, repo: str) -> None:
        pass

    def close(self) -> None:
        pass


class TerminalProgress:
    """One status line, rewritten at most ten times a second."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self._guard = threading.Lock()
        self._rows = 0
        self._current = ""
        self._last_draw = 0.0
        self._started = time.monotonic()

    def stream_started(self, source: str, stream: str, repo: str) -> None:
        with self._guard:
            self._current = f"{source} {stream} {repo}"
            self._draw(force=True)

    def rows_fetched(self, source: str, stream: str, repo: str, count: int) -> None:
        with self._guard:
            self._rows += count
            self._current = f"{source} {stream} {repo}"
            self._draw()

    def stream_finished(self, source: str, stream: str, repo: str) -> None:
        with self._guard:
            self._draw()

    def close(self) -> None:
        with self._guard:
            self.out.write("\r\033[K")
            self.out.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = now - self._started
        line = f"collecting {self._current}: {self._rows:,} rows, {elapsed:.0f}s"
        self.out.write("\r\033[K" + line[:120])
        self.out.flush()
