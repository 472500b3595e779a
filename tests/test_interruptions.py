"""A run killed with SIGKILL at any write, then rerun, ends with exactly the rows of a clean run.

The killed run is a real subprocess; the kill is placed deterministically by wrapping one of
the three writes (a Parquet partition, the rename onto it, the state file) so that the test
covers each point where a crash could tear something.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import deliverypulse as dp
from deliverypulse.store import DatasetLock

TESTS = Path(__file__).parent

CONFIG = (
    '[output]\npath = "data"\n'
    '[[sources]]\nname = "ops"\ntype = "scripted"\nrepos = ["org/a", "org/b", "org/c"]\n'
    "pages = 6\npage_size = 5\n"
)

KILLER = """
import os, signal, sys
import fake_connectors
import deliverypulse.collector as collect
import deliverypulse.store.parquet as parquet
import deliverypulse.store.files as files
import deliverypulse.store.state as state

collect.FLUSH_ROWS = 1          # write (and checkpoint) after every page
collect.MERGED_PAGE_ROWS = 1    # and hand every page over on its own
point, nth = sys.argv[1], int(sys.argv[2])
calls = {"n": 0}

def due():
    calls["n"] += 1
    return calls["n"] == nth

real_write, real_replace, real_state = parquet._write, os.replace, state.write_text_atomic

def torn_write(table, path, *rest):
    real_write(table, path, *rest)
    if point == "parquet" and due():
        with open(path, "r+b") as handle:     # leave a half-written temp file behind
            handle.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

def replace_then_die(src, dst):
    real_replace(src, dst)
    if point == "rename" and str(dst).endswith(".parquet") and due():
        os.kill(os.getpid(), signal.SIGKILL)  # rows durable, cursor not yet saved

def state_write(path, text):
    if point == "state" and due():
        os.kill(os.getpid(), signal.SIGKILL)  # dies before the new state lands
    real_state(path, text)

parquet._write = torn_write
files.os.replace = replace_then_die
state.write_text_atomic = state_write
collect.run_collect(sys.argv[3])
"""


def killed_run(config: Path, point: str, nth: int) -> int:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", KILLER, point, str(nth), str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode


def rows(data: Path) -> pd.DataFrame:
    frame = dp.load(data).deployments
    return frame.sort_values(["repo", "deployment_id"]).reset_index(drop=True)


@pytest.fixture
def clean_rows(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("clean")
    (root / "deliverypulse.toml").write_text(CONFIG)
    dp.run_collect(root / "deliverypulse.toml")
    return rows(root / "data")


@pytest.mark.parametrize(
    ("point", "nth"), [("parquet", 4), ("rename", 7), ("state", 5), ("parquet", 1), ("state", 1)]
)
def test_killed_then_rerun_equals_a_clean_run(
    write_config: Callable[[str], Path], clean_rows: pd.DataFrame, point: str, nth: int
) -> None:
    config = write_config(CONFIG)
    assert killed_run(config, point, nth) == -signal.SIGKILL
    data = config.parent / "data"
    if (data / "deployments").exists():
        pd.read_parquet(data / "deployments")  # still readable right after the kill
    summary = dp.run_collect(config)
    assert summary.ok
    pd.testing.assert_frame_equal(rows(data), clean_rows)
    assert not list(data.rglob(".tmp-*"))


def test_a_second_run_exits_with_a_clear_message_while_one_is_writing(
    write_config: Callable[[str], Path],
) -> None:
    config = write_config(CONFIG)
    data = config.parent / "data"
    with DatasetLock(data):
        with pytest.raises(
            dp.LockError,
            match=r"another deliverypulse run \(pid \d+, since .*\) "
            r"is writing .*data",
        ):
            dp.run_collect(config)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import fake_connectors; from deliverypulse.cli import main; main()",
                "collect",
                "--config",
                str(config),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "another deliverypulse run" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (data / "deployments").exists()  # the refused runs wrote nothing


def test_a_waiting_run_proceeds_once_the_lock_is_released(
    write_config: Callable[[str], Path],
) -> None:
    config = write_config(CONFIG)
    data = config.parent / "data"
    lock = DatasetLock(data).__enter__()
    releaser = threading.Timer(0.5, lock.__exit__, args=(None, None, None))
    releaser.start()
    started = time.monotonic()
    summary = dp.run_collect(config, lock_timeout=30)
    assert summary.ok
    assert time.monotonic() - started >= 0.4
    assert len(dp.load(data).deployments) == 3 * 6 * 5
