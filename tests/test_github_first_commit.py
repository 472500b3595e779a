"""A pull request's first commit is the earliest *authored* time among its own commits, not the
first one GitHub lists: after a rebase or reorder the first listed is later work. Checked
against the fake GitHub (which executes the connector's GraphQL against GitHub's schema) with
rebased pull requests and pull requests longer than one page of commits, and through to the
lead time each deployed change gets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fake_github import FakeGitHub, Repo, make_repo, ts
from github_helpers import TOKEN, github_config, github_source, tables

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.streams import Runtime

NO_WAITING = Runtime(sleep=lambda _seconds: None)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


def collect(world: FakeGitHub, output: Path, **options: object) -> None:
    config = github_config(output, [github_source(world.url, **options)])
    lines = run_collect(config, runtime=NO_WAITING).lines()
    assert all("FAILED" not in line for line in lines), lines


def earliest_authored(pull: dict[str, object]) -> pd.Timestamp:
    """The hand computation: the minimum of the commits' authored times, as the model holds
    them (whatever order GitHub lists them in)."""
    commits = pull["commits"]
    assert isinstance(commits, list)
    return min(pd.Timestamp(c["authoredDate"]) for c in commits)


def _ends(pull: dict[str, object]) -> set[pd.Timestamp]:
    commits = pull["commits"]
    assert isinstance(commits, list)
    return {pd.Timestamp(commits[0]["authoredDate"]), pd.Timestamp(commits[-1]["authoredDate"])}


@pytest.fixture
def rebased() -> Iterator[FakeGitHub]:
    # Four commits per pull request; every third was rebased (its oldest commit moved last).
    repo = make_repo(pulls=60, deployments=40, runs=0, incidents=0, commits=4, rebased_every=3)
    with FakeGitHub([repo], token=TOKEN) as server:
        yield server


def test_a_rebased_pull_requests_first_commit_is_its_earliest_authored(
    rebased: FakeGitHub, tmp_path: Path
) -> None:
    collect(rebased, tmp_path, streams=["changes"])
    changes = tables(tmp_path)["changes"].set_index("change_id")
    pulls = {str(p["number"]): p for p in rebased.repos["octo/web"].pulls}
    # The fake really lists every third out of authored order, the earliest neither first nor
    # last (a rule taking either end would fail).
    ends = {n for n, p in pulls.items() if earliest_authored(p) not in _ends(p)}
    assert len(ends) == 20 and "1" in ends
    for number, pull in pulls.items():
        assert changes.loc[number, "first_commit_at"] == earliest_authored(pull), number
        assert changes.loc[number, "commit_count"] == 4
    # Pull request 1 was rebased: its first listed commit (the old rule's answer) was authored
    # an hour after the earliest, and all of them carry the rebase's commit time.
    first_listed = pd.Timestamp(pulls["1"]["commits"][0]["authoredDate"])
    assert changes.loc["1", "first_commit_at"] == pd.Timestamp(ts(-5))
    assert first_listed - changes.loc["1", "first_commit_at"] == pd.Timedelta(hours=1)
    # Still one request per 50 pull requests: the commit dates ride along with the page.
    assert rebased.count(lambda r: r.operation == "PullRequests") == 2
    assert rebased.count(lambda r: r.operation == "PullRequestCommits") == 0


def test_lead_time_runs_from_the_earliest_authored_commit_to_the_deployment(
    rebased: FakeGitHub, tmp_path: Path
) -> None:
    collect(rebased, tmp_path, since="2024-01-01", streams=["changes", "deployments", "commits"])
    lead = dp.lead_times(dp.load(tmp_path)).set_index("change_id")
    repo = rebased.repos["octo/web"]
    expected = _deployed_at_by_hand(repo)
    assert set(lead.index) == set(expected), "every deployed pull request, and only those"
    for pull in repo.pulls:
        number = str(pull["number"])
        if number not in expected:
            continue
        assert lead.loc[number, "deployed_at"] == expected[number], number
        # To the second: deployed - earliest authored, whatever order the commits are listed in.
        assert lead.loc[number, "lead_time"] == expected[number] - earliest_authored(pull), number


def _deployed_at_by_hand(repo: Repo) -> dict[str, pd.Timestamp]:
    """make_repo's history read directly: the default branch is the merges in pull-request
    order, deployment i ships pull request i's merge, so a pull request ships with the first
    successful production deployment at or after its own index. Bots' pull requests are left
    out, as lead time leaves them out by default."""
    shipped: dict[str, pd.Timestamp] = {}
    order = [p["mergeSha"] for p in repo.pulls]
    bots = {str(p["number"]) for p in repo.pulls if p["author"]["login"].endswith("[bot]")}
    done = 0
    for deployment in sorted(repo.deployments, key=lambda d: d["createdAt"]):
        states = [s["state"] for s in deployment["statuses"]]
        if deployment["environment"] != "production" or "SUCCESS" not in states:
            continue
        finished = next(s for s in deployment["statuses"] if s["state"] == "SUCCESS")
        reach = order.index(deployment["sha"]) + 1
        for pull in repo.pulls[done:reach]:
            shipped[str(pull["number"])] = pd.Timestamp(finished["createdAt"])
        done = max(done, reach)
    return {number: at for number, at in shipped.items() if number not in bots}


def _long_pull(repo: Repo, number: int, count: int, earliest_at: int) -> None:
    """Give pull request ``number`` ``count`` commits, the earliest authored at list position
    ``earliest_at`` (a rebase brought old work to the middle of a long branch)."""
    pull = next(p for p in repo.pulls if p["number"] == number)
    created = pd.Timestamp(pull["createdAt"]).to_pydatetime()
    commits = [
        {
            "oid": f"{number:04d}{k:036d}",
            "authoredDate": (created - timedelta(minutes=count - k)).isoformat(),
            "committedDate": (created - timedelta(minutes=1)).isoformat(),
        }
        for k in range(count)
    ]
    commits[earliest_at]["authoredDate"] = (created - timedelta(days=3)).isoformat()
    pull["commits"] = commits


def test_pull_requests_longer_than_a_page_of_commits_are_followed_up_together(
    tmp_path: Path,
) -> None:
    repo = make_repo(pulls=60, deployments=0, runs=0, incidents=0)
    _long_pull(repo, 5, 250, earliest_at=230)  # GitHub lists at most 250: three pages
    _long_pull(repo, 9, 150, earliest_at=120)  # two pages
    _long_pull(repo, 58, 101, earliest_at=100)  # the very last commit is the earliest
    _long_pull(repo, 12, 100, earliest_at=99)  # exactly one page: no follow-up
    with FakeGitHub([repo], token=TOKEN) as world:
        collect(world, tmp_path, streams=["changes"])
        follow_ups = world.count(lambda r: r.operation == "PullRequestCommits")
        assert world.count(lambda r: r.operation == "PullRequests") == 2
    changes = tables(tmp_path)["changes"].set_index("change_id")
    for pull in repo.pulls:
        number = str(pull["number"])
        assert changes.loc[number, "first_commit_at"] == earliest_authored(pull), number
        assert changes.loc[number, "commit_count"] == len(pull["commits"]), number
    # Follow-ups are per page of pull requests, each round one request for all that have more:
    # 58 is on the first page (newest updated first): one round; 5 and 9 on the second: one
    # round for both, then one for 5's third page.
    assert follow_ups == 3


def test_the_fake_rejects_pages_larger_than_githubs_limit() -> None:
    # GitHub refuses first > 100; the fake does too, so a query asking more fails in the tests.
    from deliverypulse_github import queries

    too_big = queries.PULL_REQUESTS.replace("commits(first: 100)", "commits(first: 101)")
    with FakeGitHub([make_repo(pulls=2, deployments=0, runs=0, incidents=0)], token=TOKEN) as world:
        response = httpx.post(
            f"{world.url}/graphql",
            json={"query": too_big, "variables": {"owner": "octo", "name": "web", "first": 2}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 200, response.text
    errors = response.json().get("errors") or []
    assert errors and "exceeds the `first` limit of 100" in errors[0]["message"]
