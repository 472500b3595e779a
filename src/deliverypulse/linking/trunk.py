"""Trunk changes: a commit pushed straight to the deployed branch, without a pull request, is a
change of its own, so a team that never opens pull requests still gets lead times and failure
signals. Its revert, hotfix and bot flags come from :mod:`deliverypulse.rules`, the same rules
that classify pull and merge requests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.rules import BOT_PATTERN, HOTFIX_PATTERN, classify_changes
from deliverypulse.store.coerce import pandas_dtype
from deliverypulse.store.schemas import CHANGES
from deliverypulse.timeutil import IntArray


def _nulls(dtype: Any, n: int) -> pd.Series:
    """An all-missing column of ``dtype`` (built without a Python loop over rows)."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.Series(np.full(n, "NaT", dtype="datetime64[us]")).dt.tz_localize("UTC")
    empty = pd.Series(np.full(n, None, dtype=object))
    return empty if dtype == np.dtype("O") else empty.astype(dtype)


def trunk_frame(
    commits: pd.DataFrame,
    rows: IntArray,
    *,
    hotfix_pattern: str = HOTFIX_PATTERN,
    bot_pattern: str = BOT_PATTERN,
) -> pd.DataFrame:
    """The changes (``changes`` schema) made of ``commits`` at ``rows``, one per commit.

    First commit = authored, merged = committed, no review; the subject is the title, so a
    ``Revert "..."`` or hotfix subject marks a revert or hotfix, and a bot author a bot.
    """
    picked = commits.iloc[rows].reset_index(drop=True)
    n = len(picked)
    authored = picked["authored_at"].fillna(picked["committed_at"])
    given = {
        "source": picked["source"],
        "repo": picked["repo"],
        "change_id": picked["sha"],
        "title": picked["subject"],
        "author": picked["author"],
        "state": pd.Series(["merged"] * n, dtype="string"),
        "created_at": authored,
        "first_commit_at": authored,
        "merged_at": picked["committed_at"],
        "merge_sha": picked["sha"],
        "additions": picked["additions"],
        "deletions": picked["deletions"],
        "commit_count": pd.Series(np.ones(n, dtype=np.int64), dtype="Int64"),
    }
    columns = {
        field.name: given.get(field.name, _nulls(pandas_dtype(field.type), n))
        for field in CHANGES.schema
    }
    return classify_changes(pd.DataFrame(columns), hotfix=hotfix_pattern, bots=bot_pattern)


__all__ = ["trunk_frame"]
