"""The one rollback rule (selection.rollback_flags), with the commit graph the linker knows.

A rollback deploys a commit the live commit of its environment and line already contains;
each case below says which earlier deployment's commit contains it, worked out by hand from
the drawn history.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

import deliverypulse as dp
from deliverypulse.dataset import Dataset
from deliverypulse.rules import release_lines, release_order
from deliverypulse.selection import rollback_targets, successful_deployments


def commit(sha: str, parents: list[str], day: int) -> dict[str, Any]:
    return {"repo": "o/a", "sha": sha, "parents": parents, "committed_at": f"2024-01-0{day}T00:00Z"}


def deploy(
    deployment_id: str, sha: str, finished: str, ref: str = "main", created: str | None = None
) -> dict[str, Any]:
    return {
        "repo": "o/a",
        "deployment_id": deployment_id,
        "environment": "production",
        "is_production": True,
        "sha": sha,
        "ref": ref,
        "status": "success",
        "finished_at": finished,
        "created_at": created or (pd.Timestamp(finished) - pd.Timedelta(minutes=10)).isoformat(),
    }


def rolled_back(ds: Dataset) -> dict[str, str]:
    """{rollback: the deployment it rolled back}; the failure outcomes must agree."""
    success = successful_deployments(ds)
    target = rollback_targets(success, dp.prepare(ds).links.reached_by)
    ids = success["deployment_id"].tolist()
    found = {ids[i]: ids[j] for i, j in enumerate(target) if j >= 0}
    outcomes = dp.deployment_outcomes(ds)
    assert set(outcomes.loc[outcomes["failed_by_rollback"], "deployment_id"]) == set(found.values())
    return found


# main: m1 ─ m2 ─ m3 ─ m4 ─ m5          1.0.x: m2 ─ b1 ─ b2
MAIN = [
    commit("m1", [], 1),
    commit("m2", ["m1"], 2),
    commit("m3", ["m2"], 3),
    commit("m4", ["m3"], 4),
    commit("m5", ["m4"], 5),
    commit("b1", ["m2"], 5),
    commit("b2", ["b1"], 6),
]


def test_deploying_an_ancestor_of_the_live_commit_is_a_rollback() -> None:
    # d3 deploys m3: never deployed itself, but d2's m4 contains it. Only the graph knows.
    deployments = [
        deploy("d1", "m2", "2024-01-02T12:00Z"),
        deploy("d2", "m4", "2024-01-04T12:00Z"),
        deploy("d3", "m3", "2024-01-05T12:00Z"),
        deploy("d4", "m5", "2024-01-06T12:00Z"),
        deploy("d5", "m5", "2024-01-07T12:00Z"),  # the live sha again: a redeploy
    ]
    ds = Dataset.from_frames(commits=MAIN, deployments=deployments)
    assert rolled_back(ds) == {"d3": "d2"}
    # Without the commits the rule can only compare shas: m3 was never deployed before.
    assert rolled_back(Dataset.from_frames(deployments=deployments)) == {}


def test_overlapping_deployments_finishing_out_of_order_roll_nothing_back() -> None:
    # d3 (m3) started before d2 (m4) but finished after it: no one decided to go back.
    deployments = [
        deploy("d1", "m2", "2024-01-02T12:00Z"),
        deploy("d2", "m4", "2024-01-05T12:05Z", created="2024-01-05T12:01Z"),
        deploy("d3", "m3", "2024-01-05T12:06Z", created="2024-01-05T12:00Z"),
    ]
    ds = Dataset.from_frames(commits=MAIN, deployments=deployments)
    assert rolled_back(ds) == {}


def test_release_lines_keep_patch_releases_and_archive_tags_apart() -> None:
    deployments = [
        deploy("1.0.0", "m2", "2024-01-02T12:00Z", ref="1.0.0"),
        deploy("1.1.0", "m4", "2024-01-04T12:00Z", ref="1.1.0"),
        # A patch of the older line, tagged after 1.1.0, on its own branch: new to line 1.0.
        deploy("1.0.1", "b1", "2024-01-05T12:00Z", ref="1.0.1"),
        deploy("1.0.2", "b2", "2024-01-06T12:00Z", ref="1.0.2"),
        # An archive marker of the 1.0 line, late, on 1.0.1's commit (which 1.0.2's b2
        # contains): it names no version above 1.0.2, so it is an old commit tagged late.
        deploy("1.0.x", "b1", "2024-01-07T12:00Z", ref="1.0.x"),
        # A new line's first release on an old commit (m3, first shipped by 1.1.0): nothing to
        # roll back in line 1.2.
        deploy("1.2.0", "m3", "2024-01-08T12:00Z", ref="1.2.0"),
        # 1.1.1 tags m5 (new); then 1.1.2 tags m3, which 1.1.0's m4 already contained: going
        # back under a higher version, a rollback. So is 1.0.3 on 1.0.0's commit m2 (older than
        # the collection's start: the shas say it was deployed before).
        deploy("1.1.1", "m5", "2024-01-09T12:00Z", ref="1.1.1"),
        deploy("1.1.2", "m3", "2024-01-10T12:00Z", ref="1.1.2"),
        deploy("1.0.3", "m2", "2024-01-11T12:00Z", ref="1.0.3"),
        # Old releases tagged late (lower versions than the line's live one): no rollbacks.
        deploy("1.1.0rc1", "m3", "2024-01-12T12:00Z", ref="1.1.0rc1"),
        deploy("v1.0.1", "b1", "2024-01-13T12:00Z", ref="v1.0.1"),
    ]
    ds = Dataset.from_frames(commits=MAIN, deployments=deployments)
    assert rolled_back(ds) == {"1.1.2": "1.1.1", "1.0.3": "1.0.x"}


def test_a_line_whose_commit_another_line_shipped_first_is_checked_on_its_own() -> None:
    # 2.0.1 tags m1: first shipped by 1.0.0 (line 1.0), but 2.0.0's m4 contains it too, so
    # within line 2.0 it goes back. The linker propagates line 2.0 once more to know it.
    deployments = [
        deploy("1.0.0", "m2", "2024-01-02T12:00Z", ref="v1.0.0", created="2024-01-01T00:00Z"),
        deploy("2.0.0", "m4", "2024-01-04T12:00Z", ref="v2.0.0"),
        deploy("2.0.1", "m1", "2024-01-05T12:00Z", ref="v2.0.1"),
        deploy("3.0.0", "m2", "2024-01-06T12:00Z", ref="v3.0.0"),
    ]
    ds = Dataset.from_frames(commits=MAIN, deployments=deployments)
    links = dp.prepare(ds).links
    assert links.reached_by is not None
    rows = ds.deployments.reset_index(drop=True)["deployment_id"].tolist()
    reached = {rows[i]: rows[j] for i, j in enumerate(links.reached_by) if j >= 0}
    assert reached == {"1.0.0": "1.0.0", "2.0.0": "2.0.0", "2.0.1": "2.0.0", "3.0.0": "3.0.0"}
    assert rolled_back(ds) == {"2.0.1": "2.0.0"}


def test_release_lines_of_refs() -> None:
    refs = pd.Series(["v2.3.1", "2.3.x", "0.12.x", "2.3.0rc1", "main", None, "v02.010"])
    assert release_lines(refs).fillna("-").tolist() == [
        "2.3",
        "2.3",
        "0.12",
        "2.3",
        "-",
        "-",
        "2.10",
    ]
    assert release_lines(pd.Series([None, None], dtype="string")).isna().all()
    names = pd.Series(["1.0", "v1.0.0", "1.0.0rc1", "0.12.x", "0.12.5", "main", "1.10", "1.9"])
    assert release_order(names).fillna(-1).tolist() == [3, 3, 2, 0, 1, -1, 5, 4]
