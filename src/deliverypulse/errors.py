"""The exception tree of deliverypulse: the exception type is the retry decision.

    DeliveryPulseError
    ├── ConfigError                 bad config file, key or value (names file, source, key)
    │   └── UnknownConnectorError   a ``type`` no installed connector provides
    ├── OptionError                 a library option with a value that cannot work (ValueError)
    │   └── AnalysisError           an analysis option (bins, thresholds)
    ├── DataError                   a record that does not fit its table's schema
    ├── LockError                   another run is writing the dataset (or the lock is unusable)
    ├── StorageError                a dataset file that cannot be read or written (says what to do)
    ├── CollectError                one or more sources failed during a collect run
    └── APIError                    a provider answered badly (status, URL, request id)
        ├── RetryableAPIError       worth trying again later (5xx, dropped connection)
        │   └── RateLimitError      carries ``reset_at``
        └── FatalAPIError           trying again will not help
            ├── AuthError           401/403: names the source and the token variable
            ├── NotFoundError       404: names the repo or project
            └── GraphQLAPIError     a GraphQL answer with errors and no usable data

A connector's own errors subclass one of these (the git connector's ``GitError`` is a
``DeliveryPulseError``), so ``except dp.DeliveryPulseError`` catches everything raised on purpose.

Every message passes through :func:`deliverypulse.redaction.redact`, so a token that leaks
into an error text (say, inside a URL) is never shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from deliverypulse.redaction import redact


class DeliveryPulseError(Exception):
    """Root of every error deliverypulse raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    def __str__(self) -> str:
        return redact(super().__str__())


class ConfigError(DeliveryPulseError):
    """The configuration is wrong; the message names the file, source and key."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        source: str | None = None,
        key: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.source = source
        self.key = key
        self.detail = message  # what was wrong, without where
        where = []
        if self.file:
            where.append(self.file)
        if source:
            where.append(f"source {source!r}")
        if key:
            where.append(f"key {key!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnknownConnectorError(ConfigError):
    """A source names a connector type that is not installed."""


class OptionError(DeliveryPulseError, ValueError):
    """A library option has a value we do not know (a period, signal, benchmark year...)."""


class AnalysisError(OptionError):
    """An analysis option has a value that cannot work (bins, thresholds)."""


class DataError(DeliveryPulseError):
    """A record does not fit its table: names the table, column, row and value."""

    def __init__(self, message: str, *, table: str, column: str | None = None) -> None:
        self.table = table
        self.column = column
        super().__init__(message)


class LockError(DeliveryPulseError):
    """Another run holds the dataset's lock."""


class StorageError(DeliveryPulseError):
    """A file of the dataset cannot be read or written: a damaged state file, a full disk, a
    folder without write permission. The message names the file and what to do."""


class CollectError(DeliveryPulseError):
    """Some sources failed; the others' rows were stored. ``summary`` has the details."""

    def __init__(self, message: str, summary: Any = None) -> None:
        self.summary = summary
        super().__init__(message)


class APIError(DeliveryPulseError):
    """A provider API call failed. Carries what a human needs to report it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        request_id: str | None = None,
        source: str | None = None,
    ) -> None:
        self.status = status
        self.url = redact(url) if url else None
        self.request_id = request_id
        self.source = source
        details = []
        if status is not None:
            details.append(f"HTTP {status}")
        if self.url:
            details.append(self.url)
        if request_id:
            details.append(f"request id {request_id}")
        prefix = f"source {source!r}: " if source else ""
        suffix = f" ({', '.join(details)})" if details else ""
        super().__init__(f"{prefix}{message}{suffix}")


class RetryableAPIError(APIError):
    """Transient: a server error, a dropped connection, a timeout."""


class RateLimitError(RetryableAPIError):
    """The provider's rate limit is spent until ``reset_at`` (UTC)."""

    def __init__(self, message: str, *, reset_at: datetime | None = None, **kwargs: Any) -> None:
        self.reset_at = reset_at
        if reset_at is not None:
            message = f"{message}; resets at {reset_at.isoformat()}"
        super().__init__(message, **kwargs)


class FatalAPIError(APIError):
    """Permanent: retrying the same request will give the same answer."""


class AuthError(FatalAPIError):
    """Bad or missing credentials, or not enough permission."""


class NotFoundError(FatalAPIError):
    """The repo, project or object does not exist (or the token cannot see it)."""


class GraphQLAPIError(FatalAPIError):
    """A GraphQL query answered with errors (and no usable data)."""

    def __init__(self, message: str, *, errors: Sequence[Mapping[str, Any]] = (), **kw: Any):
        self.errors = list(errors)
        super().__init__(message, **kw)
