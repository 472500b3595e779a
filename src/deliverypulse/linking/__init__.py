"""Link changes to the production deployments that shipped them: the ``deployment_changes`` table.

The stage has three parts: the commit graph of every repo (:mod:`.graph`: shas as integers,
parents as CSR, a vectorised label propagation), link assembly (:mod:`.assemble`: graph
difference per repo and environment, merge-time fallback, positions), and trunk changes
(:mod:`.trunk`: deployed commits without a pull request, classified by
:mod:`deliverypulse.rules`); change requests are linked to the deployments they covered by
:mod:`.change_requests` (:func:`link_change_requests`, :func:`caused_by_deployments`).
:func:`link` is the stage's public face; :func:`find_links` gives later stages the
:class:`Links` value with positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.linking.assemble import Links, find_links
from deliverypulse.linking.change_requests import caused_by_deployments, link_change_requests
from deliverypulse.linking.trunk import trunk_frame
from deliverypulse.rules import BOT_PATTERN, HOTFIX_PATTERN


def link(
    ds: Dataset,
    *,
    environments: Any = None,
    since: Any = None,
    approximate: bool = True,
    trunk: bool = True,
) -> pd.DataFrame:
    """The ``deployment_changes`` table: which changes each production deployment shipped.

    ``environments``: environment names to treat as production (default: ``is_production``,
    else an environment named ``prod``/``production``). ``since``: the collection's start, one
    time or a frame of ``source``, ``repo``, ``start``; nothing made before it is linked, so a
    first deployment does not sweep up old history (default: where the dataset recorded each
    repo's collection started, ``ds.collection_start``; where it read the whole history, the
    creation of the repo and environment's first production deployment).
    ``approximate``: where the commit graph is missing, link by merge time instead and flag
    the rows ``is_approximate``. ``trunk``: deployed commits that belong to no change become
    changes of their own, ``change_id`` = sha (see :func:`trunk_changes`).
    """
    found = find_links(
        ds, environments=environments, since=since, approximate=approximate, trunk=trunk
    )
    return found.table


def trunk_changes(
    ds: Dataset,
    links: pd.DataFrame | Links,
    *,
    hotfix_pattern: str = HOTFIX_PATTERN,
    bot_pattern: str = BOT_PATTERN,
) -> pd.DataFrame:
    """Changes (``changes`` schema) for linked commits that belong to no pull request.

    A commit pushed straight to the default branch is its own change: first commit = authored,
    merged = committed, no review; its subject is classified like a pull request's title
    (:func:`deliverypulse.rules.classify_changes`), so trunk-based teams get the same failure
    signals.
    """
    found = links if isinstance(links, Links) else Links.of_table(ds, links)
    rows = np.unique(found.commit)
    return trunk_frame(
        ds.commits, rows[rows >= 0], hotfix_pattern=hotfix_pattern, bot_pattern=bot_pattern
    )


__all__ = [
    "Links",
    "caused_by_deployments",
    "find_links",
    "link",
    "link_change_requests",
    "trunk_changes",
    "trunk_frame",
]
