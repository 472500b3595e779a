"""The PagerDuty connector against a local server that speaks REST API v2's shapes
(``deliverypulse.demo.pagerduty_server``): requests per run, rows, windows, the offset limit,
faults, secrets, config.

The connector is registered with ``dp.register_connector`` so these tests do not depend on the
installed entry points (pyproject.toml declares it as ``pagerduty``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import deliverypulse_pagerduty.api as pd_api
import pandas as pd
import pytest
from deliverypulse_pagerduty import PagerDutyConnector

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.demo.pagerduty_server import ACCEPT, Account, FakePagerDuty
from deliverypulse.errors import ConfigError
from deliverypulse.streams import Runtime

TOKEN = "pdSENTINEL7f3a9c2e41b8"
NOW = datetime.now(UTC).replace(microsecond=0)
SERVICES = [
    {"name": "payments", "repos": ["acme/payments"], "incident_services": ["payments-prod"]},
    {"name": "web", "repos": ["acme/web", "acme/web-admin"], "incident_services": ["web-prod"]},
]


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    dp.register_connector(PagerDutyConnector)
    monkeypatch.setenv("PAGERDUTY_TOKEN", TOKEN)


def account(days: int = 400, every: int = 5) -> Account:
    """One incident every ``every`` days over ``days`` days on three services; the newest of
    each service still open, every fourth one low urgency."""
    acme = Account()
    for index, age in enumerate(range(days, 0, -every)):
        service = ("payments-prod", "web-prod", "search-prod")[index % 3]
        opened = NOW - timedelta(days=age, hours=1)
        acme.incident(
            opened,
            title=f"{service} errors {index}",
            service=service,
            urgency="low" if index % 4 == 3 else "high",
            priority=("P1", "P2", None)[index % 3],
            teams=("Payments",) if service == "payments-prod" else (),
            resolved_at=opened + timedelta(minutes=30 + index) if age > every * 3 else None,
        )
    return acme


@pytest.fixture
def server() -> Iterator[FakePagerDuty]:
    with FakePagerDuty(account(), token=TOKEN) as s:
        yield s


def config(server: FakePagerDuty, out: Path, **options: Any) -> Any:
    source = {
        "name": "pd",
        "type": "pagerduty",
        "url": server.url,
        "token_env": "PAGERDUTY_TOKEN",
        "page_size": 25,
        **options,
    }
    return config_from_dict(
        {"output": {"path": str(out)}, "sources": [source], "services": SERVICES}
    )


def collect(server: FakePagerDuty, out: Path, **options: Any) -> RunSummary:
    return run_collect(config(server, out, **options), runtime=Runtime(sleep=lambda s: None))


def created(server: FakePagerDuty) -> list[datetime]:
    return sorted(
        datetime.fromisoformat(i["created_at"].replace("Z", "+00:00"))
        for i in server.account.incidents.values()
    )


def expected_requests(times: list[datetime], start: datetime, size: int) -> int:
    """One request per page of each 180-day window from ``start`` to now (at least one)."""
    total = 0
    while start < NOW + timedelta(minutes=1):
        end = start + pd_api.WINDOW
        count = sum(1 for t in times if start <= t < end)
        total += max(1, math.ceil(count / size))
        start = end
    return total


def test_a_first_collect_walks_every_window_and_a_rerun_costs_one_request(
    server: FakePagerDuty, tmp_path: Path
) -> None:
    summary = collect(server, tmp_path)
    assert summary.ok, summary.lines()
    times = created(server)
    # No ``since``: one date_range=all request finds the oldest incident, then 180-day windows.
    first, *walk = server.log
    assert first.query["date_range"] == ["all"] and first.query["limit"] == ["1"]
    assert len(walk) == expected_requests(times, times[0], 25)
    assert len({r.query["since"][0] for r in walk}) == 3  # 400 days: three windows
    ds = dp.load(tmp_path)
    assert len(ds.incidents) == len(server.account.incidents) == 80
    assert ds.incidents["created_at"].min() < pd.Timestamp(NOW - timedelta(days=390))

    server.clear_log()
    again = collect(server, tmp_path)
    assert again.ok
    assert len(server.log) == 1  # the window from the oldest open incident to now
    assert sum(r.added for r in again.results) == 0
    since = datetime.fromisoformat(server.log[0].query["since"][0].replace("Z", "+00:00"))
    assert since <= NOW - timedelta(days=15)  # held back for the open incidents


def test_every_request_is_versioned_authorised_and_bounded(
    server: FakePagerDuty, tmp_path: Path
) -> None:
    assert collect(server, tmp_path, since="2020-01-01", urgencies=["high"]).ok
    for request in server.log:
        assert request.accept == ACCEPT
        assert request.authorization == "token"
        assert request.query["urgencies[]"] == ["high"]
        assert request.query["sort_by"] == ["created_at:asc"]
        since = datetime.fromisoformat(request.query["since"][0].replace("Z", "+00:00"))
        until = datetime.fromisoformat(request.query["until"][0].replace("Z", "+00:00"))
        assert until - since <= timedelta(days=180)
    # A since six years back: no date_range request, windows all the way.
    assert len(server.log) >= math.ceil((NOW - datetime(2020, 1, 1, tzinfo=UTC)).days / 180)
    incidents = dp.load(tmp_path).incidents
    assert set(incidents["urgency"]) == {"high"}


def test_rows_say_what_pagerduty_says(server: FakePagerDuty, tmp_path: Path) -> None:
    assert collect(server, tmp_path).ok
    rows = dp.load(tmp_path).incidents.set_index("incident_id")
    for incident in server.account.incidents.values():
        row = rows.loc[incident["id"]]
        assert row["title"] == incident["title"]
        assert row["created_at"] == pd.Timestamp(incident["created_at"])
        assert row["status"] == incident["status"]
        assert row["urgency"] == incident["urgency"]
        assert row["service"] == incident["service"]["summary"]
        assert row["url"] == incident["html_url"]
        assert f"service_id:{incident['service']['id']}" in list(row["labels"])
        if incident["status"] == "resolved":
            assert row["resolved_at"] == pd.Timestamp(incident["resolved_at"])
        else:
            assert pd.isna(row["resolved_at"])
        priority = incident["priority"]
        assert (row["severity"] if priority else None) == (priority and priority["summary"])
        # The catalogue maps payments-prod to one repo; web-prod has two, search-prod none.
        expected = {"payments-prod": "acme/payments"}.get(incident["service"]["summary"])
        assert row["repo"] == (expected or server.url.split("//")[1])
    # Hand-checked: the oldest incident (index 0) is on payments-prod, P1, high, resolved
    # 30 minutes after it opened, team Payments.
    oldest = rows.sort_values("created_at").iloc[0]
    assert (oldest["service"], oldest["severity"], oldest["urgency"]) == (
        "payments-prod",
        "P1",
        "high",
    )
    assert oldest["resolved_at"] - oldest["created_at"] == pd.Timedelta(minutes=30)
    assert "team:Payments" in list(oldest["labels"])


def test_a_resolution_long_after_opening_is_read_on_the_next_run(
    server: FakePagerDuty, tmp_path: Path
) -> None:
    assert collect(server, tmp_path).ok
    open_ids = [i["id"] for i in server.account.incidents.values() if i["status"] != "resolved"]
    assert len(open_ids) == 3
    for incident_id in open_ids:
        server.account.resolve(incident_id, NOW + timedelta(seconds=5))
    assert collect(server, tmp_path).ok
    rows = dp.load(tmp_path).incidents.set_index("incident_id")
    assert (rows.loc[open_ids, "status"] == "resolved").all()
    assert rows.loc[open_ids, "resolved_at"].notna().all()


def test_services_filter_by_name_and_by_id(server: FakePagerDuty, tmp_path: Path) -> None:
    assert collect(server, tmp_path / "names", services=["Payments-Prod"]).ok
    assert set(dp.load(tmp_path / "names").incidents["service"]) == {"payments-prod"}
    server.clear_log()
    service_id = server.account.services["web-prod"]
    assert collect(server, tmp_path / "ids", services=[service_id]).ok
    assert all(r.query.get("service_ids[]") == [service_id] for r in server.log[1:])
    assert set(dp.load(tmp_path / "ids").incidents["service"]) == {"web-prod"}


def test_a_window_beyond_the_offset_limit_is_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pd_api, "MAX_OFFSET", 50)
    acme = Account()
    for minute in range(130):  # 130 incidents in one window; offset + limit may reach 50
        acme.incident(NOW - timedelta(days=3, minutes=minute), title="x", service="web-prod")
    with FakePagerDuty(acme, token=TOKEN, max_offset=50) as server:
        summary = collect(server, tmp_path, since=(NOW - timedelta(days=10)).isoformat())
        assert summary.ok, summary.lines()
        assert all(int(r.query["offset"][0]) + 25 <= 50 for r in server.log)
        assert len({r.query["since"][0] for r in server.log}) >= 3  # split twice or more
    assert dp.load(tmp_path).incidents["incident_id"].nunique() == 130


def test_five_percent_faults_give_the_same_rows(tmp_path: Path) -> None:
    acme = account(days=600, every=2)
    with FakePagerDuty(acme, token=TOKEN) as clean:
        assert collect(clean, tmp_path / "clean", page_size=5).ok
        clean_requests = len(clean.log)
    with FakePagerDuty(acme, token=TOKEN, fault_rate=0.05, seed=5) as faulty:
        summary = collect(faulty, tmp_path / "faulty", page_size=5)
        assert summary.ok, summary.lines()
        assert len(faulty.injected) >= 3, faulty.injected
        assert len(faulty.log) >= clean_requests
    key = ["incident_id"]
    expected = dp.load(tmp_path / "clean").incidents.sort_values(key).reset_index(drop=True)
    got = dp.load(tmp_path / "faulty").incidents.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.drop(columns="repo"), expected.drop(columns="repo"))


def test_each_fault_kind_is_retried_and_429_waits(server: FakePagerDuty, tmp_path: Path) -> None:
    slept: list[float] = []
    server.fail("incidents", "503", times=2)
    server.fail("incidents", "429", retry_after="7")
    server.fail("incidents", "drop")
    server.fail("incidents", "truncate")
    summary = run_collect(config(server, tmp_path), runtime=Runtime(sleep=slept.append))
    assert summary.ok, summary.lines()
    assert any(wait >= 7 for wait in slept)
    assert len(dp.load(tmp_path).incidents) == 80


def _everything_written(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_the_token_never_reaches_a_file_a_log_or_an_error(
    server: FakePagerDuty,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.fail(".", "503", times=2)
    assert collect(server, tmp_path).ok
    wrong = "pdSENTINELwrong00000000"
    monkeypatch.setenv("PAGERDUTY_TOKEN", wrong)
    failed = collect(server, tmp_path / "rejected")
    assert not failed.ok
    message = " ".join(failed.lines())
    assert "Unauthorized" in message and "$PAGERDUTY_TOKEN" in message
    with pytest.raises(dp.CollectError) as raised:
        dp.collect(config(server, tmp_path / "raised"))
    written = _everything_written(tmp_path)
    for secret in (TOKEN, wrong):
        for text in (message, str(raised.value), caplog.text):
            assert secret not in text
        assert secret.encode() not in written


def test_config_errors_name_the_file_source_and_key(tmp_path: Path) -> None:
    path = tmp_path / "deliverypulse.toml"

    def load(**options: Any) -> Any:
        lines = ["[[sources]]", 'name = "pd"', 'type = "pagerduty"']
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in options.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return dp.load_config(path, output=tmp_path / "out")

    assert load(token_env="PAGERDUTY_TOKEN").sources[0].name == "pd"
    cases = {
        "token_env": {},
        "urgencies": {"token_env": "PAGERDUTY_TOKEN", "urgencies": ["urgent"]},
        "url": {"token_env": "PAGERDUTY_TOKEN", "url": "http://api.pagerduty.com"},
        "page_size": {"token_env": "PAGERDUTY_TOKEN", "page_size": 500},
    }
    for key, options in cases.items():
        with pytest.raises(ConfigError) as raised:
            load(**options)
        text = str(raised.value)
        assert key in text and "pd" in text and "deliverypulse.toml" in text, text
    with pytest.raises(ConfigError, match="PD_MISSING"):
        load(token_env="PD_MISSING")
