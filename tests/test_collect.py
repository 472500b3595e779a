"""The collect driver: cursors after durable rows, failures isolated, reruns idempotent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

import deliverypulse as dp
from deliverypulse.connector import merge_pages
from deliverypulse.store import SyncState
from deliverypulse.store.coerce import to_frame

CONFIG = """
[output]
path = "data"

[[sources]]
name = "ops"
type = "scripted"
repos = ["org/a", "org/b"]
pages = 3
page_size = 4
{extra}
"""


def config(write_config: Callable[[str], Path], extra: str = "") -> Path:
    return write_config(CONFIG.format(extra=extra))


def test_collect_stores_every_page_and_saves_the_cursor(
    write_config: Callable[[str], Path], scripted_reads: list
) -> None:
    summary = dp.run_collect(config(write_config))
    assert summary.ok
    ds = dp.load(summary.output)
    assert len(ds.deployments) == 2 * 3 * 4
    assert set(ds.deployments["repo"]) == {"org/a", "org/b"}
    state = SyncState(summary.output)
    assert state.cursor("ops", "deployments", "org/a") == "3"
    lines = summary.lines()
    assert lines[0] == (
        f"ops deployments: 2 repos, 24 rows fetched, 24 new, {summary.results[0].seconds:.1f}s"
    )


def test_a_rerun_resumes_from_the_cursor_and_adds_nothing(
    write_config: Callable[[str], Path], scripted_reads: list
) -> None:
    path = config(write_config)
    dp.run_collect(path)
    scripted_reads.clear()
    summary = dp.run_collect(path)
    assert ("deployments", "org/a", "3") in scripted_reads
    assert summary.results[0].fetched == 0
    assert len(dp.load(summary.output).deployments) == 24


def test_full_refresh_ignores_cursors_but_does_not_duplicate(
    write_config: Callable[[str], Path], scripted_reads: list
) -> None:
    path = config(write_config)
    dp.run_collect(path)
    summary = dp.run_collect(path, full_refresh=True)
    assert summary.results[0].fetched == 24
    assert summary.results[0].added == 0
    assert len(dp.load(summary.output).deployments) == 24


def test_a_failing_page_keeps_earlier_pages_and_their_cursor_and_a_rerun_completes(
    write_config: Callable[[str], Path], scripted_reads: list
) -> None:
    failing = config(write_config, 'fail_at = 2\nfail_repo = "org/b"')
    summary = dp.run_collect(failing)
    assert not summary.ok
    assert summary.failed_sources == ["ops"]
    assert "FAILED (org/b: source 'ops': server error (HTTP 502))" in summary.lines()[0]
    state = SyncState(summary.output)
    assert state.cursor("ops", "deployments", "org/a") == "3"
    assert state.cursor("ops", "deployments", "org/b") == "2"
    assert len(dp.load(summary.output).deployments) == 12 + 8

    healed = dp.run_collect(config(write_config))
    assert healed.ok
    assert ("deployments", "org/b", "2") in scripted_reads
    assert len(dp.load(healed.output).deployments) == 24


def test_collect_raises_with_the_summary_when_a_source_fails(
    write_config: Callable[[str], Path],
) -> None:
    with pytest.raises(dp.CollectError, match="collect failed for ops") as caught:
        dp.collect(config(write_config, "fail_at = 0"))
    assert caught.value.summary.results[0].errors


def test_an_auth_error_stops_that_source_but_not_the_others(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DP_BAD_TOKEN", "sentinel-bad-token")
    path = write_config(
        '[output]\npath = "data"\n'
        '[[sources]]\nname = "bad"\ntype = "scripted"\nauth_fail = true\n'
        'token_env = "DP_BAD_TOKEN"\n'
        '[[sources]]\nname = "good"\ntype = "scripted"\nrepos = ["org/c"]\n'
    )
    summary = dp.run_collect(path)
    assert summary.failed_sources == ["bad"]
    bad = [r for r in summary.results if r.source == "bad"]
    assert bad[0].repos == 1  # stopped after the first repo's auth failure
    assert "sentinel-bad-token" not in " ".join(summary.lines())
    good = dp.load(summary.output).deployments
    assert set(good["source"]) == {"good"} and len(good) == 12


def test_the_run_history_is_recorded(write_config: Callable[[str], Path]) -> None:
    summary = dp.run_collect(config(write_config))
    runs = SyncState(summary.output).runs
    assert runs[-1]["ok"] is True
    assert runs[-1]["streams"][0]["fetched"] == 24


def test_counts_from_concurrent_repos_add_up(write_config: Callable[[str], Path]) -> None:
    repos = [f"org/r{i}" for i in range(24)]
    path = write_config(
        '[output]\npath = "data"\n[collect]\nconcurrency = 8\n'
        f'[[sources]]\nname = "many"\ntype = "scripted-concurrent"\nrepos = {repos!r}\n'
        "pages = 5\npage_size = 20\n".replace("'", '"')
    )
    summary = dp.run_collect(path)
    deployments = summary.results[0]
    assert (deployments.repos, deployments.fetched, deployments.added) == (24, 2400, 2400)
    assert len(dp.load(summary.output).deployments) == 2400


def test_small_pages_are_merged_and_nothing_read_is_lost_on_error() -> None:
    def pages() -> Iterator[dp.Page]:
        yield dp.Page([{"n": 1}], "c1")
        yield dp.Page(pd.DataFrame({"n": [2, 3]}), "c2")
        yield dp.Page([{"n": 4}], None)
        yield dp.Page([{"n": 5}], None, table="commits")
        raise RuntimeError("connection lost")

    merged = merge_pages(pages(), min_rows=3)
    first = next(merged)
    assert list(to_frame(first.records)["n"]) == [1, 2, 3] and first.cursor == "c2"
    rest = next(merged)
    assert rest.records == [{"n": 4}] and rest.cursor is None and rest.table is None
    other = next(merged)
    assert other.records == [{"n": 5}] and other.table == "commits"
    with pytest.raises(RuntimeError, match="connection lost"):
        next(merged)
