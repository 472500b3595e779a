"""Issue 14: incidents from where they are managed (PagerDuty, ServiceNow) charged across a
service, duplicates counted once, unmatched ones listed with reasons, and metrics per team.

The organisation, by hand:

- service **shop** (team *storefront*): repos acme/web and acme/api; PagerDuty names it
  "Shop (PagerDuty)" or by its id PSHOP01, ServiceNow by the configuration item "Shop CI".
- service **billing** (team *payments*): repo acme/billing; PagerDuty names it "Billing".

Production deployments (github, March 2024, all successful but a3):

    acme/web      w1 01 10:00   w2 04 10:00   w3 06 10:00   w4 08 10:00
    acme/api      a1 02 10:00   a2 05 10:00   a3 07 10:00 (failure)
    acme/billing  b1 01 09:00   b2 03 09:00

Incidents, and where each is charged:

    G1   github acme/web issue, 01 12:00-13:00      -> w1 (its repo's last deployment)   1 h
    P1   pagerduty "Shop (PagerDuty)", 04 12:00-14:00 -> w2 (web's w2 after api's a1)   2 h
    P2   pagerduty "PSHOP01", 05 11:00-12:30        -> a2 (api's a2 after web's w2)   1.5 h
    P6   pagerduty "Shop (PagerDuty)", 06 11:00-13:00 -> w3                              2 h
    SN2  servicenow "Shop CI", correlation id P6     -> the same event as P6: not again
    SN1  servicenow "Billing", caused_by CHG0001 (which names b1's sha), 04 08:00-10:00
                                                     -> b1 (by its cause; by time it
                                                        would be b2)                      2 h
    P3   pagerduty "Billing", 20 00:00              -> none: b2 is 16.6 days before,
                                                       beyond the 7-day look-back
    P4   pagerduty "Search"                         -> none: the catalogue has no Search
    P5   pagerduty, no service                      -> none: names no service
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

import deliverypulse as dp
from deliverypulse.store.catalogue import Service

CATALOGUE = [
    Service(
        name="shop",
        repos=("acme/web", "acme/api"),
        configuration_items=("Shop CI",),
        incident_services=("Shop (PagerDuty)", "PSHOP01"),
        team="storefront",
    ),
    Service(
        name="billing", repos=("acme/billing",), incident_services=("Billing",), team="payments"
    ),
]


def deploy(repo: str, deployment_id: str, day: int, hour: int, status: str = "success") -> dict:
    finished = pd.Timestamp(2024, 3, day, hour, tz="UTC")
    return {
        "source": "github",
        "repo": repo,
        "deployment_id": deployment_id,
        "sha": hashlib.sha1(deployment_id.encode()).hexdigest(),
        "environment": "production",
        "is_production": True,
        "status": status,
        "created_at": finished - pd.Timedelta(minutes=10),
        "finished_at": finished,
    }


DEPLOYMENTS = [
    deploy("acme/web", "w1", 1, 10),
    deploy("acme/web", "w2", 4, 10),
    deploy("acme/web", "w3", 6, 10),
    deploy("acme/web", "w4", 8, 10),
    deploy("acme/api", "a1", 2, 10),
    deploy("acme/api", "a2", 5, 10),
    deploy("acme/api", "a3", 7, 10, status="failure"),
    deploy("acme/billing", "b1", 1, 9),
    deploy("acme/billing", "b2", 3, 9),
]
B1_SHA = next(d["sha"] for d in DEPLOYMENTS if d["deployment_id"] == "b1")


def incident(
    source: str, incident_id: str, opened: str, resolved: str | None = None, **extra: str
) -> dict:
    repo = {"pagerduty": "pagerduty", "servicenow": "acme.service-now.com"}.get(source, "")
    return {
        "source": source,
        "repo": extra.pop("repo", repo),
        "incident_id": incident_id,
        "created_at": f"2024-03-{opened}Z",
        "resolved_at": None if resolved is None else f"2024-03-{resolved}Z",
        **extra,
    }


INCIDENTS = [
    incident("github", "G1", "01T12:00", "01T13:00", repo="acme/web"),
    incident("pagerduty", "P1", "04T12:00", "04T14:00", service="Shop (PagerDuty)"),
    incident("pagerduty", "P2", "05T11:00", "05T12:30", service="PSHOP01"),
    incident("pagerduty", "P6", "06T11:00", "06T13:00", service="shop (pagerduty) "),
    incident(
        "servicenow", "INC0002", "06T11:05", "06T15:00", service="Shop CI", correlation_id="P6"
    ),
    incident(
        "servicenow", "INC0001", "04T08:00", "04T10:00", service="Billing", caused_by="CHG0001"
    ),
    incident("pagerduty", "P3", "20T00:00", "20T01:00", service="Billing"),
    incident("pagerduty", "P4", "05T00:00", "05T01:00", service="Search"),
    incident("pagerduty", "P5", "05T00:00", "05T01:00"),
]

CHANGE_REQUESTS = [
    {
        "source": "servicenow",
        "repo": "acme.service-now.com",
        "change_request_id": "CHG0001",
        "type": "normal",
        "references": [f"acme/billing@{B1_SHA[:8]}"],
    }
]


@pytest.fixture
def ds() -> dp.Dataset:
    return dp.Dataset.from_frames(
        deployments=DEPLOYMENTS,
        incidents=INCIDENTS,
        change_requests=CHANGE_REQUESTS,
        services=CATALOGUE,
    )


def charged_to(prepared: dp.Prepared) -> dict[str, str | None]:
    table = prepared.incidents
    deployment = prepared.outcomes["deployment_id"].astype(str).tolist()
    return {
        incident_id: deployment[row] if row >= 0 else None
        for incident_id, row in zip(table["incident_id"], table["outcome"], strict=True)
    }


def test_every_counted_incident_is_charged_to_the_right_deployment(ds: dp.Dataset) -> None:
    prepared = dp.prepare(ds)
    assert charged_to(prepared) == {
        "G1": "w1",
        "P1": "w2",
        "P2": "a2",
        "P6": "w3",
        "INC0002": None,  # the same event as P6
        "INC0001": "b1",
        "P3": None,
        "P4": None,
        "P5": None,
    }
    how = prepared.incidents.set_index("incident_id")["charged_by"]
    assert how.dropna().to_dict() == {
        "G1": "repo",
        "P1": "service",
        "P2": "service",
        "P6": "service",
        "INC0001": "caused_by",
    }


def test_the_same_event_in_two_systems_counts_once(ds: dp.Dataset) -> None:
    table = dp.prepare(ds).incidents.set_index("incident_id")
    rows = dp.prepare(ds).incidents["incident_id"].tolist()
    assert rows[table.loc["INC0002", "duplicate_of"]] == "P6"
    assert (table["duplicate_of"] >= 0).sum() == 1
    # Not unmatched either: it is counted, as P6.
    assert "INC0002" not in dp.prepare(ds).unmatched_incidents["incident_id"].tolist()


def test_unmatched_incidents_are_listed_with_their_reasons(ds: dp.Dataset) -> None:
    unmatched = dp.prepare(ds).unmatched_incidents.set_index("incident_id")
    assert unmatched["reason"].to_dict() == {
        "P3": "no_deployment",
        "P4": "unknown_service",
        "P5": "no_service",
    }
    assert unmatched.loc["P4", "explanation"] == "names a service the catalogue does not know"


def test_the_look_back_is_an_option(ds: dp.Dataset) -> None:
    prepared = dp.prepare(ds, incident_lookback="20D")
    assert charged_to(prepared)["P3"] == "b2"
    assert prepared.unmatched_incidents["incident_id"].tolist() == ["P4", "P5"]


def test_an_incident_outside_the_window_is_listed_as_such(ds: dp.Dataset) -> None:
    prepared = dp.prepare(ds, since="2024-03-02")
    unmatched = prepared.unmatched_incidents.set_index("incident_id")["reason"]
    # G1 and INC0001 are charged to w1 and b1, which finished before the window.
    assert unmatched.to_dict() == {
        "G1": "outside_window",
        "INC0001": "outside_window",
        "P3": "no_deployment",
        "P4": "unknown_service",
        "P5": "no_service",
    }


def test_failure_rate_and_recovery_per_repo_match_a_hand_computation(ds: dp.Dataset) -> None:
    # acme/web: 4 attempts; w1, w2, w3 failed (G1, P1, P6) -> 3/4; recoveries 1, 2, 2 h.
    # acme/api: 3 attempts; a2 (P2) and a3 (its status) failed -> 2/3; a2 recovered in 1.5 h,
    #           a3 never (no later success).
    # acme/billing: 2 attempts; b1 (INC0001, by its cause) failed -> 1/2; 2 h.
    s = dp.summary(ds, by="repo").set_index("repo")
    assert s["deployment_attempts"].to_dict() == {"acme/api": 3, "acme/billing": 2, "acme/web": 4}
    assert s["failed_deployments"].to_dict() == {"acme/api": 2, "acme/billing": 1, "acme/web": 3}
    assert s["change_failure_rate"].to_dict() == pytest.approx(
        {"acme/api": 2 / 3, "acme/billing": 1 / 2, "acme/web": 3 / 4}
    )
    assert s["recovery_median_hours"].to_dict() == pytest.approx(
        {"acme/api": 1.5, "acme/billing": 2.0, "acme/web": 2.0}
    )
    assert s["recovery_count"].to_dict() == {"acme/api": 1, "acme/billing": 1, "acme/web": 3}
    assert s["unrecovered"].to_dict() == {"acme/api": 1, "acme/billing": 0, "acme/web": 0}


def test_failure_rate_and_recovery_per_team_match_a_hand_computation(ds: dp.Dataset) -> None:
    # storefront = acme/web + acme/api: 7 attempts, 5 failed -> 5/7 (low: above 15 %);
    #   recoveries 1, 2, 2, 1.5 h -> median 1.75 h (high: under a day).
    # payments = acme/billing: 1/2 (low); recovery 2 h (high).
    assert "team" not in ds.deployments.columns  # nobody added it: the catalogue gives it
    s = dp.summary(ds, by=["team"]).set_index("team")
    assert s["deployment_attempts"].to_dict() == {"payments": 2, "storefront": 7}
    assert s["failed_deployments"].to_dict() == {"payments": 1, "storefront": 5}
    assert s["change_failure_rate"].to_dict() == pytest.approx(
        {"payments": 0.5, "storefront": 5 / 7}
    )
    assert s["recovery_median_hours"].to_dict() == pytest.approx(
        {"payments": 2.0, "storefront": 1.75}
    )
    assert s["recovery_cluster"].to_dict() == {"payments": "high", "storefront": "high"}
    assert s["change_failure_rate_cluster"].to_dict() == {"payments": "low", "storefront": "low"}
    monthly = dp.metrics(ds, by="team").set_index("team")
    assert monthly["failed_deployments"].to_dict() == {"payments": 1, "storefront": 5}


def test_each_team_is_rated_on_its_own_rates() -> None:
    # Elite payments (a deployment a day, no failure) beside a slow storefront.
    days = range(1, 29)
    deployments = [deploy("acme/billing", f"b{day}", day, 9) for day in days] + [
        deploy("acme/web", "w1", 1, 10),
        deploy("acme/web", "w2", 28, 10),
    ]
    ds = dp.Dataset.from_frames(deployments=deployments, services=CATALOGUE)
    s = dp.summary(ds, by="team").set_index("team")
    assert s.loc["payments", "deployment_frequency_cluster"] == "elite"
    # 2 in 28 days is 1/14 a day: under weekly, so medium, whatever payments does.
    assert s.loc["storefront", "deployment_frequency_cluster"] == "medium"


def test_teams_come_from_the_catalogue_by_repo_and_a_users_column_wins(ds: dp.Dataset) -> None:
    teams = ds.with_teams()
    assert dict(zip(teams.deployments["repo"], teams.deployments["team"], strict=True)) == {
        "acme/web": "storefront",
        "acme/api": "storefront",
        "acme/billing": "payments",
    }
    own = dp.Dataset.from_frames(
        deployments=[{**d, "team": "mine"} for d in DEPLOYMENTS], services=CATALOGUE
    )
    assert set(own.with_teams().deployments["team"]) == {"mine"}
    bare = dp.Dataset.from_frames(deployments=DEPLOYMENTS)
    assert bare.with_teams() is bare
