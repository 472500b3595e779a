"""Repo buckets: how many part files a source's rows are spread over, and which repo goes where.

A dataset made with ``buckets`` > 1 keeps ``<table>/source=<name>/part-<k>.parquet`` for
``k`` in ``range(buckets)``, and a repo's rows and cursors always land in bucket
``bucket_of(repo, buckets)``. That lets collection fan a source's repos out to several workers
that each write only their own bucket's files, so no two ever write the same file or object.

The count is fixed when the dataset is created and kept in ``_deliverypulse/layout.json``; a
dataset without that file has one bucket: the original layout (``part-0.parquet`` and one
``state.json``), which nothing here changes.
"""

from __future__ import annotations

import hashlib
import json

from deliverypulse.errors import ConfigError, StorageError
from deliverypulse.store.location import Location

LAYOUT_PARTS = ("_deliverypulse", "layout.json")
#: More buckets than this is more files than any worker pool needs.
MAX_BUCKETS = 1024


def bucket_of(repo: str, buckets: int) -> int:
    """The bucket of ``repo``: a stable hash of its lower-cased name (the same in every
    process and Python version, unlike ``hash``), modulo ``buckets``."""
    if buckets <= 1:
        return 0
    digest = hashlib.blake2b(repo.lower().encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def part_name(bucket: int) -> str:
    return f"part-{bucket}.parquet"


def read_buckets(location: Location) -> int:
    """The dataset's bucket count: 1 when it records none (every dataset made before buckets)."""
    text = location.read_bytes(*LAYOUT_PARTS)
    if text is None:
        return 1
    try:
        buckets = json.loads(text.decode("utf-8"))["buckets"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        buckets = None
    if not isinstance(buckets, int) or not 1 <= buckets <= MAX_BUCKETS:
        raise StorageError(
            f"{location.show(*LAYOUT_PARTS)} is damaged: it should say how many repo buckets "
            'the dataset has, as {"buckets": N}; restore it (the part-<k>.parquet files under '
            "each source= folder show N)"
        )
    return buckets


def settle_buckets(location: Location, wanted: int | None, *, fresh: bool) -> int:
    """The bucket count to collect with: the recorded one, or ``wanted`` for a ``fresh`` dataset
    (recorded then, when more than one). Asking an existing dataset for another count is a
    :class:`ConfigError`: its files and cursors are already placed by the recorded count."""
    recorded = read_buckets(location)
    if wanted is None or wanted == recorded:
        return recorded
    if not 1 <= wanted <= MAX_BUCKETS:
        raise ConfigError(f"buckets must be between 1 and {MAX_BUCKETS}, got {wanted}")
    if not fresh:
        raise ConfigError(
            f"the dataset at {location} has {recorded} repo bucket"
            f"{'s' if recorded != 1 else ''}, fixed when it was created; collect into a new "
            f"folder to use {wanted}, or leave buckets out"
        )
    if wanted > 1:
        text = json.dumps({"buckets": wanted}) + "\n"
        location.write_bytes(text.encode("utf-8"), *LAYOUT_PARTS)
    return wanted
