"""The GitLab connector against the fake GitLab: what each stream stores, and what it costs."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_gitlab import FakeGitLab, FakeProject, Scenario, gitlab_source, synthetic_project

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.streams import Runtime

TOKEN = "glpat-SENTINEL-0123456789"
#: Retry backoffs and rate-limit waits happen without waiting.
NO_SLEEP = Runtime(sleep=lambda seconds: None)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)
    with FakeGitLab(token=TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app"))
        yield fake


def collect(server: FakeGitLab, out: Path, **options: Any) -> RunSummary:
    source = gitlab_source(server, token_env="GL_TEST_TOKEN", **options)
    config = config_from_dict({"output": {"path": str(out)}, "sources": [source]})
    return run_collect(config, runtime=NO_SLEEP)


def endpoints(server: FakeGitLab) -> Counter[str]:
    """Requests by endpoint shape, ids blanked: ``/merge_requests/:iid/commits``."""
    counts: Counter[str] = Counter()
    for request in server.log:
        tail = request.path.split("/api/v4/projects/acme/app", 1)[-1]
        counts["/".join(":id" if part.isdigit() else part for part in tail.split("/"))] += 1
    return counts


def test_first_run_stores_every_stream(server: FakeGitLab, tmp_path: Path) -> None:
    summary = collect(server, tmp_path)
    assert summary.ok, summary.lines()
    ds = dp.load(tmp_path)
    project = server.projects["acme/app"]
    production = [d for d in project.deployments if d["environment"]["name"] == "production"]
    assert len(production) == 8
    # Every environment is kept (as GitHub's are); only production is flagged production.
    assert len(ds.deployments) == len(project.deployments) == 12
    flags = ds.deployments.groupby("environment")["is_production"].agg(["all", "any", "size"])
    assert flags.loc["production"].tolist() == [True, True, 8]
    assert flags.loc["staging"].tolist() == [False, False, 4]
    assert len(ds.changes) == 30
    assert len(ds.test_runs) == 40
    assert len(ds.incidents) == 3
    assert len(ds.commits) == len(project.commits)


def test_deployments_carry_approvals_gates_and_status(server: FakeGitLab, tmp_path: Path) -> None:
    collect(server, tmp_path)
    deployments = dp.load(tmp_path).deployments.set_index("deployment_id")
    first = deployments.loc["901"]
    assert first["status"] == "success"
    assert bool(first["approval_required"]) is True  # protected environment needs 1 approval
    assert first["approvers"] == ["release.manager"]
    assert first["approved_at"] == pd.Timestamp("2025-01-07T03:50:00Z")
    assert first["approval_requested_at"] == first["created_at"]
    assert first["finished_at"] == pd.Timestamp("2025-01-07T04:00:00Z")
    blocked = deployments.loc["912"]
    assert blocked["status"] == "blocked"
    assert pd.isna(blocked["approved_at"]) and pd.isna(blocked["finished_at"])
    assert deployments.loc["910", "status"] == "failure"
    # Every synthetic deployment is a pipeline job's (it has a deployable).
    assert (deployments["started_by"] == "automation").all()


def test_default_branch_deployments_are_linked_by_the_graph_not_asked(
    server: FakeGitLab, tmp_path: Path
) -> None:
    collect(server, tmp_path)
    ds = dp.load(tmp_path)
    assert ds.deployment_changes.empty  # every deployment here is of main
    calls = endpoints(server)
    assert calls["/deployments/:id/merge_requests"] == 0
    assert calls[""] == 1  # the project, once, for its default branch
    # The graph links each successful production deployment after the first (which ships
    # nothing older than itself) to what GitLab says it shipped.
    project = server.projects["acme/app"]
    expected = {
        (str(d), str(m["iid"]))
        for d, mrs in project.deployment_mrs.items()
        for m in mrs
        if d != 901
    }
    links = dp.link(ds, trunk=False)
    assert set(zip(links["deployment_id"], links["change_id"], strict=True)) == expected


def test_production_by_tier_or_regex(server: FakeGitLab, tmp_path: Path) -> None:
    project = server.projects["acme/app"]
    live = dict(project.deployments[0], id=5000, iid=5000, updated_at="2025-03-01T00:00:00.000Z")
    live["environment"] = {"id": 3, "name": "live-eu", "external_url": None}  # tier production
    canary = dict(live, id=5001, iid=5001, environment={"id": 4, "name": "prod-canary"})
    project.deployments += [live, canary]
    collect(server, tmp_path, production="^prod-")
    deployments = dp.load(tmp_path).deployments
    production = set(deployments.loc[deployments["is_production"], "environment"])
    assert production == {"production", "live-eu", "prod-canary"}
    assert set(deployments["environment"]) == production | {"staging"}  # kept, not production


def test_approvals_missing_from_list_cost_one_get_per_gated_deployment(
    server: FakeGitLab, tmp_path: Path
) -> None:
    server.projects["acme/app"].approvals_in_list = False
    collect(server, tmp_path, streams=["deployments"])
    deployments = dp.load(tmp_path).deployments.set_index("deployment_id")
    assert deployments.loc["903", "approvers"] == ["release.manager"]
    assert endpoints(server)["/deployments/:id"] == 8  # the gated production deployments only


def test_unlicensed_protected_environments_leave_gate_unknown(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    project.protected_environments = None  # 403, as on GitLab Free
    for deployment in project.deployments:
        deployment["approvals"], deployment["pending_approval_count"] = [], 0
        if deployment["status"] == "blocked":
            deployment["status"] = "success"
    summary = collect(server, tmp_path, streams=["deployments"])
    assert summary.ok, summary.lines()
    assert dp.load(tmp_path).deployments["approval_required"].isna().all()


def test_changes_from_bulk_walks(server: FakeGitLab, tmp_path: Path) -> None:
    collect(server, tmp_path)
    changes = dp.load(tmp_path).changes.set_index("change_id")
    first = changes.loc["1"]  # merge commit, 1 branch commit, approved by bob and erin
    assert first["first_commit_at"] == pd.Timestamp("2025-01-06T05:00:00Z")
    assert first["first_review_at"] == pd.Timestamp("2025-01-06T08:40:00Z")  # not alice's note
    assert first["first_approval_at"] == pd.Timestamp("2025-01-06T09:30:00Z")
    assert first["approvers"] == ["bob", "erin"] and first["approval_count"] == 2
    assert first["commit_count"] == 1 and first["additions"] == 10
    assert changes.loc["3", "commit_count"] == 3
    assert changes.loc["3", "first_commit_at"] == pd.Timestamp("2025-01-06T17:00:00Z")
    squashed = changes.loc["8"]
    assert squashed["commit_count"] == 2
    assert squashed["first_commit_at"] == pd.Timestamp("2025-01-07T23:00:00Z")
    assert changes.loc["17", "is_revert"] and changes.loc["17", "reverts"] == "16"
    assert changes.loc["13", "is_hotfix"] and not changes.loc["12", "is_hotfix"]
    assert changes.loc["1", "author"] == "alice" and not changes["is_bot"].any()


def test_per_merge_request_calls_only_where_the_graph_cannot_answer(
    server: FakeGitLab, tmp_path: Path
) -> None:
    collect(server, tmp_path, streams=["changes"])
    project = server.projects["acme/app"]
    # Fast-forwards: no commit of their own marks where their branch began on main. Squashed
    # branches' commits come from the all-refs walk (their head refs outlive the merge).
    unanswerable = [
        m for m in project.merge_requests if not m["merge_commit_sha"] and not m["squash"]
    ]
    calls = endpoints(server)
    assert calls["/merge_requests/:id/commits"] == len(unanswerable) == 2
    assert calls["/events"] == 2  # approved + commented, 158 events fit in 2 pages
    assert calls["/merge_requests/:id/approvals"] == calls["/merge_requests/:id/notes"] == 0


def test_commits_carry_their_change(server: FakeGitLab, tmp_path: Path) -> None:
    collect(server, tmp_path)
    ds = dp.load(tmp_path)
    commits = ds.commits.set_index("sha")
    project = server.projects["acme/app"]
    mr = next(m for m in project.merge_requests if m["iid"] == 2)
    assert commits.loc[mr["merge_commit_sha"], "change_id"] == "2"
    for branch_commit in project.mr_commits[2]:
        assert commits.loc[branch_commit["id"], "change_id"] == "2"
    pushed = next(c for c in project.commits if c["title"].startswith("Trunk fix"))
    assert pd.isna(commits.loc[pushed["id"], "change_id"])
    assert len(commits.loc[mr["merge_commit_sha"], "parents"]) == 2


def test_test_runs_time_from_jobs_and_reports_for_production(
    server: FakeGitLab, tmp_path: Path
) -> None:
    collect(server, tmp_path)
    runs = dp.load(tmp_path).test_runs.set_index("run_id")
    assert runs.loc["500", "started_at"] == pd.Timestamp("2025-01-06T08:00:30Z")
    assert runs.loc["500", "duration_s"] == 600.0
    assert runs.loc["508", "conclusion"] == "failure"
    project = server.projects["acme/app"]
    deployed = {
        str(d["deployable"]["pipeline"]["id"])
        for d in project.deployments
        if d["environment"]["name"] == "production"
    }
    assert set(runs.index[runs["tests_total"].notna()]) == deployed
    calls = endpoints(server)
    assert calls["/pipelines/:id/test_report_summary"] == len(deployed)
    assert calls["/pipelines/:id"] == 0  # timings came from the jobs walk
    with_report = runs.loc[sorted(deployed)[0]]
    assert with_report["tests_skipped"] == 1


@pytest.mark.parametrize(("mode", "reports"), [("all", 40), ("none", 0)])
def test_test_report_modes(server: FakeGitLab, tmp_path: Path, mode: str, reports: int) -> None:
    collect(server, tmp_path, test_reports=mode)
    runs = dp.load(tmp_path).test_runs
    assert runs["tests_total"].notna().sum() == reports
    assert endpoints(server)["/pipelines/:id/test_report_summary"] == reports


def test_incidents_by_type_or_labels(server: FakeGitLab, tmp_path: Path) -> None:
    collect(server, tmp_path, streams=["incidents"])
    incidents = dp.load(tmp_path).incidents.set_index("incident_id")
    assert list(incidents.index) == ["1", "2", "3"]
    assert incidents.loc["1", "severity"] == "high"
    assert pd.isna(incidents.loc["2", "resolved_at"])
    server.clear_log()
    collect(server, tmp_path / "by-label", streams=["incidents"], incident_labels=["bug"])
    assert list(dp.load(tmp_path / "by-label").incidents["title"]) == ["Bug 3", "Bug 4"]
    assert [r.query.get("labels") for r in server.log] == ["bug"]


def test_nightly_rerun_with_nothing_new_costs_one_request_per_stream(
    server: FakeGitLab, tmp_path: Path
) -> None:
    collect(server, tmp_path)
    before = {table: len(getattr(dp.load(tmp_path), table)) for table in ("changes", "commits")}
    server.clear_log()
    summary = collect(server, tmp_path)
    assert summary.ok
    assert len(server.log) == 5, [r.path for r in server.log]
    assert all(result.added == 0 for result in summary.results)
    after = dp.load(tmp_path)
    assert {t: len(getattr(after, t)) for t in before} == before


def test_incremental_run_picks_up_new_work(server: FakeGitLab, tmp_path: Path) -> None:
    project = server.projects["acme/app"]
    later = synthetic_project("acme/app", scenario=Scenario(merge_requests=34, deployments=10))
    collect(server, tmp_path)
    # The same project, four merge requests and two deployments later.
    server.projects["acme/app"] = later
    server.clear_log()
    summary = collect(server, tmp_path)
    assert summary.ok, summary.lines()
    ds = dp.load(tmp_path)
    assert set(ds.changes["change_id"]) == {str(i) for i in range(1, 35)}
    assert ds.changes.set_index("change_id").loc["33", "first_commit_at"] == pd.Timestamp(
        "2025-01-14T05:00:00Z"
    )
    newest = max(
        (d for d in later.deployments if d["environment"]["name"] == "production"),
        key=lambda d: d["updated_at"],
    )
    assert str(newest["id"]) in set(ds.deployments["deployment_id"])
    assert len(ds.deployments) >= len(
        [d for d in project.deployments if d["environment"]["name"] == "production"]
    )
    # Only the new merge requests were fetched this time.
    mr_pages = [r for r in server.log if r.path.endswith("/acme/app/merge_requests")]
    assert len(mr_pages) == 1 and "updated_after" in mr_pages[0].query


def test_group_with_subgroups_collects_projects_concurrently(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)
    small = Scenario(merge_requests=6, deployments=3, pipelines=6, incidents=1)
    with FakeGitLab(token=TOKEN, latency=0.02) as fake:
        fake.groups["acme"] = []
        for number, path in enumerate(["acme/web", "acme/platform/api", "acme/platform/db"]):
            fake.add_project(synthetic_project(path, project_id=number + 2, scenario=small))
        fake.add_project(synthetic_project("other/app", project_id=9, scenario=small))
        summary = collect(fake, tmp_path, group="acme", concurrency=3)
        assert summary.ok, summary.lines()
        listing = fake.requests(r"/groups/acme/projects")
        assert listing[0].query["include_subgroups"] == "true"
        assert listing[0].query["pagination"] == "keyset"
    ds = dp.load(tmp_path)
    assert set(ds.changes["repo"]) == {"acme/web", "acme/platform/api", "acme/platform/db"}
    assert ds.changes.groupby("repo").size().tolist() == [6, 6, 6]


def test_url_may_name_the_api_root(server: FakeGitLab, tmp_path: Path) -> None:
    summary = collect(server, tmp_path, url=server.url + "/api/v4/", streams=["incidents"])
    assert summary.ok, summary.lines()
    assert len(dp.load(tmp_path).incidents) == 3


def test_token_is_sent_and_never_stored(server: FakeGitLab, tmp_path: Path) -> None:
    collect(server, tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_config_errors_name_the_key(server: FakeGitLab, tmp_path: Path) -> None:
    with pytest.raises(dp.ConfigError, match="'group'"):
        config_from_dict({"sources": [gitlab_source(server, project="acme/app", group="acme")]})
    with pytest.raises(dp.ConfigError, match="test_reports"):
        config_from_dict({"sources": [gitlab_source(server, test_reports="some")]})
    with pytest.raises(dp.ConfigError, match="project"):
        config_from_dict({"sources": [{"type": "gitlab", "url": server.url}]})
    with pytest.raises(dp.ConfigError, match="url"):
        config_from_dict({"sources": [gitlab_source(server, url="gitlab.example.org")]})


def test_project_of_a_fake_matches_real_merge_request_shape() -> None:
    """The synthetic merge requests are real gitlab.com payloads with fields overridden."""
    project: FakeProject = synthetic_project("acme/app")
    real_keys = set(project.merge_requests[0]) - {"squash_commit_sha", "draft"}
    assert {"author", "merge_commit_sha", "merged_at", "web_url", "squash"} <= real_keys
    assert os.path.basename(__file__).startswith("test_gitlab")
