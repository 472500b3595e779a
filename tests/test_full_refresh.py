"""A full refresh replaces what a source holds (issue 10, item 9): rows the source no longer
returns are gone, but only where the refresh read everything again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gitrepo import GitRepo

import deliverypulse as dp


def build_repo(path: Path) -> GitRepo:
    """Releases v1.0.0 and v1.1.0, plus tags that are no releases (``nightly``, ``0.x``)."""
    repo = GitRepo(path)
    repo.commit("Initial commit", date="2024-03-01T09:00:00+00:00", files={"a.txt": "1\n"})
    repo.tag("v1.0.0", date="2024-03-01T10:00:00+00:00")
    repo.tag("0.x", date="2024-03-01T11:00:00+00:00")
    repo.commit("More", date="2024-03-04T09:00:00+00:00", files={"a.txt": "2\n"})
    repo.tag("nightly", date="2024-03-04T10:00:00+00:00")
    repo.commit("Even more", date="2024-03-05T09:00:00+00:00", files={"a.txt": "3\n"})
    repo.tag("v1.1.0", date="2024-03-05T10:00:00+00:00")
    return repo


def collect(config: Path, *extra: str) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deliverypulse",
            "collect",
            "--config",
            str(config),
            "--json",
            *list(extra),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary: dict = json.loads(result.stdout)
    return summary


def write_config(path: Path, repo: Path, pattern: str) -> Path:
    config = path / "deliverypulse.toml"
    config.write_text(
        f'[output]\npath = "{path / "data"}"\n\n'
        f'[[sources]]\nname = "shop"\ntype = "git"\npath = "{repo}"\n'
        f"deployments = '{pattern}'\n",
        encoding="utf-8",
    )
    return config


def tags_in(path: Path) -> list[str]:
    return sorted(dp.load(path / "data").deployments["ref"].astype(str))


def test_full_refresh_with_a_narrower_pattern_leaves_only_what_it_matches(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "shop")
    everything = sorted(repo.git("tag", "--list").split())
    config = write_config(tmp_path, repo.path, "tags:.*")
    collect(config)
    assert tags_in(tmp_path) == everything == ["0.x", "nightly", "v1.0.0", "v1.1.0"]

    write_config(tmp_path, repo.path, r"tags:^v\d")
    collect(config)  # an incremental run keeps what it stored
    assert tags_in(tmp_path) == everything

    summary = collect(config, "--full-refresh")
    releases = sorted(repo.git("tag", "--list", "v*").split())
    assert tags_in(tmp_path) == releases == ["v1.0.0", "v1.1.0"]
    removed = {s["stream"]: s["removed"] for s in summary["streams"]}
    assert removed["deployments"] == 2
    assert len(dp.load(tmp_path / "data").commits) == 3  # every commit is still there


def test_a_failed_full_refresh_deletes_nothing_it_did_not_read_again(tmp_path: Path) -> None:
    """A repo whose stream fails keeps its rows; a repo that completed is replaced."""
    import fake_connectors  # noqa: F401  (registers the scripted connector)

    config = tmp_path / "deliverypulse.toml"
    base = (
        '[output]\npath = "data"\n'
        '[[sources]]\nname = "ops"\ntype = "scripted"\nrepos = ["org/a", "org/b"]\n'
        "page_size = 2\n"
    )
    config.write_text(base + "pages = 3\n", encoding="utf-8")
    assert dp.run_collect(config).ok
    before = dp.load(tmp_path / "data").deployments.groupby("repo").size().to_dict()
    assert before == {"org/a": 6, "org/b": 6}

    # Now the source returns fewer rows, and org/b fails on its second page.
    config.write_text(base + 'pages = 2\nfail_at = 1\nfail_repo = "org/b"\n', encoding="utf-8")
    summary = dp.run_collect(config, full_refresh=True)
    assert not summary.ok
    after = dp.load(tmp_path / "data").deployments.groupby("repo").size().to_dict()
    assert after == {"org/a": 4, "org/b": 6}

    config.write_text(base + "pages = 2\n", encoding="utf-8")
    assert dp.run_collect(config, full_refresh=True).ok
    after = dp.load(tmp_path / "data").deployments.groupby("repo").size().to_dict()
    assert after == {"org/a": 4, "org/b": 4}
