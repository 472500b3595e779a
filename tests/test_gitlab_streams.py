"""The GitLab connector's finer points: updates of what was already stored, pagination styles,
concurrency, bots, rollbacks and resuming an interrupted walk."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deliverypulse_gitlab.api import GitLabAPI
from fake_gitlab import FakeGitLab, Fault, Scenario, gitlab_source, synthetic_project

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.store.state import SyncState
from deliverypulse.streams import Runtime

TOKEN = "glpat-SENTINEL-streams-0123456789"
#: Retry backoffs and rate-limit waits happen without waiting.
NO_SLEEP = Runtime(sleep=lambda seconds: None)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)


@pytest.fixture
def server() -> Iterator[FakeGitLab]:
    with FakeGitLab(token=TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app"))
        yield fake


def collect(server: FakeGitLab, out: Path, **options: Any) -> RunSummary:
    source = gitlab_source(server, token_env="GL_TEST_TOKEN", **options)
    summary = run_collect(
        config_from_dict({"output": {"path": str(out)}, "sources": [source]}), runtime=NO_SLEEP
    )
    assert summary.ok, summary.lines()
    return summary


def test_a_deployment_that_finishes_later_is_updated_and_linked_then(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    finished = next(d for d in project.deployments if d["id"] == 909)
    # Deployed from a maintenance branch, so GitLab is asked what it shipped (the commit
    # graph of the default branch cannot tell).
    finished["ref"] = "release-1"
    running = copy.deepcopy(finished)
    running.update(status="running", finished_at=None, updated_at="2025-01-11T06:01:00.000Z")
    project.deployments[project.deployments.index(finished)] = running
    collect(server, tmp_path, streams=["deployments"])
    stored = dp.load(tmp_path)
    assert stored.deployments.set_index("deployment_id").loc["909", "status"] == "in_progress"
    assert "909" not in set(stored.deployment_changes["deployment_id"])

    project.deployments[project.deployments.index(running)] = dict(
        finished, updated_at="2025-02-01T00:00:00.000Z"
    )
    project.changed()
    server.clear_log()
    collect(server, tmp_path, streams=["deployments"])
    stored = dp.load(tmp_path)
    assert stored.deployments.set_index("deployment_id").loc["909", "status"] == "success"
    assert set(stored.deployment_changes.query("deployment_id == '909'")["change_id"]) == {
        "17",
        "18",
        "19",
    }
    assert [r.path.rsplit("/", 2)[-2] for r in server.requests(r"/merge_requests$")] == ["909"]
    assert not server.requests(r"/projects/acme/app$")  # the default branch was remembered


def test_a_late_comment_on_an_old_merge_request_does_not_undo_it(
    server: FakeGitLab, tmp_path: Path
) -> None:
    collect(server, tmp_path, streams=["changes"])
    before = dp.load(tmp_path).changes.set_index("change_id").loc["2"]
    project = server.projects["acme/app"]
    project.merge_requests[1] = dict(project.merge_requests[1], updated_at="2025-03-01T00:00:00Z")
    project.changed()
    server.clear_log()
    collect(server, tmp_path, streams=["changes"])
    after = dp.load(tmp_path).changes.set_index("change_id").loc["2"]
    assert after["first_commit_at"] == before["first_commit_at"]
    assert after["first_review_at"] == before["first_review_at"]
    assert len(server.log) == 1  # the list only: no commit window, no events walk


def test_offset_pages_without_link_header_follow_x_next_page(tmp_path: Path) -> None:
    with FakeGitLab(token=TOKEN, link_headers=False) as fake:
        fake.add_project(synthetic_project("acme/app", scenario=Scenario(pipelines=250)))
        api = GitLabAPI(url=fake.url, token=TOKEN, source="t", token_env="GL_TEST_TOKEN")
        pages = list(api.pages("/projects/acme%2Fapp/pipelines", {"sort": "asc"}))
        api.close()
        assert [len(page) for page in pages] == [100, 100, 50]
        assert [r.query.get("page") for r in fake.log] == [None, "2", "3"]
        assert "Link" not in fake.log[0].headers and fake.log[0].headers["X-Next-Page"] == "2"


def test_jobs_are_walked_with_keyset_pagination(server: FakeGitLab, tmp_path: Path) -> None:
    collect(server, tmp_path, streams=["test_runs"])
    jobs = server.requests(r"/jobs$")
    assert len(jobs) == 2  # 120 jobs
    assert all(r.query["pagination"] == "keyset" for r in jobs)
    assert "cursor" in jobs[1].query and "page" not in jobs[1].query
    assert "X-Total" not in jobs[0].headers  # keyset pages carry no totals


def test_projects_of_a_group_run_concurrently_within_bounds(tmp_path: Path) -> None:
    small = Scenario(merge_requests=4, deployments=2, pipelines=4, incidents=1)
    with FakeGitLab(token=TOKEN, latency=0.03) as fake:
        fake.groups["acme"] = []
        for number in range(6):
            fake.add_project(synthetic_project(f"acme/p{number}", number + 1, scenario=small))
        collect(fake, tmp_path, group="acme", concurrency=2, streams=["changes", "incidents"])
        assert 2 <= fake.max_in_flight <= 2 * 4  # 2 projects, each up to 4 per-object calls
    assert dp.load(tmp_path).changes["repo"].nunique() == 6


def test_bots_and_rollbacks(server: FakeGitLab, tmp_path: Path) -> None:
    project = server.projects["acme/app"]
    project.merge_requests[0]["author"] = dict(
        project.merge_requests[0]["author"], username="renovate-bot"
    )
    project.merge_requests[1]["author"] = dict(
        project.merge_requests[1]["author"], username="svc-ci"
    )
    older = next(d for d in project.deployments if d["id"] == 901)
    rollback = copy.deepcopy(next(d for d in project.deployments if d["id"] == 909))
    rollback.update(id=950, iid=950, sha=older["sha"], created_at="2025-01-13T00:00:00.000Z")
    rollback.update(updated_at="2025-01-13T00:20:00.000Z", finished_at="2025-01-13T00:20:00.000Z")
    project.deployments.append(rollback)
    collect(server, tmp_path, bots=r"^svc-|-bot$", streams=["deployments", "changes"])
    ds = dp.load(tmp_path)
    bots = ds.changes.set_index("change_id")["is_bot"]
    assert bots["1"] and bots["2"] and not bots["3"]
    # GitLab marks no rollback: the connector leaves it unknown and the metrics decide from
    # the sequence: 950 redeployed 901's sha, so it rolled back the deployment before it.
    assert ds.deployments["is_rollback"].isna().all()
    outcomes = dp.deployment_outcomes(ds).set_index("deployment_id")
    before = outcomes.loc[outcomes["deployed_at"] < outcomes.loc["950", "deployed_at"]]
    rolled_back = before.loc[before["is_success"]].sort_values("deployed_at").index[-1]
    assert list(outcomes.index[outcomes["failed_by_rollback"]]) == [rolled_back]
    assert outcomes.loc["950", "is_rework"]


def test_an_interrupted_walk_resumes_where_it_stopped(tmp_path: Path) -> None:
    many = Scenario(merge_requests=40, deployments=140, pipelines=20)
    with FakeGitLab(token=TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app", scenario=many))
        source = gitlab_source(fake, token_env="GL_TEST_TOKEN", streams=["deployments"])
        config = config_from_dict({"output": {"path": str(tmp_path)}, "sources": [source]})
        # Let the first page through, then fail the second for good.
        original = fake._take_fault
        seen = {"pages": 0}

        def second_page_fails(path: str) -> Any:
            if path.endswith("app/deployments"):
                seen["pages"] += 1
                if seen["pages"] > 1:
                    return Fault(path, "500")
            return original(path)

        fake._take_fault = second_page_fails  # type: ignore[method-assign]
        first = run_collect(config, runtime=NO_SLEEP)
        assert not first.ok
        stored_first = len(dp.load(tmp_path).deployments)
        assert 0 < stored_first < 210  # 140 production and 70 staging deployments
        fake._take_fault = original  # type: ignore[method-assign]
        fake.clear_log()
        second = run_collect(config, runtime=NO_SLEEP)
        assert second.ok, second.lines()
        listing = fake.requests(r"app/deployments$")
        assert listing[0].query.get("updated_after")  # resumed from page 1's checkpoint
    ids = dp.load(tmp_path).deployments["deployment_id"]
    assert len(ids) == ids.nunique() == 210
    assert pd.Series(ids).notna().all()


def test_a_production_pipeline_still_running_gets_its_report_once_finished(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    deployment = next(d for d in project.deployments if d["id"] == 909)
    pipeline = project.by_id("pipelines")[deployment["deployable"]["pipeline"]["id"]]
    pipeline["status"] = "running"
    collect(server, tmp_path, streams=["deployments", "test_runs"])
    run_id = str(pipeline["id"])
    assert pd.isna(dp.load(tmp_path).test_runs.set_index("run_id").loc[run_id, "tests_total"])

    pipeline.update(status="success", updated_at="2025-02-01T00:00:00.000Z")
    project.changed()
    server.clear_log()
    collect(server, tmp_path, streams=["deployments", "test_runs"])
    assert dp.load(tmp_path).test_runs.set_index("run_id").loc[run_id, "tests_total"] > 0
    assert len(server.requests(r"/test_report_summary$")) == 1


def test_jobs_walk_covers_a_first_run_and_stops_early_for_one_old_pipeline(
    tmp_path: Path,
) -> None:
    with FakeGitLab(token=TOKEN) as fake:
        project = synthetic_project("acme/app", scenario=Scenario(pipelines=1000))
        fake.add_project(project)
        collect(fake, tmp_path, streams=["test_runs"], test_reports="none")
        assert len(fake.requests(r"/jobs$")) == 30  # 3,000 jobs, all the way back
        assert not fake.requests(r"/pipelines/\d+$")

        oldest, newest = project.pipelines[0], project.pipelines[-1]
        for pipeline in (oldest, newest):  # a job of each was retried today
            pipeline["updated_at"] = "2025-06-01T00:00:00.000Z"
        project.changed()
        fake.clear_log()
        collect(fake, tmp_path, streams=["test_runs"], test_reports="none")
        assert len(fake.requests(r"/jobs$")) == 1  # the newest is on the first page
        assert [r.path.rsplit("/", 1)[-1] for r in fake.requests(r"/pipelines/\d+$")] == [
            str(oldest["id"])
        ]
    runs = dp.load(tmp_path).test_runs.set_index("run_id")
    assert runs.loc[str(oldest["id"]), "started_at"] == pd.Timestamp(
        oldest["_detail"]["started_at"]
    )


def test_cursors_saved_by_the_previous_version_still_load(
    server: FakeGitLab, tmp_path: Path
) -> None:
    """The connector's own Watermark wrote ``seen`` ids twice and kept the successful shas per
    environment (for rollbacks); the core's Watermark reads that shape and drops the shas."""
    collect(server, tmp_path)
    state = SyncState(tmp_path)
    for row in state.cursors():
        saved = json.loads(row["cursor"])
        if row["stream"] == "incidents":
            old = {
                name: json.dumps({**json.loads(text), "seen": 2 * json.loads(text)["seen"]})
                for name, text in saved.items()
            }
            text = json.dumps(old, sort_keys=True)
        else:
            old = {**saved, "seen": 2 * saved["seen"]}
            if row["stream"] == "deployments":
                old["extra"] = {**old["extra"], "recent_success": {"production": ["abc"]}}
            text = json.dumps(old, sort_keys=True, separators=(",", ":"))
        state.set_cursor(row["source"], row["stream"], row["repo"], text)
    server.clear_log()
    summary = collect(server, tmp_path)
    assert len(server.log) == 5  # one request per stream, as for any nightly rerun
    assert all(result.added == 0 for result in summary.results)
    deployments = SyncState(tmp_path).cursor(row["source"], "deployments", row["repo"])
    assert deployments is not None and "recent_success" not in deployments
