"""Which deployments count: production, successful, in time order, and which are rollbacks.

Every stage selects deployments through here (the linker, the failure outcomes, the lead
times), so "a successful production deployment" and "a rollback" mean one thing everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.rules import (
    PRODUCTION_PATTERN,
    production_flags,
    release_lines,
    release_order,
)
from deliverypulse.timeutil import NAT, BoolArray, IntArray, as_micros

#: Statuses of a deployment that reached its environment.
SUCCESS_STATUSES = ("success",)
#: Statuses of a deployment that failed on its own.
FAILED_STATUSES = ("failure", "error")
#: Statuses that count as a deployment attempt (the denominator of the failure rate).
ATTEMPT_STATUSES = (*SUCCESS_STATUSES, *FAILED_STATUSES)
#: What makes one deployment sequence: deployments of a repo to one environment.
SEQUENCE = ["source", "repo", "environment"]


def production_mask(deployments: pd.DataFrame, environments: Any = None) -> pd.Series:
    """Rows that are production deployments.

    With ``environments`` (names), exactly those environments. Otherwise ``is_production``,
    and where that is unknown an environment whose name matches
    :data:`deliverypulse.rules.PRODUCTION_PATTERN`.
    """
    env = deployments["environment"]
    if environments is not None:
        names = [environments] if isinstance(environments, str) else list(environments)
        return env.isin(names).fillna(False).astype(bool)
    by_name = production_flags(env, PRODUCTION_PATTERN)
    return deployments["is_production"].fillna(by_name).fillna(False).astype(bool)


def deployed_time(deployments: pd.DataFrame) -> pd.Series:
    """When a deployment took effect: ``finished_at``, else ``created_at``."""
    return deployments["finished_at"].fillna(deployments["created_at"])


def status_mask(
    deployments: pd.DataFrame, statuses: tuple[str, ...], environments: Any = None
) -> BoolArray:
    """Per row of ``deployments``: a production deployment with one of ``statuses``."""
    chosen = deployments["status"].isin(statuses).fillna(False).astype(bool)
    mask: BoolArray = (production_mask(deployments, environments) & chosen).to_numpy(dtype=bool)
    return mask


def production_deployments(
    ds: Dataset, statuses: tuple[str, ...], environments: Any = None
) -> pd.DataFrame:
    """Production deployments with one of ``statuses``, in time order per repo and environment.

    Adds ``deployed_at`` and ``_row`` (the position in ``ds.deployments``); ties are broken by
    ``created_at`` then ``deployment_id`` so that row order never matters. Keeps every column
    of ``deployments``, user columns included; a missing environment becomes "".
    """
    keep = status_mask(ds.deployments, statuses, environments)
    frame = ds.deployments.loc[keep].copy()
    frame["_row"] = np.flatnonzero(keep)
    frame["environment"] = frame["environment"].fillna("")
    frame["deployed_at"] = deployed_time(frame)
    return frame.sort_values(
        [*SEQUENCE, "deployed_at", "created_at", "deployment_id"], kind="stable"
    ).reset_index(drop=True)


def successful_deployments(ds: Dataset, environments: Any = None) -> pd.DataFrame:
    """Successful production deployments in time order, with ``order`` (0, 1, ... within each
    source, repo and environment) added to what :func:`production_deployments` gives."""
    frame = production_deployments(ds, SUCCESS_STATUSES, environments)
    frame["order"] = frame.groupby(SEQUENCE, sort=False).cumcount()
    return frame


def rollback_flags(success: pd.DataFrame, reached_by: IntArray | None = None) -> BoolArray:
    """Per successful deployment (time order within each sequence, as
    :func:`successful_deployments` gives): does it roll back the live deployment of its line?

    The one rollback rule. A rollback deploys a commit that its repo, environment and line
    already had live: the provider marked it (``is_rollback``), or an earlier deployment of the
    line had a commit that contains this one (with the commit graph, ``reached_by``), or, where
    the graph does not say, an earlier deployment of the environment had this very sha.
    Deploying the line's live sha again is a redeploy, not a rollback; nor is a deployment
    started before the live one was (two overlapping deployments finishing out of order), nor a
    release whose version is lower than the live one's (``0.9.3`` tagged after ``0.9.5``: an
    old release tagged late; :func:`deliverypulse.rules.release_order`); the first deployment
    of a line rolls nothing back. The line is the release line of a version
    ref (``v1.2.3`` and ``1.2.0rc1``: 1.2; :func:`deliverypulse.rules.release_lines`),
    otherwise the environment, so a patch release of an older line (1.0.1 tagged after 1.1.0)
    rolls nothing back, and neither does an archive tag (``0.12.x``) of an old line's commit.

    ``reached_by`` (:attr:`deliverypulse.linking.Links.reached_by`): per row of
    ``ds.deployments``, the row of the first deployment of the same line whose commit reached
    that one's; -1 where the graph does not say. Connectors record only explicit markers; the
    sequence is judged here, over everything collected, not page by page.
    """
    return rollback_targets(success, reached_by) >= 0


def rollback_targets(success: pd.DataFrame, reached_by: IntArray | None = None) -> IntArray:
    """Per row of ``success`` (see :func:`rollback_flags`): the position in ``success`` of the
    deployment it rolls back (the live one of its line), or -1 when it is no rollback."""
    n = len(success)
    line = release_lines(success["ref"]).fillna("").to_numpy(dtype=object)
    frame = success[[*SEQUENCE, "sha", "is_rollback"]].assign(
        _line=line, _position=np.arange(n, dtype=np.int64)
    )
    groups = frame.groupby([*SEQUENCE, "_line"], sort=False, dropna=False)
    live = groups["_position"].shift(1).fillna(-1).to_numpy(np.int64)
    sha = frame["sha"]
    redeploy = (sha == groups["sha"].shift(1)).fillna(False).to_numpy(dtype=bool)
    contained = (frame.duplicated([*SEQUENCE, "sha"]) & sha.notna()).to_numpy(dtype=bool)
    if reached_by is not None and "_row" in success:
        rows = success["_row"].to_numpy(np.int64)
        first = reached_by[rows]
        known = first >= 0
        contained = np.where(known, first != rows, contained)
    # Two overlapping deployments finishing out of order: the one started first cannot
    # roll back the one it started before.
    created = as_micros(success["created_at"])
    live_created = np.where(live >= 0, created[np.maximum(live, 0)], NAT)
    overtaken = (created != NAT) & (live_created != NAT) & (created < live_created)
    # A release tagged after a higher one of its line (tags made late, for old releases) is
    # no rollback: going back by tagging names a higher version.
    order = release_order(success["ref"]).fillna(-1).to_numpy(np.int64)
    live_order = np.where(live >= 0, order[np.maximum(live, 0)], -1)
    overtaken |= (order >= 0) & (live_order >= 0) & (order < live_order)
    marked = frame["is_rollback"].fillna(False).to_numpy(dtype=bool)
    rollback = (marked | (contained & ~redeploy & ~overtaken)) & (live >= 0)
    return np.where(rollback, live, -1).astype(np.int64)


__all__ = [
    "ATTEMPT_STATUSES",
    "FAILED_STATUSES",
    "SEQUENCE",
    "SUCCESS_STATUSES",
    "deployed_time",
    "production_deployments",
    "production_mask",
    "rollback_flags",
    "rollback_targets",
    "status_mask",
    "successful_deployments",
]
