"""Issue 14: the ServiceNow connector keeps an incident's correlation id (where the PagerDuty
or Opsgenie integration stores its incident's id), so the metrics count the pair once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from deliverypulse_servicenow import ServiceNowConnector
from test_servicenow_connector import PASSWORD, T0, TOKEN, USER, collect, instance

import deliverypulse as dp
from deliverypulse.demo.servicenow_server import FakeServiceNow


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    dp.register_connector(ServiceNowConnector)
    monkeypatch.setenv("SN_USER", USER)
    monkeypatch.setenv("SN_PASSWORD", PASSWORD)


def test_the_correlation_id_is_stored(tmp_path: Path) -> None:
    board = instance(days=3)
    board.incident(
        T0 + timedelta(days=1, hours=9),
        title="Paged: checkout down",
        service="payments-prod",
        correlation_id="Q1PD0001",
        resolved_at=T0 + timedelta(days=1, hours=10),
    )
    with FakeServiceNow(board, user=USER, password=PASSWORD, token=TOKEN) as server:
        assert collect(server, tmp_path).ok
    incidents = dp.load(tmp_path).incidents
    paged = incidents.loc[incidents["title"] == "Paged: checkout down"]
    assert paged["correlation_id"].tolist() == ["Q1PD0001"]
    assert incidents["correlation_id"].notna().sum() == 1
