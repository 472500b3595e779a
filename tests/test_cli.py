"""The CLI: exit codes, one-line errors without tracebacks, summaries, --json, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from deliverypulse.cli import main

TESTS = Path(__file__).parent

CONFIG = (
    '[output]\npath = "data"\n[[sources]]\nname = "ops"\ntype = "scripted"\nrepos = ["org/a"]\n'
)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess, with the scripted connector importable."""
    script = "import fake_connectors; from deliverypulse.cli import main; main()"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_collect_prints_one_summary_line_per_stream_and_exits_0(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config(CONFIG)
    result = run(["collect", "--config", str(path)], path.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("ops deployments: 1 repo, 12 rows fetched, 12 new")
    assert lines[1].startswith("ops incidents: 1 repo, 0 rows fetched")
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ('[[sources]]\ntype = "scripted"\nrepso = ["x"]\n', "unknown key (did you mean 'repos'?)"),
        ('[[sources]]\ntype = "jira"\n', "unknown connector type 'jira'; installed connectors:"),
        (
            '[[sources]]\ntype = "scripted"\ntoken_env = "DP_SURELY_UNSET_VAR"\n',
            "environment variable DP_SURELY_UNSET_VAR is not set",
        ),
        ('[[sources]]\ntype = "git"\npath = "does/not/exist"\n', "does/not/exist"),
    ],
)
def test_config_mistakes_exit_2_with_one_line_and_no_traceback(
    write_config: Callable[[str], Path], config_text: str, expected: str
) -> None:
    path = write_config(config_text)
    result = run(["collect", "--config", str(path)], path.parent)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("deliverypulse: error: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_source_exits_1_and_says_so(write_config: Callable[[str], Path]) -> None:
    path = write_config(CONFIG + "fail_at = 1\n")
    result = run(["collect", "--config", str(path)], path.parent)
    assert result.returncode == 1
    assert "ops deployments: FAILED (org/a: source 'ops': server error (HTTP 502))" in result.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["collect", "--since", "someday", "--git", str(tmp_path)])
    assert result.exit_code == 2
    assert "'someday' is not a date" in result.output


def test_no_config_here_is_a_clear_error(tmp_path: Path) -> None:
    result = run(["collect"], tmp_path)
    assert result.returncode == 2
    assert "no deliverypulse.toml here; pass --config FILE or --git PATH" in result.stderr


def test_json_summary_and_status(write_config: Callable[[str], Path]) -> None:
    path = write_config(CONFIG)
    result = run(["collect", "--config", str(path), "--json"], path.parent)
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["streams"][0]["fetched"] == 12

    status = run(["status", str(path.parent / "data"), "--json"], path.parent)
    data = json.loads(status.stdout)
    assert {"table": "deployments", "source": "ops", "rows": 12} in data["tables"]
    assert data["cursors"][0]["cursor"] == "3"
    assert data["last_run"]["ok"] is True

    text = run(["status", str(path.parent / "data")], path.parent).stdout
    assert "deployments" in text and "ops" in text and "12" in text and "ok" in text


def test_status_of_a_missing_dataset_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no dataset at" in result.output


def test_connectors_lists_first_party_and_in_process_ones() -> None:
    result = CliRunner().invoke(main, ["connectors"])
    assert result.exit_code == 0
    assert "git  [deliverypulse_git:GitConnector]" in result.output
    assert "scripted  [fake_connectors:ScriptedConnector]" in result.output
    assert "  streams: deployments, changes, commits\n" in result.output
    reads = "    changes: reads pull/merge request merges and '(#N)' commits on every line"
    assert reads in result.output


def test_connectors_shows_what_each_declared_stream_reads_and_runs_after() -> None:
    result = CliRunner().invoke(main, ["connectors"])
    assert result.exit_code == 0
    section = result.output.split("relay  [fake_connectors:RelayConnector]\n", 1)[1]
    assert section.startswith(
        "  streams: commits, changes, incidents\n"
        "    commits: reads the commits of those pull requests; after changes\n"
        "    changes: reads the scripted pull requests\n"
        "    incidents\n"
        "  repo: the one repo (default 'octo/web')\n"
    )


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deliverypulse", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("deliverypulse, version ")
