"""Issue 11: the within-repo result leads, from one method; the crude one follows, labelled; and
``what_if`` per repo. Checked against R's documented example, hand-built tables and hand
computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats
from test_analysis import Spec, build, interleave, specs, wilson_formula
from test_analysis_exact import RABBITS

import deliverypulse as dp
from deliverypulse.cli import main


def rabbit_rows() -> list[Spec]:
    """R's penicillin and rabbits: one repo per penicillin level, one deployment per rabbit;
    gated = the "no delay" row, failed = cured."""
    rows: list[Spec] = []
    for level, ((a, b), (c, d)) in enumerate(RABBITS):
        repo = f"lab/penicillin-{level}"
        rows += [Spec(repo, True, True)] * a + [Spec(repo, True, False)] * b
        rows += [Spec(repo, False, True)] * c + [Spec(repo, False, False)] * d
    return interleave(rows)


def test_rabbits_through_analyze_lead_with_the_exact_conditional_result() -> None:
    result = dp.analyze(build(rabbit_rows()))
    lead = result.gates.estimates[0]
    # mantelhaen.test(Rabbits, exact = TRUE): p-value = 0.03994, common odds ratio 10.36102,
    # 95 percent CI 1.077401 529.837399 (R's documented result).
    assert lead.test == "exact conditional (stratified by repo)"
    assert lead.scope == "within repo"
    assert lead.p_value == pytest.approx(0.03994, abs=5e-6)
    assert lead.estimate == pytest.approx(10.36102, abs=5e-5)
    assert lead.ci_low == pytest.approx(1.077401, rel=1e-3)
    assert lead.ci_high is not None and 1 / lead.ci_high == pytest.approx(
        1 / 529.837399, abs=1.2e-4
    )
    # The finding's estimate, interval, test and p-value are all that one method's.
    gates = result.gates
    assert (gates.estimate, gates.ci_low, gates.ci_high, gates.test, gates.p_value) == (
        lead.estimate,
        lead.ci_low,
        lead.ci_high,
        lead.test,
        lead.p_value,
    )
    assert "10.36" in gates.statement and "p = 0.040" in gates.statement
    assert "Fisher" not in gates.statement and "Mantel" not in gates.statement
    # The headline: countable numbers, all five repos deploy both ways.
    a = sum(t[0][0] for t in RABBITS)
    gated = sum(t[0][0] + t[0][1] for t in RABBITS)
    c = sum(t[1][0] for t in RABBITS)
    ungated = sum(t[1][0] + t[1][1] for t in RABBITS)
    assert (a, gated, c, ungated) == (16, 26, 13, 28)
    assert result.headline.startswith(
        "In the 5 repos that deploy both ways, 16 of 26 gated and 13 of 28 ungated deployments "
        "failed"
    )
    assert "failed more often, by more than chance would explain" in result.headline
    # The crude comparison is there, second and labelled, with its own method throughout.
    crude = result.finding("gates_crude")
    assert crude.scope == "across repos (crude)" and crude.test == "Fisher's exact"
    table = [[16, 10], [13, 15]]
    assert crude.p_value == pytest.approx(stats.fisher_exact(table).pvalue)
    assert result.verdict[1] == crude.plain and crude.plain.startswith("Across repos (crude)")


def confounded(big: bool) -> list[Spec]:
    """Within each repo gated and ungated deployments fail equally often (30 % in the legacy
    repo, 5 or 10 % in the service); the legacy repo gates nearly everything."""
    if big:  # every expected cell >= 5: Mantel-Haenszel
        return interleave(
            specs("o/legacy", True, 200, 60)
            + specs("o/legacy", False, 50, 15)
            + specs("o/svc", True, 50, 5)
            + specs("o/svc", False, 200, 20)
        )
    return interleave(  # the service expects 1 gated failure: exact conditional
        specs("o/legacy", True, 100, 30)
        + specs("o/legacy", False, 20, 6)
        + specs("o/svc", True, 20, 1)
        + specs("o/svc", False, 100, 5)
    )


@pytest.mark.parametrize(
    ("big", "method"),
    [
        (True, "Mantel-Haenszel (stratified by repo)"),
        (False, "exact conditional (stratified by repo)"),
    ],
)
def test_a_crude_difference_that_is_not_there_within_repos_is_not_claimed(
    big: bool, method: str
) -> None:
    rows = confounded(big)
    result = dp.analyze(build(rows))
    gated = [s for s in rows if s.gated]
    ungated = [s for s in rows if not s.gated]
    crude_table = [
        [sum(s.failed for s in gated), sum(not s.failed for s in gated)],
        [sum(s.failed for s in ungated), sum(not s.failed for s in ungated)],
    ]
    # Across repos the difference is big and "significant" ...
    crude = result.finding("gates_crude")
    assert crude.p_value == pytest.approx(stats.fisher_exact(crude_table).pvalue)
    assert crude.p_value is not None and crude.p_value < 0.01
    assert crude.estimate is not None and crude.estimate > 2
    # ... within repos there is none, and the headline says so.
    assert result.gates.test == method
    assert result.gates.estimate == pytest.approx(1.0)
    assert result.gates.p_value is not None and result.gates.p_value > 0.9
    g, n1, u, n0 = crude_table[0][0], len(gated), crude_table[1][0], len(ungated)
    assert result.headline.startswith(
        f"In the 2 repos that deploy both ways, {g} of {n1} gated and {u} of {n0} ungated "
        "deployments failed"
    )
    # Expected gated failures if, within each repo, the gate made no difference: by hand.
    expected = sum(
        sum(s.gated for s in rows if s.repo == repo)
        * sum(s.failed for s in rows if s.repo == repo)
        / sum(1 for s in rows if s.repo == repo)
        for repo in ("o/legacy", "o/svc")
    )
    assert expected == pytest.approx(g)
    assert f"({expected:.1f} gated failures would be expected" in result.headline
    assert "the data show no difference" in result.headline
    assert "more often" not in result.headline and "less often" not in result.headline
    assert result.verdict.index(crude.plain) == 1
    assert any("confounds" in sentence for sentence in result.verdict)
    strata = result.gates.strata.set_index("stratum")
    assert strata.loc["o/legacy", "gated_deployments"] == (200 if big else 100)
    assert strata["both_ways"].all()


def newcombe(f1: int, n1: int, f0: int, n0: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p0, from Wilson intervals by formula."""
    p1, p0 = f1 / n1, f0 / n0
    l1, u1 = wilson_formula(f1, n1)
    l0, u0 = wilson_formula(f0, n0)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt(
        (u1 - p1) ** 2 + (p0 - l0) ** 2
    )


def what_if_rows() -> list[Spec]:
    rows: list[Spec] = []
    for i in range(20):
        rows.append(Spec("acme/payments", True, i < 4, lead_h=8.0 + i))
        rows.append(Spec("acme/payments", False, i < 1, lead_h=4.0 + i / 2))
    rows += [Spec("acme/ledger", True, i < 2, lead_h=20.0) for i in range(12)]
    rows += [Spec("acme/web", False, i < 2, lead_h=3.0) for i in range(12)]
    return rows


def test_what_if_rows_by_hand() -> None:
    rows = what_if_rows()
    result = dp.analyze(build(rows))
    what_if = result.what_if.set_index("group")
    assert list(what_if.index) == ["acme/ledger", "acme/payments"]  # acme/web has no gate
    row = what_if.loc["acme/payments"]
    assert row["gated_deployments"] == 20
    # build(): a gated deployment waits 3 h (requested at +2 h, approved at +5 h).
    assert row["approval_wait_median_h"] == pytest.approx(3.0)
    assert row["approval_wait_total_h"] == pytest.approx(60.0)
    # By hand: every change's lead time, less its deployment's wait; medians compared.
    payments = [s for s in rows if s.repo == "acme/payments"]
    lead = np.array([s.lead_h for s in payments])
    without = np.array([s.lead_h - (3.0 if s.gated else 0.0) for s in payments])
    saved = float(np.median(lead) - np.median(without))
    assert row["lead_time_saved_median_h"] == pytest.approx(saved)
    assert row["median_lead_time_h"] == pytest.approx(float(np.median(lead)))
    assert 0 <= row["lead_time_saved_low_h"] <= saved <= row["lead_time_saved_high_h"] <= 3.0
    # Failures: 4 of 20 gated, 1 of 20 ungated; Newcombe's interval by formula.
    assert (row["gated_failures"], row["ungated_failures"], row["ungated_deployments"]) == (
        4,
        1,
        20,
    )
    assert row["failure_difference"] == pytest.approx(4 / 20 - 1 / 20)
    low, high = newcombe(4, 20, 1, 20)
    assert row["failure_difference_low"] == pytest.approx(low, rel=1e-6)
    assert row["failure_difference_high"] == pytest.approx(high, rel=1e-6)
    assert row["failure_note"] == ""
    hours = f"{saved:.1f} h" if saved < 10 else f"{saved:,.0f} h"
    assert row["plain"].startswith(
        f"Dropping the gate on acme/payments would have saved a median {hours} per change"
    )
    assert "the data cannot show that the gate prevented any failure" in row["plain"]
    assert "4 of 20 gated and 1 of 20 ungated deployments failed" in row["plain"]
    points = f"from {round(-high * 100):+d} to {round(-low * 100):+d} percentage points"
    assert points in row["plain"]
    # A repo that always gates: nothing to compare failures with.
    ledger = what_if.loc["acme/ledger"]
    assert ledger["failure_note"] == "no ungated deployments to compare with"
    assert pd.isna(ledger["failure_difference"])
    # Every change of acme/ledger waited 3 h: the median drops by exactly 3 h.
    assert ledger["lead_time_saved_median_h"] == pytest.approx(3.0)
    assert "no ungated deployments to compare with" in ledger["plain"]


def test_analyze_prints_plain_words_first_and_json_keeps_every_estimate(tmp_path: Path) -> None:
    root = tmp_path / "data"
    build(what_if_rows()).save(root)
    result = dp.analyze(dp.load(root))
    out = CliRunner().invoke(main, ["analyze", str(root)])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    order = [
        result.headline,
        result.finding("gates_crude").plain,
        result.batch_size.plain,
        *result.what_if["plain"],
        "Technical detail",
        result.gates.statement,
    ]
    where = [text.index(" ".join(sentence.split())) for sentence in order]
    assert where == sorted(where)
    assert "odds ratio" not in text[: text.index("Technical detail")]
    data = json.loads(CliRunner().invoke(main, ["analyze", str(root), "--format", "json"]).output)
    assert data["headline"] == result.headline
    assert [row["group"] for row in data["what_if"]] == ["acme/ledger", "acme/payments"]
    assert {"lead_time_saved_low_h", "failure_difference_high", "plain"} <= set(data["what_if"][1])
    scopes = {f["name"]: f["scope"] for f in data["findings"]}
    assert scopes["gates"] == "within repo" and scopes["gates_crude"] == "across repos (crude)"
    assert scopes["batch_size"] == "within repo"
    assert scopes["batch_size_crude"] == "across repos (crude)"
    assert all(len(f["estimates"]) >= 1 for f in data["findings"])
    assert data["gates"]["strata"][0]["stratum"] == "acme/ledger"


def test_strata_can_be_a_team_column() -> None:
    """``strata`` names what is held fixed: a team column gives the same within comparison as
    the repo when each team owns one repo, worded by team; an unknown column is a clear error."""
    ds = build(confounded(False))
    deployments = ds.deployments.assign(
        team=ds.deployments["repo"].map({"o/legacy": "core", "o/svc": "payments"})
    )
    teams = dp.Dataset.from_frames(
        deployments=deployments, changes=ds.changes, commits=ds.commits, incidents=ds.incidents
    )
    by_repo, by_team = dp.analyze(ds), dp.analyze(teams, strata="team")
    assert by_team.gates.test == "exact conditional (stratified by team)"
    assert by_team.gates.p_value == pytest.approx(by_repo.gates.p_value)
    assert by_team.headline.startswith("In the 2 teams that deploy both ways")
    assert by_team.gates.scope == "within team"
    assert list(by_team.what_if["group"]) == ["core", "payments"]
    with pytest.raises(dp.AnalysisError, match="strata"):
        dp.analyze(ds, strata="squad")
