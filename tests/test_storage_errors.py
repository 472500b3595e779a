"""Bad environments explain themselves: one line naming the file and what to do, the
documented exit code, and nothing stored lost."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from gitrepo import GitRepo

import deliverypulse as dp
import deliverypulse.store.parquet as parquet
from deliverypulse.cli import main
from deliverypulse.store.state import SyncState


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    git = GitRepo(tmp_path_factory.mktemp("repo"))
    git.commit("first", date="2024-01-01T10:00:00+00:00")
    git.tag("v1.0.0")
    git.commit("second", date="2024-01-02T10:00:00+00:00")
    git.tag("v1.1.0")
    return git.path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deliverypulse", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"cursors": {"git": ', "not valid JSON"),
        ("", "the file is empty"),
        ('{"cursors": "x", "runs": 5}', "'runs' is not a list"),
        ('{"cursors": {"s": {"t": {"r": 5}}}}', "a cursor entry"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_a_damaged_state_file_says_what_to_do(
    tmp_path: Path, repo: Path, content: str, why: str
) -> None:
    out = tmp_path / "data"
    assert _cli("collect", "--git", str(repo), "--out", str(out)).returncode == 0
    state = out / "_deliverypulse" / "state.json"
    state.write_text(content, encoding="utf-8")
    done = _cli("collect", "--git", str(repo), "--out", str(out))
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert str(state) in line and why in line and "--full-refresh" in line
    # A full refresh needs no cursor: it sets the damaged file aside and starts afresh.
    healed = _cli("collect", "--git", str(repo), "--out", str(out), "--full-refresh")
    assert healed.returncode == 0, healed.stderr
    assert (state.parent / "state.json.damaged").read_text(encoding="utf-8") == content
    assert SyncState(out).runs[-1]["ok"] is True


def test_a_dataset_folder_that_cannot_be_made_is_a_usage_error(repo: Path) -> None:
    done = _cli("collect", "--git", str(repo), "--out", "/dev/null/deliverypulse")
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "/dev/null/deliverypulse" in line and "choose a folder you can write" in line


def test_a_lock_path_that_is_a_folder_is_named(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "data" / "_deliverypulse" / "lock").mkdir(parents=True)
    done = _cli("collect", "--git", str(repo), "--out", str(tmp_path / "data"))
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "_deliverypulse/lock" in line and "is a folder" in line


def test_a_full_disk_keeps_what_was_stored_and_prints_the_summary(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "data"
    runner = CliRunner()
    first = runner.invoke(main, ["collect", "--git", str(repo), "--out", str(out)])
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in out.rglob("*.parquet")}
    cursors = SyncState(out).cursors()

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(parquet, "write_atomic", full)
    second = runner.invoke(
        main, ["collect", "--git", str(repo), "--out", str(out), "--full-refresh"]
    )
    assert second.exit_code == 1
    assert "Traceback" not in second.stderr
    assert "No space left on device" in second.stderr and "rerun" in second.stderr
    assert "git-" in second.stderr  # the per-stream summary is still printed
    assert {p: p.read_bytes() for p in out.rglob("*.parquet")} == before
    assert SyncState(out).cursors() == cursors
    assert SyncState(out).runs[-1]["ok"] is False  # the run record says it failed
    assert dp.load(out).deployments["deployment_id"].size == 2


def test_the_state_file_is_checked_on_load_too(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "data"
    assert _cli("collect", "--git", str(repo), "--out", str(out)).returncode == 0
    (out / "_deliverypulse" / "state.json").write_text(json.dumps({"starts": []}))
    done = _cli("metrics", str(out))
    assert done.returncode == 1
    assert "state.json is damaged" in _one_line(done.stderr)
