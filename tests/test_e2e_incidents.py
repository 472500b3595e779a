"""Issue 14, done when: against local GitHub, PagerDuty and ServiceNow servers collected in one
run with one config and its ``[[services]]`` catalogue, every counted incident is charged to the
right deployment (by ``caused_by``, by service and time), the ServiceNow incident that
duplicates a PagerDuty one counts once, and the change failure rate and recovery time per repo
and per team match the hand computation below.

The catalogue:

- service **shop** (team *storefront*): repos octo/web and octo/api; PagerDuty service
  "shop-prod", ServiceNow configuration item "Shop CI".
- service **billing** (team *payments*): repo octo/billing; PagerDuty "billing-prod",
  ServiceNow "Billing CI".

GitHub production deployments (2024-01, each finishes 18 minutes after it starts):

    octo/web      w1 01 10:00   w2 03 10:00   w3 05 10:00
    octo/api      a1 02 10:00   a2 04 10:00 (FAILURE)   a3 06 10:00
    octo/billing  b1 01 09:00   b2 03 09:00

A ServiceNow standard change CHG names ``octo/billing@<b1's sha>``.

Incidents, and where each must be charged:

    P1   pagerduty shop-prod     01 12:00-14:00  -> w1 (shop's last success: web's w1)  2 h
    P2   pagerduty shop-prod     02 16:00-17:00  -> a1 (api's a1 after web's w1)       1 h
    P3   pagerduty shop-prod     03 12:00-15:00  -> w2 (a2 on the 4th is later)         3 h
    SNd  servicenow "Shop CI", correlation id P3's id, 03 12:06-18:00
                                                 -> the same event as P3: not again
    SNc  servicenow "Billing CI", caused_by CHG, 03 22:00-04 00:00
                                                 -> b1 by its cause (by time: b2)       2 h
    P4   pagerduty billing-prod  13 12:00        -> none: b2 is 10 days before (> 7 D)
    P5   pagerduty search-prod                   -> none: the catalogue has no such service

By hand, per repo (attempts; failed; recoveries):

    octo/web      3; w1 (P1), w2 (P3)            -> 2/3; 2 h, 3 h     -> median 2.5 h
    octo/api      3; a1 (P2), a2 (its status)    -> 2/3; 1 h, and a2 -> a3 (06 10:18 - 04 10:18)
                                                    48 h            -> median 24.5 h
    octo/billing  2; b1 (SNc)                    -> 1/2; 2 h          -> median 2 h

per team:

    storefront    6; 4 failed -> 4/6; recoveries 2, 3, 1, 48 h -> median 2.5 h
    payments      2; 1 failed -> 1/2; 2 h
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from deliverypulse_github import GitHubConnector
from deliverypulse_pagerduty import PagerDutyConnector
from deliverypulse_servicenow import ServiceNowConnector

import deliverypulse as dp
from deliverypulse.config import config_from_dict
from deliverypulse.demo.github_server import BASE_TIME, FakeGitHub, make_repo, sha_of, ts
from deliverypulse.demo.pagerduty_server import Account, FakePagerDuty
from deliverypulse.demo.servicenow_server import FakeServiceNow, Instance
from deliverypulse.reporting.incidents import incident_summary
from deliverypulse.streams import Runtime

GH_TOKEN = "ghp_SENTINEL_e2e_incidents_0123456789"
PD_TOKEN = "pdSENTINEL_e2e_incidents"
SN_USER, SN_PASSWORD = "svc.deliverypulse", "pw-SENTINEL-e2e"

SERVICES = [
    {
        "name": "shop",
        "repos": ["octo/web", "octo/api"],
        "incident_services": ["shop-prod"],
        "configuration_items": ["Shop CI"],
        "team": "storefront",
    },
    {
        "name": "billing",
        "repos": ["octo/billing"],
        "incident_services": ["billing-prod"],
        "configuration_items": ["Billing CI"],
        "team": "payments",
    },
]

#: Production deployments: (repo, id, day of January 2024, hour, failed).
DEPLOYMENTS = [
    ("web", "w1", 1, 10, False),
    ("web", "w2", 3, 10, False),
    ("web", "w3", 5, 10, False),
    ("api", "a1", 2, 10, False),
    ("api", "a2", 4, 10, True),
    ("api", "a3", 6, 10, False),
    ("billing", "b1", 1, 9, False),
    ("billing", "b2", 3, 9, False),
]
#: GitHub's numeric deployment id of each.
IDS = {name: str(8000 + index) for index, (_, name, *_) in enumerate(DEPLOYMENTS)}
NAMES = {number: name for name, number in IDS.items()}


def at(day: int, hour: float) -> datetime:
    return BASE_TIME + timedelta(days=day - 1, hours=hour)


def hours(day: int, hour: float) -> float:
    return (at(day, hour) - BASE_TIME).total_seconds() / 3600


def github_world() -> FakeGitHub:
    repos = []
    for name in ("web", "api", "billing"):
        repo = make_repo("octo", name, pulls=0, deployments=0, runs=0, incidents=0)
        repo.environments = {"production": []}  # no required reviewers: no gate
        repos.append(repo)
    by_name = {repo.name: repo for repo in repos}
    for repo_name, name, day, hour, failed in DEPLOYMENTS:
        start = hours(day, hour)
        states = ["QUEUED", "IN_PROGRESS", "FAILURE" if failed else "SUCCESS"]
        by_name[repo_name].deployments.append(
            {
                "id": int(IDS[name]),
                "environment": "production",
                "sha": sha_of(repo_name, "deploy", name),
                "ref": "main",
                "createdAt": ts(start),
                "updatedAt": ts(start + 0.3),
                "description": "Deploy",
                "creator": "deploy-bot",
                "statuses": [
                    {
                        "state": state,
                        "createdAt": ts(start + 0.1 * (k + 1)),
                        "logUrl": f"https://github.com/octo/{repo_name}/actions/runs/{IDS[name]}",
                    }
                    for k, state in enumerate(states)
                ],
            }
        )
    return FakeGitHub(repos, token=GH_TOKEN)


@dataclass
class Pages:
    """The PagerDuty account, and the ids it gave each incident."""

    account: Account
    ids: dict[str, str]


def pagerduty_account() -> Pages:
    account = Account()
    ids = {}
    for name, service, opened, resolved in [
        ("P1", "shop-prod", at(1, 12), at(1, 14)),
        ("P2", "shop-prod", at(2, 16), at(2, 17)),
        ("P3", "shop-prod", at(3, 12), at(3, 15)),
        ("P4", "billing-prod", at(13, 12), at(13, 13)),
        ("P5", "search-prod", at(2, 11), at(2, 12)),
    ]:
        ids[name] = account.incident(
            opened, title=f"{name} errors", service=service, resolved_at=resolved
        )
    return Pages(account, ids)


def servicenow_instance(duplicate_of: str) -> tuple[Instance, dict[str, str]]:
    board = Instance(start=BASE_TIME)
    b1 = sha_of("billing", "deploy", "b1")
    change = board.change(
        at(1, 8.8),
        type="standard",
        configuration_item="Billing CI",
        title="Deploy octo/billing",
        description=f"Automated standard change.\nocto/billing@{b1}",
        planned_start=at(1, 8.9),
        planned_end=at(1, 9.5),
        cab_required=False,
    )
    board.implement(change, at(1, 9), at(1, 9.4))
    caused = board.incident(
        at(3, 22),
        title="Invoices wrong",
        configuration_item="Billing CI",
        urgency="1",
        priority="1",
        caused_by=change,
        resolved_at=at(4, 0),
    )
    duplicate = board.incident(
        at(3, 12.1),
        title="Paged: shop errors",
        configuration_item="Shop CI",
        urgency="1",
        priority="1",
        correlation_id=duplicate_of,
        resolved_at=at(3, 18),
    )
    number = {
        key: board.get("incident", sys_id)["number"]
        for key, sys_id in (("SNc", caused), ("SNd", duplicate))
    }
    number["CHG"] = board.get("change_request", change)["number"]
    return board, number


@dataclass
class World:
    dataset: dp.Dataset
    pd_ids: dict[str, str]
    sn_numbers: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for connector in (GitHubConnector, PagerDutyConnector, ServiceNowConnector):
        dp.register_connector(connector)
    out = tmp_path_factory.mktemp("e2e-incidents")
    pages = pagerduty_account()
    board, numbers = servicenow_instance(pages.ids["P3"])
    environment = {
        "GITHUB_TOKEN": GH_TOKEN,
        "PAGERDUTY_TOKEN": PD_TOKEN,
        "SN_USER": SN_USER,
        "SN_PASSWORD": SN_PASSWORD,
    }
    with (
        pytest.MonkeyPatch.context() as patch,
        github_world() as github,
        FakePagerDuty(pages.account, token=PD_TOKEN) as pagerduty,
        FakeServiceNow(board, user=SN_USER, password=SN_PASSWORD) as servicenow,
    ):
        for name, value in environment.items():
            patch.setenv(name, value)
        sources: list[dict[str, Any]] = [
            {
                "type": "github",
                "name": "gh",
                "repos": ["octo/web", "octo/api", "octo/billing"],
                "api_url": github.url,
                "token_env": "GITHUB_TOKEN",
            },
            {
                "type": "pagerduty",
                "name": "pd",
                "url": pagerduty.url,
                "token_env": "PAGERDUTY_TOKEN",
            },
            {
                "type": "servicenow",
                "name": "sn",
                "url": servicenow.url,
                "user_env": "SN_USER",
                "password_env": "SN_PASSWORD",
            },
        ]
        config = config_from_dict(
            {"output": {"path": str(out)}, "sources": sources, "services": SERVICES}
        )
        summary = dp.run_collect(config, runtime=Runtime(sleep=lambda seconds: None))
        assert summary.ok, summary.lines()
    yield World(dp.load(out), pages.ids, numbers)


def _label(world: World, source: str, incident_id: str) -> str:
    if source == "pd":
        return {value: key for key, value in world.pd_ids.items()}[incident_id]
    return {value: key for key, value in world.sn_numbers.items()}[incident_id]


def test_the_collection_holds_what_the_servers_hold(world: World) -> None:
    ds = world.dataset
    production = ds.deployments.loc[ds.deployments["is_production"].astype(bool)]
    assert sorted(NAMES[str(d)] for d in production["deployment_id"]) == sorted(IDS)
    labels = sorted(
        _label(world, str(row.source), str(row.incident_id)) for row in ds.incidents.itertuples()
    )
    assert labels == ["P1", "P2", "P3", "P4", "P5", "SNc", "SNd"]


def test_every_counted_incident_is_charged_to_the_right_deployment(world: World) -> None:
    prepared = dp.prepare(world.dataset)
    deployment = [NAMES[str(d)] for d in prepared.outcomes["deployment_id"]]
    charged = {
        _label(world, str(row.source), str(row.incident_id)): (
            deployment[int(row.outcome)] if int(row.outcome) >= 0 else None,
            None if pd.isna(row.charged_by) else str(row.charged_by),
            None if pd.isna(row.reason) else str(row.reason),
        )
        for row in prepared.incidents.itertuples()
    }
    assert charged == {
        "P1": ("w1", "service", None),
        "P2": ("a1", "service", None),
        "P3": ("w2", "service", None),
        "SNd": (None, None, None),  # the same event as P3
        "SNc": ("b1", "caused_by", None),  # by time it would have been b2
        "P4": (None, None, "no_deployment"),
        "P5": (None, None, "unknown_service"),
    }
    # The duplicate names P3's row, and P3 keeps its own (PagerDuty's) times.
    table = prepared.incidents
    labels = [
        _label(world, str(s), str(i))
        for s, i in zip(table["source"], table["incident_id"], strict=True)
    ]
    p3 = labels.index("P3")
    assert int(table["duplicate_of"].iloc[labels.index("SNd")]) == p3
    assert table["resolved_at"].iloc[p3] == pd.Timestamp(at(3, 15))
    unmatched = prepared.unmatched_incidents
    assert sorted(unmatched["reason"]) == ["no_deployment", "unknown_service"]
    text = incident_summary(prepared)
    assert text is not None and text.startswith("7 incidents in the data: 4 charged")
    assert "1 incident was the same event seen in a second system" in text
    assert "2 incidents matched no deployment: 1 names a service the catalogue" in text


def test_failure_rate_and_recovery_per_repo_match_the_hand_computation(world: World) -> None:
    s = dp.summary(world.dataset, by="repo").set_index("repo")
    repos = ["octo/api", "octo/billing", "octo/web"]
    assert sorted(s.index) == repos
    assert s["deployment_attempts"].to_dict() == {"octo/api": 3, "octo/billing": 2, "octo/web": 3}
    assert s["failed_deployments"].to_dict() == {"octo/api": 2, "octo/billing": 1, "octo/web": 2}
    assert s["change_failure_rate"].to_dict() == pytest.approx(
        {"octo/api": 2 / 3, "octo/billing": 1 / 2, "octo/web": 2 / 3}
    )
    assert s["recovery_count"].to_dict() == {"octo/api": 2, "octo/billing": 1, "octo/web": 2}
    assert s["recovery_median_hours"].to_dict() == pytest.approx(
        {"octo/api": (1 + 48) / 2, "octo/billing": 2.0, "octo/web": (2 + 3) / 2}
    )
    assert s["unrecovered"].to_dict() == {"octo/api": 0, "octo/billing": 0, "octo/web": 0}


def test_failure_rate_and_recovery_per_team_match_the_hand_computation(world: World) -> None:
    assert "team" not in world.dataset.deployments.columns  # the catalogue gives the teams
    s = dp.summary(world.dataset, by="team").set_index("team")
    assert s["deployment_attempts"].to_dict() == {"payments": 2, "storefront": 6}
    assert s["failed_deployments"].to_dict() == {"payments": 1, "storefront": 4}
    assert s["change_failure_rate"].to_dict() == pytest.approx(
        {"payments": 1 / 2, "storefront": 4 / 6}
    )
    # storefront's recoveries: 1, 2, 3 and 48 hours -> median 2.5 h.
    assert s["recovery_median_hours"].to_dict() == pytest.approx(
        {"payments": 2.0, "storefront": 2.5}
    )
    assert s["recovery_count"].to_dict() == {"payments": 1, "storefront": 4}
