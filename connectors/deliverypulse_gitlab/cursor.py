"""Resumable cursors: a JSON ``updated_after`` watermark per stream and project, plus what a
stream needs to carry from one run to the next (environment tiers, pending test reports...).

GitLab's list endpoints are read oldest-update-first (``order_by=updated_at&sort=asc``) from
``updated_after``, so every page's last ``updated_at`` is a safe checkpoint. The query starts a
little before the watermark (GitLab's bound is not documented as inclusive or exclusive, and
equal timestamps can straddle a page break); objects at or before the watermark that the
previous run already stored are skipped by id, so a rerun with nothing new reads one page and
stores nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

#: How far before the watermark a query starts.
OVERLAP = timedelta(seconds=1)


@dataclass(frozen=True)
class Watermark:
    """``updated_at``: everything updated up to here is stored; ``seen``: ids stored whose
    ``updated_at`` equals it; ``extra``: stream-specific state."""

    updated_at: str | None = None
    seen: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> Watermark:
        if not text:
            return cls()
        try:
            raw = json.loads(text)
        except ValueError:
            return cls()  # a cursor from another version or a hand edit: start over
        if not isinstance(raw, dict):
            return cls()
        return cls(
            updated_at=raw.get("updated_after"),
            seen=tuple(str(s) for s in raw.get("seen") or ()),
            extra=dict(raw.get("extra") or {}),
        )

    def dump(self) -> str:
        values: dict[str, Any] = {"updated_after": self.updated_at}
        if self.seen:
            values["seen"] = list(self.seen)
        if self.extra:
            values["extra"] = self.extra
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def query_from(self, since: datetime | None) -> str | None:
        """The ``updated_after`` to send: just before the watermark, or the source's since."""
        if self.updated_at:
            return iso(parse_time(self.updated_at) - OVERLAP)
        return iso(since) if since else None

    def is_new(self, object_id: str, updated_at: str | None) -> bool:
        """False for an object the previous run already stored in this state."""
        if not self.updated_at or not updated_at:
            return True
        mark, when = parse_time(self.updated_at), parse_time(updated_at)
        return when > mark or (when == mark and object_id not in self.seen)

    def advance(self, objects: list[tuple[str, str]]) -> Watermark:
        """The watermark after storing ``objects`` (``(id, updated_at)``, ascending)."""
        state = self
        for object_id, updated_at in objects:
            if not updated_at:
                continue
            if state.updated_at and parse_time(updated_at) == parse_time(state.updated_at):
                state = replace(state, seen=(*state.seen, object_id))
            elif not state.updated_at or parse_time(updated_at) > parse_time(state.updated_at):
                state = replace(state, updated_at=updated_at, seen=(object_id,))
        return state

    def with_extra(self, **values: Any) -> Watermark:
        return replace(self, extra={**self.extra, **values})


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def maybe_time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None
