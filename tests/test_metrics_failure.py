"""Change failure rate, recovery time and rework rate: every signal, by hand.

No commit graph here, so changes link to deployments by merge time (the approximate path),
which keeps the scenario short: each change ships with the first deployment created after it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from deliverypulse.dataset import Dataset
from deliverypulse.dora import OptionError, deployment_outcomes, metrics


def deploy(
    deployment_id: str, finished: str, sha: str, status: str = "success", **extra: Any
) -> dict[str, Any]:
    created = (pd.Timestamp(finished) - pd.Timedelta(minutes=10)).isoformat()
    return {
        "repo": "o/a",
        "deployment_id": deployment_id,
        "environment": "production",
        "is_production": True,
        "sha": sha,
        "status": status,
        "created_at": created,
        "finished_at": finished,
        **extra,
    }


DEPLOYS = [
    deploy("d1", "2024-01-01T10:00Z", "s1"),
    deploy("d2", "2024-01-02T10:00Z", "s2", status="failure"),  # own status
    deploy("d3", "2024-01-02T12:00Z", "s3"),  # fixes d2: recovery 2 h, rework
    deploy("d4", "2024-01-03T10:00Z", "s4"),  # incident at 12:00, resolved 15:00: 3 h
    deploy("d5", "2024-01-04T10:00Z", "s5"),  # rolled back by d6: 24 h
    deploy("d6", "2024-01-05T10:00Z", "s4"),  # back to d4's sha: a rollback, rework
    deploy("d7", "2024-01-05T12:10Z", "s7"),  # ships C1, reverted by R1 21 h later
    deploy("d8", "2024-01-06T10:10Z", "s8"),  # ships R1 (rework); hot-fixed by H1 next day
    deploy("d9", "2024-01-07T10:10Z", "s9"),  # ships H1 (rework)
]
CHANGES = [
    {
        "repo": "o/a",
        "change_id": "C1",
        "created_at": "2024-01-05T08:00Z",
        "merged_at": "2024-01-05T11:00Z",
    },
    {
        "repo": "o/a",
        "change_id": "R1",
        "created_at": "2024-01-06T08:00Z",
        "merged_at": "2024-01-06T09:00Z",
        "is_revert": True,
        "reverts": "C1",
    },
    {
        "repo": "o/a",
        "change_id": "H1",
        "created_at": "2024-01-07T08:00Z",
        "merged_at": "2024-01-07T09:00Z",
        "is_hotfix": True,
    },
]
INCIDENTS = [
    {
        "repo": "o/a",
        "incident_id": "i1",
        "created_at": "2024-01-03T12:00Z",
        "resolved_at": "2024-01-03T15:00Z",
    },
    {"repo": "o/a", "incident_id": "i0", "created_at": "2023-12-01T00:00Z"},  # before any
]


def dataset(**changes: Any) -> Dataset:
    return Dataset.from_frames(
        deployments=DEPLOYS, changes=changes.get("changes", CHANGES), incidents=INCIDENTS
    )


def outcomes(**options: Any) -> pd.DataFrame:
    return deployment_outcomes(dataset(), **options).set_index("deployment_id")


def test_each_signal_marks_the_right_deployment() -> None:
    out = outcomes()
    failed = {
        name: set(out.index[out[f"failed_by_{name}"]])
        for name in ("status", "rollback", "revert", "hotfix", "incident")
    }
    assert failed == {
        "status": {"d2"},
        "rollback": {"d5"},
        "revert": {"d7"},
        "hotfix": {"d8"},
        "incident": {"d4"},  # charged to the last success before it, not to d5 after it
    }
    assert set(out.index[out["failed"]]) == {"d2", "d4", "d5", "d7", "d8"}
    assert set(out.index[out["is_rework"]]) == {"d3", "d6", "d8", "d9"}


def test_recovery_times() -> None:
    hours = outcomes()["recovery"].dropna() / pd.Timedelta(hours=1)
    assert hours.to_dict() == {
        "d2": 2.0,  # failed 10:00 → next success d3 12:00
        "d4": 3.0,  # incident opened 12:00 → resolved 15:00
        "d5": 24.0,  # d5 04 10:00 → rollback d6 05 10:00
        "d7": 22.0,  # d7 05 12:10 → R1 deployed by d8 06 10:10
        "d8": 24.0,  # d8 06 10:10 → H1 deployed by d9 07 10:10
    }


def test_metrics_row_with_every_signal() -> None:
    row = metrics(dataset(), by="repo").iloc[0]
    assert row["deployments"] == 8  # successes
    assert row["deployment_attempts"] == 9
    assert row["failed_deployments"] == 5
    assert row["change_failure_rate"] == pytest.approx(5 / 9)
    assert row["rework_deployments"] == 4
    assert row["rework_rate"] == pytest.approx(4 / 9)
    assert row["recovery_count"] == 5
    assert row["recovery_median_hours"] == pytest.approx(22)  # 2, 3, 22, 24, 24
    assert row["recovery_p90_hours"] == pytest.approx(24)
    assert row["deployment_days"] == 7  # Jan 1..7, d6 and d7 share the 5th
    assert row["change_failure_rate_cluster"] == "low"  # 56 % > 15 %
    assert row["recovery_cluster"] == "high"  # 22 h: under a day


@pytest.mark.parametrize(
    ("signals", "failed"),
    [
        (("status",), 1),
        (("rollback",), 1),
        (("revert",), 1),
        (("hotfix",), 1),
        (("incident",), 1),
        (("status", "incident"), 2),
        ((), 0),
    ],
)
def test_signals_are_options(signals: tuple[str, ...], failed: int) -> None:
    row = metrics(dataset(), by="repo", failure_signals=signals).iloc[0]
    assert row["failed_deployments"] == failed
    assert row["change_failure_rate"] == pytest.approx(failed / 9)


def test_revert_window() -> None:
    # R1 came 20 h 50 min after d7, H1 22 h 50 min after d8: both outside a 12-hour window.
    row = metrics(dataset(), by="repo", revert_window="12h").iloc[0]
    assert row["failed_deployments"] == 3
    out = outcomes(revert_window="21h")
    assert bool(out.loc["d7", "failed_by_revert"]) and not bool(out.loc["d8", "failed_by_hotfix"])


def test_revert_of_a_change_never_deployed_fails_nothing() -> None:
    changes = [*CHANGES[:1], {**CHANGES[1], "reverts": "NOPE-but-named"}, *CHANGES[2:]]
    # Unknown name: charged to the last success before the revert's merge (d7) all the same.
    assert bool(outcomes_for(changes).loc["d7", "failed_by_revert"])
    early = [
        {**CHANGES[0], "merged_at": "2024-01-05T11:00Z"},
        {**CHANGES[1], "merged_at": "2024-01-05T11:30Z"},
    ]
    # Reverted before any deployment shipped C1: no deployment failed by it.
    assert not outcomes_for(early)["failed_by_revert"].any()


def outcomes_for(changes: list[dict[str, Any]]) -> pd.DataFrame:
    return deployment_outcomes(dataset(changes=changes)).set_index("deployment_id")


def test_unresolved_incident_is_counted_unrecovered() -> None:
    incidents = [{**INCIDENTS[0], "resolved_at": None}]
    ds = Dataset.from_frames(deployments=DEPLOYS, changes=CHANGES, incidents=incidents)
    row = metrics(ds, by="repo", failure_signals=("incident",)).iloc[0]
    assert row["failed_deployments"] == 1
    assert row["recovery_count"] == 0
    assert row["unrecovered"] == 1


def test_is_rollback_flag_marks_the_previous_deployment() -> None:
    deploys = [*DEPLOYS[:3], deploy("d4", "2024-01-03T10:00Z", "s9", is_rollback=True)]
    ds = Dataset.from_frames(deployments=deploys)
    out = deployment_outcomes(ds).set_index("deployment_id")
    assert set(out.index[out["failed_by_rollback"]]) == {"d3"}


def test_a_redeploy_of_the_same_sha_is_no_rollback() -> None:
    deploys = [*DEPLOYS[:1], deploy("d1b", "2024-01-01T11:00Z", "s1")]
    out = deployment_outcomes(Dataset.from_frames(deployments=deploys))
    assert not out["failed"].any()


def test_unknown_signal_is_a_clear_error() -> None:
    with pytest.raises(OptionError, match="unknown failure signal 'pager'"):
        metrics(dataset(), failure_signals=("pager",))


def test_incidents_of_another_repo_are_not_charged_here() -> None:
    incidents = [{**INCIDENTS[0], "repo": "o/b"}]
    ds = Dataset.from_frames(deployments=DEPLOYS, changes=CHANGES, incidents=incidents)
    assert not deployment_outcomes(ds)["failed_by_incident"].any()


@pytest.mark.parametrize(
    ("name", "failed"),
    [
        ("C1", "e1"),  # by id
        ("m1", "e1"),  # by merge sha
        ("41", "e1"),  # by number
        ("#41", "e1"),  # by #number
        ("041", "e2"),  # no change is spelled so: the last success before the revert's merge
        ("#4", "e2"),
    ],
)
def test_a_revert_finds_its_change_by_id_sha_or_number(name: str, failed: str) -> None:
    deploys = [
        deploy("e0", "2023-12-31T10:00Z", "s0"),  # the first: what it shipped is unknown
        deploy("e1", "2024-01-01T10:00Z", "s1"),
        deploy("e2", "2024-01-02T10:00Z", "s2"),
        deploy("e3", "2024-01-03T10:00Z", "s3"),
    ]
    changes = [
        {"repo": "o/a", "change_id": "C1", "number": 41, "merge_sha": "m1",
         "created_at": "2024-01-01T08:00Z", "merged_at": "2024-01-01T09:00Z"},
        {"repo": "o/a", "change_id": "C2", "number": 42, "merge_sha": "m2",
         "created_at": "2024-01-02T08:00Z", "merged_at": "2024-01-02T09:00Z"},
        {"repo": "o/a", "change_id": "R", "number": 43, "merge_sha": "m3",
         "created_at": "2024-01-03T08:00Z", "merged_at": "2024-01-03T09:00Z",
         "is_revert": True, "reverts": name},
    ]  # fmt: skip
    out = deployment_outcomes(Dataset.from_frames(deployments=deploys, changes=changes))
    assert set(out.loc[out["failed_by_revert"], "deployment_id"]) == {failed}
