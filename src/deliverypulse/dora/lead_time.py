"""Lead time for changes: one row per deployed change, with the stages it went through.

``lead_time`` is first commit → deployed (DORA); ``merge_to_deploy`` is what GitLab reports.
Spans stay signed here so an analyst can see data errors; :func:`deliverypulse.dora`
excludes negative spans and counts them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.dataset import Dataset
from deliverypulse.linking import (
    POSITIONS,
    SUCCESS_STATUSES,
    deployed_time,
    link_rows,
    positions,
    production_mask,
    trunk_frame,
)
from deliverypulse.patterns import BOT_PATTERN

IntArray = npt.NDArray[np.int64]

#: Authors taken as bots when a change's ``is_bot`` is unknown (GitHub apps end in ``[bot]``).

_CHANGE_COLUMNS = [
    "source",
    "repo",
    "change_id",
    "author",
    "is_bot",
    "is_revert",
    "is_hotfix",
    "is_trunk",
    "first_commit_at",
    "created_at",
    "ready_at",
    "first_review_at",
    "merged_at",
]
DURATIONS = ("lead_time", "merge_to_deploy", "coding", "pickup", "review", "deploy")


def all_changes(ds: Dataset, links: pd.DataFrame, *, trunk: bool = True) -> pd.DataFrame:
    """The dataset's changes, then (with ``trunk``) the linked commits that are changes of
    their own; ``is_trunk`` tells them apart and ``_commit`` is a trunk change's commit row."""
    changes = ds.changes.assign(is_trunk=False, _commit=-1)
    if not trunk:
        return changes
    linked = positions(ds, links)
    rows = np.unique(linked["_commit"].to_numpy(np.int64))
    own = trunk_frame(ds.commits, rows[rows >= 0])
    if own.empty:
        return changes
    return pd.concat([changes, own.assign(is_trunk=True)], ignore_index=True)


def change_positions(changes: pd.DataFrame, n_changes: int, links: pd.DataFrame) -> IntArray:
    """Row in ``all_changes`` of each link (-1 for a trunk commit that is not there)."""
    trunk_rows = changes["_commit"].to_numpy(np.int64)[n_changes:]
    commit = links["_commit"].to_numpy(np.int64)
    found = np.searchsorted(trunk_rows, commit).clip(0, max(trunk_rows.size - 1, 0))
    trunk = (
        np.where(trunk_rows[found] == commit, n_changes + found, -1)
        if trunk_rows.size
        else np.full(commit.shape, -1, dtype=np.int64)
    )
    change = links["_change"].to_numpy(np.int64)
    return np.where(change >= 0, change, trunk).astype(np.int64)


def success_mask(ds: Dataset, environments: Any = None) -> npt.NDArray[np.bool_]:
    """Per row of ``ds.deployments``: a successful production deployment."""
    deployments = ds.deployments
    ok = production_mask(deployments, environments) & deployments["status"].isin(
        SUCCESS_STATUSES
    ).fillna(False).astype(bool)
    return ok.to_numpy(dtype=bool)


def deployment_rank(deployments: pd.DataFrame) -> IntArray:
    """Per deployment row, its place in time (then environment, id): breaks ties by content,
    never by row order."""
    order = (
        deployments.assign(_at=deployed_time(deployments), _pos=np.arange(len(deployments)))
        .sort_values(["_at", "environment", "deployment_id", "source", "repo"], kind="stable")[
            "_pos"
        ]
        .to_numpy(np.int64)
    )
    rank = np.empty(len(deployments), dtype=np.int64)
    rank[order] = np.arange(len(deployments), dtype=np.int64)
    return rank


def is_bot(changes: pd.DataFrame, bot_pattern: str = BOT_PATTERN) -> pd.Series:
    """``is_bot`` where known, else whether the author's name looks like a bot's."""
    unknown = changes["is_bot"].isna()
    by_name = pd.Series(False, index=changes.index)
    if bool(unknown.any()):
        authors = changes.loc[unknown, "author"]
        by_name.loc[unknown] = authors.str.contains(bot_pattern, regex=True).fillna(False)
    return changes["is_bot"].fillna(by_name).fillna(False).astype(bool)


def lead_rows(
    ds: Dataset,
    links: pd.DataFrame,
    changes: pd.DataFrame,
    *,
    environments: Any = None,
    exclude_bots: bool = True,
    bot_pattern: str = BOT_PATTERN,
) -> pd.DataFrame:
    """:func:`lead_times` from prepared links and changes, with a ``_deployment`` column."""
    linked = positions(ds, links)
    deployment = linked["_deployment"].to_numpy(np.int64)
    keep = success_mask(ds, environments)[deployment]
    where = change_positions(changes, len(ds.changes), linked)
    keep &= where >= 0
    deployment, where = deployment[keep], where[keep]
    approximate = linked["is_approximate"].to_numpy(dtype=bool, na_value=False)[keep]
    rank = deployment_rank(ds.deployments)[deployment]
    order = np.lexsort((rank, where))
    first = order[np.r_[True, where[order][1:] != where[order][:-1]]] if order.size else order
    deployments = ds.deployments
    picked = changes.iloc[where[first]][_CHANGE_COLUMNS].reset_index(drop=True)
    chosen = deployment[first]
    frame = picked.assign(
        deployment_id=deployments["deployment_id"].array.take(chosen),
        environment=deployments["environment"].array.take(chosen),
        is_approximate=pd.array(approximate[first], dtype="boolean"),
        deployed_at=deployed_time(deployments).array.take(chosen),
        _deployment=chosen,
        _rank=rank[first],
    )
    frame["is_bot"] = is_bot(frame, bot_pattern)
    if exclude_bots:
        frame = frame.loc[~frame["is_bot"].to_numpy(dtype=bool)]
    if len(frame):
        table = pa.table(
            {"r": frame["_rank"].to_numpy(), "c": pa.array(frame["change_id"], pa.large_string())}
        )
        frame = frame.iloc[
            pc.sort_indices(table, sort_keys=[("r", "ascending"), ("c", "ascending")]).to_numpy()
        ]
    frame = frame.drop(columns="_rank").reset_index(drop=True)
    ready = frame["ready_at"].fillna(frame["created_at"])
    frame["lead_time"] = frame["deployed_at"] - frame["first_commit_at"]
    frame["merge_to_deploy"] = frame["deployed_at"] - frame["merged_at"]
    frame["coding"] = ready - frame["first_commit_at"]
    frame["pickup"] = frame["first_review_at"] - ready
    frame["review"] = frame["merged_at"] - frame["first_review_at"]
    frame["deploy"] = frame["merge_to_deploy"]
    trunk_rows = frame["is_trunk"].fillna(False).to_numpy(dtype=bool)
    for name in ("coding", "pickup", "review"):  # a commit without pull request has no stages
        frame[name] = frame[name].mask(trunk_rows)
    for name in ("is_revert", "is_hotfix", "is_trunk", "is_bot"):
        frame[name] = frame[name].fillna(False).astype("boolean")
    rows: pd.DataFrame = frame
    return rows


def lead_times(
    ds: Dataset,
    *,
    links: pd.DataFrame | None = None,
    environments: Any = None,
    since: Any = None,
    exclude_bots: bool = True,
    bot_pattern: str = BOT_PATTERN,
    trunk: bool = True,
) -> pd.DataFrame:
    """One row per deployed change, deployed by its first successful production deployment.

    Columns: the change's timestamps, ``deployment_id``/``environment``/``deployed_at`` of
    that deployment, ``is_approximate`` (linked by time, not by commit graph), ``is_trunk``
    (a commit without pull request), and the spans as timedeltas: ``lead_time`` (first commit
    → deployed), ``merge_to_deploy``, and the breakdown ``coding`` (first commit → ready, or
    created), ``pickup`` (→ first review by someone else), ``review`` (→ merged), ``deploy``
    (→ deployed). ``links``: a ``deployment_changes`` table to use instead of
    :func:`deliverypulse.linking`. ``exclude_bots`` drops changes by bots (``is_bot``, or an
    author matching ``bot_pattern``).
    """
    if links is None:
        links = link_rows(ds, environments=environments, since=since, trunk=trunk)
    linked = positions(ds, links)
    if not trunk:
        linked = linked.loc[linked["_change"].to_numpy(np.int64) >= 0]
    changes = all_changes(ds, linked, trunk=trunk)
    frame = lead_rows(
        ds,
        linked,
        changes,
        environments=environments,
        exclude_bots=exclude_bots,
        bot_pattern=bot_pattern,
    )
    result: pd.DataFrame = frame.drop(columns=[c for c in frame.columns if c in POSITIONS])
    return result


__all__ = [
    "BOT_PATTERN",
    "DURATIONS",
    "all_changes",
    "change_positions",
    "deployment_rank",
    "is_bot",
    "lead_rows",
    "lead_times",
    "success_mask",
]
