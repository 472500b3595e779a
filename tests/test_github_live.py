"""Opt-in checks against api.github.com (``pytest -m live`` with GITHUB_TOKEN set): the
queries GitHub really accepts and the shapes it really returns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from github_helpers import github_config, tables

from deliverypulse.collector import run_collect

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("GITHUB_TOKEN"), reason="needs GITHUB_TOKEN"),
]


def test_collects_a_public_repository(tmp_path: Path) -> None:
    source = {
        "type": "github",
        "name": "hello",
        "repo": "octocat/Hello-World",
        "token_env": "GITHUB_TOKEN",
        "since": "2024-01-01",
        "streams": ["changes", "commits", "deployments", "incidents"],
    }
    summary = run_collect(github_config(tmp_path, [source]))
    assert summary.ok, summary.lines()
    data = tables(tmp_path)
    assert data["changes"]["change_id"].notna().all()
