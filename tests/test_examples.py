"""The examples stay true: their configs validate against the installed connectors."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from gitrepo import GitRepo

import deliverypulse as dp
from deliverypulse.config import config_from_dict

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_nightly_config_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "example-github-token")
    monkeypatch.setenv("GITLAB_TOKEN", "example-gitlab-token")
    raw = tomllib.loads((EXAMPLES / "nightly" / "deliverypulse.toml").read_text())
    mirror = GitRepo(tmp_path / "legacy")
    mirror.commit("Initial commit", date="2024-01-01T00:00:00+00:00")
    for source in raw["sources"]:
        if source["type"] == "git":
            source["path"] = str(mirror.path)
    config = config_from_dict(raw, output=tmp_path / "data")
    assert [s.type for s in config.sources] == ["github", "gitlab", "git"]
    assert config.concurrency == 4


def test_nightly_script_and_crontab_agree() -> None:
    crontab = (EXAMPLES / "nightly" / "crontab").read_text()
    line = next(x for x in crontab.splitlines() if x and not x.startswith("#"))
    assert re.match(r"^\d+ \d+ \* \* \* ", line)
    assert line.endswith("examples/nightly/run.sh")
    script = EXAMPLES / "nightly" / "run.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "deliverypulse collect --config deliverypulse.toml" in text
    assert "deliverypulse report" in text


def test_actions_workflow_is_scheduled_and_its_config_validates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions" / "deliverypulse.yml").read_text())
    assert workflow[True]["schedule"][0]["cron"] == "17 2 * * *"  # YAML reads `on:` as True
    steps = workflow["jobs"]["collect"]["steps"]
    collect = next(s for s in steps if s.get("name") == "Collect")
    assert collect["env"]["GITHUB_TOKEN"] == "${{ secrets.DELIVERYPULSE_TOKEN }}"
    embedded = collect["run"].split("<<'TOML'\n", 1)[1].split("TOML\n", 1)[0]
    embedded = embedded.replace("${{ github.repository_owner }}", "octo-org")
    monkeypatch.setenv("GITHUB_TOKEN", "example-github-token")
    config = config_from_dict(tomllib.loads(embedded))
    assert config.sources[0].get("org") == "octo-org"
    assert any("cache/restore" in s.get("uses", "") for s in steps)
    assert any("cache/save" in s.get("uses", "") for s in steps)


README = Path(__file__).parent.parent / "README.md"


def readme_connector() -> ModuleType:
    """The connector the README's guide shows, as an importable module."""
    text = README.read_text(encoding="utf-8")
    code = text.split("<!-- connector-example -->\n```python\n", 1)[1].split("```\n", 1)[0]
    module = ModuleType("deliverypulse_gitea")
    sys.modules[module.__name__] = module
    exec(compile(code, str(README), "exec"), module.__dict__)
    return module


def test_the_readme_connector_collects_facts_the_core_classifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gitea = readme_connector()
    dp.register_connector(gitea.GiteaConnector)

    def pull(number: int, title: str, merged: bool, **extra: Any) -> dict[str, Any]:
        day = 10 - number
        return {
            "number": number,
            "title": title,
            "body": extra.get("body", ""),
            "user": {"login": extra.get("login", "ann")},
            "head": {"ref": extra.get("head", f"topic-{number}")},
            "base": {"ref": "main"},
            "labels": [{"name": name} for name in extra.get("labels", [])],
            "merged": merged,
            "created_at": f"2024-05-0{day}T08:00:00+02:00",
            "updated_at": f"2024-05-0{day}T12:00:00+02:00",
            "merged_at": f"2024-05-0{day}T11:00:00+02:00" if merged else None,
            "merge_commit_sha": f"{number:040x}" if merged else None,
            "html_url": f"https://gitea.test/octo/web/pulls/{number}",
        }

    pages = [
        [pull(4, 'Revert "Add search"', True, body="Reverts #2"), pull(3, "Draft", False)],
        [pull(2, "Add search", True, labels=["hotfix"]), pull(1, "Bump", True, login="renovate")],
    ]
    requests: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        assert request.headers["authorization"] == "Bearer gitea-test-token"
        page = int(request.url.params.get("page", "1"))
        headers = {}
        if page < len(pages):
            headers["link"] = f'<{request.url.copy_merge_params({"page": page + 1})}>; rel="next"'
        return httpx.Response(200, json=pages[page - 1], headers=headers)

    monkeypatch.setenv("GITEA_TOKEN", "gitea-test-token")
    config = tmp_path / "deliverypulse.toml"
    config.write_text(
        '[[sources]]\nname = "forge"\ntype = "gitea"\nurl = "https://gitea.test"\n'
        'repos = ["octo/web"]\ntoken_env = "GITEA_TOKEN"\n'
    )
    runtime = dp.Runtime(transport=httpx.MockTransport(serve))
    summary = dp.run_collect(config, runtime=runtime)
    assert summary.ok, summary.lines()
    changes = dp.load(summary.output).changes.set_index("change_id").sort_index()
    assert list(changes.index) == ["1", "2", "4"]
    assert changes.loc["4", "is_revert"] and changes.loc["4", "reverts"] == "2"
    assert changes.loc["2", "is_hotfix"] and changes.loc["1", "is_bot"]
    assert str(changes.loc["2", "merged_at"]) == "2024-05-08 09:00:00+00:00"
    assert len(requests) == 2

    requests.clear()
    again = dp.run_collect(config, runtime=runtime)
    assert again.ok and again.results[0].fetched == 0  # stopped at the saved watermark
    assert len(requests) == 1
