"""Atomic file writes: a temporary file in the same directory, fsync, then rename.

A reader (or a run killed halfway) sees either the old file or the new one, never a torn one.
Temporary names start with a dot, which pyarrow, DuckDB and Polars skip when they list a dataset.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)`` then move the temp file onto ``path`` durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        write(temp)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()
    _fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    def write(temp: Path) -> None:
        temp.write_text(text, encoding="utf-8")

    write_atomic(path, write)


def remove_stale_temp_files(root: Path) -> int:
    """Delete temp files a killed run left behind; call only while holding the lock."""
    removed = 0
    if not root.exists():
        return 0
    for temp in root.rglob(f"{TEMP_PREFIX}*"):
        temp.unlink(missing_ok=True)
        removed += 1
    return removed


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
