"""Lead time for changes: one row per deployed change, with the stages it went through.

``lead_time`` is first commit → deployed (DORA); ``merge_to_deploy`` is what GitLab reports.
Spans stay signed here so an analyst can see data errors; :func:`deliverypulse.dora`
excludes negative spans and counts them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.dataset import Dataset
from deliverypulse.dora.options import MetricOptions
from deliverypulse.linking import Links
from deliverypulse.linking.graph import take_strings
from deliverypulse.rules import BOT_PATTERN
from deliverypulse.selection import SUCCESS_STATUSES, deployed_time, status_mask
from deliverypulse.timeutil import IntArray

_CHANGE_COLUMNS = [
    "source",
    "repo",
    "change_id",
    "author",
    "is_bot",
    "is_revert",
    "is_hotfix",
    "is_trunk",
    "is_counted",
    "first_commit_at",
    "created_at",
    "ready_at",
    "first_review_at",
    "merged_at",
]
DURATIONS = ("lead_time", "merge_to_deploy", "coding", "pickup", "review", "deploy")


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
        # Each distinct name is matched once (a few thousand authors, millions of changes).
        codes, names = pd.factorize(changes.loc[unknown, "author"])
        matched = pd.Series(names, dtype="string").str.contains(bot_pattern, regex=True)
        found = np.append(matched.fillna(False).to_numpy(dtype=bool), False)  # -1: no author
        by_name.loc[unknown] = found[codes]
    return changes["is_bot"].fillna(by_name).fillna(False).astype(bool)


def lead_rows(
    ds: Dataset,
    links: Links,
    changes: pd.DataFrame,
    link_change: IntArray,
    options: MetricOptions,
) -> tuple[pd.DataFrame, IntArray]:
    """:func:`deliverypulse.lead_times` from linked changes, and each row's deployment (its
    position in ``ds.deployments``): ``changes`` is every change, ``link_change`` the row in
    it of each link."""
    deployment = links.deployment
    keep = status_mask(ds.deployments, SUCCESS_STATUSES, options.environments)[deployment]
    where = link_change
    keep &= where >= 0
    deployment, where = deployment[keep], where[keep]
    approximate = links.table["is_approximate"].to_numpy(dtype=bool, na_value=False)[keep]
    rank = deployment_rank(ds.deployments)[deployment]
    order = np.lexsort((rank, where))
    first = order[np.r_[True, where[order][1:] != where[order][:-1]]] if order.size else order
    # ``changes`` says what counts as a change (bots excluded by default): one definition.
    first = first[changes["is_counted"].to_numpy(dtype=bool, na_value=False)[where[first]]]
    if first.size:  # in deployment order, then by change id: decided before any row is copied
        table = pa.table({"r": rank[first], "c": take_strings(changes["change_id"], where[first])})
        first = first[
            pc.sort_indices(table, sort_keys=[("r", "ascending"), ("c", "ascending")]).to_numpy()
        ]
    deployments = ds.deployments
    rows = deployment[first]
    # Columns first, then rows, once: only the columns read are copied.
    picked = changes[_CHANGE_COLUMNS].iloc[where[first]].reset_index(drop=True)
    frame = picked.drop(columns=["is_counted"]).assign(
        deployment_id=deployments["deployment_id"].array.take(rows),
        environment=deployments["environment"].array.take(rows),
        is_approximate=pd.array(approximate[first], dtype="boolean"),
        deployed_at=deployed_time(deployments).array.take(rows),
    )
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
    return frame, rows


__all__ = ["DURATIONS", "deployment_rank", "is_bot", "lead_rows"]
