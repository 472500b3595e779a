"""One row per production deployment: its batch size, gate, approval wait, outcome and lead time.

Failure and recovery come from the metrics' own ``deployment_outcomes`` (through
``metrics.table.prepare``), so the analysis and the headline change failure rate always count
the same deployments as failed. Batch size comes from ``link`` (what each deployment shipped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.analysis.model import DEPLOYMENT_COLUMNS
from deliverypulse.dataset import Dataset
from deliverypulse.dora.failure import SIGNALS
from deliverypulse.dora.lead_time import BOT_PATTERN, all_changes
from deliverypulse.dora.table import prepare
from deliverypulse.errors import AnalysisError
from deliverypulse.linking import link

#: Default lower edges of the batch-size groups, in changes: 1, 2-3, 4-7, 8+.
DEFAULT_BINS: tuple[int, ...] = (1, 2, 4, 8)
_KEY = ["source", "repo", "deployment_id"]


def check_bins(bins: Sequence[int]) -> tuple[int, ...]:
    """Bins must be strictly increasing whole numbers of changes, the first at least 1."""
    try:
        edges = tuple(int(edge) for edge in bins)
    except (TypeError, ValueError):
        raise AnalysisError(f"batch bins must be whole numbers, got {bins!r}") from None
    if not edges or edges[0] < 1 or any(b <= a for a, b in pairwise(edges)):
        raise AnalysisError(
            f"batch bins must be increasing whole numbers starting at 1 or more, got {edges!r} "
            "(e.g. 1,2,4,8 gives the groups 1, 2-3, 4-7, 8+)"
        )
    return edges


def bin_labels(bins: Sequence[int]) -> list[str]:
    """Group names for the bin edges: (1, 2, 4, 8) gives "1", "2-3", "4-7", "8+"."""
    edges = list(bins)
    labels = []
    for low, high in zip(edges, [*edges[1:], None], strict=True):
        if high is None:
            labels.append(f"{low}+")
        elif high - low == 1:
            labels.append(str(low))
        else:
            labels.append(f"{low}-{high - 1}")
    return labels


def batch_groups(batch_changes: pd.Series, bins: Sequence[int]) -> pd.Series:
    """The batch group of each deployment; null below the first edge (nothing shipped) or when
    the batch size is unknown. An ordered categorical, so groups sort small to large."""
    edges = [*bins, np.inf]
    values = batch_changes.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    groups = pd.cut(values, bins=edges, right=False, labels=bin_labels(bins))
    return pd.Series(groups, index=batch_changes.index, name="batch_group")


def hours(values: pd.Series) -> pd.Series:
    """Timedeltas as float hours; missing stays NaN."""
    return pd.to_timedelta(values).dt.total_seconds() / 3600.0


def _batch_sizes(links: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """Per deployment: changes shipped, their commits (``commit_count``) and lines changed
    (``additions + deletions``). Sums are null when no shipped change knows the number."""
    shipped = links[[*_KEY, "change_id"]].merge(
        changes[["source", "repo", "change_id", "additions", "deletions", "commit_count"]],
        on=["source", "repo", "change_id"],
        how="left",
    )
    additions = shipped["additions"].astype("Float64")
    deletions = shipped["deletions"].astype("Float64")
    shipped["_lines"] = additions.fillna(0) + deletions.fillna(0)
    shipped.loc[(additions.isna() & deletions.isna()).to_numpy(dtype=bool), "_lines"] = pd.NA
    shipped["_commits"] = shipped["commit_count"].astype("Float64")
    grouped = shipped.groupby(_KEY, sort=False, observed=True)
    sizes = pd.DataFrame(
        {
            "batch_changes": grouped["change_id"].size(),
            "batch_commits": grouped["_commits"].sum(min_count=1),
            "batch_lines": grouped["_lines"].sum(min_count=1),
        }
    )
    return sizes.reset_index()


def deployment_table(
    ds: Dataset,
    *,
    bins: Sequence[int] = DEFAULT_BINS,
    environments: Any = None,
    since: Any = None,
    failure_signals: Iterable[str] = SIGNALS,
    revert_window: str | pd.Timedelta = "7D",
    links: pd.DataFrame | None = None,
    exclude_bots: bool = True,
    bot_pattern: str = BOT_PATTERN,
    trunk: bool = True,
) -> pd.DataFrame:
    """One row per production deployment attempt (success, failure, error) in the window.

    A successful deployment that shipped no linked change has ``batch_changes`` 0 and no batch
    group (a redeploy, or a repo's first deployment); a failed attempt shipped nothing, so its
    batch size is unknown (null). ``lead_time_h`` is the median lead time of the changes it
    shipped (bots excluded, as in the metrics). ``links``: a ``deployment_changes`` table to
    use instead of :func:`deliverypulse.linking.link`; it and ``exclude_bots``, ``bot_pattern``,
    ``trunk`` mean what they mean in the metrics.
    """
    if links is None:
        links = link(ds, environments=environments, since=since, trunk=trunk)
    prepared = prepare(
        ds,
        links=links,
        environments=environments,
        since=since,
        failure_signals=failure_signals,
        revert_window=revert_window,
        exclude_bots=exclude_bots,
        bot_pattern=bot_pattern,
        trunk=trunk,
    )
    outcomes = prepared.outcomes  # prepare() already starts the window at ``since``
    frame = outcomes[[*_KEY, "environment", "deployed_at", "approval_required"]].copy()
    frame["environment"] = frame["environment"].replace("", pd.NA)
    frame = frame.rename(columns={"deployed_at": "finished_at", "approval_required": "gated"})
    frame["gated"] = frame["gated"].astype("boolean")
    frame["failed"] = outcomes["failed"].to_numpy(dtype=bool)
    frame["recovery_h"] = hours(outcomes["recovery"]).to_numpy(dtype=float)
    wait = outcomes["approved_at"] - outcomes["approval_requested_at"]
    frame["approval_wait_h"] = hours(wait.where(wait >= pd.Timedelta(0))).to_numpy(dtype=float)

    sizes = _batch_sizes(links, all_changes(ds, links, trunk=trunk))
    frame = frame.merge(sizes, on=_KEY, how="left")
    success = outcomes["is_success"].to_numpy(dtype=bool)
    frame["batch_changes"] = (
        frame["batch_changes"].astype("Int64").where(~success | frame["batch_changes"].notna(), 0)
    )
    frame.loc[~success, "batch_changes"] = pd.NA
    frame["batch_commits"] = frame["batch_commits"].astype("Float64").round().astype("Int64")
    frame["batch_lines"] = frame["batch_lines"].astype("Float64").round().astype("Int64")
    frame["batch_group"] = batch_groups(frame["batch_changes"], bins)

    lead = prepared.lead.assign(_lead_h=hours(prepared.lead["lead_time"]))
    lead = lead.loc[lead["_lead_h"] >= 0]  # negative spans are data errors, as in the metrics
    medians = lead.groupby(_KEY, sort=False)["_lead_h"].median().rename("lead_time_h")
    frame = frame.merge(medians.reset_index(), on=_KEY, how="left")
    frame["lead_time_h"] = frame["lead_time_h"].astype(float)
    frame = frame.sort_values(["finished_at", *_KEY], kind="stable").reset_index(drop=True)
    return frame[list(DEPLOYMENT_COLUMNS)]


__all__ = [
    "DEFAULT_BINS",
    "AnalysisError",
    "batch_groups",
    "bin_labels",
    "check_bins",
    "deployment_table",
    "hours",
]
