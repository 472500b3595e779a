"""``deployments.started_by``: each connector records what the provider says started a
deployment (a workflow, a pipeline job or an app: "automation"; a person: "person"; else null),
collected from the local GitHub and GitLab servers in the providers' shapes; and
``rules.automated_flags`` checked by hand on a small frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from deliverypulse_github.deployments import started_by as github_started_by
from deliverypulse_gitlab.deployments import started_by as gitlab_started_by
from fake_github import FakeGitHub, Repo, make_repo, ts
from fake_gitlab import FakeGitLab, Scenario, gitlab_source, synthetic_project
from github_helpers import TOKEN, github_config, github_source, tables

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.rules import automated_flags
from deliverypulse.streams import Runtime

NO_WAITING = Runtime(sleep=lambda seconds: None)
GITLAB_TOKEN = "glpat-SENTINEL-0123456789"
ACTIONS_JOB = "https://github.com/octo/web/actions/runs/{run}/job/{job}"


def as_dict(flags: pd.Series) -> dict[str, bool | None]:
    """A nullable boolean series as {index: True, False or None (NA)}."""
    return {str(k): None if pd.isna(v) else bool(v) for k, v in flags.items()}


def _deployment(
    number: int, creator: str, log_urls: list[str | None], **extra: Any
) -> dict[str, Any]:
    """A deployment model for the fake GitHub: queued, then a success, an hour apart."""
    created = 10.0 * number
    return {
        "id": 7000 + number,
        "environment": "production",
        "sha": f"{number:040x}",
        "ref": "main",
        "createdAt": ts(created),
        "updatedAt": ts(created + 2),
        "description": "Deploy",
        "creator": creator,
        "statuses": [
            {"state": state, "createdAt": ts(created + k + 1), "logUrl": url}
            for k, (state, url) in enumerate(zip(["QUEUED", "SUCCESS"], log_urls, strict=True))
        ],
        **extra,
    }


def github_repo() -> Repo:
    repo = make_repo(pulls=2, deployments=0, runs=0, incidents=0)
    repo.deployments = [
        # Actions' own token (GITHUB_TOKEN): the creator is the github-actions app.
        _deployment(1, "github-actions[bot]", [None, None]),
        # A person ran a deploy tool by hand; its statuses link the tool's own log.
        _deployment(2, "alice", [None, "https://deploy.example.com/logs/2"]),
        # A workflow job deployed with environment: created as the user who triggered it.
        _deployment(
            3,
            "alice",
            [
                ACTIONS_JOB.format(run=555, job=5550),
                ACTIONS_JOB.format(run=555, job=5551),
            ],
        ),
        # A machine user is a User on GitHub: a person to the provider, a bot to our pattern.
        _deployment(4, "deploy-bot", [None, None]),
        # Another GitHub App, whose name no bot pattern knows.
        _deployment(5, "acme-shipper[bot]", [None, None]),
        # An organisation as creator says nothing about what started it.
        _deployment(6, "octo", [None, None], creator_type="Organization"),
    ]
    return repo


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with FakeGitHub([github_repo()], token=TOKEN) as server:
        yield server


def collect_github(world: FakeGitHub, output: Path, **options: Any) -> pd.DataFrame:
    source = github_source(world.url, streams=["deployments"], **options)
    summary = run_collect(github_config(output, [source]), runtime=NO_WAITING)
    assert summary.ok, summary.lines()
    return tables(output)["deployments"].set_index("deployment_id")


def test_github_records_what_started_each_deployment(github: FakeGitHub, tmp_path: Path) -> None:
    deployments = collect_github(github, tmp_path)
    expected = {
        "7001": ("automation", "github-actions"),  # a Bot: GraphQL drops REST's "[bot]"
        "7002": ("person", "alice"),  # a User, and no log names an Actions run
        "7003": ("automation", "alice"),  # a User, but an Actions run made it
        "7004": ("person", "deploy-bot"),
        "7005": ("automation", "acme-shipper"),
        "7006": (None, "octo"),
    }
    got = {
        key: (None if pd.isna(row["started_by"]) else row["started_by"], row["creator"])
        for key, row in deployments.iterrows()
    }
    assert got == expected


def test_github_automated_combines_started_by_and_the_bots_pattern(
    github: FakeGitHub, tmp_path: Path
) -> None:
    deployments = collect_github(github, tmp_path)
    flags = automated_flags(deployments["started_by"], deployments["creator"])
    # 7004: deploy-bot is a person to GitHub, automation under the default bots pattern.
    assert as_dict(flags) == {
        "7001": True,
        "7002": False,
        "7003": True,
        "7004": True,
        "7005": True,
        "7006": None,
    }


def test_github_workflow_runs_and_releases_as_deployments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    repo = make_repo(pulls=2, deployments=0, runs=10, incidents=0)
    with FakeGitHub([repo], token=TOKEN) as world:
        runs = collect_github(world, tmp_path / "runs", deployments="workflow:Deploy")
        releases = collect_github(world, tmp_path / "releases", deployments="releases")
    # Runs 0 and 5 of 10 are the Deploy workflow's (every fifth): each a workflow run.
    assert sorted(runs.index) == ["run-1500000", "run-1500005"]
    assert (runs["started_by"] == "automation").all()
    # A release names who published it, not what deployed it.
    assert len(releases) == 5 and releases["started_by"].isna().all()


def test_fake_github_rest_deployments_speak_creator_type_and_app(github: FakeGitHub) -> None:
    response = httpx.get(
        f"{github.url}/repos/octo/web/deployments",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    response.raise_for_status()
    by_id = {d["id"]: d for d in response.json()}
    assert by_id[7001]["creator"]["login"] == "github-actions[bot]"
    assert by_id[7001]["creator"]["type"] == "Bot"
    assert by_id[7001]["performed_via_github_app"]["slug"] == "github-actions"
    assert by_id[7004]["creator"]["type"] == "User"
    assert by_id[7004]["performed_via_github_app"] is None
    statuses = httpx.get(
        f"{github.url}/repos/octo/web/deployments/7003/statuses",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert {s["log_url"] for s in statuses} == {
        ACTIONS_JOB.format(run=555, job=5550),
        ACTIONS_JOB.format(run=555, job=5551),
    }


def test_github_started_by_reads_only_the_statuses_it_has() -> None:
    # Any GitHub host's Actions run counts (GHES too); a URL merely mentioning "actions" not.
    node = {"creator": {"__typename": "User", "login": "a"}, "statuses": {"nodes": []}}
    ghes = {"nodes": [{"logUrl": "https://ghe.example.com/o/r/actions/runs/9/job/1"}]}
    other = {"nodes": [{"logUrl": "https://ci.example.com/actions/deploy/9"}]}
    assert github_started_by(node) == "person"
    assert github_started_by({**node, "statuses": ghes}) == "automation"
    assert github_started_by({**node, "statuses": other}) == "person"
    assert github_started_by({"creator": None, "statuses": other}) is None


# -- GitLab -----------------------------------------------------------------------------------


@pytest.fixture
def gitlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    monkeypatch.setenv("GL_TEST_TOKEN", GITLAB_TOKEN)
    with FakeGitLab(token=GITLAB_TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app", scenario=Scenario(api_deployments_every=3)))
        yield fake


def test_gitlab_records_jobs_as_automation_and_api_deployments_as_people(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    source = gitlab_source(gitlab, token_env="GL_TEST_TOKEN", streams=["deployments"])
    config = config_from_dict({"output": {"path": str(tmp_path)}, "sources": [source]})
    summary = run_collect(config, runtime=NO_WAITING)
    assert summary.ok, summary.lines()
    stored = dp.load(tmp_path).deployments.set_index("deployment_id")
    project = gitlab.projects["acme/app"]
    # By hand: production deployments n = 0..7 get ids from 901, each even n followed by a
    # staging copy; n = 0, 3, 6 (ids 901, 906, 910) came through the API, with the staging
    # copies of n = 0 and 6 (ids 902, 911); every other one is a job's.
    api = {"901", "902", "906", "910", "911"}
    assert {str(d["id"]) for d in project.deployments if d["deployable"] is None} == api
    assert len(stored) == len(project.deployments) == 12
    for deployment_id, row in stored.iterrows():
        if deployment_id in api:
            assert (row["started_by"], row["creator"]) == ("person", "ops.engineer")
        else:
            assert (row["started_by"], row["creator"]) == ("automation", "deployer")
    # An API deployment keeps its facts without a job: its finish, and the environment's URL.
    api_row = stored.loc["906"]
    assert api_row["status"] == "success" and pd.notna(api_row["finished_at"])
    assert str(api_row["url"]).endswith("/acme/app/-/environments/1")


def test_gitlab_started_by_needs_the_payload_to_say() -> None:
    person = {"username": "ann"}
    assert gitlab_started_by({"deployable": {"id": 1}, "user": person}) == "automation"
    assert gitlab_started_by({"deployable": None, "user": person}) == "person"
    assert gitlab_started_by({"deployable": None, "user": None}) is None
    assert gitlab_started_by({"user": person}) is None  # a shape without the key says nothing


# -- the rule, by hand ------------------------------------------------------------------------


def test_automated_flags_by_hand() -> None:
    frame = pd.DataFrame(
        {
            "started_by": ["automation", "person", None, "person", None, " Person ", None],
            "creator": ["alice", "alice", "alice", "deploy-bot", "renovate[bot]", "bob", None],
        },
        index=list("abcdefg"),
    )
    flags = automated_flags(frame["started_by"], frame["creator"])
    assert str(flags.dtype) == "boolean"
    assert as_dict(flags) == {
        "a": True,  # the provider says automation
        "b": False,  # the provider says a person
        "c": None,  # nobody says, and alice is no bot
        "d": True,  # a person to the provider, a bot by name
        "e": True,  # unknown to the provider, a bot by name
        "f": False,  # case and spaces do not matter
        "g": None,
    }
    # Under a source's own pattern deploy-bot is a person and svc-release a bot.
    custom = automated_flags(
        pd.Series(["person", "person"]), pd.Series(["deploy-bot", "svc-release"]), bots="^svc-"
    )
    assert custom.tolist() == [False, True]
    # Without creators only the provider's word counts.
    alone = automated_flags(frame["started_by"])
    assert alone.isna().tolist() == [False, False, True, False, True, False, True]
