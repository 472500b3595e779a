"""End to end, as a user runs it: ``deliverypulse collect`` (the real CLI, in a subprocess)
against the fake GitLab, then ``dp.load`` and the metrics on what was stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fake_gitlab import FakeGitLab, synthetic_project

import deliverypulse as dp

TOKEN = "glpat-SENTINEL-e2e-0123456789"


@pytest.fixture
def server() -> Iterator[FakeGitLab]:
    with FakeGitLab(token=TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app"))
        yield fake


def cli_collect(config: Path) -> dict:
    env = {**os.environ, "GL_E2E_TOKEN": TOKEN}
    result = subprocess.run(
        [sys.executable, "-m", "deliverypulse", "collect", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    summary: dict = json.loads(result.stdout)
    return summary


def test_collect_then_metrics(server: FakeGitLab, tmp_path: Path) -> None:
    config = tmp_path / "deliverypulse.toml"
    config.write_text(
        f"""
[output]
path = "data"

[[sources]]
name = "app"
type = "gitlab"
project = "acme/app"
url = "{server.url}"
token_env = "GL_E2E_TOKEN"
""",
        encoding="utf-8",
    )
    first = cli_collect(config)
    assert {s["stream"]: s["fetched"] for s in first["streams"]} == {
        "deployments": 12,  # 8 production, 4 staging
        "commits": 86,
        "changes": 30,
        "test_runs": 40,
        "incidents": 3,
    }
    ds = dp.load(tmp_path / "data")

    # Six successful production deployments, all in January 2025 (the four successful
    # staging ones are stored but not counted).
    monthly = dp.metrics(ds, period="month", by=["repo"]).set_index("period")
    assert monthly.loc[pd.Timestamp("2025-01-01", tz="UTC"), "deployments"] == 6

    # Every deployment is of the default branch, so GitLab was not asked what each shipped:
    # the commit graph the connector stored links every deployment after the first (which
    # ships nothing older than itself) to exactly the merge requests GitLab says it shipped.
    project = server.projects["acme/app"]
    assert ds.deployment_changes.empty
    graph = dp.link(ds)
    graph = graph.loc[graph["change_id"].str.fullmatch(r"\d+")]  # merge requests, not trunk commits
    gitlab = {
        (str(d), str(mr["iid"]))
        for d, mrs in project.deployment_mrs.items()
        if d != 901
        for mr in mrs
    }
    assert set(zip(graph["deployment_id"], graph["change_id"], strict=True)) == gitlab

    # Lead time: merge request !6's first commit (the earliest authored of its three) at 11:00
    # on Jan 7, shipped by deployment 903, finished 23:40 on Jan 7.
    lead = dp.lead_times(ds).set_index("change_id")
    assert min(c["authored_date"] for c in project.mr_commits[6]) == "2025-01-07T11:00:00.000Z"
    assert lead.loc["6", "deployment_id"] == "903"
    assert lead.loc["6", "lead_time"] == pd.Timedelta(hours=12, minutes=40)

    server.clear_log()
    second = cli_collect(config)
    assert {s["added"] for s in second["streams"]} == {0}
    assert len(server.log) == 5  # the nightly rerun: one request per stream
