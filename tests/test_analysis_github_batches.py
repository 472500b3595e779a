"""Issue 11 item 2 on the repository's GitHub test server: every failed production attempt
enters the analysis with the batch it tried to put live, checked against the fake's own model
(deployment i deploys pull request i's merge on a linear main branch, so an attempt tries to
put live the pull requests after the live deployment's, up to its own; bots' are no changes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fake_github import FakeGitHub, Repo, make_repo
from github_helpers import TOKEN, github_config, github_source

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.streams import Runtime


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


def world() -> Repo:
    repo = make_repo(pulls=90, deployments=80, runs=0, incidents=0)
    # Two failed attempts in a row: production deployment 9 fails right after 7 did, so it
    # tries to put live everything since deployment 5 (what 7 tried, and two more).
    nine = repo.deployments[9]
    nine["statuses"] = [
        {**status, "state": state}
        for status, state in zip(
            nine["statuses"], ["QUEUED", "IN_PROGRESS", "FAILURE"], strict=False
        )
    ]
    return repo


def by_hand(repo: Repo) -> dict[str, set[str]]:
    """Per failed production attempt (by deployment id): the non-bot pull requests between the
    live deployment's and its own, read from the fake's model."""
    numbers = [str(p["number"]) for p in repo.pulls]
    bots = {str(p["number"]) for p in repo.pulls if p["author"]["login"].endswith("[bot]")}
    order = [p["mergeSha"] for p in repo.pulls]
    expected: dict[str, set[str]] = {}
    live: int | None = None
    for deployment in sorted(repo.deployments, key=lambda d: d["createdAt"]):
        if deployment["environment"] != "production":
            continue
        states = [s["state"] for s in deployment["statuses"]]
        reach = order.index(deployment["sha"])
        if "FAILURE" in states:
            assert live is not None
            expected[str(deployment["id"])] = set(numbers[live + 1 : reach + 1]) - bots
        elif "SUCCESS" in states:
            live = reach
    return expected


def test_every_failed_attempt_has_the_batch_it_attempted(tmp_path: Path) -> None:
    repo = world()
    expected = by_hand(repo)
    assert len(expected) == 5  # deployments 7, 9, 29, 51 and 73
    assert expected["5009"] == {"7", "8", "9", "10"}  # after 7 failed, 9 tries again, and more
    assert expected["5073"] == {"73"}  # pull request 74 is a bot's: no change
    with FakeGitHub([repo], token=TOKEN) as server:
        config = github_config(
            tmp_path,
            [
                github_source(
                    server.url, since="2024-01-01", streams=["changes", "deployments", "commits"]
                )
            ],
        )
        lines = run_collect(config, runtime=Runtime(sleep=lambda _s: None)).lines()
    assert all("FAILED" not in line for line in lines), lines

    prepared = dp.prepare(dp.load(tmp_path))
    outcomes = prepared.outcomes
    failed = outcomes.loc[~outcomes["is_success"].to_numpy(dtype=bool), "deployment_id"]
    assert set(failed.astype(str)) == set(expected)
    batches = prepared.batches
    ids = outcomes["deployment_id"].astype(str).to_numpy()[batches["outcome"]]
    numbers = prepared.changes["number"].astype(str).to_numpy()[batches["change"]]
    for deployment_id, pulls in expected.items():
        assert set(numbers[ids == deployment_id]) == pulls, deployment_id

    # And the analysis counts them: each failed attempt with its batch, in a batch group.
    analysis = dp.analyze(prepared)
    table = analysis.deployments.assign(
        deployment_id=analysis.deployments["deployment_id"].astype(str)
    ).set_index("deployment_id")
    for deployment_id, pulls in expected.items():
        row = table.loc[deployment_id]
        assert bool(row["failed"]), deployment_id
        assert int(row["batch_changes"]) == len(pulls), deployment_id
        assert not pd.isna(row["batch_group"]), deployment_id
    in_groups = int(analysis.batch_size.groups["failures"].sum())
    assert in_groups == int(analysis.deployments["failed"].sum())  # no failure left out
