"""Lead time for changes: one row per deployed change, with the stages it went through.

``lead_time`` is first commit → deployed (DORA); ``merge_to_deploy`` is what GitLab reports.
Spans stay signed here so an analyst can see data errors; :func:`deliverypulse.metrics`
excludes negative spans and counts them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.link import link, successful_deployments, trunk_changes

#: Authors taken as bots when a change's ``is_bot`` is unknown (GitHub apps end in ``[bot]``).
BOT_PATTERN = r"(?i)(?:\[bot\]$|^dependabot|^renovate|^github-actions|^snyk-bot|-bot$)"

_CHANGE_COLUMNS = [
    "source",
    "repo",
    "change_id",
    "author",
    "is_bot",
    "is_revert",
    "is_hotfix",
    "reverts",
    "first_commit_at",
    "created_at",
    "ready_at",
    "first_review_at",
    "merged_at",
    "additions",
    "deletions",
    "commit_count",
]
DURATIONS = ("lead_time", "merge_to_deploy", "coding", "pickup", "review", "deploy")


def all_changes(ds: Dataset, links: pd.DataFrame, *, trunk: bool = True) -> pd.DataFrame:
    """The dataset's changes plus, with ``trunk``, the commits that are changes of their own."""
    changes = ds.changes.assign(is_trunk=False)
    if not trunk:
        return changes
    own = trunk_changes(ds, links)
    if own.empty:
        return changes
    return pd.concat([changes, own.assign(is_trunk=True)], ignore_index=True)


def is_bot(changes: pd.DataFrame, bot_pattern: str = BOT_PATTERN) -> pd.Series:
    """``is_bot`` where known, else whether the author's name looks like a bot's."""
    by_name = changes["author"].str.contains(bot_pattern, regex=True).fillna(False)
    return changes["is_bot"].fillna(by_name).fillna(False).astype(bool)


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
    (→ deployed). ``links``: a ``deployment_changes`` table to use instead of :func:`link`.
    """
    if links is None:
        links = link(ds, environments=environments, since=since, trunk=trunk)
    success = successful_deployments(ds, environments)[
        ["source", "repo", "deployment_id", "deployed_at"]
    ]
    shipped = links.merge(success, on=["source", "repo", "deployment_id"], how="inner")
    shipped = shipped.sort_values(
        ["deployed_at", "deployment_id", "environment"], kind="stable", na_position="last"
    ).drop_duplicates(["source", "repo", "change_id"])
    changes = all_changes(ds, links, trunk=trunk)
    columns = [*_CHANGE_COLUMNS, "is_trunk"]
    frame = shipped[
        [
            "source",
            "repo",
            "change_id",
            "deployment_id",
            "environment",
            "is_approximate",
            "deployed_at",
        ]
    ].merge(changes[columns], on=["source", "repo", "change_id"], how="inner")
    frame["is_bot"] = is_bot(frame, bot_pattern)
    if exclude_bots:
        frame = frame.loc[~frame["is_bot"]]
    frame = frame.sort_values(["source", "repo", "deployed_at", "change_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    ready = frame["ready_at"].fillna(frame["created_at"])
    frame["lead_time"] = frame["deployed_at"] - frame["first_commit_at"]
    frame["merge_to_deploy"] = frame["deployed_at"] - frame["merged_at"]
    frame["coding"] = ready - frame["first_commit_at"]
    frame["pickup"] = frame["first_review_at"] - ready
    frame["review"] = frame["merged_at"] - frame["first_review_at"]
    frame["deploy"] = frame["merge_to_deploy"]
    trunk_rows = frame["is_trunk"].fillna(False).to_numpy(dtype=bool)
    frame.loc[trunk_rows, ["coding", "pickup", "review"]] = pd.NaT  # no pull request stages
    for name in ("is_revert", "is_hotfix", "is_trunk"):
        frame[name] = frame[name].fillna(False).astype("boolean")
    return frame


__all__ = ["BOT_PATTERN", "DURATIONS", "all_changes", "is_bot", "lead_times"]
