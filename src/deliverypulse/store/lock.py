"""One writer per dataset: an advisory ``flock`` on ``_deliverypulse/lock`` for a local folder,
a lease object under the same key on object storage.

Local: the operating system drops the lock when the process dies, even by SIGKILL, so a killed
run never leaves the dataset locked.

Object storage has no ``flock``. The lock is then a small JSON object (owner id, host, pid,
since, expires) that the holder renews while it runs and deletes at the end. pyarrow cannot
send a conditional create (S3's ``If-None-Match: *``), so taking it is best effort: read, write
our own lease when there is none (or the one there has expired), wait a moment and read it back;
whoever's owner id is there holds it. Two runs starting within that moment of each other could
both see their own lease; the contract stays one writer per dataset (one cron job, one
pipeline). A run killed without releasing leaves its lease until it expires (``LEASE_SECONDS``
after its last renewal); the next run then takes it over.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from deliverypulse.errors import LockError, StorageError
from deliverypulse.store.location import Location, resolve

log = logging.getLogger(__name__)

LOCK_PARTS = ("_deliverypulse", "lock")
#: How long a lease holds without renewal; the holder renews it every third of that.
LEASE_SECONDS = 120.0
#: How long to wait after writing a lease before reading it back (another run's write in that
#: moment replaces ours, and then the read shows theirs).
SETTLE_SECONDS = 0.5


class DatasetLock:
    """Context manager that holds the dataset's write lock, waiting up to ``timeout`` s."""

    def __init__(
        self,
        root: Path | str | Location,
        *,
        timeout: float = 0.0,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.location = resolve(root)
        self.timeout = timeout
        self._fd: int | None = None
        self._lease: Lease | None = None
        if self.location.local is not None:
            self.path: Path | str = self.location.path(*LOCK_PARTS)
        else:
            self.path = self.location.show(*LOCK_PARTS)
            self._lease = Lease(self.location, lease_seconds=lease_seconds)

    def __enter__(self) -> DatasetLock:
        if self._lease is not None:
            self._lease.acquire(self.timeout)
            return self
        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            what = "is a folder" if path.is_dir() else (error.strerror or str(error))
            raise LockError(
                f"cannot use the dataset's lock file {path}: {what}; remove it (it holds "
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
                        f"another deliverypulse run{holder} is writing {path.parent.parent}; "
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
        if self._lease is not None:
            self._lease.release()
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Lease:
    """The lock of a dataset on object storage: a lease object renewed by a daemon thread."""

    def __init__(self, location: Location, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self.location = location
        self.lease_seconds = lease_seconds
        self.owner = uuid.uuid4().hex
        self.since = _now()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            held = self._holder()
            if held is None or _expired(held):
                if held is not None:
                    log.warning(
                        "taking over the expired lease of another run on %s%s",
                        self.location,
                        _describe(held),
                    )
                self._write()
                time.sleep(SETTLE_SECONDS)
                held = self._holder()
                if held is not None and held.get("owner") == self.owner:
                    break
            if time.monotonic() >= deadline:
                raise LockError(
                    f"another deliverypulse run{_describe(held or {})} is writing "
                    f"{self.location}; try again when it has finished (or pass --wait SECONDS); "
                    f"a run that died keeps the lease until it expires, at most "
                    f"{self.lease_seconds:.0f} s after it last renewed it"
                )
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())) or 0.2)
        self._renewer = threading.Thread(
            target=self._renew, name="deliverypulse-lease", daemon=True
        )
        self._renewer.start()

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        try:
            held = self._holder()
            if held is not None and held.get("owner") == self.owner:
                self.location.delete(*LOCK_PARTS)
        except StorageError as error:  # it expires on its own
            log.warning("could not release the lease on %s: %s", self.location, error)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                held = self._holder()
                if held is not None and held.get("owner") != self.owner:
                    log.error(
                        "another run%s took over the lease on %s; this run is no longer the "
                        "only writer",
                        _describe(held),
                        self.location,
                    )
                    return
                self._write()
            except StorageError as error:
                log.warning("could not renew the lease on %s: %s", self.location, error)

    def _write(self) -> None:
        now = datetime.now(UTC)
        info = {
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": self.since,
            "expires": (now + timedelta(seconds=self.lease_seconds)).isoformat(),
        }
        self.location.write_bytes(json.dumps(info).encode(), *LOCK_PARTS)

    def _holder(self) -> dict[str, Any] | None:
        data = self.location.read_bytes(*LOCK_PARTS)
        if data is None:
            return None
        try:
            held = json.loads(data)
        except ValueError:
            return {}  # not ours to read: treated as expired, so the next run takes it over
        return held if isinstance(held, dict) else {}


def _expired(held: dict[str, Any]) -> bool:
    try:
        return datetime.fromisoformat(str(held["expires"])) <= datetime.now(UTC)
    except (KeyError, ValueError, TypeError):
        return True


def _describe(held: dict[str, Any]) -> str:
    try:
        return f" (host {held['host']}, pid {held['pid']}, since {held['since']})"
    except KeyError:
        return ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f" (pid {info['pid']}, since {info['since']})"
    except (OSError, ValueError, KeyError):
        return ""
