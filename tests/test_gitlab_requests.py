"""What the GitLab connector stores does not depend on how few requests it spends.

The expected rows are a hand computation over the fake GitLab's raw data, the way the
per-object loop (``benchmarks/bench_gitlab.py``'s baseline) would learn them: a merge request's
commits from its own commit list, its approvals and notes from its review, its size from the
commit that landed it. The connector learns the same facts from bulk walks (every ref's commits
with ``all=true``, the project's events) and asks per object only where those cannot tell: a
fast-forwarded merge request's commits, and a production deployment off the default branch.
"""

from __future__ import annotations

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
NO_SLEEP = Runtime(sleep=lambda seconds: None)
#: 60 merge requests (merge commits, 6 squashes, 3 fast-forwards; a third of those with three
#: commits rebased), about 160 commits on all refs: the ``all=true`` walk takes two pages.
SCENARIO = Scenario(merge_requests=60, deployments=12, pipelines=40, incidents=1, rebased_every=2)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)
    with FakeGitLab(token=TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app", scenario=SCENARIO))
        yield fake


def collect(server: FakeGitLab, out: Path, **options: Any) -> RunSummary:
    source = gitlab_source(server, token_env="GL_TEST_TOKEN", **options)
    config = config_from_dict({"output": {"path": str(out)}, "sources": [source]})
    summary = run_collect(config, runtime=NO_SLEEP)
    assert summary.ok, summary.lines()
    return summary


def endpoints(server: FakeGitLab) -> Counter[str]:
    """Requests by endpoint shape, ids blanked; ``""`` is the project itself."""
    counts: Counter[str] = Counter()
    for request in server.log:
        tail = request.path.split("/api/v4/projects/acme/app", 1)[-1]
        counts["/".join(":id" if part.isdigit() else part for part in tail.split("/"))] += 1
    return counts


def kind(mr: dict[str, Any]) -> str:
    if mr["squash"]:
        return "squash"
    return "merge" if mr["merge_commit_sha"] else "ff"


def plain(value: Any) -> Any:
    """A stored cell as the hand computation writes it: a list sorted, a null as None."""
    if hasattr(value, "__len__") and not isinstance(value, str):
        return sorted(value)
    return None if pd.isna(value) else value


# --- the hand computation --------------------------------------------------------------------


def expected_changes(project: FakeProject) -> dict[str, dict[str, Any]]:
    """Per merge request, from its own commit list, notes and approvals (the per-object reads)
    and the commit that landed it."""
    on_branch = {c["id"]: c for c in project.commits}
    approvals: dict[int, list[tuple[str, str]]] = {}
    for event in project.events:
        if event["action_name"] == "approved":
            approvals.setdefault(event["target_iid"], []).append(
                (event["author"]["username"], event["created_at"])
            )
    expected = {}
    for mr in project.merge_requests:
        iid, author = mr["iid"], mr["author"]["username"]
        own = project.mr_commits[iid]
        approved: dict[str, pd.Timestamp] = {}
        for who, at in approvals.get(iid, []):
            approved[who] = min(approved.get(who, pd.Timestamp(at)), pd.Timestamp(at))
        notes = [
            pd.Timestamp(n["created_at"])
            for n in project.notes.get(iid, [])
            if n["author"]["username"] != author and not n["system"]
        ]
        by_others = [t for who, t in approved.items() if who != author]
        landed = mr["merge_commit_sha"] or mr["squash_commit_sha"]
        if landed:
            size = on_branch[landed]["stats"]
            additions, deletions = size["additions"], size["deletions"]
        else:  # fast-forward: the branch's own commits are the change
            additions = sum(c["stats"]["additions"] for c in own)
            deletions = sum(c["stats"]["deletions"] for c in own)
        expected[str(iid)] = {
            "first_commit_at": min(pd.Timestamp(c["authored_date"]) for c in own),
            "commit_count": len(own),
            "additions": additions,
            "deletions": deletions,
            "approvers": sorted(approved),
            "approval_count": len(approved),
            "first_approval_at": min(approved.values(), default=None),
            "first_review_at": min([*notes, *by_others], default=None),
            "review_count": len(notes) + len(by_others),
            "merge_sha": landed or mr["sha"],
        }
    return expected


def expected_commits(project: FakeProject) -> dict[str, str | None]:
    """Every default-branch commit and the merge request it belongs to: a merge request's own
    commits (where they reached the branch) and the commit that landed it."""
    change: dict[str, str | None] = {c["id"]: None for c in project.commits}
    for mr in project.merge_requests:
        shas = [mr["merge_commit_sha"] or mr["squash_commit_sha"]]
        if not mr["squash"]:
            shas += [c["id"] for c in project.mr_commits[mr["iid"]]]
        for sha in shas:
            if sha:
                change[sha] = str(mr["iid"])
    return change


def assert_stored_rows_are_the_hand_computation(project: FakeProject, out: Path) -> None:
    ds = dp.load(out)
    changes = ds.changes.set_index("change_id")
    expected = expected_changes(project)
    assert set(changes.index) == set(expected)
    for change_id, facts in expected.items():
        row = changes.loc[change_id]
        assert {key: plain(row[key]) for key in facts} == facts, change_id
    commits = ds.commits.set_index("sha")
    change_of = expected_commits(project)
    assert set(commits.index) == set(change_of)
    stored = {sha: (None if pd.isna(c) else c) for sha, c in commits["change_id"].items()}
    assert stored == change_of
    raw = {c["id"]: c for c in project.commits}
    for sha, row in commits.iterrows():
        assert list(row["parents"]) == raw[sha]["parent_ids"], sha
        assert row["authored_at"] == pd.Timestamp(raw[sha]["authored_date"]), sha
        assert row["additions"] == raw[sha]["stats"]["additions"], sha
    deployments = ds.deployments.set_index("deployment_id")
    assert set(deployments.index) == {str(d["id"]) for d in project.deployments}
    for d in project.deployments:
        row = deployments.loc[str(d["id"])]
        assert row["sha"] == d["sha"]
        assert bool(row["is_production"]) is (d["environment"]["name"] == "production")
        approvers = sorted(a["user"]["username"] for a in d["approvals"])
        assert list(row["approvers"]) == approvers


# --- the tests -------------------------------------------------------------------------------


def test_stored_rows_equal_the_per_object_facts(server: FakeGitLab, tmp_path: Path) -> None:
    project = server.projects["acme/app"]
    kinds = Counter(kind(mr) for mr in project.merge_requests)
    assert kinds == {"merge": 51, "squash": 6, "ff": 3}  # every path the connector takes
    collect(server, tmp_path)
    assert_stored_rows_are_the_hand_computation(project, tmp_path)


def test_per_object_calls_only_where_the_bulk_reads_cannot_tell(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    collect(server, tmp_path)
    calls = endpoints(server)
    fast_forwards = sorted(m["iid"] for m in project.merge_requests if kind(m) == "ff")
    asked = sorted(int(r.path.split("/")[-2]) for r in server.requests(r"/merge_requests/\d+/"))
    assert asked == fast_forwards  # squashes come from the all-refs walk now
    assert calls["/deployments/:id/merge_requests"] == 0  # all from the default branch
    assert calls[""] == 1  # the project, for its default branch, once
    assert calls["/merge_requests/:id/approvals"] == calls["/merge_requests/:id/notes"] == 0
    walks = [r.query for r in server.requests(r"/repository/commits$")]
    # The commits stream's default-branch walk (2 pages), the changes stream's all-refs walk.
    assert [q.get("all") for q in walks] == [None, None, "true", "true"]

    # The default branch is remembered: a nightly rerun costs one request per stream.
    server.clear_log()
    collect(server, tmp_path)
    assert len(server.log) == 5, [r.path for r in server.log]


def test_a_deployment_off_the_default_branch_asks_gitlab(
    server: FakeGitLab, tmp_path: Path
) -> None:
    project = server.projects["acme/app"]
    template = next(d for d in project.deployments if d["status"] == "success")
    merged = project.merge_requests[-2:]
    extra = [
        dict(template, id=7001, iid=7001, ref="release-1", updated_at="2025-03-01T00:00:00.000Z"),
        dict(
            template,
            id=7002,
            iid=7002,
            ref="v1.0.0",
            updated_at="2025-03-01T00:00:01.000Z",
            deployable={**template["deployable"], "tag": True},
        ),
    ]
    project.deployments += extra
    shown = [{k: v for k, v in mr.items() if not k.startswith("_")} for mr in merged]
    project.deployment_mrs[7001], project.deployment_mrs[7002] = [shown[0]], [shown[1]]
    collect(server, tmp_path, streams=["deployments"])
    links = dp.load(tmp_path).deployment_changes
    stored = set(zip(links["deployment_id"], links["change_id"], strict=True))
    assert stored == {("7001", str(merged[0]["iid"])), ("7002", str(merged[1]["iid"]))}
    assert not links["is_approximate"].any()
    asked = [r.path.split("/")[-2] for r in server.requests(r"/deployments/\d+/merge_requests$")]
    assert sorted(asked) == ["7001", "7002"]
    assert endpoints(server)[""] == 1


def test_an_all_refs_walk_that_ignores_page_falls_back_to_the_default_branch(
    server: FakeGitLab, tmp_path: Path
) -> None:
    """GitLab issue 586997: ``all=true`` answers every page with the first. The walk stops at
    the repeated page (no endless loop), walks the default branch as before, and asks GitLab
    for the squashed merge requests' commits; the rows are the same."""
    server.all_commits_ignore_page = True
    project = server.projects["acme/app"]
    collect(server, tmp_path)
    assert_stored_rows_are_the_hand_computation(project, tmp_path)
    walks = [r.query.get("all") for r in server.requests(r"/repository/commits$")]
    assert walks.count("true") == 2  # the first page, and the repeat that stopped the walk
    asked = {int(r.path.split("/")[-2]) for r in server.requests(r"/merge_requests/\d+/commits")}
    assert asked == {m["iid"] for m in project.merge_requests if kind(m) != "merge"}


def test_a_squashed_branch_the_window_cannot_hold_is_asked_about(
    server: FakeGitLab, tmp_path: Path
) -> None:
    """A squashed merge request whose branch began before the commit window (its first commit
    weeks before it was opened) is not answered from a partial branch."""
    project = server.projects["acme/app"]
    squashed = next(m for m in project.merge_requests if kind(m) == "squash")
    first = project.mr_commits[squashed["iid"]][0]
    first["authored_date"] = first["committed_date"] = "2024-11-01T00:00:00.000Z"
    project.changed()
    collect(server, tmp_path, streams=["changes"])
    asked = {int(r.path.split("/")[-2]) for r in server.requests(r"/merge_requests/\d+/commits")}
    assert squashed["iid"] in asked
    change = dp.load(tmp_path).changes.set_index("change_id").loc[str(squashed["iid"])]
    assert change["first_commit_at"] == pd.Timestamp("2024-11-01T00:00:00Z")
    assert change["commit_count"] == len(project.mr_commits[squashed["iid"]])


def test_a_project_that_will_not_say_its_default_branch_asks_about_every_deployment(
    server: FakeGitLab, tmp_path: Path
) -> None:
    """Without the default branch nothing is left out: GitLab's answer for every successful
    production deployment, as before; the project is asked once."""
    server.fail(r"/projects/acme/app$", "404")
    project = server.projects["acme/app"]
    collect(server, tmp_path, streams=["deployments"])
    links = dp.load(tmp_path).deployment_changes
    expected = {(str(d), str(m["iid"])) for d, mrs in project.deployment_mrs.items() for m in mrs}
    assert set(zip(links["deployment_id"], links["change_id"], strict=True)) == expected
    succeeded = [
        d
        for d in project.deployments
        if d["environment"]["name"] == "production" and d["status"] == "success"
    ]
    calls = endpoints(server)
    assert calls["/deployments/:id/merge_requests"] == len(succeeded) == 10
    assert calls[""] == 1
