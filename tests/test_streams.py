"""The core's stream values: cursors, the two walks, declared order and shared values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from deliverypulse.streams import (
    NewestFirst,
    RawPage,
    Stream,
    StreamRun,
    UpdatedAfter,
    WalkCursor,
    Watermark,
    held_back,
    ordered,
)


def _items(*times: str) -> list[dict[str, str]]:
    return [{"id": str(i), "t": t} for i, t in enumerate(times)]


def test_newest_first_stops_at_the_watermark_and_moves_it_once_complete() -> None:
    pages = {
        None: RawPage(_items("2024-01-05T00:00:00Z", "2024-01-04T00:00:00Z"), next="p2", etag="e1"),
        "p2": RawPage(_items("2024-01-03T00:00:00Z", "2024-01-01T00:00:00Z"), next="p3"),
    }

    def fetch(after: str | None, etag: str | None) -> Iterator[RawPage]:
        page: str | None = after
        while True:
            raw = pages[page]
            yield raw
            if raw.next is None or raw.next not in pages:
                return
            page = raw.next

    cursor = WalkCursor(since="2024-01-02T00:00:00Z")
    steps = list(NewestFirst("t").walk(fetch, cursor))
    assert [len(s.items) for s in steps] == [2, 1]  # the 01-01 item is older than the floor
    assert steps[0].cursor.after == "p2" and steps[0].cursor.since == "2024-01-02T00:00:00Z"
    assert steps[-1].finished
    assert steps[-1].cursor.since == "2024-01-05T00:00:00Z"
    assert steps[-1].cursor.etag == "e1" and steps[-1].cursor.after is None


def test_newest_first_not_modified_keeps_the_cursor() -> None:
    cursor = WalkCursor(since="2024-01-02T00:00:00Z", etag="e1")
    sent: list[str | None] = []

    def fetch(after: str | None, etag: str | None) -> Iterator[RawPage]:
        sent.append(etag)
        yield RawPage([], not_modified=True)

    steps = list(NewestFirst("t").walk(fetch, cursor))
    assert sent == ["e1"]
    assert steps == [type(steps[0])([], cursor, True)]


def test_newest_first_holds_the_watermark_for_unfinished_items_across_pages() -> None:
    pages = [
        RawPage([{"t": "2024-01-10T00:00:00Z"}, {"t": "2024-01-09T00:00:00Z", "open": 1}], "p2"),
        RawPage([{"t": "2024-01-08T00:00:00Z"}, {"t": "2024-01-01T00:00:00Z"}]),
    ]

    def fetch(after: str | None, etag: str | None) -> Iterator[RawPage]:
        yield from pages if after is None else pages[1:]

    day = timedelta(days=1)
    walk = NewestFirst("t", unfinished=lambda item: "open" in item, lookback=7 * day)
    steps = list(walk.walk(fetch, WalkCursor(since="2024-01-05T00:00:00Z")))
    assert steps[0].cursor.open == "2024-01-09T00:00:00Z"  # saved mid-walk, resumable
    assert steps[-1].cursor.since == "2024-01-09T00:00:00Z" and steps[-1].cursor.open is None
    bounded = NewestFirst("t", unfinished=lambda item: "open" in item, lookback=day / 2)
    assert list(bounded.walk(fetch, WalkCursor()))[-1].cursor.since == "2024-01-09T12:00:00Z"


def test_updated_after_skips_what_was_stored_and_checkpoints_every_page() -> None:
    cursor = Watermark(updated_at="2024-01-02T00:00:00Z", seen=("a",))
    asked: list[str | None] = []

    def fetch(updated_after: str | None) -> Iterator[list[dict[str, str]]]:
        asked.append(updated_after)
        yield [{"id": "a", "updated_at": "2024-01-02T00:00:00Z"}]
        yield [{"id": "b", "updated_at": "2024-01-02T00:00:00Z"}]
        yield [{"id": "c", "updated_at": "2024-01-03T00:00:00Z"}]

    steps = list(UpdatedAfter().walk(fetch, cursor))
    assert asked == ["2024-01-01T23:59:59Z"]  # one second of overlap
    assert [[i["id"] for i in s.items] for s in steps] == [[], ["b"], ["c"], []]
    assert steps[1].cursor.seen == ("a", "b")
    assert steps[-1].cursor.updated_at == "2024-01-03T00:00:00Z" and steps[-1].finished


def test_cursors_round_trip_and_survive_garbage() -> None:
    walk = WalkCursor(since="2024-01-01T00:00:00Z", etag="x", open="2023-12-30T00:00:00Z")
    assert WalkCursor.load(walk.dump()) == walk
    mark = Watermark("2024-01-01T00:00:00Z", ("1", "2"), extra={"k": [1]})
    assert Watermark.load(mark.dump()) == mark
    assert WalkCursor.load("not json") == WalkCursor()
    assert Watermark.load("[1, 2]") == Watermark()


def test_holding_the_watermark_for_unfinished_items_is_bounded() -> None:
    day = timedelta(days=1)
    assert held_back("2024-01-10T00:00:00Z", "2024-01-09T00:00:00Z", 7 * day) == (
        "2024-01-09T00:00:00Z"
    )
    # An item abandoned a month ago holds the watermark back a week at most.
    assert held_back("2024-01-10T00:00:00Z", "2023-12-01T00:00:00Z", 7 * day) == (
        "2024-01-03T00:00:00Z"
    )
    assert held_back("2024-01-10T00:00:00Z", None, 7 * day) == "2024-01-10T00:00:00Z"
    held = Watermark("2024-01-10T00:00:00Z", ("a",), open="2024-01-08T00:00:00Z").hold(7 * day)
    assert held.updated_at == "2024-01-08T00:00:00Z" and held.seen == () and held.open is None


def _reader(connector: object, run: StreamRun) -> Iterator[object]:
    return iter(())


def test_streams_run_after_what_they_declare_and_only_read_declared_shares() -> None:
    commits = Stream("commits", _reader, after=("changes",))
    changes = Stream("changes", _reader)
    runs = Stream("test_runs", _reader, after=("deployments",))
    deployments = Stream("deployments", _reader)
    names = [s.name for s in ordered([commits, changes, runs, deployments])]
    assert names.index("changes") < names.index("commits")
    assert names.index("deployments") < names.index("test_runs")
    assert [s.name for s in ordered([commits, changes], ["commits"])] == ["commits"]

    first = StreamRun(changes, "o/r", None)
    first.share("shas", {"abc": "1"})
    later = StreamRun(commits, "o/r", None, _shared=first._shared)
    assert later.shared("changes", "shas") == {"abc": "1"}
    with pytest.raises(ValueError, match="does not declare"):
        StreamRun(runs, "o/r", None, _shared=first._shared).shared("changes", "shas")


def test_cycles_in_after_are_refused() -> None:
    a = Stream("a", _reader, after=("b",))
    b = Stream("b", _reader, after=("a",))
    with pytest.raises(ValueError, match="cycle"):
        ordered([a, b])


def test_floor_is_the_later_of_watermark_and_since() -> None:
    since = datetime(2024, 2, 1, tzinfo=UTC)
    assert WalkCursor(since="2024-01-01T00:00:00Z").floor(since) == "2024-02-01T00:00:00Z"
    assert WalkCursor(since="2024-03-01T00:00:00Z").floor(since) == "2024-03-01T00:00:00Z"
