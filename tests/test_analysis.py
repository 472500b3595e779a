"""analyze: constructed datasets where the answer is known, checked against an independent
computation (the 2x2 tables by hand, scipy/statsmodels called directly, Wilson by formula)."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.stats.contingency import odds_ratio
from statsmodels.stats.contingency_tables import StratifiedTable

import deliverypulse as dp
from deliverypulse.analysis import AnalysisError, analyze
from deliverypulse.analysis.exact import exact_conditional
from deliverypulse.dataset import Dataset
from deliverypulse.dora import summary

START = pd.Timestamp("2024-01-01T00:00Z")
Z = stats.norm.ppf(0.975)
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Spec:
    """What one production deployment is: its repo, gate, outcome and batch size."""

    repo: str
    gated: bool | None
    failed: bool
    changes: int = 1
    lead_h: float = 5.5  # first commit -> deployed
    broken: bool = False  # the attempt itself failed (status failure) and shipped nothing


def specs(
    repo: str, gated: bool | None, deployments: int, failures: int, changes: int = 1
) -> list[Spec]:
    return [Spec(repo, gated, i < failures, changes) for i in range(deployments)]


def interleave(rows: list[Spec]) -> list[Spec]:
    """Spread each repo's kinds of deployment over time (order by a fixed shuffle)."""
    order = np.random.default_rng(7).permutation(len(rows))
    return [rows[i] for i in order]


def build(rows: list[Spec], *, spacing: pd.Timedelta = DAY) -> Dataset:
    """A dataset whose production deployments are ``rows`` (in time order per repo).

    Each deployment ships ``changes`` squash-merged changes (one commit each, chained), is
    created at its slot, finishes 6 h later; a gated one waits 3 h for approval; a failed one
    gets an incident opened 1 h after it finished and resolved 2 h later.
    """
    deployments: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    commits: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    heads: dict[str, str | None] = {}
    counters: dict[str, int] = {}
    for spec in rows:
        index = counters.get(spec.repo, 0)
        counters[spec.repo] = index + 1
        slot = START + index * spacing
        for j in range(spec.changes):
            sha = f"{spec.repo}-{index}-{j}"
            at = slot + pd.Timedelta(hours=1, minutes=j)
            parent = heads.get(spec.repo)
            commits.append(
                {
                    "repo": spec.repo,
                    "sha": sha,
                    "parents": [parent] if parent else [],
                    "committed_at": at,
                }
            )
            changes.append(
                {
                    "repo": spec.repo,
                    "change_id": f"PR-{sha}",
                    "created_at": at,
                    "first_commit_at": slot + pd.Timedelta(hours=6 - spec.lead_h),
                    "merged_at": at,
                    "merge_sha": sha,
                    "state": "merged",
                    "additions": 10,
                    "deletions": 5,
                    "commit_count": 2,
                    "author": "ann",
                }
            )
            heads[spec.repo] = sha
        finished = slot + pd.Timedelta(hours=6)
        gate: dict[str, Any] = {"approval_required": spec.gated}
        if spec.gated:
            gate |= {
                "approval_requested_at": slot + pd.Timedelta(hours=2),
                "approved_at": slot + pd.Timedelta(hours=5),
            }
        deployments.append(
            {
                "repo": spec.repo,
                "deployment_id": f"{spec.repo}#{index}",
                "environment": "production",
                "is_production": True,
                "sha": heads[spec.repo],
                "status": "failure" if spec.broken else "success",
                "created_at": slot,
                "finished_at": finished,
                **gate,
            }
        )
        if spec.failed and not spec.broken:
            incidents.append(
                {
                    "repo": spec.repo,
                    "incident_id": f"inc-{spec.repo}-{index}",
                    "created_at": finished + pd.Timedelta(hours=1),
                    "resolved_at": finished + pd.Timedelta(hours=3),
                }
            )
    return Dataset.from_frames(
        deployments=deployments, changes=changes, commits=commits, incidents=incidents
    )


def table_of(rows: list[Spec], repo: str | None = None) -> np.ndarray:
    """The 2x2 table [[gated failed, gated ok], [ungated failed, ungated ok]] by hand."""
    chosen = [s for s in rows if s.gated is not None and (repo is None or s.repo == repo)]
    return np.array(
        [
            [
                sum(s.gated and s.failed for s in chosen),
                sum(s.gated and not s.failed for s in chosen),
            ],
            [
                sum(not s.gated and s.failed for s in chosen),
                sum(not s.gated and not s.failed for s in chosen),
            ],
        ]
    )


def wilson_formula(failures: int, n: int) -> tuple[float, float]:
    p = failures / n
    centre = p + Z * Z / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - spread) / (1 + Z * Z / n), (centre + spread) / (1 + Z * Z / n)


def check_gate_numbers(result: dp.Analysis, rows: list[Spec], repos: list[str]) -> None:
    """Every number of the gate finding against scipy/statsmodels on hand-built tables."""
    crude_table = table_of(rows)
    groups = result.gates.groups.set_index("group")
    for name, row in (("gated", 0), ("ungated", 1)):
        failures, n = int(crude_table[row, 0]), int(crude_table[row].sum())
        assert groups.loc[name, "deployments"] == n
        assert groups.loc[name, "failures"] == failures
        assert groups.loc[name, "change_failure_rate"] == pytest.approx(failures / n)
        low, high = wilson_formula(failures, n)
        assert groups.loc[name, "cfr_low"] == pytest.approx(low, rel=1e-9)
        assert groups.loc[name, "cfr_high"] == pytest.approx(high, rel=1e-9)
    by_test = {e.test: e for e in result.gates.estimates}
    fisher = by_test["Fisher's exact"]
    assert fisher.p_value == pytest.approx(stats.fisher_exact(crude_table).pvalue)
    conditional = odds_ratio(crude_table, kind="conditional")
    assert fisher.estimate == pytest.approx(conditional.statistic)
    assert fisher.ci_low == pytest.approx(conditional.confidence_interval().low)
    assert fisher.scope == "across repos (crude)"
    # The within-repo estimate leads; its estimate, interval and p-value come from one method.
    within = result.gates.estimates[0]
    assert within.scope == "within repo" == result.gates.scope
    assert (result.gates.test, result.gates.estimate, result.gates.p_value) == (
        within.test,
        within.estimate,
        within.p_value,
    )
    strata = [table_of(rows, repo) for repo in repos]
    if within.test == "Mantel-Haenszel (stratified by repo)":
        mh = StratifiedTable(strata)
        assert within.estimate == pytest.approx(mh.oddsratio_pooled)
        low, high = mh.oddsratio_pooled_confint()
        assert (within.ci_low, within.ci_high) == (pytest.approx(low), pytest.approx(high))
        assert within.p_value == pytest.approx(mh.test_null_odds().pvalue)
    else:
        assert within.test == "exact conditional (stratified by repo)"
        exact = exact_conditional([t.tolist() for t in strata])
        assert within.estimate == pytest.approx(exact.odds_ratio)
        assert within.p_value == pytest.approx(exact.p_value)
        assert (within.ci_low, within.ci_high) == (
            pytest.approx(exact.ci_low),
            pytest.approx(exact.ci_high),
        )


def two_repos(gated: tuple[int, int], ungated: tuple[int, int]) -> list[Spec]:
    """Both repos alike: (deployments, failures) for gated and for ungated."""
    rows: list[Spec] = []
    for repo in ("o/api", "o/web"):
        rows += specs(repo, True, *gated) + specs(repo, False, *ungated)
    return interleave(rows)


@pytest.fixture(autouse=True)
def no_leaking_warnings() -> Any:
    """Library warnings must be caught inside analyze, never reach the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def test_gated_deployments_fail_more() -> None:
    rows = two_repos(gated=(40, 16), ungated=(40, 4))
    result = analyze(build(rows))
    check_gate_numbers(result, rows, ["o/api", "o/web"])
    assert result.enough_data
    assert result.gates.estimate is not None and result.gates.ci_low is not None
    assert result.gates.estimate > 1 and result.gates.ci_low > 1
    assert result.gates.p_value is not None and result.gates.p_value < 0.05
    assert "Gated deployments failed more often" in result.gates.statement
    assert result.gates.test == "Mantel-Haenszel (stratified by repo)"  # no expected cell < 5
    # The headline is the within-repo result in plain words, with countable numbers.
    assert result.verdict[0] == result.headline == result.gates.plain
    assert result.headline.startswith(
        "In the 2 repos that deploy both ways, 32 of 80 gated and 8 of 80 ungated deployments "
        "failed"
    )
    assert "failed more often, by more than chance would explain" in result.headline
    assert "odds ratio" not in result.headline and "Mantel" not in result.headline
    assert result.verdict[1].startswith("Across repos (crude): 32 of 80 gated")
    assert not any("confound" in sentence for sentence in result.verdict)


def test_gated_deployments_fail_less() -> None:
    rows = two_repos(gated=(40, 3), ungated=(40, 15))
    result = analyze(build(rows))
    check_gate_numbers(result, rows, ["o/api", "o/web"])
    assert result.gates.ci_high is not None and result.gates.ci_high < 1
    assert "Gated deployments failed less often" in result.gates.statement


def test_no_difference_between_gated_and_ungated() -> None:
    rows = two_repos(gated=(40, 6), ungated=(40, 6))
    result = analyze(build(rows))
    check_gate_numbers(result, rows, ["o/api", "o/web"])
    assert result.gates.estimate == pytest.approx(1.0)
    assert result.gates.p_value == pytest.approx(1.0)
    assert result.gates.statement.startswith("No difference in failure rate")
    assert result.enough_data


def test_too_little_data() -> None:
    rows = interleave(specs("o/api", True, 4, 2) + specs("o/api", False, 4, 1))
    result = analyze(build(rows))
    assert not result.enough_data
    assert not result.gates.enough_data and not result.batch_size.enough_data
    # The headline is still the within-repo gate result, and it says it cannot tell.
    assert result.verdict[0] == result.gates.plain
    assert "2 of 4 gated and 1 of 4 ungated deployments failed" in result.verdict[0]
    assert "this could be chance: not enough data" in result.verdict[0]
    assert "Only 8 production deployments" in result.verdict[1]
    assert "Only 4 gated and 4 ungated deployments" in result.gates.statement
    assert any("too short" in sentence for sentence in result.verdict)  # 8 days
    # The numbers are still there for whoever wants them.
    check_gate_numbers(result, rows, ["o/api"])


def test_confounding_repo_both_gated_and_risky() -> None:
    rows = interleave(
        specs("o/risky", True, 120, 36)
        + specs("o/risky", False, 30, 9)
        + specs("o/safe", True, 30, 3)
        + specs("o/safe", False, 120, 12)
    )
    result = analyze(build(rows))
    check_gate_numbers(result, rows, ["o/risky", "o/safe"])
    by_test = {e.test: e for e in result.gates.estimates}
    crude = by_test["Fisher's exact"]
    # Crude: 39/150 gated vs 21/150 ungated failed, and Fisher calls it significant ...
    assert crude.estimate is not None and crude.estimate > 1
    assert crude.p_value is not None and crude.p_value < 0.05
    # ... but within each repo the rates are equal: no difference. o/safe expects 3 gated
    # failures (< 5), so the exact conditional test leads (its MLE is 1: S = 39 = E[S]).
    assert result.gates.test == "exact conditional (stratified by repo)"
    assert result.gates.estimate == pytest.approx(1.0)
    assert result.gates.p_value is not None and result.gates.p_value > 0.5
    assert result.gates.statement.startswith("No difference in failure rate")
    assert "within the same repos" in result.gates.statement
    assert any("confounds" in sentence for sentence in result.verdict)


def test_repos_that_never_mix_gated_and_ungated() -> None:
    rows = interleave(specs("o/gated", True, 40, 12) + specs("o/open", False, 40, 4))
    result = analyze(build(rows))
    # No repo deploys both ways: there is no within-repo comparison, and the crude one (the
    # only one left) never leads.
    assert result.gates.estimate is None and result.gates.scope == "within repo"
    assert result.headline.startswith("No repo deploys both with and without a gate")
    assert "not enough data" in result.headline
    crude = result.finding("gates_crude")
    assert crude.test == "Fisher's exact" and crude.scope == "across repos (crude)"
    assert crude.estimate is not None and crude.plain.startswith("Across repos (crude): 12 of 40")
    assert any("come from different repos" in s for s in result.verdict)


def batch_rows() -> list[Spec]:
    """Three repos with different base rates; within each, bigger batches fail more."""
    rows: list[Spec] = []
    failures_by_size = {1: 1, 2: 3, 4: 5, 8: 9, 16: 13}
    for repo, extra in (("o/a", 0), ("o/b", 2), ("o/c", 4)):
        for size, failures in failures_by_size.items():
            rows += specs(repo, size >= 8, 20, min(failures + extra, 19), changes=size)
    return interleave(rows)


def test_bigger_batches_fail_more() -> None:
    rows = batch_rows()
    result = analyze(build(rows))
    finding = result.batch_size
    # Independent fit: failed ~ log2(changes) + repo indicators, straight into statsmodels.
    frame = pd.DataFrame(
        {
            "failed": [s.failed for s in rows],
            "size": [s.changes for s in rows],
            "repo": [s.repo for s in rows],
        }
    )
    design = pd.DataFrame({"const": 1.0, "log2": np.log2(frame["size"])})
    design["b"] = (frame["repo"] == "o/b").astype(float)
    design["c"] = (frame["repo"] == "o/c").astype(float)
    fit = sm.Logit(frame["failed"].astype(float), design).fit(disp=0)
    coefficient = fit.params["log2"]
    low, high = fit.conf_int().loc["log2"]
    assert coefficient > 0 and low > 0
    assert finding.test == "logistic regression (repo as covariate)"
    assert finding.estimate == pytest.approx(math.exp(coefficient), rel=1e-6)
    assert finding.ci_low == pytest.approx(math.exp(low), rel=1e-6)
    assert finding.ci_high == pytest.approx(math.exp(high), rel=1e-6)
    assert finding.p_value == pytest.approx(fit.pvalues["log2"], rel=1e-4)
    assert finding.statement.startswith("Bigger batches failed more often")
    # Groups by the default bins 1, 2-3, 4-7, 8+.
    groups = finding.groups.set_index("group")
    assert list(groups.index) == ["1", "2-3", "4-7", "8+"]
    assert groups["deployments"].tolist() == [60, 60, 60, 120]
    expected_8 = sum(s.failed for s in rows if s.changes >= 8)
    assert groups.loc["8+", "failures"] == expected_8
    low8, high8 = wilson_formula(expected_8, 120)
    assert groups.loc["8+", "cfr_low"] == pytest.approx(low8)
    assert groups.loc["8+", "cfr_high"] == pytest.approx(high8)


def test_deployment_table_batch_sizes_and_agreement_with_metrics() -> None:
    rows = batch_rows()
    ds = build(rows)
    table = analyze(ds).deployments
    assert len(table) == len(rows)
    expected = pd.Series([s.changes for s in rows]).value_counts().sort_index()
    assert table["batch_changes"].value_counts().sort_index().tolist() == expected.tolist()
    assert (table["batch_commits"] == 2 * table["batch_changes"]).all()
    assert (table["batch_lines"] == 15 * table["batch_changes"]).all()
    gated = table["gated"].astype(bool)
    assert (table.loc[gated, "approval_wait_h"] == 3.0).all()
    assert table.loc[~gated, "approval_wait_h"].isna().all()
    assert (table.loc[table["failed"], "recovery_h"] == 2.0).all()
    # Lead time: first commit at slot+30 min, deployed at slot+6 h.
    assert (table["lead_time_h"] == 5.5).all()
    # The analysis and the headline change failure rate count the same failures.
    headline = summary(ds)
    assert int(headline["failed_deployments"].iloc[0]) == int(table["failed"].sum())
    assert int(headline["deployment_attempts"].iloc[0]) == len(table)


def test_lead_time_comparisons_match_scipy() -> None:
    """Gated deployments' changes wait a day longer; lead time grows with batch size."""
    rows: list[Spec] = []
    for repo in ("o/api", "o/web"):
        for i in range(30):
            rows.append(Spec(repo, True, i < 6, changes=1 + i % 4, lead_h=24 + i + (i % 4) * 3))
            rows.append(Spec(repo, False, i < 6, changes=1 + i % 4, lead_h=2 + i / 2 + (i % 4) * 3))
    rows = interleave(rows)
    result = analyze(build(rows))
    gated = np.array([s.lead_h for s in rows if s.gated])
    ungated = np.array([s.lead_h for s in rows if not s.gated])
    lead = result.finding("gate_lead_time")
    assert lead.estimate == pytest.approx(np.median(gated) - np.median(ungated))
    assert lead.p_value == pytest.approx(stats.mannwhitneyu(gated, ungated).pvalue)
    assert lead.ci_low is not None and lead.ci_low > 0
    assert lead.statement.startswith("Changes shipped by gated deployments took longer")
    assert lead.plain in result.verdict and lead.scope == "across repos (crude)"
    by_batch = result.finding("batch_lead_time")
    expected = stats.spearmanr([s.changes for s in rows], [s.lead_h for s in rows])
    assert by_batch.estimate == pytest.approx(expected.statistic)
    assert by_batch.p_value == pytest.approx(expected.pvalue)
    assert by_batch.ci_low is not None and by_batch.ci_low < by_batch.estimate < by_batch.ci_high
    assert result.gates.groups["median_lead_time_h"].tolist() == [
        pytest.approx(np.median(gated)),
        pytest.approx(np.median(ungated)),
    ]
    wait = result.finding("approval_wait")
    assert wait.estimate == pytest.approx(3.0)


def test_failed_attempts_keep_the_batch_they_tried_to_put_live() -> None:
    """Issue 11 item 2 (this test pinned the old rule, "failed attempts shipped nothing", and
    was changed on purpose): every third gated attempt fails outright trying to put 2 new
    changes live; it keeps that batch, and the next deployment ships them with its own 2."""
    rows: list[Spec] = []
    for repo in ("o/api", "o/web"):
        for i in range(30):
            rows.append(Spec(repo, False, i % 10 == 5, changes=2))
            broken = i % 3 == 1
            rows.append(Spec(repo, True, broken or i == 6, changes=2, broken=broken))
    ds = build(rows)
    result = analyze(ds)
    check_gate_numbers(result, rows, ["o/api", "o/web"])
    table = result.deployments
    assert table["batch_changes"].notna().all()
    broken = table["deployment_id"].isin(
        [f"{repo}#{2 * i + 1}" for repo in ("o/api", "o/web") for i in range(30) if i % 3 == 1]
    )
    assert broken.sum() == 20
    assert (table.loc[broken, "batch_changes"] == 2).all()
    assert (table.loc[broken, "batch_commits"] == 4).all()  # commit_count 2 per change
    assert (table.loc[broken, "batch_lines"] == 30).all()  # 10 + 5 lines per change
    assert table.loc[broken, "lead_time_h"].isna().all()  # they shipped nothing
    # The deployment after a failed attempt ships its 2 changes and its own 2.
    after = table["deployment_id"].isin(
        [f"{repo}#{2 * i + 2}" for repo in ("o/api", "o/web") for i in range(30) if i % 3 == 1]
    )
    assert (table.loc[after, "batch_changes"] == 4).all()
    groups = result.batch_size.groups.set_index("group")
    assert groups.loc["2-3", "deployments"] == 100 and groups.loc["4-7", "deployments"] == 20
    assert groups.loc["2-3", "failures"] == int(table.loc[~after, "failed"].sum())
    assert not any("cannot be read" in s for s in result.verdict)
    # A broken attempt recovers when the next deployment succeeds, one day later.
    assert (table.loc[broken, "recovery_h"] == 24.0).all()
    headline = summary(ds)
    assert int(headline["failed_deployments"].iloc[0]) == int(table["failed"].sum()) == 28


def test_repo_confounds_batch_size() -> None:
    """Big batches live in the risky repo; within each repo batch size changes nothing."""
    rows = interleave(
        specs("o/risky", None, 60, 18, changes=8)
        + specs("o/risky", None, 20, 6, changes=1)
        + specs("o/safe", None, 20, 1, changes=8)
        + specs("o/safe", None, 60, 3, changes=1)
    )
    result = analyze(build(rows))
    by_test = {e.test: e for e in result.batch_size.estimates}
    crude = by_test["logistic regression (no covariate)"]
    fit = sm.Logit(
        np.array([s.failed for s in rows], dtype=float),
        pd.DataFrame({"const": 1.0, "log2": np.log2([s.changes for s in rows])}),
    ).fit(disp=0)
    assert crude.estimate == pytest.approx(math.exp(fit.params["log2"]))
    assert crude.ci_low is not None and crude.ci_low > 1
    assert result.batch_size.estimate == pytest.approx(1.0, abs=1e-6)
    assert result.batch_size.statement.startswith("No link between batch size and failure")
    assert any("Repo confounds the batch-size comparison" in s for s in result.verdict)


def test_bins_are_a_parameter() -> None:
    result = analyze(build(batch_rows()), batch_bins=(1, 3, 10))
    assert result.batch_size.groups["group"].tolist() == ["1-2", "3-9", "10+"]
    assert result.batch_size.groups["deployments"].tolist() == [120, 120, 60]
    with pytest.raises(AnalysisError, match="increasing"):
        analyze(build(batch_rows()), batch_bins=(4, 2))
    with pytest.raises(AnalysisError, match="starting at 1"):
        analyze(build(batch_rows()), batch_bins=(0, 2))


def test_perfect_separation_in_the_batch_model_is_reported_not_raised() -> None:
    rows = interleave(specs("o/a", False, 30, 0, changes=1) + specs("o/a", True, 30, 30, changes=8))
    result = analyze(build(rows))
    assert result.batch_size.estimate is None
    assert "cannot" in result.batch_size.statement
    assert (
        "perfect"
        in {e.test: e for e in result.batch_size.estimates}[
            "logistic regression (repo as covariate)"
        ].note
    )


def test_zero_failures() -> None:
    rows = two_repos(gated=(30, 0), ungated=(30, 0))
    result = analyze(build(rows))
    assert result.batch_size.estimate is None
    assert any("No deployment failed" in sentence for sentence in result.verdict)
    assert result.gates.groups["change_failure_rate"].tolist() == [0.0, 0.0]
    assert result.gates.groups["cfr_low"].tolist() == [0.0, 0.0]


def test_all_gated_and_unknown_gates() -> None:
    result = analyze(build(interleave(specs("o/a", True, 40, 10))))
    assert "Every deployment was gated" in result.gates.statement
    assert result.gates.p_value is None
    unknown = analyze(build(interleave(specs("o/a", None, 40, 10))))
    assert "approval_required is unknown" in unknown.gates.statement
    assert unknown.deployments["gated"].isna().all()


def test_empty_dataset() -> None:
    result = analyze(Dataset())
    assert not result.enough_data
    assert result.window == (None, None)
    assert result.deployments.empty
    assert "not enough data" in result.headline
    assert "Only 0 production deployments" in result.verdict[1]
    assert result.what_if.empty
    json.dumps(result.to_dict())


def test_one_repo_uses_the_exact_test_and_to_dict_is_json() -> None:
    """With one repo the within-repo comparison is the exact conditional test of one table:
    Fisher's exact test with the conditional odds ratio (scipy, called directly)."""
    rows = interleave(specs("o/a", True, 40, 16) + specs("o/a", False, 40, 4))
    result = analyze(build(rows))
    assert result.gates.test == "exact conditional (stratified by repo)"
    check_gate_numbers(result, rows, ["o/a"])
    table = table_of(rows)
    assert result.gates.p_value == pytest.approx(stats.fisher_exact(table).pvalue)
    assert result.gates.estimate == pytest.approx(
        odds_ratio(table, kind="conditional").statistic, rel=1e-6
    )
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["gates"]["test"] == "exact conditional (stratified by repo)"
    assert data["gates"]["scope"] == "within repo"
    assert [e["scope"] for e in data["gates"]["estimates"]] == [
        "within repo",
        "across repos (crude)",
    ]
    assert data["headline"] == result.headline == data["gates"]["plain"]
    assert data["what_if"][0]["group"] == "o/a"
    assert data["gates"]["groups"][0]["group"] == "gated"
    assert len(data["deployments"]) == 80
    assert data["verdict"] == list(result.verdict)
    assert {f["name"] for f in data["findings"]} >= {"gates", "batch_size", "gate_lead_time"}


def test_public_api() -> None:
    assert dp.analyze is analyze
    assert {"analyze", "Analysis", "Finding"} <= set(dp.__all__)


def test_precomputed_links_and_since() -> None:
    rows = two_repos(gated=(20, 6), ungated=(20, 2))
    ds = build(rows)
    plain = analyze(ds)
    given = analyze(ds, links=dp.link(ds))
    pd.testing.assert_frame_equal(plain.deployments, given.deployments)
    since = START + pd.Timedelta(days=20)
    later = analyze(ds, since=since)
    assert len(later.deployments) == 2 * 20  # days 20..39 of each repo
    assert (later.deployments["finished_at"] >= since).all()
    assert later.window[0] is not None and later.window[0] >= since
    assert later.parameters["since"] == str(since)
