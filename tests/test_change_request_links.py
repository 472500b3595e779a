"""Linking change requests to deployments, on small hand-made frames whose answer is checked by
hand; then end to end, from the fake ServiceNow instance's change board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from deliverypulse_servicenow import ServiceNowConnector

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.demo.servicenow_server import (
    BoardService,
    Deployment,
    FakeServiceNow,
    change_board,
)
from deliverypulse.store.catalogue import Service
from deliverypulse.streams import Runtime

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
SHA = {n: f"{n:x}" * 40 for n in range(1, 10)}  # "111...", "222...", ...
CATALOGUE = [
    Service("payments", ("acme/payments",), ("Payments Service",), ("payments-prod",), "pay"),
    Service("web", ("acme/web",), ("Web Shop",), (), "web"),
]


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def deployment(n: int, repo: str, hours: float, status: str = "success") -> dict[str, object]:
    return {
        "source": "gh",
        "repo": repo,
        "deployment_id": f"d{n}",
        "environment": "production",
        "is_production": True,
        "sha": SHA[n],
        "created_at": at(hours - 0.2),
        "finished_at": at(hours),
        "status": status,
        "url": f"https://github.com/{repo}/deployments/{n}",
    }


def change(number: int, **fields: object) -> dict[str, object]:
    return {
        "source": "sn",
        "repo": "acme.service-now.com",
        "change_request_id": f"CHG{number:07d}",
        "type": "normal",
        "state": "closed",
        "approval": "approved",
        "configuration_item": "Payments Service",
        "references": [],
        **fields,
    }


DEPLOYMENTS = [
    deployment(1, "acme/payments", 10),  # CHG1 names it: repo@short sha
    deployment(2, "acme/web", 11),  # CHG2 names it by URL
    deployment(3, "acme/payments", 30),  # alone in CHG3's window
    deployment(4, "acme/payments", 50),  # CHG4's window holds 4 and 5; 4 is nearer its start
    deployment(5, "acme/payments", 51, status="failure"),
    deployment(6, "acme/payments", 70),  # in rejected CHG5's window: never linked
    deployment(7, "acme/payments", 90),  # CHG6 rejected at 91, re-requested: 7 is before
    deployment(8, "acme/payments", 95),  # ... 8 is after the rejection: linked
    deployment(9, "acme/payments", 110),  # in canceled CHG7's window: not linked
]
CHANGES = [
    change(1, type="standard", references=[f"acme/payments@{SHA[1][:9]}"]),
    change(
        2, configuration_item="Web Shop", references=["https://github.com/acme/web/deployments/2/"]
    ),
    change(3, planned_start=at(29), planned_end=at(31)),
    change(4, planned_start=at(49.8), planned_end=at(52)),
    change(5, approval="rejected", rejected_at=at(60), planned_start=at(69), planned_end=at(71)),
    change(
        6,
        approval="approved",
        rejected_at=at(91),
        approved_at=at(93),
        planned_start=at(89),
        planned_end=at(96),
    ),
    change(7, state="canceled", planned_start=at(109), planned_end=at(111)),
    change(8, configuration_item="Unknown CI", planned_start=at(9), planned_end=at(12)),
    # A window that holds deployment 1 only, which CHG1 names explicitly: no window link.
    change(9, planned_start=at(9.5), planned_end=at(10.5)),
]


@pytest.fixture
def ds() -> dp.Dataset:
    return dp.Dataset.from_frames(
        deployments=DEPLOYMENTS,
        change_requests=CHANGES,
        incidents=[
            {
                "source": "sn",
                "repo": "acme/payments",
                "incident_id": "INC1",
                "created_at": at(52),
                "caused_by": "CHG0000004",
            },
            {
                "source": "sn",
                "repo": "acme/payments",
                "incident_id": "INC2",
                "created_at": at(53),
            },
        ],
        services=CATALOGUE,
    )


def test_explicit_and_window_links_checked_by_hand(ds: dp.Dataset) -> None:
    links = dp.link_change_requests(ds)
    got = links[["repo", "deployment_id", "change_request_id", "link", "ambiguous"]]
    expected = pd.DataFrame(
        [
            ("acme/payments", "d1", "CHG0000001", "explicit", False),
            ("acme/payments", "d3", "CHG0000003", "window", False),
            ("acme/payments", "d4", "CHG0000004", "window", True),
            ("acme/payments", "d8", "CHG0000006", "window", False),
            ("acme/web", "d2", "CHG0000002", "explicit", False),
        ],
        columns=got.columns,
    )
    assert got.astype(object).values.tolist() == expected.values.tolist()
    assert set(links["source"]) == {"gh"} and set(links["change_request_source"]) == {"sn"}


def test_tolerance_widens_the_window(ds: dp.Dataset) -> None:
    tight = dp.link_change_requests(ds, tolerance=timedelta(0))
    assert "CHG0000004" in set(tight["change_request_id"])
    shifted = dp.Dataset.from_frames(
        deployments=DEPLOYMENTS,
        change_requests=[change(3, planned_start=at(30.5), planned_end=at(31))],
        services=CATALOGUE,
    )
    assert dp.link_change_requests(shifted, tolerance=timedelta(0)).empty
    near = dp.link_change_requests(shifted, tolerance=timedelta(hours=1))
    assert near["deployment_id"].tolist() == ["d3"]


def test_no_catalogue_no_window_links(ds: dp.Dataset) -> None:
    links = dp.link_change_requests(ds, services=[])
    assert set(links["link"]) == {"explicit"}


def test_an_incident_is_charged_to_its_caused_by_change_deployment(ds: dp.Dataset) -> None:
    charged = dp.caused_by_deployments(ds)
    assert charged[
        ["incident_id", "caused_by", "deployment_repo", "deployment_id"]
    ].values.tolist() == [["INC1", "CHG0000004", "acme/payments", "d4"]]


def test_linking_the_collected_change_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every production deployment gets the change request that covered it: standard and
    emergency changes by their text, normal ones by their planned window."""
    dp.register_connector(ServiceNowConnector)
    monkeypatch.setenv("SN_TOKEN", "tok-board-0123456789")
    board_deployments = [
        Deployment(
            "acme/payments",
            f"{day + 1:040x}",
            T0 + timedelta(days=day, hours=10),
            url=f"https://github.com/acme/payments/deployments/{day}",
        )
        for day in range(10)
    ] + [
        Deployment("acme/web", f"{day + 700:040x}", T0 + timedelta(days=day, hours=14))
        for day in range(10)
    ]
    board_deployments.append(
        Deployment("acme/payments", "f" * 40, T0 + timedelta(days=4, hours=20), hotfix=True)
    )
    board = change_board(
        board_deployments,
        [
            BoardService("Payments Service", ("acme/payments",)),
            BoardService("Web Shop", ("acme/web",), process="standard"),
        ],
        rejected_share=0.3,
    )
    with FakeServiceNow(board, token="tok-board-0123456789") as server:
        source = {"name": "sn", "type": "servicenow", "url": server.url, "token_env": "SN_TOKEN"}
        services = [
            {
                "name": s.name,
                "repos": list(s.repos),
                "configuration_items": list(s.configuration_items),
            }
            for s in CATALOGUE
        ]
        cfg = config_from_dict(
            {"output": {"path": str(tmp_path)}, "sources": [source], "services": services}
        )
        assert run_collect(cfg, runtime=Runtime(sleep=lambda s: None)).ok
    collected = dp.load(tmp_path)
    rows = [deployment_row(i, d) for i, d in enumerate(board_deployments)]
    ds = dp.Dataset.from_frames(
        deployments=rows, change_requests=collected.change_requests, services=collected.services
    )
    links = dp.link_change_requests(ds).set_index("deployment_id")
    assert len(links) == len(board_deployments)  # one change request per deployment
    crs = collected.change_requests.set_index("change_request_id")
    kinds = crs.loc[links["change_request_id"], "type"].to_numpy()
    expected_kinds = [
        "emergency" if d.hotfix else ("normal" if d.repo == "acme/payments" else "standard")
        for d in board_deployments
    ]
    assert kinds.tolist() == [expected_kinds[int(i[1:])] for i in links.index]
    by_kind = dict(zip(kinds, links["link"], strict=True))
    assert by_kind == {"normal": "window", "standard": "explicit", "emergency": "explicit"}
    assert not links["ambiguous"].any()
    normal = crs.loc[crs["type"] == "normal"]
    assert (normal["approved_at"] > normal["approval_requested_at"]).all()
    assert normal["approvers"].map(len).eq(2).all()


def deployment_row(index: int, d: Deployment) -> dict[str, object]:
    return {
        "source": "gh",
        "repo": d.repo,
        "deployment_id": f"d{index}",
        "environment": "production",
        "is_production": True,
        "sha": d.sha,
        "created_at": d.finished_at - timedelta(minutes=5),
        "finished_at": d.finished_at,
        "status": "success",
        "url": d.url,
    }
