"""GitLab keeps every environment's deployments, as GitHub does: staging lead times and
approvals are there for whoever asks (``environments=["staging"]``), the metrics count only
production, and the per-deployment follow-ups stay where they matter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_gitlab import FakeGitLab, FakeProject, gitlab_source, synthetic_project, user

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.streams import Runtime

TOKEN = "glpat-SENTINEL-0123456789"
NO_SLEEP = Runtime(sleep=lambda seconds: None)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)
    with FakeGitLab(token=TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app"))  # 8 production, 4 staging deployments
        yield fake


def collect(server: FakeGitLab, out: Path, **options: Any) -> RunSummary:
    source = gitlab_source(server, token_env="GL_TEST_TOKEN", **options)
    config = config_from_dict({"output": {"path": str(out)}, "sources": [source]})
    summary = run_collect(config, runtime=NO_SLEEP)
    assert summary.ok, summary.lines()
    return summary


def endpoints(server: FakeGitLab) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in server.log:
        tail = request.path.split("/api/v4/projects/acme/app", 1)[-1]
        counts["/".join(":id" if part.isdigit() else part for part in tail.split("/"))] += 1
    return counts


def in_environment(project: FakeProject, name: str) -> list[dict[str, Any]]:
    return [d for d in project.deployments if d["environment"]["name"] == name]


def test_staging_is_kept_and_the_metrics_count_only_production(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    since = project.merge_requests[0]["created_at"][:10]
    collect(server, tmp_path, since=since)
    ds = dp.load(tmp_path)
    staging = ds.deployments.loc[ds.deployments["environment"] == "staging"]
    assert len(staging) == len(in_environment(project, "staging")) == 4
    assert not staging["is_production"].any() and (staging["status"] == "success").all()
    assert not staging["approval_required"].any()  # staging is not a protected environment

    # Counted by hand from the fake: successful production deployments only.
    production_ok = [d for d in in_environment(project, "production") if d["status"] == "success"]
    summary = dp.summary(ds)
    assert int(summary["deployments"].sum()) == len(production_ok) == 6
    lead = dp.lead_times(ds)
    assert set(lead["environment"]) == {"production"}
    assert set(lead["deployment_id"]) <= {str(d["id"]) for d in production_ok}


def _reachable(project: FakeProject, sha: str) -> set[str]:
    parents = {c["id"]: c["parent_ids"] for c in project.commits}
    seen: set[str] = set()
    stack = [sha]
    while stack:
        current = stack.pop()
        if current in seen or current not in parents:
            continue
        seen.add(current)
        stack.extend(parents[current])
    return seen


def test_staging_lead_times_are_there_for_those_who_ask(server: FakeGitLab, tmp_path: Path) -> None:
    project = server.projects["acme/app"]
    since = project.merge_requests[0]["created_at"][:10]
    collect(server, tmp_path, since=since)
    ds = dp.load(tmp_path)
    lead = dp.lead_times(ds, environments=["staging"], since=since).set_index("change_id")
    assert set(lead["environment"]) == {"staging"}
    # By hand, with a plain walk of the fake's commit graph: a change reaches staging with the
    # first successful staging deployment whose commit reaches what it landed. Changes: the
    # merge requests (first commit: their earliest authored) and the commits pushed straight
    # to the default branch (first commit: itself).
    changes = {
        str(mr["iid"]): (
            mr["merge_commit_sha"] or mr["squash_commit_sha"] or mr["sha"],
            min(pd.Timestamp(c["authored_date"]) for c in project.mr_commits[mr["iid"]]),
        )
        for mr in project.merge_requests
    }
    for commit in project.commits:
        if commit["title"].startswith("Trunk fix"):
            changes[commit["id"]] = (commit["id"], pd.Timestamp(commit["authored_date"]))
    deployed: dict[str, pd.Timestamp] = {}
    staged = sorted(in_environment(project, "staging"), key=lambda d: d["finished_at"])
    for deployment in staged:
        reached = _reachable(project, deployment["sha"])
        for change_id, (landed, _) in changes.items():
            if landed in reached:
                deployed.setdefault(change_id, pd.Timestamp(deployment["finished_at"]))
    assert set(lead.index) == set(deployed) and len(deployed) > 10
    for change_id, at in deployed.items():
        assert lead.loc[change_id, "deployed_at"] == at, change_id
        assert lead.loc[change_id, "lead_time"] == at - changes[change_id][1], change_id


def test_follow_ups_stay_with_production_and_gated_deployments(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    project.approvals_in_list = False  # each gated deployment costs one GET for its approvals
    collect(server, tmp_path, streams=["deployments"])
    counts = endpoints(server)
    # GitLab's "what did this ship": none, all six successful production deployments are of
    # the default branch (learnt once from the project), which the commit graph links.
    assert counts["/deployments/:id/merge_requests"] == 0
    assert counts[""] == 1
    # Approvals: only the eight gated (production) deployments; ungated staging costs nothing.
    assert counts["/deployments/:id"] == 8
    assert counts["/protected_environments"] == counts["/environments"] == 1
    assert counts["/deployments"] == 1  # 12 deployments, one page

    # A rerun with nothing new: the one list request, as before staging was kept.
    server.clear_log()
    collect(server, tmp_path, streams=["deployments"])
    assert endpoints(server) == Counter({"/deployments": 1})


def test_a_gated_staging_environment_keeps_its_approvals(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    project.approvals_in_list = False
    assert project.protected_environments is not None
    project.protected_environments.append(
        {"name": "staging", "deploy_access_levels": [], "required_approval_count": 1}
    )
    staged = in_environment(project, "staging")
    for deployment in staged:
        approved = pd.Timestamp(deployment["created_at"]) + pd.Timedelta(minutes=5)
        deployment["approvals"] = [
            {
                "user": user("qa.lead"),
                "status": "approved",
                "created_at": approved.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "comment": "",
            }
        ]
    project.changed()
    collect(server, tmp_path, streams=["deployments"])
    rows = dp.load(tmp_path).deployments.set_index("deployment_id")
    for deployment in staged:
        row = rows.loc[str(deployment["id"])]
        assert bool(row["approval_required"]) and not row["is_production"]
        assert list(row["approvers"]) == ["qa.lead"]
        assert row["approved_at"] - row["approval_requested_at"] == pd.Timedelta(minutes=5)
    # One GET per gated deployment whose approvals the list left out: 8 production + 4 staging.
    assert endpoints(server)["/deployments/:id"] == 12


def test_new_staging_deployments_alone_cost_the_list_and_the_protection_rules(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    collect(server, tmp_path, streams=["deployments"])
    newer = dict(in_environment(project, "staging")[-1])
    newer.update(id=5000, iid=5000, updated_at="2025-03-01T00:00:00.000Z")
    project.deployments.append(newer)
    server.clear_log()
    collect(server, tmp_path, streams=["deployments"])
    # The gate of every environment matters, so the rules are read once for the run; no
    # merge-request or approval follow-up for an ungated staging deployment.
    assert endpoints(server) == Counter({"/deployments": 1, "/protected_environments": 1})
    row = dp.load(tmp_path).deployments.set_index("deployment_id").loc["5000"]
    assert not row["is_production"] and row["environment"] == "staging"
