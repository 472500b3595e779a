"""The metrics table: every DORA metric per group and period, with its benchmark cluster.

All inputs are prepared once (links, lead times, deployment outcomes), then each metric is a
``groupby`` over integer period numbers, so the cost is a few vectorised passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset, load
from deliverypulse.dora.clusters import classify
from deliverypulse.dora.options import MetricOptions, OptionKeywords
from deliverypulse.dora.periods import (
    AVERAGE_DAYS,
    Period,
    check_period,
    day_start,
    first_day,
    local_day,
    period_days,
    period_index,
)
from deliverypulse.dora.prepared import Prepared, resolve
from deliverypulse.errors import DataError
from deliverypulse.linking import Links

_QUANTILES = {"median": 0.5, "p75": 0.75, "p90": 0.9}
_MISSING_DAY = np.iinfo(np.int64).min

COUNT_COLUMNS = (
    "deployments",
    "deployment_days",
    "deployment_attempts",
    "failed_deployments",
    "rework_deployments",
    "lead_time_count",
    "lead_time_negative",
    "lead_time_incomplete",
    "merge_to_deploy_count",
    "recovery_count",
    "unrecovered",
)


def _groups(prepared: Prepared, by: str | Sequence[str] | None) -> list[str]:
    """The group columns, checked against the deployments table (groups come from the
    deployment that shipped each change)."""
    groups = [] if by is None else [by] if isinstance(by, str) else list(by)
    missing = [name for name in groups if name not in prepared.dataset.deployments.columns]
    if missing:
        hint = (
            "name teams in the service catalogue ([[services]] team = ...) or add the column"
            if missing[0] == "team"
            else "add the column"
        )
        raise DataError(
            f"cannot group by {missing[0]!r}: it is not a column of deployments "
            f"(metrics are grouped by the deployment that shipped each change; {hint} "
            "to the deployments table)",
            table="deployments",
            column=missing[0],
        )
    return groups


def _lead_with(prepared: Prepared, by: list[str]) -> pd.DataFrame:
    """The lead rows with every group column taken from the deployment that shipped them."""
    lead = prepared.lead
    extra = [name for name in by if name not in lead.columns or name not in ("source", "repo")]
    if not extra:
        return lead
    rows = prepared.lead_deployment
    deployments = prepared.dataset.deployments
    return lead.assign(**{name: deployments[name].array.take(rows) for name in extra})


def _hours(values: pd.Series) -> pd.Series:
    """Durations as float hours (missing stays NaN)."""
    micros = values.to_numpy(dtype="timedelta64[us]").astype(np.int64).astype(float)
    micros[values.isna().to_numpy(dtype=bool)] = np.nan
    return pd.Series(micros / 3.6e9, index=values.index)


def _aggregate(
    outcomes: pd.DataFrame,
    lead: pd.DataFrame,
    by: list[str],
    out_key: Any,
    lead_key: Any,
    out_day: Any,
) -> pd.DataFrame:
    """Every count and statistic per (group..., _p)."""
    keys = [*by, "_p"]
    o = outcomes[by].assign(
        _p=out_key,
        _day=out_day,
        _success=outcomes["is_success"].to_numpy(dtype=bool),
        _failed=outcomes["failed"].to_numpy(dtype=bool),
        _rework=outcomes["is_rework"].to_numpy(dtype=bool),
        _recovery=_hours(outcomes["recovery"]).astype(float),
        _unrecovered=(outcomes["failed"] & outcomes["recovery"].isna()).to_numpy(dtype=bool),
    )
    grouped = o.groupby(keys, dropna=False, sort=True)
    table = grouped.agg(
        deployments=("_success", "sum"),
        deployment_attempts=("_success", "size"),
        failed_deployments=("_failed", "sum"),
        rework_deployments=("_rework", "sum"),
        recovery_count=("_recovery", "count"),
        unrecovered=("_unrecovered", "sum"),
    )
    days = o.loc[o["_success"]].drop_duplicates([*keys, "_day"]).groupby(keys, dropna=False)
    table = table.join(days.size().rename("deployment_days"), how="outer")
    recovery = o.loc[o["_recovery"].notna()].groupby(keys, dropna=False)["_recovery"]
    table = table.join(_quantiles(recovery, "recovery", ("median", "p90")), how="outer")

    spans = {
        name: _hours(lead[name]).astype(float)
        for name in ("lead_time", "merge_to_deploy", "coding", "pickup", "review", "deploy")
    }
    frame = lead[by].assign(_p=lead_key, **{f"_{k}": v for k, v in spans.items()})
    lead_hours = frame["_lead_time"]
    frame["_negative"] = (lead_hours < 0).to_numpy(dtype=bool)
    frame["_incomplete"] = lead_hours.isna().to_numpy(dtype=bool)
    lead_groups = frame.groupby(keys, dropna=False, sort=True)
    table = table.join(
        lead_groups.agg(
            lead_time_negative=("_negative", "sum"), lead_time_incomplete=("_incomplete", "sum")
        ),
        how="outer",
    )
    # The groups are found once (strings hashed once); each span is then grouped by an
    # integer code, and its result indexed back by the groups' keys.
    code = lead_groups.ngroup().to_numpy(np.int64)
    group_keys = lead_groups.size().index
    for name in spans:
        values = frame[f"_{name}"].to_numpy(dtype=float)
        kept = values >= 0
        valid = pd.Series(values[kept]).groupby(code[kept])
        stats = (
            ("median", "p75", "p90") if name in ("lead_time", "merge_to_deploy") else ("median",)
        )
        found = _quantiles(valid, name, stats)
        found.index = group_keys[found.index.to_numpy(np.int64)]
        table = table.join(found, how="outer")
        if name in ("lead_time", "merge_to_deploy"):
            counts = valid.size().rename(f"{name}_count")
            counts.index = group_keys[counts.index.to_numpy(np.int64)]
            table = table.join(counts, how="outer")
    return table


def _quantiles(grouped: Any, name: str, stats: Sequence[str]) -> pd.DataFrame:
    """Linear-interpolation percentiles (numpy's default) of each group."""
    # One call for every percentile: the groups are found and sorted once, not per stat.
    levels = [_QUANTILES[stat] for stat in stats]
    found = grouped.quantile(levels)
    if found.empty:  # no groups: one empty column per stat, indexed like the groups
        return pd.DataFrame(
            {f"{name}_{stat}_hours": grouped.quantile(_QUANTILES[stat]) for stat in stats}
        )
    columns = {
        f"{name}_{stat}_hours": found.xs(level, level=-1)
        for stat, level in zip(stats, levels, strict=True)
    }
    return pd.DataFrame(columns)


def _grid(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Every period between each group's first and last, so quiet periods show as zeros."""
    if table.empty:
        return table
    index = table.index.to_frame(index=False)
    if by:
        group = index.groupby(by, dropna=False, sort=True)["_p"]
        bounds = pd.concat([group.min().rename("lo"), group.max().rename("hi")], axis=1)
        bounds = bounds.reset_index()
    else:
        bounds = pd.DataFrame({"lo": [index["_p"].min()], "hi": [index["_p"].max()]})
    sizes = (bounds["hi"] - bounds["lo"] + 1).to_numpy(dtype=np.int64)
    repeated = bounds.loc[bounds.index.repeat(sizes)].reset_index(drop=True)
    offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    repeated["_p"] = repeated["lo"].to_numpy(dtype=np.int64) + offsets
    full = (
        pd.MultiIndex.from_frame(repeated[[*by, "_p"]])
        if by
        else pd.Index(repeated["_p"].to_numpy(), name="_p")
    )
    return table.reindex(full)


def _finish(table: pd.DataFrame, benchmarks: str, days: Any) -> pd.DataFrame:
    """Counts as integers, rates per day of ``days`` (a period's average length, or the days of
    a summary's range), and the DORA cluster of each rate."""
    for name in COUNT_COLUMNS:
        table[name] = table[name].fillna(0).astype("Int64")
    days = pd.Series(days, index=table.index, dtype=float)
    table["deployments_per_day"] = table["deployments"].astype(float) / days
    table["deployment_days_per_week"] = table["deployment_days"].astype(float) * 7 / days
    attempts = table["deployment_attempts"].astype(float).replace(0, np.nan)
    table["change_failure_rate"] = table["failed_deployments"].astype(float) / attempts
    table["rework_rate"] = table["rework_deployments"].astype(float) / attempts
    table["deployment_frequency_cluster"] = classify(
        table["deployments_per_day"], "deployment_frequency", benchmarks
    )
    table["lead_time_cluster"] = classify(table["lead_time_median_hours"], "lead_time", benchmarks)
    table["change_failure_rate_cluster"] = classify(
        table["change_failure_rate"], "change_failure_rate", benchmarks
    )
    table["recovery_cluster"] = classify(table["recovery_median_hours"], "recovery", benchmarks)
    return table


METRIC_COLUMNS = [
    "deployments",
    "deployment_days",
    "deployments_per_day",
    "deployment_days_per_week",
    "lead_time_median_hours",
    "lead_time_p75_hours",
    "lead_time_p90_hours",
    "lead_time_count",
    "lead_time_negative",
    "lead_time_incomplete",
    "merge_to_deploy_median_hours",
    "merge_to_deploy_p75_hours",
    "merge_to_deploy_p90_hours",
    "merge_to_deploy_count",
    "coding_median_hours",
    "pickup_median_hours",
    "review_median_hours",
    "deploy_median_hours",
    "deployment_attempts",
    "failed_deployments",
    "change_failure_rate",
    "recovery_count",
    "unrecovered",
    "recovery_median_hours",
    "recovery_p90_hours",
    "rework_deployments",
    "rework_rate",
    "deployment_frequency_cluster",
    "lead_time_cluster",
    "change_failure_rate_cluster",
    "recovery_cluster",
]


def _column_dtype(name: str, tz: str) -> Any:
    """The dtype a metrics column has when there are rows, so empty results match full ones."""
    if name in ("period", "start", "end"):
        return pd.DatetimeTZDtype(unit="us", tz=tz)
    if name in ("period_days", "days"):
        return np.dtype("int64")
    if name.endswith(("_hours", "_rate", "_per_day", "_per_week")):
        return np.dtype("float64")
    if name in METRIC_COLUMNS and not name.endswith("_cluster"):
        return pd.Int64Dtype()
    return pd.StringDtype()


def _empty(by: list[str], head: list[str], tz: str = "UTC") -> pd.DataFrame:
    names = [*by, *head, *METRIC_COLUMNS]
    return pd.DataFrame({name: pd.Series(dtype=_column_dtype(name, tz)) for name in names})


def _with_tz(keywords: OptionKeywords, tz: str | None) -> dict[str, Any]:
    """The keywords plus ``tz`` when it was given."""
    return {**keywords, "tz": tz} if tz is not None else dict(keywords)


def _prepared(
    data: Dataset | Prepared | str | os.PathLike[str],
    options: MetricOptions | None,
    links: pd.DataFrame | Links | None,
    keywords: Mapping[str, Any],
    engine: Any,
) -> Prepared:
    """``data`` prepared in this process, or over repo partitions on a Dask cluster when an
    ``engine`` is given (:mod:`deliverypulse.dora.engine`; a Prepared value is used as it is).
    A path is the dataset there (with an engine, each worker reads its own repos of it)."""
    if engine is not None and not isinstance(data, Prepared):
        from deliverypulse.dora.engine import distributed_prepare

        return distributed_prepare(data, engine, options, links, keywords)
    if isinstance(data, str | os.PathLike):
        data = load(os.fspath(data))
    return resolve(data, options, links, keywords)


def metrics(
    data: Dataset | Prepared | str | os.PathLike[str],
    period: str = "month",
    by: str | Sequence[str] | None = None,
    tz: str | None = None,
    *,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    engine: Any = None,
    **keywords: Unpack[OptionKeywords],
) -> pd.DataFrame:
    """Every DORA metric per group and calendar period, with its DORA cluster.

    One row per group (``by``: ``source``, ``repo`` or any deployments column such as
    ``team``) and period (Monday-start weeks or months in ``tz``), from each group's first
    active period to its last, quiet periods included. ``period`` is the local midnight the
    period starts and ``period_days`` its calendar length; rates (``deployments_per_day``,
    ``deployment_days_per_week``) and so the ratings are per day of a period's average length
    (7 days a week, 365.25 / 12 a month), so one deployment a month rates the same in
    February and March. Durations are in hours; percentiles interpolate linearly. Deployments count
    in the period they finished, changes in the period they were deployed. ``data``: a Dataset,
    or what :func:`deliverypulse.prepare` made of one, or a dataset's path; ``options``/keywords:
    :class:`MetricOptions` (docs/metrics.md). ``engine``: a ``distributed.Client`` (or a
    scheduler address, or a :class:`~deliverypulse.dora.engine.DaskEngine`) to prepare the
    data over repo partitions on a Dask cluster; the numbers are the same as without.
    """
    chosen: Period = check_period(period)
    prepared = _prepared(data, options, links, _with_tz(keywords, tz), engine)
    tz, benchmarks = prepared.options.tz, prepared.options.benchmarks
    by_list = _groups(prepared, by)
    lead = _lead_with(prepared, by_list)
    head = ["period", "period_days"]
    out_day = local_day(prepared.outcomes["deployed_at"], tz)
    lead_day = local_day(lead["deployed_at"], tz)
    table = _aggregate(
        prepared.outcomes,
        lead,
        by_list,
        period_index(out_day, chosen),
        period_index(lead_day, chosen),
        out_day,
    )
    table = _grid(table, by_list)
    if table.empty:
        return _empty(by_list, head, tz)
    table = table.reset_index()
    index = table["_p"].to_numpy(dtype=np.int64)
    table["period"] = day_start(first_day(index, chosen), tz)
    table["period_days"] = period_days(index, chosen)
    table = _finish(table, benchmarks, AVERAGE_DAYS[chosen])
    return table[[*by_list, *head, *METRIC_COLUMNS]].reset_index(drop=True)


def summary(
    data: Dataset | Prepared | str | os.PathLike[str],
    by: str | Sequence[str] | None = None,
    tz: str | None = None,
    *,
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    engine: Any = None,
    **keywords: Unpack[OptionKeywords],
) -> pd.DataFrame:
    """Headline numbers: every metric over the whole time range, one row per group.

    The range of a group runs from the local day of its first deployment or deployed change
    to that of its last (``start``, ``end``, ``days``, inclusive); rates are per day of it.
    ``data``, ``options``, ``engine`` and keywords as in :func:`metrics`.
    """
    prepared = _prepared(data, options, links, _with_tz(keywords, tz), engine)
    tz, benchmarks = prepared.options.tz, prepared.options.benchmarks
    by_list = _groups(prepared, by)
    lead = _lead_with(prepared, by_list)
    outcomes = prepared.outcomes
    head = ["start", "end", "days"]
    out_day = local_day(outcomes["deployed_at"], tz)
    lead_day = local_day(lead["deployed_at"], tz)
    table = _aggregate(
        outcomes,
        lead,
        by_list,
        np.zeros(len(out_day), dtype=np.int64),
        np.zeros(len(lead_day), dtype=np.int64),
        out_day,
    )
    if table.empty:
        return _empty(by_list, head, tz)
    days = pd.concat(
        [outcomes[by_list].assign(_day=out_day), lead[by_list].assign(_day=lead_day)],
        ignore_index=True,
    )
    days = days.loc[days["_day"] != _MISSING_DAY]
    if by_list:
        spans = days.groupby(by_list, dropna=False)["_day"].agg(["min", "max"])
        table = table.reset_index().merge(spans.reset_index(), on=by_list, how="left")
    else:
        table = table.reset_index().assign(min=days["_day"].min(), max=days["_day"].max())
    first = table["min"].to_numpy(dtype=np.int64)
    last = table["max"].to_numpy(dtype=np.int64)
    table["start"] = day_start(first, tz)
    table["end"] = day_start(last, tz)
    table["days"] = last - first + 1
    table = _finish(table, benchmarks, table["days"].to_numpy(dtype=float))
    return table[[*by_list, *head, *METRIC_COLUMNS]].reset_index(drop=True)


__all__ = ["METRIC_COLUMNS", "metrics", "summary"]
