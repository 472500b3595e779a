"""The examples stay true: their configs validate against the installed connectors."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from gitrepo import GitRepo

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
