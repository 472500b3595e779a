"""The statistics, each a thin call into scipy or statsmodels on a small table.

No formula is written out by hand: Wilson intervals (statsmodels), Fisher's exact test and the
conditional odds ratio with its exact interval (scipy), Mantel-Haenszel over repos
(statsmodels ``StratifiedTable``), logistic regression (statsmodels ``Logit``), Mann-Whitney
and Spearman (scipy), percentile-bootstrap intervals for medians (scipy, fixed seed).
Library warnings are caught and returned as notes; they never reach the user's terminal.
scipy and statsmodels are imported inside the functions: they take seconds to import, and
``import deliverypulse`` (say, for a nightly collect) should not pay for an analysis it skips.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from deliverypulse.analysis.model import ACROSS, GROUP_COLUMNS, WITHIN, Estimate

FloatArray = npt.NDArray[np.float64]
#: Confidence level of every interval, and the significance level of every statement.
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
#: Resamples and seed of the bootstrap intervals (fixed, so a rerun gives the same numbers).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240101
#: Resamples held in memory at once (keeps a bootstrap over 100,000 deployments small).
BOOTSTRAP_BATCH = 100

FISHER = "Fisher's exact"
MANTEL_HAENSZEL = "Mantel-Haenszel (stratified by repo)"
EXACT = "exact conditional (stratified by repo)"
#: Below this expected count in any cell of any stratum, the exact conditional test is used.
MIN_EXPECTED = 5.0
LOGIT_REPO = "logistic regression (repo as covariate)"
LOGIT_CRUDE = "logistic regression (no covariate)"
MANN_WHITNEY = "Mann-Whitney U"
SPEARMAN = "Spearman rank correlation"


@contextmanager
def caught(notes: list[str]) -> Iterator[None]:
    """Run quietly; append each distinct library warning to ``notes``."""
    with warnings.catch_warnings(record=True) as seen, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        yield
    for item in seen:
        text = f"{item.category.__name__}: {item.message}"
        if text not in notes:
            notes.append(text)


def finite(value: Any) -> float | None:
    """A float, or None for missing, NaN and infinite values."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def wilson(failures: Any, deployments: Any) -> tuple[FloatArray, FloatArray]:
    """Wilson 95 % interval of failures/deployments, element-wise; NaN where there are none."""
    count = np.asarray(failures, dtype=float)
    nobs = np.asarray(deployments, dtype=float)
    from statsmodels.stats.proportion import proportion_confint

    safe = np.where(nobs > 0, nobs, 1.0)
    with caught([]):
        low, high = proportion_confint(count, safe, alpha=ALPHA, method="wilson")
    empty = nobs <= 0
    low_array = np.where(empty, np.nan, np.asarray(low, dtype=float))
    high_array = np.where(empty, np.nan, np.asarray(high, dtype=float))
    return low_array, high_array


def group_table(
    frame: pd.DataFrame, column: str, order: list[Any], labels: list[str]
) -> pd.DataFrame:
    """One row per group of ``column`` (in ``order``, named by ``labels``): deployments,
    failures, change failure rate with its Wilson interval, median lead time and recovery."""
    rows = frame.loc[frame[column].notna()]
    grouped = rows.groupby(rows[column].astype(object), sort=False, observed=True)
    table = grouped.agg(
        deployments=("failed", "size"),
        failures=("failed", "sum"),
        median_lead_time_h=("lead_time_h", "median"),
        median_recovery_h=("recovery_h", "median"),
    ).reindex(order)
    table["deployments"] = table["deployments"].fillna(0).astype("int64")
    table["failures"] = table["failures"].fillna(0).astype("int64")
    nobs = table["deployments"].to_numpy(dtype=float)
    count = table["failures"].to_numpy(dtype=float)
    table["change_failure_rate"] = np.where(nobs > 0, count / np.where(nobs > 0, nobs, 1), np.nan)
    table["cfr_low"], table["cfr_high"] = wilson(count, nobs)
    table["group"] = labels
    return table.reset_index(drop=True)[list(GROUP_COLUMNS)]


def two_by_two(frame: pd.DataFrame, column: str) -> npt.NDArray[np.int64]:
    """[[exposed & failed, exposed & not failed], [unexposed & failed, unexposed & not]]."""
    exposed = frame[column].to_numpy(dtype=bool)
    failed = frame["failed"].to_numpy(dtype=bool)
    return np.array(
        [
            [int((exposed & failed).sum()), int((exposed & ~failed).sum())],
            [int((~exposed & failed).sum()), int((~exposed & ~failed).sum())],
        ],
        dtype=np.int64,
    )


def fisher(table: npt.NDArray[np.int64], unit: str = "repo") -> Estimate:
    """Fisher's exact test and the conditional maximum-likelihood odds ratio with its exact
    95 % interval (scipy), which agree with each other, unlike the sample odds ratio: the crude
    comparison over every deployment, strata mixed."""
    effect = "odds ratio"
    scope = ACROSS.format(unit=unit)
    if (table.sum(axis=1) == 0).any():
        return Estimate(effect, None, None, None, FISHER, None, "one group is empty", scope)
    from scipy import stats
    from scipy.stats.contingency import odds_ratio

    notes: list[str] = []
    with caught(notes):
        p_value = stats.fisher_exact(table, alternative="two-sided").pvalue
        result = odds_ratio(table, kind="conditional")
        interval = result.confidence_interval(confidence_level=CONFIDENCE)
    return Estimate(
        effect,
        finite(result.statistic),
        finite(interval.low),
        finite(interval.high),
        FISHER,
        finite(p_value),
        "; ".join(notes),
        scope,
    )


def stratified_tables(
    frame: pd.DataFrame, column: str, by: str = "stratum"
) -> tuple[list[npt.NDArray[np.int64]], int]:
    """The 2x2 table of each stratum (``by``: the repo, or a team) that can inform a within
    comparison (both groups and both outcomes present), and how many deployments they hold."""
    if frame.empty:
        return [], 0
    counts = (
        frame.assign(_exposed=frame[column].to_numpy(dtype=bool), _failed=frame["failed"])
        .groupby([by, "_exposed", "_failed"], observed=True)
        .size()
        .unstack(["_exposed", "_failed"], fill_value=0)
    )
    cells = [(True, True), (True, False), (False, True), (False, False)]
    counts = counts.reindex(columns=pd.MultiIndex.from_tuples(cells), fill_value=0)
    values = counts.to_numpy(dtype=np.int64).reshape(-1, 2, 2)
    informative = (values.sum(axis=2) > 0).all(axis=1) & (values.sum(axis=1) > 0).all(axis=1)
    kept = values[informative]
    return list(kept), int(kept.sum())


def smallest_expected(tables: list[npt.NDArray[np.int64]]) -> float:
    """The smallest expected cell count (row total x column total / n) over the strata's
    tables under no association; infinity when there is no table."""
    smallest = math.inf
    for table in tables:
        rows, columns = table.sum(axis=1), table.sum(axis=0)
        expected = np.outer(rows, columns) / max(int(table.sum()), 1)
        smallest = min(smallest, float(expected.min()))
    return smallest


ODDS_RATIO = "odds ratio"


def _no_strata(test: str, scope: str, unit: str) -> Estimate:
    """No estimate: no stratum holds both groups and both outcomes."""
    note = f"no {unit} has both groups and both outcomes"
    return Estimate(ODDS_RATIO, None, None, None, test, None, note, scope)


def mantel_haenszel(tables: list[npt.NDArray[np.int64]], unit: str = "repo") -> Estimate:
    """Mantel-Haenszel pooled odds ratio across strata, its 95 % interval (Robins-Breslow-
    Greenland) and the Cochran-Mantel-Haenszel test that it is 1 (statsmodels; no continuity
    correction). Only strata with both groups and both outcomes can compare within."""
    test, scope = MANTEL_HAENSZEL.replace("repo", unit), WITHIN.format(unit=unit)
    if not tables:
        return _no_strata(test, scope, unit)
    from statsmodels.stats.contingency_tables import StratifiedTable

    notes: list[str] = []
    with caught(notes):
        stratified = StratifiedTable(tables)
        pooled = stratified.oddsratio_pooled
        low, high = stratified.oddsratio_pooled_confint(alpha=ALPHA)
        p_value = stratified.test_null_odds(correction=False).pvalue
    return Estimate(
        ODDS_RATIO,
        finite(pooled),
        finite(low),
        finite(high),
        test,
        finite(p_value),
        "; ".join(notes),
        scope,
    )


def exact_stratified(tables: list[npt.NDArray[np.int64]], unit: str = "repo") -> Estimate:
    """The exact conditional test over the strata, with the conditional maximum-likelihood odds
    ratio and its exact interval (R's ``mantelhaen.test(exact = TRUE)``; one method for all
    three). An odds ratio or upper bound at infinity stays infinite (the data set no bound)."""
    test, scope = EXACT.replace("repo", unit), WITHIN.format(unit=unit)
    if not tables:
        return _no_strata(test, scope, unit)
    from deliverypulse.analysis.exact import exact_conditional

    notes: list[str] = []
    with caught(notes):
        result = exact_conditional([table.tolist() for table in tables], CONFIDENCE)
    if math.isinf(result.odds_ratio):
        notes.append("the estimate is unbounded: every failure in the compared strata was gated")
    elif result.odds_ratio == 0:
        notes.append("the estimate is 0: no failure in the compared strata was gated")
    return Estimate(
        ODDS_RATIO,
        float(result.odds_ratio),
        float(result.ci_low),
        float(result.ci_high),
        test,
        finite(result.p_value),
        "; ".join(notes),
        scope,
    )


def within_strata(frame: pd.DataFrame, column: str, unit: str = "repo") -> Estimate:
    """The within-stratum odds ratio of failure for ``column`` (gated) against not: the
    Mantel-Haenszel estimate and test when two or more strata inform it, every one is large (no
    expected cell under 5) and the estimate is defined; else the exact conditional test and
    estimate (with one stratum, that is Fisher's exact test and its conditional odds ratio)."""
    tables, _ = stratified_tables(frame, column)
    if not tables:
        return mantel_haenszel(tables, unit)
    if len(tables) > 1 and smallest_expected(tables) >= MIN_EXPECTED:
        estimate = mantel_haenszel(tables, unit)
        if estimate.estimate is not None and estimate.estimate > 0:
            return estimate
    return exact_stratified(tables, unit)


def _logit_fit(y: FloatArray, design: pd.DataFrame) -> tuple[Any, str]:
    """Fit a logistic model; (result, "") or (None, why it cannot be fitted)."""
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    notes: list[str] = []
    try:
        with caught(notes):
            result = Logit(y, design).fit(disp=0, maxiter=200)
    except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as error:
        return None, f"cannot fit: {error}"
    separated = [note for note in notes if PerfectSeparationWarning.__name__ in note]
    if separated:
        return None, "cannot fit: failure is perfectly predicted (perfect separation)"
    if not result.mle_retvals.get("converged", True):
        return None, "cannot fit: the model did not converge"
    if not np.isfinite(np.asarray(result.bse, dtype=float)).all():
        return None, "cannot fit: the standard errors are not finite"
    return result, "; ".join(notes)


def logit_batch(frame: pd.DataFrame, *, by_repo: bool, unit: str = "repo") -> Estimate:
    """Odds ratio of failure per doubling of the batch (changes), from a logistic model of
    ``failed`` on ``log2(batch_changes)``, with one indicator per repo when ``by_repo``.

    Repos where every deployment failed, or none did, say nothing about batch size within a
    repo (their indicator would run to infinity) and are left out of the repo model.
    """
    test = LOGIT_REPO.replace("repo", unit) if by_repo else LOGIT_CRUDE
    scope = WITHIN.format(unit=unit) if by_repo else ACROSS.format(unit=unit)
    effect = "odds ratio per doubling of batch size"
    rows = frame.loc[(frame["batch_changes"].fillna(0) >= 1).to_numpy(dtype=bool)]
    rows = rows.assign(_stratum=rows["stratum"].astype(str))
    if by_repo:
        share = rows.groupby("_stratum")["failed"].transform("mean")
        rows = rows.loc[((share > 0) & (share < 1)).to_numpy(dtype=bool)]
    failed = rows["failed"].to_numpy(dtype=float)
    size = np.log2(rows["batch_changes"].to_numpy(dtype=float))
    if len(rows) < 3 or failed.min(initial=1) == failed.max(initial=0):
        return Estimate(
            effect, None, None, None, test, None, "cannot fit: no variation in failure", scope
        )
    if size.min() == size.max():
        return Estimate(
            effect, None, None, None, test, None, "cannot fit: one batch size only", scope
        )
    design = pd.DataFrame({"const": 1.0, "log2_batch_changes": size})
    if by_repo and rows["_stratum"].nunique() > 1:
        dummies = pd.get_dummies(rows["_stratum"], prefix="repo", drop_first=True, dtype=float)
        design = pd.concat([design, dummies.set_axis(design.index)], axis=1)
    result, note = _logit_fit(failed, design.reset_index(drop=True))
    if result is None:
        return Estimate(effect, None, None, None, test, None, note, scope)
    coefficient = float(result.params["log2_batch_changes"])
    low, high = (float(v) for v in result.conf_int(alpha=ALPHA).loc["log2_batch_changes"])
    return Estimate(
        effect,
        finite(math.exp(coefficient)),
        finite(math.exp(low)),
        finite(math.exp(high)),
        test,
        finite(result.pvalues["log2_batch_changes"]),
        note,
        scope,
    )


CONDITIONAL_LOGIT = "conditional logistic regression (stratified by repo, all controls together)"
LOGIT_STRATA = "logistic regression with one baseline per repo (all controls together)"
#: statsmodels' ConditionalLogit sums over a stratum's ways to place its failures by a Python
#: recursion as deep as the stratum is long, in time about stratum size x failures (some 2 s
#: at 15,000 over all strata, 20 s at 150,000 on one core): above these sizes the model with
#: one baseline per stratum (Logit) is fitted instead; with strata that large the two give
#: the same estimate (they differ only for small strata, where the conditional fit is used).
CONDITIONAL_MAX_STRATUM = 300
CONDITIONAL_MAX_WORK = 15_000
#: A fitted log odds ratio beyond this (an odds ratio over about 22,000 or under 1/22,000) is
#: a separated fit running off to infinity, not an estimate.
MAX_LOG_ODDS = 10.0


def stratified_logit(
    failed: npt.NDArray[np.bool_], design: pd.DataFrame, strata: pd.Series, unit: str = "repo"
) -> tuple[dict[str, Estimate], str]:
    """Odds ratios of failure for every column of ``design`` (0/1 controls) together, each
    stratum with its own baseline: statsmodels' ConditionalLogit (the conditional likelihood,
    free of the strata's baselines) when the strata are small enough for it, else statsmodels'
    Logit with one indicator per stratum. Strata where every deployment failed, or none did,
    say nothing within a stratum and are left out. ({column: Estimate}, "") on a clean fit, or
    ({}, why not): no convergence, non-finite standard errors, or a separated fit."""
    scope = WITHIN.format(unit=unit)
    names = [str(name) for name in design.columns]
    codes = pd.Series(pd.factorize(strata.astype(str).to_numpy())[0])
    y = np.asarray(failed, dtype=float)
    per = pd.DataFrame({"g": codes, "y": y}).groupby("g")["y"].agg(["sum", "size"])
    informative = per.index[(per["sum"] > 0) & (per["sum"] < per["size"])]
    keep = codes.isin(informative).to_numpy(dtype=bool)
    if not keep.any():
        return {}, f"no {unit} has both failed and successful deployments"
    y, x, g = y[keep], design.loc[keep].to_numpy(dtype=float), codes.to_numpy()[keep]
    per = per.loc[informative]
    small = per["size"].max() <= CONDITIONAL_MAX_STRATUM
    work = float((per["size"] * np.minimum(per["sum"], per["size"] - per["sum"])).sum())
    notes: list[str] = []
    try:
        with caught(notes):
            if small and work <= CONDITIONAL_MAX_WORK:
                from statsmodels.discrete.conditional_models import ConditionalLogit

                test = CONDITIONAL_LOGIT.replace("repo", unit)
                result = ConditionalLogit(y, x, groups=g).fit(
                    method="newton", disp=False, maxiter=100
                )
                params = np.asarray(result.params, dtype=float)
                bse = np.asarray(result.bse, dtype=float)
                pvalues = np.asarray(result.pvalues, dtype=float)
                bounds = np.asarray(result.conf_int(alpha=ALPHA), dtype=float)
            else:
                from statsmodels.discrete.discrete_model import Logit

                test = LOGIT_STRATA.replace("repo", unit)
                dummies = pd.get_dummies(pd.Series(g), dtype=float).to_numpy()
                result = Logit(y, np.column_stack([x, dummies])).fit(disp=0, maxiter=200)
                k = len(names)
                params = np.asarray(result.params, dtype=float)[:k]
                bse = np.asarray(result.bse, dtype=float)[:k]
                pvalues = np.asarray(result.pvalues, dtype=float)[:k]
                bounds = np.asarray(result.conf_int(alpha=ALPHA), dtype=float)[:k]
    except (np.linalg.LinAlgError, ValueError, RecursionError, OverflowError) as error:
        return {}, f"cannot fit: {error}"
    retvals = getattr(result, "__dict__", {}).get("mle_retvals") or {}
    if not retvals.get("converged", True) or any("Convergence" in note for note in notes):
        return {}, "cannot fit: the model did not converge"
    if not (np.isfinite(params).all() and np.isfinite(bse).all()):
        return {}, "cannot fit: the standard errors are not finite"
    if any("Separation" in note for note in notes) or (np.abs(params) > MAX_LOG_ODDS).any():
        return {}, "cannot fit: failure is perfectly predicted (separation)"
    note = "; ".join(notes)
    estimates = {
        name: Estimate(
            "odds ratio",
            finite(math.exp(params[i])),
            finite(math.exp(bounds[i, 0])),
            finite(math.exp(bounds[i, 1])),
            test,
            finite(pvalues[i]),
            note,
            scope,
        )
        for i, name in enumerate(names)
    }
    return estimates, ""


def _bootstrap(
    samples: tuple[FloatArray, ...], statistic: Callable[..., Any]
) -> tuple[float | None, float | None]:
    return bootstrap(samples, statistic)


def bootstrap(
    samples: tuple[FloatArray, ...], statistic: Callable[..., Any], *, paired: bool = False
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``statistic`` (scipy, fixed seed); ``paired``
    resamples the samples' rows together."""
    from scipy import stats

    notes: list[str] = []
    with caught(notes):
        result = stats.bootstrap(
            samples,
            statistic,
            paired=paired,
            vectorized=True,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(BOOTSTRAP_SEED),
            batch=BOOTSTRAP_BATCH,
        )
    interval = result.confidence_interval
    return finite(interval.low), finite(interval.high)


def mann_whitney(first: FloatArray, second: FloatArray) -> float | None:
    """Two-sided Mann-Whitney U p-value; None with fewer than two values on a side."""
    from scipy import stats

    first, second = first[np.isfinite(first)], second[np.isfinite(second)]
    if first.size < 2 or second.size < 2:
        return None
    with caught([]):
        return finite(stats.mannwhitneyu(first, second, alternative="two-sided").pvalue)


def median_difference(first: FloatArray, second: FloatArray) -> Estimate:
    """Difference of medians (first - second) with a bootstrap interval, and Mann-Whitney U."""
    effect = "difference in median (h)"
    first = first[np.isfinite(first)]
    second = second[np.isfinite(second)]
    if first.size < 2 or second.size < 2:
        return Estimate(effect, None, None, None, MANN_WHITNEY, None, "fewer than 2 in a group")

    def difference(x: FloatArray, y: FloatArray, axis: int = -1) -> Any:
        return np.median(x, axis=axis) - np.median(y, axis=axis)

    from scipy import stats

    notes: list[str] = []
    with caught(notes):
        p_value = stats.mannwhitneyu(first, second, alternative="two-sided").pvalue
    low, high = _bootstrap((first, second), difference)
    estimate = float(np.median(first) - np.median(second))
    return Estimate(effect, estimate, low, high, MANN_WHITNEY, finite(p_value), "; ".join(notes))


def rank_correlation(x: FloatArray, y: FloatArray) -> Estimate:
    """Spearman's rank correlation of x and y with its test, and the Fisher-z 95 % interval
    that scipy's ``pearsonr`` gives on the ranks (Spearman's rho is Pearson's r of the ranks;
    the interval is approximate for ranks, and fast on any number of deployments)."""
    from scipy import stats

    effect = "Spearman's rho"
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 4 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return Estimate(effect, None, None, None, SPEARMAN, None, "too few distinct values")
    notes: list[str] = []
    with caught(notes):
        result = stats.spearmanr(x, y)
        interval = stats.pearsonr(stats.rankdata(x), stats.rankdata(y)).confidence_interval(
            confidence_level=CONFIDENCE
        )
    return Estimate(
        effect,
        finite(result.statistic),
        finite(interval.low),
        finite(interval.high),
        SPEARMAN,
        finite(result.pvalue),
        "; ".join(notes),
    )


def median_interval(values: FloatArray) -> Estimate:
    """The median with a bootstrap interval (descriptive; no test)."""
    effect = "median (h)"
    values = values[np.isfinite(values)]
    if values.size < 2:
        return Estimate(effect, None, None, None, "none (descriptive)", None, "fewer than 2 values")

    def median(x: FloatArray, axis: int = -1) -> Any:
        return np.median(x, axis=axis)

    low, high = _bootstrap((values,), median)
    return Estimate(effect, float(np.median(values)), low, high, "none (descriptive)", None)


__all__ = [
    "ALPHA",
    "CONDITIONAL_LOGIT",
    "CONFIDENCE",
    "EXACT",
    "FISHER",
    "LOGIT_CRUDE",
    "LOGIT_REPO",
    "LOGIT_STRATA",
    "MANN_WHITNEY",
    "MANTEL_HAENSZEL",
    "MIN_EXPECTED",
    "SPEARMAN",
    "bootstrap",
    "caught",
    "exact_stratified",
    "finite",
    "fisher",
    "group_table",
    "logit_batch",
    "mann_whitney",
    "mantel_haenszel",
    "median_difference",
    "median_interval",
    "rank_correlation",
    "smallest_expected",
    "stratified_logit",
    "stratified_tables",
    "two_by_two",
    "wilson",
    "within_strata",
]
