"""A merge request's first commit is the earliest *authored* time among its own commits, not the
first (or last) one GitLab lists: after a rebase the oldest work can sit in the middle of the
branch. Checked against the fake GitLab for each way the connector learns a merge request's
commits (the default branch's graph for merge commits; the merge request's commit list for
squashes and fast-forwards), and through to each deployed change's lead time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_gitlab import FakeGitLab, FakeProject, Scenario, gitlab_source, synthetic_project

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.streams import Runtime

TOKEN = "glpat-SENTINEL-0123456789"
NO_SLEEP = Runtime(sleep=lambda seconds: None)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)
    with FakeGitLab(token=TOKEN) as fake:
        # 60 merge requests; every one with three commits (a third) was rebased.
        fake.add_project(
            synthetic_project("acme/app", scenario=Scenario(merge_requests=60, rebased_every=1))
        )
        yield fake


def collect(server: FakeGitLab, out: Path, **options: Any) -> None:
    source = gitlab_source(server, token_env="GL_TEST_TOKEN", **options)
    config = config_from_dict({"output": {"path": str(out)}, "sources": [source]})
    summary = run_collect(config, runtime=NO_SLEEP)
    assert summary.ok, summary.lines()


def earliest_authored(project: FakeProject, iid: int) -> pd.Timestamp:
    """The hand computation: the minimum authored time of the merge request's own commits."""
    return min(pd.Timestamp(c["authored_date"]) for c in project.mr_commits[iid])


def test_a_rebased_merge_requests_first_commit_is_its_earliest_authored(
    server: FakeGitLab, tmp_path: Path
) -> None:
    collect(server, tmp_path, streams=["commits", "changes"])
    changes = dp.load(tmp_path).changes.set_index("change_id")
    project = server.projects["acme/app"]
    kinds = {}
    for mr in project.merge_requests:
        iid = mr["iid"]
        listed = [pd.Timestamp(c["authored_date"]) for c in project.mr_commits[iid]]
        assert changes.loc[str(iid), "first_commit_at"] == earliest_authored(project, iid), iid
        if min(listed) not in (listed[0], listed[-1]):
            kind = "squash" if mr["squash"] else "merge" if mr["merge_commit_sha"] else "ff"
            kinds[iid] = kind
    # The fake rebased merge requests of every kind: the earliest is at neither end of the
    # list, so a rule taking the first or last listed would fail for each of them.
    assert set(kinds.values()) == {"merge", "squash", "ff"}, kinds
    assert len(kinds) == 20


def test_lead_time_runs_from_the_earliest_authored_commit(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    since = project.merge_requests[0]["created_at"][:10]
    collect(server, tmp_path, since=since)
    # No ``since`` for the metrics: the dataset records where collection started.
    lead = dp.lead_times(dp.load(tmp_path)).set_index("change_id")
    # Where each merge request shipped, by the fake's own bookkeeping (what GitLab's
    # deployment merge requests endpoint answers), not by our linking.
    finished = {d["id"]: pd.Timestamp(d["finished_at"]) for d in project.deployments}
    shipped_by = {
        str(mr["iid"]): finished[deployment]
        for deployment, mrs in project.deployment_mrs.items()
        for mr in mrs
    }
    merge_requests = {i for i in lead.index if i.isdigit()}  # the rest are trunk commits
    assert merge_requests == set(shipped_by) and len(shipped_by) > 30
    rebased = [iid for iid in shipped_by if len(project.mr_commits[int(iid)]) == 3]
    assert len(rebased) >= 10
    for iid, deployed in shipped_by.items():
        assert lead.loc[iid, "deployed_at"] == deployed, iid
        # To the second: deployed - earliest authored, whatever order the commits are listed in.
        assert lead.loc[iid, "lead_time"] == deployed - earliest_authored(project, int(iid)), iid
