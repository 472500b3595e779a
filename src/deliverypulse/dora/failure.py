"""Which production deployments failed, by which signals, how long recovery took, and which
deployments were rework.

Every signal is an option, because teams record failure differently: a deployment's own
status, a rollback (:func:`deliverypulse.selection.rollback_flags`, the one rollback rule), a
revert or hotfix of what it shipped, or an incident charged to it
(:mod:`deliverypulse.dora.incidents`, the one attribution rule).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.dataset import Dataset
from deliverypulse.dora.incidents import charge_incidents
from deliverypulse.dora.options import SIGNALS, MetricOptions
from deliverypulse.linking import Links
from deliverypulse.linking.graph import chunked_strings, take_strings
from deliverypulse.selection import (
    ATTEMPT_STATUSES,
    FAILED_STATUSES,
    SEQUENCE,
    production_deployments,
    rollback_targets,
)
from deliverypulse.timeutil import IntArray, as_micros


def attempts(ds: Dataset, environments: Any = None) -> pd.DataFrame:
    """Production deployments that finished (success, failure, error), in time order.

    Adds ``deployed_at``, ``is_success``, ``_row`` (position in ``ds.deployments``) and
    ``_group`` (an integer per source, repo and environment); keeps every column of
    ``deployments``, user columns included.
    """
    frame = production_deployments(ds, ATTEMPT_STATUSES, environments)
    frame["is_success"] = (frame["status"] == "success").fillna(False).astype(bool)
    frame["_group"] = frame.groupby(SEQUENCE, sort=False).ngroup()
    frame["_repo_group"] = frame.groupby(["source", "repo"], sort=False).ngroup()
    return frame


def _events(kind: str, failed: Any, start: Any, end: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_d": np.asarray(failed, dtype=np.int64),
            "signal": kind,
            "start": _naive_utc(start),
            "end": _naive_utc(end),
        }
    )


def _naive_utc(values: Any) -> Any:
    stamps = pd.to_datetime(pd.Series(values, dtype=object if len(values) == 0 else None), utc=True)
    return stamps.dt.tz_localize(None).dt.as_unit("us").to_numpy()


def _next_success(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """For each row, the first successful deployment at or after it in the same group."""
    ok = frame.loc[frame["is_success"], ["_group", "deployed_at", "_d"]].rename(
        columns={"_d": "_next", "deployed_at": "_next_at"}
    )
    left = rows[["_d", "_group", "deployed_at"]].sort_values("deployed_at", kind="stable")
    found = pd.merge_asof(
        left,
        ok.sort_values("_next_at", kind="stable"),
        left_on="deployed_at",
        right_on="_next_at",
        by="_group",
        direction="forward",
    )
    return found


def _status_events(frame: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    failed = frame.loc[frame["status"].isin(FAILED_STATUSES).fillna(False).astype(bool)]
    found = _next_success(frame, failed)
    events = _events("status", found["_d"], found["deployed_at"], found["_next_at"])
    return events, found["_next"].dropna().to_numpy(dtype=np.int64)


def _rollback_events(frame: pd.DataFrame, reached_by: IntArray | None) -> tuple[pd.DataFrame, Any]:
    """A rollback (:func:`deliverypulse.selection.rollback_targets`) marks the deployment it
    rolled back (the live one of its line) as failed; recovery ends when the rollback finishes."""
    ok = frame.loc[frame["is_success"]]
    rolled_back = rollback_targets(ok, reached_by)
    is_rollback = rolled_back >= 0
    rollbacks = ok.loc[is_rollback]
    target = ok["_d"].to_numpy(dtype=np.int64)[rolled_back[is_rollback]]
    events = _events(
        "rollback",
        target,
        frame["deployed_at"].iloc[target],
        rollbacks["deployed_at"],
    )
    return events, rollbacks["_d"].to_numpy(dtype=np.int64)


_NUMBER = re.compile(r"0|[1-9][0-9]*")


def _named(changes: pd.DataFrame, rows: IntArray, names: Any) -> pd.DataFrame:
    """Changes at ``rows`` with the name a fix used for each (``reverts``), from arrow's
    buffers: no Python string per change."""
    return pd.DataFrame(
        {
            "source": changes["source"].array.take(rows),
            "repo": changes["repo"].array.take(rows),
            "reverts": pd.array(names, dtype="string"),
            "_target": rows,
        }
    )


def _targets(changes: pd.DataFrame, fixes: pd.DataFrame) -> pd.DataFrame:
    """The change each fix names in ``reverts``: by id, merge sha, number or #number.

    Only candidate rows are matched as strings (``isin`` on the few names), so ten million
    changes cost one pass, not a join."""
    names = fixes["reverts"].dropna().unique()
    if len(names) == 0:
        return fixes.assign(_target=pd.Series(-1, index=fixes.index, dtype=np.int64))
    wanted = pa.array([str(name) for name in names], type=pa.large_string())
    parts = []
    for form in (changes["change_id"], changes["merge_sha"]):
        text = chunked_strings(form)
        rows = np.flatnonzero(pc.is_in(text, value_set=wanted).to_numpy(zero_copy_only=False))
        parts.append(_named(changes, rows, take_strings(text, rows)))
    # Numbers: the names that spell one ("12" or "#12") matched as integers, so the numbers of
    # ten million changes are never turned into strings; a match is spelled back the one way
    # a name could spell it.
    for prefix in ("", "#"):
        spelled = {
            int(name[len(prefix) :])
            for name in map(str, names)
            if name.startswith(prefix) and _NUMBER.fullmatch(name[len(prefix) :])
        }
        if not spelled:
            continue
        number = changes["number"]
        rows = np.flatnonzero(number.isin(list(spelled)).fillna(False).to_numpy(dtype=bool))
        found = pd.Series(number.to_numpy(dtype=np.int64, na_value=0)[rows]).astype("string")
        parts.append(_named(changes, rows, (prefix + found).array))
    table = pd.concat(parts, ignore_index=True).drop_duplicates(["source", "repo", "reverts"])
    table = table.astype({"source": "string", "repo": "string", "reverts": "string"})
    merged = fixes.merge(table, on=["source", "repo", "reverts"], how="left")
    merged["_target"] = merged["_target"].fillna(-1).astype(np.int64)
    return merged


def _fix_events(
    frame: pd.DataFrame,
    changes: pd.DataFrame,
    shipped: pd.DataFrame,
    kind: str,
    window: pd.Timedelta,
) -> pd.DataFrame:
    """Deployments whose change was reverted (or hot-fixed) within ``window`` of shipping.

    A revert that names its change charges every deployment that shipped it; one that names
    nothing we know charges the repo's last successful deployment before its merge. Recovery
    ends when the fix itself is deployed.
    """
    column = "is_revert" if kind == "revert" else "is_hotfix"
    flagged = changes[column].fillna(False).to_numpy(dtype=bool)
    flagged &= changes["merged_at"].notna().to_numpy(dtype=bool)
    rows = np.flatnonzero(flagged)
    fixes = pd.DataFrame(
        {
            "source": changes["source"].array.take(rows),
            "repo": changes["repo"].array.take(rows),
            "reverts": changes["reverts"].array.take(rows),
            "_fix": rows,
            "_fixed_at": as_micros(changes["merged_at"])[rows],
        }
    )
    # When each fix first shipped: only the fixes' own shipments are grouped.
    is_fix = np.zeros(len(changes), dtype=bool)
    is_fix[rows] = True
    of_fixes = shipped.loc[is_fix[shipped["_cpos"].to_numpy(np.int64)]]
    first_deployed = of_fixes.groupby("_cpos")["_at"].min()
    fixes["_fix_deployed"] = first_deployed.reindex(rows).to_numpy(dtype=np.float64)
    resolved = _targets(changes, fixes)
    named = resolved.loc[resolved["_target"] >= 0].merge(
        shipped[["_cpos", "_d", "_at"]], left_on="_target", right_on="_cpos"
    )
    unnamed = _charged(frame, resolved.loc[resolved["_target"] < 0], "_fixed_at", "_at")
    both = pd.concat(
        [
            named[["_d", "_at", "_fixed_at", "_fix_deployed"]],
            unnamed[["_d", "_at", "_fixed_at", "_fix_deployed"]],
        ],
        ignore_index=True,
    )
    at = both["_at"].to_numpy(np.int64)
    fixed = both["_fixed_at"].to_numpy(np.int64)
    inside = (fixed > at) & (fixed <= at + window // pd.Timedelta(microseconds=1))
    both = both.loc[inside]
    end = both["_fix_deployed"].to_numpy(dtype=np.float64)
    return _events(kind, both["_d"], _stamp(both["_at"]), _stamp(end))


def _stamp(micros: Any) -> pd.Series:
    values = np.asarray(micros, dtype=np.float64)
    out = np.full(values.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    good = ~np.isnan(values)
    out[good] = values[good].astype(np.int64).astype("datetime64[us]")
    return pd.Series(out).dt.tz_localize("UTC")


def _charged(
    frame: pd.DataFrame, events: pd.DataFrame, at: str, deployed: str, *, exact: bool = False
) -> pd.DataFrame:
    """``events`` (with ``source``, ``repo`` and a time ``at``) joined to their repo's last
    successful deployment before that time (its ``_d`` and ``deployed`` time; at the same
    moment too with ``exact``). Events of repos without one are dropped."""
    ok = frame.loc[frame["is_success"], ["source", "repo", "_repo_group", deployed, "_d"]]
    events = events.merge(
        ok[["source", "repo", "_repo_group"]].drop_duplicates(), on=["source", "repo"]
    )
    return pd.merge_asof(
        events.sort_values(at, kind="stable"),
        ok[["_repo_group", deployed, "_d"]].sort_values(deployed, kind="stable"),
        left_on=at,
        right_on=deployed,
        by="_repo_group",
        direction="backward",
        allow_exact_matches=exact,
    ).dropna(subset=["_d"])


def _incident_events(incidents: pd.DataFrame, charged: IntArray) -> pd.DataFrame:
    """Each counted incident (:func:`deliverypulse.dora.incidents.charge_incidents`) fails the
    deployment it is charged to, from its opening to its resolution."""
    rows = np.flatnonzero(charged >= 0)
    return _events(
        "incident",
        charged[rows],
        incidents["created_at"].iloc[rows],
        incidents["resolved_at"].iloc[rows],
    )


def outcome_rows(
    ds: Dataset,
    links: Links,
    changes: pd.DataFrame,
    link_change: IntArray,
    options: MetricOptions,
) -> tuple[pd.DataFrame, pd.DataFrame, IntArray]:
    """One row per production deployment attempt: did it fail, why, and when it recovered;
    and every incident with how it was charged and its attempt's row (-1: none).

    ``changes`` is every change (trunk commits included) and ``link_change`` the row in it of
    each link. Columns added to the deployment's own: ``deployed_at``, ``is_success``,
    ``failed`` and one ``failed_by_<signal>`` per signal, ``is_rework`` (it ships a revert or
    hotfix, rolls back, or is the first success after a failed deployment), ``recovery_start``,
    ``recovery_end``, ``recovery`` (a timedelta; missing while not recovered), and ``_row``
    (position in ``ds.deployments``).
    """
    signals = options.failure_signals
    window = options.revert_window
    frame = attempts(ds, options.environments)
    frame["_d"] = np.arange(len(frame), dtype=np.int64)
    frame["_at"] = as_micros(frame["deployed_at"])
    attempt_of_row = np.full(len(ds.deployments), -1, dtype=np.int64)
    attempt_of_row[frame["_row"].to_numpy(np.int64)] = frame["_d"].to_numpy(np.int64)
    success = frame["is_success"].to_numpy(dtype=bool)
    d = attempt_of_row[links.deployment]
    cpos = link_change
    keep = (d >= 0) & (cpos >= 0)
    keep[keep] = success[d[keep]]
    shipped = pd.DataFrame(
        {"_d": d[keep], "_cpos": cpos[keep], "_at": frame["_at"].to_numpy()[d[keep]]}
    )
    incidents, charged = charge_incidents(ds, frame, options)
    status, after_failure = _status_events(frame)
    rollback, rollbacks = _rollback_events(frame, links.reached_by)
    found = {
        "status": status,
        "rollback": rollback,
        "revert": _fix_events(frame, changes, shipped, "revert", window),
        "hotfix": _fix_events(frame, changes, shipped, "hotfix", window),
        "incident": _incident_events(incidents, charged),
    }
    chosen = [found[name] for name in signals]
    events = pd.concat(chosen, ignore_index=True) if chosen else _events("none", [], [], [])
    for name in SIGNALS:
        flag = np.zeros(len(frame), dtype=bool)
        if name in signals:
            flag[found[name]["_d"].to_numpy(dtype=np.int64)] = True
        frame[f"failed_by_{name}"] = flag
    frame["failed"] = frame[[f"failed_by_{name}" for name in SIGNALS]].any(axis=1)

    is_fix = (changes["is_revert"].fillna(False) | changes["is_hotfix"].fillna(False)).to_numpy(
        dtype=bool
    )
    ships_fix = shipped["_d"].to_numpy(np.int64)[is_fix[shipped["_cpos"].to_numpy(np.int64)]]
    rework = np.zeros(len(frame), dtype=bool)
    for rows in (ships_fix, rollbacks, after_failure):
        rework[rows] = True
    frame["is_rework"] = rework & success

    recovery = events.groupby("_d").agg(
        recovery_start=("start", "min"), recovery_end=("end", "max")
    )
    frame = frame.merge(recovery, left_on="_d", right_index=True, how="left")
    for name in ("recovery_start", "recovery_end"):
        frame[name] = pd.to_datetime(frame[name]).dt.tz_localize("UTC").dt.as_unit("us")
    span = frame["recovery_end"] - frame["recovery_start"]
    frame["recovery"] = span.where(span >= pd.Timedelta(0))
    frame["failed"] = frame["failed"].astype(bool)
    frame = frame.drop(columns=["_d", "_at", "_group", "_repo_group"]).reset_index(drop=True)
    return frame, incidents, charged


__all__ = ["attempts", "outcome_rows"]
