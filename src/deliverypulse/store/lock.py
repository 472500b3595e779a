"""One writer per dataset: an advisory ``flock`` on ``_deliverypulse/lock``.

The operating system drops the lock when the process dies, even by SIGKILL, so a killed run
never leaves the dataset locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from deliverypulse.errors import LockError


class DatasetLock:
    """Context manager that holds the dataset's write lock, waiting up to ``timeout`` s."""

    def __init__(self, root: Path, *, timeout: float = 0.0) -> None:
        self.path = root / "_deliverypulse" / "lock"
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> DatasetLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            what = "is a folder" if self.path.is_dir() else (error.strerror or str(error))
            raise LockError(
                f"cannot use the dataset's lock file {self.path}: {what}; remove it (it holds "
                "no data: deliverypulse makes it again) or fix the folder's permissions"
            ) from None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockError(
                        f"another deliverypulse run{holder} is writing {self.path.parent.parent}; "
                        "try again when it has finished (or pass --wait SECONDS)"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.write(fd, json.dumps(info).encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f" (pid {info['pid']}, since {info['since']})"
    except (OSError, ValueError, KeyError):
        return ""
