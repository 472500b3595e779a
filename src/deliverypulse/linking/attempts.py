"""What each production deployment attempt put live, or tried to: its batch.

Linking gives every change to the first successful deployment that shipped it (nothing ships
twice). A batch is a different question: what did this attempt put live, or try to? For most
successful deployments the answers agree. They differ in two cases:

- after a rollback, the next deployment puts live again the changes the rollback took out;
- a failed attempt shipped nothing, but it tried to put live the commits its sha reaches that
  the environment's live deployment does not (the commit-graph difference).

Both are read off one min-label propagation over the successful deployments of each repo and
environment (:func:`.graph.propagate`): every commit gets the first deployment that reached it,
and every ancestor of a commit has a label no greater than the commit's. So the commits that an
attempt's sha reaches and the live deployment's does not are those reachable from the attempt
with a label above that of the live deployment's own commit; a walk from the attempt's sha that
stops at labels at or below it visits exactly them, at a cost of the batch's size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deliverypulse.dataset import Dataset
from deliverypulse.linking.assemble import Links
from deliverypulse.linking.graph import Graph, build, propagate
from deliverypulse.selection import SEQUENCE, rollback_flags
from deliverypulse.timeutil import BoolArray, IntArray

_NONE = np.iinfo(np.int64).max
COLUMNS = ("attempt", "change", "commit", "shipped")


def _empty() -> pd.DataFrame:
    none = np.zeros(0, dtype=np.int64)
    return pd.DataFrame({"attempt": none, "change": none, "commit": none, "shipped": none != 0})


def attempt_changes(ds: Dataset, attempts: pd.DataFrame, links: Links) -> pd.DataFrame:
    """The batch of every attempt: one row per (attempt, change or trunk commit).

    ``attempts``: production deployment attempts in time order within each source, repo and
    environment, with ``_row`` (position in ``ds.deployments``) and ``is_success`` (what
    :func:`deliverypulse.dora.failure.attempts` gives). Columns: ``attempt`` (position in
    ``attempts``), ``change`` (row in ``ds.changes``, -1 for a trunk commit), ``commit`` (row in
    ``ds.commits``, -1 for a change) and ``shipped`` (this attempt is the deployment that
    first shipped it; false for what a success put live again after a rollback, and for what
    a failed attempt tried to put live).

    A successful deployment's batch is what it shipped (``links``) plus, after a rollback, what
    it put live again. A failed attempt's batch is the commit-graph difference between its sha
    and the live deployment's (the last success before it); it is empty where there is no live
    deployment or either sha is missing from the graph.
    """
    if attempts.empty:
        return _empty()
    frame = attempts.reset_index(drop=True)
    success = frame["is_success"].to_numpy(dtype=bool)
    position = np.full(len(ds.deployments), -1, dtype=np.int64)
    position[frame["_row"].to_numpy(np.int64)] = np.arange(len(frame), dtype=np.int64)
    attempt = position[links.deployment]
    shipped = pd.DataFrame(
        {"attempt": attempt, "change": links.change, "commit": links.commit, "shipped": True}
    ).loc[attempt >= 0]

    live = _live(frame, success)
    ok = frame.loc[success]
    after_rollback = np.zeros(len(frame), dtype=bool)
    flags = rollback_flags(ok)
    rolled = np.flatnonzero(success)[flags]
    # The success after a rollback: its live deployment is a rollback.
    after_rollback[success & np.isin(live, rolled)] = True
    wanted = np.flatnonzero((~success | after_rollback) & (live >= 0))
    if wanted.size == 0 or ds.commits.empty:
        return shipped.reset_index(drop=True)
    walked = _walk(ds, frame, success, live, wanted, links)
    both = pd.concat([shipped, walked], ignore_index=True)
    both = both.drop_duplicates(["attempt", "change", "commit"], keep="first")
    return both.sort_values(["attempt", "change", "commit"], kind="stable").reset_index(drop=True)


def _live(frame: pd.DataFrame, success: BoolArray) -> IntArray:
    """Per attempt, the position of the last successful attempt before it in its sequence
    (-1 for none): the deployment that was live when it started."""
    group = frame.groupby(SEQUENCE, sort=False).ngroup().to_numpy(np.int64)
    marks = pd.Series(np.where(success, np.arange(len(frame)), np.nan))
    previous = marks.groupby(group).shift(1).groupby(group).ffill()
    live: IntArray = np.asarray(previous.fillna(-1), dtype=np.int64)
    return live


def _walk(
    ds: Dataset,
    frame: pd.DataFrame,
    success: BoolArray,
    live: IntArray,
    wanted: IntArray,
    links: Links,
) -> pd.DataFrame:
    """The commit-graph difference (attempt's sha minus its live deployment's) of ``wanted``,
    on the graph linking built when it fits this dataset (else built here, once)."""
    commits, changes = ds.commits, ds.changes
    built = links.built
    if built is None or not built.fits(commits, changes, ds.deployments):
        built = build(commits, changes, ds.deployments)
    graph, counts = built.graph, built.counts
    rows = frame["_row"].to_numpy(np.int64)
    node = graph.found[2][rows]
    repo = built.codes.repo[2][rows]
    env = pd.factorize(frame["environment"].fillna(""), sort=True)[0]
    slot = pd.Series(env).groupby(repo).rank(method="dense").to_numpy(np.int64) - 1
    rank = np.arange(1, len(frame) + 1, dtype=np.int64)
    parts = []
    for each in np.unique(slot[wanted]):
        in_slot = slot == each
        seeds = np.flatnonzero(in_slot & success & (node >= 0))
        labels = np.full(graph.size, _NONE, dtype=np.int64)
        propagate(graph, labels, node[seeds], rank[seeds])
        mine = wanted[slot[wanted] == each]
        mine = mine[(node[mine] >= 0) & (node[live[mine]] >= 0)]
        if mine.size:
            threshold = labels[node[live[mine]]]
            parts.append(_reach_above(graph, labels, mine, node[mine], threshold))
    if not parts:
        return _empty()
    visited = pd.concat(parts, ignore_index=True)
    return _as_changes(commits, changes, graph, counts, visited)


def _reach_above(
    graph: Graph, labels: IntArray, attempts: IntArray, starts: IntArray, threshold: IntArray
) -> pd.DataFrame:
    """Per attempt, the nodes reachable from its start with a label above its threshold."""
    found_attempt, found_node = [], []
    inside = labels[starts] > threshold
    owner, frontier, limit = attempts[inside], starts[inside], threshold[inside]
    seen: set[tuple[int, int]] = set()
    while frontier.size:
        keys = list(zip(owner.tolist(), frontier.tolist(), strict=True))
        fresh = np.array([key not in seen for key in keys], dtype=bool)
        seen.update(keys)
        owner, frontier, limit = owner[fresh], frontier[fresh], limit[fresh]
        if not frontier.size:
            break
        found_attempt.append(owner)
        found_node.append(frontier)
        begin, end = graph.indptr[frontier], graph.indptr[frontier + 1]
        sizes = end - begin
        edge = np.repeat(begin, sizes) + (
            np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        )
        parent = graph.parent[edge]
        owner, limit = np.repeat(owner, sizes), np.repeat(limit, sizes)
        keep = labels[parent] > limit
        owner, frontier, limit = owner[keep], parent[keep], limit[keep]
    if not found_node:
        return pd.DataFrame({"attempt": np.zeros(0, np.int64), "node": np.zeros(0, np.int64)})
    return pd.DataFrame(
        {"attempt": np.concatenate(found_attempt), "node": np.concatenate(found_node)}
    )


def _as_changes(
    commits: pd.DataFrame,
    changes: pd.DataFrame,
    graph: Graph,
    counts: IntArray,
    visited: pd.DataFrame,
) -> pd.DataFrame:
    """Visited nodes as the changes they belong to: a change by its merge sha or by its own
    commits (``change_id``), else a trunk commit (one parent, no change, no merge sha)."""
    change_node = graph.found[1]
    placed = np.flatnonzero(change_node >= 0)
    by_merge = visited.merge(
        pd.DataFrame({"node": change_node[placed], "change": placed}), on="node"
    )
    rows = graph.row[visited["node"].to_numpy(np.int64)]
    visited = visited.assign(_commit=rows)
    named = commits["change_id"]
    lookup = (
        changes[["source", "repo", "change_id"]]
        .assign(change=np.arange(len(changes), dtype=np.int64))
        .loc[change_node < 0]
    )
    owned = visited.assign(
        source=commits["source"].array.take(rows),
        repo=commits["repo"].array.take(rows),
        change_id=named.array.take(rows),
    ).merge(lookup, on=["source", "repo", "change_id"])
    is_merge = np.zeros(graph.size, dtype=bool)
    is_merge[change_node[placed]] = True
    node = visited["node"].to_numpy(np.int64)
    trunk = named.isna().to_numpy(dtype=bool)[rows] & (counts[rows] <= 1) & ~is_merge[node]
    parts = [
        by_merge[["attempt", "change"]].assign(commit=-1),
        owned[["attempt", "change"]].assign(commit=-1),
        visited.loc[trunk, ["attempt"]].assign(change=-1, commit=rows[trunk]),
    ]
    out: pd.DataFrame = pd.concat(parts, ignore_index=True).drop_duplicates().astype(np.int64)
    return out.assign(shipped=False)


__all__ = ["COLUMNS", "attempt_changes"]
