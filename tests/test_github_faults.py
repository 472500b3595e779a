"""Faults and credentials: a run through 5xx bursts, 429s, secondary limits, dropped
connections, truncated JSON and a spent rate limit ends with exactly the rows of a clean run;
auth and not-found errors name the source, variable and repo, never the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_github import FakeGitHub, Fault, make_repo
from github_helpers import TOKEN, assert_same_rows, github_config, github_source, tables

from deliverypulse.collector import run_collect
from deliverypulse.streams import Runtime


@pytest.fixture
def world() -> Iterator[FakeGitHub]:
    with FakeGitHub([make_repo(), make_repo("octo", "api", pulls=30)], token=TOKEN) as server:
        yield server


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def runtime(slept: list[float]) -> Runtime:
    """Waits are recorded, never slept (the collector hands the runtime to the connector)."""
    return Runtime(sleep=slept.append)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


def run(world: FakeGitHub, output: Path, runtime: Runtime, **options: object) -> list[str]:
    source = github_source(world.url, repo=None, repos=["octo/web", "octo/api"], **options)
    return run_collect(github_config(output, [source]), runtime=runtime).lines()


def test_fault_injection_run_ends_with_the_rows_of_a_clean_run(
    world: FakeGitHub, tmp_path: Path, slept: list[float], runtime: Runtime
) -> None:
    run(world, tmp_path / "clean", runtime)
    clean = tables(tmp_path / "clean")
    clean_requests = world.count()
    world.clear_log()
    world.faults += [
        Fault("status", "PullRequests", times=3, status=502, skip=1),  # a 5xx burst mid-walk
        Fault("status", "/actions/runs", times=2, status=503),
        Fault("retry_after", "Deployments", seconds=7),
        Fault("secondary", "Commits"),
        Fault("drop", "/issues"),
        Fault("truncate", "PullRequests", skip=2),
        Fault("truncate", "/actions/runs", skip=2),
        Fault("exhaust", "DeploymentReviews", reset_in=40),  # primary limit spent mid-run
    ]
    lines = run(world, tmp_path / "faulty", runtime)
    assert all("FAILED" not in line for line in lines), lines
    assert all(fault.times == 0 for fault in world.faults), "a fault was never injected"
    assert_same_rows(clean, tables(tmp_path / "faulty"))
    assert world.count() == clean_requests + 11  # each fault cost exactly one retry
    assert any(6.9 <= s <= 9 for s in slept)  # Retry-After
    assert any(s >= 60 for s in slept)  # secondary limit without Retry-After
    assert any(30 <= s <= 45 for s in slept)  # waited for the primary reset


def test_rate_limit_beyond_max_wait_stops_cleanly_and_a_rerun_completes(
    world: FakeGitHub, tmp_path: Path, slept: list[float], runtime: Runtime
) -> None:
    run(world, tmp_path / "clean", runtime)
    clean = tables(tmp_path / "clean")
    world.clear_log()
    world.faults.append(Fault("exhaust", "PullRequests", skip=1, reset_in=3600))
    lines = run(world, tmp_path / "cut", runtime, max_rate_limit_wait=60)
    failed = [line for line in lines if "FAILED" in line]
    assert failed and all("rate limit" in line for line in failed), lines
    assert "resets at" in failed[0]
    assert not any(s > 60 for s in slept)  # never waited an hour
    partial = tables(tmp_path / "cut")
    assert 0 < len(partial["changes"]) < len(clean["changes"])
    assert len(partial["test_runs"]) == len(clean["test_runs"])  # REST streams went on
    world.clear_log()
    run(world, tmp_path / "cut", runtime, max_rate_limit_wait=60)
    assert_same_rows(clean, tables(tmp_path / "cut"))


def test_bad_token_fails_its_source_only_and_never_shows_the_token(
    world: FakeGitHub,
    tmp_path: Path,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "ghp_WRONG_sentinel_token_9876543210"
    monkeypatch.setenv("OTHER_TOKEN", wrong)
    sources = [
        github_source(world.url, name="bad", token_env="OTHER_TOKEN"),
        github_source(world.url, name="good"),
    ]
    caplog.set_level(logging.DEBUG)
    summary = run_collect(github_config(tmp_path, sources), runtime=runtime)
    assert summary.failed_sources == ["bad"]
    text = " ".join(summary.lines())
    assert "authentication failed" in text and "$OTHER_TOKEN" in text and "'bad'" in text
    assert wrong not in text and wrong not in caplog.text and TOKEN not in caplog.text
    good = tables(tmp_path)["changes"]
    assert set(good["source"]) == {"good"} and len(good) == 120
    # Auth errors stop the source: one request, not one per stream and repo.
    assert world.count(lambda r: r.status == 401) == 1


def test_missing_repo_is_named_and_the_other_repos_go_on(
    world: FakeGitHub, tmp_path: Path, runtime: Runtime
) -> None:
    source = github_source(world.url, repo=None, repos=["octo/gone", "octo/web"])
    summary = run_collect(github_config(tmp_path, [source]), runtime=runtime)
    failed = [line for line in summary.lines() if "FAILED" in line]
    assert failed and all("octo/gone" in line and "not found" in line for line in failed)
    assert set(tables(tmp_path)["changes"]["repo"]) == {"octo/web"}


def test_github_app_installation_auth(
    world: FakeGitHub,
    tmp_path: Path,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    world.app_keys["4242"] = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    monkeypatch.setenv("APP_KEY", private)
    source = github_source(
        world.url,
        token_env=None,
        app_id=4242,
        app_private_key_env="APP_KEY",
        installation_id=7,
        streams=["changes", "deployments"],
    )
    caplog.set_level(logging.DEBUG)
    summary = run_collect(github_config(tmp_path, [source]), runtime=runtime)
    assert summary.ok, summary.lines()
    assert len(tables(tmp_path)["changes"]) == 120
    issued = [t for t in world.tokens if t.startswith("ghs_")]
    assert len(issued) == 1  # one installation token, shared by all requests
    assert world.count(lambda r: r.path == "/app/installations/7/access_tokens") == 1
    assert issued[0] not in caplog.text and "PRIVATE KEY" not in caplog.text


def test_github_app_with_unknown_key_is_an_auth_error(
    world: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: Runtime
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    monkeypatch.setenv(
        "APP_KEY",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )
    source = github_source(
        world.url, token_env=None, app_id=99, app_private_key_env="APP_KEY", installation_id=7
    )
    summary = run_collect(github_config(tmp_path, [source]), runtime=runtime)
    assert not summary.ok
    assert "installation token" in " ".join(summary.lines())
