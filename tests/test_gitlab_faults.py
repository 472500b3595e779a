"""Faults between the GitLab connector and GitLab: 5xx, 429, dropped connections, truncated
bodies, bad tokens and missing projects. The core policy alone decides retries and waits
(python-gitlab's own retries are off); no test really sleeps."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gitlab.exceptions as gle
import pandas as pd
import pytest
from deliverypulse_gitlab.transport import translate_gitlab_error
from fake_gitlab import FakeGitLab, Scenario, gitlab_source, synthetic_project

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.http.policy import ErrorContext
from deliverypulse.streams import Runtime

TOKEN = "glpat-SENTINEL-fault-0123456789"
SMALL = Scenario(merge_requests=12, deployments=4, pipelines=12, incidents=2)


@pytest.fixture
def slept() -> list[float]:
    """The waits of a run (backoffs and rate limits), none of them really slept."""
    return []


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)
    with FakeGitLab(token=TOKEN) as fake:
        fake.add_project(synthetic_project("acme/app", scenario=SMALL))
        yield fake


def collect(
    server: FakeGitLab,
    out: Path,
    *extra: dict[str, Any],
    sleep: Callable[[float], None] = lambda seconds: None,
    **options: Any,
) -> RunSummary:
    """Collect from the fake GitLab, with ``sleep`` for every wait instead of a real one."""
    source = gitlab_source(server, token_env="GL_TEST_TOKEN", **options)
    config = config_from_dict({"output": {"path": str(out)}, "sources": [source, *extra]})
    return run_collect(config, runtime=Runtime(sleep=sleep))


def tables(path: Path) -> dict[str, pd.DataFrame]:
    ds = dp.load(path)
    frames = {}
    for name in ("deployments", "changes", "commits", "test_runs", "incidents"):
        frame = getattr(ds, name)
        key = frame.columns[2]
        frames[name] = frame.sort_values(key).reset_index(drop=True)
    return frames


def errors(summary: RunSummary) -> str:
    return " ".join(summary.lines())


def test_a_run_through_faults_stores_what_a_clean_run_stores(
    server: FakeGitLab, tmp_path: Path, slept: list[float]
) -> None:
    clean = collect(server, tmp_path / "clean")
    assert clean.ok
    server.fail(r"app/merge_requests$", "502", times=3)
    server.fail(r"/deployments$", "drop")
    server.fail(r"/repository/commits$", "truncate")
    server.fail(r"/pipelines$", "short")
    server.fail(r"/events$", "503", times=2)
    server.fail(r"/jobs$", "429", retry_after="7")
    faulty = collect(server, tmp_path / "faulty", sleep=slept.append)
    assert faulty.ok, errors(faulty)
    for name, frame in tables(tmp_path / "clean").items():
        pd.testing.assert_frame_equal(frame, tables(tmp_path / "faulty")[name], obj=name)
    # Retry-After obeyed (RateLimit-Reset rounds it up by a second), through the shared budget.
    assert any(7 <= wait <= 8.5 for wait in slept), slept
    assert len([w for w in slept if w < 7]) >= 3 + 1 + 1 + 1 + 2  # backoffs, not real sleeps


def test_python_gitlab_does_not_retry_behind_the_policy(server: FakeGitLab, tmp_path: Path) -> None:
    server.fail(r"/incidents|/issues$", "500", times=100)
    summary = collect(server, tmp_path, streams=["incidents"])
    assert not summary.ok
    # The policy's 6 attempts, not 6 x python-gitlab's 10.
    assert len(server.requests(r"/issues$")) == 6
    message = errors(summary)
    assert "gave up after 6 attempts" in message
    assert "HTTP 500" in message and "/projects/acme%2Fapp/issues" in message
    assert "request id req-" in message


def test_rate_limit_reset_header_is_waited_for(
    server: FakeGitLab, tmp_path: Path, slept: list[float]
) -> None:
    server.fail(r"/deployments$", "429", reset_in=30)
    summary = collect(server, tmp_path, streams=["deployments"], sleep=slept.append)
    assert summary.ok, errors(summary)
    assert any(29 <= wait <= 32 for wait in slept), slept


def test_a_rate_limit_longer_than_allowed_stops_the_stream_and_resumes_later(
    server: FakeGitLab, tmp_path: Path, slept: list[float]
) -> None:
    server.fail(r"app/merge_requests$", "429", retry_after="3600")
    summary = collect(server, tmp_path, max_rate_limit_wait=60, sleep=slept.append)
    failed = [r.stream for r in summary.results if not r.ok]
    # The budget is spent for the whole token: the streams after it do not hammer GitLab.
    assert failed == ["changes", "test_runs", "incidents"]
    assert "max_rate_limit_wait" in errors(summary)
    assert all(wait < 3600 for wait in slept)
    assert len(dp.load(tmp_path).deployments) > 0  # what came before is stored
    again = collect(server, tmp_path, max_rate_limit_wait=60)
    assert again.ok and len(dp.load(tmp_path).changes) == 12


def test_bad_token_names_the_variable_never_the_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GL_TEST_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    with FakeGitLab(token="the-right-token") as fake:
        fake.add_project(synthetic_project("acme/app", scenario=SMALL))
        summary = collect(fake, tmp_path)
        assert len(fake.log) == 1  # an AuthError stops the source at once
    message = errors(summary)
    assert "authentication failed" in message and "$GL_TEST_TOKEN" in message
    assert "gitlab-acme-app" in message and "HTTP 401" in message
    assert TOKEN not in message and TOKEN not in caplog.text


def test_forbidden_is_a_permission_error(server: FakeGitLab, tmp_path: Path) -> None:
    server.fail(r"/deployments$", "403")
    summary = collect(server, tmp_path, streams=["deployments"])
    assert "permission denied" in errors(summary) and "$GL_TEST_TOKEN" in errors(summary)


def test_missing_project_fails_alone_and_other_sources_go_on(
    server: FakeGitLab, tmp_path: Path
) -> None:
    good = gitlab_source(server, name="good", token_env="GL_TEST_TOKEN")
    summary = collect(server, tmp_path, good, project="acme/missing", name="bad")
    bad_lines = [line for line in summary.lines() if line.startswith("bad ")]
    assert all("not found" in line and "'acme/missing'" in line for line in bad_lines)
    assert summary.failed_sources == ["bad"]
    assert len(dp.load(tmp_path).changes) == 12


def test_python_gitlab_exceptions_become_deliverypulse_errors() -> None:
    context = ErrorContext(source="web", token_env="GITLAB_TOKEN", repo="acme/app")
    auth = translate_gitlab_error(gle.GitlabAuthenticationError("401 Unauthorized", 401), context)
    assert isinstance(auth, dp.AuthError) and "$GITLAB_TOKEN" in str(auth)
    missing = translate_gitlab_error(gle.GitlabGetError("404 Project Not Found", 404), context)
    assert isinstance(missing, dp.NotFoundError) and "acme/app" in str(missing)
    server = translate_gitlab_error(gle.GitlabHttpError("502 Bad Gateway", 502), context)
    assert isinstance(server, dp.RetryableAPIError) and "'web'" in str(server)
    parsing = translate_gitlab_error(gle.GitlabParsingError("bad json"), context)
    assert isinstance(parsing, dp.RetryableAPIError)
    refused = translate_gitlab_error(gle.GitlabHttpError("422 Unprocessable", 422), context)
    assert isinstance(refused, dp.FatalAPIError) and not isinstance(refused, dp.AuthError)
