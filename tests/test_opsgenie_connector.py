"""The Opsgenie connector against a local server that serves the shapes of Opsgenie's OpenAPI
description (``deliverypulse.demo.opsgenie_server``): requests per run, rows from incidents and
from alerts, the offset bound, faults, secrets, config.

The connector is registered with ``dp.register_connector`` (pyproject.toml declares it as
``opsgenie``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import deliverypulse_opsgenie.api as og_api
import pandas as pd
import pytest
from deliverypulse_opsgenie import OpsgenieConnector

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.demo.opsgenie_server import Account, FakeOpsgenie
from deliverypulse.errors import ConfigError
from deliverypulse.streams import Runtime

KEY = "ogSENTINEL-5d1e-4c2b-9a77-e0f1c2d3b4a5"
NOW = datetime.now(UTC).replace(microsecond=0)
SERVICES = [{"name": "payments", "repos": ["acme/payments"], "incident_services": ["payments"]}]


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    dp.register_connector(OpsgenieConnector)
    monkeypatch.setenv("OPSGENIE_KEY", KEY)


def account(days: int = 200, every: int = 4) -> Account:
    acme = Account()
    for index, age in enumerate(range(days, 0, -every)):
        opened = NOW - timedelta(days=age)
        done = opened + timedelta(minutes=20 + index) if age > every * 2 else None
        tags = ("payments", "prod") if index % 2 else ("search",)
        priority = f"P{index % 5 + 1}"
        acme.incident(
            opened, message=f"Incident {index}", priority=priority, tags=tags, resolved_at=done
        )
        acme.alert(opened, message=f"Alert {index}", priority=priority, tags=tags, closed_at=done)
    return acme


@pytest.fixture
def server() -> Iterator[FakeOpsgenie]:
    with FakeOpsgenie(account(), key=KEY) as s:
        yield s


def config(server: FakeOpsgenie, out: Path, **options: Any) -> Any:
    source = {
        "name": "og",
        "type": "opsgenie",
        "url": server.url,
        "token_env": "OPSGENIE_KEY",
        "page_size": 20,
        **options,
    }
    return config_from_dict(
        {"output": {"path": str(out)}, "sources": [source], "services": SERVICES}
    )


def collect(server: FakeOpsgenie, out: Path, **options: Any) -> RunSummary:
    return run_collect(config(server, out, **options), runtime=Runtime(sleep=lambda s: None))


@pytest.mark.parametrize("api", ["incidents", "alerts"])
def test_a_first_collect_costs_one_request_per_page_and_a_rerun_one(
    server: FakeOpsgenie, tmp_path: Path, api: str
) -> None:
    summary = collect(server, tmp_path, api=api)
    assert summary.ok, summary.lines()
    items = server.account.incidents if api == "incidents" else server.account.alerts
    assert len(items) == 50
    assert len(server.log) == math.ceil(50 / 20)  # no range limit: one span, 3 pages
    path = "/v1/incidents" if api == "incidents" else "/v2/alerts"
    for request in server.log:
        assert request.path == path and request.authorization == "geniekey"
        assert (request.query["sort"], request.query["order"]) == ("createdAt", "asc")
        assert request.query["query"].startswith("createdAt<")  # from the beginning
    ds = dp.load(tmp_path)
    assert len(ds.incidents) == 50
    assert ds.incidents["created_at"].min() < pd.Timestamp(NOW - timedelta(days=190))

    server.clear_log()
    again = collect(server, tmp_path, api=api)
    assert again.ok and len(server.log) == 1
    assert sum(r.added for r in again.results) == 0
    assert server.log[0].query["query"].startswith("createdAt>=")


def test_incident_rows_say_what_opsgenie_says(server: FakeOpsgenie, tmp_path: Path) -> None:
    assert collect(server, tmp_path).ok
    rows = dp.load(tmp_path).incidents.set_index("incident_id")
    for incident in server.account.incidents.values():
        row = rows.loc[incident["id"]]
        assert row["title"] == incident["message"]
        assert row["severity"] == incident["priority"]
        assert row["status"] == incident["status"]
        assert row["created_at"] == pd.Timestamp(incident["createdAt"])
        assert f"tiny:{incident['tinyId']}" in list(row["labels"])
        if incident["status"] == "resolved":
            assert row["resolved_at"] == pd.Timestamp(incident["updatedAt"])
        else:
            assert pd.isna(row["resolved_at"])
        if "payments" in incident["tags"]:
            assert (row["service"], row["repo"]) == ("payments", "acme/payments")
        else:
            assert pd.isna(row["service"]) and row["repo"] == server.url.split("//")[1]
    # Hand-checked: incident 1 is P2, tagged payments, resolved 21 minutes after it opened.
    second = rows.sort_values("created_at").iloc[1]
    assert (second["severity"], second["service"]) == ("P2", "payments")
    assert second["resolved_at"] - second["created_at"] == pd.Timedelta(minutes=21)


def test_alert_rows_close_at_created_plus_close_time(server: FakeOpsgenie, tmp_path: Path) -> None:
    assert collect(server, tmp_path, api="alerts", services=["payments"]).ok
    rows = dp.load(tmp_path).incidents
    assert set(rows["service"]) == {"payments"} and len(rows) == 25
    closed = rows[rows["status"] == "closed"]
    spans = (closed["resolved_at"] - closed["created_at"]).dt.total_seconds() / 60
    assert sorted(spans.astype(int)) == [20 + i for i in range(1, 48, 2)][: len(closed)]
    assert rows[rows["status"] == "open"]["resolved_at"].isna().all()


def test_a_resolution_after_the_first_run_is_read_next_time(
    server: FakeOpsgenie, tmp_path: Path
) -> None:
    assert collect(server, tmp_path).ok
    open_ids = [i["id"] for i in server.account.incidents.values() if i["status"] == "open"]
    assert open_ids
    for incident_id in open_ids:
        server.account.resolve(incident_id, NOW + timedelta(seconds=3), close=True)
    assert collect(server, tmp_path).ok
    rows = dp.load(tmp_path).incidents.set_index("incident_id").loc[open_ids]
    assert (rows["status"] == "closed").all() and rows["resolved_at"].notna().all()


def test_paging_stops_at_the_offset_bound_and_reads_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(og_api, "MAX_OFFSET", 40)
    with FakeOpsgenie(account(days=400, every=4), key=KEY, max_offset=40) as server:
        assert collect(server, tmp_path).ok
        assert all(int(r.query["offset"]) + 20 <= 40 for r in server.log)
    assert dp.load(tmp_path).incidents["incident_id"].nunique() == 100


def test_five_percent_faults_give_the_same_rows(tmp_path: Path) -> None:
    acme = account(days=800, every=2)
    with FakeOpsgenie(acme, key=KEY) as clean:
        assert collect(clean, tmp_path / "clean", page_size=5).ok
    with FakeOpsgenie(acme, key=KEY, fault_rate=0.05, seed=3) as faulty:
        summary = collect(faulty, tmp_path / "faulty", page_size=5)
        assert summary.ok, summary.lines()
        assert len(faulty.injected) >= 3, faulty.injected
    key = ["incident_id"]
    expected = dp.load(tmp_path / "clean").incidents.sort_values(key).reset_index(drop=True)
    got = dp.load(tmp_path / "faulty").incidents.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.drop(columns="repo"), expected.drop(columns="repo"))


def test_each_fault_kind_is_retried(server: FakeOpsgenie, tmp_path: Path) -> None:
    slept: list[float] = []
    for kind in ("503", "drop", "truncate"):
        server.fail("incidents", kind)
    server.fail("incidents", "429", retry_after="9")
    summary = run_collect(config(server, tmp_path), runtime=Runtime(sleep=slept.append))
    assert summary.ok, summary.lines()
    assert any(wait >= 9 for wait in slept)
    assert len(dp.load(tmp_path).incidents) == 50


def test_the_key_never_reaches_a_file_a_log_or_an_error(
    server: FakeOpsgenie,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.fail(".", "502", times=2)
    assert collect(server, tmp_path).ok
    wrong = "ogSENTINEL-wrong-0000-0000"
    monkeypatch.setenv("OPSGENIE_KEY", wrong)
    failed = collect(server, tmp_path / "rejected")
    assert not failed.ok
    message = " ".join(failed.lines())
    assert "Could not authenticate" in message and "$OPSGENIE_KEY" in message
    with pytest.raises(dp.CollectError) as raised:
        dp.collect(config(server, tmp_path / "raised"))
    written = b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())
    for secret in (KEY, wrong):
        for text in (message, str(raised.value), caplog.text):
            assert secret not in text
        assert secret.encode() not in written


def test_config_errors_name_the_file_source_and_key(tmp_path: Path) -> None:
    path = tmp_path / "deliverypulse.toml"

    def load(**options: Any) -> Any:
        lines = ["[[sources]]", 'name = "og"', 'type = "opsgenie"']
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in options.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return dp.load_config(path, output=tmp_path / "out")

    ok = load(token_env="OPSGENIE_KEY", url="https://api.eu.opsgenie.com")
    assert ok.sources[0].name == "og"
    cases = {
        "token_env": {},
        "api": {"token_env": "OPSGENIE_KEY", "api": "events"},
        "url": {"token_env": "OPSGENIE_KEY", "url": "https://api.opsgenie.com/v2"},
        "page_size": {"token_env": "OPSGENIE_KEY", "page_size": 0},
    }
    for key, options in cases.items():
        with pytest.raises(ConfigError) as raised:
            load(**options)
        text = str(raised.value)
        assert key in text and "og" in text and "deliverypulse.toml" in text, text
