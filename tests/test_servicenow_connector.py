"""The ServiceNow connector against a local instance that speaks the Table API's shapes
(``deliverypulse.demo.servicenow_server``): requests per run, rows, faults, secrets, config.

The connector is registered with ``dp.register_connector`` so these tests do not depend on the
installed entry points (pyproject.toml declares it as ``servicenow``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deliverypulse_servicenow import ServiceNowConnector
from deliverypulse_servicenow.references import references

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.demo.servicenow_server import (
    BoardService,
    Deployment,
    FakeServiceNow,
    Instance,
    change_board,
)
from deliverypulse.errors import ConfigError
from deliverypulse.streams import Runtime

USER = "svc.deliverypulse"
PASSWORD = "pw-SENTINEL-7f3a9c2e41"
TOKEN = "tok-SENTINEL-b81d0e55aa"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SERVICES = [
    {
        "name": "payments",
        "repos": ["acme/payments"],
        "configuration_items": ["Payments Service"],
        "incident_services": ["payments-prod"],
        "team": "payments",
    },
    {"name": "web", "repos": ["acme/web"], "configuration_items": ["Web Shop"], "team": "web"},
]


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    dp.register_connector(ServiceNowConnector)
    monkeypatch.setenv("SN_USER", USER)
    monkeypatch.setenv("SN_PASSWORD", PASSWORD)
    monkeypatch.setenv("SN_TOKEN", TOKEN)


def deployments(days: int = 12) -> list[Deployment]:
    found = []
    for day in range(days):
        found.append(
            Deployment(
                "acme/payments",
                f"{day + 1:040x}",
                T0 + timedelta(days=day),
                url=f"https://github.com/acme/payments/deployments/{day + 1}",
            )
        )
        found.append(Deployment("acme/web", f"{day + 500:040x}", T0 + timedelta(days=day, hours=4)))
    found.append(Deployment("acme/web", "e" * 40, T0 + timedelta(days=3, hours=7), hotfix=True))
    return found


def instance(days: int = 12) -> Instance:
    board = change_board(
        deployments(days),
        [
            BoardService("Payments Service", ("acme/payments",)),
            BoardService("Web Shop", ("acme/web",), process="standard"),
        ],
        rejected_share=0.3,
    )
    payments = next(
        r["sys_id"] for r in board.tables["change_request"].values() if r["type"] == "normal"
    )
    for index in range(7):
        board.incident(
            T0 + timedelta(days=index, hours=6),
            title=f"Checkout errors {index}",
            configuration_item="Payments Service" if index % 2 else None,
            service="payments-prod" if index % 3 else None,
            urgency="1",
            priority="2",
            caused_by=payments if index == 0 else None,
            resolved_at=T0 + timedelta(days=index, hours=8),
        )
    return board


@pytest.fixture
def server() -> Iterator[FakeServiceNow]:
    with FakeServiceNow(instance(), user=USER, password=PASSWORD, token=TOKEN, max_limit=10) as s:
        yield s


def config(server: FakeServiceNow, out: Path, **options: Any) -> Any:
    source = {
        "name": "sn",
        "type": "servicenow",
        "url": server.url,
        "user_env": "SN_USER",
        "password_env": "SN_PASSWORD",
        **options,
    }
    if "token_env" in options:
        source.pop("user_env"), source.pop("password_env")
    return config_from_dict(
        {"output": {"path": str(out)}, "sources": [source], "services": SERVICES}
    )


def collect(server: FakeServiceNow, out: Path, **options: Any) -> RunSummary:
    return run_collect(config(server, out, **options), runtime=Runtime(sleep=lambda s: None))


def pages(count: int, size: int) -> int:
    return max(1, math.ceil(count / size))


def table_counts(server: FakeServiceNow) -> dict[str, int]:
    tables = server.instance.tables
    approvals = len(tables["sysapproval_approver"])
    return {
        "change_request": len(tables["change_request"]),
        "sysapproval_approver": approvals,
        "incident": len(tables["incident"]),
    }


def requests_per_table(server: FakeServiceNow) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in server.log:
        table = request.path.rsplit("/", 1)[-1]
        counts[table] = counts.get(table, 0) + 1
    return counts


def test_a_first_collect_costs_one_request_per_page_and_a_rerun_one_per_table(
    server: FakeServiceNow, tmp_path: Path
) -> None:
    summary = collect(server, tmp_path)
    assert summary.ok, summary.lines()
    counts = table_counts(server)
    assert requests_per_table(server) == {table: pages(n, 10) for table, n in counts.items()}
    ds = dp.load(tmp_path)
    assert len(ds.change_requests) == counts["change_request"]
    assert len(ds.incidents) == counts["incident"]

    server.clear_log()
    again = collect(server, tmp_path)
    assert again.ok
    assert requests_per_table(server) == {
        "change_request": 1,
        "sysapproval_approver": 1,
        "incident": 1,
    }
    assert sum(r.added for r in again.results) == 0


def test_every_request_asks_for_what_is_used_in_update_order(
    server: FakeServiceNow, tmp_path: Path
) -> None:
    assert collect(server, tmp_path).ok
    for request in server.log:
        assert request.authorization == "basic"
        query = request.query
        assert query["sysparm_display_value"] == "all"
        assert query["sysparm_exclude_reference_link"] == "true"
        assert query["sysparm_limit"] == "10000"  # the instance caps it (here at 10)
        assert "number" in query["sysparm_fields"] or "approver" in query["sysparm_fields"]
        assert query["sysparm_query"].endswith("ORDERBYsys_updated_on^ORDERBYsys_id")
    approvals = server.requests("sysapproval_approver$")[0].query["sysparm_query"]
    assert approvals.startswith("sysapproval.sys_class_name=change_request^")


def test_rows_say_what_the_instance_says(server: FakeServiceNow, tmp_path: Path) -> None:
    assert collect(server, tmp_path).ok
    ds = dp.load(tmp_path)
    crs = ds.change_requests.set_index("change_request_id")
    assert set(crs["type"]) == {"normal", "standard", "emergency"}
    board = server.instance
    for record in board.tables["change_request"].values():
        row = crs.loc[record["number"]]
        assert row["url"].endswith(f"/change_request.do?sys_id={record['sys_id']}")
        assert row["planned_start"] == pd.Timestamp(record["start_date"], tz="UTC")
        assert row["opened_at"] == pd.Timestamp(record["opened_at"], tz="UTC")
        rows = [
            r
            for r in board.tables["sysapproval_approver"].values()
            if r["sysapproval"] == record["sys_id"]
        ]
        approved = sorted(
            board.tables["sys_user"][r["approver"]]["name"]
            for r in rows
            if r["state"] == "approved"
        )
        assert list(row["approvers"]) == approved
        if rows:
            first = min(r["sys_created_on"] for r in rows)
            assert row["approval_requested_at"] == pd.Timestamp(first, tz="UTC")
        if record["type"] == "standard":
            assert any("@" in ref for ref in row["references"])
            assert row["repo"] == "acme/web"
        if record["type"] == "normal":
            assert row["cab_required"] is True or row["cab_required"] == True  # noqa: E712
            assert row["configuration_item"] == "Payments Service"
            assert row["repo"] == "acme/payments"
    rejected = crs.loc[crs["rejected_at"].notna()]
    assert len(rejected) and (rejected["approval"] == "approved").all()
    assert (rejected["approved_at"] > rejected["rejected_at"]).all()
    incidents = ds.incidents.set_index("incident_id")
    assert set(incidents["urgency"]) == {"high"}
    assert set(incidents["status"]) == {"resolved"}
    caused = incidents.loc[incidents["caused_by"].notna()]
    assert len(caused) == 1 and caused["caused_by"].iloc[0].startswith("CHG")
    # The catalogue maps both the configuration item and the incident service to a repo.
    assert set(incidents["repo"]) == {"acme/payments", server.url.split("//")[1]}
    assert ds.services["name"].tolist() == ["payments", "web"]


def test_a_late_work_note_with_a_sha_is_read_on_the_next_run(
    server: FakeServiceNow, tmp_path: Path
) -> None:
    assert collect(server, tmp_path).ok
    board = server.instance
    old = board.find("change_request", type="normal")
    board.work_note(
        "change_request",
        old["sys_id"],
        "CI Bot",
        f"Deployed acme/payments@{'abcdef1' * 5 + 'abcde'} to production.",
        T0 + timedelta(days=30),
    )
    server.clear_log()
    assert collect(server, tmp_path).ok
    # Both walks, the change's approver rows (to keep its approvers whole), the incidents.
    assert requests_per_table(server) == {
        "change_request": 1,
        "sysapproval_approver": 2,
        "incident": 1,
    }
    row = dp.load(tmp_path).change_requests.set_index("change_request_id").loc[old["number"]]
    assert f"acme/payments@{'abcdef1' * 5 + 'abcde'}" in list(row["references"])
    assert len(row["approvers"]) == 2


def test_five_percent_faults_give_the_same_rows(tmp_path: Path) -> None:
    def rows(out: Path) -> dict[str, pd.DataFrame]:
        ds = dp.load(out)
        return {
            "change_requests": ds.change_requests.sort_values("change_request_id")
            .reset_index(drop=True)
            .drop(columns=["url"]),
            "incidents": ds.incidents.sort_values("incident_id")
            .reset_index(drop=True)
            .drop(columns=["url", "repo"]),
        }

    board = instance(days=30)
    with FakeServiceNow(board, user=USER, password=PASSWORD, max_limit=4) as clean:
        assert collect(clean, tmp_path / "clean").ok
        clean_requests = len(clean.log)
    with FakeServiceNow(
        board, user=USER, password=PASSWORD, max_limit=4, fault_rate=0.05, seed=5
    ) as faulty:
        summary = collect(faulty, tmp_path / "faulty")
        assert summary.ok, summary.lines()
        assert len(faulty.injected) >= 3, faulty.injected
        assert len(faulty.log) >= clean_requests
    expected, got = rows(tmp_path / "clean"), rows(tmp_path / "faulty")
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name])


def test_each_fault_kind_is_retried(server: FakeServiceNow, tmp_path: Path) -> None:
    slept: list[float] = []
    server.fail(r"change_request$", "503", times=2)
    server.fail(r"sysapproval_approver$", "429", retry_after="7")
    server.fail(r"incident$", "drop")
    server.fail(r"change_request$", "truncate")
    summary = run_collect(config(server, tmp_path), runtime=Runtime(sleep=slept.append))
    assert summary.ok, summary.lines()
    assert any(wait >= 7 for wait in slept)  # Retry-After honoured
    assert len(dp.load(tmp_path).change_requests) == table_counts(server)["change_request"]


def _everything_written(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_the_secret_never_reaches_a_file_a_log_or_an_error(
    server: FakeServiceNow,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    options = {"token_env": "SN_TOKEN"} if auth == "bearer" else {}
    server.fail(".", "503", times=2)  # retries are logged
    assert collect(server, tmp_path, **options).ok
    assert {r.authorization for r in server.log} == {auth}
    # A rejected credential: the error names the variables and ServiceNow's message only.
    wrong = "pw-SENTINEL-wrong-0000" if auth == "basic" else "tok-SENTINEL-wrong-0000"
    monkeypatch.setenv("SN_TOKEN" if auth == "bearer" else "SN_PASSWORD", wrong)
    failed = collect(server, tmp_path / "rejected", **options)
    assert not failed.ok
    message = " ".join(failed.lines())
    assert "User Not Authenticated" in message
    assert ("$SN_TOKEN" if auth == "bearer" else "$SN_USER / $SN_PASSWORD") in message
    with pytest.raises(dp.CollectError) as raised:
        dp.collect(config(server, tmp_path / "raised", **options))
    texts = [message, str(raised.value), caplog.text]
    written = _everything_written(tmp_path)
    for secret in (PASSWORD, TOKEN, wrong):
        assert all(secret not in text for text in texts)
        assert secret.encode() not in written


def test_config_checks_the_source_and_the_catalogue(tmp_path: Path) -> None:
    def load(source: dict[str, Any], services: Any = ()) -> Any:
        base = {"name": "sn", "type": "servicenow", "user_env": "SN_USER"}
        base["password_env"] = "SN_PASSWORD"
        return config_from_dict(
            {"sources": [{**base, **source}], "services": list(services)}, output=tmp_path
        )

    assert load({"url": "https://acme.service-now.com"}).sources[0].name == "sn"
    for url in ("http://acme.service-now.com", "ftp://x", "https://acme.service-now.com/api"):
        with pytest.raises(ConfigError, match="url"):
            load({"url": url})
    with pytest.raises(ConfigError, match="not both"):
        load({"url": "https://a.service-now.com", "token_env": "SN_TOKEN"})
    with pytest.raises(ConfigError, match="SN_MISSING"):
        load({"url": "https://a.service-now.com", "password_env": "SN_MISSING"})
    url = {"url": "https://acme.service-now.com"}
    with pytest.raises(ConfigError, match="did you mean 'configuration_items'"):
        load(url, [{"name": "p", "configuration_item": ["X"]}])
    with pytest.raises(ConfigError, match="expected a list"):
        load(url, [{"name": "p", "repos": "acme/payments"}])
    with pytest.raises(ConfigError, match="unique"):
        load(url, [{"name": "p"}, {"name": "p"}])
    with pytest.raises(ConfigError, match="name"):
        load(url, [{"repos": ["a/b"]}])
    loaded = load(url, SERVICES)
    assert [s.name for s in loaded.services] == ["payments", "web"]
    assert loaded.sources[0].services == loaded.services


def test_references_in_text() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = (
        f"Deploying Acme/Payments@{sha[:12]} (see https://github.com/acme/web/commit/{sha}).\n"
        f"Pipeline https://ci.example.com/runs/42, bare {sha.upper()}; "
        "group/sub/app@deadbee1 and not a mail user@example.com"
    )
    assert references([text, None or ""]) == [
        f"acme/web@{sha}",
        f"https://github.com/acme/web/commit/{sha}",
        "https://ci.example.com/runs/42",
        f"acme/payments@{sha[:12]}",
        "group/sub/app@deadbee1",
        sha,
    ]
