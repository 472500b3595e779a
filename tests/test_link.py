"""link: commit-graph difference between consecutive successful production deployments."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pytest

import deliverypulse.linking as dplink
import deliverypulse.linking.graph as commit_graph
from deliverypulse.dataset import Dataset
from deliverypulse.store.schemas import DEPLOYMENT_CHANGES


def commit(
    sha: str, parents: list[str], at: str, repo: str = "o/a", **extra: Any
) -> dict[str, Any]:
    return {"repo": repo, "sha": sha, "parents": parents, "committed_at": at, **extra}


def change(
    change_id: str, merged: str | None, sha: str | None, repo: str = "o/a", **extra: Any
) -> dict[str, Any]:
    created = extra.pop("created_at", "2023-01-01T00:00Z")
    return {
        "repo": repo,
        "change_id": change_id,
        "created_at": created,
        "merged_at": merged,
        "merge_sha": sha,
        **extra,
    }


def deploy(
    deployment_id: str,
    sha: str,
    finished: str,
    *,
    repo: str = "o/a",
    status: str = "success",
    env: str = "production",
    created: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    stamp = pd.Timestamp(finished)
    return {
        "repo": repo,
        "deployment_id": deployment_id,
        "environment": env,
        "is_production": True,
        "sha": sha,
        "status": status,
        "finished_at": finished,
        "created_at": created or (stamp - pd.Timedelta(minutes=10)).isoformat(),
        **extra,
    }


def pairs(links: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(links["deployment_id"], links["change_id"], strict=True))


# History:  c0 (2023) ─ c1 ─┬──────── m1 ── s2 ── t3 ── s4
#                            └─ f1 ──┘
# d1 ships c1 (first deployment), d2 ships m1 (merge of PR1) and s2 (squash of PR2),
# d3 ships t3 (a trunk commit with no pull request); PR4 (s4) is never deployed.
COMMITS = [
    commit("c0", [], "2023-06-01T00:00Z"),
    commit("c1", ["c0"], "2024-01-01T00:00Z"),
    commit("f1", ["c1"], "2024-01-01T06:00Z", change_id="PR1"),
    commit("m1", ["c1", "f1"], "2024-01-02T00:00Z"),
    commit("p2", ["m1"], "2024-01-02T06:00Z", change_id="PR2"),  # squashed away
    commit("s2", ["m1"], "2024-01-03T00:00Z"),
    commit("t3", ["s2"], "2024-01-05T00:00Z", authored_at="2024-01-04T00:00Z", author="ann"),
    commit("s4", ["t3"], "2024-01-06T00:00Z"),
]
CHANGES = [
    change("PR1", "2024-01-02T00:00Z", "m1"),
    change("PR2", "2024-01-03T00:00Z", "s2"),
    change("PR4", "2024-01-06T00:00Z", "s4"),
]
DEPLOYS = [
    deploy("d1", "c1", "2024-01-01T12:10Z"),
    deploy("d2", "s2", "2024-01-04T00:10Z"),
    deploy("d3", "t3", "2024-01-05T12:10Z"),
]


def base() -> Dataset:
    return Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=DEPLOYS)


def test_merge_squash_trunk_and_never_deployed() -> None:
    links = dplink.link(base())
    # Two changes in one deployment (a merge and a squash), a trunk commit as its own change,
    # nothing for d1 (the first deployment) and nothing for PR4 (never deployed).
    assert pairs(links) == {("d2", "PR1"), ("d2", "PR2"), ("d3", "t3")}
    assert set(links.columns) == set(DEPLOYMENT_CHANGES.columns)
    assert not links["is_approximate"].any()
    assert dict(zip(links["change_id"], links["sha"], strict=True)) == {
        "PR1": "m1",
        "PR2": "s2",
        "t3": "t3",
    }
    assert (links["environment"] == "production").all()


def test_dtypes_are_the_schema() -> None:
    links = dplink.link(base())
    assert str(links["change_id"].dtype) == "string"
    assert str(links["is_approximate"].dtype) == "boolean"


def test_trunk_can_be_switched_off() -> None:
    assert pairs(dplink.link(base(), trunk=False)) == {("d2", "PR1"), ("d2", "PR2")}


def test_trunk_changes_are_synthesised_from_the_commit() -> None:
    ds = base()
    own = dplink.trunk_changes(ds, dplink.link(ds))
    assert own["change_id"].tolist() == ["t3"]
    assert own["first_commit_at"].iloc[0] == pd.Timestamp("2024-01-04T00:00Z")  # authored
    assert own["merged_at"].iloc[0] == pd.Timestamp("2024-01-05T00:00Z")  # committed
    assert own["author"].iloc[0] == "ann"


def test_first_deployment_does_not_sweep_up_history() -> None:
    # 50 years of trunk history behind the first deployment: none of it is linked.
    history = [
        commit(f"h{i}", [f"h{i - 1}"] if i else [], f"{1975 + i // 2}-01-0{1 + i % 2}T00:00Z")
        for i in range(50)
    ]
    history.append(commit("c1", ["h49"], "2024-01-01T00:00Z"))
    history.append(commit("c2", ["c1"], "2024-01-02T00:00Z"))
    ds = Dataset.from_frames(
        commits=history,
        changes=[change("OLD", "2000-01-01T00:00Z", "h20")],
        deployments=[
            deploy("d1", "c1", "2024-01-01T12:00Z"),
            deploy("d2", "c2", "2024-01-03T00:00Z"),
        ],
    )
    assert pairs(dplink.link(ds)) == {("d2", "c2")}


def test_since_lets_the_first_deployment_ship_what_came_after_it() -> None:
    history = [commit("h0", [], "2020-01-01T00:00Z"), commit("c1", ["h0"], "2024-01-01T00:00Z")]
    ds = Dataset.from_frames(
        commits=history,
        changes=[
            change("NEW", "2024-01-01T00:00Z", "c1"),
            change("OLD", "2020-01-01T00:00Z", "h0"),
        ],
        deployments=[deploy("d1", "c1", "2024-01-01T12:00Z")],
    )
    assert pairs(dplink.link(ds)) == set()
    assert pairs(dplink.link(ds, since="2023-12-31")) == {("d1", "NEW")}


def test_rebase_merge_without_merge_sha_links_through_its_commits() -> None:
    commits = [
        commit("c1", [], "2024-01-01T00:00Z"),
        commit("r1", ["c1"], "2024-01-02T00:00Z", change_id="PR7"),  # rebased onto main
        commit("r2", ["r1"], "2024-01-02T00:00Z", change_id="PR7"),
    ]
    ds = Dataset.from_frames(
        commits=commits,
        changes=[change("PR7", "2024-01-02T00:00Z", None)],
        deployments=[
            deploy("d1", "c1", "2024-01-01T12:00Z"),
            deploy("d2", "r2", "2024-01-03T00:00Z"),
        ],
    )
    links = dplink.link(ds)
    assert pairs(links) == {("d2", "PR7")}
    assert not links["is_approximate"].any()


def test_failed_deployment_ships_nothing_the_next_success_ships_it() -> None:
    deploys = [
        *DEPLOYS[:1],
        deploy("d2", "s2", "2024-01-04T00:10Z", status="failure"),
        *DEPLOYS[2:],
    ]
    ds = Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=deploys)
    assert pairs(dplink.link(ds)) == {("d3", "PR1"), ("d3", "PR2"), ("d3", "t3")}


def test_rollback_and_redeploy_ship_nothing_new() -> None:
    deploys = [
        *DEPLOYS,
        deploy("d4", "s2", "2024-01-07T00:00Z"),
        deploy("d5", "t3", "2024-01-08T00:00Z"),
    ]
    ds = Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=deploys)
    assert pairs(dplink.link(ds)) == {("d2", "PR1"), ("d2", "PR2"), ("d3", "t3")}


def test_time_fallback_without_commit_graph_is_flagged_approximate() -> None:
    ds = Dataset.from_frames(
        changes=[
            change("A", "2024-01-01T06:00Z", "x1"),  # before the first deployment: not linked
            change("B", "2024-01-02T06:00Z", "x2"),
            change("C", "2024-01-02T07:00Z", None),
            change("D", "2024-01-03T06:00Z", "x3"),  # after the last: not deployed
            change("E", None, None),  # never merged
        ],
        deployments=[
            deploy("d1", "y1", "2024-01-01T12:00Z"),
            deploy("d2", "y2", "2024-01-02T12:00Z", created="2024-01-02T11:00Z"),
        ],
    )
    links = dplink.link(ds)
    # B and C merged between d1's and d2's creation: both ship with d2.
    assert pairs(links) == {("d2", "B"), ("d2", "C")}
    assert links["is_approximate"].all()
    assert pairs(dplink.link(ds, approximate=False)) == set()


def test_time_fallback_uses_deployment_creation_not_finish() -> None:
    # Merged at 11:30, after d2 started (11:00) but before it finished (12:00): d3 ships it.
    ds = Dataset.from_frames(
        changes=[change("B", "2024-01-02T11:30Z", None)],
        deployments=[
            deploy("d1", "y1", "2024-01-01T12:00Z"),
            deploy("d2", "y2", "2024-01-02T12:00Z", created="2024-01-02T11:00Z"),
            deploy("d3", "y3", "2024-01-03T12:00Z"),
        ],
    )
    assert pairs(dplink.link(ds)) == {("d3", "B")}


def test_each_production_environment_links_on_its_own() -> None:
    deploys = [
        deploy("eu1", "c1", "2024-01-01T12:10Z", env="prod-eu"),
        deploy("us1", "c1", "2024-01-01T12:20Z", env="prod-us"),
        deploy("eu2", "s2", "2024-01-04T00:10Z", env="prod-eu"),
        deploy("us2", "t3", "2024-01-06T00:00Z", env="prod-us"),
    ]
    ds = Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=deploys)
    links = dplink.link(ds)
    assert pairs(links) == {
        ("eu2", "PR1"),
        ("eu2", "PR2"),
        ("us2", "PR1"),
        ("us2", "PR2"),
        ("us2", "t3"),
    }
    assert dict(zip(links["deployment_id"], links["environment"], strict=False))["us2"] == "prod-us"


def test_environments_option_and_non_production_ignored() -> None:
    deploys = [
        *DEPLOYS,
        deploy("st1", "s4", "2024-01-06T06:00Z", env="staging", is_production=False),
    ]
    ds = Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=deploys)
    assert ("st1", "PR4") not in pairs(dplink.link(ds))
    staging = [
        deploy("st0", "t3", "2024-01-05T13:00Z", env="staging", is_production=False),
        deploys[-1],
    ]
    ds = Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=staging)
    assert pairs(dplink.link(ds, environments=["staging"])) == {("st1", "PR4")}


def test_unknown_is_production_falls_back_to_the_environment_name() -> None:
    deploys = [{**d, "is_production": None} for d in DEPLOYS]
    ds = Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=deploys)
    assert pairs(dplink.link(ds)) == {("d2", "PR1"), ("d2", "PR2"), ("d3", "t3")}


def test_same_sha_in_two_repos_stays_apart() -> None:
    other = [commit(c["sha"], c["parents"], c["committed_at"], repo="o/b") for c in COMMITS[:2]]
    deploys = [*DEPLOYS, deploy("b1", "c1", "2024-01-01T12:10Z", repo="o/b")]
    ds = Dataset.from_frames(commits=[*COMMITS, *other], changes=CHANGES, deployments=deploys)
    assert pairs(dplink.link(ds)) == {("d2", "PR1"), ("d2", "PR2"), ("d3", "t3")}


def test_empty_dataset_gives_an_empty_table() -> None:
    links = dplink.link(Dataset())
    assert links.empty
    assert list(links.columns) == DEPLOYMENT_CHANGES.columns


def test_deployments_without_commits_or_changes() -> None:
    assert dplink.link(Dataset.from_frames(deployments=DEPLOYS)).empty


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_order_does_not_matter(seed: int) -> None:
    expected = dplink.link(base())
    shuffled = Dataset.from_frames(
        commits=pd.DataFrame(COMMITS).sample(frac=1, random_state=seed),
        changes=pd.DataFrame(CHANGES).sample(frac=1, random_state=seed),
        deployments=pd.DataFrame(DEPLOYS).sample(frac=1, random_state=seed),
    )
    pd.testing.assert_frame_equal(dplink.link(shuffled), expected)


def test_since_drops_deployments_before_it() -> None:
    assert pairs(dplink.link(base(), since="2024-01-05")) == {("d3", "t3")}


def _full_sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def _with_full_shas(items: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    out = []
    for item in items:
        item = dict(item)
        for key in keys:
            value = item.get(key)
            if isinstance(value, list):
                item[key] = [_full_sha(v) for v in value]
            elif isinstance(value, str):
                item[key] = _full_sha(value)
        out.append(item)
    return out


def _full_dataset() -> Dataset:
    return Dataset.from_frames(
        commits=_with_full_shas(COMMITS, "sha", "parents"),
        changes=_with_full_shas(CHANGES, "merge_sha"),
        deployments=_with_full_shas(DEPLOYS, "sha"),
    )


def test_full_length_shas_take_the_hashed_path_and_agree() -> None:
    links = dplink.link(_full_dataset())
    assert pairs(links) == {("d2", "PR1"), ("d2", "PR2"), ("d3", _full_sha("t3"))}


def test_hash_collisions_never_link_the_wrong_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every sha hashes alike: the byte-for-byte check must notice and fall back to exact codes.
    monkeypatch.setattr(
        commit_graph, "_hash", lambda words, repo: np.zeros(len(words), dtype=np.int64)
    )
    links = dplink.link(_full_dataset())
    assert pairs(links) == {("d2", "PR1"), ("d2", "PR2"), ("d3", _full_sha("t3"))}


def test_a_key_that_only_hashes_like_a_commit_is_not_that_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Keys from the first 8 bytes only: the commits' keys stay distinct (the fast path), but
    # a deployed sha that is no commit shares its first 8 bytes with c1's. The byte-for-byte
    # check must keep it off c1: the deployment links nothing rather than c1's history.
    monkeypatch.setattr(commit_graph, "_hash", lambda words, repo: words[:, 0].view(np.int64))
    impostor = _full_sha("c1")[:8] + "0" * 32
    assert impostor != _full_sha("c1")
    deploys = _with_full_shas(DEPLOYS, "sha")
    deploys[1]["sha"] = impostor
    ds = Dataset.from_frames(
        commits=_with_full_shas(COMMITS, "sha", "parents"),
        changes=_with_full_shas(CHANGES, "merge_sha"),
        deployments=deploys,
    )
    built = commit_graph.build(ds.commits, ds.changes, ds.deployments)
    assert built.graph.found[2].tolist()[1] == -1  # d2's sha found no commit
    assert built.graph.found[2].tolist()[0] >= 0  # d1's (c1 itself) did
    assert ("d2", "PR1") not in pairs(dplink.link(ds))


def test_a_commit_stored_twice_links_as_once() -> None:
    # Two rows for one commit (a frame built by hand, not deduplicated by the store): the
    # graph must give both one node, or its parents would hang off a copy.
    once = _full_dataset()
    twice = Dataset.from_frames(
        commits=pd.concat([once.commits, once.commits.iloc[[1, 2]]], ignore_index=True),
        changes=once.changes,
        deployments=once.deployments,
    )
    assert len(twice.commits) == len(once.commits) + 2
    assert pairs(dplink.link(twice)) == pairs(dplink.link(once))


def test_time_fallback_links_only_changes_of_the_deployed_branch() -> None:
    # No commit graph. main deploys (ref "main", then a tag whose ref is no branch: the
    # default branch, the base most changes have); a backport merged into release/1.x ships
    # with release/1.x's own deployment, never with main's.
    ds = Dataset.from_frames(
        changes=[
            change("M1", "2024-01-02T06:00Z", None, base_ref="main"),
            change("M2", "2024-01-03T06:00Z", None, base_ref="main"),
            change("B1", "2024-01-02T07:00Z", None, base_ref="release/1.x"),
            change("N1", "2024-01-02T08:00Z", None),  # no base branch: the default one
        ],
        deployments=[
            deploy("d1", "y1", "2024-01-01T12:00Z", ref="main"),
            deploy("d2", "y2", "2024-01-02T12:00Z", ref="main"),
            deploy("d3", "y3", "2024-01-03T12:00Z", ref="v2.0.0"),
            deploy("r1", "z1", "2024-01-04T12:00Z", ref="release/1.x"),
        ],
    )
    links = dplink.link(ds)
    assert pairs(links) == {("d2", "M1"), ("d2", "N1"), ("d3", "M2"), ("r1", "B1")}
    assert links["is_approximate"].all()


def test_commits_without_dates_are_not_swept_up_by_the_first_deployment() -> None:
    # u0 ─ u1 ─ p2 ─ u3 ─┬─ n5       u*: no committed_at nor authored_at (a partial export)
    #          (2020)   └─ x4 ─┘     p2: dated, before the collection's start
    # u3 is OLD's merge commit (merged in 2020). u0 and u1 sit behind p2, u3 is dated by its
    # merge: all three predate the start, so the first deployment ships only x4 and n5.
    undated = {"committed_at": None, "authored_at": None}
    commits = [
        {**commit("u0", [], "2020-01-01T00:00Z"), **undated},
        {**commit("u1", ["u0"], "2020-01-01T00:00Z"), **undated},
        commit("p2", ["u1"], "2020-03-01T00:00Z"),
        {**commit("u3", ["p2"], "2020-01-01T00:00Z"), **undated},
        {**commit("x4", ["u3"], "2020-01-01T00:00Z"), **undated, "change_id": "NEW"},
        commit("n5", ["u3", "x4"], "2024-01-02T00:00Z"),
    ]
    changes = [
        change("OLD", "2020-06-01T00:00Z", "u3"),
        change("NEW", "2024-01-02T00:00Z", "n5"),
    ]
    for since in (None, "2024-01-01"):
        ds = Dataset.from_frames(
            commits=commits,
            changes=changes,
            deployments=[deploy("d1", "n5", "2024-01-03T00:00Z", created="2024-01-01T00:00Z")],
        )
        assert pairs(dplink.link(ds, since=since)) == {("d1", "NEW")}


def test_threaded_lookups_give_the_same_links(monkeypatch: pytest.MonkeyPatch) -> None:
    # Large key arrays are looked up in slices on threads; force that path on a small graph.
    expected = pairs(dplink.link(_full_dataset()))
    monkeypatch.setattr(commit_graph, "_PARALLEL_LOOKUP", 0)
    monkeypatch.setattr(commit_graph.os, "cpu_count", lambda: 3)
    assert (
        pairs(dplink.link(_full_dataset()))
        == expected
        == {
            ("d2", "PR1"),
            ("d2", "PR2"),
            ("d3", _full_sha("t3")),
        }
    )


def test_repo_codes_are_one_per_string_across_chunks_and_dictionaries() -> None:
    import pyarrow as pa

    arrays = [
        pa.chunked_array([pa.array(["o/a", None, "o/b"]), pa.array(["o/b", "o/c"])]),
        pa.array(["o/c", "o/a"]).dictionary_encode(),
        pa.array(["o/z", "o/a"], pa.large_string()),
    ]
    codes = commit_graph._dictionary_codes(arrays).tolist()
    names = ["o/a", None, "o/b", "o/b", "o/c", "o/c", "o/a", "o/z", "o/a"]
    assert len(codes) == len(names)
    # Equal strings, equal codes; different strings, different codes; a null is -1.
    for i, left in enumerate(names):
        for j, right in enumerate(names):
            if left is None or right is None:
                continue
            assert (codes[i] == codes[j]) == (left == right)
    assert codes[1] == -1 and min(codes[:1] + codes[2:]) >= 0


def test_strings_are_taken_across_chunks_in_order() -> None:
    import pyarrow as pa

    column = pa.chunked_array([["a", "b"], [], ["c"], ["d", "e"]], type=pa.string())
    rows = np.array([4, 0, 2, 2, 3, 1], dtype=np.int64)
    taken = commit_graph.take_strings(column, rows).to_pylist()
    assert taken == ["e", "a", "c", "c", "d", "b"]


def test_a_dataset_in_many_pieces_links_like_one_in_one_piece() -> None:
    # dp.load gives columns in chunks (one per row group or file); linking must read them
    # chunk by chunk and agree with the same rows in one chunk, on the hashed path too.
    import pyarrow as pa

    from deliverypulse.store.coerce import from_arrow, to_arrow
    from deliverypulse.store.schemas import spec_for

    whole = _full_dataset()

    def pieces(name: str) -> pd.DataFrame:
        table = to_arrow(spec_for(name), getattr(whole, name))
        split = from_arrow(pa.Table.from_batches(table.to_batches(max_chunksize=2)))
        assert split["repo"].array._pa_array.num_chunks > 1  # really in pieces
        return split

    chunked = Dataset.from_frames(
        commits=pieces("commits"), changes=pieces("changes"), deployments=pieces("deployments")
    )
    assert chunked.commits["sha"].array._pa_array.num_chunks > 1
    expected = dplink.link(whole)
    assert pairs(expected) == {("d2", "PR1"), ("d2", "PR2"), ("d3", _full_sha("t3"))}
    pd.testing.assert_frame_equal(dplink.link(chunked), expected)
