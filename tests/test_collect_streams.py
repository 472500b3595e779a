"""The core's wiring of declared streams: runtime, order, shared values, cursor values, the
classification of ``changes`` facts, regex options, and the old third-party style."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fake_connectors import RelayConnector

import deliverypulse as dp
from deliverypulse import rules
from deliverypulse.collector import classified
from deliverypulse.config import load_config
from deliverypulse.connector import load_connector
from deliverypulse.store import SyncState
from deliverypulse.streams import Runtime, WalkCursor

RELAY = """
[output]
path = "data"

[[sources]]
name = "relay"
type = "relay"
{extra}
"""


@pytest.fixture
def relay(write_config: Callable[[str], Path]) -> Callable[..., Path]:
    RelayConnector.log.clear()
    RelayConnector.instances.clear()

    def config(extra: str = "") -> Path:
        return write_config(RELAY.format(extra=extra))

    return config


def test_the_collector_hands_its_runtime_to_the_connector_and_every_stream(
    relay: Callable[..., Path],
) -> None:
    slept: list[float] = []
    runtime = Runtime(clock=lambda: datetime(2024, 6, 1, tzinfo=UTC), sleep=slept.append)
    summary = dp.run_collect(relay(), runtime=runtime)
    assert summary.ok, summary.lines()
    [connector] = RelayConnector.instances
    assert connector.runtime is runtime
    assert {entry[3] for entry in RelayConnector.log} == {runtime}


def test_streams_run_in_after_order_and_read_what_an_earlier_one_shared(
    relay: Callable[..., Path],
) -> None:
    summary = dp.run_collect(relay())
    assert summary.ok, summary.lines()
    # Declared as commits, changes, incidents; commits declares after=("changes",).
    assert [entry[0] for entry in RelayConnector.log] == ["changes", "commits", "incidents"]
    assert RelayConnector.log[1][2] == [1, 2, 3, 4]
    commits = dp.load(summary.output).commits
    assert sorted(commits["change_id"]) == ["1", "2", "3", "4"]
    assert [r.stream for r in summary.results] == ["changes", "commits", "incidents"]


def test_a_stream_cannot_read_what_a_stream_it_does_not_follow_shared(
    relay: Callable[..., Path],
) -> None:
    summary = dp.run_collect(relay("peek = true"))
    assert not summary.ok
    failed = {r.stream: r.errors for r in summary.results if r.errors}
    assert list(failed) == ["incidents"]
    assert "does not declare after=('changes',)" in failed["incidents"][0]
    assert len(dp.load(summary.output).changes) == 4  # the other streams were stored


def test_a_cursor_value_is_stored_as_its_dump_and_loaded_as_its_type(
    relay: Callable[..., Path],
) -> None:
    path = relay()
    summary = dp.run_collect(path)
    state = SyncState(summary.output)
    saved = WalkCursor(since="2024-05-04T12:00:00Z")
    assert state.cursor("relay", "changes", "octo/web") == saved.dump()
    assert state.cursor("relay", "commits", "octo/web") == "done"  # text stays text

    RelayConnector.log.clear()
    again = dp.run_collect(path)
    loaded = RelayConnector.log[0][2]
    assert isinstance(loaded, WalkCursor) and loaded == saved
    assert again.results[0].fetched == 0
    assert RelayConnector.log[1][2] == []  # nothing shared: changes read nothing new


def test_changes_facts_are_classified_by_the_core_with_the_sources_patterns(
    relay: Callable[..., Path],
) -> None:
    path = relay('hotfix = "(?i)urgent-fix|hot[-_ ]?fix"\nbots = "(?i)robot$"')
    summary = dp.run_collect(path)
    assert summary.ok, summary.lines()
    changes = dp.load(summary.output).changes.set_index("change_id").sort_index()
    flags = changes[["is_revert", "reverts", "is_hotfix", "is_bot"]].astype(object)
    flags = flags.where(flags.notna(), None)
    assert flags.to_dict("index") == {
        "1": {"is_revert": False, "reverts": None, "is_hotfix": False, "is_bot": False},
        # an explicit "Reverts owner/repo#1"; renovate[bot] is no bot under this source's regex
        "2": {"is_revert": True, "reverts": "1", "is_hotfix": False, "is_bot": False},
        # a label matched the source's hotfix regex; the provider flagged the author a bot
        "3": {"is_revert": False, "reverts": None, "is_hotfix": True, "is_bot": True},
        # "This reverts commit <sha>" without a Revert title; the author matches bots
        "4": {"is_revert": True, "reverts": "abcdef1", "is_hotfix": False, "is_bot": True},
    }
    assert "body" not in changes.columns and "author_is_bot" not in changes.columns


def test_the_default_patterns_apply_when_a_source_sets_none(relay: Callable[..., Path]) -> None:
    summary = dp.run_collect(relay())
    changes = dp.load(summary.output).changes.set_index("change_id")
    assert changes.loc["2", "is_bot"]  # renovate[bot], by rules.BOT_PATTERN
    assert not changes.loc["3", "is_hotfix"]  # "urgent-fix" is no hotfix by default
    assert not changes.loc["4", "is_bot"]  # release-robot


@pytest.mark.parametrize("key", ["production", "hotfix", "bots", "ticket"])
def test_a_bad_regex_is_a_config_error_naming_file_source_and_key(
    relay: Callable[..., Path], key: str
) -> None:
    path = relay(f'{key} = "fix(("')
    with pytest.raises(dp.ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert (str(error.file), error.source, error.key) == (str(path), "relay", key)
    assert str(error).startswith(f"{path}, source 'relay', key '{key}': not a valid regular")
    assert "\n" not in str(error)


def test_regex_options_reach_the_connector_compiled(relay: Callable[..., Path]) -> None:
    [source] = load_config(relay('ticket = "^OPS-\\\\d+$"\nbots = "^ci-"')).sources
    assert source.pattern("ticket").match("OPS-12") and not source.pattern("ticket").match("X-1")
    assert source.bots.pattern == "^ci-"
    assert source.hotfix.pattern == rules.HOTFIX_PATTERN


def test_typed_option_access_returns_declared_defaults(relay: Callable[..., Path]) -> None:
    [source] = load_config(relay()).sources
    assert source.value("repo", str) == "octo/web"
    assert source.value("peek", bool) is False
    assert source.optional("token_env", str) is None
    assert source.strings("streams") == ()
    with pytest.raises(dp.ConfigError, match=r"key 'peek': expected a string, got False"):
        source.value("peek", str)
    with pytest.raises(dp.ConfigError, match=r"key 'token_env': missing; expected a string"):
        source.value("token_env", str)


def test_the_old_style_plain_names_and_read_still_work(
    write_config: Callable[[str], Path], scripted_reads: list[tuple[str, str, str | None]]
) -> None:
    path = write_config(
        '[output]\npath = "data"\n[[sources]]\nname = "ops"\ntype = "scripted"\n'
        'repos = ["org/a"]\npages = 2\npage_size = 3\n'
    )
    connector = load_connector("scripted")
    assert connector.streams == ("deployments", "incidents") and connector.stream_specs == ()
    summary = dp.run_collect(path)
    assert summary.ok
    assert scripted_reads == [("deployments", "org/a", None), ("incidents", "org/a", None)]
    assert len(dp.load(summary.output).deployments) == 6
    assert SyncState(summary.output).cursor("ops", "deployments", "org/a") == "2"
    scripted_reads.clear()
    dp.run_collect(path)
    assert scripted_reads[0] == ("deployments", "org/a", "2")  # the saved text, as before


def test_classification_leaves_other_tables_alone() -> None:
    rows = [{"deployment_id": "1", "title": 'Revert "x"'}]
    source = dp.SourceConfig("s", "relay", {})
    assert classified(source, "deployments", rows) is rows
    frame = classified(source, "changes", pd.DataFrame(rows))
    assert isinstance(frame, pd.DataFrame) and bool(frame.loc[0, "is_revert"])
