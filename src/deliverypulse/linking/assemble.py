"""Link assembly: which changes each production deployment shipped.

A deployment ships the commits reachable from its sha and from no earlier successful deployment
of the same repo and environment (commit-graph difference, :mod:`.graph`). Changes are placed by
their merge sha, else by their own commits, else (``approximate``) by merge time; deployed
commits that belong to no change are changes of their own (trunk). The result is a
:class:`Links`: the ``deployment_changes`` table plus, per row, the positions later stages join
on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.dataset import Dataset, collection_start_of
from deliverypulse.linking.graph import (
    Built,
    Codes,
    Graph,
    build,
    propagate,
    spread_to_ancestors,
    take_strings,
)
from deliverypulse.rules import release_lines
from deliverypulse.selection import production_mask, successful_deployments
from deliverypulse.store.coerce import coerce_frame
from deliverypulse.store.schemas import DEPLOYMENT_CHANGES
from deliverypulse.timeutil import NAT, BoolArray, IntArray, as_micros

_NONE = np.iinfo(np.int64).max  # label of a commit no deployment reaches
_BEFORE = 0  # label of a commit made before the collection's start
_KEY = ["source", "repo"]


@dataclass(frozen=True)
class Links:
    """What linking hands on: the ``deployment_changes`` table and, for each of its rows, the
    row of its deployment in ``ds.deployments`` and of its change in ``ds.changes`` (-1 for a
    trunk commit) or of its commit in ``ds.commits`` (-1 for a change), so that later stages
    join by position instead of matching strings."""

    table: pd.DataFrame
    deployment: IntArray
    change: IntArray
    commit: IntArray
    #: Per row of ``ds.deployments``: the row of the first successful production deployment
    #: of the same repo, environment and release line (:func:`deliverypulse.rules.release_lines`;
    #: no version: the environment), in time order, whose commit reaches this deployment's
    #: commit: itself when it is new to its line, an earlier one when that one's commit already
    #: contained it; -1 where the graph does not say (no commits, or history before the
    #: collection's start). None when the links did not come from the graph.
    reached_by: IntArray | None = None
    #: The commit graph the links were read from (of every deployment's sha), for the later
    #: steps of the same pass (each attempt's batch) to reuse; None when not from the graph.
    built: Built | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.table)

    @classmethod
    def empty(cls) -> Links:
        none = np.zeros(0, dtype=np.int64)
        return cls(coerce_frame(DEPLOYMENT_CHANGES, []), none, none, none)

    def select(self, keep: BoolArray) -> Links:
        """The rows where ``keep`` is true."""
        return Links(
            self.table.loc[keep].reset_index(drop=True),
            self.deployment[keep],
            self.change[keep],
            self.commit[keep],
            self.reached_by,
            self.built,
        )

    @classmethod
    def of_table(cls, ds: Dataset, table: pd.DataFrame) -> Links:
        """Positions for a ``deployment_changes`` table that did not come from :func:`link`
        (read back from disk, say), by matching ids once. Rows whose deployment, or whose change
        and commit, are not in ``ds`` are dropped."""
        frame = table.reset_index(drop=True)
        deployments = (
            ds.deployments[[*_KEY, "deployment_id"]]
            .assign(_deployment=np.arange(len(ds.deployments), dtype=np.int64))
            .drop_duplicates([*_KEY, "deployment_id"])
        )
        changes = (
            ds.changes[[*_KEY, "change_id"]]
            .assign(_change=np.arange(len(ds.changes), dtype=np.int64))
            .drop_duplicates([*_KEY, "change_id"])
        )
        commits = (
            ds.commits[[*_KEY, "sha"]]
            .rename(columns={"sha": "change_id"})
            .assign(_commit=np.arange(len(ds.commits), dtype=np.int64))
            .drop_duplicates([*_KEY, "change_id"])
        )
        frame = frame.merge(deployments, on=[*_KEY, "deployment_id"], how="inner")
        frame = frame.merge(changes, on=[*_KEY, "change_id"], how="left")
        frame = frame.merge(commits, on=[*_KEY, "change_id"], how="left")
        change = frame["_change"].fillna(-1).to_numpy(np.int64)
        commit = frame["_commit"].fillna(-1).to_numpy(np.int64)
        commit = np.where(change < 0, commit, -1)
        keep = (change >= 0) | (commit >= 0)
        deployment = frame["_deployment"].to_numpy(np.int64)
        frame = frame.drop(columns=["_deployment", "_change", "_commit"])
        return cls(
            frame.loc[keep].reset_index(drop=True), deployment[keep], change[keep], commit[keep]
        )


@dataclass
class _Inputs:
    """Everything the per-environment passes share, computed once."""

    success: pd.DataFrame
    built: Built
    graph: Graph
    codes: Codes
    parent_counts: IntArray
    change_node: IntArray  # graph node of each change's merge sha, or -1
    merge_node: BoolArray  # per graph node: is it some change's merge sha
    commit_change: pd.DataFrame  # (_change, _cnode) for commits that name their change


def _inputs(ds: Dataset, success: pd.DataFrame, since: Any, environments: Any) -> _Inputs:
    commits, changes = ds.commits, ds.changes
    # Every deployment's sha, not only the successes', so that the batches of failed attempts
    # (:mod:`.attempts`) read the same graph.
    built = build(commits, changes, ds.deployments)
    codes, graph, counts = built.codes, built.graph, built.counts
    rows = success["_row"].to_numpy(np.int64)
    success_repo = codes.repo[2][rows]
    success["_repo"] = success_repo
    env_code = pd.factorize(success["environment"], sort=True)[0]
    success["_slot"] = (
        pd.Series(env_code).groupby(success_repo).rank(method="dense").to_numpy(np.int64) - 1
    )
    success["_rank"] = np.arange(1, len(success) + 1, dtype=np.int64)
    success["_node"] = graph.found[2][rows]
    success["_since"] = as_micros(collection_start_of(ds, success, since))
    success["_start"] = _collection_start(ds, success, environments)

    change_node = graph.found[1]
    merge_node = np.zeros(graph.size, dtype=bool)
    merge_node[change_node[change_node >= 0]] = True
    return _Inputs(
        success=success,
        built=built,
        graph=graph,
        codes=codes,
        parent_counts=counts,
        change_node=change_node,
        merge_node=merge_node,
        commit_change=_commit_change_rows(commits, changes, graph, change_node),
    )


def _collection_start(ds: Dataset, success: pd.DataFrame, environments: Any) -> IntArray:
    """Per successful deployment, the start of its repo and environment's collection: where
    its repo's collection started (``_since``: the ``since`` given, else what the dataset
    recorded), else the creation of the first production deployment of that repo and
    environment."""
    given = success["_since"].to_numpy(np.int64)
    if (given != NAT).all():
        return given
    deployments = ds.deployments
    production = deployments.loc[production_mask(deployments, environments)]
    first = (
        production.assign(environment=production["environment"].fillna(""))
        .groupby(["source", "repo", "environment"])["created_at"]
        .min()
        .rename("_first")
    )
    aligned = success[["source", "repo", "environment"]].merge(
        first.reset_index(), on=["source", "repo", "environment"], how="left"
    )
    earliest = as_micros(aligned["_first"].fillna(success["created_at"]))
    return np.where(given != NAT, given, earliest)


def _commit_change_rows(
    commits: pd.DataFrame, changes: pd.DataFrame, graph: Graph, change_node: IntArray
) -> pd.DataFrame:
    """(change row, node) for commits that name a change whose merge sha is not in the graph:
    links rebase merges that have no merge sha."""
    empty = pd.DataFrame({"_change": np.zeros(0, np.int64), "_cnode": np.zeros(0, np.int64)})
    unplaced = np.flatnonzero(change_node < 0)
    if unplaced.size == 0 or commits.empty:
        return empty
    lookup = changes[["source", "repo", "change_id"]].iloc[unplaced].assign(_change=unplaced)
    named = commits["change_id"].isin(lookup["change_id"]).to_numpy(dtype=bool)
    if not named.any():
        return empty
    rows = commits.loc[named, ["source", "repo", "change_id"]].assign(_row=np.flatnonzero(named))
    rows = rows.merge(lookup, on=["source", "repo", "change_id"])
    node_of_row = np.full(len(commits), -1, dtype=np.int64)
    node_of_row[graph.row] = np.arange(graph.row.size)
    rows["_cnode"] = node_of_row[rows["_row"].to_numpy(np.int64)]
    return rows.loc[rows["_cnode"] >= 0, ["_change", "_cnode"]]


def find_links(
    ds: Dataset,
    *,
    environments: Any = None,
    since: Any = None,
    approximate: bool = True,
    trunk: bool = True,
) -> Links:
    """:func:`link` with the positions of each row's deployment, change or commit.

    ``since``: one time for every repo, or a frame of ``source``, ``repo``, ``start`` (see
    :func:`deliverypulse.dataset.start_frame`); ``None``: the dataset's
    ``collection_start``."""
    success = successful_deployments(ds, environments)
    if success.empty:
        return Links.empty()
    inputs = _inputs(ds, success, since, environments)
    graph = inputs.graph
    commit_repo = inputs.codes.repo[0]
    node_repo = commit_repo[graph.row]
    node_time = _node_times(ds, inputs)
    undated = node_time == NAT
    reached_by = np.full(len(ds.deployments), -1, dtype=np.int64)
    success["_line"] = pd.factorize(release_lines(success["ref"]).fillna(""))[0]
    parts: list[pd.DataFrame] = []
    for slot in range(int(success["_slot"].max()) + 1):
        in_slot = success.loc[success["_slot"] == slot]
        start_of_repo = np.full(inputs.codes.n_repo, NAT, dtype=np.int64)
        start_of_repo[in_slot["_repo"].to_numpy(np.int64)] = in_slot["_start"].to_numpy(np.int64)
        node_start = start_of_repo[node_repo]
        labels = np.full(graph.size, _NONE, dtype=np.int64)
        labels[(node_time != NAT) & (node_start != NAT) & (node_time < node_start)] = _BEFORE
        # An undated commit behind a pre-start one is pre-start too.
        spread_to_ancestors(graph, labels, _BEFORE, undated & (node_start != NAT))
        seeded = in_slot.loc[in_slot["_node"] >= 0]
        propagate(
            graph, labels, seeded["_node"].to_numpy(np.int64), seeded["_rank"].to_numpy(np.int64)
        )
        _reached_by(graph, reached_by, labels, seeded, success)
        graph_repos = np.zeros(start_of_repo.size, dtype=bool)
        graph_repos[seeded["_repo"].to_numpy(np.int64)] = True
        parts.append(_change_links(ds.changes, inputs, labels, graph_repos, in_slot, approximate))
        if trunk:
            parts.append(_trunk_links(ds.commits, inputs, labels, graph_repos[node_repo]))
    found = _finish(parts, success, ds.changes, ds.commits)
    return replace(found, reached_by=reached_by, built=inputs.built)


def _node_times(ds: Dataset, inputs: _Inputs) -> IntArray:
    """When each graph node was made: committed, else authored, else the merge time of a
    change whose merge sha it is; :data:`NAT` when nothing says."""
    commits = ds.commits
    row = inputs.graph.row
    times = as_micros(commits["committed_at"].fillna(commits["authored_at"]))[row]
    node = inputs.change_node
    missing = times == NAT
    if missing.any() and node.size:
        merged = as_micros(ds.changes["merged_at"])
        has = (node >= 0) & (merged != NAT)
        by_merge = np.full(times.size, NAT, dtype=np.int64)
        np.maximum.at(by_merge, node[has], merged[has])
        times = np.where(missing, by_merge, times)
    return times


def _reached_by(
    graph: Graph,
    reached_by: IntArray,
    labels: IntArray,
    seeded: pd.DataFrame,
    success: pd.DataFrame,
) -> None:
    """For one environment's deployments (in place): the row in ``ds.deployments`` of the
    first deployment of the same line whose commit reaches each one's commit.

    The environment's labels already give the first deployment of any line; where that one
    is of another line (a late tag of an old commit as a new release, say), the line's own
    deployments are propagated once more, for those lines only.
    """
    if seeded.empty:
        return
    node = seeded["_node"].to_numpy(np.int64)
    rank = seeded["_rank"].to_numpy(np.int64)
    line = seeded["_line"].to_numpy(np.int64)
    success_row = success["_row"].to_numpy(np.int64)
    success_line = success["_line"].to_numpy(np.int64)
    first = labels[node]
    known = (first != _NONE) & (first != _BEFORE)
    first = np.where(known, first, rank)
    other = known & (success_line[first - 1] != line)
    for chosen in np.unique(line[other]):
        own = line == chosen
        line_labels = np.where(labels == _BEFORE, _BEFORE, _NONE)
        propagate(graph, line_labels, node[own], rank[own])
        again = other & own
        first[again] = line_labels[node[again]]
    reached_by[seeded["_row"].to_numpy(np.int64)[known]] = success_row[first[known] - 1]


def _change_links(
    changes: pd.DataFrame,
    inputs: _Inputs,
    labels: IntArray,
    graph_repos: BoolArray,
    in_slot: pd.DataFrame,
    approximate: bool,
) -> pd.DataFrame:
    """Links of the changes in one environment slot: by graph where we can, else by time."""
    change_repo = inputs.codes.repo[1]
    node = inputs.change_node
    with_graph = graph_repos[change_repo] if change_repo.size else np.zeros(0, dtype=bool)
    by_merge = with_graph & (node >= 0)
    rows = np.flatnonzero(by_merge)
    parts = [pd.DataFrame({"_change": rows, "_rank": labels[node[rows]], "_approx": False})]
    # A change whose merge sha is unknown but whose own commits are in the graph.
    via = inputs.commit_change
    via = via.loc[~by_merge[via["_change"].to_numpy()] & with_graph[via["_change"].to_numpy()]]
    via = via.assign(_label=labels[via["_cnode"].to_numpy()])
    reached = via.loc[via["_label"] != _NONE].groupby("_change")["_label"].max()
    parts.append(
        pd.DataFrame(
            {"_change": reached.index.to_numpy(np.int64), "_rank": reached.to_numpy(np.int64)}
        ).assign(_approx=False)
    )
    if approximate:
        placed = by_merge.copy()
        placed[via["_change"].to_numpy()] = True
        timed = _time_links(changes, np.flatnonzero(~placed), change_repo, in_slot)
        parts.append(timed.assign(_approx=True))
    found = pd.concat(parts, ignore_index=True)
    found = found.loc[(found["_rank"] != _NONE) & (found["_rank"] != _BEFORE)]
    return found.assign(_row=found["_change"], _kind="change")


def _time_links(
    changes: pd.DataFrame, rows: IntArray, change_repo: IntArray, in_slot: pd.DataFrame
) -> pd.DataFrame:
    """Approximate links: a change ships with the first deployment of its base branch created
    after its merge. A deployment's branch is its ``ref`` where that is some change's base
    branch in the repo, else the repo's default branch (the base branch most of its changes
    have); a change without a base branch is taken to be on the default branch. So a backport
    merged into ``release/1.x`` is not linked to main's next deployment."""
    merged = pd.DataFrame(
        {
            "_change": rows,
            "_repo": change_repo[rows],
            "_merged": as_micros(changes["merged_at"])[rows],
        }
    )
    starts = in_slot.groupby("_repo")["_start"].first()
    merged["_start"] = starts.reindex(merged["_repo"]).fillna(np.iinfo(np.int64).max).to_numpy()
    merged = merged.loc[(merged["_merged"] != NAT) & (merged["_merged"] >= merged["_start"])]
    if merged.empty:
        return pd.DataFrame({"_change": rows[:0], "_rank": rows[:0]})
    targets = pd.DataFrame(
        {
            "_repo": in_slot["_repo"].to_numpy(np.int64),
            "_created": as_micros(in_slot["created_at"]),
            "_rank": in_slot["_rank"].to_numpy(np.int64),
        }
    ).sort_values(["_created", "_rank"], kind="stable")
    merged["_branch"], targets["_branch"] = _branches(
        changes, change_repo, merged, targets, in_slot["ref"]
    )
    found = pd.merge_asof(
        merged.sort_values("_merged", kind="stable"),
        targets,
        left_on="_merged",
        right_on="_created",
        by=["_repo", "_branch"],
        direction="forward",
    )
    found = found.loc[found["_rank"].notna()]
    return pd.DataFrame(
        {"_change": found["_change"].to_numpy(np.int64), "_rank": found["_rank"].to_numpy(np.int64)}
    )


def _branches(
    changes: pd.DataFrame,
    change_repo: IntArray,
    merged: pd.DataFrame,
    targets: pd.DataFrame,
    refs: pd.Series,
) -> tuple[IntArray, IntArray]:
    """Branch codes of the merged changes (their base branch) and of the deployments (their
    ``ref`` if it is a base branch of the repo, else the repo's default), for the repos in
    ``merged``; -1 where no branch is known."""
    in_repos = np.isin(change_repo, merged["_repo"].unique())
    known = pd.DataFrame(
        {"_repo": change_repo[in_repos], "_base": changes["base_ref"].to_numpy()[in_repos]}
    ).dropna()
    counts = known.value_counts(["_repo", "_base"], sort=True)
    default = counts.reset_index().drop_duplicates("_repo").set_index("_repo")["_base"]
    base = pd.Series(changes["base_ref"].to_numpy()[merged["_change"].to_numpy()], dtype=object)
    repo = merged["_repo"].to_numpy(np.int64)
    change_branch = base.where(base.notna(), pd.Series(repo).map(default))
    target_repo = targets["_repo"].to_numpy(np.int64)
    ref = refs.astype(object).where(refs.notna(), None).to_numpy()[targets.index.to_numpy()]
    is_base = pd.MultiIndex.from_arrays([target_repo, ref]).isin(counts.index)
    target_branch = pd.Series(ref, dtype=object).where(is_base, pd.Series(target_repo).map(default))
    codes = pd.factorize(pd.concat([change_branch, target_branch], ignore_index=True))[0]
    return codes[: len(merged)].astype(np.int64), codes[len(merged) :].astype(np.int64)


def _trunk_links(
    commits: pd.DataFrame, inputs: _Inputs, labels: IntArray, node_has_graph: BoolArray
) -> pd.DataFrame:
    """Deployed commits that belong to no change and are no merge: changes of their own."""
    rows = inputs.graph.row
    deployed = (labels != _NONE) & (labels != _BEFORE)
    own = commits["change_id"].isna().to_numpy(dtype=bool)[rows]
    single = inputs.parent_counts[rows] <= 1
    keep = deployed & own & single & ~inputs.merge_node & node_has_graph
    return pd.DataFrame(
        {
            "_change": -1,
            "_row": rows[keep],
            "_rank": labels[keep],
            "_approx": False,
            "_kind": "trunk",
        }
    )


def _finish(
    parts: list[pd.DataFrame],
    success: pd.DataFrame,
    changes: pd.DataFrame,
    commits: pd.DataFrame,
) -> Links:
    """Resolve ranks to deployments and row numbers to ids and positions."""
    links = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if links.empty:
        return Links.empty()
    deployment = links["_rank"].to_numpy(np.int64) - 1
    is_change = (links["_kind"] == "change").to_numpy(dtype=bool)
    row = links["_row"].to_numpy(np.int64)
    # Deployments before their repo's collection start (given or recorded) ship nothing.
    start = success["_since"].to_numpy(np.int64)[deployment]
    keep = (start == NAT) | (as_micros(success["deployed_at"])[deployment] >= start)
    # A (deployment, change or commit) pair once: its first row, found by one sort of int64
    # keys (no hash table of pairs).
    width = len(changes) + len(commits) + 2
    pair = deployment * width + np.where(is_change, row, len(changes) + 1 + row)
    first = np.zeros(pair.size, dtype=bool)
    first[np.unique(pair, return_index=True)[1]] = True
    keep &= first
    deployment, is_change, row = deployment[keep], is_change[keep], row[keep]
    change_id = _take_strings(changes["change_id"], row, is_change, commits["sha"])
    order = pc.sort_indices(
        pa.table({"d": deployment, "c": change_id}),
        sort_keys=[("d", "ascending"), ("c", "ascending")],
    ).to_numpy()
    deployment, is_change, row = deployment[order], is_change[order], row[order]
    frame = pd.DataFrame(
        {
            "source": _take(success["source"], deployment),
            "repo": _take(success["repo"], deployment),
            "deployment_id": _take(success["deployment_id"], deployment),
            "change_id": pd.Series(pd.array(change_id.take(order), dtype="string")),
            "sha": _series(_take_strings(changes["merge_sha"], row, is_change, commits["sha"])),
            "environment": _take(success["environment"], deployment).replace("", pd.NA),
            "is_approximate": pd.array(links["_approx"].to_numpy(dtype=bool)[keep][order]),
        }
    )
    frame["is_approximate"] = frame["is_approximate"].astype("boolean")
    return Links(
        table=coerce_frame(DEPLOYMENT_CHANGES, frame),
        deployment=success["_row"].to_numpy(np.int64)[deployment],
        change=np.where(is_change, row, -1).astype(np.int64),
        commit=np.where(is_change, -1, row).astype(np.int64),
    )


def _take(column: pd.Series, positions: IntArray) -> pd.Series:
    return pd.Series(column.array.take(positions)).astype("string")


def _series(array: pa.Array) -> pd.Series:
    return pd.Series(pd.array(array, dtype="string"))


def _take_strings(
    from_changes: pd.Series, row: IntArray, is_change: BoolArray, from_commits: pd.Series
) -> pa.Array:
    """Strings picked from a changes column where ``is_change``, else from commits' shas: each
    column is taken from only at the rows it gives (a commit sha is never copied unless
    picked), and the two picks are put back in order."""
    if not row.size:
        return pa.array([], pa.large_string())
    mine = np.flatnonzero(is_change)
    theirs = np.flatnonzero(~is_change)
    picked = pa.concat_arrays(
        [take_strings(from_changes, row[mine]), take_strings(from_commits, row[theirs])]
    )
    place = np.empty(row.size, dtype=np.int64)
    place[mine] = np.arange(mine.size)
    place[theirs] = mine.size + np.arange(theirs.size)
    return picked.take(pa.array(place))


__all__ = ["Links", "find_links"]
