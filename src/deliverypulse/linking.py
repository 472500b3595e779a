"""Link changes to the production deployments that shipped them: the ``deployment_changes`` table.

A deployment ships the commits reachable from its sha and from no earlier successful deployment
of the same repo and environment (commit-graph difference). The whole dataset is done at once:
shas become integers, parents a CSR array, and every commit receives the rank of the first
deployment that reaches it by a vectorised min-label propagation towards the parents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.dataset import Dataset
from deliverypulse.store.coerce import coerce_frame, pandas_dtype
from deliverypulse.store.schemas import CHANGES, DEPLOYMENT_CHANGES

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Statuses of a deployment that reached its environment.
SUCCESS_STATUSES = ("success",)
#: Environment names taken as production when ``is_production`` is unknown.
PRODUCTION_PATTERN = re.compile(r"^prod(uction)?$", re.IGNORECASE)
#: Commit subjects that mark a trunk commit as a revert or a hotfix.
REVERT_SUBJECT = r'^Revert "'
HOTFIX_SUBJECT = r"(?i)^\s*\[?hot-?fix\]?[\s:(]"

_NONE = np.iinfo(np.int64).max  # label of a commit no deployment reaches
_BEFORE = 0  # label of a commit made before the collection's start


def production_mask(deployments: pd.DataFrame, environments: Any = None) -> pd.Series:
    """Rows that are production deployments.

    With ``environments`` (names), exactly those environments. Otherwise ``is_production``,
    and where that is unknown an environment named ``prod`` or ``production``.
    """
    env = deployments["environment"]
    if environments is not None:
        names = [environments] if isinstance(environments, str) else list(environments)
        return env.isin(names).fillna(False).astype(bool)
    flag = deployments["is_production"]
    by_name = env.str.fullmatch(PRODUCTION_PATTERN.pattern, case=False).fillna(False)
    return flag.fillna(by_name).fillna(False).astype(bool)


def deployed_time(deployments: pd.DataFrame) -> pd.Series:
    """When a deployment took effect: ``finished_at``, else ``created_at``."""
    return deployments["finished_at"].fillna(deployments["created_at"])


def production_deployments(
    ds: Dataset, statuses: tuple[str, ...], environments: Any = None
) -> pd.DataFrame:
    """Production deployments with one of ``statuses``, in time order per repo and environment.

    Adds ``deployed_at`` and ``_row`` (the position in ``ds.deployments``); ties are broken by
    ``created_at`` then ``deployment_id`` so that row order never matters. Keeps every column
    of ``deployments``, user columns included.
    """
    deployments = ds.deployments
    keep = production_mask(deployments, environments) & deployments["status"].isin(statuses).fillna(
        False
    ).astype(bool)
    frame = deployments.loc[keep.to_numpy(dtype=bool)].copy()
    frame["_row"] = np.flatnonzero(keep.to_numpy(dtype=bool))
    frame["environment"] = frame["environment"].fillna("")
    frame["deployed_at"] = deployed_time(frame)
    return frame.sort_values(
        ["source", "repo", "environment", "deployed_at", "created_at", "deployment_id"],
        kind="stable",
    ).reset_index(drop=True)


def successful_deployments(
    ds: Dataset, environments: Any = None, since: Any = None
) -> pd.DataFrame:
    """Successful production deployments in time order, with ``order`` (0, 1, ... within each
    source, repo and environment) added to what :func:`production_deployments` gives."""
    frame = production_deployments(ds, SUCCESS_STATUSES, environments)
    frame["order"] = frame.groupby(["source", "repo", "environment"], sort=False).cumcount()
    return frame


@dataclass
class _Graph:
    """The commit graph of every repo: one node per commit, child → parent edges as CSR."""

    row: IntArray  # for each node, its (first) row in the commits frame
    indptr: IntArray  # edges of node i are parent[indptr[i]:indptr[i + 1]]
    parent: IntArray
    found: list[IntArray]  # for each sha array given to _Codes, its node or -1

    @property
    def size(self) -> int:
        return int(self.row.size)


_NAT = np.iinfo(np.int64).min
_MISSING = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def as_micros(column: pd.Series) -> IntArray:
    """UTC timestamps as int64 microseconds; missing values are the smallest int64."""
    values = column.to_numpy(dtype="datetime64[us]")
    return values.view(np.int64)


def _strings(values: Any) -> pa.Array:
    """Any string column as one contiguous arrow ``large_string`` array."""
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def _words(array: pa.Array) -> npt.NDArray[np.uint64] | None:
    """Each string as a row of 8-byte words, when all non-null strings have one length that
    is a multiple of 8 (a full SHA-1 has 40 bytes, a SHA-256 64); else None. No copy when the
    array has no nulls."""
    n = len(array)
    if n == 0:
        return None
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    lengths = np.diff(offsets)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return None
    width = int(lengths[valid][0])
    if width == 0 or width % 8 or (lengths[valid] != width).any() or (lengths[~valid] != 0).any():
        return None
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    rows = data.view(np.uint64).reshape(-1, width // 8)
    if valid.all():
        return rows
    full = np.zeros((n, width // 8), dtype=np.uint64)
    full[valid] = rows
    return full


def _hash(words: npt.NDArray[np.uint64], repo: IntArray) -> IntArray:
    """A 64-bit hash of (repo, string) per row; equal inputs give equal keys."""
    with np.errstate(over="ignore"):
        key = (repo.astype(np.uint64) + np.uint64(1)) * _MIX
        for column in range(words.shape[1]):
            key = (key ^ words[:, column]) * _GOLDEN
            key ^= key >> np.uint64(29)
    return key.view(np.int64)


class _Codes:
    """Integer codes for (source, repo) pairs and int64 keys for (repo, sha), for every table.

    Full-length shas are hashed straight from arrow's buffers (no hash table of strings, which
    is the slow part at ten million commits), and every match is then checked byte for byte,
    so a hash collision can never link the wrong commit. Other strings (short test shas) are
    dictionary-encoded.
    """

    def __init__(
        self,
        repos: list[pd.DataFrame],
        shas: list[Any],
        sha_repos: list[tuple[int, IntArray | None]],
        *,
        exact: bool = False,
    ) -> None:
        source = _dictionary_codes([_strings(frame["source"]) for frame in repos])
        repo = _dictionary_codes([_strings(frame["repo"]) for frame in repos])
        pairs = source * (int(repo.max(initial=0)) + 1) + repo
        codes = pd.factorize(pairs)[0].astype(np.int64)
        self.repo = _split(codes, [len(frame) for frame in repos])
        self.n_repo = int(codes.max(initial=-1)) + 1
        arrays = [_strings(values) for values in shas]
        # The repo of each sha: that of the same row of a table, or repeated (parents).
        owners = [
            self.repo[which] if repeat is None else np.repeat(self.repo[which], repeat)
            for which, repeat in sha_repos
        ]
        words = [_words(array) for array in arrays]
        widths = {w.shape[1] for w in words if w is not None}
        hashed = (
            not exact
            and len(widths) == 1
            and all(
                w is not None or len(a) == 0 or a.null_count == len(a)
                for w, a in zip(words, arrays, strict=True)
            )
        )
        self.words: list[npt.NDArray[np.uint64] | None] = words if hashed else []
        if hashed:
            self.keys = [
                np.where(array.is_valid().to_numpy(zero_copy_only=False), _hash(w, owner), _MISSING)
                if w is not None
                else np.full(len(array), _MISSING, dtype=np.int64)
                for w, owner, array in zip(words, owners, arrays, strict=True)
            ]
        else:
            encoded = _dictionary_codes(arrays)
            n_sha = int(encoded.max(initial=0)) + 2
            self.keys = [
                np.where(sha >= 0, owner * n_sha + sha, _MISSING)
                for sha, owner in zip(
                    _split(encoded, [len(a) for a in arrays]), owners, strict=True
                )
            ]

    def same(self, which: int, rows: IntArray, commit_rows: IntArray) -> BoolArray:
        """Whether sha ``rows`` of array ``which`` equal the commits' shas at ``commit_rows``."""
        if not self.words:
            return np.ones(rows.shape, dtype=bool)
        mine, theirs = self.words[which], self.words[0]
        if mine is None or theirs is None:
            return np.zeros(rows.shape, dtype=bool)
        equal = np.ones(rows.shape, dtype=bool)
        for column in range(mine.shape[1]):
            equal &= mine[rows, column] == theirs[commit_rows, column]
        return equal


def _dictionary_codes(arrays: list[pa.Array]) -> IntArray:
    """One integer per distinct string across ``arrays`` (-1 for null)."""
    combined = pa.concat_arrays(arrays) if arrays else pa.array([], pa.large_string())
    encoded = pc.dictionary_encode(combined)
    codes: IntArray = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64)


def _split(values: IntArray, sizes: list[int]) -> list[IntArray]:
    bounds = np.cumsum([0, *sizes])
    return [values[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]


def _parents(commits: pd.DataFrame) -> tuple[IntArray, pa.Array]:
    """Number of parents of each commit, and all parent shas flattened."""
    column = commits["parents"]
    if isinstance(column.dtype, pd.ArrowDtype):
        lists = pa.array(column)
    else:
        values = column.to_numpy(dtype=object)
        lists = pa.array(values, type=pa.list_(pa.large_string()), from_pandas=True)
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    counts = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    return counts.astype(np.int64), pc.list_flatten(lists)


def _build_graph(codes: _Codes, counts: IntArray) -> _Graph:
    """Nodes and edges in one hash pass over every key (pandas' C hash table): commit keys
    come first, so a key seen among them gets a code below the number of commits' keys."""
    keys = codes.keys
    sizes = [len(k) for k in keys]
    labels = pd.factorize(np.concatenate(keys))[0].astype(np.int64)
    parts = _split(labels, sizes)
    commit_codes = parts[0]
    n_nodes = int(commit_codes.max(initial=-1)) + 1
    row = np.empty(n_nodes, dtype=np.int64)
    row[commit_codes[::-1]] = np.arange(commit_codes.size, dtype=np.int64)[::-1]
    found = []
    for which, (code, key) in enumerate(zip(parts, keys, strict=True)):
        node = np.where((code < n_nodes) & (key != _MISSING), code, -1)
        hit = np.flatnonzero(node >= 0)
        wrong = ~codes.same(which, hit, row[node[hit]])
        if which == 0 and wrong.any():
            raise _Collision  # two shas of one repo with one hash: redo with exact codes
        node[hit[wrong]] = -1
        found.append(node)
    child = np.repeat(found[0], counts)
    parent = found[3]
    known = (child >= 0) & (parent >= 0)
    child, parent = child[known], parent[known]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(child, minlength=n_nodes))
    order = np.argsort(child, kind="stable")
    return _Graph(row=row, indptr=indptr, parent=parent[order], found=found)


class _Collision(Exception):
    """Two different shas of one repo hashed alike: redo the graph with exact codes."""


def _expand(indptr: IntArray, nodes: IntArray) -> tuple[IntArray, IntArray]:
    """Edge positions of ``nodes`` and, for each edge, the index in ``nodes`` it leaves."""
    starts = indptr[nodes]
    counts = indptr[nodes + 1] - starts
    owner = np.repeat(np.arange(nodes.size), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets, owner


def _distinct(nodes: IntArray, slot: IntArray) -> IntArray:
    """``nodes`` without repeats, in O(len(nodes)) with a scratch array (no sort)."""
    where = np.arange(nodes.size, dtype=np.int64)
    slot[nodes] = where
    first: IntArray = nodes[slot[nodes] == where]
    slot[nodes] = -1
    return first


def propagate(graph: _Graph, labels: IntArray, seeds: IntArray, seed_labels: IntArray) -> IntArray:
    """Give every node the smallest label of any seed it is reachable from (in place).

    Frontier relaxation towards parents: a node is revisited only when its label drops, so a
    deployment's wave stops where an earlier deployment's wave has passed, and the number of
    passes is the depth of one deployment's new history, not of the repo's whole history.
    """
    if seeds.size == 0:
        return labels
    slot = np.full(labels.size, -1, dtype=np.int64)  # scratch for de-duplicating frontiers
    np.minimum.at(labels, seeds, seed_labels)
    frontier = _distinct(seeds[labels[seeds] == seed_labels], slot)
    while frontier.size:
        edges, owner = _expand(graph.indptr, frontier)
        target = graph.parent[edges]
        candidate = labels[frontier][owner]
        better = candidate < labels[target]
        target, candidate = target[better], candidate[better]
        np.minimum.at(labels, target, candidate)
        frontier = _distinct(target, slot)
    return labels
    np.minimum.at(labels, seeds, seed_labels)
    frontier = np.unique(seeds[labels[seeds] == seed_labels])
    while frontier.size:
        edges, owner = _expand(graph.indptr, frontier)
        target = graph.parent[edges]
        candidate = labels[frontier][owner]
        better = candidate < labels[target]
        target, candidate = target[better], candidate[better]
        np.minimum.at(labels, target, candidate)
        frontier = np.unique(target)
    return labels


@dataclass
class _Inputs:
    """Everything the per-environment passes share, computed once."""

    success: pd.DataFrame
    graph: _Graph
    codes: _Codes
    parent_counts: IntArray
    change_node: IntArray  # graph node of each change's merge sha, or -1
    merge_node: BoolArray  # per graph node: is it some change's merge sha
    commit_change: pd.DataFrame  # (_change, _cnode) for commits that name their change


def _inputs(ds: Dataset, success: pd.DataFrame, since: Any, environments: Any) -> _Inputs:
    commits, changes = ds.commits, ds.changes
    counts, flat_parents = _parents(commits)
    shas = [commits["sha"], changes["merge_sha"], success["sha"], flat_parents]
    frames = [commits, changes, success]
    owners: list[tuple[int, IntArray | None]] = [(0, None), (1, None), (2, None), (0, counts)]
    codes = _Codes(frames, shas, owners)
    try:
        graph = _build_graph(codes, counts)
    except _Collision:
        codes = _Codes(frames, shas, owners, exact=True)
        graph = _build_graph(codes, counts)
    success_repo = codes.repo[2]
    success["_repo"] = success_repo
    env_code = pd.factorize(success["environment"], sort=True)[0]
    success["_slot"] = (
        pd.Series(env_code).groupby(success_repo).rank(method="dense").to_numpy(np.int64) - 1
    )
    success["_rank"] = np.arange(1, len(success) + 1, dtype=np.int64)
    success["_node"] = graph.found[2]
    success["_start"] = _collection_start(ds, success, since, environments)

    change_node = graph.found[1]
    merge_node = np.zeros(graph.size, dtype=bool)
    merge_node[change_node[change_node >= 0]] = True
    return _Inputs(
        success=success,
        graph=graph,
        codes=codes,
        parent_counts=counts,
        change_node=change_node,
        merge_node=merge_node,
        commit_change=_commit_change_rows(commits, changes, graph, change_node),
    )


def _collection_start(
    ds: Dataset, success: pd.DataFrame, since: Any, environments: Any
) -> IntArray:
    """Per successful deployment, the start of its repo and environment's collection."""
    if since is not None:
        return np.full(len(success), as_micros(pd.Series([utc(since)]))[0], dtype=np.int64)
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
    return as_micros(aligned["_first"].fillna(success["created_at"]))


def utc(value: Any) -> pd.Timestamp:
    """A timestamp in UTC; a naive value is taken as UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _commit_change_rows(
    commits: pd.DataFrame, changes: pd.DataFrame, graph: _Graph, change_node: IntArray
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


def link_rows(
    ds: Dataset,
    *,
    environments: Any = None,
    since: Any = None,
    approximate: bool = True,
    trunk: bool = True,
) -> pd.DataFrame:
    """:func:`link` plus the positions of each row's deployment, change or commit."""
    success = successful_deployments(ds, environments)
    if success.empty:
        return _with_positions(coerce_frame(DEPLOYMENT_CHANGES, []))
    inputs = _inputs(ds, success, since, environments)
    graph = inputs.graph
    commit_repo = inputs.codes.repo[0]
    node_repo = commit_repo[graph.row]
    node_time = as_micros(ds.commits["committed_at"])[graph.row]
    parts: list[pd.DataFrame] = []
    for slot in range(int(success["_slot"].max()) + 1):
        in_slot = success.loc[success["_slot"] == slot]
        start_of_repo = np.full(inputs.codes.n_repo, _NAT, dtype=np.int64)
        start_of_repo[in_slot["_repo"].to_numpy(np.int64)] = in_slot["_start"].to_numpy(np.int64)
        node_start = start_of_repo[node_repo]
        labels = np.full(graph.size, _NONE, dtype=np.int64)
        labels[(node_time != _NAT) & (node_start != _NAT) & (node_time < node_start)] = _BEFORE
        seeded = in_slot.loc[in_slot["_node"] >= 0]
        propagate(
            graph, labels, seeded["_node"].to_numpy(np.int64), seeded["_rank"].to_numpy(np.int64)
        )
        graph_repos = np.zeros(start_of_repo.size, dtype=bool)
        graph_repos[seeded["_repo"].to_numpy(np.int64)] = True
        parts.append(_change_links(ds.changes, inputs, labels, graph_repos, in_slot, approximate))
        if trunk:
            parts.append(_trunk_links(ds.commits, inputs, labels, graph_repos[node_repo]))
    return _finish(parts, success, ds.changes, ds.commits, since)


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
    else an environment named ``prod``/``production``). ``since``: the collection's start;
    nothing made before it is linked, so a first deployment does not sweep up old history
    (default: per repo and environment, the creation of its first production deployment).
    ``approximate``: where the commit graph is missing, link by merge time instead and flag
    the rows ``is_approximate``. ``trunk``: deployed commits that belong to no change become
    changes of their own, ``change_id`` = sha (see :func:`trunk_changes`).
    """
    rows = link_rows(
        ds, environments=environments, since=since, approximate=approximate, trunk=trunk
    )
    return rows.drop(columns=list(POSITIONS))


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
    """Approximate links: a change ships with the first deployment created after its merge."""
    merged = pd.DataFrame(
        {
            "_change": rows,
            "_repo": change_repo[rows],
            "_merged": as_micros(changes["merged_at"])[rows],
        }
    )
    starts = in_slot.groupby("_repo")["_start"].first()
    merged["_start"] = starts.reindex(merged["_repo"]).fillna(np.iinfo(np.int64).max).to_numpy()
    merged = merged.loc[(merged["_merged"] != _NAT) & (merged["_merged"] >= merged["_start"])]
    targets = pd.DataFrame(
        {
            "_repo": in_slot["_repo"].to_numpy(np.int64),
            "_created": as_micros(in_slot["created_at"]),
            "_rank": in_slot["_rank"].to_numpy(np.int64),
        }
    ).sort_values(["_created", "_rank"], kind="stable")
    found = pd.merge_asof(
        merged.sort_values("_merged", kind="stable"),
        targets,
        left_on="_merged",
        right_on="_created",
        by="_repo",
        direction="forward",
    )
    found = found.loc[found["_rank"].notna()]
    return pd.DataFrame(
        {"_change": found["_change"].to_numpy(np.int64), "_rank": found["_rank"].to_numpy(np.int64)}
    )


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
    since: Any,
) -> pd.DataFrame:
    """Resolve ranks to deployments and row numbers to ids: the deployment_changes columns
    plus ``_deployment``, ``_change`` and ``_commit``, positions in the dataset's tables that
    let the metrics join without matching strings."""
    links = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if links.empty:
        return _with_positions(coerce_frame(DEPLOYMENT_CHANGES, []))
    deployment = links["_rank"].to_numpy(np.int64) - 1
    is_change = (links["_kind"] == "change").to_numpy(dtype=bool)
    row = links["_row"].to_numpy(np.int64)
    keep = np.ones(len(links), dtype=bool)
    if since is not None:
        deployed = as_micros(success["deployed_at"])[deployment]
        keep = deployed >= as_micros(pd.Series([utc(since)]))[0]
    change_key = np.where(is_change, row, -1 - row)
    unique = pd.DataFrame({"d": deployment, "c": change_key}).duplicated().to_numpy(dtype=bool)
    keep &= ~unique
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
    result = coerce_frame(DEPLOYMENT_CHANGES, frame)
    result["_deployment"] = success["_row"].to_numpy(np.int64)[deployment]
    result["_change"] = np.where(is_change, row, -1)
    result["_commit"] = np.where(is_change, -1, row)
    return result


POSITIONS = ("_deployment", "_change", "_commit")


def _with_positions(frame: pd.DataFrame) -> pd.DataFrame:
    for name in POSITIONS:
        frame[name] = np.zeros(len(frame), dtype=np.int64)
    return frame


def _take(column: pd.Series, positions: IntArray) -> pd.Series:
    return pd.Series(column.array.take(positions)).astype("string")


def _series(array: pa.Array) -> pd.Series:
    return pd.Series(pd.array(array, dtype="string"))


def _take_strings(
    from_changes: pd.Series, row: IntArray, is_change: BoolArray, from_commits: pd.Series
) -> pa.Array:
    """Strings picked from a changes column where ``is_change``, else from commits' shas."""
    left = _strings(from_changes)
    right = _strings(from_commits)
    picked_left = left.take(pa.array(np.where(is_change, row, 0))) if len(left) else None
    picked_right = right.take(pa.array(np.where(is_change, 0, row))) if len(right) else None
    if picked_left is None and picked_right is None:
        return pa.array([], pa.large_string())
    if picked_left is None:
        return picked_right
    if picked_right is None:
        return picked_left
    chosen: pa.Array = pc.if_else(pa.array(is_change), picked_left, picked_right)
    return chosen


def positions(ds: Dataset, links: pd.DataFrame) -> pd.DataFrame:
    """``links`` with ``_deployment``/``_change``/``_commit`` positions (string matching,
    once), for a ``deployment_changes`` table that did not come from :func:`link`."""
    if all(name in links.columns for name in POSITIONS):
        return links
    frame = links.drop(columns=[c for c in POSITIONS if c in links.columns]).reset_index(drop=True)
    key = ["source", "repo"]
    deployments = (
        ds.deployments[[*key, "deployment_id"]]
        .assign(_deployment=np.arange(len(ds.deployments), dtype=np.int64))
        .drop_duplicates([*key, "deployment_id"])
    )
    changes = (
        ds.changes[[*key, "change_id"]]
        .assign(_change=np.arange(len(ds.changes), dtype=np.int64))
        .drop_duplicates([*key, "change_id"])
    )
    commits = (
        ds.commits[[*key, "sha"]]
        .rename(columns={"sha": "change_id"})
        .assign(_commit=np.arange(len(ds.commits), dtype=np.int64))
        .drop_duplicates([*key, "change_id"])
    )
    frame = frame.merge(deployments, on=[*key, "deployment_id"], how="inner")
    frame = frame.merge(changes, on=[*key, "change_id"], how="left")
    frame = frame.merge(commits, on=[*key, "change_id"], how="left")
    frame["_change"] = frame["_change"].fillna(-1).astype(np.int64)
    frame["_commit"] = frame["_commit"].where(frame["_change"] < 0).fillna(-1).astype(np.int64)
    return frame.loc[(frame["_change"] >= 0) | (frame["_commit"] >= 0)].reset_index(drop=True)


def trunk_changes(ds: Dataset, links: pd.DataFrame) -> pd.DataFrame:
    """Changes (``changes`` schema) for linked commits that belong to no pull request.

    A commit pushed straight to the default branch is its own change: first commit = authored,
    merged = committed, no review. A ``Revert "..."`` or ``hotfix:`` subject marks it as a
    revert or hotfix, so trunk-based teams get the same failure signals.
    """
    linked = positions(ds, links)
    rows = np.unique(linked["_commit"].to_numpy(np.int64))
    return trunk_frame(ds.commits, rows[rows >= 0]).drop(columns="_commit")


def _nulls(dtype: Any, n: int) -> pd.Series:
    """An all-missing column of ``dtype`` (built without a Python loop over rows)."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.Series(np.full(n, "NaT", dtype="datetime64[us]")).dt.tz_localize("UTC")
    empty = pd.Series(np.full(n, None, dtype=object))
    return empty if dtype == np.dtype("O") else empty.astype(dtype)


def trunk_frame(commits: pd.DataFrame, rows: IntArray) -> pd.DataFrame:
    """The changes made of ``commits`` at ``rows``, plus their ``_commit`` position."""
    picked = commits.iloc[rows].reset_index(drop=True)
    n = len(picked)
    authored = picked["authored_at"].fillna(picked["committed_at"])
    subject = picked["subject"].fillna("")
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
        "is_revert": subject.str.contains(REVERT_SUBJECT, regex=True).astype("boolean"),
        "is_hotfix": subject.str.contains(HOTFIX_SUBJECT, regex=True).astype("boolean"),
    }
    columns = {
        field.name: given.get(field.name, _nulls(pandas_dtype(field.type), n))
        for field in CHANGES.schema
    }
    frame = pd.DataFrame(columns)
    frame["_commit"] = rows
    return frame


__all__ = [
    "PRODUCTION_PATTERN",
    "SUCCESS_STATUSES",
    "as_micros",
    "deployed_time",
    "link",
    "link_rows",
    "positions",
    "production_mask",
    "successful_deployments",
    "trunk_changes",
    "utc",
]
