"""Which deployments count: production, successful, in time order, and which are rollbacks.

Every stage selects deployments through here (the linker, the failure outcomes, the lead
times), so "a successful production deployment" and "a rollback" mean one thing everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.rules import PRODUCTION_PATTERN, production_flags
from deliverypulse.timeutil import BoolArray

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


def rollback_flags(success: pd.DataFrame) -> BoolArray:
    """Per successful deployment (time order within each sequence, as
    :func:`successful_deployments` gives): does it roll back the deployment before it?

    The one rollback rule. It is a rollback if the provider marked it (``is_rollback``), or if
    it deploys a sha that an earlier successful deployment of the same repo and environment
    already deployed, other than the one live now (deploying the live sha again is a redeploy).
    The first deployment of a sequence rolls nothing back. Connectors record only explicit
    markers; the sequence is judged here, over everything collected, not page by page.
    """
    groups = success.groupby(SEQUENCE, sort=False)
    has_previous = groups.cumcount().to_numpy() > 0
    previous_sha = groups["sha"].shift(1)
    seen = success.duplicated([*SEQUENCE, "sha"]) & success["sha"].notna()
    redeploy = (success["sha"] == previous_sha).fillna(False).astype(bool)
    marked = success["is_rollback"].fillna(False).astype(bool)
    flags: BoolArray = ((marked | (seen & ~redeploy)) & has_previous).to_numpy(dtype=bool)
    return flags


__all__ = [
    "ATTEMPT_STATUSES",
    "FAILED_STATUSES",
    "SEQUENCE",
    "SUCCESS_STATUSES",
    "deployed_time",
    "production_deployments",
    "production_mask",
    "rollback_flags",
    "status_mask",
    "successful_deployments",
]
