"""The dataset remembers where each source's and repo's collection started, and every stage
starts there unless told otherwise (issue 10, item 3).

The end-to-end tests collect from the repository's own fake GitHub and GitLab servers with
``since`` and check every deployed change's lead time against the servers' raw data: the
earliest authored time among the change's own commits, and the finish of the first successful
production deployment whose sha reaches it (a walk over the raw parents, not our graph).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fake_github import FakeGitHub, make_repo
from fake_gitlab import FakeGitLab, gitlab_source, synthetic_project
from github_helpers import TOKEN as GITHUB_TOKEN
from github_helpers import github_config, github_source

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.streams import Runtime

NO_WAITING = Runtime(sleep=lambda seconds: None)
GITLAB_TOKEN = "glpat-SENTINEL-start-0123456789"


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if "Z" in text else pd.Timestamp(text, tz="UTC")


def reachable(sha: str, parents: dict[str, list[str]]) -> set[str]:
    """Every commit a sha reaches in the raw history (the sha itself included)."""
    seen: set[str] = set()
    stack = [sha]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(parents.get(current, []))
    return seen


def first_deployed(
    key: str, deployments: Iterable[tuple[pd.Timestamp, str]], parents: dict[str, list[str]]
) -> pd.Timestamp | None:
    """Finish of the first successful production deployment whose sha reaches ``key``."""
    for finished, sha in sorted(deployments):
        if key in reachable(sha, parents):
            return finished
    return None


def check_lead_times(lead: pd.DataFrame, expected: dict[str, pd.Timedelta]) -> None:
    got = {
        str(change): pd.Timedelta(span)
        for change, span in zip(lead["change_id"], lead["lead_time"], strict=True)
    }
    assert got == expected
    assert not lead["is_approximate"].any()


# -- GitHub ------------------------------------------------------------------------------------


def github_expected(repo: Any, since: pd.Timestamp) -> dict[str, pd.Timedelta]:
    parents = {c["oid"]: list(c["parents"]) for c in repo.commits}
    committed = {c["oid"]: at(c["committedDate"]) for c in repo.commits}
    deployments = [
        (at(next(s["createdAt"] for s in d["statuses"] if s["state"] == "SUCCESS")), d["sha"])
        for d in repo.deployments
        if d["environment"] == "production"
        and any(s["state"] == "SUCCESS" for s in d["statuses"])
        and at(d["createdAt"]) >= since
    ]
    expected = {}
    for pull in repo.pulls:
        if pull["author"]["__typename"] == "Bot" or committed[pull["mergeSha"]] < since:
            continue  # bots are no changes; what was merged before the start is not ours
        deployed = first_deployed(pull["mergeSha"], deployments, parents)
        if deployed is not None:
            first = min(at(c["authoredDate"]) for c in pull["commits"])
            expected[str(pull["number"])] = deployed - first
    return expected


@pytest.mark.parametrize("reordered", [False, True])
def test_github_lead_time_is_first_authored_commit_to_deployed_with_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reordered: bool
) -> None:
    repo = make_repo(pulls=120, deployments=100)
    if reordered:  # a rebase lists the commits out of authored order
        for pull in repo.pulls[::3]:
            pull["commits"].reverse()
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    since = pd.Timestamp("2024-01-05T04:00:00Z")  # between two merges and two deployments
    with FakeGitHub([repo], token=GITHUB_TOKEN) as server:
        config = github_config(tmp_path, [github_source(server.url, since="2024-01-05T04:00:00Z")])
        summary = run_collect(config, runtime=NO_WAITING)
    assert summary.ok, summary.lines()
    ds = dp.load(tmp_path)
    starts = ds.collection_start.set_index(ds.collection_start["repo"].fillna(""))["start"]
    assert starts.to_dict() == {"": since, "octo/web": since}
    expected = github_expected(repo, since)
    assert len(expected) > 5
    check_lead_times(dp.lead_times(ds), expected)  # no since= passed


# -- GitLab ------------------------------------------------------------------------------------


def gitlab_expected(project: Any, since: pd.Timestamp) -> dict[str, pd.Timedelta]:
    parents = {c["id"]: list(c["parent_ids"]) for c in project.commits}
    commits = {c["id"]: c for c in project.commits}
    deployments = [
        (at(d["finished_at"]), d["sha"])
        for d in project.deployments
        if d["environment"]["name"] == "production"
        and d["status"] == "success"
        and at(d["updated_at"]) >= since
    ]
    expected = {}
    in_requests: set[str] = set()
    for request in project.merge_requests:
        own = project.mr_commits.get(request["iid"], [])
        in_requests |= {c["id"] for c in own}
        key = request.get("squash_commit_sha") or request.get("merge_commit_sha") or request["sha"]
        in_requests.add(key)
        if request["state"] != "merged" or at(commits[key]["committed_date"]) < since:
            continue
        deployed = first_deployed(key, deployments, parents)
        if deployed is not None:
            first = min(at(c["authored_date"]) for c in own)
            expected[str(request["iid"])] = deployed - first
    for commit in project.commits:  # commits pushed without a merge request: changes of their own
        sha = commit["id"]
        if sha in in_requests or len(commit["parent_ids"]) > 1:
            continue
        if at(commit["committed_date"]) < since:
            continue
        deployed = first_deployed(sha, deployments, parents)
        if deployed is not None:
            expected[sha] = deployed - at(commit["authored_date"])
    return expected


def test_gitlab_lead_time_is_first_authored_commit_to_deployed_with_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GL_START_TOKEN", GITLAB_TOKEN)
    since = pd.Timestamp("2025-01-07T12:00:00Z")  # after the first production deployment
    with FakeGitLab(token=GITLAB_TOKEN) as server:
        project = synthetic_project("acme/app")
        server.add_project(project)
        source = gitlab_source(server, token_env="GL_START_TOKEN", since="2025-01-07T12:00:00Z")
        config = config_from_dict({"output": {"path": str(tmp_path)}, "sources": [source]})
        summary = run_collect(config, runtime=NO_WAITING)
    assert summary.ok, summary.lines()
    ds = dp.load(tmp_path)
    assert set(ds.collection_start["start"]) == {since}
    expected = gitlab_expected(project, since)
    assert len(expected) > 5
    lead = dp.lead_times(ds)  # no since= passed
    check_lead_times(lead, expected)


# -- the record itself ---------------------------------------------------------------------------

SCRIPTED = (
    '[output]\npath = "data"\n'
    '[[sources]]\nname = "ops"\ntype = "scripted"\nrepos = ["org/a", "org/b"]\n'
    "pages = 2\npage_size = 2\n"
)


def starts_of(path: Path) -> dict[str, pd.Timestamp | None]:
    frame = dp.load(path).collection_start
    return {
        ("" if pd.isna(repo) else str(repo)): (None if pd.isna(start) else start)
        for repo, start in zip(frame["repo"], frame["start"], strict=True)
    }


def test_the_start_survives_reruns_moves_earlier_and_a_full_refresh_resets_it(
    tmp_path: Path,
) -> None:
    import fake_connectors  # noqa: F401  (registers the scripted connector)

    config = tmp_path / "deliverypulse.toml"
    config.write_text(SCRIPTED, encoding="utf-8")
    data = tmp_path / "data"
    march, april, feb = (
        pd.Timestamp(d, tz="UTC") for d in ("2024-03-01", "2024-04-01", "2024-02-01")
    )

    assert dp.run_collect(config, since=march.to_pydatetime()).ok
    assert starts_of(data) == {"": march, "org/a": march, "org/b": march}
    assert dp.run_collect(config, since=april.to_pydatetime()).ok  # a later since: no change
    assert starts_of(data) == {"": march, "org/a": march, "org/b": march}
    assert dp.run_collect(config).ok  # a rerun without since reads only what is new
    assert starts_of(data) == {"": march, "org/a": march, "org/b": march}
    assert dp.run_collect(config, since=feb.to_pydatetime()).ok  # an earlier since: earlier
    assert starts_of(data) == {"": feb, "org/a": feb, "org/b": feb}
    assert dp.run_collect(config, full_refresh=True).ok  # everything read again, from the start
    assert starts_of(data) == {"": None, "org/a": None, "org/b": None}
    refreshed = dp.run_collect(config, since=feb.to_pydatetime(), full_refresh=True)
    assert refreshed.ok
    assert starts_of(data) == {"": feb, "org/a": feb, "org/b": feb}
    again = dp.run_collect(config, since=april.to_pydatetime(), full_refresh=True)
    assert again.ok
    assert starts_of(data) == {"": april, "org/a": april, "org/b": april}


def test_from_frames_takes_the_start_and_prepare_starts_each_repo_there() -> None:
    """Repo a was collected from March 1st: its only deployment in the window ships the change
    merged after that, and nothing from before. Repo b has no start of its own: its source's."""
    commits = []
    for repo in ("a", "b"):
        commits += [
            {
                "repo": repo,
                "sha": f"{repo}1",
                "parents": [],
                "committed_at": "2024-02-20T00:00Z",
                "authored_at": "2024-02-20T00:00Z",
            },
            {
                "repo": repo,
                "sha": f"{repo}2",
                "parents": [f"{repo}1"],
                "committed_at": "2024-03-05T00:00Z",
                "authored_at": "2024-03-04T00:00Z",
                "change_id": "7",
            },
        ]
    changes = [
        {
            "repo": repo,
            "change_id": "7",
            "merge_sha": f"{repo}2",
            "first_commit_at": "2024-03-04T00:00Z",
            "created_at": "2024-03-04T01:00Z",
            "merged_at": "2024-03-05T00:00Z",
        }
        for repo in ("a", "b")
    ]
    deployments = [
        {
            "repo": repo,
            "deployment_id": "d1",
            "environment": "production",
            "sha": f"{repo}2",
            "created_at": "2024-03-06T00:00Z",
            "finished_at": "2024-03-06T02:00Z",
            "status": "success",
        }
        for repo in ("a", "b")
    ]
    bare = dp.Dataset.from_frames(deployments=deployments, changes=changes, commits=commits)
    assert dp.lead_times(bare).empty  # without a start, a first deployment ships nothing

    ds = dp.Dataset.from_frames(
        deployments=deployments,
        changes=changes,
        commits=commits,
        collection_start=[
            {"repo": "a", "start": "2024-03-01"},
            {"repo": None, "start": "2024-03-02"},  # the source's own start, for repo b
        ],
    )
    lead = dp.lead_times(ds).set_index("repo")
    assert lead.loc["a", "lead_time"] == pd.Timedelta(days=2, hours=2)
    assert lead.loc["b", "lead_time"] == pd.Timedelta(days=2, hours=2)
    assert dp.summary(ds).iloc[0]["lead_time_count"] == 2

    # ``since`` given explicitly wins over the record (and ends the window the same way).
    later = dp.lead_times(ds, since="2024-03-10")
    assert later.empty
    # The linker takes a per-repo start: repo b starting after its commit ships nothing.
    links = dp.link(
        ds,
        since=pd.DataFrame(
            {
                "source": ["manual"] * 2,
                "repo": ["a", "b"],
                "start": ["2024-03-01", "2024-03-05T12:00Z"],
            }
        ),
    )
    assert list(links["repo"]) == ["a"]
