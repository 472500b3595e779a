"""The third-party connector in examples/ installs and is discovered like a first-party one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "csv_connector"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """pip-install the example package into a private folder; return an env that sees it."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
    }


def cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deliverypulse", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_installed_plugin_is_listed_next_to_first_party_connectors(
    installed: dict[str, str],
) -> None:
    result = cli(installed, "connectors")
    assert result.returncode == 0, result.stderr
    assert "csv  [deliverypulse_csv:CsvConnector]" in result.stdout
    assert "git  [deliverypulse_git:GitConnector]" in result.stdout
    assert "deployments_file: CSV of deployments / change requests" in result.stdout


def test_plugin_collects_change_requests_and_incidents(
    installed: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "changes.csv").write_text(
        "number,state,opened_at,closed_at,approved_by,env\n"
        "CHG001,success,2024-04-01T09:00:00Z,2024-04-01T11:00:00Z,cab-alice;cab-bob,prod\n"
        "CHG002,failure,2024-04-03T09:00:00+02:00,,cab-alice,prod\n"
    )
    (tmp_path / "incidents.csv").write_text(
        "incident_id,created_at,resolved_at,severity,title\n"
        "INC9,2024-04-03T10:00:00Z,2024-04-03T12:30:00Z,sev2,Checkout down\n"
    )
    (tmp_path / "deliverypulse.toml").write_text(
        '[[sources]]\nname = "servicenow"\ntype = "csv"\nrepo = "shop/web"\n'
        'deployments_file = "changes.csv"\nincidents_file = "incidents.csv"\n'
        '[sources.columns]\nnumber = "deployment_id"\nstate = "status"\nopened_at = "created_at"\n'
        'closed_at = "finished_at"\napproved_by = "approvers"\nenv = "environment"\n'
    )
    result = cli(installed, "collect", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fetched = {s["stream"]: s["fetched"] for s in json.loads(result.stdout)["streams"]}
    assert fetched == {"deployments": 2, "incidents": 1}

    check = (
        "import deliverypulse as dp; ds = dp.load('deliverypulse-data'); "
        "d = ds.deployments.set_index('deployment_id'); "
        "print(d.loc['CHG001','approvers'], d.loc['CHG002','created_at'], "
        "ds.incidents.loc[0,'severity'], d.loc['CHG002','finished_at'])"
    )
    shown = subprocess.run(
        [sys.executable, "-c", check],
        env=installed,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.split() == [
        "['cab-alice',",
        "'cab-bob']",
        "2024-04-03",
        "07:00:00+00:00",
        "sev2",
        "NaT",
    ]
    again = cli(installed, "collect", "--json", cwd=tmp_path)
    assert {s["fetched"] for s in json.loads(again.stdout)["streams"]} == {0}


def test_plugin_config_errors_are_one_line(installed: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "deliverypulse.toml").write_text(
        '[[sources]]\ntype = "csv"\nrepo = "a/b"\ndeployments_file = "missing.csv"\n'
    )
    result = cli(installed, "collect", cwd=tmp_path)
    assert result.returncode == 2
    assert "key 'deployments_file': file" in result.stderr
    assert "missing.csv does not exist" in result.stderr
