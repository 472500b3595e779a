"""Issue 14 item 4 (metrics side): people are not the unit. Names are pseudonymised by a keyed
hash by default; ``--show-names`` shows them; teams come from the catalogue in the CLI too."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import deliverypulse as dp
from deliverypulse.cli.metrics import metrics_command
from deliverypulse.pseudonyms import KEY_ENV, KEY_FILE, pseudonymise_frame
from deliverypulse.store.catalogue import Service


def test_a_pseudonym_is_stable_keyed_short_and_ignores_case() -> None:
    one = dp.pseudonymise("Alice", "k1")
    assert re.fullmatch(r"person-[0-9a-f]{8}", one)
    assert dp.pseudonymise(" alice ", "k1") == one  # logins ignore case
    assert dp.pseudonymise("Alice", b"k1") == one
    assert dp.pseudonymise("Alice", "k2") != one
    assert dp.pseudonymise("Bob", "k1") != one


def test_series_lists_and_missing_values() -> None:
    names = pd.Series(["alice", None, "bob"], dtype="string")
    out = dp.pseudonymise(names, "k")
    assert out.dtype == names.dtype and out.isna().tolist() == [False, True, False]
    assert dp.pseudonymise([["alice", "bob"], None], "k") == [
        [dp.pseudonymise("alice", "k"), dp.pseudonymise("bob", "k")],
        None,
    ]
    frame = pd.DataFrame({"repo": ["o/a"], "author": ["alice"], "approvers": [["bob"]]})
    masked = pseudonymise_frame(frame, "k")
    assert masked["repo"].tolist() == ["o/a"]
    assert masked["author"].tolist() == [dp.pseudonymise("alice", "k")]
    assert masked["approvers"].tolist() == [[dp.pseudonymise("bob", "k")]]


def test_the_key_comes_from_the_environment_else_the_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "shared secret")
    assert dp.pseudonym_key(tmp_path) == b"shared secret"
    assert not (tmp_path / KEY_FILE).exists()
    monkeypatch.delenv(KEY_ENV)
    first = dp.pseudonym_key(tmp_path)
    assert (tmp_path / KEY_FILE).is_file()
    assert dp.pseudonym_key(tmp_path) == first  # two runs on one dataset agree
    other = tmp_path / "other"
    other.mkdir()
    assert dp.pseudonym_key(other) != first  # another dataset has its own


def deploy(deployment_id: str, at: str, repo: str, creator: str) -> dict:
    return {
        "repo": repo,
        "deployment_id": deployment_id,
        "sha": deployment_id * 8,
        "environment": "production",
        "status": "success",
        "created_at": at,
        "finished_at": at,
        "creator": creator,
    }


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    ds = dp.Dataset.from_frames(
        deployments=[
            deploy("a1", "2024-01-02T12:00Z", "o/a", "Alice"),
            deploy("a2", "2024-01-03T12:00Z", "o/a", "Bob"),
            deploy("b1", "2024-01-05T12:00Z", "o/b", "Alice"),
        ],
        services=[
            Service("a", repos=("o/a",), team="red"),
            Service("b", repos=("o/b",), team="blue"),
        ],
    )
    ds.save(tmp_path / "data")
    return tmp_path / "data"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(metrics_command, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_metrics_by_team_needs_no_column_of_ones_own(dataset_dir: Path) -> None:
    code, out, err = run(str(dataset_dir), "--by", "team", "--summary", "--format", "csv")
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out)).set_index("team")
    assert table["deployments"].to_dict() == {"blue": 1, "red": 2}


def test_names_are_pseudonyms_unless_asked(
    dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "k")
    code, out, _ = run(str(dataset_dir), "--by", "creator", "--summary")
    assert code == 0
    assert "Alice" not in out and "Bob" not in out
    assert dp.pseudonymise("Alice", "k") in out and dp.pseudonymise("Bob", "k") in out
    code, again, _ = run(str(dataset_dir), "--by", "creator", "--summary")
    assert again == out  # the same key: the same pseudonyms
    code, shown, _ = run(str(dataset_dir), "--by", "creator", "--summary", "--show-names")
    assert code == 0 and "Alice" in shown and "Bob" in shown


def test_a_text_column_hashes_each_distinct_name_once_and_agrees_with_one_by_one() -> None:
    import hashlib
    import hmac

    import deliverypulse as dp

    names = pd.Series(["alice", "bob", None, "Alice ", "bob"] * 3, dtype="string")
    hidden = dp.pseudonymise(names, "k")
    # By hand: HMAC-SHA256 of the trimmed, case-folded name under the key, 8 hex digits.
    expected = "person-" + hmac.new(b"k", b"alice", hashlib.sha256).hexdigest()[:8]
    assert hidden.iloc[0] == expected and hidden.iloc[3] == expected
    assert hidden.isna().tolist() == names.isna().tolist()
    one_by_one = [None if pd.isna(n) else dp.pseudonymise(str(n), "k") for n in names]
    assert [None if pd.isna(h) else h for h in hidden] == one_by_one
