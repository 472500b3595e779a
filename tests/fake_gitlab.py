"""The fake GitLab server, now in the package (``deliverypulse.demo.gitlab_server``) so the demo
can serve it; re-exported here so the connector tests and the benchmark keep their imports."""

from __future__ import annotations

from deliverypulse.demo.gitlab_server import *  # noqa: F403
from deliverypulse.demo.gitlab_server import (
    FakeGitLab,
    FakeProject,
    Fault,
    LoggedRequest,
    Scenario,
    gitlab_source,
    synthetic_project,
    ts,
    user,
)

__all__ = [
    "FakeGitLab",
    "FakeProject",
    "Fault",
    "LoggedRequest",
    "Scenario",
    "gitlab_source",
    "synthetic_project",
    "ts",
    "user",
]
