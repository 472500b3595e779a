"""The commit graph of every repo at once: shas as int64 keys, parents as a CSR array, and a
vectorised min-label propagation towards the parents.

Full-length shas are hashed straight from arrow's buffers (no hash table of strings, which is
the slow part at ten million commits), and every match is checked byte for byte, so a hash
collision can never link the wrong commit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.store.coerce import list_chunks
from deliverypulse.timeutil import BoolArray, IntArray

_MISSING = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_SLICE = 1 << 20  # rows compared at a time
_PARALLEL_LOOKUP = 1 << 20  # keys above which lookups run on threads


@dataclass
class Graph:
    """The commit graph of every repo: one node per commit, child → parent edges as CSR."""

    row: IntArray  # for each node, its (first) row in the commits frame
    indptr: IntArray  # edges of node i are parent[indptr[i]:indptr[i + 1]]
    parent: IntArray
    found: list[IntArray]  # node of each commit, merge sha and deployed sha (-1: no commit)

    @property
    def size(self) -> int:
        return int(self.row.size)


def chunked_strings(values: Any) -> pa.ChunkedArray:
    """Any string column as arrow ``large_string`` chunks, as they are: an Arrow-backed column
    (what ``dp.load`` gives, in one chunk per row group) is neither copied nor joined."""
    array = (
        values
        if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(values, type=pa.large_string(), from_pandas=True)
    )
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array], type=array.type)
    return array if array.type == pa.large_string() else array.cast(pa.large_string())


def strings(values: Any) -> pa.Array:
    """Any string column as one contiguous ``large_string`` array (joined only when the column
    is in several chunks)."""
    array = chunked_strings(values)
    return array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()


def _by_chunk(lengths: IntArray, rows: IntArray) -> Iterator[tuple[int, IntArray, IntArray]]:
    """``rows`` (positions over consecutive chunks of ``lengths``) grouped by chunk: for each
    chunk holding some, (chunk, where they are in ``rows``, their rows within the chunk)."""
    ends = np.cumsum(lengths)
    which = np.searchsorted(ends, rows, side="right")  # an empty chunk is never chosen
    small = np.int16 if lengths.size < 2**15 else np.int64  # int16: numpy's radix sort
    order = np.argsort(which.astype(small), kind="stable")
    bounds = np.searchsorted(which[order], np.arange(lengths.size + 1))
    for chunk in np.flatnonzero(np.diff(bounds)):
        pick = order[bounds[chunk] : bounds[chunk + 1]]
        yield int(chunk), pick, rows[pick] - (ends[chunk] - lengths[chunk])


def take_strings(values: Any, rows: IntArray) -> pa.Array:
    """The strings of a column at ``rows``, as one ``large_string`` array, taken chunk by chunk
    (a column read in many pieces is not joined into one copy first)."""
    array = chunked_strings(values)
    if array.num_chunks == 1:
        return array.chunk(0).take(pa.array(rows, type=pa.int64()))
    lengths = np.array([len(chunk) for chunk in array.chunks], dtype=np.int64)
    picks, pieces = [], []
    for chunk, pick, within in _by_chunk(lengths, rows):
        picks.append(pick)
        pieces.append(array.chunk(chunk).take(pa.array(within)))
    if not pieces:
        return pa.array([], pa.large_string())
    back = np.empty(rows.size, dtype=np.int64)
    back[np.concatenate(picks)] = np.arange(rows.size, dtype=np.int64)
    return pa.concat_arrays(pieces).take(pa.array(back))


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


class _Rows:
    """Strings as rows of 8-byte words, chunk by chunk as arrow holds them: views of its
    buffers (a chunk with nulls is copied), so a dataset read in many pieces is never joined
    into one copy of every sha."""

    def __init__(self, chunks: list[npt.NDArray[np.uint64]]) -> None:
        self.chunks = chunks
        self.lengths = np.array([len(chunk) for chunk in chunks], dtype=np.int64)

    def take(self, rows: IntArray) -> npt.NDArray[np.uint64]:
        """The rows at ``rows`` (positions over all chunks), in that order."""
        if len(self.chunks) == 1:
            return np.take(self.chunks[0], rows, axis=0)
        out = np.empty((rows.size, self.chunks[0].shape[1]), dtype=np.uint64)
        for chunk, pick, within in _by_chunk(self.lengths, rows):
            out[pick] = np.take(self.chunks[chunk], within, axis=0)
        return out


def _rows(array: pa.ChunkedArray) -> _Rows | None:
    """:func:`_words` of every chunk, when they share one width (all-null chunks become zero
    rows); None when some chunk has no fixed width or no chunk has a value."""
    found: list[npt.NDArray[np.uint64] | int] = []
    for chunk in array.chunks:
        if len(chunk) == 0:
            continue
        words = _words(chunk)
        if words is None and chunk.null_count != len(chunk):
            return None
        found.append(len(chunk) if words is None else words)
    widths = {w.shape[1] for w in found if not isinstance(w, int)}
    if len(widths) != 1:
        return None
    (width,) = widths
    return _Rows(
        [np.zeros((w, width), dtype=np.uint64) if isinstance(w, int) else w for w in found]
    )


def _hash(words: npt.NDArray[np.uint64], repo: IntArray) -> IntArray:
    """A 64-bit hash of (repo, string) per row; equal inputs give equal keys. In place on one
    array (no temporary per step: at ten million rows each would be 80 MB to page in)."""
    key = repo.astype(np.uint64)
    scratch = np.empty_like(key)
    with np.errstate(over="ignore"):
        key += np.uint64(1)
        key *= _MIX
        for column in range(words.shape[1]):
            key ^= words[:, column]
            key *= _GOLDEN
            np.right_shift(key, np.uint64(29), out=scratch)
            key ^= scratch
    return key.view(np.int64)


class Codes:
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
        source = _dictionary_codes([chunked_strings(frame["source"]) for frame in repos])
        repo = _dictionary_codes([chunked_strings(frame["repo"]) for frame in repos])
        pairs = source * (int(repo.max(initial=0)) + 1) + repo
        codes = pd.factorize(pairs)[0].astype(np.int64)
        self.repo = split(codes, [len(frame) for frame in repos])
        self.n_repo = int(codes.max(initial=-1)) + 1
        arrays = [chunked_strings(values) for values in shas]
        # The repo of each sha: that of the same row of a table, or repeated (parents).
        owners = [
            self.repo[which] if repeat is None else np.repeat(self.repo[which], repeat)
            for which, repeat in sha_repos
        ]
        words = [_rows(array) for array in arrays]
        widths = {w.chunks[0].shape[1] for w in words if w is not None}
        hashed = (
            not exact
            and len(widths) == 1
            and all(
                w is not None or len(a) == 0 or a.null_count == len(a)
                for w, a in zip(words, arrays, strict=True)
            )
        )
        self.words: list[_Rows | None] = words if hashed else []
        if hashed:

            def key(w: _Rows | None, owner: IntArray, array: pa.ChunkedArray) -> IntArray:
                if w is None:
                    return np.full(len(array), _MISSING, dtype=np.int64)
                owners = np.split(owner, np.cumsum(w.lengths)[:-1])
                parts = [_hash(chunk, of) for chunk, of in zip(w.chunks, owners, strict=True)]
                hashed = parts[0] if len(parts) == 1 else np.concatenate(parts)
                if array.null_count:
                    hashed[~array.is_valid().to_numpy(zero_copy_only=False)] = _MISSING
                return hashed

            # numpy releases the GIL while hashing: the commits' and the parents' on two cores.
            with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
                self.keys = list(pool.map(key, words, owners, arrays))
        else:
            encoded = _dictionary_codes(arrays)
            n_sha = int(encoded.max(initial=0)) + 2
            self.keys = [
                np.where(sha >= 0, owner * n_sha + sha, _MISSING)
                for sha, owner in zip(split(encoded, [len(a) for a in arrays]), owners, strict=True)
            ]

    def same(self, which: int, rows: IntArray, commit_rows: IntArray) -> BoolArray:
        """Whether sha ``rows`` of array ``which`` equal the commits' shas at ``commit_rows``."""
        if not self.words:
            return np.ones(rows.shape, dtype=bool)
        mine, theirs = self.words[which], self.words[0]
        if mine is None or theirs is None:
            return np.zeros(rows.shape, dtype=bool)
        # Whole rows gathered at once (one cache line per sha, not one per word), in slices
        # so the copies stay small.
        equal = np.empty(rows.shape, dtype=bool)

        def compare(start: int) -> None:
            end = start + _SLICE
            left = mine.take(rows[start:end])
            right = theirs.take(commit_rows[start:end])
            equal[start:end] = (left == right).all(1)

        # numpy releases the GIL in take and compare: slices run on threads.
        workers = min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(compare, range(0, rows.size, _SLICE)))
        return equal


def _dictionary_codes(arrays: list[pa.Array | pa.ChunkedArray]) -> IntArray:
    """One integer per distinct string across ``arrays`` (-1 for null).

    Encoded chunk by chunk, and only the small per-chunk dictionaries are unified: the
    strings themselves are never concatenated (the commits' repo column alone is 200 MB at
    ten million rows)."""
    encoded = [
        chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        for array in arrays
        for chunk in (array.chunks if isinstance(array, pa.ChunkedArray) else [array])
    ]
    if not encoded:
        return np.zeros(0, dtype=np.int64)
    words = pa.concat_arrays([piece.dictionary.cast(pa.large_string()) for piece in encoded])
    unified = (
        pc.dictionary_encode(words).indices.fill_null(-1).to_numpy(zero_copy_only=False)
    ).astype(np.int64)
    codes, start = [], 0
    for piece in encoded:
        size = len(piece.dictionary)
        of_piece = np.append(unified[start : start + size], -1)  # index -1: null
        start += size
        index = piece.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        codes.append(of_piece[index])
    return np.concatenate(codes)


def split(values: IntArray, sizes: list[int]) -> list[IntArray]:
    bounds = np.cumsum([0, *sizes])
    return [values[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]


def parent_lists(commits: pd.DataFrame) -> tuple[IntArray, pa.ChunkedArray]:
    """Number of parents of each commit, and all parent shas flattened, read from arrow's
    buffers (:func:`deliverypulse.store.coerce.list_array`; no Python object per parent)."""
    lists = list_chunks(commits["parents"])  # chunks as they are: never joined into a copy
    counts = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    return counts.astype(np.int64), pc.list_flatten(lists)


def _build(codes: Codes, counts: IntArray) -> Graph:
    """Nodes and edges of the graph. When every commit row has its own key (one row per
    commit, as the store keeps them) a commit's node is its row, found by one hash table of
    the commits' keys that the other keys only probe; otherwise (repeated rows) one hash pass
    over every key."""
    keys = codes.keys
    located = _locate_unique(keys)
    if located is None:
        return _build_factorized(codes, counts)
    n_nodes = len(keys[0])
    row = np.arange(n_nodes, dtype=np.int64)
    found = [row]
    for which, node in enumerate(located, start=1):
        hit = np.flatnonzero(node >= 0)
        node[hit[~codes.same(which, hit, node[hit])]] = -1
        found.append(node)
    # The flattened parents follow the commits' row order, so the edges are already grouped
    # by child: a commit's edges start after the known parents of the rows before it.
    parent = found[-1]  # the flattened parents come last
    known = parent >= 0
    known_before = np.zeros(parent.size + 1, dtype=np.int64)
    np.cumsum(known, out=known_before[1:])
    first_edge = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(counts, out=first_edge[1:])
    return Graph(row=row, indptr=known_before[first_edge], parent=parent[known], found=found)


def _locate_unique(keys: list[IntArray]) -> list[IntArray] | None:
    """For each key array after the commits', the commit row holding each key (-1: none),
    from one hash table of the commits' keys; None when commit keys repeat or are missing.

    pandas' ``Int64HashTable`` is internal API, stable since pandas 0.x; without it the
    caller falls back to ``pd.factorize`` over every key (the same result, slower)."""
    try:
        from pandas._libs.hashtable import Int64HashTable
    except ImportError:  # pragma: no cover - a pandas without it
        return None
    commit_keys = keys[0]
    if commit_keys.size == 0 or (commit_keys == _MISSING).any():
        return None
    table = Int64HashTable(commit_keys.size)
    table.map_locations(commit_keys)
    if len(table) != commit_keys.size:
        return None
    return [_lookup(table, key) for key in keys[1:]]


def _lookup(table: Any, keys: IntArray) -> IntArray:
    """``table.lookup`` of ``keys``, in slices on threads for a large array: the lookup
    releases the GIL and is bound by memory latency, so two cores nearly halve it."""
    workers = min(4, os.cpu_count() or 1)
    if workers == 1 or keys.size < _PARALLEL_LOOKUP:
        return np.asarray(table.lookup(keys), dtype=np.int64)
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(table.lookup, np.array_split(keys, workers)))
    return np.concatenate(parts).astype(np.int64, copy=False)


def _build_factorized(codes: Codes, counts: IntArray) -> Graph:
    """Nodes and edges in one hash pass over every key (pandas' C hash table): commit keys
    come first, so a key seen among them gets a code below the number of commits' keys."""
    keys = codes.keys
    sizes = [len(k) for k in keys]
    labels = pd.factorize(np.concatenate(keys))[0].astype(np.int64)
    parts = split(labels, sizes)
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
    parent = found[-1]  # the flattened parents come last
    known = (child >= 0) & (parent >= 0)
    child, parent = child[known], parent[known]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(child, minlength=n_nodes))
    order = np.argsort(child, kind="stable")
    return Graph(row=row, indptr=indptr, parent=parent[order], found=found)


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


def propagate(graph: Graph, labels: IntArray, seeds: IntArray, seed_labels: IntArray) -> IntArray:
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


def spread_to_ancestors(graph: Graph, labels: IntArray, label: int, through: BoolArray) -> None:
    """Give ``label`` (in place) to every node in ``through`` that is an ancestor, by a path
    inside ``through``, of a node labelled ``label``. Visits only ``through`` nodes after the
    first step, and nothing at all when ``through`` is empty (say, every commit has a date)."""
    if not through.any():
        return
    frontier = np.flatnonzero(labels == label)
    while frontier.size:
        edges, _ = _expand(graph.indptr, frontier)
        target = graph.parent[edges]
        target = target[through[target] & (labels[target] != label)]
        labels[target] = label
        frontier = np.unique(target)


@dataclass(frozen=True)
class Built:
    """The commit graph of a dataset as :func:`commit_graph` built it, kept so that every
    later step of one pass (linking, then each attempt's batch) reads the same graph instead
    of building it again. ``sizes``: the lengths of the commits, changes and deployments it
    was built from, checked before it is reused."""

    codes: Codes
    graph: Graph
    counts: IntArray
    sizes: tuple[int, int, int]

    def fits(self, commits: pd.DataFrame, changes: pd.DataFrame, deployments: pd.DataFrame) -> bool:
        """Whether it was built from tables of these lengths."""
        return self.sizes == (len(commits), len(changes), len(deployments))


def commit_graph(
    commits: pd.DataFrame, changes: pd.DataFrame, deployments: pd.DataFrame
) -> tuple[Codes, Graph, IntArray]:
    """Codes and graph of every repo, and each commit's number of parents.

    ``Graph.found`` holds, in this order, the node of each commit, of each change's merge sha
    and of each deployment's sha (the parents' nodes live on as the edges). Redone with exact
    string codes in the rare case that two shas of one repo hash alike. The keys and the
    shas' words are dropped once the graph is built: the graph travels on with the links
    (:class:`Built`), and at ten million commits they are a few hundred megabytes.
    """
    counts, flat_parents = parent_lists(commits)
    shas = [commits["sha"], changes["merge_sha"], deployments["sha"], flat_parents]
    frames = [commits, changes, deployments]
    owners: list[tuple[int, IntArray | None]] = [(0, None), (1, None), (2, None), (0, counts)]
    codes = Codes(frames, shas, owners)
    try:
        graph = _build(codes, counts)
    except _Collision:
        codes = Codes(frames, shas, owners, exact=True)
        graph = _build(codes, counts)
    codes.keys, codes.words = [], []
    del graph.found[3:]
    return codes, graph, counts


def build(commits: pd.DataFrame, changes: pd.DataFrame, deployments: pd.DataFrame) -> Built:
    """:func:`commit_graph` kept as a :class:`Built` value."""
    codes, graph, counts = commit_graph(commits, changes, deployments)
    return Built(codes, graph, counts, (len(commits), len(changes), len(deployments)))


__all__ = [
    "Built",
    "Codes",
    "Graph",
    "build",
    "chunked_strings",
    "commit_graph",
    "parent_lists",
    "propagate",
    "split",
    "spread_to_ancestors",
    "strings",
    "take_strings",
]
