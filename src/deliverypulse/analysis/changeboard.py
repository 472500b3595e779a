"""``Analysis.change_board``: the change-advisory board's own records (ServiceNow change
requests, linked to deployments by ``prepare``) against failure, approval wait and lead time.

- ``change_board``: one row per change type — ``normal`` (CAB-approved), ``standard``
  (pre-approved), ``emergency``, ``none`` (a production deployment no change request covered),
  then any other type the instance uses — with deployments, failures, the change failure rate
  with its Wilson interval, the median approval wait (first request → approval) of the change
  requests behind those deployments, and the median lead time of the changes they shipped.
- the ``change_board`` finding: CAB-approved against every other deployment, within repo first
  (Mantel-Haenszel, or the exact conditional test for small strata: the gate comparison's own
  machinery, :func:`deliverypulse.analysis.stats.within_strata`), the crude comparison second
  and labelled.
- ``change_board_what_if``: per repo with CAB-approved deployments, what dropping CAB approval
  would save per change (``Analysis.what_if``'s columns, ``gated`` meaning CAB-approved, and
  ``control`` = ``"CAB approval"``).

A deployment covered by several change requests takes the most trusted link (explicit before
window, unambiguous first). The wait of a rejected-then-approved change runs from its first
request (the connector's ``approval_requested_at``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deliverypulse.analysis import stats as st
from deliverypulse.analysis import verdict as words
from deliverypulse.analysis.batches import hours
from deliverypulse.analysis.model import (
    ACROSS,
    CHANGE_BOARD_COLUMNS,
    WHAT_IF_COLUMNS,
    WHAT_IF_DETAIL_COLUMNS,
    Finding,
)
from deliverypulse.analysis.whatif import change_waits, comparison_row, plain
from deliverypulse.dora.prepared import Prepared

#: The change types, in the table's order; ``none``: no change request covered the deployment.
CHANGE_TYPES = ("normal", "standard", "emergency", "none")
CAB = "normal"
LABELS = ("CAB-approved", "other")
CONTROL = "CAB approval"
QUESTION = "Do CAB-approved deployments fail more often?"
NO_CHANGE_REQUESTS = (
    "The dataset holds no change requests, so nothing can be said about the change board."
)
_KEY = ["source", "repo", "deployment_id"]


def _key(frame: pd.DataFrame) -> pd.Series:
    parts = [frame[name].astype(str) for name in _KEY]
    return parts[0] + "\x1f" + parts[1] + "\x1f" + parts[2]


def covering(prepared: Prepared) -> pd.DataFrame:
    """Per covered deployment key (``_key``): its change request's ``change_type``, id and
    approval wait in hours (first request → approval; NaN when unknown or negative)."""
    ds = prepared.dataset
    links, changes = ds.deployment_change_requests, ds.change_requests
    columns = ["_key", "change_type", "change_request", "approval_wait_h"]
    if links.empty or changes.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    crs = pd.DataFrame(
        {
            "change_request_source": changes["source"].astype(str).to_numpy(object),
            "change_request_id": changes["change_request_id"].astype(str).to_numpy(object),
            "change_type": changes["type"].astype("string").str.strip().str.lower().fillna(CAB),
            "approval_wait_h": hours(changes["approved_at"] - changes["approval_requested_at"]),
        }
    )
    crs.loc[crs["approval_wait_h"] < 0, "approval_wait_h"] = np.nan
    chosen = links.assign(
        change_request_source=links["change_request_source"].astype(str),
        change_request_id=links["change_request_id"].astype(str),
        _rank=(links["link"].astype(str) != "explicit").astype(int) * 2
        + links["ambiguous"].astype(bool).astype(int),
    ).merge(crs, on=["change_request_source", "change_request_id"])
    chosen = chosen.sort_values(["_rank", "change_request_id"], kind="stable")
    chosen["_key"] = _key(chosen)
    chosen["change_request"] = chosen["change_request_source"] + ":" + chosen["change_request_id"]
    return chosen.drop_duplicates("_key", keep="first")[columns].reset_index(drop=True)


def typed_deployments(table: pd.DataFrame, prepared: Prepared) -> pd.DataFrame:
    """The analysis's per-deployment ``table`` with ``change_type``, ``change_request``,
    ``change_approval_wait_h`` and ``cab`` (a normal change covered it)."""
    found = covering(prepared).set_index("_key")
    keys = _key(table)
    kind = keys.map(found["change_type"]).astype("string").fillna("none")
    return table.assign(
        change_type=kind.to_numpy(object),
        change_request=keys.map(found["change_request"]).to_numpy(object),
        change_approval_wait_h=keys.map(found["approval_wait_h"]).to_numpy(dtype=float),
        cab=(kind == CAB).to_numpy(dtype=bool),
    )


def _lead_by_type(typed: pd.DataFrame, prepared: Prepared, strata: str) -> pd.DataFrame:
    """Every deployed change with a lead time: its stratum, lead time, the deployment's change
    type and CAB approval wait (0 unless a normal change with a known wait covered it)."""
    changes = change_waits(prepared, strata)
    rows = changes["deployment"].to_numpy(np.int64)
    keys = _key(prepared.dataset.deployments).to_numpy(object)[rows]
    by_key = typed.assign(_key=_key(typed)).drop_duplicates("_key").set_index("_key")
    kind = pd.Series(keys).map(by_key["change_type"]).fillna("none").to_numpy(object)
    wait = pd.Series(keys).map(by_key["change_approval_wait_h"]).to_numpy(dtype=float)
    cab = kind == CAB
    return changes.assign(
        change_type=kind, cab=cab, cab_wait_h=np.where(cab & np.isfinite(wait), wait, 0.0)
    )


def change_board_table(typed: pd.DataFrame, lead: pd.DataFrame) -> pd.DataFrame:
    """One row per change type (``CHANGE_BOARD_COLUMNS``)."""
    seen = [t for t in dict.fromkeys(typed["change_type"].astype(str)) if t not in CHANGE_TYPES]
    records = []
    for kind in [*CHANGE_TYPES, *sorted(seen)]:
        mine = typed.loc[typed["change_type"].astype(str).eq(kind).to_numpy(dtype=bool)]
        n, failed = len(mine), int(mine["failed"].sum())
        low, high = st.wilson([failed], [n])
        waits = (
            mine.drop_duplicates("change_request")["change_approval_wait_h"].to_numpy(dtype=float)
            if kind != "none"
            else np.array([], dtype=float)
        )
        waits = waits[np.isfinite(waits)]
        leads = lead.loc[lead["change_type"].astype(str).eq(kind).to_numpy(dtype=bool), "lead_h"]
        records.append(
            {
                "change_type": kind,
                "deployments": n,
                "failures": failed,
                "change_failure_rate": failed / n if n else None,
                "change_failure_rate_low": st.finite(low[0]),
                "change_failure_rate_high": st.finite(high[0]),
                "approval_wait_median_h": float(np.median(waits)) if waits.size else None,
                "lead_time_median_h": float(leads.median()) if len(leads) else None,
                "change_requests": int(mine["change_request"].nunique()),
                "changes": len(leads),
            }
        )
    return pd.DataFrame.from_records(records, columns=list(CHANGE_BOARD_COLUMNS))


def empty_change_board() -> pd.DataFrame:
    """``change_board`` of a dataset without change requests: no rows, the columns."""
    return pd.DataFrame({name: pd.Series(dtype=object) for name in CHANGE_BOARD_COLUMNS})


def _finding(typed: pd.DataFrame, unit: str, min_deployments: int, min_per_group: int) -> Finding:
    """CAB-approved against every other deployment: within strata, then crude (labelled)."""
    kinds = typed.groupby("stratum", observed=True)["cab"].transform("nunique")
    mixed = typed.loc[(kinds > 1).to_numpy(dtype=bool)]
    strata = int(mixed["stratum"].nunique())
    groups = st.group_table(typed, "cab", [True, False], list(LABELS))
    within = st.within_strata(mixed, "cab", unit)
    crude = st.fisher(st.two_by_two(typed, "cab"), unit)
    cab_n = int(mixed["cab"].sum())
    other_n = len(mixed) - cab_n
    cab_failed = int((mixed["cab"] & mixed["failed"]).sum())
    other_failed = int(mixed["failed"].sum()) - cab_failed
    enough = cab_n >= min_per_group and other_n >= min_per_group and len(mixed) >= min_deployments
    all_cab = int(typed["cab"].sum())
    all_cab_failed = int((typed["cab"] & typed["failed"]).sum())
    all_other_failed = int(typed["failed"].sum()) - all_cab_failed
    expected = None
    if not mixed.empty:
        per = mixed.groupby("stratum", observed=True).agg(
            cab=("cab", "sum"), failed=("failed", "sum"), n=("failed", "size")
        )
        expected = float((per["cab"].astype(float) * per["failed"] / per["n"]).sum())
    crude_label = ACROSS.format(unit=unit)
    all_other = len(typed) - all_cab
    crude_text = (
        f"{crude_label.capitalize()}: {all_cab_failed} of {all_cab} CAB-approved and "
        f"{all_other_failed} of {all_other} other deployments failed "
        f"({words.percent(all_cab_failed / all_cab if all_cab else None)} vs "
        f"{words.percent(all_other_failed / all_other if all_other else None)})."
    )
    if typed.empty:
        plain = statement = "There are no production deployments to compare."
    elif all_cab == 0:
        plain = statement = (
            "No production deployment was covered by a CAB-approved (normal) change: there is "
            "nothing to compare the change board with."
        )
    elif all_cab == len(typed):
        plain = statement = (
            "Every production deployment was CAB-approved: there are no other deployments to "
            "compare with, so the data cannot say whether the board makes releases safer."
        )
    elif strata == 0:
        plain = (
            f"No {unit} deploys both with and without CAB approval, so CAB-approved and other "
            "deployments cannot be compared like with like: not enough data to say whether the "
            f"change board makes releases safer. {crude_text}"
        )
        statement = (
            f"No {unit} has both CAB-approved and other deployments: the within-{unit} "
            f"comparison cannot be made; {words.interval(crude)} ({crude_label})."
        )
    else:
        plain = words.gate_plain(
            unit=unit,
            strata=strata,
            gated=(cab_failed, cab_n),
            ungated=(other_failed, other_n),
            expected=expected,
            estimate=within,
            enough=enough,
            min_per_group=min_per_group,
            min_deployments=min_deployments,
            labels=LABELS,
            control="CAB approval",
        )
        statement = (
            f"CAB-approved vs other deployments within {unit}s: {words.interval(within)}; "
            f"{crude_label}: {words.interval(crude)}."
        )
        others = mixed.loc[~mixed["cab"].to_numpy(dtype=bool), "change_type"].astype(str)
        emergency = int(others.eq("emergency").sum())
        if other_n and emergency * 2 > other_n:
            plain += (
                f" Most of the other deployments in those {unit}s ({emergency} of {other_n}) "
                "were emergency changes: hotfixes, which mend a failure rather than ship a "
                "release, so they are not like releases under the board."
            )
    return Finding.led_by(
        "change_board", QUESTION, groups, [within, crude], statement, enough, plain
    )


def no_change_requests_finding() -> Finding:
    """The finding of a dataset without change requests: one plain sentence."""
    return Finding(
        question=QUESTION,
        groups=pd.DataFrame(columns=["group"]),
        effect="",
        estimate=None,
        ci_low=None,
        ci_high=None,
        test="",
        p_value=None,
        statement=NO_CHANGE_REQUESTS,
        name="change_board",
        enough_data=False,
        plain=NO_CHANGE_REQUESTS,
    )


def _what_if(typed: pd.DataFrame, lead: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Per stratum with CAB-approved deployments: the saving without CAB approval waits."""
    columns = [*WHAT_IF_COLUMNS, *WHAT_IF_DETAIL_COLUMNS, "control"]
    groups = sorted(set(typed.loc[typed["cab"].to_numpy(dtype=bool), "stratum"].astype(str)))
    records = []
    for group in groups:
        mine = typed.loc[(typed["stratum"].astype(str) == group).to_numpy(dtype=bool)]
        flag = mine["cab"].to_numpy(dtype=bool)
        cab, other = mine.loc[flag], mine.loc[~flag]
        own = lead.loc[(lead["stratum"].astype(str) == group).to_numpy(dtype=bool)]
        row = comparison_row(
            group,
            cab,
            other,
            cab.drop_duplicates("change_request")["change_approval_wait_h"],
            own["lead_h"],
            own["cab_wait_h"],
            "no other deployments to compare with" if other.empty else "",
        )
        row["control"] = CONTROL
        row["plain"] = plain(row, unit, control=CONTROL, labels=LABELS)
        records.append(row)
    if not records:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    return pd.DataFrame.from_records(records, columns=columns)


def change_board(
    table: pd.DataFrame,
    prepared: Prepared,
    strata: str,
    unit: str,
    min_deployments: int,
    min_per_group: int,
) -> tuple[pd.DataFrame, Finding, pd.DataFrame]:
    """(``Analysis.change_board``, the ``change_board`` finding, ``change_board_what_if``)."""
    if prepared.dataset.change_requests.empty:
        empty = pd.DataFrame({"cab": pd.Series(dtype=bool), "stratum": pd.Series(dtype=str)})
        return empty_change_board(), no_change_requests_finding(), _what_if(empty, empty, unit)
    typed = typed_deployments(table, prepared)
    lead = _lead_by_type(typed, prepared, strata)
    return (
        change_board_table(typed, lead),
        _finding(typed, unit, min_deployments, min_per_group),
        _what_if(typed, lead, unit),
    )


__all__ = [
    "CHANGE_TYPES",
    "NO_CHANGE_REQUESTS",
    "change_board",
    "change_board_table",
    "covering",
    "empty_change_board",
    "typed_deployments",
]
