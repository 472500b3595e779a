"""A row stamped in the future is stored, but never becomes the cursor (it froze collection)."""

from __future__ import annotations

import json
import logging
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import deliverypulse as dp
from deliverypulse.config import config_from_dict
from deliverypulse.store.state import SyncState
from deliverypulse.streams import CLOCK_SKEW, Runtime, WalkCursor, Watermark, clamp_cursor

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _run(number: int, created: str) -> dict[str, Any]:
    return {
        "id": number,
        "name": "ci",
        "head_sha": f"{number:040x}",
        "head_branch": "main",
        "event": "push",
        "status": "completed",
        "conclusion": "success",
        "created_at": created,
        "updated_at": created,
        "run_started_at": created,
        "run_attempt": 1,
        "html_url": f"https://github.test/octo/web/actions/runs/{number}",
    }


class Runs:
    """GitHub's workflow-runs list, newest first, served to the real connector's httpx client."""

    def __init__(self) -> None:
        self.runs = [_run(2, "9999-12-31T23:59:59Z"), _run(1, "2026-04-30T10:00:00Z")]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/repos/octo/web/actions/runs"
        newest_first = sorted(self.runs, key=lambda r: r["created_at"], reverse=True)
        body = {"total_count": len(newest_first), "workflow_runs": newest_first}
        return httpx.Response(200, content=json.dumps(body).encode())


def _collect(out: Path, runs: Runs, now: datetime = NOW) -> dp.RunSummary:
    config = config_from_dict(
        {
            "sources": [
                {
                    "name": "gh",
                    "type": "github",
                    "repo": "octo/web",
                    "token_env": "DP_CLOCK_TOKEN",
                    "api_url": "https://api.github.test",
                    "streams": ["test_runs"],
                }
            ]
        },
        output=out,
    )
    runtime = Runtime(clock=lambda: now, sleep=lambda _s: None, transport=httpx.MockTransport(runs))
    return dp.run_collect(config, runtime=runtime)


def test_a_future_row_is_stored_and_later_runs_still_collect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DP_CLOCK_TOKEN", "t")
    runs = Runs()
    with caplog.at_level(logging.WARNING, logger="deliverypulse"):
        first = _collect(tmp_path, runs)
    assert first.ok, first.lines()
    assert sorted(dp.load(tmp_path).test_runs["run_id"]) == ["1", "2"]  # the 9999 row is kept
    warnings = [r for r in caplog.records if "later than this run's start" in r.getMessage()]
    assert len(warnings) == 1
    cursor = WalkCursor.load(SyncState(tmp_path).cursor("gh", "test_runs", "octo/web"))
    assert cursor.since is not None
    assert datetime.fromisoformat(cursor.since.replace("Z", "+00:00")) <= NOW + CLOCK_SKEW

    runs.runs.append(_run(3, "2026-05-02T11:00:00Z"))  # the next night: a new run, a sane time
    second = _collect(tmp_path, runs, now=NOW + timedelta(days=1))
    assert second.ok, second.lines()
    assert sorted(dp.load(tmp_path).test_runs["run_id"]) == ["1", "2", "3"]


def test_clamping_touches_only_times_beyond_the_run() -> None:
    started = NOW
    sane = WalkCursor(since="2026-04-01T00:00:00Z", high="2026-04-02T00:00:00Z")
    assert clamp_cursor(sane, started) == (sane, False)
    wild, changed = clamp_cursor(WalkCursor(since="2500-01-01T00:00:00Z"), started)
    assert changed and wild.since == "2026-05-01T12:10:00Z"
    mark, changed = clamp_cursor(Watermark("9999-12-31T23:59:59Z", ("a",)), started)
    assert changed and mark.updated_at == "2026-05-01T12:10:00Z" and mark.seen == ()
    assert clamp_cursor("opaque text", started) == ("opaque text", False)
    assert timedelta(minutes=10) == CLOCK_SKEW


def test_naive_times_are_utc_in_every_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A REST workflow run whose times lack a zone crashed test_runs (naive vs aware)."""
    monkeypatch.setenv("DP_CLOCK_TOKEN", "t")
    runs = Runs()
    runs.runs = [_run(1, "2026-04-30T10:00:00"), _run(2, "2026-04-30T09:00:00+02:00")]
    done = _collect(tmp_path, runs)
    assert done.ok, done.lines()
    stored = dp.load(tmp_path).test_runs.set_index("run_id")["created_at"]
    assert stored["1"] == datetime(2026, 4, 30, 10, 0, tzinfo=UTC)
    assert stored["2"] == datetime(2026, 4, 30, 7, 0, tzinfo=UTC)


def test_an_unparseable_time_names_table_column_row_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DP_CLOCK_TOKEN", "t")
    runs = Runs()
    bad = _run(1, "2026-04-30T10:00:00Z")
    bad["run_started_at"] = "last Tuesday"
    runs.runs = [bad]
    done = _collect(tmp_path, runs)
    assert not done.ok
    [line] = [line for line in done.lines() if "FAILED" in line]
    assert "test_runs" in line and "'last Tuesday'" in line
    assert "started_at" in line and "row 0" in line


def test_a_bad_time_in_the_walked_field_is_named_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk's own time field (created_at) holds garbage: the row is rejected by name, and
    the good runs of a later page are not lost to a cursor that jumped."""
    monkeypatch.setenv("DP_CLOCK_TOKEN", "t")
    runs = Runs()
    bad = _run(1, "2026-04-30T10:00:00Z")
    bad["created_at"] = "soon"
    runs.runs = [bad]
    done = _collect(tmp_path, runs)
    [line] = [line for line in done.lines() if "FAILED" in line]
    assert "'soon'" in line and "created_at" in line and "row 0" in line


@pytest.mark.parametrize("number", [1_777_550_400, 1_777_550_400.5, 1_777_550_400_000])
def test_a_bare_number_is_not_guessed_as_an_epoch(number: float) -> None:
    """Seconds or milliseconds? A number in a timestamp column is refused by name, not guessed
    (pandas 4 would read it as an epoch in whatever unit it defaults to)."""
    frame = pd.DataFrame(
        {"deployment_id": ["1"], "created_at": [number], "status": ["success"], "repo": ["a/b"]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas deprecation warning on the way
        with pytest.raises(dp.DataError) as caught:
            dp.Dataset.from_frames(deployments=frame)
    message = str(caught.value)
    assert "'deployments'" in message and "'created_at'" in message and "row 0" in message
