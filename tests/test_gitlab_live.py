"""Live checks against real GitLab: only with ``-m live`` and ``GITLAB_TOKEN`` set.

``GITLAB_LIVE_PROJECT`` names a project the token can read (default: gitlab-org/gitlab-runner,
public, with deployments and pipelines); ``GITLAB_URL`` a self-managed instance.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import deliverypulse as dp
from deliverypulse.collector import run_collect
from deliverypulse.config import config_from_dict

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("GITLAB_TOKEN"), reason="GITLAB_TOKEN is not set"),
]


def test_recent_month_of_a_real_project(tmp_path: Path) -> None:
    source = {
        "type": "gitlab",
        "project": os.environ.get("GITLAB_LIVE_PROJECT", "gitlab-org/gitlab-runner"),
        "url": os.environ.get("GITLAB_URL", "https://gitlab.com"),
        "token_env": "GITLAB_TOKEN",
        "since": "2025-01-01",
        "streams": ["changes", "test_runs", "incidents"],
        "max_rate_limit_wait": 120,
    }
    config = config_from_dict({"output": {"path": str(tmp_path)}, "sources": [source]})
    summary = run_collect(config)
    assert summary.ok, summary.lines()
    ds = dp.load(tmp_path)
    assert len(ds.changes) > 0
    assert ds.changes["merged_at"].notna().all()
    token = os.environ["GITLAB_TOKEN"]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes()
