"""Where a dataset lives: a local folder, or a folder on object storage (``s3://bucket/prefix``
or any fsspec URL such as ``memory://data`` or ``gs://bucket/prefix``), read through pyarrow.

A :class:`Location` is the dataset root. Local folders keep their own code paths in the store
(temp file, fsync, rename; ``flock``), so nothing changes for them. Object stores have neither
rename nor ``flock``; what they do have is a whole-object PUT that a reader sees entirely or not
at all, so remote writes put each object directly under its final key (:meth:`write_bytes`).

``s3://`` uses pyarrow's own S3 filesystem. Credentials come only from the environment (or the
AWS SDK's usual chain: ``~/.aws``, instance roles), never from the URL or the config; their
values are registered for redaction so no message can show them. ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` (or the config's ``[output] endpoint_url``) points it at MinIO, moto or
another S3-compatible store; ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` name the region. Every
other scheme goes through fsspec (an optional dependency) wrapped by
``pyarrow.fs.PyFileSystem(FSSpecHandler(...))``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from deliverypulse.errors import ConfigError, StorageError
from deliverypulse.redaction import read_token, redact

T = TypeVar("T")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: Environment variables that may hold AWS credentials: read only to mask them in messages.
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
#: Seconds to wait for a connection and for an answer; an unreachable endpoint fails quickly.
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 60.0
S3_ATTEMPTS = 3

#: What an object store's error text means, in words a user can act on (first match wins).
_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("NO_SUCH_BUCKET", "NoSuchBucket", "not found. To create buckets"),
        "the bucket does not exist",
    ),
    (
        (
            "ACCESS_DENIED",
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "INVALID_ACCESS_KEY_ID",
            "SIGNATURE_DOES_NOT_MATCH",
            "HTTP response code: 403",
            "No response body. (HTTP 403",
        ),
        "access denied: check the credentials in the environment (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY) and the bucket's permissions",
    ),
    (
        ("NETWORK_CONNECTION", "Could not connect", "Could not resolve", "Connection refused"),
        "the storage endpoint cannot be reached (check AWS_ENDPOINT_URL or [output] "
        "endpoint_url, and the network)",
    ),
)


def is_url(value: object) -> bool:
    """Whether ``value`` names a dataset on a remote filesystem (``file://`` is a local path)."""
    if not isinstance(value, str):
        return False
    match = _SCHEME.match(value)
    return match is not None and match.group(1).lower() != "file"


@dataclass(frozen=True)
class Location:
    """A dataset root: ``local`` is set for a local folder, else ``filesystem`` and ``base``
    (the root's path inside it) name a remote one. ``url`` is what messages show: the folder or
    the URL as given, never a credential."""

    url: str
    filesystem: pafs.FileSystem = field(compare=False)
    base: str
    local: Path | None = None

    @property
    def is_local(self) -> bool:
        return self.local is not None

    def key(self, *parts: str) -> str:
        """The filesystem path of ``parts`` under the root."""
        return "/".join([self.base.rstrip("/"), *parts]) if self.base else "/".join(parts)

    def show(self, *parts: str) -> str:
        """``parts`` under the root as a user reads it (a local path or the full URL)."""
        if self.local is not None:
            return str(self.local.joinpath(*parts))
        return "/".join([self.url.rstrip("/"), *parts])

    def path(self, *parts: str) -> Path:
        """``parts`` under a local root (only for local locations)."""
        if self.local is None:
            raise ValueError(f"{self.url} is not a local folder")
        return self.local.joinpath(*parts)

    def __str__(self) -> str:
        return self.url

    # -- remote operations: each wraps the store's errors into one line naming the URL --------

    def guarded(self, doing: str, parts: tuple[str, ...], call: Callable[[], T]) -> T:
        """Run ``call``; an I/O error becomes a :class:`StorageError` naming what and where."""
        try:
            return call()
        except FileNotFoundError:
            raise
        except OSError as error:
            raise StorageError(f"cannot {doing} {self.show(*parts)}: {explain(error)}") from None

    def kind(self, *parts: str) -> pafs.FileType:
        return self.guarded(
            "look up", parts, lambda: self.filesystem.get_file_info(self.key(*parts)).type
        )

    def exists(self) -> bool:
        """Whether there is a dataset folder here (on object storage: any object under it)."""
        if self.local is not None:
            return self.local.is_dir()
        return self.kind() == pafs.FileType.Directory or bool(self.files())

    def bucket_missing(self) -> bool:
        """Whether the root is on S3 in a bucket that does not exist."""
        if not isinstance(self.filesystem, pafs.S3FileSystem):
            return False
        bucket = self.base.split("/", 1)[0]
        info = self.guarded("look up", (), lambda: self.filesystem.get_file_info(bucket))
        return bool(info.type == pafs.FileType.NotFound)

    def read_bytes(self, *parts: str) -> bytes | None:
        """The object's bytes, or ``None`` when there is none."""

        def read() -> bytes | None:
            try:
                with self.filesystem.open_input_stream(self.key(*parts)) as stream:
                    return bytes(stream.read())
            except FileNotFoundError:
                return None

        return self.guarded("read", parts, read)

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Put ``data`` under its final key in one go: an object store shows the whole object
        or the old one, never part of it, so no temporary key and no rename is needed."""

        def write() -> None:
            if self.local is not None and len(parts) > 1:  # a folder has to exist first
                self.path(*parts).parent.mkdir(parents=True, exist_ok=True)
            with self.filesystem.open_output_stream(self.key(*parts)) as stream:
                stream.write(data)

        self.guarded("write", parts, write)

    def delete(self, *parts: str) -> None:
        def delete() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.filesystem.delete_file(self.key(*parts))

        self.guarded("delete", parts, delete)

    def move(self, source: tuple[str, ...], target: tuple[str, ...]) -> None:
        """Copy then delete (an object store has no rename)."""

        def move() -> None:
            self.filesystem.copy_file(self.key(*source), self.key(*target))
            self.filesystem.delete_file(self.key(*source))

        self.guarded("move", source, move)

    def files(self, *parts: str) -> list[str]:
        """Every file under ``parts`` (recursively), as paths relative to it; one listing."""
        prefix = self.key(*parts).rstrip("/") + "/"

        def listing() -> list[str]:
            selector = pafs.FileSelector(self.key(*parts), recursive=True, allow_not_found=True)
            infos = self.filesystem.get_file_info(selector)
            return sorted(
                info.path.removeprefix(prefix).lstrip("/")
                for info in infos
                if info.type == pafs.FileType.File
            )

        return self.guarded("list", parts, listing)

    def read_parquet(self, *parts: str, filters: Any = None) -> pa.Table | None:
        """The Parquet file's table (only rows ``filters`` keeps), or ``None`` when there is no
        such file."""
        data = self.read_bytes(*parts)
        return None if data is None else pq.read_table(pa.BufferReader(data), filters=filters)

    def parquet_rows(self, *parts: str) -> int:
        def rows() -> int:
            try:
                with self.filesystem.open_input_file(self.key(*parts)) as handle:
                    return int(pq.ParquetFile(handle).metadata.num_rows)
            except FileNotFoundError:
                return 0

        return self.guarded("read", parts, rows)

    def check_writable(self) -> None:
        """Make sure the root can be written (the bucket exists, the credentials may write),
        raising a :class:`StorageError` naming the URL and the reason if not."""
        self.guarded("use", (), lambda: self.filesystem.create_dir(self.key(), recursive=True))
        probe = ("_deliverypulse", "probe")
        self.write_bytes(b"deliverypulse can write here\n", *probe)
        self.delete(*probe)


def explain(error: BaseException) -> str:
    """The reason behind a filesystem error, short and without credentials."""
    text = str(error)
    for needles, reason in _REASONS:
        if any(needle in text for needle in needles):
            return reason
    first = text.split(" (Request ID", 1)[0].strip()
    return redact(first) or type(error).__name__


def resolve(root: Path | str | Location, *, endpoint_url: str | None = None) -> Location:
    """The :class:`Location` of ``root``: a local path (``str`` or ``Path``; ``file://``
    URLs too) or a URL. A malformed or unsupported URL is a :class:`ConfigError`."""
    if isinstance(root, Location):
        return root
    if not is_url(root):
        text = str(root)
        local = Path(text[len("file://") :] if text.lower().startswith("file://") else text)
        return Location(
            url=str(local), filesystem=pafs.LocalFileSystem(), base=str(local), local=local
        )
    url = str(root)
    scheme, parts = check_url(url)
    if scheme in ("s3", "s3a"):
        return _s3_location(url, parts.netloc, parts.path, endpoint_url)
    return _fsspec_location(url, scheme)


def check_url(url: str) -> tuple[str, SplitResult]:
    """The scheme and parts of a dataset URL, checked without touching the network: no
    credentials in it, a bucket for ``s3://``, a filesystem fsspec knows for the others."""
    scheme = url.split("://", 1)[0].lower()
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ConfigError(
            f"{scheme}://…@{parts.hostname or ''}: credentials do not belong in the dataset URL; "
            "set them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) instead"
        )
    if scheme in ("s3", "s3a"):
        if not parts.netloc:
            raise ConfigError(f"{url}: no bucket named; expected s3://BUCKET/PREFIX")
        if parts.query:
            raise ConfigError(
                f"{url}: options do not go in the dataset URL; set AWS_ENDPOINT_URL / "
                "AWS_REGION in the environment or endpoint_url under [output]"
            )
        return scheme, parts
    try:
        from fsspec import get_filesystem_class
    except ImportError:
        raise ConfigError(
            f"{url}: {scheme}:// datasets need fsspec (pip install 'deliverypulse[distributed]')"
        ) from None
    try:
        get_filesystem_class(scheme)
    except (ImportError, ValueError) as error:
        reason = redact(str(error)).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"{url}: no filesystem for {scheme}:// ({reason})") from None
    return scheme, parts


def _s3_location(url: str, bucket: str, path: str, endpoint_url: str | None) -> Location:
    for name in CREDENTIAL_VARIABLES:
        read_token(name)  # never used here: only remembered so that no message can show it
    endpoint = endpoint_url or next(
        (os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), None
    )
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    options: dict[str, object] = {}
    if endpoint:
        where = urlsplit(endpoint)
        if where.scheme not in ("http", "https") or not where.netloc:
            raise ConfigError(
                f"endpoint {endpoint!r} for {url} is not an http(s) URL, e.g. http://127.0.0.1:9000"
            )
        options.update(endpoint_override=where.netloc, scheme=where.scheme)
        region = region or "us-east-1"
    elif not region:
        try:
            region = pafs.resolve_s3_region(bucket)
        except (OSError, ValueError):
            region = None  # pyarrow's default; a wrong region fails later with a clear reason
    filesystem = pafs.S3FileSystem(
        region=region,
        connect_timeout=CONNECT_TIMEOUT,
        request_timeout=REQUEST_TIMEOUT,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS),
        allow_bucket_creation=False,
        allow_bucket_deletion=False,
        allow_delayed_open=True,  # a small object is one PutObject at close, not a multipart
        **options,
    )
    base = "/".join(part for part in [bucket, path.strip("/")] if part)
    return Location(url=url.rstrip("/"), filesystem=filesystem, base=base)


def _fsspec_location(url: str, scheme: str) -> Location:
    from fsspec.core import url_to_fs  # check_url made sure it is there

    try:
        filesystem, path = url_to_fs(url)
    except (ImportError, ValueError) as error:
        raise ConfigError(
            f"{url}: no filesystem for {scheme}:// ({redact(str(error)).splitlines()[0]})"
        ) from None
    handler = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    return Location(url=url.rstrip("/"), filesystem=handler, base=str(path).rstrip("/"))


__all__ = ["Location", "check_url", "explain", "is_url", "resolve"]
