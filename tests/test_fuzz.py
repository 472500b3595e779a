"""Fuzzing the two doors bad input comes through: config files and API payloads.

Whatever hypothesis writes, ``deliverypulse collect`` must end with exit code 0, 1 or 2, say
what went wrong in one line per failure on stderr with no traceback, write nothing outside the
dataset folder, and leave the previous dataset as it was when the run fails.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from gitrepo import GitRepo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deliverypulse.collector as collector
from deliverypulse.cli import main
from deliverypulse.streams import Runtime

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- a tiny TOML writer for the values hypothesis makes ---------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else "0"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return json.dumps(str(value))


def _toml(document: dict[str, Any]) -> str:
    lines: list[str] = []
    for key, value in document.items():
        if key in ("output", "collect") and isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif key == "sources" and isinstance(value, list):
            for source in value:
                lines.append("[[sources]]")
                lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in source.items()]
        else:
            lines.insert(0, f"{json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


# --- strategies --------------------------------------------------------------------------------

# TOML cannot hold lone surrogates or most control characters; the rest is fair game.
texts = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    texts,
    st.sampled_from(["", ".", "..", "/", "../../x", "^v\\d", "tags:[", "branch:", "[", "(?<"]),
    st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2500, 1, 1)),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))
KEYS = [
    "name",
    "type",
    "token_env",
    "since",
    "streams",
    "production",
    "hotfix",
    "bots",
    "enabled",
    "repos",
    "pages",
    "page_size",
    "fail_at",
    "fail_repo",
    "path",
    "deployments",
    "branch",
    "environment",
    "repo",
    "tokn_env",
    "junk",
]


@st.composite
def configs(draw: st.DrawFn, repo_path: str) -> dict[str, Any]:
    sources = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        kind = draw(st.sampled_from(["scripted", "git", "nope", 3]))
        source: dict[str, Any] = {"type": kind}
        if kind == "git" and draw(st.booleans()):
            source["path"] = repo_path
        for key in draw(st.lists(st.sampled_from(KEYS), max_size=4, unique=True)):
            if key != "type":
                source[key] = draw(values)
        sources.append(source)
    document: dict[str, Any] = {"sources": sources}
    if draw(st.booleans()):
        document["collect"] = {draw(st.sampled_from(["concurrency", "concurency"])): draw(values)}
    if draw(st.booleans()):
        document[draw(st.sampled_from(["outptu", "extra"]))] = draw(scalars)
    return document


# --- helpers -----------------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "lock" not in path.name
    }


def _run(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=True)


def _check_outcome(result: Any) -> None:
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"escaped: {result.exception!r}")
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    if result.exit_code == 2:
        assert len(errors) <= 3, errors  # click's usage error: usage line, hint, message
        assert errors and ("error" in errors[-1].lower()), errors


@pytest.fixture(scope="module")
def repo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = GitRepo(tmp_path_factory.mktemp("repo"))
    repo.commit("first", date="2024-01-01T10:00:00+00:00")
    repo.tag("v1.0.0")
    repo.commit("second", date="2024-01-02T10:00:00+00:00")
    repo.tag("v1.1.0")
    return repo.path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, repo_path: Path) -> Path:
    """A dataset collected once, cleanly, from the git repo."""
    out = tmp_path_factory.mktemp("baseline") / "data"
    result = _run(["collect", "--git", str(repo_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


# --- config files --------------------------------------------------------------------------------


@given(data=st.data())
@SETTINGS
def test_any_config_file_ends_cleanly(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory, repo_path: Path, baseline: Path
) -> None:
    work = tmp_path_factory.mktemp("fuzz")
    dataset = work / "data"
    dataset.mkdir()
    for name, content in _files(baseline).items():
        (dataset / name).parent.mkdir(parents=True, exist_ok=True)
        (dataset / name).write_bytes(content)
    before = _files(dataset)
    document = data.draw(configs(str(repo_path)))
    config = work / "deliverypulse.toml"
    config.write_text(_toml(document), encoding="utf-8")
    result = _run(["collect", "-c", str(config), "--out", str(dataset)])
    _check_outcome(result)
    outside = {p.name for p in work.iterdir()}
    assert outside <= {"data", "deliverypulse.toml"}, outside
    after = _files(dataset)
    if result.exit_code == 2:
        assert after == before  # a configuration error touches nothing
    else:
        tables = [name for name in before if name.endswith(".parquet")]
        assert all(name in after for name in tables)  # nothing stored is lost


# --- API payloads ------------------------------------------------------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    texts,
    st.sampled_from(
        ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00", "9999-12-31T23:59:59Z", "not a date"]
    ),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)
RUN_FIELDS = [
    "id",
    "name",
    "head_sha",
    "head_branch",
    "event",
    "status",
    "conclusion",
    "created_at",
    "updated_at",
    "run_started_at",
    "run_attempt",
    "html_url",
    "path",
]


@st.composite
def workflow_runs(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not even the right shape
    runs = []
    for number in range(draw(st.integers(0, 4))):
        run: dict[str, Any] = {"id": number + 1, "created_at": "2024-05-01T10:00:00Z"}
        for field in draw(st.lists(st.sampled_from(RUN_FIELDS), max_size=5, unique=True)):
            run[field] = draw(json_values)
        runs.append(run)
    return {"total_count": len(runs), "workflow_runs": runs}


GITHUB_CONFIG = """
[[sources]]
name = "gh"
type = "github"
repo = "octo/web"
token_env = "DP_FUZZ_TOKEN"
api_url = "https://api.github.test"
streams = ["test_runs"]
"""


@given(payload=workflow_runs())
@SETTINGS
def test_any_workflow_runs_payload_ends_cleanly(
    payload: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/actions/runs"):
            return httpx.Response(200, json=payload)
        return httpx.Response(404, json={"message": "Not Found"})

    runtime = Runtime(sleep=lambda _seconds: None, transport=httpx.MockTransport(answer))
    monkeypatch.setattr(collector, "DEFAULT_RUNTIME", runtime)
    work = tmp_path_factory.mktemp("payload")
    config = work / "deliverypulse.toml"
    config.write_text(GITHUB_CONFIG, encoding="utf-8")
    result = _run(
        ["collect", "-c", str(config), "--out", str(work / "data")],
        env={"DP_FUZZ_TOKEN": "fuzz-token-value"},
    )
    _check_outcome(result)
    assert "fuzz-token-value" not in result.stderr + result.stdout
    for line in result.stderr.splitlines():
        assert not re.search(r"File \".*\", line \d+", line)
    assert {p.name for p in work.iterdir()} <= {"data", "deliverypulse.toml"}
