"""The GitHub connector end to end against a real local server that speaks GitHub's REST shapes
and executes GraphQL against GitHub's schema: rows, approval gates, request counts, reruns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from deliverypulse_github import GitHubConnector, graphql_url
from fake_github import FakeGitHub, LoggedRequest, make_repo, ts
from github_helpers import TOKEN, github_config, github_source, tables

from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.errors import ConfigError
from deliverypulse.streams import Runtime, WalkCursor, shift


@pytest.fixture
def world() -> Iterator[FakeGitHub]:
    with FakeGitHub([make_repo()], token=TOKEN) as server:
        yield server


#: What the collector hands the connector: here, waits that are recorded, never slept.
SLEPT: list[float] = []
NO_WAITING = Runtime(sleep=SLEPT.append)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


def collect(world: FakeGitHub, output: Path, **options: object) -> list[str]:
    config = github_config(output, [github_source(world.url, **options)])
    return run_collect(config, runtime=NO_WAITING).lines()


def is_graphql(operation: str):  # type: ignore[no-untyped-def]
    return lambda r: r.operation == operation


def test_collects_every_stream_with_the_expected_rows(world: FakeGitHub, tmp_path: Path) -> None:
    lines = collect(world, tmp_path)
    assert all("FAILED" not in line for line in lines), lines
    data = tables(tmp_path)
    repo = world.repos["octo/web"]
    assert len(data["changes"]) == len(repo.pulls) == 120
    assert len(data["deployments"]) == 60
    assert len(data["commits"]) == 120
    assert len(data["test_runs"]) == 150
    assert list(data["incidents"]["incident_id"]) == [str(10_000 + i) for i in range(5)]


def test_change_rows_carry_reviews_first_commit_and_signals(
    world: FakeGitHub, tmp_path: Path
) -> None:
    collect(world, tmp_path)
    changes = tables(tmp_path)["changes"].set_index("change_id")
    first = changes.loc["1"]
    assert first["first_commit_at"] == pd.Timestamp(ts(-3))
    assert first["first_review_at"] == pd.Timestamp(ts(1))
    assert first["first_approval_at"] == pd.Timestamp(ts(1.5))
    assert first["ready_at"] == pd.Timestamp(ts(0.5))  # its ready-for-review event
    assert changes.loc["2", "ready_at"] == pd.Timestamp(ts(2))  # never a draft: created
    assert (first["review_count"], first["approval_count"], first["commit_count"]) == (3, 1, 2)
    assert list(first["approvers"]) == ["rev2"] and list(first["labels"]) == ["bug"]
    assert changes.loc["6", "is_bot"] and not changes.loc["7", "is_bot"]  # dependabot[bot]
    assert changes.loc["23", "is_revert"] and changes.loc["23", "reverts"] == "22"
    assert changes.loc["4", "is_hotfix"] and not changes.loc["5", "is_hotfix"]  # hotfix/ branch
    assert changes["merge_sha"].notna().all() and (changes["state"] == "merged").all()


def test_deployment_rows_carry_statuses_and_approval_gates(
    world: FakeGitHub, tmp_path: Path
) -> None:
    collect(world, tmp_path)
    deployments = tables(tmp_path)["deployments"].set_index("deployment_id")
    gated = deployments.loc["5001"]  # production: WAITING, QUEUED, IN_PROGRESS, SUCCESS
    assert gated["is_production"] and gated["status"] == "success"
    assert gated["approval_required"]
    assert gated["approval_requested_at"] == pd.Timestamp(ts(3.1))
    assert gated["approved_at"] == pd.Timestamp(ts(3.2))
    assert gated["finished_at"] == pd.Timestamp(ts(3.4))
    assert list(gated["approvers"]) == ["lead"]
    staging = deployments.loc["5000"]  # later INACTIVE does not undo its success
    assert not staging["is_production"] and staging["status"] == "success"
    assert staging["approval_required"] is False or not staging["approval_required"]
    assert pd.isna(staging["approval_requested_at"]) and list(staging["approvers"]) == []
    failed = deployments.loc["5007"]
    assert failed["status"] == "failure" and failed["finished_at"] == pd.Timestamp(ts(21.3))
    # deploy-bot is a User, but every status's log is an Actions run: a workflow deployed.
    assert (deployments["creator"] == "deploy-bot").all()
    assert (deployments["started_by"] == "automation").all()


def test_first_run_costs_pages_not_objects(world: FakeGitHub, tmp_path: Path) -> None:
    collect(world, tmp_path)
    assert world.count(is_graphql("PullRequests")) == 3  # 120 pull requests / 50
    assert world.count(is_graphql("Deployments")) == 1  # 60 deployments (+ environments)
    assert world.count(is_graphql("DeploymentReviews")) == 1  # 27 gated runs in one batch
    assert world.count(is_graphql("Commits")) == 2
    assert world.count(lambda r: r.path.endswith("/actions/runs")) == 2  # 150 runs / 100
    assert world.count(lambda r: "/pulls/" in r.path or "/statuses" in r.path) == 0
    assert world.count() == 10


def test_rerun_with_nothing_new_costs_one_request_per_stream(
    world: FakeGitHub, tmp_path: Path
) -> None:
    collect(world, tmp_path)
    before = tables(tmp_path)
    for _ in range(2):
        world.clear_log()
        collect(world, tmp_path)
        assert world.count() == 5, [(r.operation or r.path, r.status) for r in world.requests]
    # The second rerun's REST lists are all conditional hits (free of rate limit).
    assert world.count(lambda r: r.status == 304) == 2
    after = tables(tmp_path)
    for stream, frame in before.items():
        assert len(after[stream]) == len(frame), stream


def test_rerun_picks_up_new_and_updated_objects(world: FakeGitHub, tmp_path: Path) -> None:
    collect(world, tmp_path)
    repo = world.repos["octo/web"]
    new_pull = dict(
        repo.pulls[-1],
        number=121,
        title="Change 121",
        createdAt=ts(400),
        updatedAt=ts(401),
        mergedAt=ts(401),
        closedAt=ts(401),
        mergeSha="f" * 40,
    )
    repo.pulls.append(new_pull)
    old = repo.pulls[4]
    old["reviews"] = [
        *old["reviews"],
        {
            "state": "APPROVED",
            "submittedAt": ts(402),
            "author": {"__typename": "User", "login": "late"},
        },
    ]
    old["updatedAt"] = ts(402)
    world.clear_log()
    collect(world, tmp_path)
    assert world.count(is_graphql("PullRequests")) == 1
    changes = tables(tmp_path)["changes"].set_index("change_id")
    assert len(changes) == 121
    assert changes.loc["5", "approval_count"] == 2 and "late" in list(changes.loc["5", "approvers"])


def test_resumes_an_interrupted_walk_where_it_stopped(world: FakeGitHub, tmp_path: Path) -> None:
    from fake_github import Fault

    world.faults.append(Fault("status", "PullRequests", status=422, skip=1))
    collect(world, tmp_path)  # page 2 of 3 fails for good (422 is not retried)
    assert len(tables(tmp_path)["changes"]) == 50
    world.clear_log()
    collect(world, tmp_path)
    # The saved cursor points after page 1: pages 2 and 3, then done.
    assert world.count(is_graphql("PullRequests")) == 2
    assert len(tables(tmp_path)["changes"]) == 120


def test_gated_run_not_resolvable_in_graphql_falls_back_to_rest_approvals(
    world: FakeGitHub, tmp_path: Path
) -> None:
    world.resolve_runs_in_graphql = False
    collect(world, tmp_path)
    approvals = world.count(lambda r: r.path.endswith("/approvals"))
    assert approvals == 27  # production deployments that waited (3 failed before any gate)
    deployments = tables(tmp_path)["deployments"].set_index("deployment_id")
    assert list(deployments.loc["5003", "approvers"]) == ["lead"]


def test_long_status_lists_are_fetched_in_full(tmp_path: Path) -> None:
    with FakeGitHub([make_repo(deployments=2, statuses=27)], token=TOKEN) as world:
        collect(world, tmp_path)
        assert world.count(is_graphql("DeploymentStatuses")) == 2
        deployments = tables(tmp_path)["deployments"].set_index("deployment_id")
        assert deployments.loc["5000", "finished_at"] == pd.Timestamp(ts(0.3))


@pytest.mark.parametrize(
    ("mode", "expected_rows", "production_rows"),
    [("releases", 5, 4), ("tags", 5, 5), ("workflow:Deploy", 30, 30)],
)
def test_other_deployment_signals(
    world: FakeGitHub, tmp_path: Path, mode: str, expected_rows: int, production_rows: int
) -> None:
    collect(world, tmp_path, deployments=mode, streams=["deployments"])
    deployments = tables(tmp_path)["deployments"]
    assert len(deployments) == expected_rows
    assert int(deployments["is_production"].sum()) == production_rows
    assert deployments["sha"].notna().all()


def test_org_collects_its_repos_concurrently_on_one_budget(tmp_path: Path) -> None:
    repos = [
        make_repo(
            "acme", f"svc{i}", pulls=20, deployments=10, runs=30, run_id_base=(i + 1) * 10_000_000
        )
        for i in range(4)
    ]
    repos.append(make_repo("other", "thing", pulls=5))
    with FakeGitHub(repos, token=TOKEN) as world:
        config = github_config(tmp_path, [github_source(world.url, repo=None, org="acme")])
        summary = run_collect(config, runtime=NO_WAITING)
        assert summary.ok, summary.lines()
        changes = tables(tmp_path)["changes"]
        assert sorted(changes["repo"].unique()) == [f"acme/svc{i}" for i in range(4)]
        assert world.count(is_graphql("OrgRepositories")) == 1


def test_github_enterprise_server_urls(tmp_path: Path, world: FakeGitHub) -> None:
    assert graphql_url("https://ghe.example.com/api/v3") == "https://ghe.example.com/api/graphql"
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"
    collect(world, tmp_path, api_url=f"{world.url}/api/v3", streams=["changes"])
    assert len(tables(tmp_path)["changes"]) == 120
    assert world.count(lambda r: r.operation == "PullRequests") == 3


def test_since_bounds_the_first_collection(world: FakeGitHub, tmp_path: Path) -> None:
    collect(world, tmp_path, since="2024-01-08", streams=["changes", "deployments"])
    data = tables(tmp_path)
    assert (data["changes"]["updated_at"] >= pd.Timestamp("2024-01-08", tz="UTC")).all()
    assert 0 < len(data["changes"]) < 120
    assert (data["deployments"]["created_at"] >= pd.Timestamp("2024-01-08", tz="UTC")).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"repo": None}, "exactly one of"),
        ({"org": "acme"}, "exactly one of"),
        ({"repo": "not-a-repo"}, "owner/name"),
        ({"deployments": "helm"}, "workflow:NAME"),
        ({"hotfix": "("}, "regular expression"),
        ({"app_id": 1}, "app_private_key_env"),
        ({"token_env": None}, "token_env"),
    ],
)
def test_config_errors_name_the_key(options: dict[str, object], message: str) -> None:
    source = github_source("https://api.github.com", **options)
    if options.get("token_env", "x") is None:
        source.pop("token_env", None)
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"sources": [source]})


def test_entry_point_is_registered() -> None:
    from deliverypulse.connector import load_connector

    assert load_connector("github") is GitHubConnector
    assert set(GitHubConnector.streams) == {
        "deployments",
        "changes",
        "commits",
        "test_runs",
        "incidents",
        "repo_teams",
    }


def test_logged_request_type_is_exported() -> None:
    assert LoggedRequest("GET", "/x", {}, 200).status == 200


def test_environments_the_token_cannot_read_leave_gates_unknown_not_a_failure(
    world: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world.forbid_environments = True
    lines = collect(world, tmp_path, streams=["deployments"])
    assert all("FAILED" not in line for line in lines), lines
    assert "partial data" in caplog.text and "FORBIDDEN" in caplog.text
    deployments = tables(tmp_path)["deployments"].set_index("deployment_id")
    assert len(deployments) == 60
    assert deployments.loc["5001", "approval_required"]  # a reviewer approved its run
    assert pd.isna(deployments.loc["5000", "approval_required"])  # staging: unknown now


def test_unfinished_deployments_and_runs_are_read_again_until_they_finish(
    world: FakeGitHub, tmp_path: Path
) -> None:
    repo = world.repos["octo/web"]
    # Two days before the newest deployment, one is still in progress; the newest run too.
    pending = repo.deployments[-17]
    pending["statuses"] = pending["statuses"][:1]
    newest_run = max(repo.runs, key=lambda r: r["created_at"])
    newest_run.update(status="in_progress", conclusion=None)
    collect(world, tmp_path, streams=["deployments", "test_runs"])
    rows = tables(tmp_path)
    assert rows["deployments"].set_index("deployment_id").loc[str(pending["id"]), "status"] in (
        "queued",
        "waiting",
    )
    assert rows["test_runs"].set_index("run_id").loc[str(newest_run["id"]), "conclusion"] is (pd.NA)
    pending["statuses"] = repo.deployments[-15]["statuses"]  # it went through and succeeded
    newest_run.update(status="completed", conclusion="success")
    world.clear_log()
    collect(world, tmp_path, streams=["deployments", "test_runs"])
    assert world.count(is_graphql("Deployments")) == 1
    rows = tables(tmp_path)
    assert rows["deployments"].set_index("deployment_id").loc[str(pending["id"]), "status"] == (
        "success"
    )
    run_row = rows["test_runs"].set_index("run_id").loc[str(newest_run["id"])]
    assert run_row["conclusion"] == "success" and run_row["finished_at"] is not pd.NaT


def test_the_runtime_gives_the_http_client_its_transport_and_its_sleep() -> None:
    """No module globals: a test routes the connector through the Runtime it is built with."""
    asked: list[str] = []

    def github(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if len(asked) == 1:
            return httpx.Response(502)  # retried after a back-off the runtime sleeps
        empty = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}
        return httpx.Response(200, json={"data": {"repository": {"pullRequests": empty}}})

    slept: list[float] = []
    source = config_from_dict({"sources": [github_source("https://api.github.com")]}).sources[0]
    runtime = Runtime(sleep=slept.append, transport=httpx.MockTransport(github))
    connector = GitHubConnector(source, runtime)
    try:
        pages = list(connector.read("changes", "octo/web", None))
    finally:
        connector.close()
    assert asked == ["/graphql", "/graphql"] and len(slept) == 1
    assert [page.records for page in pages] == [[]]
    assert pages[0].cursor_text == "{}"  # a complete walk over nothing: no watermark yet


def test_a_cursor_saved_with_open_items_in_extra_still_holds_them(world: FakeGitHub) -> None:
    """Cursors written before the core kept unfinished items (``extra.open``) load, and the
    item they held is still read again."""
    newest = max(str(run["created_at"]) for run in world.repos["octo/web"].runs)
    held = shift(newest, days=-1)
    old = f'{{"extra":{{"open":"{held}"}},"since":"{newest}"}}'
    source = config_from_dict({"sources": [github_source(world.url)]}).sources[0]
    connector = GitHubConnector(source, NO_WAITING)
    try:
        pages = list(connector.read("test_runs", "octo/web", old))
    finally:
        connector.close()
    saved = WalkCursor.load(pages[-1].cursor_text)
    assert saved.since == held and saved.open is None and saved.extra == {}
