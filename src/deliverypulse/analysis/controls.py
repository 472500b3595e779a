"""Which controls catch problems (issue 16): peer review, green tests, automated deployment,
approval gates and the change board, side by side.

- :func:`deployment_controls`: per production deployment, the controls it went through
  (``CONTROL_DEPLOYMENT_COLUMNS``), from the changes it put live, the CI runs on its commit,
  who or what started it and the change request that covered it.
- :func:`controls_table`: one row per control (``CONTROLS_COLUMNS``): with and without it,
  within repo (the gate finding's machinery), and in one model of every control together
  stratified by repo, so a control is not credited for another's work.
- :func:`controls_verdict`: the rows in plain words, what the data can show first.

Definitions, method and caveats: docs/analysis.md, "Which controls catch problems".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.analysis import stats as st
from deliverypulse.analysis import verdict as words
from deliverypulse.analysis.changeboard import typed_deployments
from deliverypulse.analysis.model import (
    CONTROL_DEPLOYMENT_COLUMNS,
    CONTROLS,
    CONTROLS_COLUMNS,
    Estimate,
)
from deliverypulse.analysis.whatif import change_waits
from deliverypulse.dora.prepared import Prepared
from deliverypulse.rules import automated_flags
from deliverypulse.store.coerce import list_array

_KEY = ["source", "repo", "deployment_id"]
#: Conclusions of a CI run that do not fail the commit (a skipped or neutral job is no red).
PASSING = ("success", "skipped", "neutral")
#: Conclusions that mean the tests ran and were red.
RED = ("failure", "failed", "timed_out")
#: Events per control the stratified model needs before it is fitted (the usual rule of ten);
#: with fewer, each control gets the exact conditional test instead.
EVENTS_PER_CONTROL = 10
EXACT_ADJUSTED = "exact conditional (stratified by repo and the other controls)"

FEWER, MORE, UNCLEAR, CANNOT = (
    "fewer failures",
    "more failures",
    "no clear difference",
    "cannot tell",
)


@dataclass(frozen=True)
class Wording:
    """How a board reads one control."""

    label: str  # "Peer review of every change"
    having: str  # "fully reviewed deployments"
    lacking: str  # "deployments with an unreviewed change"
    missing: str  # why a deployment's value is unknown


WORDING = {
    "cab_approved": Wording(
        "CAB approval",
        "CAB-approved deployments",
        "deployments without CAB approval",
        "the dataset holds no change requests",
    ),
    "gated": Wording(
        "Approval gate",
        "gated deployments",
        "ungated ones",
        "the provider does not say whether they were gated",
    ),
    "fully_reviewed": Wording(
        "Peer review of every change",
        "fully reviewed deployments",
        "deployments with an unreviewed change",
        "they put no counted change live, or their batch cannot be read",
    ),
    "tests_passed": Wording(
        "Green tests before deploying",
        "deployments whose tests had passed",
        "deployments without a green test run",
        "their repo has no CI data",
    ),
    "automated": Wording(
        "Automated deployment",
        "automated deployments",
        "deployments started by a person",
        "the provider does not say who started them",
    ),
}


def _key(frame: pd.DataFrame) -> pd.Series:
    parts = [frame[name].astype(str) for name in _KEY]
    return parts[0] + "\x1f" + parts[1] + "\x1f" + parts[2]


def _timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def reviewed_changes(changes: pd.DataFrame) -> np.ndarray:
    """Per change row: reviewed or approved by someone other than its author before it was
    merged (``first_review_at`` is already someone else's; an approval counts unless every
    known approver is the author). A trunk commit (``is_trunk``) counts as unreviewed; where
    ``merged_at`` is unknown any recorded review counts."""
    merged = _timestamps(changes["merged_at"])

    def before_merge(column: str) -> np.ndarray:
        at = _timestamps(changes[column])
        return np.asarray(at.notna() & (merged.isna() | (at <= merged)), dtype=bool)

    approvers = changes["approvers"] if "approvers" in changes else pd.Series(index=changes.index)
    named = approvers.explode()
    authors = changes["author"].astype("string").reindex(named.index)
    other = (named.notna() & (named.astype("string") != authors)).groupby(level=0).any()
    listed = named.notna().groupby(level=0).any()
    by_other = (other | ~listed).reindex(changes.index, fill_value=True).to_numpy(dtype=bool)
    reviewed = before_merge("first_review_at") | (before_merge("first_approval_at") & by_other)
    trunk = changes["is_trunk"] if "is_trunk" in changes else pd.Series(False, changes.index)
    return np.asarray(reviewed & ~trunk.fillna(False).to_numpy(dtype=bool), dtype=bool)


def _review_shares(prepared: Prepared) -> pd.DataFrame:
    """Per outcome row (index): the share of its batch's counted changes reviewed."""
    batches = prepared.batches
    reviewed = reviewed_changes(prepared.changes)[batches["change"].to_numpy(np.int64)]
    shares = pd.Series(reviewed.astype(float)).groupby(batches["outcome"].to_numpy(np.int64)).mean()
    return pd.DataFrame({"reviewed_share": shares})


def _built_from(prepared: Prepared, deployed: pd.DataFrame) -> pd.Series:
    """Per deployment (``deployed``: source, repo, sha): the commit it was built from when the
    deployed commit is no change's merge commit (a release or version-bump commit): its first
    parent; missing otherwise."""
    ds = prepared.dataset
    merges = ds.changes[["source", "repo", "merge_sha"]].dropna().astype(str).drop_duplicates()
    merges = merges.rename(columns={"merge_sha": "sha"}).assign(_merge=True)
    commits = ds.commits[["source", "repo", "sha"]]
    parents = commits.astype(str).assign(_parent=first_parents(ds.commits["parents"]).to_numpy())
    parents = parents.drop_duplicates(["source", "repo", "sha"])
    found = (
        deployed[["source", "repo", "sha"]]
        .astype(str)
        .merge(merges, on=["source", "repo", "sha"], how="left")
    )
    found = found.merge(parents, on=["source", "repo", "sha"], how="left")
    own = found["_merge"].fillna(False).to_numpy(dtype=bool)
    parent = pd.Series(found["_parent"].to_numpy(object), index=deployed.index, dtype="string")
    return parent.mask(own)


def first_parents(parents: pd.Series) -> pd.Series:
    """Each commit's first parent (missing for none), read in arrow from Arrow-backed or
    Python lists alike."""
    heads = pc.list_slice(list_array(parents), 0, 1)
    at = np.full(len(parents), -1, dtype=np.int64)
    at[pc.list_parent_indices(heads).to_numpy(zero_copy_only=False)] = np.arange(
        len(pc.list_flatten(heads))
    )
    first = pc.list_flatten(heads).take(pa.array(at, mask=at < 0))
    return pd.Series(pd.array(first, dtype="string"), index=parents.index)


def _test_flags(prepared: Prepared, deployed: pd.DataFrame) -> pd.DataFrame:
    """Per deployment (``deployed``'s index): ``tests_passed`` and ``tests_failed_ignored``.

    The runs that count are those of the same source and repo on the deployed commit that
    finished before the deployment was created (its own run, which finishes later, is left
    out); when there is none, those on the commit it was built from (:func:`_built_from`). Per
    workflow name the latest run counts (highest attempt, then latest created)."""
    runs = prepared.dataset.test_runs
    index = deployed.index
    result = pd.DataFrame(
        {
            "tests_passed": pd.Series(pd.NA, index=index, dtype="boolean"),
            "tests_failed_ignored": pd.Series(pd.NA, index=index, dtype="boolean"),
        }
    )
    if runs.empty:
        return result
    pairs = runs[["source", "repo"]].astype(str).drop_duplicates().assign(_ci=True)
    with_ci = (
        deployed[["source", "repo"]]
        .astype(str)
        .merge(pairs, on=["source", "repo"], how="left")["_ci"]
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    candidates = pd.concat(
        [
            pd.DataFrame(
                {
                    "_row": np.arange(len(deployed)),
                    "_level": level,
                    "source": deployed["source"].astype(str).to_numpy(),
                    "repo": deployed["repo"].astype(str).to_numpy(),
                    "sha": sha.astype("string").to_numpy(),
                    "_started": _timestamps(deployed["created_at"]).to_numpy(),
                }
            )
            for level, sha in ((0, deployed["sha"]), (1, _built_from(prepared, deployed)))
        ],
        ignore_index=True,
    ).dropna(subset=["sha"])
    finished = runs.loc[runs["finished_at"].notna().to_numpy(dtype=bool)]
    usable = pd.DataFrame(
        {
            "source": finished["source"].astype(str).to_numpy(),
            "repo": finished["repo"].astype(str).to_numpy(),
            "sha": finished["sha"].astype("string").to_numpy(),
            "_name": finished["name"].astype("string").fillna("").to_numpy(),
            "_conclusion": finished["conclusion"].astype("string").str.lower().to_numpy(),
            "_attempt": finished["attempt"].astype("Float64").fillna(1).to_numpy(dtype=float),
            "_created": _timestamps(finished["created_at"]).to_numpy(),
            "_finished": _timestamps(finished["finished_at"]).to_numpy(),
        }
    )
    matched = candidates.merge(usable, on=["source", "repo", "sha"])
    matched = matched.loc[(matched["_finished"] < matched["_started"]).to_numpy(dtype=bool)]
    # The deployed commit's own runs if it has any, else the commit it was built from.
    nearest = matched.groupby("_row")["_level"].transform("min")
    matched = matched.loc[(matched["_level"] == nearest).to_numpy(dtype=bool)]
    latest = matched.sort_values(["_row", "_name", "_attempt", "_created", "_finished"])
    latest = latest.drop_duplicates(["_row", "_name"], keep="last")
    conclusion = latest["_conclusion"]
    per = (
        latest.assign(
            _passing=conclusion.isin(PASSING).fillna(False).to_numpy(dtype=bool),
            _success=(conclusion == "success").fillna(False).to_numpy(dtype=bool),
            _red=conclusion.isin(RED).fillna(False).to_numpy(dtype=bool),
        )
        .groupby("_row")
        .agg(passing=("_passing", "all"), success=("_success", "any"), red=("_red", "any"))
        .reindex(np.arange(len(deployed)))
    )
    passed = (per["passing"] & per["success"]).fillna(False).to_numpy(dtype=bool)
    red = per["red"].fillna(False).to_numpy(dtype=bool)
    result["tests_passed"] = pd.array(np.where(with_ci, passed, False), dtype="boolean")
    result["tests_failed_ignored"] = pd.array(np.where(with_ci, red, False), dtype="boolean")
    result.loc[~with_ci, ["tests_passed", "tests_failed_ignored"]] = pd.NA
    return result


def deployment_controls(table: pd.DataFrame, prepared: Prepared) -> pd.DataFrame:
    """``table`` (one row per production deployment, ``deployment_table``'s) with the controls
    each went through appended (``CONTROL_DEPLOYMENT_COLUMNS``): nullable, NA where the data
    cannot tell."""
    ds = prepared.dataset
    outcomes = prepared.outcomes
    rows = prepared.outcome_deployment
    deployed = ds.deployments.iloc[rows].reset_index(drop=True)
    per = pd.DataFrame({"_key": _key(outcomes[_KEY]).to_numpy()})
    shares = _review_shares(prepared).reindex(np.arange(len(outcomes)))
    per["reviewed_share"] = shares["reviewed_share"].to_numpy(dtype=float)
    tests = _test_flags(prepared, deployed)
    per["tests_passed"] = tests["tests_passed"].to_numpy(object)
    per["tests_failed_ignored"] = tests["tests_failed_ignored"].to_numpy(object)
    automated = automated_flags(
        deployed["started_by"], deployed["creator"], prepared.options.bot_pattern
    )
    per["automated"] = automated.to_numpy(object)
    found = per.drop_duplicates("_key").set_index("_key")
    keys = _key(table)
    out = table.copy()
    share = keys.map(found["reviewed_share"]).astype(float)
    out["reviewed_share"] = share.to_numpy()
    out["fully_reviewed"] = (share >= 1.0).astype("boolean").mask(share.isna()).to_numpy()
    for name in ("tests_passed", "tests_failed_ignored", "automated"):
        out[name] = pd.array(keys.map(found[name]).to_numpy(object), dtype="boolean")
    if ds.change_requests.empty:
        out["change_type"] = pd.array([pd.NA] * len(out), dtype="string")
        out["cab_approved"] = pd.array([pd.NA] * len(out), dtype="boolean")
    else:
        typed = typed_deployments(table, prepared)
        out["change_type"] = pd.array(typed["change_type"].to_numpy(object), dtype="string")
        out["cab_approved"] = pd.array(typed["cab"].to_numpy(dtype=bool), dtype="boolean")
    return out[[*table.columns, *CONTROL_DEPLOYMENT_COLUMNS]]


# -- one row per control ---------------------------------------------------------------------


def _lead_times(table: pd.DataFrame, prepared: Prepared, strata: str) -> pd.DataFrame:
    """Every deployed change with a lead time (hours), with its deployment's controls."""
    changes = change_waits(prepared, strata)
    keys = _key(prepared.dataset.deployments).to_numpy(object)[
        changes["deployment"].to_numpy(np.int64)
    ]
    by_key = table.assign(_key=_key(table)).drop_duplicates("_key").set_index("_key")
    lead = pd.DataFrame({"lead_h": changes["lead_h"].to_numpy(dtype=float)})
    for control in CONTROLS:
        lead[control] = pd.array(pd.Series(keys).map(by_key[control]).to_numpy(object), "boolean")
    return lead


def _median(values: pd.Series) -> float | None:
    return None if values.empty else st.finite(values.median())


def _exact_adjusted(frame: pd.DataFrame, control: str, others: list[str], unit: str) -> Estimate:
    """The exact conditional test of ``control`` with strata = stratum x the other controls'
    values: what the model says when there are too few failures to fit it."""
    cells = frame["stratum"].astype(str)
    for other in others:
        cells = cells + "|" + frame[other].astype(str)
    tables, _ = st.stratified_tables(frame.assign(_cell=cells.to_numpy()), control, by="_cell")
    estimate = st.exact_stratified(tables, unit)
    test = EXACT_ADJUSTED.replace("repo", unit) if others else estimate.test
    note = estimate.note
    if not tables:
        note = f"within {unit}s it never varies apart from the other controls"
    return replace(estimate, test=test, note=note)


def _varies(frame: pd.DataFrame, control: str) -> bool:
    """Some stratum holds deployments both with and without ``control``."""
    if frame.empty:
        return False
    kinds = frame.groupby("stratum", observed=True)[control].nunique()
    return bool((kinds > 1).any())


def _model(
    table: pd.DataFrame, candidates: list[str], unit: str
) -> tuple[dict[str, Estimate], list[str]]:
    """Every control that varies within a repo, in one model stratified by repo: statsmodels'
    conditional logistic regression with enough failures (``EVENTS_PER_CONTROL`` per control)
    and a clean fit, else per control the exact conditional test stratified by repo and the
    other controls. Rows with any control unknown are left out. (estimates, controls in it)."""
    chosen = list(candidates)
    frame = table
    for _ in range(len(CONTROLS) + 1):
        known = np.ones(len(table), dtype=bool)
        for control in chosen:
            known &= table[control].notna().to_numpy(dtype=bool)
        frame = table.loc[known, ["stratum", "failed", *chosen]]
        frame = frame.astype({control: bool for control in chosen})
        varying = [control for control in chosen if _varies(frame, control)]
        if varying == chosen:
            break
        chosen = varying
    if not chosen:
        return {}, []
    failed = frame["failed"].to_numpy(dtype=bool)
    per = frame.groupby("stratum", observed=True)["failed"].agg(["sum", "size"])
    informative = per.loc[(per["sum"] > 0) & (per["sum"] < per["size"])]
    events = int(np.minimum(informative["sum"], informative["size"] - informative["sum"]).sum())
    exact = {
        control: _exact_adjusted(frame, control, [c for c in chosen if c != control], unit)
        for control in chosen
    }
    separated = any(
        item.estimate is None or item.estimate == 0 or np.isinf(item.estimate)
        for item in exact.values()
    )
    if events >= EVENTS_PER_CONTROL * len(chosen) and not separated:
        design = frame[chosen].astype(float)
        fitted, _ = st.stratified_logit(failed, design, frame["stratum"], unit)
        if fitted:
            return fitted, chosen
    return exact, chosen


def _verdict(estimate: Estimate | None) -> str:
    if estimate is None or estimate.estimate is None:
        return CANNOT
    side = words.significant(estimate, 1.0)
    return FEWER if side < 0 else MORE if side > 0 else UNCLEAR


def _plain(row: dict[str, object], wording: Wording, unit: str, held: bool) -> str:
    """The row in plain words: the counts first, then what the within (or model) comparison
    shows (``held``: the model held the other controls fixed), then the lead times."""
    having, lacking = wording.having, wording.lacking
    with_n, without_n = int(row["with_deployments"]), int(row["without_deployments"])  # type: ignore[call-overload]
    unknown = int(row["unknown_deployments"])  # type: ignore[call-overload]
    if with_n + without_n == 0:
        return (
            f"{wording.label}: no deployment shows whether it applied ({wording.missing}), so "
            "the data cannot tell whether it catches problems."
        )
    counts = (
        f"{wording.label}: {row['with_failures']} of {with_n} {having} failed against "
        f"{row['without_failures']} of {without_n} {lacking}"
    )
    if not with_n or not without_n:
        side = "had it" if not without_n else "lacked it"
        text = (
            f"{counts}; every deployment whose record shows it {side}, so there is nothing to "
            "compare with and the data cannot tell whether it catches problems"
        )
    elif not row["strata_both_ways"]:
        text = (
            f"{counts}; but it never varies within a {unit}: every deployment of each {unit} "
            f"either had it or did not, so {unit}s, not the control, are compared, and the data "
            "cannot tell whether it catches problems"
        )
    else:
        scope = f"within {unit}s, with the other controls held fixed" if held else f"within {unit}s"
        verdict = row["verdict"]
        if verdict == FEWER:
            finding = f"{scope}, {having} failed less often, by more than chance would explain"
        elif verdict == MORE:
            finding = f"{scope}, {having} failed more often, by more than chance would explain"
        elif verdict == UNCLEAR:
            finding = f"{scope}, no clear difference: it could be chance"
        else:
            finding = (
                f"{scope}, it cannot be told apart from the other controls (they always went "
                "together), so the data cannot tell"
            )
        text = f"{counts}; {finding}"
    lead_with, lead_without = row["median_lead_time_with_h"], row["median_lead_time_without_h"]
    if lead_with is not None and lead_without is not None and with_n and without_n:
        text += (
            f". Their changes reached production in a median {words.hours(lead_with)} "  # type: ignore[arg-type]
            f"against {words.hours(lead_without)}"  # type: ignore[arg-type]
        )
    if unknown:
        text += f" ({unknown} deployments are left out: {wording.missing})"
    return text + "."


def controls_table(table: pd.DataFrame, prepared: Prepared, strata: str, unit: str) -> pd.DataFrame:
    """One row per control in ``CONTROLS`` (``CONTROLS_COLUMNS``) from the deployment table
    with its controls (:func:`deployment_controls`); no rows without production deployments
    (there is nothing to compare)."""
    if table.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in CONTROLS_COLUMNS})
    lead = _lead_times(table, prepared, strata)
    shapes: dict[str, dict[str, object]] = {}
    estimates: dict[str, Estimate | None] = {}
    candidates = []
    for control in CONTROLS:
        flag = table[control]
        known = table.loc[flag.notna().to_numpy(dtype=bool)]
        having = known[control].to_numpy(dtype=bool)
        failed = known["failed"].to_numpy(dtype=bool)
        kinds = known.groupby("stratum", observed=True)[control].transform("nunique")
        mixed = known.loc[(kinds > 1).to_numpy(dtype=bool)].astype({control: bool})
        both = int(mixed["stratum"].nunique())
        mixed_having = mixed[control].to_numpy(dtype=bool)
        mixed_failed = mixed["failed"].to_numpy(dtype=bool)
        estimates[control] = st.within_strata(mixed, control, unit) if both else None
        if both:
            candidates.append(control)
        counts = np.array(
            [having.sum(), (having & failed).sum(), (~having).sum(), (~having & failed).sum()]
        )
        low, high = st.wilson(counts[[1, 3]], counts[[0, 2]])
        leads = lead.loc[lead[control].notna().to_numpy(dtype=bool)]
        on = leads[control].to_numpy(dtype=bool)
        shapes[control] = {
            "control": control,
            "label": WORDING[control].label,
            "with_deployments": int(counts[0]),
            "with_failures": int(counts[1]),
            "with_rate": counts[1] / counts[0] if counts[0] else None,
            "with_rate_low": st.finite(low[0]),
            "with_rate_high": st.finite(high[0]),
            "without_deployments": int(counts[2]),
            "without_failures": int(counts[3]),
            "without_rate": counts[3] / counts[2] if counts[2] else None,
            "without_rate_low": st.finite(low[1]),
            "without_rate_high": st.finite(high[1]),
            "unknown_deployments": int(len(table) - len(known)),
            "strata_both_ways": both,
            "within_with_deployments": int(mixed_having.sum()),
            "within_with_failures": int((mixed_having & mixed_failed).sum()),
            "within_without_deployments": int((~mixed_having).sum()),
            "within_without_failures": int((~mixed_having & mixed_failed).sum()),
            "median_lead_time_with_h": _median(leads.loc[on, "lead_h"]),
            "median_lead_time_without_h": _median(leads.loc[~on, "lead_h"]),
        }
    adjusted, in_model = _model(table, candidates, unit)
    records = []
    for control in CONTROLS:
        row = shapes[control]
        within = estimates[control]
        model = adjusted.get(control)
        for prefix, item in (("within", within), ("adjusted", model)):
            row[f"{prefix}_odds_ratio"] = None if item is None else item.estimate
            row[f"{prefix}_low"] = None if item is None else item.ci_low
            row[f"{prefix}_high"] = None if item is None else item.ci_high
            row[f"{prefix}_p"] = None if item is None else item.p_value
            row[f"{prefix}_test"] = None if item is None else item.test
        leading = model if control in in_model else within
        row["verdict"] = _verdict(leading) if row["strata_both_ways"] else CANNOT
        row["plain"] = _plain(
            row, WORDING[control], unit, control in in_model and len(in_model) > 1
        )
        records.append(row)
    return pd.DataFrame.from_records(records, columns=list(CONTROLS_COLUMNS))


def control_caveats(unit: str) -> tuple[str, ...]:
    """What a comparison of controls can and cannot show, whatever the numbers."""
    return (
        "This is observational data, not an experiment: it shows which controls go with fewer "
        "failures, not that a control caused them.",
        "Controls are applied on purpose, and often to the riskiest changes (a change-board "
        "review for a big migration, a hand-started deployment for a delicate fix), so a "
        "control can look worse than it is because of the changes it is given.",
        f"A control that never varies within a {unit} (each {unit} always or never uses it) "
        f"cannot be judged: comparing {unit}s would compare everything else they do "
        "differently too.",
    )


def ranked_controls(controls: pd.DataFrame) -> pd.DataFrame:
    """The controls, what the data can show first: a clear within-repo effect (fewer or more
    failures), then no clear difference, then cannot tell; within each, the smaller p-value
    behind the verdict first (the all-controls model's, else the within-repo one), then the
    order of ``CONTROLS``. The report and :func:`controls_verdict` both read this order."""
    if controls.empty:
        return controls

    def numbers(name: str) -> pd.Series:
        values = controls[name] if name in controls else pd.Series(None, index=controls.index)
        return pd.to_numeric(values, errors="coerce").astype("float64")

    keys = pd.DataFrame(
        {
            "rank": controls["verdict"].map({FEWER: 0, MORE: 0, UNCLEAR: 1}).fillna(2),
            "p": numbers("adjusted_p").fillna(numbers("within_p")).fillna(np.inf),
            "order": controls["control"]
            .map({name: index for index, name in enumerate(CONTROLS)})
            .fillna(len(CONTROLS)),
        }
    )
    return controls.loc[keys.sort_values(["rank", "p", "order"], kind="stable").index]


def _within_counts(row: pd.Series, unit: str) -> str:
    """ "10 of 293 fully reviewed deployments failed against 12 of 160 deployments with an
    unreviewed change in the 1 repo that deploys both ways" """
    wording = WORDING[str(row["control"])]
    places = int(row["strata_both_ways"])
    where = (
        f"in the {unit} that deploys both ways"
        if places == 1
        else f"in the {places} {unit}s that deploy both ways"
    )
    return (
        f"{int(row['within_with_failures'])} of {int(row['within_with_deployments'])} "
        f"{wording.having} failed against {int(row['within_without_failures'])} of "
        f"{int(row['within_without_deployments'])} {wording.lacking} {where}"
    )


def _lower(label: str) -> str:
    return label if label.startswith("CAB") else label[:1].lower() + label[1:]


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _summary(ranked: pd.DataFrame, unit: str) -> tuple[str, ...]:
    """The sentence a board reads first, with counts a person can check (those of the control
    the data says most about, in the {unit}s where it varies), then the others in one line."""
    clear = ranked.loc[ranked["verdict"].isin([FEWER, MORE])]
    unclear = ranked.loc[ranked["verdict"] == UNCLEAR]
    if not clear.empty:
        top = clear.iloc[0]
        side = "less" if top["verdict"] == FEWER else "more"
        first = (
            f"Comparing like with like within each {unit}, "
            f"{WORDING[str(top['control'])].having} failed {side} often, by more than chance "
            f"would explain: {_within_counts(top, unit)}."
        )
    elif not unclear.empty:
        top = unclear.iloc[0]
        first = (
            f"Comparing like with like within each {unit}, no control went with clearly fewer "
            f"failures; {_lower(str(top['label']))} came closest: {_within_counts(top, unit)}, "
            "which could be chance."
        )
    else:
        return (
            f"The data cannot tell which controls catch problems: no control varies within a "
            f"{unit} (each {unit} always or never uses it), so only {unit}s could be compared.",
        )
    rest = ranked.loc[ranked["control"] != top["control"]]
    parts = []
    for verdict, words_for in (
        (FEWER, "went with fewer failures too"),
        (MORE, "went with more failures"),
        (UNCLEAR, "showed no clear difference"),
        (CANNOT, "the data cannot tell"),
    ):
        names = [_lower(str(name)) for name in rest.loc[rest["verdict"] == verdict, "label"]]
        if not names:
            continue
        if verdict == CANNOT:
            parts.append(f"for {_listed(names)} {words_for}")
        else:
            parts.append(f"{_listed(names)} {words_for}")
    if not parts:
        return (first,)
    second = "; ".join(parts) + "."
    return first, second[:1].upper() + second[1:]


def controls_verdict(controls: pd.DataFrame, unit: str) -> tuple[str, ...]:
    """The controls in plain words, most trustworthy first: a summary a board reads (with
    counts), then the controls with a clear within-``unit`` effect, those with no clear
    difference, those the data cannot judge, and the caveats (:func:`control_caveats`)."""
    if controls.empty:
        return ()
    ranked = ranked_controls(controls)
    summary = _summary(ranked, unit)
    return tuple(dict.fromkeys([*summary, *ranked["plain"].astype(str), *control_caveats(unit)]))


__all__ = [
    "CANNOT",
    "EVENTS_PER_CONTROL",
    "EXACT_ADJUSTED",
    "FEWER",
    "MORE",
    "UNCLEAR",
    "WORDING",
    "control_caveats",
    "controls_table",
    "controls_verdict",
    "deployment_controls",
    "ranked_controls",
    "reviewed_changes",
]
