"""People are not the unit: no author, approver or creator name reaches the report, the
analysis's JSON or its text unless names are asked for; pseudonyms are stable between runs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import report_data
from click.testing import CliRunner

import deliverypulse as dp
from deliverypulse.analysis import analyze
from deliverypulse.cli import main
from deliverypulse.dataset import Dataset
from deliverypulse.pseudonyms import KEY_ENV

NAMES = ("Xanthippe Qorvath", "Barnabus Wexley-Tromp", "Ottoline Frimbleby", "Zebedee Quillfeather")
PSEUDONYM = re.compile(r"person-[0-9a-f]{8}")


def _name(row: int) -> str:
    return NAMES[row % len(NAMES)]


def _with_people(ds: Dataset) -> Dataset:
    """The organisation, with distinctive authors, approvers and deployment creators."""
    deployments = ds.deployments.assign(
        creator=[_name(row) for row in range(len(ds.deployments))],
        approvers=[
            [_name(row + 1)] if gated else None
            for row, gated in enumerate(ds.deployments["approval_required"].fillna(False))
        ],
    )
    changes = ds.changes.assign(
        author=[_name(row) for row in range(len(ds.changes))],
        approvers=[[_name(row + 2), _name(row + 3)] for row in range(len(ds.changes))],
    )
    commits = ds.commits.assign(author=[_name(row) for row in range(len(ds.commits))])
    return dataclasses.replace(ds, deployments=deployments, changes=changes, commits=commits)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("people")
    _with_people(report_data.organisation(days=120)).save(directory)
    return directory


def _names_in(text: str) -> list[str]:
    folded = text.casefold()
    return [name for name in NAMES if name.casefold() in folded]


def test_no_name_reaches_the_page_unless_asked(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    ds = dp.load(saved)
    assert set(ds.changes["author"]) == set(NAMES)
    # An analysis stratified by the deployments' creators is the surest way to put people on
    # the page: its what-if sentences and strata name them.
    by_creator = analyze(ds, strata="creator")
    named = dp.report(ds, tmp_path / "named.html", analysis=by_creator, show_names=True)
    assert _names_in(named.read_text(encoding="utf-8")) == list(NAMES)

    pages = [
        dp.report(dp.load(saved), tmp_path / f"page{run}.html", analysis=by_creator).read_text(
            encoding="utf-8"
        )
        for run in (1, 2)
    ]
    for page in pages:
        assert _names_in(page) == []
    shown = [set(PSEUDONYM.findall(page)) for page in pages]
    assert shown[0] and shown[0] == shown[1]  # stable between two renders
    key = dp.pseudonym_key(saved)  # the dataset's own key, made on first use
    assert shown[0] <= set(dp.pseudonymise(list(NAMES), key))
    # The report made without an analysis shows no name either.
    plain = dp.report(ds, tmp_path / "plain.html").read_text(encoding="utf-8")
    assert _names_in(plain) == []


def test_the_report_command_hides_names(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "a shared key")
    runner = CliRunner()
    hidden = runner.invoke(main, ["report", str(saved), "-o", str(tmp_path / "r.html")])
    assert hidden.exit_code == 0, hidden.output
    assert _names_in((tmp_path / "r.html").read_text(encoding="utf-8")) == []
    shown = runner.invoke(
        main, ["report", str(saved), "-o", str(tmp_path / "n.html"), "--show-names"]
    )
    assert shown.exit_code == 0, shown.output


@pytest.mark.parametrize("output_format", ["json", "text"])
def test_analyze_hides_names_unless_asked(
    saved: Path, monkeypatch: pytest.MonkeyPatch, output_format: str
) -> None:
    monkeypatch.setenv(KEY_ENV, "a shared key")
    runner = CliRunner()
    command = ["analyze", str(saved), "--strata", "creator", "--format", output_format]
    hidden = runner.invoke(main, command)
    assert hidden.exit_code == 0, hidden.output
    assert _names_in(hidden.output) == []
    pseudonyms = set(PSEUDONYM.findall(hidden.output))
    assert pseudonyms and pseudonyms <= set(dp.pseudonymise(list(NAMES), "a shared key"))
    again = runner.invoke(main, command)
    assert set(PSEUDONYM.findall(again.output)) == pseudonyms
    if output_format == "json":
        strata = json.loads(hidden.output)["gates"]["strata"]
        assert strata and {row["stratum"] for row in strata} <= pseudonyms
    shown = runner.invoke(main, [*command, "--show-names"])
    assert shown.exit_code == 0, shown.output
    assert _names_in(shown.output) == list(NAMES)
