"""``analyze``: the per-deployment table, one Finding per comparison, and the verdict.

The order of work: build the table (batches.py), compare groups (stats.py), then put the
numbers into words and caveats (verdict.py). Thresholds are parameters, documented in
docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
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
from deliverypulse.analysis.changeboard import change_board
from deliverypulse.analysis.controls import (
    control_caveats,
    controls_table,
    controls_verdict,
    deployment_controls,
)
from deliverypulse.analysis.model import ACROSS, STRATA_COLUMNS, Analysis, Estimate, Finding
from deliverypulse.analysis.whatif import what_if
from deliverypulse.dataset import Dataset
from deliverypulse.dora.options import MetricOptions, OptionKeywords
from deliverypulse.dora.prepared import Prepared, resolve
from deliverypulse.linking import Links

#: A window shorter than this many days gets a caveat.
MIN_WINDOW_DAYS = 56

GATE_QUESTION = "Do gated deployments fail more often?"
BATCH_QUESTION = "Do bigger batches fail more often?"


def _rate(groups: pd.DataFrame, row: int) -> float | None:
    value = groups["change_failure_rate"].iloc[row]
    return None if pd.isna(value) else float(value)


def _counts(groups: pd.DataFrame) -> tuple[tuple[int, int], tuple[int, int]]:
    """((failures, deployments) gated, (failures, deployments) ungated) of a gate group table."""
    failed, total = groups["failures"].tolist(), groups["deployments"].tolist()
    return (int(failed[0]), int(total[0])), (int(failed[1]), int(total[1]))


def _expected_gated_failures(mixed: pd.DataFrame) -> float | None:
    """Gated failures expected if, within each stratum, gated and ungated failed alike: the sum
    over strata of gated deployments x the stratum's failure rate (the exact and the
    Mantel-Haenszel tests' expectation under no effect)."""
    if mixed.empty:
        return None
    per = mixed.groupby("stratum", observed=True).agg(
        gated=("gated", "sum"), failed=("failed", "sum"), n=("failed", "size")
    )
    return float((per["gated"].astype(float) * per["failed"] / per["n"]).sum())


def _lower_first(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:]


def _gate_words(estimate: Estimate) -> str:
    """What an odds ratio of gated vs ungated failure says, without numbers."""
    return words.outcome_words(
        estimate,
        1.0,
        "gated deployments fail more often",
        "gated deployments fail less often",
        "no difference is shown"
        if estimate.estimate is None or 0.8 <= estimate.estimate <= 1.25
        else "the difference could be chance",
    )


def _batch_words(estimate: Estimate) -> str:
    """What an odds ratio per doubling of the batch says, without numbers."""
    return words.outcome_words(
        estimate,
        1.0,
        "bigger batches fail more often",
        "bigger batches fail less often",
        "no link between batch size and failure is shown",
    )


def _gate_strata(known: pd.DataFrame) -> pd.DataFrame:
    """One row per stratum (``STRATA_COLUMNS``): its gated and ungated deployments and
    failures, and whether it deploys both ways (only those enter the within comparison)."""
    flag = known["gated"].to_numpy(dtype=bool)
    failed = known["failed"].to_numpy(dtype=bool)
    frame = pd.DataFrame(
        {
            "stratum": known["stratum"].astype(str).to_numpy(),
            "gated_deployments": flag.astype(np.int64),
            "gated_failures": (flag & failed).astype(np.int64),
            "ungated_deployments": (~flag).astype(np.int64),
            "ungated_failures": (~flag & failed).astype(np.int64),
        }
    )
    table = frame.groupby("stratum", sort=True).sum().reset_index()
    table["both_ways"] = (table["gated_deployments"] > 0) & (table["ungated_deployments"] > 0)
    return table[list(STRATA_COLUMNS)]


def _gate_findings(
    table: pd.DataFrame, unit: str, min_deployments: int, min_per_group: int
) -> tuple[Finding, Finding, list[str]]:
    """Gated vs ungated change failure rate: first within strata (repos that deploy both ways
    only; Mantel-Haenszel, or exact conditional for small strata), then the crude comparison
    over every deployment (Fisher's exact), labelled as such."""
    known = table.loc[table["gated"].notna().to_numpy(dtype=bool)]
    kinds = known.groupby("stratum", observed=True)["gated"].transform("nunique")
    mixed = known.loc[(kinds > 1).to_numpy(dtype=bool)]
    strata = int(mixed["stratum"].nunique())
    order, labels = [True, False], ["gated", "ungated"]
    all_groups = st.group_table(known, "gated", order, labels)
    groups = st.group_table(mixed, "gated", order, labels)
    gated_all, ungated_all = (int(n) for n in all_groups["deployments"])
    (gated_failed, gated), (ungated_failed, ungated) = _counts(groups)
    within = st.within_strata(mixed, "gated", unit)
    crude = st.fisher(st.two_by_two(known, "gated"), unit)
    enough = gated >= min_per_group and ungated >= min_per_group and len(mixed) >= min_deployments
    enough_crude = (
        gated_all >= min_per_group
        and ungated_all >= min_per_group
        and len(known) >= min_deployments
    )
    both = f"{unit}s that deploy both ways"
    plain = words.gate_plain(
        unit=unit,
        strata=strata,
        gated=(gated_failed, gated),
        ungated=(ungated_failed, ungated),
        expected=_expected_gated_failures(mixed),
        estimate=within,
        enough=enough,
        min_per_group=min_per_group,
        min_deployments=min_deployments,
    )
    if table.empty:
        statement = plain = (
            "There are no production deployments in the window: not enough data to say whether "
            "approval gates make releases safer."
        )
    elif len(known) == 0:
        statement = plain = (
            "No deployment records whether it was gated (approval_required is unknown): "
            "the gate comparison cannot be made."
        )
    elif ungated_all == 0:
        statement = plain = (
            "Every deployment was gated: there are no ungated deployments to compare with, so "
            "the data cannot say whether the gate makes releases safer."
        )
    elif gated_all == 0:
        statement = plain = (
            "No deployment was gated: there are no gated deployments to compare with, so the "
            "data cannot say whether a gate would make releases safer."
        )
    elif strata == 0:
        statement = (
            f"No {unit} has both gated and ungated deployments: the within-{unit} comparison "
            "cannot be made."
        )
        plain = (
            f"No {unit} deploys both with and without a gate, so gated and ungated deployments "
            f"cannot be compared like with like: not enough data to say whether the gate makes "
            "releases safer."
        )
    elif not enough:
        statement = (
            f"Only {gated} gated and {ungated} ungated deployments in {both}: not enough to say "
            f"whether approval gates change the failure rate (at least {min_per_group} of each "
            f"and {min_deployments} in all are needed); {words.interval(within)}."
        )
    else:
        statement = words.gate_statement(
            within, (_rate(groups, 0), _rate(groups, 1)), (gated, ungated)
        )
    caveats: list[str] = []
    if strata and gated_all and ungated_all:
        if len(mixed) / len(known) < words.MIN_OVERLAP_SHARE:
            caveats.append(
                f"Gated and ungated deployments come mostly from different {unit}s (only "
                f"{len(mixed)} of {len(known)} are in {both}), so {unit} confounds the crude "
                f"comparison; only {both} can compare like with like."
            )
        elif words.disagreement(crude, within):
            caveats.append(
                f"{unit.capitalize()} confounds the gate comparison: across all deployments "
                f"{_gate_words(crude)}, but within {unit}s {_gate_words(within)}. The "
                f"within-{unit} comparison is the one to trust."
            )
    elif gated_all and ungated_all and len(known):
        caveats.append(
            f"Gated and ungated deployments come from different {unit}s (none has both), so "
            f"{unit} confounds the crude comparison."
        )
    # ``groups`` stays every deployment with a known gate (the report's table adds up to the
    # headline's counts); what the within estimate compares is in ``strata`` and the sentence.
    first = replace(
        Finding.led_by(
            "gates", GATE_QUESTION, all_groups, [within, crude], statement, enough, plain
        ),
        strata=_gate_strata(known),
    )
    crude_label = ACROSS.format(unit=unit)
    if enough_crude:
        crude_statement = f"{crude_label.capitalize()}: " + _lower_first(
            words.gate_statement(
                crude, (_rate(all_groups, 0), _rate(all_groups, 1)), (gated_all, ungated_all)
            )
        )
    else:
        crude_statement = (
            f"{crude_label.capitalize()}: only {gated_all} gated and {ungated_all} ungated "
            f"deployments, not enough to compare; {words.interval(crude)}."
        )
    (all_gated_failed, _), (all_ungated_failed, _) = _counts(all_groups)
    crude_plain = (
        f"{crude_label.capitalize()}: {all_gated_failed} of {gated_all} gated and "
        f"{all_ungated_failed} of {ungated_all} ungated deployments failed "
        f"({words.percent(_rate(all_groups, 0))} vs {words.percent(_rate(all_groups, 1))}); "
        f"this puts {unit}s that fail often next to {unit}s that rarely do, so it is not the "
        "comparison to act on."
    )
    second = Finding.led_by(
        "gates_crude",
        f"{GATE_QUESTION[:-1]}, {crude_label}?",
        all_groups,
        [crude, within],
        crude_statement,
        enough_crude,
        crude_plain if len(known) and gated_all and ungated_all else crude_statement,
    )
    return first, second, caveats


def _batch_counts(groups: pd.DataFrame) -> str:
    """ "21 of 317 deployments of 1 change failed, 13 of 310 of 2-3 changes, ..."."""
    parts = []
    for record in groups.to_dict("records"):
        if not record["deployments"]:
            continue
        label = str(record["group"])
        noun = "change" if label == "1" else "changes"
        parts.append(f"{record['failures']} of {record['deployments']} with {label} {noun}")
    return ", ".join(parts)


def _batch_findings(
    table: pd.DataFrame, labels: list[str], unit: str, min_deployments: int, min_per_group: int
) -> tuple[Finding, Finding, list[str]]:
    """Change failure rate across batch groups; logistic model on log2(changes), first with
    one baseline per stratum (within), then without (crude). Failed attempts count with the
    batch they tried to put live."""
    groups = st.group_table(table, "batch_group", labels, labels)
    by_repo = st.logit_batch(table, by_repo=True, unit=unit)
    crude = st.logit_batch(table, by_repo=False, unit=unit)
    sized = int((table["batch_changes"].fillna(0) >= 1).sum())
    big_groups = int((groups["deployments"] >= min_per_group).sum())
    enough = sized >= min_deployments and big_groups >= 2
    caveats: list[str] = []
    counts = _batch_counts(groups)
    failed = f"Deployments that failed, by batch size: {counts}" if counts else ""
    if sized >= min_deployments and big_groups < 2:
        statement = (
            f"Only {big_groups} batch group(s) hold {min_per_group} or more of the {sized} "
            "deployments with a known batch size: too little spread in batch size to say "
            "whether it changes the failure rate."
        )
        plain = f"{failed}; batch sizes vary too little to say whether bigger batches fail more."
    elif not enough:
        statement = (
            f"Only {sized} deployments with a known batch size: not enough to say whether batch "
            f"size changes the failure rate (at least {min_deployments} are needed)."
        )
        plain = (
            f"Only {sized} deployments have a known batch size: not enough data to say whether "
            "bigger batches fail more often."
        )
    else:
        statement = words.batch_statement(by_repo)
        crude_side = words.significant(crude, 1.0)
        if by_repo.estimate is None:
            conclusion = (
                f"not enough data to compare batch sizes within each {unit} ({by_repo.note})"
            )
        else:
            conclusion = words.outcome_words(
                by_repo,
                1.0,
                f"comparing deployments within the same {unit}, bigger batches failed more "
                "often, by more than chance would explain",
                f"comparing deployments within the same {unit}, bigger batches failed less "
                "often, by more than chance would explain",
                f"comparing deployments within the same {unit}, no link between batch size and "
                "failure is shown: the differences could be chance"
                + (
                    f" (the differences between the groups come from differences between "
                    f"{unit}s, not from batch size within a {unit})"
                    if crude_side
                    else ""
                ),
            )
        plain = f"{failed}; {conclusion}."
        several = table["stratum"].nunique() > 1
        if several and words.disagreement(crude, by_repo):
            caveats.append(
                f"{unit.capitalize()} confounds the batch-size comparison: across all "
                f"deployments {_batch_words(crude)}, but within {unit}s {_batch_words(by_repo)}. "
                f"The within-{unit} comparison is the one to trust."
            )
    finding = Finding.led_by(
        "batch_size", BATCH_QUESTION, groups, [by_repo, crude], statement, enough, plain
    )
    crude_label = ACROSS.format(unit=unit)
    crude_words = words.outcome_words(
        crude,
        1.0,
        "bigger batches failed more often",
        "bigger batches failed less often",
        "no link between batch size and failure is shown",
    )
    crude_finding = Finding.led_by(
        "batch_size_crude",
        f"{BATCH_QUESTION[:-1]}, {crude_label}?",
        groups,
        [crude, by_repo],
        f"{crude_label.capitalize()}: {_lower_first(words.batch_statement(crude))}",
        enough,
        f"{crude_label.capitalize()}: {crude_words}; this mixes {unit}s that fail often with "
        f"{unit}s that rarely do, so it is not the comparison to act on.",
    )
    return finding, crude_finding, caveats


def _values(frame: pd.DataFrame, column: str) -> st.FloatArray:
    return frame[column].to_numpy(dtype=float, na_value=np.nan)


def _lead_findings(
    table: pd.DataFrame, batch: Finding, gates: Finding, min_per_group: int, unit: str
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
        shown: str = "",
    ) -> Finding:
        estimate = replace(estimate, scope=ACROSS.format(unit=unit))
        if enough:
            statement = words.lead_statement(estimate, subject, more, less)
            scope = ACROSS.format(unit=unit).removesuffix(" (crude)")
            detail = f" ({scope}; {shown})" if shown else f" ({scope})"
            plain = words.outcome_words(
                estimate,
                0.0,
                f"{more}, by more than chance would explain{detail}.",
                f"{less}, by more than chance would explain{detail}.",
                f"No clear difference in {subject.lower()}{detail}: this could be chance.",
            )
        else:
            statement = f"Too few deployments with the data needed to compare {subject.lower()}."
            plain = f"Not enough data to compare {subject.lower()}."
        return Finding.led_by(name, question, groups, [estimate], statement, enough, plain)

    def medians(first: st.FloatArray, second: st.FloatArray, names: tuple[str, str]) -> str:
        first, second = first[np.isfinite(first)], second[np.isfinite(second)]
        if not first.size or not second.size:
            return ""
        return (
            f"a median {words.hours(float(np.median(first)))} for {names[0]} against "
            f"{words.hours(float(np.median(second)))} for {names[1]}"
        )

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
            medians(lead_gated, lead_ungated, ("gated", "ungated")),
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
            medians(recovery_gated, recovery_ungated, ("gated", "ungated")),
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
        plain = statement
    else:
        statement = (
            f"Gated deployments waited a median {words.number(estimate.estimate)} h for approval "
            f"(95 % CI {words.number(estimate.ci_low)} to {words.number(estimate.ci_high)} h)."
        )
        waited = int(groups["deployments"].iloc[0])
        plain = (
            f"The {waited} gated deployments that record their approval waited a median "
            f"{words.hours(estimate.estimate)} for it."
        )
    return Finding.led_by(
        "approval_wait",
        "How long do gated deployments wait for approval?",
        groups,
        [estimate],
        statement,
        enough,
        plain,
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
            f"For {unsized} failed deployment attempts the batch they tried to put live cannot "
            "be read (no earlier successful deployment, or their commit is not in the collected "
            "history), so they are left out of the batch-size comparisons (they still count for "
            "gates)."
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
        f"{np.median(gated):g} vs {np.median(ungated):g} changes, more than chance would "
        "explain), so batch size and gating are entangled: each comparison may partly show the "
        "other."
    ]


def _check_threshold(name: str, value: int, lowest: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < lowest:
        raise AnalysisError(f"{name} must be a whole number of at least {lowest}, got {value!r}")
    return int(value)


def _unit(strata: str) -> str:
    """What one stratum is called in a sentence: "repo", "team"..."""
    if not isinstance(strata, str) or not strata:
        raise AnalysisError(f"strata must be 'repo' or a column name, got {strata!r}")
    return strata.replace("_", " ")


def analyze(
    data: Dataset | Prepared,
    *,
    batch_bins: Sequence[int] = DEFAULT_BINS,
    min_deployments: int = 30,
    min_per_group: int = 10,
    min_window_days: int = MIN_WINDOW_DAYS,
    strata: str = "repo",
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    **keywords: Unpack[OptionKeywords],
) -> Analysis:
    """Batch size and approval gates against change failure rate, recovery and lead time.

    ``batch_bins``: lower edges of the batch-size groups in changes ((1, 2, 4, 8) gives 1, 2-3,
    4-7, 8+). ``min_deployments``: fewest production deployments for any conclusion;
    ``min_per_group``: fewest per compared group. A window shorter than ``min_window_days``
    gets a caveat. ``strata``: what the leading comparisons hold fixed, ``"repo"`` or a column
    of the deployments table (say ``"team"``). ``data`` is a Dataset or what
    :func:`deliverypulse.prepare` made of one; ``options``, ``links`` and keywords
    (``failure_signals``, ``since``, ...) mean what they mean in the metrics, so the failures
    here are the failures the change failure rate counts. Method and caveats:
    docs/analysis.md.
    """
    bins = check_bins(batch_bins)
    unit = _unit(strata)
    min_deployments = _check_threshold("min_deployments", min_deployments, 1)
    min_per_group = _check_threshold("min_per_group", min_per_group, 1)
    min_window_days = _check_threshold("min_window_days", min_window_days, 0)
    prepared = resolve(data, options, links, keywords)
    chosen = prepared.options
    signals = chosen.failure_signals
    table = deployment_table(prepared, bins=bins, strata=strata)
    window: tuple[pd.Timestamp | None, pd.Timestamp | None] = (None, None)
    if table["finished_at"].notna().any():
        window = (table["finished_at"].min(), table["finished_at"].max())

    gates, gates_crude, gate_caveats = _gate_findings(table, unit, min_deployments, min_per_group)
    batch, batch_crude, batch_caveats = _batch_findings(
        table, bin_labels(bins), unit, min_deployments, min_per_group
    )
    others = _lead_findings(table, batch, gates_crude, min_per_group, unit)
    findings = (gates, gates_crude, batch, batch_crude, *others)

    enough = len(table) >= min_deployments and (gates.enough_data or batch.enough_data)
    sentences: list[str] = [gates.plain]
    if not enough:
        sentences.append(
            f"Only {len(table)} production deployments {words.window_text(window)}: not enough "
            "data to say whether batch size or approval gates make releases safer (at least "
            f"{min_deployments} are needed, with {min_per_group} or more in each group compared)."
        )
    sentences += [gates_crude.plain, batch.plain, batch_crude.plain]
    sentences += [item.plain for item in others if item.enough_data and item.estimate is not None]
    data_caveats = [
        *_entangled(table, min_per_group),
        *_data_caveats(table, window, min_window_days, signals),
    ]
    caveats = [*gate_caveats, *batch_caveats, *data_caveats, words.CAUSATION]
    board, board_finding, board_what_if = change_board(
        table, prepared, strata, unit, min_deployments, min_per_group
    )
    deployments = deployment_controls(table, prepared)
    controls = controls_table(deployments, prepared, strata, unit)
    return Analysis(
        deployments=deployments,
        batch_size=batch,
        gates=gates,
        findings=findings,
        verdict=tuple(dict.fromkeys([*sentences, *caveats])),
        enough_data=enough,
        window=window,
        caveats=tuple(caveats),
        parameters={
            "batch_bins": list(bins),
            "min_deployments": min_deployments,
            "min_per_group": min_per_group,
            "min_window_days": min_window_days,
            "strata": strata,
            "failure_signals": list(signals),
            "revert_window": str(chosen.revert_window),
            "environments": None if chosen.environments is None else list(chosen.environments),
            "since": None if chosen.since is None else str(chosen.since),
            "exclude_bots": chosen.exclude_bots,
            "trunk": chosen.trunk,
            "confidence": st.CONFIDENCE,
        },
        what_if=what_if(table, prepared, strata, unit),
        change_board=board,
        change_board_finding=board_finding,
        change_board_what_if=board_what_if,
        controls=controls,
        controls_verdict=controls_verdict(controls, unit),
        controls_caveats=control_caveats(unit) if not controls.empty else (),
    )


__all__ = ["BATCH_QUESTION", "GATE_QUESTION", "MIN_WINDOW_DAYS", "analyze"]
