"""One row per production deployment: its batch size, gate, approval wait, outcome and lead time.

Failure, recovery and lead time come from the metrics' own prepared value
(:func:`deliverypulse.prepare`), so the analysis and the headline change failure rate always
count the same deployments as failed. Batch size comes from the links (what each deployment
shipped), joined by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Unpack

import numpy as np
import numpy.typing as npt
import pandas as pd

from deliverypulse.analysis.model import DEPLOYMENT_COLUMNS
from deliverypulse.dataset import Dataset
from deliverypulse.dora.options import MetricOptions, OptionKeywords
from deliverypulse.dora.prepared import Prepared, resolve
from deliverypulse.errors import AnalysisError
from deliverypulse.linking import Links
from deliverypulse.timeutil import IntArray

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


def _per_change(column: pd.Series) -> npt.NDArray[np.float64]:
    """A nullable number column as floats (NaN where missing), for vectorised sums."""
    return np.asarray(column.astype("Float64").to_numpy(dtype=float, na_value=np.nan), np.float64)


def _batch_sizes(prepared: Prepared) -> pd.DataFrame:
    """Per outcome row (index): the changes it put live (``prepared.batches``: counted changes
    only, those put live again after a rollback included), their commits (``commit_count``) and
    lines changed (``additions + deletions``). Sums are missing when no change in the batch
    knows the number."""
    changes = prepared.changes
    additions, deletions = _per_change(changes["additions"]), _per_change(changes["deletions"])
    lines = np.where(
        np.isnan(additions) & np.isnan(deletions),
        np.nan,
        np.nan_to_num(additions) + np.nan_to_num(deletions),
    )
    commits = _per_change(changes["commit_count"])
    batches = prepared.batches
    row = batches["change"].to_numpy(np.int64)
    shipped = pd.DataFrame(
        {
            "_outcome": batches["outcome"].to_numpy(np.int64),
            "_lines": lines[row],
            "_commits": commits[row],
        }
    )
    grouped = shipped.groupby("_outcome", sort=False)
    return pd.DataFrame(
        {
            "batch_changes": grouped.size(),
            "batch_commits": grouped["_commits"].sum(min_count=1),
            "batch_lines": grouped["_lines"].sum(min_count=1),
        }
    )


def _at(frame: pd.DataFrame, rows: IntArray, column: str) -> pd.Series:
    """``frame[column]`` at index ``rows`` (missing where absent), as nullable floats."""
    return pd.Series(frame[column].reindex(rows).to_numpy(dtype=float), dtype="Float64")


def strata_of(ds: Dataset, rows: IntArray, strata: str = "repo") -> pd.Series:
    """The stratum of each row (positions in ``ds.deployments``): what a within comparison holds
    fixed. ``"repo"``: the repo's name (``source:repo`` where two sources hold the same name);
    any other value names a column of the deployments table (say ``team``), missing values
    becoming "(none)"."""
    deployments = ds.deployments
    if strata == "repo":
        pairs = deployments[["source", "repo"]].astype(str).drop_duplicates()
        shared = set(pairs.loc[pairs["repo"].duplicated(keep=False), "repo"])
        source = deployments["source"].astype(str).to_numpy()[rows]
        repo = deployments["repo"].astype(str).to_numpy()[rows]
        named = [f"{s}:{r}" if r in shared else r for s, r in zip(source, repo, strict=True)]
        return pd.Series(named, dtype="string")
    if strata not in deployments.columns:
        raise AnalysisError(
            f"strata must be 'repo' or a column of the deployments table, got {strata!r}"
        )
    values = deployments[strata].astype("string").fillna("(none)").to_numpy()[rows]
    return pd.Series(values, dtype="string")


def deployment_table(
    data: Dataset | Prepared,
    *,
    bins: Sequence[int] = DEFAULT_BINS,
    strata: str = "repo",
    options: MetricOptions | None = None,
    links: pd.DataFrame | Links | None = None,
    **keywords: Unpack[OptionKeywords],
) -> pd.DataFrame:
    """One row per production deployment attempt (success, failure, error) in the window.

    Every attempt's batch is what it put live, or tried to (``Prepared.batches``): a successful
    deployment's is the changes it shipped and, after a rollback, those it put live again; a
    failed attempt's is what it tried to put live (its sha's commit-graph difference from the
    environment's live deployment). Changes are counted as every metric counts them (bots
    excluded by default). A success that put no change live has ``batch_changes`` 0 and no batch
    group (a redeploy, or a repo's first deployment); a failed attempt whose batch cannot be
    read (no live deployment before it, or a sha missing from the collected history) has null
    sizes. ``lead_time_h`` is the median lead time of the changes it shipped (bots excluded, as
    in the metrics; none for a failed attempt). ``stratum`` is what the within comparisons hold
    fixed: the repo (``strata="repo"``, the name, with its source when two sources hold the
    same name), or the value of a column of the deployments table (say ``team``). ``data``,
    ``options``, ``links`` and keywords as in :func:`deliverypulse.metrics`.
    """
    prepared = resolve(data, options, links, keywords)
    outcomes = prepared.outcomes  # prepare() already starts the window at ``since``
    rows = prepared.outcome_deployment
    frame = outcomes[[*_KEY, "environment", "deployed_at", "approval_required"]].copy()
    frame["environment"] = frame["environment"].replace("", pd.NA)
    frame = frame.rename(columns={"deployed_at": "finished_at", "approval_required": "gated"})
    frame["gated"] = frame["gated"].astype("boolean")
    frame["failed"] = outcomes["failed"].to_numpy(dtype=bool)
    frame["recovery_h"] = hours(outcomes["recovery"]).to_numpy(dtype=float)
    wait = outcomes["approved_at"] - outcomes["approval_requested_at"]
    frame["approval_wait_h"] = hours(wait.where(wait >= pd.Timedelta(0))).to_numpy(dtype=float)

    sizes = _batch_sizes(prepared)
    success = outcomes["is_success"].to_numpy(dtype=bool)
    positions = np.arange(len(outcomes), dtype=np.int64)
    changes = _at(sizes, positions, "batch_changes")
    # A success with no batch rows put nothing new live (0); a failed attempt with none is one
    # whose batch could not be read (no live deployment, or a sha outside the history).
    known = changes.notna().to_numpy(dtype=bool) | success
    frame["batch_changes"] = changes.fillna(0).where(known, pd.NA).astype("Int64").array
    for name in ("batch_commits", "batch_lines"):
        sums = _at(sizes, positions, name)
        frame[name] = sums.round().astype("Int64").array
    frame["batch_group"] = batch_groups(frame["batch_changes"], bins)
    frame["stratum"] = strata_of(prepared.dataset, rows, strata).array

    lead_hours = hours(prepared.lead["lead_time"]).to_numpy(dtype=float)
    valid = lead_hours >= 0  # negative spans are data errors, as in the metrics
    medians = (
        pd.Series(lead_hours[valid]).groupby(prepared.lead_deployment[valid], sort=False).median()
    )
    frame["lead_time_h"] = medians.reindex(rows).to_numpy(dtype=float)
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
    "strata_of",
]
