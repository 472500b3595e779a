"""Issue 16 on the repository's GitHub test server: ``Analysis.controls`` counts for every
control match a hand computation from the fake's own model.

The scenario (one repo, 30 production deployments; deployment i deploys pull request i's merge
on a linear main branch): every 4th pull request has no review and every 10th only a comment
after it was merged; CI runs on the deployed commits pass, fail, fail then pass on a second
run, finish only after the deployment started, or are missing; some deployments are created by
a person by hand (a User creator, no Actions run in their statuses), the rest by ``deploy-bot``
(a machine user the bots pattern names); every other production deployment is gated. Only the
deployments' own statuses fail them (no reverts, hotfixes or incidents).

Set through the dataset frames after collection: the change requests (CAB approval: a
ServiceNow normal change naming every fourth production deployment; the ServiceNow fake is
exercised by tests/test_change_board_analysis.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_github import FakeGitHub, Repo, make_repo, ts
from github_helpers import TOKEN, github_config, github_source

import deliverypulse as dp
from deliverypulse.analysis.model import CONTROLS
from deliverypulse.collector import run_collect
from deliverypulse.streams import Runtime

SINCE = "2023-12-01"


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


def _hours(text: str) -> float:
    """Hours since the fake's base time of one of its timestamps."""
    return (pd.Timestamp(text) - pd.Timestamp(ts(0))) / pd.Timedelta(hours=1)


def world() -> Repo:
    repo = make_repo(pulls=60, deployments=60, runs=0, incidents=0, gated_every=2)
    for i, pull in enumerate(repo.pulls):
        pull.update(title=f"Change {i + 1}", body="", headRefName=f"feature/{i + 1}")
        if i % 4 == 1:
            pull["reviews"] = []  # merged without review
        elif i % 10 == 6:  # a comment by someone else, but only after the merge
            after = ts(_hours(pull["mergedAt"]) + 1)
            pull["reviews"] = [
                {
                    "state": "COMMENTED",
                    "submittedAt": after,
                    "author": {"__typename": "User", "login": "rev1"},
                }
            ]
    run_id = 7_000_000
    for i, deployment in enumerate(repo.deployments):
        if deployment["environment"] != "production":
            continue
        j = i // 2
        if j % 3 == 1:  # alice deploys by hand: a person, no Actions run behind it
            deployment["creator"] = "alice"
            deployment["creator_type"] = "User"
            for status in deployment["statuses"]:
                status["logUrl"] = None
        if i % 7 == 3:  # more failed attempts than the fake's own (i % 11 == 7)
            deployment["statuses"] = [
                {**status, "state": state}
                for status, state in zip(
                    deployment["statuses"], ["QUEUED", "IN_PROGRESS", "FAILURE"], strict=False
                )
            ]
        start = _hours(deployment["createdAt"])
        kind = j % 5
        plan: list[tuple[str, float, float]] = []  # (conclusion, created, finished) in hours
        if kind == 1:
            plan = [("success", start - 1, start - 0.5)]
        elif kind == 2:
            plan = [("failure", start - 1, start - 0.5)]
        elif kind == 3:  # red, then run again and green: the latest counts
            plan = [("failure", start - 2, start - 1.5), ("success", start - 1, start - 0.5)]
        elif kind == 4:  # green, but only after the deployment had started
            plan = [("success", start - 0.2, start + 1)]
        for conclusion, created, finished in plan:
            run_id += 1
            repo.runs.append(
                {
                    "id": run_id,
                    "name": "CI",
                    "head_sha": deployment["sha"],
                    "head_branch": "main",
                    "event": "push",
                    "status": "completed",
                    "conclusion": conclusion,
                    "created_at": ts(created),
                    "run_started_at": ts(created + 0.01),
                    "updated_at": ts(finished),
                    "run_attempt": 1,
                }
            )
    return repo


def cab_shas(repo: Repo) -> set[str]:
    """The production deployments a normal change request names: every fourth."""
    production = [d for d in repo.deployments if d["environment"] == "production"]
    return {str(d["sha"]) for k, d in enumerate(production) if k % 4 == 0}


def by_hand(repo: Repo) -> dict[str, dict[str, Any]]:
    """Per production deployment id: failed and each control, from the fake's model."""
    pulls = repo.pulls
    order = [p["mergeSha"] for p in pulls]
    cab = cab_shas(repo)

    def reviewed(pull: dict[str, Any]) -> bool:
        merged = _hours(pull["mergedAt"])
        return any(
            r["author"]["login"] != pull["author"]["login"] and _hours(r["submittedAt"]) <= merged
            for r in pull["reviews"]
        )

    expected: dict[str, dict[str, Any]] = {}
    live = -1
    for deployment in repo.deployments:
        if deployment["environment"] != "production":
            continue
        states = [s["state"] for s in deployment["statuses"]]
        reach = order.index(deployment["sha"])
        batch = [
            p for p in pulls[live + 1 : reach + 1] if not p["author"]["login"].endswith("[bot]")
        ]
        failed = "FAILURE" in states
        if not failed:
            live = reach
        start = _hours(deployment["createdAt"])
        mine = [r for r in repo.runs if r["head_sha"] == deployment["sha"]]
        done = [r for r in mine if _hours(r["updated_at"]) < start]
        latest = max(done, key=lambda r: r["created_at"]) if done else None
        expected[str(deployment["id"])] = {
            "failed": failed,
            "fully_reviewed": all(reviewed(p) for p in batch),
            "reviewed_share": sum(reviewed(p) for p in batch) / len(batch),
            "gated": "WAITING" in states,
            "tests_passed": latest is not None and latest["conclusion"] == "success",
            "tests_failed_ignored": latest is not None and latest["conclusion"] == "failure",
            "automated": deployment["creator"] != "alice",
            "cab_approved": deployment["sha"] in cab,
        }
    return expected


def with_board(ds: dp.Dataset, repo: Repo) -> dp.Dataset:
    """The dataset with a ServiceNow normal change naming each CAB-approved deployment (see
    the module docstring)."""
    deployments = ds.deployments
    requests = [
        {
            "source": "sn",
            "repo": repo.full_name,
            "change_request_id": f"CHG{k:07d}",
            "type": "normal",
            "state": "closed",
            "approval": "approved",
            "references": [f"{repo.full_name}@{sha}"],
        }
        for k, sha in enumerate(sorted(cab_shas(repo)))
    ]
    coerced = dp.Dataset.from_frames(deployments=deployments, change_requests=requests)
    return dataclasses.replace(
        ds, deployments=coerced.deployments, change_requests=coerced.change_requests
    )


def test_controls_counts_match_a_hand_computation(tmp_path: Path) -> None:
    repo = world()
    expected = by_hand(repo)
    assert len(expected) == 30
    with FakeGitHub([repo], token=TOKEN) as server:
        config = github_config(
            tmp_path,
            [
                github_source(
                    server.url,
                    since="2023-12-01",
                    streams=["changes", "deployments", "commits", "test_runs"],
                )
            ],
        )
        lines = run_collect(config, runtime=Runtime(sleep=lambda _s: None)).lines()
    assert all("FAILED" not in line for line in lines), lines
    ds = with_board(dp.load(tmp_path), repo)
    analysis = dp.analyze(ds, since=SINCE)

    table = analysis.deployments.assign(
        deployment_id=analysis.deployments["deployment_id"].astype(str)
    ).set_index("deployment_id")
    assert set(table.index) == set(expected)
    for deployment_id, want in expected.items():
        row = table.loc[deployment_id]
        for name, value in want.items():
            if name == "reviewed_share":
                assert row[name] == pytest.approx(value), (deployment_id, name)
            else:
                assert bool(row[name]) == value, (deployment_id, name)

    # Every control has deployments with and without it, and the counts add up by hand.
    controls = analysis.controls.set_index("control")
    for control in CONTROLS:
        having = [e for e in expected.values() if e[control]]
        lacking = [e for e in expected.values() if not e[control]]
        assert having and lacking, control
        row = controls.loc[control]
        assert (
            row["with_deployments"],
            row["with_failures"],
            row["without_deployments"],
            row["without_failures"],
            row["unknown_deployments"],
            row["strata_both_ways"],
        ) == (
            len(having),
            sum(e["failed"] for e in having),
            len(lacking),
            sum(e["failed"] for e in lacking),
            0,
            1,
        ), control
        assert row["plain"].startswith(
            f"{row['label']}: {sum(e['failed'] for e in having)} of {len(having)} "
        ), control
    ignored = sum(e["tests_failed_ignored"] for e in expected.values())
    assert ignored == int(table["tests_failed_ignored"].sum()) > 0
