"""The git connector against real repositories built with the git CLI at known dates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from deliverypulse_git import GitConnector, repo_from_remote
from gitrepo import ANN, BOB, GitRepo

import deliverypulse as dp
from deliverypulse.collector import classified
from deliverypulse.config import SourceConfig, config_from_dict
from deliverypulse.connector import Page, load_connector
from deliverypulse.errors import ConfigError, DeliveryPulseError
from deliverypulse.store.coerce import coerce_frame
from deliverypulse.store.schemas import spec_for

CLEO = ("Cleo Park", "cleo@example.com")
DEPENDABOT = ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@dataclass
class Scenario:
    path: Path
    sha: dict[str, str]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """A history with every kind of change the connector knows, dated in several time zones."""
    repo = GitRepo(tmp_path_factory.mktemp("repos") / "web")
    sha: dict[str, str] = {}
    sha["c1"] = repo.commit(
        "Initial commit", date="2024-01-01T09:00:00+02:00", files={"README.md": "hello\nworld\n"}
    )
    # GitHub pull request #12, written in New York.
    repo.checkout("feature", new=True)
    sha["f1"] = repo.commit(
        "Add feature part 1",
        date="2024-01-02T10:00:00-05:00",
        author=BOB,
        files={"feature.txt": "a\nb\nc\n"},
    )
    sha["f2"] = repo.commit(
        "Add feature part 2",
        date="2024-01-03T08:00:00-05:00",
        author=BOB,
        files={"feature.txt": "a\nb\nc\nd\ne\n"},
    )
    repo.checkout("main")
    sha["m12"] = repo.merge(
        "feature",
        "Merge pull request #12 from octo/feature",
        "Add feature",
        date="2024-01-04T12:00:00+00:00",
    )
    repo.tag("v1.0.0", date="2024-01-04T14:00:00+01:00")  # annotated
    # GitLab merge request !7: branched before #12, synced with main, then merged.
    repo.checkout("login-form", new=True, start=sha["c1"])
    sha["g1"] = repo.commit(
        "Add login form",
        date="2024-01-05T09:00:00+02:00",
        author=CLEO,
        files={"login.html": "<form>\n"},
    )
    sha["g_sync"] = repo.merge(
        "main", "Merge branch 'main' into login-form", date="2024-01-05T10:00:00+02:00"
    )
    repo.checkout("main")
    sha["m7"] = repo.merge(
        "login-form",
        "Merge branch 'login-form' into 'main'",
        "Add login form",
        "See merge request group/app!7",
        date="2024-01-06T10:00:00+00:00",
    )
    # Squash-merged pull request #15, authored in Berlin, committed an hour later.
    sha["s15"] = repo.commit(
        "Fix bug (#15)",
        date="2024-01-07T10:00:00+02:00",
        committer_date="2024-01-07T11:00:00+02:00",
        files={"README.md": "hello\nthere\n"},
    )
    repo.tag("v1.1.0")  # lightweight
    sha["t1"] = repo.commit(
        "Tidy notes", date="2024-01-08T10:00:00+00:00", files={"NOTES.md": "notes\n"}
    )  # pushed straight to main
    # GitHub's revert button: a branch with `git revert -m 1` of merge #12, merged as #17.
    repo.checkout("revert-12-feature", new=True)
    repo.git("revert", "--no-edit", "-m", "1", sha["m12"], date="2024-01-09T08:00:00+00:00")
    sha["r12"] = repo.sha("HEAD")
    repo.checkout("main")
    sha["m17"] = repo.merge(
        "revert-12-feature",
        "Merge pull request #17 from octo/revert-12-feature",
        'Revert "Add feature"',
        date="2024-01-09T12:00:00+00:00",
    )
    # A squash-merged revert of #15.
    repo.git("revert", "--no-commit", sha["s15"])
    sha["s16"] = repo.commit(
        'Revert "Fix bug (#15)" (#16)',
        date="2024-01-10T09:00:00+00:00",
        body=f"This reverts commit {sha['s15']}.",
    )
    # A hotfix branch, merged as #18 and released.
    repo.checkout("hotfix/login-crash", new=True)
    sha["h1"] = repo.commit(
        "Handle empty password",
        date="2024-01-11T08:00:00-05:00",
        files={"login.html": "<form>\n<input>\n"},
    )
    repo.checkout("main")
    sha["m18"] = repo.merge(
        "hotfix/login-crash",
        "Merge pull request #18 from octo/hotfix/login-crash",
        "Stop login crash",
        date="2024-01-11T15:00:00+00:00",
    )
    repo.tag("v1.2.0", date="2024-01-11T16:00:00+00:00")
    # A bot's pull request.
    repo.checkout("dependabot/pip/requests-2.32", new=True)
    sha["b1"] = repo.commit(
        "Bump requests",
        date="2024-01-12T06:00:00+00:00",
        author=DEPENDABOT,
        files={"requirements.txt": "requests==2.32\n"},
    )
    repo.checkout("main")
    sha["m19"] = repo.merge(
        "dependabot/pip/requests-2.32",
        "Merge pull request #19 from octo/dependabot/pip/requests-2.32",
        "Bump requests from 2.31 to 2.32",
        date="2024-01-12T09:00:00+00:00",
    )
    # A plain local merge: no number.
    repo.checkout("topic", new=True)
    sha["p1"] = repo.commit("Add docs", date="2024-01-13T09:00:00+00:00", files={"docs.md": "d\n"})
    repo.checkout("main")
    sha["mp"] = repo.merge("topic", "Merge branch 'topic'", date="2024-01-13T10:00:00+00:00")
    # Roll back: re-tag the commit v1.1.0 shipped. And a tag that is no deployment.
    repo.tag("v1.2.1", sha["s15"], date="2024-01-14T08:00:00+00:00")
    repo.tag("nightly-2024-01-14", date="2024-01-14T09:00:00+00:00")
    return Scenario(repo.path, sha)


def source_for(path: Path, **options: Any) -> SourceConfig:
    """A source validated by the real config loader, as `deliverypulse collect` would build it."""
    config = config_from_dict({"sources": [{"type": "git", "path": str(path), **options}]})
    return config.sources[0]


def read(source: SourceConfig, stream: str, cursor: str | None = None) -> tuple[pd.DataFrame, str]:
    """All rows of a stream as a collect stores them (the core's classification applied,
    coerced to the table's schema), and the cursor text of the last page."""
    connector = GitConnector(source)
    (repo,) = connector.repos()
    pages = list(connector.read(stream, repo, cursor))
    assert pages, "expected at least one page"
    frames = [
        coerce_frame(spec_for(stream), classified(source, stream, page.records)) for page in pages
    ]
    last_cursor = pages[-1].cursor_text
    assert last_cursor is not None
    return pd.concat(frames, ignore_index=True), last_cursor


def rolled_back(deployments: pd.DataFrame) -> list[str]:
    """The deployments the metrics say a later deployment rolled back."""
    outcomes = dp.deployment_outcomes(dp.Dataset.from_frames(deployments=deployments))
    return list(outcomes.loc[outcomes["failed_by_rollback"], "deployment_id"])


def by(frame: pd.DataFrame, key: str) -> dict[Any, dict[Any, Any]]:
    return {row[key]: row for row in frame.to_dict("records")}


def test_is_found_through_its_entry_point() -> None:
    assert load_connector("git") is GitConnector


def test_changes_from_github_gitlab_squash_and_plain_merges(web: Scenario) -> None:
    changes = by(read(source_for(web.path), "changes")[0], "change_id")
    assert sorted(changes) == sorted(["12", "7", "15", "17", "16", "18", "19", web.sha["mp"]])

    github = changes["12"]
    assert (github["number"], github["title"], github["head_ref"], github["author"]) == (
        12,
        "Add feature",
        "feature",
        "Bob Roy",
    )
    assert github["base_ref"] == "main"
    assert github["state"] == "merged"
    assert github["merge_sha"] == web.sha["m12"]
    assert github["first_commit_at"] == utc("2024-01-02T15:00:00")  # 10:00 in New York
    assert github["created_at"] == github["first_commit_at"]
    assert github["merged_at"] == utc("2024-01-04T12:00:00")
    assert (
        github["commit_count"],
        github["additions"],
        github["deletions"],
        github["changed_files"],
    ) == (2, 5, 0, 1)

    gitlab = changes["7"]
    assert (gitlab["number"], gitlab["title"], gitlab["head_ref"], gitlab["author"]) == (
        7,
        "Add login form",
        "login-form",
        "Cleo Park",
    )
    # Only its own commit and the sync merge: #12's commits came in through main before it.
    assert gitlab["commit_count"] == 2
    assert gitlab["first_commit_at"] == utc("2024-01-05T07:00:00")
    assert (gitlab["additions"], gitlab["deletions"], gitlab["changed_files"]) == (1, 0, 1)

    squash = changes["15"]
    assert (squash["number"], squash["title"], squash["merge_sha"]) == (
        15,
        "Fix bug",
        web.sha["s15"],
    )
    assert squash["first_commit_at"] == utc("2024-01-07T08:00:00")
    assert squash["merged_at"] == utc("2024-01-07T09:00:00")
    assert (squash["commit_count"], squash["additions"], squash["deletions"]) == (1, 1, 1)
    assert pd.isna(squash["head_ref"])

    plain = changes[web.sha["mp"]]
    assert pd.isna(plain["number"])
    assert (plain["title"], plain["head_ref"], plain["commit_count"]) == (
        "Merge branch 'topic'",
        "topic",
        1,
    )


def test_reverts_hotfixes_and_bots_are_flagged(web: Scenario) -> None:
    changes = by(read(source_for(web.path), "changes")[0], "change_id")
    flagged = {
        change_id: (row["is_revert"], row["reverts"], row["is_hotfix"], row["is_bot"])
        for change_id, row in changes.items()
        if row["is_revert"] or row["is_hotfix"] or row["is_bot"]
    }
    assert flagged == {
        "17": (True, "12", False, False),  # its commit says "This reverts commit <merge of #12>"
        "16": (True, "15", False, False),  # squash revert of the squash commit of #15
        "18": (False, None, True, False),  # branch hotfix/login-crash
        "19": (False, None, False, True),  # dependabot[bot]
    }
    assert changes["17"]["deletions"] == 5


def test_commits_carry_parents_utc_times_and_their_change(web: Scenario) -> None:
    commits = by(read(source_for(web.path), "commits")[0], "sha")
    sha = web.sha
    assert len(commits) == 18
    expected_change = {
        "c1": None, "f1": "12", "f2": "12", "m12": "12", "g1": "7", "g_sync": "7", "m7": "7",
        "s15": "15", "t1": None, "r12": "17", "m17": "17", "s16": "16", "h1": "18", "m18": "18",
        "b1": "19", "m19": "19", "p1": sha["mp"], "mp": sha["mp"],
    }  # fmt: skip
    actual = {name: commits[sha[name]]["change_id"] for name in expected_change}
    assert {k: (None if pd.isna(v) else v) for k, v in actual.items()} == expected_change
    assert commits[sha["m12"]]["parents"] == [sha["c1"], sha["f2"]]
    assert commits[sha["c1"]]["parents"] == []
    assert commits[sha["c1"]]["authored_at"] == utc("2024-01-01T07:00:00")  # +02:00
    assert commits[sha["h1"]]["authored_at"] == utc("2024-01-11T13:00:00")  # -05:00
    assert commits[sha["s15"]]["committed_at"] == utc("2024-01-07T09:00:00")
    assert (commits[sha["f1"]]["author"], commits[sha["f1"]]["subject"]) == (
        "Bob Roy",
        "Add feature part 1",
    )
    # Sizes come from the mainline's first-parent diffs only.
    assert (commits[sha["s15"]]["additions"], commits[sha["s15"]]["deletions"]) == (1, 1)
    assert pd.isna(commits[sha["f1"]]["additions"])


def test_version_tags_are_deployments_and_a_retag_is_a_rollback(web: Scenario) -> None:
    deployments, _ = read(source_for(web.path), "deployments")
    # git has no rollback marker: the column stays null and the metrics decide, from the
    # sequence, that v1.2.1 (re-tagging what v1.1.0 shipped) rolled back v1.2.0.
    assert deployments["is_rollback"].isna().all()
    assert rolled_back(deployments) == ["v1.2.0"]
    rows = deployments[["deployment_id", "sha", "created_at", "creator"]]
    assert rows.to_dict("records") == [
        {
            "deployment_id": "v1.0.0",
            "sha": web.sha["m12"],
            "created_at": utc("2024-01-04T13:00"),
            "creator": ANN[0],
        },
        {
            "deployment_id": "v1.1.0",
            "sha": web.sha["s15"],
            "created_at": utc("2024-01-07T09:00"),
            "creator": None,
        },
        {
            "deployment_id": "v1.2.0",
            "sha": web.sha["m18"],
            "created_at": utc("2024-01-11T16:00"),
            "creator": ANN[0],
        },
        {
            "deployment_id": "v1.2.1",
            "sha": web.sha["s15"],
            "created_at": utc("2024-01-14T08:00"),
            "creator": ANN[0],
        },
    ]
    assert (deployments["finished_at"] == deployments["created_at"]).all()
    assert set(deployments["status"]) == {"success"}
    assert set(deployments["environment"]) == {"production"}
    assert deployments["is_production"].all()
    assert list(deployments["ref"]) == list(deployments["deployment_id"])


def test_environment_and_tag_pattern_are_options(web: Scenario) -> None:
    source = source_for(web.path, deployments=r"tags:^nightly-", environment="staging")
    deployments, _ = read(source, "deployments")
    assert list(deployments["deployment_id"]) == ["nightly-2024-01-14"]
    assert list(deployments["environment"]) == ["staging"]
    assert not deployments["is_production"].any()


def test_since_limits_rows_but_not_what_the_graph_knows(web: Scenario) -> None:
    source = source_for(web.path, since="2024-01-07")
    commits, _ = read(source, "commits")
    assert commits["committed_at"].min() == utc("2024-01-07T09:00:00")
    assert len(commits) == 11
    changes, _ = read(source, "changes")
    assert sorted(changes["change_id"]) == sorted(["15", "16", "17", "18", "19", web.sha["mp"]])
    deployments = by(read(source, "deployments")[0], "deployment_id")
    assert sorted(deployments) == ["v1.1.0", "v1.2.0", "v1.2.1"]
    frame = read(source, "deployments")[0]
    assert frame["is_rollback"].isna().all()
    assert rolled_back(frame) == ["v1.2.0"]  # v1.1.0 shipped v1.2.1's commit, in range too


def test_deploy_branch_merges_are_deployments(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "app")
    repo.commit("Initial commit", date="2024-02-01T09:00:00+00:00", files={"app.py": "1\n"})
    repo.git("branch", "production")
    repo.commit("Do thing (#2)", date="2024-02-02T09:00:00-08:00", files={"app.py": "2\n"})
    repo.checkout("production")
    first = repo.merge("main", "Deploy #2", date="2024-02-03T09:00:00+00:00")
    repo.commit("Hotfix config", date="2024-02-04T09:00:00+00:00", files={"conf": "x\n"})
    repo.checkout("main")
    repo.commit("Do more (#3)", date="2024-02-05T09:00:00+00:00", files={"app.py": "3\n"})
    repo.checkout("production")
    second = repo.merge("main", "Deploy #3", date="2024-02-06T09:00:00+01:00")

    with pytest.raises(ConfigError, match="HEAD is on the deploy branch 'production'") as caught:
        source_for(repo.path, deployments="branch:production")
    assert caught.value.key == "branch"
    repo.checkout("main")
    source = source_for(repo.path, deployments="branch:production", branch="main")
    deployments, _ = read(source, "deployments")
    assert deployments[["deployment_id", "sha", "ref", "created_at"]].to_dict("records") == [
        {
            "deployment_id": first,
            "sha": first,
            "ref": "production",
            "created_at": utc("2024-02-03T09:00"),
        },
        {
            "deployment_id": second,
            "sha": second,
            "ref": "production",
            "created_at": utc("2024-02-06T08:00"),
        },
    ]
    assert deployments["is_rollback"].isna().all()
    assert rolled_back(deployments) == []
    commits, _ = read(source, "commits")
    assert len(commits) == 6  # the production branch's own commits are in the graph too
    changes, _ = read(source, "changes")
    assert list(changes["change_id"]) == ["2", "3"]
    assert list(changes["base_ref"]) == ["main", "main"]


def test_nothing_is_read_again_until_the_tips_move(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "app")
    repo.commit("Initial commit", date="2024-03-01T09:00:00+00:00")
    repo.tag("v1.0")
    source = source_for(repo.path)
    _, cursor = read(source, "commits")
    connector = GitConnector(source)
    for stream in connector.streams:
        assert list(connector.read(stream, "app", cursor)) == []
    repo.commit("Next (#4)", date="2024-03-02T09:00:00+00:00")
    commits, new_cursor = read(source, "commits", cursor)
    assert list(commits["subject"]) == ["Next (#4)"]  # only what is new or changed
    assert new_cursor != cursor
    # A changed option changes what would be produced, so it must not be skipped either.
    assert (
        read(source_for(repo.path, environment="prod"), "deployments", new_cursor)[0].shape[0] == 1
    )


def test_large_streams_come_in_pages_with_the_cursor_on_the_last(web: Scenario) -> None:
    connector = GitConnector(source_for(web.path))
    connector.page_size = 5
    pages: list[Page] = list(connector.read("commits", "web", None))
    assert [len(coerce_frame(spec_for("commits"), page.records)) for page in pages] == [5, 5, 5, 3]
    assert [page.cursor is not None for page in pages] == [False, False, False, True]


def test_repo_is_the_folder_or_origins_path_without_credentials(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "shop")
    assert list(GitConnector(source_for(repo.path)).repos()) == ["shop"]
    repo.git("remote", "add", "origin", "https://x-access:s3cr3t@github.com/octo/shop.git")
    assert list(GitConnector(source_for(repo.path)).repos()) == ["octo/shop"]
    assert list(GitConnector(source_for(repo.path, repo="team/shop")).repos()) == ["team/shop"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/octo/web.git", "octo/web"),
        ("https://user:token@gitlab.example.org/group/sub/app.git", "group/sub/app"),
        ("git@github.com:octo/web.git", "octo/web"),
        ("ssh://git@gitlab.example.org:2222/group/app.git", "group/app"),
        ("/srv/git/web.git", None),
        ("file:///srv/git/web.git", None),
    ],
)
def test_remote_urls(url: str, expected: str | None) -> None:
    assert repo_from_remote(url) == expected


def test_a_missing_path_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        source_for(tmp_path / "nowhere")
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.key == "path"
    assert message.endswith(f"{tmp_path / 'nowhere'} does not exist")


def test_a_folder_outside_git_is_not_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"key 'path': .*plain is not a git repository$"):
        source_for(folder)


@pytest.mark.parametrize(
    ("options", "key", "expected"),
    [
        ({"deployments": "releases:x"}, "deployments", "expected 'tags:REGEX' or 'branch:NAME'"),
        ({"deployments": "tags:("}, "deployments", "not a valid regular expression"),
        ({"hotfix": "(["}, "hotfix", "not a valid regular expression"),
        ({"branch": "trunk"}, "branch", "no branch 'trunk'"),
        ({"deployments": "branch:prod"}, "deployments", "no branch 'prod'"),
    ],
)
def test_bad_options_name_the_key(
    web: Scenario, options: dict[str, str], key: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        source_for(web.path, **options)
    assert caught.value.key == key


def test_an_empty_repository_yields_empty_pages(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "empty")
    connector = GitConnector(source_for(repo.path))
    for stream in connector.streams:
        pages = list(connector.read(stream, "empty", None))
        assert len(pages) == 1
        assert len(coerce_frame(spec_for(stream), pages[0].records)) == 0


def test_a_failing_git_command_is_a_one_line_error(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "broken")
    first = repo.commit("Initial commit", date="2024-03-01T09:00:00+00:00")
    repo.commit("Second", date="2024-03-02T09:00:00+00:00")
    (repo.path / ".git" / "objects" / first[:2] / first[2:]).unlink()  # a corrupt history
    connector = GitConnector(source_for(repo.path))
    with pytest.raises(DeliveryPulseError) as caught:
        list(connector.read("commits", "broken", None))
    message = str(caught.value)
    assert message.startswith(f"'git log' failed in {repo.path}: fatal: ")
    assert "\n" not in message


def test_without_git_on_path_the_error_says_so(
    web: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ConfigError, match="git command is not installed"):
        source_for(web.path)


def test_a_detached_head_still_has_a_mainline(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "ci")
    repo.commit("Initial commit", date="2024-03-01T09:00:00+00:00")
    repo.commit("Ship it (#9)", date="2024-03-02T09:00:00+00:00")
    repo.git("checkout", "-q", "--detach", "HEAD")
    changes, _ = read(source_for(repo.path), "changes")
    assert list(changes["change_id"]) == ["9"]
    assert changes["base_ref"].isna().all()


def test_a_shallow_clone_is_read_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    origin = GitRepo(tmp_path / "origin")
    origin.commit("Initial commit", date="2024-03-01T09:00:00+00:00", files={"a": "1\n"})
    origin.commit("Second (#2)", date="2024-03-02T09:00:00+00:00", files={"a": "2\n"})
    clone = tmp_path / "clone"
    origin.git("clone", "-q", "--depth", "1", f"file://{origin.path}", str(clone))
    with caplog.at_level("WARNING"):
        commits, _ = read(source_for(clone), "commits")
    assert list(commits["subject"]) == ["Second (#2)"]
    assert "shallow clone" in caplog.text


@pytest.mark.parametrize(
    "subject",
    ["Merge branch 'main' of github.com:octo/web", "Merge remote-tracking branch 'origin/main'"],
)
def test_a_git_pull_merge_on_main_is_no_change_and_hides_none(tmp_path: Path, subject: str) -> None:
    """A trunk team's `git pull` puts the shared history on the merge's second parent."""
    repo = GitRepo(tmp_path / "trunk")
    repo.commit("Initial commit", date="2024-04-01T09:00:00+00:00", files={"a": "1\n"})
    repo.checkout("pushed-by-others", new=True)
    others = repo.commit("Their fix", date="2024-04-02T09:00:00+00:00", files={"b": "1\n"})
    squash = repo.commit("Their feature (#5)", date="2024-04-02T10:00:00+00:00", files={"b": "2\n"})
    repo.checkout("main")
    mine = repo.commit("My fix", date="2024-04-02T11:00:00+00:00", files={"c": "1\n"})
    pull = repo.merge("pushed-by-others", subject, date="2024-04-03T09:00:00+00:00")

    changes, _ = read(source_for(repo.path), "changes")
    assert list(changes["change_id"]) == ["5"]
    assert changes["first_commit_at"][0] == utc("2024-04-02T10:00:00")
    commits = by(read(source_for(repo.path), "commits")[0], "sha")
    assert {sha: commits[sha]["change_id"] for sha in (others, squash, mine, pull)} == {
        others: None,
        squash: "5",
        mine: None,
        pull: None,
    }


def test_hotfix_and_bot_patterns_are_options(web: Scenario) -> None:
    source = source_for(web.path, hotfix="(?i)login", bots="^Cleo")
    changes = read(source, "changes")[0].set_index("change_id")
    assert sorted(changes.index[changes["is_hotfix"]]) == ["18", "7"]
    assert list(changes.index[changes["is_bot"]]) == ["7"]


def test_only_the_body_lines_the_connector_reads_are_kept() -> None:
    from deliverypulse_git.gitlog import _essentials

    body = "Title line\n\nA long description\nover lines.\n\n  This reverts commit abc1234.\n"
    assert _essentials(body) == "Title line\n  This reverts commit abc1234."
    assert _essentials("\nJust a title\n\nand prose\n") == "Just a title"


def test_undoing_its_own_commit_is_no_revert_but_reverting_another_change_is(
    tmp_path: Path,
) -> None:
    repo = GitRepo(tmp_path / "app")
    repo.commit("Initial commit", date="2024-05-01T09:00:00+00:00", files={"a": "1\n"})
    outside = repo.commit("Tweak (no change)", date="2024-05-01T10:00:00+00:00", files={"b": "1\n"})
    repo.checkout("try", new=True)
    attempt = repo.commit("Try a thing", date="2024-05-02T09:00:00+00:00", files={"c": "1\n"})
    repo.git("revert", "--no-edit", attempt, date="2024-05-02T10:00:00+00:00")
    repo.commit("Do it properly", date="2024-05-02T11:00:00+00:00", files={"c": "2\n"})
    repo.checkout("main")
    repo.merge(
        "try", "Merge pull request #5 from octo/try", "Add thing", date="2024-05-03T09:00:00+00:00"
    )
    # A revert of a trunk commit that belongs to no change: the core's rule names the sha.
    repo.git("revert", "--no-commit", outside)
    repo.commit(
        'Revert "Tweak (no change)" (#6)',
        date="2024-05-04T09:00:00+00:00",
        body=f"This reverts commit {outside}.",
    )
    changes = by(read(source_for(repo.path), "changes")[0], "change_id")
    assert (changes["5"]["is_revert"], changes["5"]["reverts"]) == (False, None)
    assert (changes["6"]["is_revert"], changes["6"]["reverts"]) == (True, outside)


def test_a_tag_of_a_tag_is_a_deployment_of_the_commit_it_finally_names(tmp_path: Path) -> None:
    """git for-each-ref peels one level: an annotated tag of an annotated tag was skipped."""
    repo = GitRepo(tmp_path / "repo")
    repo.commit("first", date="2024-01-01T10:00:00+00:00")
    repo.tag("1.0.0rc1", date="2024-01-02T10:00:00+00:00")
    repo.tag("1.0.0", "1.0.0rc1", date="2024-01-03T10:00:00+00:00")  # a tag of the rc's tag
    assert repo.git("cat-file", "-t", "1.0.0") == "tag"
    assert repo.git("cat-file", "-t", "1.0.0^{}") == "commit"
    out = tmp_path / "data"
    config = config_from_dict({"sources": [{"type": "git", "path": str(repo.path)}]}, output=out)
    assert dp.run_collect(config).ok
    deployed = dp.load(out).deployments.set_index("ref")
    assert set(deployed.index) == {"1.0.0rc1", "1.0.0"}
    assert deployed.loc["1.0.0", "sha"] == repo.sha("HEAD")
    assert deployed.loc["1.0.0", "created_at"].isoformat() == "2024-01-03T10:00:00+00:00"
