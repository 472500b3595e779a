"""Streams, cursors and paginators: what a connector declares, and the values the core provides.

A connector says *what* it reads as a tuple of :class:`Stream` values (name, table, cursor
type, what it reads, what it must come after, and its reader). The core owns the rest: it
loads each stream's typed cursor, runs the streams of one repo in declared order, hands a
reader the values an earlier stream shared with it, stores rows before cursors and injects a
:class:`Runtime` (clock, sleep, transport) instead of module globals.

Paging is a value too. Two walks cover every incremental list we know of:

- :class:`NewestFirst` — lists without a "changed since" filter (GitHub's pull requests,
  deployments, workflow runs) are read newest first and stopped at the previous run's
  watermark (a :class:`WalkCursor`); a walk cut short resumes where it stopped, and only a
  completed walk moves the watermark.
- :class:`UpdatedAfter` — lists with an ``updated_after``-style filter (GitLab, ServiceNow's
  ``sys_updated_on``, PagerDuty's ``since``) are read oldest-update first from a little before
  the watermark (an overlap) and de-duplicated by id (a :class:`Watermark`).

Both cursors can *hold* the watermark back for items that were not finished yet (a running
deployment or workflow run whose status will still change), bounded by a look-back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from deliverypulse.errors import DataError
from deliverypulse.store.coerce import Records

if TYPE_CHECKING:
    from typing import Self

    import httpx


JSONObject = dict[str, Any]


# --- the runtime the collector injects ------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    """What a connector may take from its surroundings, injected by the collector.

    ``clock`` and ``sleep`` let tests run rate-limit waits without waiting; ``transport`` is
    the httpx transport of every httpx client a connector opens (None: the network), so a test
    can route a connector to a local server or an ``httpx.MockTransport``.
    """

    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None


DEFAULT_RUNTIME = Runtime()


# --- cursors ---------------------------------------------------------------------------------


class Cursor(Protocol):
    """A stream's resume point: loaded from and dumped to the text the core stores.

    ``load`` must accept ``None`` (a first run) and any text an older version wrote (start
    over rather than fail).
    """

    @classmethod
    def load(cls, text: str | None) -> Self: ...

    def dump(self) -> str: ...


@dataclass(frozen=True)
class TextCursor:
    """An opaque text cursor (a content digest, a version tag): the connector decides."""

    value: str | None = None

    @classmethod
    def load(cls, text: str | None) -> TextCursor:
        return cls(text or None)

    def dump(self) -> str:
        return self.value or ""


def parse_time(value: str) -> datetime:
    """An ISO-8601 time as an aware datetime; a naive one is UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"not an ISO-8601 time: {value!r}", table="cursor") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def maybe_time(value: Any) -> datetime | None:
    """A time to compute with while building a row, or None when missing or unparseable: the
    raw value still goes into the row, where the core's coercion rejects it with a DataError
    naming the table, column, row and value."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except DataError:
        return None


def seconds_between(start: Any, end: Any) -> float | None:
    """``end - start`` in seconds for two ISO-8601 times; None if either is missing or bad."""
    first, last = maybe_time(start), maybe_time(end)
    return (last - first).total_seconds() if first and last else None


def iso(value: datetime) -> str:
    """A datetime as ISO-8601 UTC text with a ``Z``."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _times(values: tuple[str | None, ...]) -> list[tuple[datetime, str]]:
    """The values that are times, parsed (missing and unparseable ones are left out: a bad
    time never moves a cursor; the row holding it is rejected by coercion, naming it)."""
    parsed = ((maybe_time(v), v) for v in values if v)
    return [(when, text) for when, text in parsed if when is not None]


def latest(*values: str | None) -> str | None:
    """The latest of some ISO-8601 times (missing or unparseable ones ignored)."""
    present = _times(values)
    return max(present, key=lambda pair: pair[0])[1] if present else None


def earliest(*values: str | None) -> str | None:
    """The earliest of some ISO-8601 times (missing or unparseable ones ignored)."""
    present = _times(values)
    return min(present, key=lambda pair: pair[0])[1] if present else None


def shift(value: str, *, days: float = 0, seconds: float = 0) -> str:
    return iso(parse_time(value) + timedelta(days=days, seconds=seconds))


def held_back(watermark: str | None, open_since: str | None, lookback: timedelta) -> str | None:
    """The watermark, held back to the oldest unfinished item — but never more than
    ``lookback`` before it, so an abandoned item cannot pin the walk forever."""
    if not (watermark and open_since):
        return watermark
    floor = iso(parse_time(watermark) - lookback)
    return earliest(watermark, latest(open_since, floor))


def _load_json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        return {}  # a cursor from another version or a hand edit: start over
    return raw if isinstance(raw, dict) else {}


@dataclass(frozen=True)
class WalkCursor:
    """Where an incremental, newest-first walk stands.

    since: items older than this were collected by an earlier, complete walk.
    high: the newest time seen by the walk in progress (becomes ``since`` when it completes).
    after: the page token (GraphQL endCursor, next URL) to resume an interrupted walk from.
    etag: the first page's ETag, for a conditional request next time.
    open: the oldest unfinished item seen (see :meth:`hold`).
    extra: stream-specific state.
    """

    since: str | None = None
    high: str | None = None
    after: str | None = None
    etag: str | None = None
    open: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> WalkCursor:
        raw = _load_json(text)
        known = {k: raw.get(k) for k in ("since", "high", "after", "etag", "open")}
        return cls(**known, extra=dict(raw.get("extra") or {}))

    def dump(self) -> str:
        values = {k: v for k, v in asdict(self).items() if v not in (None, {})}
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def advance(self, seen: str | None) -> WalkCursor:
        """Note a page's newest time within an unfinished walk."""
        return replace(self, high=latest(self.high, seen))

    def complete(self) -> WalkCursor:
        """The walk reached the old watermark: its newest time becomes the new one."""
        return replace(self, since=latest(self.since, self.high), high=None, after=None)

    def note_open(self, *created: str | None) -> WalkCursor:
        """Remember the oldest of some unfinished items' times."""
        return replace(self, open=earliest(self.open, *created))

    def hold(self, lookback: timedelta) -> WalkCursor:
        """After a completed walk: keep re-reading unfinished items (within ``lookback``)."""
        return replace(self, since=held_back(self.since, self.open, lookback), open=None)

    def floor(self, since: datetime | None) -> str | None:
        """The oldest time still worth reading: the watermark, or the source's ``since``."""
        return latest(self.since, iso(since) if since else None)

    def clamped(self, ceiling: str) -> WalkCursor:
        """No time later than ``ceiling`` (see :func:`clamp_cursor`)."""
        return replace(
            self,
            since=earliest(self.since, ceiling) if self.since else None,
            high=earliest(self.high, ceiling) if self.high else None,
            open=earliest(self.open, ceiling) if self.open else None,
        )


@dataclass(frozen=True)
class Watermark:
    """Where an ``updated_after`` walk stands.

    updated_at: everything updated up to here is stored. seen: ids stored whose update time
    equals it (so an inclusive bound re-reads them without storing them twice). open: the
    oldest unfinished item (see :meth:`hold`). extra: stream-specific state.
    """

    updated_at: str | None = None
    seen: tuple[str, ...] = ()
    open: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> Watermark:
        raw = _load_json(text)
        return cls(
            updated_at=raw.get("updated_after"),
            seen=tuple(str(s) for s in raw.get("seen") or ()),
            open=raw.get("open"),
            extra=dict(raw.get("extra") or {}),
        )

    def dump(self) -> str:
        values: dict[str, Any] = {"updated_after": self.updated_at}
        if self.seen:
            values["seen"] = list(self.seen)
        if self.open:
            values["open"] = self.open
        if self.extra:
            values["extra"] = self.extra
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def query_from(self, since: datetime | None, overlap: timedelta) -> str | None:
        """The lower bound to send: ``overlap`` before the watermark, or the source's since."""
        if self.updated_at:
            return iso(parse_time(self.updated_at) - overlap)
        return iso(since) if since else None

    def is_new(self, object_id: str, updated_at: str | None) -> bool:
        """False for an object the previous run already stored in this state."""
        when = maybe_time(updated_at)
        if not self.updated_at or when is None:
            return True
        mark = parse_time(self.updated_at)
        return when > mark or (when == mark and object_id not in self.seen)

    def advance(self, objects: Iterable[tuple[str, str | None]]) -> Watermark:
        """The watermark after storing ``objects`` (``(id, updated_at)``, any order)."""
        state = self
        for object_id, updated_at in objects:
            when = maybe_time(updated_at)
            if when is None or updated_at is None:
                continue
            mark = parse_time(state.updated_at) if state.updated_at else None
            if mark is not None and when == mark:
                if object_id not in state.seen:
                    state = replace(state, seen=(*state.seen, object_id))
            elif mark is None or when > mark:
                state = replace(state, updated_at=updated_at, seen=(object_id,))
        return state

    def note_open(self, *updated: str | None) -> Watermark:
        return replace(self, open=earliest(self.open, *updated))

    def hold(self, lookback: timedelta) -> Watermark:
        """Keep re-reading unfinished items (within ``lookback``) on the next run."""
        held = held_back(self.updated_at, self.open, lookback)
        if held == self.updated_at:
            return replace(self, open=None)
        return replace(self, updated_at=held, seen=(), open=None)

    def with_extra(self, **values: Any) -> Watermark:
        return replace(self, extra={**self.extra, **values})

    def clamped(self, ceiling: str) -> Watermark:
        """No time later than ``ceiling`` (see :func:`clamp_cursor`)."""
        if self.updated_at and parse_time(self.updated_at) > parse_time(ceiling):
            return replace(self, updated_at=ceiling, seen=())
        return self


#: How far past the run's own start a cursor may move (clocks of servers and runners differ).
CLOCK_SKEW = timedelta(minutes=10)


def clamp_cursor(cursor: Any, started: datetime) -> tuple[Any, bool]:
    """``cursor`` with no time later than the run's start plus :data:`CLOCK_SKEW`, and whether
    that changed it.

    A row stamped in the future (a broken clock: a workflow run "finished" in 9999) is stored
    like any other, but a watermark that jumped to it would make every later incremental run
    skip everything. Cursor values that know times (``clamped``) are clamped; text is not.
    """
    clamp = getattr(cursor, "clamped", None)
    if clamp is None:
        return cursor, False
    limited = clamp(iso(started + CLOCK_SKEW))
    return limited, limited != cursor


# --- paginators ------------------------------------------------------------------------------

C = TypeVar("C")


@dataclass(frozen=True)
class RawPage:
    """One page as the provider gave it: its items, the token of the next page (None at the
    end), and for conditional requests the ETag or the fact that nothing changed."""

    items: list[JSONObject]
    next: str | None = None
    etag: str | None = None
    not_modified: bool = False


@dataclass(frozen=True)
class Step(Generic[C]):
    """What a walk yields per page: the items to store, and the cursor that is safe to save
    once they are stored; ``finished`` on the walk's last page."""

    items: list[JSONObject]
    cursor: C
    finished: bool


def _time_getter(time_of: str | Callable[[Mapping[str, Any]], str | None]) -> Any:
    if callable(time_of):
        return time_of

    def get(item: Mapping[str, Any]) -> str | None:
        value = item.get(time_of)
        return str(value) if value else None

    return get


@dataclass(frozen=True)
class NewestFirst:
    """A newest-first list read down to a floor (the watermark, or the source's ``since``).

    ``fetch(after, etag)`` yields :class:`RawPage` values starting at page token ``after``
    (None: the first page), sending ``etag`` as a conditional request on the first page.
    Only a completed walk stores the first page's ETag: a cut-short walk restarts from the top
    next time (its pages are upserted again, never duplicated).

    ``unfinished`` (optional) says which items may still change (a running deployment or
    workflow run): the walk notes their times in the cursor on every page and, once complete,
    holds the watermark back for them by at most ``lookback`` (:meth:`WalkCursor.hold`).
    """

    time_of: str | Callable[[Mapping[str, Any]], str | None]
    unfinished: Callable[[Mapping[str, Any]], bool] | None = None
    lookback: timedelta = timedelta(0)

    def walk(
        self,
        fetch: Callable[[str | None, str | None], Iterable[RawPage]],
        cursor: WalkCursor,
        since: datetime | None = None,
    ) -> Iterator[Step[WalkCursor]]:
        when = _time_getter(self.time_of)
        floor = cursor.floor(since)
        first_etag: str | None = None
        etag = None if cursor.after else cursor.etag
        for number, raw in enumerate(fetch(cursor.after, etag)):
            if raw.not_modified:
                yield Step([], cursor, True)
                return
            if number == 0:
                first_etag = raw.etag
            fresh = [i for i in raw.items if not _older(when(i), floor)]
            cursor = cursor.advance(latest(*(when(i) for i in fresh)))
            if self.unfinished is not None:
                cursor = cursor.note_open(*(when(i) for i in fresh if self.unfinished(i)))
            if len(fresh) < len(raw.items) or not raw.next:
                done = replace(cursor.complete(), etag=first_etag if not cursor.after else None)
                yield Step(fresh, done.hold(self.lookback) if self.unfinished else done, True)
                return
            yield Step(fresh, replace(cursor, after=raw.next, etag=None), False)


def _older(value: str | None, floor: str | None) -> bool:
    when = maybe_time(value)
    return bool(when and floor and when < parse_time(floor))


@dataclass(frozen=True)
class UpdatedAfter:
    """A list read oldest-update first from a little before the watermark.

    ``fetch(updated_after)`` yields lists of items in ascending update order, from the lower
    bound given (None: from the beginning). Items the previous run already stored are skipped
    by id; every page's cursor is a safe checkpoint. ``overlap`` covers bounds that are not
    documented as inclusive and equal times that straddle a page break.
    """

    id_of: str | Callable[[Mapping[str, Any]], str | None] = "id"
    time_of: str | Callable[[Mapping[str, Any]], str | None] = "updated_at"
    overlap: timedelta = timedelta(seconds=1)

    def walk(
        self,
        fetch: Callable[[str | None], Iterable[list[JSONObject]]],
        cursor: Watermark,
        since: datetime | None = None,
    ) -> Iterator[Step[Watermark]]:
        ident, when = _time_getter(self.id_of), _time_getter(self.time_of)
        for items in fetch(cursor.query_from(since, self.overlap)):
            fresh = [i for i in items if cursor.is_new(str(ident(i)), when(i))]
            cursor = cursor.advance((str(ident(i)), when(i)) for i in items)
            yield Step(fresh, cursor, False)
        yield Step([], cursor, True)


# --- declared streams -----------------------------------------------------------------------


@dataclass
class Page:
    """Records read from one page of a provider, and the cursor that is safe once they are stored.

    ``cursor=None`` means "no checkpoint here". ``table`` defaults to the stream being read; a
    connector may also emit rows for another table (say, the commits a pull request query
    returned alongside the pull requests).
    """

    records: Records
    cursor: Any = None  # text, or a cursor value (``dump()`` gives its text); None: no checkpoint
    table: str | None = None

    @property
    def cursor_text(self) -> str | None:
        """The cursor as the text the core stores."""
        if self.cursor is None or isinstance(self.cursor, str):
            return self.cursor
        return str(self.cursor.dump())


Reader = Callable[[Any, "StreamRun"], Iterator[Page]]


@dataclass(frozen=True)
class Stream:
    """One stream a connector can read, declared.

    name: what the config's ``streams`` key and the state call it.
    read: ``read(connector, run)`` yields :class:`Page` values; a
        page's cursor may be a cursor value (the core dumps it) or text.
    table: the table its rows go to (default: ``name``); a page may still name another.
    cursor: its cursor type; the core loads the saved text into one for ``run.cursor``.
    reads: what it reads, in a few words or an endpoint (``deliverypulse connectors`` shows it).
    after: streams of the same repo that must run first (their shared values reach this one).
    option: an option the source must set for the stream to run (an opt-in stream, such as
        ``repo_teams`` with ``teams``); unset, the core skips it and shows no line for it.
    """

    name: str
    read: Reader
    table: str | None = None
    cursor: type[Any] = TextCursor
    reads: str = ""
    after: tuple[str, ...] = ()
    option: str | None = None

    def wanted(self, options: Mapping[str, Any]) -> bool:
        """Whether a source with these options reads this stream (its opt-in option is set)."""
        return self.option is None or options.get(self.option) is not None

    @property
    def table_name(self) -> str:
        return self.table or self.name


@dataclass
class Shared:
    """Values streams of one repo hand to later ones within a run, through the core.

    A stream publishes with :meth:`StreamRun.share`; a later stream that declares it in
    ``after`` reads them with :meth:`StreamRun.shared`. Nothing is kept across runs (what must
    survive a run belongs in the cursor).
    """

    values: dict[tuple[str, str], Any] = field(default_factory=dict)


@dataclass
class StreamRun:
    """One read of one stream for one repo: what the core hands a stream's reader."""

    stream: Stream
    repo: str
    cursor: Any
    runtime: Runtime = DEFAULT_RUNTIME
    since: datetime | None = None
    _shared: Shared = field(default_factory=Shared)

    KEY_SEPARATOR: ClassVar[str] = ":"

    def share(self, key: str, value: Any) -> None:
        """Publish ``value`` under ``key`` for the streams that come after this one."""
        self._shared.values[(self.stream.name, key)] = value

    def shared(self, stream: str, key: str, default: Any = None) -> Any:
        """What ``stream`` published under ``key`` in this run (``default`` if nothing)."""
        if stream not in self.stream.after:
            raise ValueError(
                f"stream {self.stream.name!r} reads {stream!r}'s values but does not declare "
                f"after={(stream,)!r}"
            )
        return self._shared.values.get((stream, key), default)


def ordered(streams: Iterable[Stream], chosen: Iterable[str] | None = None) -> list[Stream]:
    """``streams`` (those named in ``chosen``, if given) with every stream after the ones it
    declares in ``after``; otherwise in declared order."""
    declared = list(streams)
    wanted = {s.name for s in declared} if chosen is None else set(chosen)
    by_name = {s.name: s for s in declared}
    done: list[Stream] = []
    visiting: set[str] = set()

    def visit(stream: Stream) -> None:
        if stream in done:
            return
        if stream.name in visiting:
            raise ValueError(f"streams {stream.name!r} and its 'after' streams form a cycle")
        visiting.add(stream.name)
        for name in stream.after:
            if name in by_name and name in wanted:
                visit(by_name[name])
        visiting.discard(stream.name)
        done.append(stream)

    for stream in declared:
        if stream.name in wanted:
            visit(stream)
    return done


__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_RUNTIME",
    "Cursor",
    "NewestFirst",
    "Page",
    "RawPage",
    "Runtime",
    "Shared",
    "Step",
    "Stream",
    "StreamRun",
    "TextCursor",
    "UpdatedAfter",
    "WalkCursor",
    "Watermark",
    "clamp_cursor",
    "earliest",
    "held_back",
    "iso",
    "latest",
    "maybe_time",
    "ordered",
    "parse_time",
    "seconds_between",
    "shift",
    "utc_now",
]


def _json_object(text: str | None) -> dict[str, Any]:
    """A cursor's JSON object; empty (start over) for nothing, a cursor from another version
    or a hand edit."""
    try:
        raw = json.loads(text) if text else {}
    except ValueError:
        return {}
    return raw if isinstance(raw, dict) else {}


@dataclass(frozen=True)
class Span:
    """Where a walk by creation time stands. Shared: the PagerDuty and Opsgenie connectors
    both read incidents by creation span and keep this same cursor.

    start: the next run reads items created from here (minus the overlap): the end of the
        last complete walk, held back to its oldest open item (within the look-back).
    read_from, until: the creation range the last complete walk read, and when; an item
        created in it and not updated since (before ``until`` less the overlap) is unchanged.
    filters: the query's filters when it was written (other filters: start over).
    """

    start: str | None = None
    read_from: str | None = None
    until: str | None = None
    filters: str | None = None

    @classmethod
    def load(cls, text: str | None) -> Span:
        raw = _json_object(text)
        known = ("start", "read_from", "until", "filters")
        return cls(**{k: str(raw[k]) for k in known if raw.get(k)})

    def dump(self) -> str:
        values = {k: v for k, v in self.__dict__.items() if v}
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def resume(
        self, filters: str | None, since: datetime | None, overlap: timedelta
    ) -> tuple[Span, datetime | None]:
        """The cursor to read with (an empty one when the filters changed: other filters
        select other items) and where to start: the saved start less the overlap, never before
        the source's ``since``; None when neither says (the connector decides)."""
        cursor = self if self.filters == filters else Span()
        start = parse_time(cursor.start) - overlap if cursor.start else since
        if since is not None and start is not None and start < since:
            start = since
        return cursor, start

    def unchanged(self, created_at: Any, updated_at: Any, overlap: timedelta) -> bool:
        """Whether the last complete walk stored this item as it is now."""
        created, updated = maybe_time(created_at), maybe_time(updated_at)
        read_from, until = maybe_time(self.read_from), maybe_time(self.until)
        if not (created and updated and read_from and until):
            return False
        return read_from <= created < until - overlap and updated < until - overlap


@dataclass(frozen=True)
class Walks:
    """One :class:`Watermark` per named walk (a table, an issue filter), stored as
    ``{name: watermark text}``. Shared: the GitLab incidents stream and the ServiceNow
    connector both keep several ``updated_after`` walks under one cursor."""

    walks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> Walks:
        return cls({str(k): str(v) for k, v in _json_object(text).items()})

    def dump(self) -> str:
        return json.dumps(self.walks, sort_keys=True)

    def get(self, name: str) -> Watermark:
        return Watermark.load(self.walks.get(name))

    def with_walk(self, name: str, cursor: Watermark) -> Walks:
        return Walks({**self.walks, name: cursor.dump()})


def offset_walk(
    fetch: Callable[[datetime | None, int], tuple[list[dict[str, Any]], bool]],
    *,
    since: datetime | None,
    limit: int,
    max_offset: int,
    created: str,
    too_many: Callable[[datetime | None], Exception],
) -> Iterator[list[dict[str, Any]]]:
    """Items created from ``since``, oldest first, a page at a time, each once, read in offset
    pages; a span deeper than ``max_offset`` is split where paging stopped and the rest read
    from the last creation time seen. Shared: PagerDuty and Opsgenie page the same way.

    fetch(since, offset) returns a page's items and whether another page follows; ``created``
    names the items' creation time; ``too_many(since)`` is raised when one instant holds more
    items than ``max_offset``.
    """
    seen: set[str] = set()
    while True:
        offset, last = 0, None
        while offset + limit <= max_offset:
            items, more = fetch(since, offset)
            fresh = [i for i in items if str(i.get("id")) not in seen]
            seen.update(str(i.get("id")) for i in fresh)
            if fresh:
                yield fresh
            if items:
                last = maybe_time(items[-1].get(created)) or last
            if not items or not more:
                return
            offset += len(items)
        if last is None or (since is not None and last <= since):
            raise too_many(since)
        since = last
