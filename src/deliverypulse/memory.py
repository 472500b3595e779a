"""Keep freed memory for reuse instead of handing it back to the kernel (glibc only).

Linking and metrics over millions of rows allocate and free arrays of hundreds of megabytes
many times. glibc's defaults give each large array its own ``mmap`` and return it on free, so
the next array of that size pays a page fault per 4 KiB page again: on the full benchmark
(10 million commits) that was about a third of the run's CPU time, spent in the kernel. With
these settings freed arrays go back to the heap and are reused.

The cost: the process keeps its high-water mark of memory until it exits, which suits a
command that runs one job and ends. So the command line (``deliverypulse ...``) turns it on;
the library never does it behind a notebook's back — call :func:`reuse_freed_memory` yourself
before heavy work if you want the same.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_LARGEST = 2**31 - 1  # mallopt takes an int


def reuse_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory (no trimming, no per-array ``mmap``).

    Returns whether it applied: false off Linux or without glibc (musl, macOS, Windows),
    where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = all(
        mallopt(parameter, value) == 1
        for parameter, value in (
            (_M_MMAP_THRESHOLD, _LARGEST),
            (_M_TRIM_THRESHOLD, _LARGEST),
            (_M_TOP_PAD, 64 << 20),
        )
    )
    log.debug("allocator keeps freed memory: %s", applied)
    return applied


__all__ = ["reuse_freed_memory"]
