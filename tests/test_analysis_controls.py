"""Issue 16: which controls catch problems, on made-up data where the answer is known.

Review prevents failures within repos and the change board does not; a control that differs
only between repos cannot be judged; the per-deployment controls (review share, tests, who
started it) follow their definitions; the stratified model agrees with R's documented exact
conditional estimate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_analysis_exact import RABBITS

import deliverypulse as dp
from deliverypulse.analysis import stats as st
from deliverypulse.analysis.controls import EXACT_ADJUSTED
from deliverypulse.analysis.exact import exact_conditional
from deliverypulse.analysis.model import (
    CONTROL_DEPLOYMENT_COLUMNS,
    CONTROLS,
    CONTROLS_COLUMNS,
    DEPLOYMENT_COLUMNS,
)
from deliverypulse.dataset import Dataset

START = pd.Timestamp("2024-01-01T00:00Z")
HOUR = pd.Timedelta(hours=1)
#: Before the first deployment, so each repo's first deployment ships its change too.
SINCE = "2023-12-01"


def sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


@dataclass(frozen=True)
class Spec:
    """One production deployment shipping one change."""

    repo: str
    failed: bool
    reviewed: bool = True
    cab: bool = False  # a normal (CAB-approved) change request names it
    started_by: str | None = None


def crossed(repo: str, reviewed: bool, cab: bool, n: int, failures: int) -> list[Spec]:
    return [Spec(repo, i < failures, reviewed, cab) for i in range(n)]


def build(rows: list[Spec]) -> Dataset:
    """One deployment a day per repo (in the order given), each shipping one squash-merged
    change; a failed one gets an incident an hour after it finished."""
    deployments: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    commits: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    order = np.random.default_rng(3).permutation(len(rows))
    counters: dict[str, int] = {}
    heads: dict[str, str] = {}
    for position in order:
        spec = rows[position]
        index = counters.get(spec.repo, 0)
        counters[spec.repo] = index + 1
        slot = START + pd.Timedelta(days=index)
        commit = sha(spec.repo, index)
        commits.append(
            {
                "repo": spec.repo,
                "sha": commit,
                "parents": [heads[spec.repo]] if spec.repo in heads else [],
                "committed_at": slot + HOUR,
            }
        )
        heads[spec.repo] = commit
        changes.append(
            {
                "repo": spec.repo,
                "change_id": f"{spec.repo}-{index}",
                "author": "ann",
                "created_at": slot,
                "first_commit_at": slot,
                "first_review_at": slot + 0.5 * HOUR if spec.reviewed else None,
                "merged_at": slot + HOUR,
                "merge_sha": commit,
                "state": "merged",
            }
        )
        deployments.append(
            {
                "repo": spec.repo,
                "deployment_id": f"{spec.repo}#{index}",
                "environment": "production",
                "is_production": True,
                "sha": commit,
                "status": "success",
                "created_at": slot + 3 * HOUR,
                "finished_at": slot + 4 * HOUR,
                "started_by": spec.started_by,
            }
        )
        if spec.cab:
            requests.append(
                {
                    "repo": spec.repo,
                    "change_request_id": f"CHG{len(requests):07d}",
                    "type": "normal",
                    "state": "closed",
                    "approval": "approved",
                    "references": [f"{spec.repo}@{commit}"],
                }
            )
        if spec.failed:
            incidents.append(
                {
                    "repo": spec.repo,
                    "incident_id": f"inc-{spec.repo}-{index}",
                    "created_at": slot + 5 * HOUR,
                    "resolved_at": slot + 6 * HOUR,
                }
            )
    return Dataset.from_frames(
        deployments=deployments,
        changes=changes,
        commits=commits,
        incidents=incidents,
        change_requests=requests or None,
    )


def review_works() -> list[Spec]:
    """Three repos; in each, half the deployments reviewed (1 in 15 fail) and half not (6 in
    15 fail), and the CAB approves half of each kind with the same failure count: within
    repos review goes with fewer failures and the CAB with none."""
    rows: list[Spec] = []
    for repo in ("o/api", "o/web", "o/jobs"):
        for cab in (True, False):
            rows += crossed(repo, True, cab, 15, 1)
            rows += crossed(repo, False, cab, 15, 6)
    return rows


def counts(rows: list[Spec], having: Any) -> tuple[int, int, int, int]:
    """(with, with failed, without, without failed) by hand."""
    on = [s for s in rows if having(s)]
    off = [s for s in rows if not having(s)]
    return len(on), sum(s.failed for s in on), len(off), sum(s.failed for s in off)


def test_review_prevents_failures_within_repos_and_the_cab_does_not() -> None:
    rows = review_works()
    analysis = dp.analyze(build(rows), since=SINCE)
    controls = analysis.controls
    assert tuple(controls.columns) == CONTROLS_COLUMNS
    assert controls["control"].tolist() == list(CONTROLS)
    table = controls.set_index("control")

    review = table.loc["fully_reviewed"]
    assert (
        (
            review["with_deployments"],
            review["with_failures"],
            review["without_deployments"],
            review["without_failures"],
        )
        == counts(rows, lambda s: s.reviewed)
        == (90, 6, 90, 36)
    )
    assert review["with_rate"] == pytest.approx(6 / 90)
    assert review["strata_both_ways"] == 3 and review["unknown_deployments"] == 0
    assert review["verdict"] == "fewer failures"
    # 42 failures (>= 10 per control in the model of review and CAB): the model is fitted.
    assert review["adjusted_test"] == st.CONDITIONAL_LOGIT
    assert review["adjusted_high"] < 1 and review["within_high"] < 1
    assert review["plain"].startswith(
        "Peer review of every change: 6 of 90 fully reviewed deployments failed against 36 of "
        "90 deployments with an unreviewed change; within repos, with the other controls held "
        "fixed, fully reviewed deployments failed less often"
    )

    cab = table.loc["cab_approved"]
    assert (
        cab["with_deployments"],
        cab["with_failures"],
        cab["without_deployments"],
        cab["without_failures"],
    ) == counts(rows, lambda s: s.cab)
    assert cab["verdict"] == "no clear difference"
    assert cab["adjusted_low"] < 1 < cab["adjusted_high"]
    assert cab["adjusted_odds_ratio"] == pytest.approx(1.0, abs=0.05)

    # Nothing records gates, CI or who started a deployment: those cannot be judged.
    for control in ("gated", "tests_passed", "automated"):
        row = table.loc[control]
        assert row["verdict"] == "cannot tell", control
        assert row["unknown_deployments"] == len(rows)
        assert "no deployment shows whether it applied" in row["plain"]

    verdict = analysis.controls_verdict
    # The board's sentence carries the counts of the control with the clear result, in the
    # repos where it varies (all three here: 6 of 90 and 36 of 90, counted by hand above).
    assert verdict[0] == (
        "Comparing like with like within each repo, fully reviewed deployments failed less "
        "often, by more than chance would explain: 6 of 90 fully reviewed deployments failed "
        "against 36 of 90 deployments with an unreviewed change in the 3 repos that deploy both "
        "ways."
    )
    assert verdict[1] == (
        "CAB approval showed no clear difference; for approval gate, green tests before "
        "deploying and automated deployment the data cannot tell."
    )
    assert verdict[2] == review["plain"] and verdict[3] == cab["plain"]
    assert review["within_with_deployments"] == 90 and review["within_without_failures"] == 36
    assert verdict[-3:] == analysis.controls_caveats
    assert any("applied on purpose" in sentence for sentence in analysis.controls_caveats)
    # The existing verdict is untouched by the controls.
    assert not set(verdict[2:4]) & set(analysis.verdict)
    json.dumps(analysis.to_dict())

    deployments = analysis.deployments
    assert tuple(deployments.columns) == (*DEPLOYMENT_COLUMNS, *CONTROL_DEPLOYMENT_COLUMNS)
    by_id = deployments.set_index("deployment_id")
    assert int(by_id["fully_reviewed"].sum()) == 90
    assert set(by_id["change_type"]) == {"normal", "none"}


def test_with_few_failures_the_exact_test_stands_in_for_the_model() -> None:
    """12 failures are fewer than 10 per control: each control gets the exact conditional test
    stratified by repo and the other control's value."""
    rows: list[Spec] = []
    for repo in ("o/a", "o/b"):
        for cab in (True, False):
            rows += crossed(repo, True, cab, 8, 0) + crossed(repo, False, cab, 8, 3)
    table = dp.analyze(build(rows), since=SINCE).controls.set_index("control")
    review = table.loc["fully_reviewed"]
    assert review["adjusted_test"] == EXACT_ADJUSTED
    # By hand: strata repo x CAB, each [[0, 8], [3, 5]]; no reviewed failure, so the
    # conditional estimate is 0 and the exact test is R's mantelhaen.test(exact = TRUE).
    reference = exact_conditional([[[0, 8], [3, 5]]] * 4)
    assert review["adjusted_odds_ratio"] == 0
    assert review["adjusted_p"] == pytest.approx(reference.p_value)
    assert review["adjusted_high"] == pytest.approx(reference.ci_high)
    assert review["verdict"] == "fewer failures"
    assert table.loc["cab_approved", "verdict"] == "no clear difference"


def test_a_difference_only_between_repos_cannot_be_told() -> None:
    """One repo always reviews and rarely fails, the other never reviews and often fails: the
    crude difference is large, but repos, not review, are compared."""
    rows = crossed("o/careful", True, False, 40, 2) + crossed("o/hasty", False, False, 40, 16)
    rows += [Spec("o/careful", False, True, cab=True), Spec("o/hasty", False, False, cab=True)]
    table = dp.analyze(build(rows), since=SINCE).controls.set_index("control")
    review = table.loc["fully_reviewed"]
    assert (review["with_deployments"], review["with_failures"]) == (41, 2)
    assert (review["without_deployments"], review["without_failures"]) == (41, 16)
    assert review["strata_both_ways"] == 0
    assert review["verdict"] == "cannot tell"
    assert pd.isna(review["within_odds_ratio"]) and pd.isna(review["adjusted_odds_ratio"])
    assert (
        "it never varies within a repo: every deployment of each repo either had it or "
        in (review["plain"])
    )
    assert "repos, not the control, are compared" in review["plain"]


def test_conditional_logit_reproduces_rs_exact_conditional_estimate() -> None:
    """One binary control, strata = penicillin level: the conditional likelihood's maximum is
    the conditional MLE R's mantelhaen.test(Rabbits, exact = TRUE) documents (10.36102)."""
    failed, exposed, strata = [], [], []
    for level, ((a, b), (c, d)) in enumerate(RABBITS):
        for count, x, y in ((a, 1, 1), (b, 1, 0), (c, 0, 1), (d, 0, 0)):
            failed += [bool(y)] * count
            exposed += [float(x)] * count
            strata += [f"level-{level}"] * count
    estimates, note = st.stratified_logit(
        np.array(failed), pd.DataFrame({"delay": exposed}), pd.Series(strata)
    )
    assert note == ""
    delay = estimates["delay"]
    assert delay.test == st.CONDITIONAL_LOGIT
    assert delay.estimate == pytest.approx(10.36102, rel=2e-5)
    assert delay.estimate == pytest.approx(exact_conditional(RABBITS).odds_ratio, rel=2e-5)
    # Wald interval of the fit, by hand from its own log odds ratio and standard error.
    assert delay.ci_low is not None and delay.ci_high is not None
    assert np.log(delay.ci_high) - np.log(delay.estimate) == pytest.approx(
        np.log(delay.estimate) - np.log(delay.ci_low)
    )


def test_separation_is_not_fitted() -> None:
    """Every exposed deployment failed, none other did: no finite estimate, so no fit."""
    failed = np.array([True] * 6 + [False] * 6 + [True, False] * 3)
    design = pd.DataFrame({"x": [1.0] * 6 + [0.0] * 6 + [0.0] * 6})
    strata = pd.Series(["a"] * 12 + ["b"] * 6)
    estimates, note = st.stratified_logit(failed, design, strata)
    assert estimates == {} and note.startswith("cannot fit")


def test_large_strata_fit_one_baseline_per_stratum() -> None:
    """Strata above the conditional fit's size use Logit with stratum indicators; with strata
    this large it agrees with the Mantel-Haenszel estimate of the same tables."""
    rng = np.random.default_rng(11)
    n = 2 * st.CONDITIONAL_MAX_STRATUM
    strata = pd.Series(np.repeat(["a", "b"], n))
    x = rng.random(2 * n) < 0.5
    base = np.repeat([0.1, 0.3], n)
    odds = base / (1 - base) * np.where(x, 2.0, 1.0)
    failed = rng.random(2 * n) < odds / (1 + odds)
    estimates, note = st.stratified_logit(failed, pd.DataFrame({"x": x.astype(float)}), strata)
    assert note == ""
    assert estimates["x"].test == st.LOGIT_STRATA
    frame = pd.DataFrame({"stratum": strata, "x": x, "failed": failed})
    tables, _ = st.stratified_tables(frame, "x")
    pooled = st.mantel_haenszel(tables).estimate
    assert pooled is not None
    assert estimates["x"].estimate == pytest.approx(pooled, rel=0.05)


def test_per_deployment_tests_and_review_follow_their_definitions() -> None:
    """By hand, one deployment at a time: runs on the deployed commit, else on the commit a
    release commit was built from; the latest run per workflow; skipped does not fail; a repo
    without CI data is unknown. Review: an approval by the author alone is no review, a bot's
    change is not counted."""
    t = START
    commits: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    deployments: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    parent: str | None = None
    for k in range(6):
        merge = sha("ci", k)
        commits.append({"repo": "o/ci", "sha": merge, "parents": [parent] if parent else []})
        changes.append(
            {
                "repo": "o/ci",
                "change_id": str(k),
                "author": "dependabot[bot]" if k == 5 else "ann",
                "created_at": t + k * 24 * HOUR,
                "merged_at": t + (k * 24 + 1) * HOUR,
                "merge_sha": merge,
                # 0, 2, 4: reviewed by bob; 1: approved by its author only; 3, 5: nothing
                "first_review_at": t + (k * 24 + 0.5) * HOUR if k in (0, 2, 4) else None,
                "first_approval_at": t + (k * 24 + 0.5) * HOUR if k == 1 else None,
                "approvers": ["ann"] if k == 1 else [],
            }
        )
        parent = merge
    release = sha("ci", "release")  # a version bump on top of change 3, no change's merge
    commits.append({"repo": "o/ci", "sha": release, "parents": [sha("ci", 3)]})

    def deployment(name: str, commit: str, day: int, repo: str = "o/ci") -> None:
        deployments.append(
            {
                "repo": repo,
                "deployment_id": name,
                "environment": "production",
                "is_production": True,
                "sha": commit,
                "status": "success",
                "created_at": t + (day * 24 + 10) * HOUR,
                "finished_at": t + (day * 24 + 11) * HOUR,
            }
        )

    def run(
        commit: str, name: str, conclusion: str, day: int, finish_h: float, attempt: int = 1
    ) -> None:
        runs.append(
            {
                "repo": "o/ci",
                "run_id": f"{name}-{commit[:6]}-{attempt}-{finish_h}",
                "name": name,
                "sha": commit,
                "conclusion": conclusion,
                "status": "completed",
                "attempt": attempt,
                "created_at": t + (day * 24 + finish_h - 1) * HOUR,
                "finished_at": t + (day * 24 + finish_h) * HOUR,
            }
        )

    deployment("d0", sha("ci", 0), 0)  # CI green, Lint skipped: passed
    run(sha("ci", 0), "CI", "success", 0, 5)
    run(sha("ci", 0), "Lint", "skipped", 0, 5)
    deployment("d1", sha("ci", 1), 1)  # CI red, re-run green (attempt 2): passed
    run(sha("ci", 1), "CI", "failure", 1, 4)
    run(sha("ci", 1), "CI", "success", 1, 6, attempt=2)
    deployment("d2", sha("ci", 2), 2)  # CI green but Lint red: deployed over a red run
    run(sha("ci", 2), "CI", "success", 2, 5)
    run(sha("ci", 2), "Lint", "failure", 2, 5)
    deployment("d3", release, 3)  # the release commit has no run: change 3's green one counts
    run(sha("ci", 3), "CI", "success", 3, 5)
    deployment("d4", sha("ci", 5), 5)  # the only run finished after it started: no green run
    run(sha("ci", 5), "CI", "success", 5, 12)
    commits.append({"repo": "o/plain", "sha": sha("plain", 0), "parents": []})
    deployment("p0", sha("plain", 0), 0, repo="o/plain")  # no CI data, no pull request
    ds = Dataset.from_frames(
        deployments=deployments, changes=changes, commits=commits, test_runs=runs
    )
    table = dp.analyze(ds, since=SINCE).deployments.set_index("deployment_id")
    expected = {  # tests_passed, tests_failed_ignored, reviewed_share
        "d0": (True, False, 1.0),
        "d1": (True, False, 0.0),  # approved by its own author only
        "d2": (False, True, 1.0),
        "d3": (True, False, 0.0),  # change 3 had no review
        "d4": (False, False, 1.0),  # change 4 reviewed; change 5 is a bot's: not counted
    }
    for name, (passed, ignored, share) in expected.items():
        row = table.loc[name]
        assert (bool(row["tests_passed"]), bool(row["tests_failed_ignored"])) == (
            passed,
            ignored,
        ), name
        assert row["reviewed_share"] == pytest.approx(share), name
        assert bool(row["fully_reviewed"]) == (share == 1.0), name
    plain = table.loc["p0"]
    assert pd.isna(plain["tests_passed"]) and pd.isna(plain["tests_failed_ignored"])
    # Its commit has no pull request: a trunk change, which counts as unreviewed.
    assert plain["reviewed_share"] == 0 and not bool(plain["fully_reviewed"])
    assert pd.isna(plain["automated"]) and pd.isna(plain["cab_approved"])
