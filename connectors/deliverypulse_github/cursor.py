"""Resumable, incremental cursors: a JSON value per stream and repo, stored by the core.

GitHub lists pull requests, deployments, runs and releases newest first. A walk reads pages
until it reaches what the previous run already saw (the ``since`` watermark), so a nightly rerun
with nothing new reads one page. A walk cut short (rate limit, crash) saves where it stopped
(``after``) and the newest time it saw (``high``); the next run finishes the walk first and
only then moves the watermark, so nothing between the two is skipped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from deliverypulse.errors import DataError


@dataclass(frozen=True)
class WalkCursor:
    """Where an incremental, newest-first walk stands.

    since: objects older than this were collected by an earlier, complete walk.
    high: the newest time seen by the walk in progress (becomes ``since`` when it completes).
    after: the page cursor (GraphQL endCursor) to resume an interrupted walk from.
    etag: the first page's ETag, for a conditional request next time (REST only).
    extra: stream-specific state (say, environments' protection rules and their ETag).
    """

    since: str | None = None
    high: str | None = None
    after: str | None = None
    etag: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> WalkCursor:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
        except ValueError:
            # A cursor from another version or a hand edit: start over rather than fail.
            return cls()
        if not isinstance(raw, dict):
            return cls()
        known = {k: raw.get(k) for k in ("since", "high", "after", "etag")}
        return cls(**known, extra=dict(raw.get("extra") or {}))

    def dump(self) -> str:
        values = {k: v for k, v in asdict(self).items() if v not in (None, {})}
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def advance(self, seen: str | None) -> WalkCursor:
        """Note a page's newest time within an unfinished walk."""
        return replace(self, high=latest(self.high, seen))

    def complete(self, watermark: str | None = None) -> WalkCursor:
        """The walk reached the old watermark: its newest time becomes the new one."""
        new_since = watermark or latest(self.since, self.high)
        return replace(self, since=new_since, high=None, after=None)


def latest(*values: str | None) -> str | None:
    """The latest of some ISO-8601 UTC times (None ignored); GitHub's all compare as text
    once normalised, but parse to be safe with offsets."""
    present = [v for v in values if v]
    return max(present, key=parse_time) if present else None


def earliest(*values: str | None) -> str | None:
    present = [v for v in values if v]
    return min(present, key=parse_time) if present else None


def parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"not an ISO-8601 time: {value!r}", table="cursor") from None


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def shift(value: str, *, days: float) -> str:
    return iso(parse_time(value) + timedelta(days=days))
