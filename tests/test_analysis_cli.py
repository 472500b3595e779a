"""deliverypulse analyze: text and JSON on a small saved dataset, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_analysis import build, interleave, specs

from deliverypulse.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = interleave(
        specs("o/api", True, 20, 8)
        + specs("o/api", False, 20, 2, changes=3)
        + specs("o/web", True, 20, 8)
        + specs("o/web", False, 20, 2, changes=3)
    )
    root = tmp_path_factory.mktemp("data") / "deliverypulse-data"
    build(rows).save(root)
    return root


def test_text_output(saved: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", str(saved)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("80 production deployments, 2024-01-01 to 2024-02-09")
    assert "Verdict" in out
    assert "Gated deployments failed more often than ungated ones within the same repos" in out
    assert "Do gated deployments fail more often?" in out
    assert "Do bigger batches fail more often?" in out
    # The compact group table: 40 gated with 16 failures (40 %), 40 ungated with 4 (10 %).
    detail = out[out.index("Do gated deployments fail more often?") :]
    gated_row = next(line for line in detail.splitlines() if line.strip().startswith("gated "))
    assert gated_row.split()[:4] == ["gated", "40", "16", "40%"]
    assert "Mantel-Haenszel (stratified by repo)" in out
    # Issue 11: plain words first (the within-repo headline), the technical detail after it;
    # the gate block lists each repo's counts.
    assert out.index("In the 2 repos that deploy both ways, 16 of 40 gated") < out.index(
        "Technical detail"
    )
    repo_row = next(line for line in out.splitlines() if line.strip().startswith("* o/api"))
    assert repo_row.split()[1:] == ["o/api", "20", "8", "20", "2"]
    assert "too short" in out  # 40 days


def test_json_output_and_options(saved: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["analyze", str(saved), "--format", "json", "--bins", "1,3", "--min-deployments", "100"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["enough_data"] is False
    assert "not enough data" in data["verdict"][0]
    assert data["parameters"]["batch_bins"] == [1, 3]
    assert [g["group"] for g in data["batch_size"]["groups"]] == ["1-2", "3+"]
    assert [g["deployments"] for g in data["batch_size"]["groups"]] == [40, 40]
    gates = {g["group"]: g for g in data["gates"]["groups"]}
    assert (gates["gated"]["failures"], gates["ungated"]["failures"]) == (16, 4)
    assert len(data["deployments"]) == 80


def test_errors(tmp_path: Path, saved: Path) -> None:
    missing = CliRunner().invoke(main, ["analyze", str(tmp_path / "nothing")])
    assert missing.exit_code == 1
    assert "no dataset at" in missing.output
    bad_bins = CliRunner().invoke(main, ["analyze", str(saved), "--bins", "4,2"])
    assert bad_bins.exit_code == 2
    assert "increasing" in bad_bins.output
    words = CliRunner().invoke(main, ["analyze", str(saved), "--bins", "a,b"])
    assert words.exit_code == 2
    bad_since = CliRunner().invoke(main, ["analyze", str(saved), "--since", "yesterdayish"])
    assert bad_since.exit_code == 2
