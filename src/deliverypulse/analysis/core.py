"""``analyze``: the per-deployment table, one Finding per comparison, and the verdict.

The order of work: build the table (batches.py), compare groups (stats.py), then put the
numbers into words and caveats (verdict.py). Thresholds are parameters, documented in
docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import numpy as np
import pandas as pd

from deliverypulse.analysis import stats as st
from deliverypulse.analysis import verdict as words
from deliverypulse.analysis.batches import (
    DEFAULT_BINS,
    AnalysisError,
    bin_labels,
    check_bins,
    deployment_table,
)
from deliverypulse.analysis.model import Analysis, Estimate, Finding
from deliverypulse.dataset import Dataset
from deliverypulse.dora.options import MetricOptions, OptionKeywords
from deliverypulse.dora.prepared import Prepared, resolve
from deliverypulse.linking import Links

#: A window shorter than this many days gets a caveat.
MIN_WINDOW_DAYS = 56

GATE_QUESTION = "Do gated deployments fail more often?"
BATCH_QUESTION = "Do bigger batches fail more often?"


def _with_main(
    name: str,
    question: str,
    groups: pd.DataFrame,
    estimates: Sequence[Estimate],
    statement: str,
    enough: bool,
) -> Finding:
    main = estimates[0]
    return Finding(
        question=question,
        groups=groups,
        effect=main.effect,
        estimate=main.estimate,
        ci_low=main.ci_low,
        ci_high=main.ci_high,
        test=main.test,
        p_value=main.p_value,
        statement=statement,
        name=name,
        estimates=tuple(estimates),
        enough_data=enough,
    )


def _rate(groups: pd.DataFrame, row: int) -> float | None:
    value = groups["change_failure_rate"].iloc[row]
    return None if pd.isna(value) else float(value)


def _gate_finding(
    table: pd.DataFrame, min_deployments: int, min_per_group: int
) -> tuple[Finding, list[str]]:
    """Gated vs ungated change failure rate: Mantel-Haenszel by repo and crude Fisher."""
    known = table.loc[table["gated"].notna().to_numpy(dtype=bool)]
    groups = st.group_table(known, "gated", [True, False], ["gated", "ungated"])
    gated, ungated = (int(n) for n in groups["deployments"])
    crude = st.fisher(st.two_by_two(known, "gated"))
    stratified, _, _ = st.mantel_haenszel(known, "gated")
    several_repos = known[["source", "repo"]].drop_duplicates().shape[0] > 1
    use_stratified = several_repos and stratified.estimate is not None
    estimates = [stratified, crude] if use_stratified else [crude, stratified]
    caveats: list[str] = []
    enough = gated >= min_per_group and ungated >= min_per_group and len(known) >= min_deployments
    if len(known) == 0:
        statement = (
            "No deployment records whether it was gated (approval_required is unknown): "
            "the gate comparison cannot be made."
        )
    elif ungated == 0:
        statement = "Every deployment was gated: there are no ungated deployments to compare with."
    elif gated == 0:
        statement = "No deployment was gated: there are no gated deployments to compare with."
    elif not enough:
        statement = (
            f"Only {gated} gated and {ungated} ungated deployments: not enough to say whether "
            f"approval gates change the failure rate (at least {min_per_group} of each and "
            f"{min_deployments} in all are needed)."
        )
    else:
        statement = words.gate_statement(
            estimates[0], (_rate(groups, 0), _rate(groups, 1)), (gated, ungated)
        )
    if several_repos and gated and ungated:
        mixed = int((known.groupby(["source", "repo"])["gated"].transform("nunique") > 1).sum())
        if mixed / len(known) < words.MIN_OVERLAP_SHARE:
            caveats.append(
                "Gated and ungated deployments come mostly from different repos (only "
                f"{mixed} of {len(known)} are in repos that have both), so repo confounds the "
                "comparison; only repos with both can compare like with like."
            )
        elif words.disagreement(crude, stratified):
            caveats.append(
                f"Repo confounds the gate comparison: across all deployments "
                f"{words.interval(crude)}, but within repos {words.interval(stratified)}. "
                "The within-repo comparison is the one to trust."
            )
    return _with_main("gates", GATE_QUESTION, groups, estimates, statement, enough), caveats


def _batch_finding(
    table: pd.DataFrame, labels: list[str], min_deployments: int, min_per_group: int
) -> tuple[Finding, list[str]]:
    """Change failure rate across batch groups; logistic model on log2(changes) with repo."""
    groups = st.group_table(table, "batch_group", labels, labels)
    by_repo = st.logit_batch(table, by_repo=True)
    crude = st.logit_batch(table, by_repo=False)
    sized = int((table["batch_changes"].fillna(0) >= 1).sum())
    big_groups = int((groups["deployments"] >= min_per_group).sum())
    enough = sized >= min_deployments and big_groups >= 2
    caveats: list[str] = []
    if sized >= min_deployments and big_groups < 2:
        statement = (
            f"Only {big_groups} batch group(s) hold {min_per_group} or more of the {sized} "
            "deployments with a known batch size: too little spread in batch size to say "
            "whether it changes the failure rate."
        )
    elif not enough:
        statement = (
            f"Only {sized} deployments with a known batch size: not enough to say whether batch "
            f"size changes the failure rate (at least {min_deployments} are needed)."
        )
    else:
        statement = words.batch_statement(by_repo)
        several_repos = table[["source", "repo"]].drop_duplicates().shape[0] > 1
        if several_repos and words.disagreement(crude, by_repo):
            caveats.append(
                f"Repo confounds the batch-size comparison: across all deployments "
                f"{words.interval(crude)}, but with repo in the model {words.interval(by_repo)}. "
                "The model with repo is the one to trust."
            )
    finding = _with_main("batch_size", BATCH_QUESTION, groups, [by_repo, crude], statement, enough)
    return finding, caveats


def _values(frame: pd.DataFrame, column: str) -> st.FloatArray:
    return frame[column].to_numpy(dtype=float, na_value=np.nan)


def _lead_findings(
    table: pd.DataFrame, batch: Finding, gates: Finding, min_per_group: int
) -> list[Finding]:
    """Lead time and recovery against batch size and gates; approval wait."""
    known = table.loc[table["gated"].notna().to_numpy(dtype=bool)]
    is_gated = known["gated"].to_numpy(dtype=bool)
    sized = table.loc[(table["batch_changes"].fillna(0) >= 1).to_numpy(dtype=bool)]
    failed_sized = sized.loc[sized["failed"].to_numpy(dtype=bool)]
    gated_failed = known.loc[known["failed"].to_numpy(dtype=bool)]
    failed_gated = gated_failed["gated"].to_numpy(dtype=bool)

    def enough_pair(first: st.FloatArray, second: st.FloatArray) -> bool:
        return bool(
            np.isfinite(first).sum() >= min_per_group and np.isfinite(second).sum() >= min_per_group
        )

    def enough_one(values: st.FloatArray) -> bool:
        return bool(np.isfinite(values).sum() >= min_per_group)

    def finding(
        name: str,
        question: str,
        groups: pd.DataFrame,
        estimate: Estimate,
        enough: bool,
        subject: str,
        more: str,
        less: str,
    ) -> Finding:
        if enough:
            statement = words.lead_statement(estimate, subject, more, less)
        else:
            statement = f"Too few deployments with the data needed to compare {subject.lower()}."
        return _with_main(name, question, groups, [estimate], statement, enough)

    lead_gated = _values(known.loc[is_gated], "lead_time_h")
    lead_ungated = _values(known.loc[~is_gated], "lead_time_h")
    recovery_gated = _values(gated_failed.loc[failed_gated], "recovery_h")
    recovery_ungated = _values(gated_failed.loc[~failed_gated], "recovery_h")
    batch_sizes = _values(sized, "batch_changes")
    lead_sized = _values(sized, "lead_time_h")
    waits = _values(known.loc[is_gated], "approval_wait_h")
    wait_groups = st.group_table(
        known.loc[is_gated & np.isfinite(_values(known, "approval_wait_h"))].assign(_all="all"),
        "_all",
        ["all"],
        ["gated, wait known"],
    )
    return [
        finding(
            "gate_lead_time",
            "Do gated deployments take longer to reach production?",
            gates.groups,
            st.median_difference(lead_gated, lead_ungated),
            enough_pair(lead_gated, lead_ungated),
            "Lead time of gated and ungated deployments",
            "Changes shipped by gated deployments took longer to reach production",
            "Changes shipped by gated deployments reached production sooner",
        ),
        finding(
            "batch_lead_time",
            "Do bigger batches take longer to reach production?",
            batch.groups,
            st.rank_correlation(batch_sizes, lead_sized),
            enough_one(lead_sized),
            "Lead time across batch sizes",
            "Changes in bigger batches took longer to reach production",
            "Changes in bigger batches reached production sooner",
        ),
        finding(
            "gate_recovery",
            "Do failed gated deployments recover faster?",
            gates.groups,
            st.median_difference(recovery_gated, recovery_ungated),
            enough_pair(recovery_gated, recovery_ungated),
            "Recovery time of failed gated and ungated deployments",
            "Failed gated deployments took longer to recover",
            "Failed gated deployments recovered faster",
        ),
        finding(
            "batch_recovery",
            "Do failed big batches take longer to recover?",
            batch.groups,
            st.rank_correlation(
                _values(failed_sized, "batch_changes"), _values(failed_sized, "recovery_h")
            ),
            enough_one(_values(failed_sized, "recovery_h")),
            "Recovery time across batch sizes",
            "Failed bigger batches took longer to recover",
            "Failed bigger batches recovered faster",
        ),
        _wait_finding(wait_groups, st.median_interval(waits), enough_one(waits)),
    ]


def _wait_finding(groups: pd.DataFrame, estimate: Estimate, enough: bool) -> Finding:
    if estimate.estimate is None or not enough:
        statement = "Too few gated deployments record when approval was requested and given."
    else:
        statement = (
            f"Gated deployments waited a median {words.number(estimate.estimate)} h for approval "
            f"(95 % CI {words.number(estimate.ci_low)} to {words.number(estimate.ci_high)} h)."
        )
    return _with_main(
        "approval_wait",
        "How long do gated deployments wait for approval?",
        groups,
        [estimate],
        statement,
        enough,
    )


def _data_caveats(
    table: pd.DataFrame,
    window: tuple[pd.Timestamp | None, pd.Timestamp | None],
    min_window_days: int,
    signals: tuple[str, ...],
) -> list[str]:
    caveats = []
    start, end = window
    if start is not None and end is not None:
        days = (end - start) / pd.Timedelta(days=1)
        if days < min_window_days:
            caveats.append(
                f"The window is {days / 7:.0f} weeks ({start:%Y-%m-%d} to {end:%Y-%m-%d}): too "
                f"short to judge rare failures or slow trends ({min_window_days // 7} weeks or "
                "more is better)."
            )
    total = len(table)
    if total and not table["failed"].any():
        caveats.append(
            f"No deployment failed (signals: {', '.join(signals)}): there is no failure to "
            "compare, so nothing can be said about what makes deployments safer."
        )
    unknown_gate = int(table["gated"].isna().sum())
    if 0 < unknown_gate < total:
        caveats.append(
            f"{unknown_gate} of {total} deployments do not record whether they were gated; "
            "they are left out of the gate comparisons."
        )
    unsized = int((table["batch_changes"].isna() & table["failed"]).sum())
    if unsized:
        caveats.append(
            f"{unsized} failed deployment attempts never reached production, so they shipped no "
            "batch and are left out of the batch-size comparisons (they still count for gates)."
        )
    return caveats


def _entangled(table: pd.DataFrame, min_per_group: int) -> list[str]:
    """A caveat when gated and ungated deployments ship batches of different sizes (Mann-Whitney
    at the 5 % level): then each comparison may partly show the other."""
    sized = table.loc[
        table["gated"].notna().to_numpy(dtype=bool)
        & (table["batch_changes"].fillna(0) >= 1).to_numpy(dtype=bool)
    ]
    is_gated = sized["gated"].to_numpy(dtype=bool)
    gated, ungated = (
        _values(sized.loc[is_gated], "batch_changes"),
        _values(sized.loc[~is_gated], "batch_changes"),
    )
    if min(gated.size, ungated.size) < min_per_group:
        return []
    p_value = st.mann_whitney(gated, ungated)
    if p_value is None or p_value >= st.ALPHA:
        return []
    bigger = "bigger" if np.median(gated) >= np.median(ungated) else "smaller"
    return [
        f"Gated deployments ship {bigger} batches than ungated ones (median "
        f"{np.median(gated):g} vs {np.median(ungated):g} changes; Mann-Whitney "
        f"{words.p_text(p_value)}), so batch size and gating are entangled: "
        "each comparison may partly show the other."
    ]


def _check_threshold(name: str, value: int, lowest: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < lowest:
        raise AnalysisError(f"{name} must be a whole number of at least {lowest}, got {value!r}")
    return int(value)


def analyze(
    data: Dataset | Prepared,
    *,
    batch_bins: Sequence[int] = DEFAULT_BINS,
    min_deployments: int = 30,
    min_per_group: int = 10,
    min_window_days: int = MIN_WINDOW_DAYS,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    **keywords: Unpack[OptionKeywords],
) -> Analysis:
    """Batch size and approval gates against change failure rate, recovery and lead time.

    ``batch_bins``: lower edges of the batch-size groups in changes ((1, 2, 4, 8) gives 1, 2-3,
    4-7, 8+). ``min_deployments``: fewest production deployments for any conclusion;
    ``min_per_group``: fewest per compared group. A window shorter than ``min_window_days``
    gets a caveat. ``data`` is a Dataset or what :func:`deliverypulse.prepare` made of one;
    ``options``, ``links`` and keywords (``failure_signals``, ``since``, ...) mean what they
    mean in the metrics, so the failures here are the failures the change failure rate counts.
    Method and caveats: docs/analysis.md.
    """
    bins = check_bins(batch_bins)
    min_deployments = _check_threshold("min_deployments", min_deployments, 1)
    min_per_group = _check_threshold("min_per_group", min_per_group, 1)
    min_window_days = _check_threshold("min_window_days", min_window_days, 0)
    prepared = resolve(data, options, links, keywords)
    chosen = prepared.options
    signals = chosen.failure_signals
    table = deployment_table(prepared, bins=bins)
    window: tuple[pd.Timestamp | None, pd.Timestamp | None] = (None, None)
    if table["finished_at"].notna().any():
        window = (table["finished_at"].min(), table["finished_at"].max())

    gates, gate_caveats = _gate_finding(table, min_deployments, min_per_group)
    batch, batch_caveats = _batch_finding(table, bin_labels(bins), min_deployments, min_per_group)
    others = _lead_findings(table, batch, gates, min_per_group)
    findings = (gates, batch, *others)

    enough = len(table) >= min_deployments and (gates.enough_data or batch.enough_data)
    sentences: list[str] = []
    if not enough:
        sentences.append(
            f"Only {len(table)} production deployments {words.window_text(window)}: not enough "
            "data to say whether batch size or approval gates make releases safer (at least "
            f"{min_deployments} are needed, with {min_per_group} or more in each group compared)."
        )
    sentences += [gates.statement, *gate_caveats, batch.statement, *batch_caveats]
    sentences += [
        item.statement for item in others if item.enough_data and item.estimate is not None
    ]
    data_caveats = [
        *_entangled(table, min_per_group),
        *_data_caveats(table, window, min_window_days, signals),
    ]
    caveats = [*gate_caveats, *batch_caveats, *data_caveats, words.CAUSATION]
    return Analysis(
        deployments=table,
        batch_size=batch,
        gates=gates,
        findings=findings,
        verdict=tuple(dict.fromkeys([*sentences, *data_caveats, words.CAUSATION])),
        enough_data=enough,
        window=window,
        caveats=tuple(caveats),
        parameters={
            "batch_bins": list(bins),
            "min_deployments": min_deployments,
            "min_per_group": min_per_group,
            "min_window_days": min_window_days,
            "failure_signals": list(signals),
            "revert_window": str(chosen.revert_window),
            "environments": None if chosen.environments is None else list(chosen.environments),
            "since": None if chosen.since is None else str(chosen.since),
            "exclude_bots": chosen.exclude_bots,
            "trunk": chosen.trunk,
            "confidence": st.CONFIDENCE,
        },
    )


__all__ = ["BATCH_QUESTION", "GATE_QUESTION", "MIN_WINDOW_DAYS", "analyze"]
