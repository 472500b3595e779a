"""Lead time for changes: hand-computed spans, exclusions, bots and trunk commits."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from deliverypulse.dataset import Dataset
from deliverypulse.dora import lead_times, metrics
from deliverypulse.linking import link

H = pd.Timedelta(hours=1)


def commit(sha: str, parents: list[str], at: str, **extra: Any) -> dict[str, Any]:
    return {"repo": "o/a", "sha": sha, "parents": parents, "committed_at": at, **extra}


def change(change_id: str, sha: str, merged: str, **extra: Any) -> dict[str, Any]:
    return {
        "repo": "o/a",
        "change_id": change_id,
        "merge_sha": sha,
        "merged_at": merged,
        "created_at": extra.pop("created_at", "2024-01-01T00:00Z"),
        **extra,
    }


def deploy(deployment_id: str, sha: str, finished: str, **extra: Any) -> dict[str, Any]:
    created = (pd.Timestamp(finished) - pd.Timedelta(minutes=10)).isoformat()
    return {
        "repo": "o/a",
        "deployment_id": deployment_id,
        "environment": "production",
        "is_production": True,
        "sha": sha,
        "status": "success",
        "created_at": created,
        "finished_at": finished,
        **extra,
    }


# c1 ─┬───── m1 ── s2 ── b1 ── n1 ── i1 ── t1 ── x3
#     └ f1 ┘
# d1 (first deployment) ships nothing; d2 (2024-01-04 00:00) ships PR1, PR2, BOT, NEG, INC
# and the trunk commit t1; PR3 (x3) is never deployed.
COMMITS = [
    commit("c1", [], "2024-01-01T00:00Z"),
    commit("f1", ["c1"], "2024-01-01T06:00Z", change_id="PR1"),
    commit("m1", ["c1", "f1"], "2024-01-02T00:00Z"),
    commit("s2", ["m1"], "2024-01-03T00:00Z"),
    commit("b1", ["s2"], "2024-01-03T00:30Z"),
    commit("n1", ["b1"], "2024-01-03T01:00Z"),
    commit("i1", ["n1"], "2024-01-03T02:00Z"),
    commit("t1", ["i1"], "2024-01-03T03:00Z", authored_at="2024-01-03T00:00Z", author="ann"),
    commit("x3", ["t1"], "2024-01-05T00:00Z"),
]
CHANGES = [
    change(
        "PR1",
        "m1",
        "2024-01-02T00:00Z",
        first_commit_at="2023-12-31T00:00Z",
        created_at="2024-01-01T00:00Z",
        first_review_at="2024-01-01T06:00Z",
        author="bob",
    ),
    change(
        "PR2",  # squash-merged
        "s2",
        "2024-01-03T00:00Z",
        first_commit_at="2024-01-02T12:00Z",
        created_at="2024-01-02T13:00Z",
        ready_at="2024-01-02T14:00Z",
        first_review_at="2024-01-02T20:00Z",
        author="cy",
    ),
    change(
        "BOT",
        "b1",
        "2024-01-03T00:30Z",
        first_commit_at="2024-01-03T05:00Z",
        created_at="2024-01-03T05:00Z",
        author="dependabot[bot]",
    ),
    change(
        "NEG",  # first commit after the deployment: a data error
        "n1",
        "2024-01-03T01:00Z",
        first_commit_at="2024-01-05T00:00Z",
        created_at="2024-01-02T00:00Z",
        author="dee",
    ),
    change("INC", "i1", "2024-01-03T02:00Z", created_at="2024-01-02T00:00Z", author="eve"),
    change("PR3", "x3", "2024-01-05T00:00Z", first_commit_at="2024-01-04T00:00Z"),
]
DEPLOYS = [deploy("d1", "c1", "2024-01-01T12:00Z"), deploy("d2", "t1", "2024-01-04T00:00Z")]


def dataset() -> Dataset:
    return Dataset.from_frames(commits=COMMITS, changes=CHANGES, deployments=DEPLOYS)


def test_lead_time_rows_and_breakdown() -> None:
    rows = lead_times(dataset()).set_index("change_id")
    # Bots are left out by default; PR3 was never deployed.
    assert set(rows.index) == {"PR1", "PR2", "NEG", "INC", "t1"}
    assert (rows["deployment_id"] == "d2").all()
    pr1 = rows.loc["PR1"]
    assert pr1["lead_time"] == 96 * H  # 2023-12-31 00:00 → 2024-01-04 00:00
    assert pr1["merge_to_deploy"] == 48 * H  # merged 01-02 00:00
    assert pr1["coding"] == 24 * H  # first commit → created (no ready_at)
    assert pr1["pickup"] == 6 * H  # created 01-01 00:00 → first review 06:00
    assert pr1["review"] == 18 * H  # first review → merged
    assert pr1["deploy"] == 48 * H
    pr2 = rows.loc["PR2"]
    assert pr2["lead_time"] == 36 * H  # 01-02 12:00 → 01-04 00:00
    assert pr2["coding"] == 2 * H  # first commit 12:00 → ready 14:00 (ready wins over created)
    assert pr2["pickup"] == 6 * H  # ready 14:00 → review 20:00
    assert pr2["review"] == 4 * H  # review 20:00 → merged 01-03 00:00
    assert rows.loc["NEG", "lead_time"] == -24 * H  # kept signed here; excluded in metrics
    assert pd.isna(rows.loc["INC", "lead_time"])


def test_trunk_commit_is_a_change_of_its_own() -> None:
    rows = lead_times(dataset()).set_index("change_id")
    trunk = rows.loc["t1"]
    assert bool(trunk["is_trunk"])
    assert trunk["lead_time"] == 24 * H  # authored 01-03 00:00 → deployed 01-04 00:00
    assert trunk["merge_to_deploy"] == 21 * H  # committed 03:00 → deployed
    assert pd.isna(trunk["coding"]) and pd.isna(trunk["review"])
    assert "t1" not in set(lead_times(dataset(), trunk=False)["change_id"])


def test_bots_can_be_kept() -> None:
    rows = lead_times(dataset(), exclude_bots=False).set_index("change_id")
    assert rows.loc["BOT", "lead_time"] == 19 * H  # 01-03 05:00 → 01-04 00:00
    assert bool(rows.loc["BOT", "is_bot"])


def test_an_explicit_is_bot_wins_over_the_name() -> None:
    changes = [{**c, "is_bot": False} if c["change_id"] == "BOT" else c for c in CHANGES]
    ds = Dataset.from_frames(commits=COMMITS, changes=changes, deployments=DEPLOYS)
    assert "BOT" in set(lead_times(ds)["change_id"])


def test_lead_time_statistics_in_the_metrics_table() -> None:
    row = metrics(dataset(), by="repo").iloc[0]
    # Valid lead times (bots out, NEG negative, INC incomplete): 96, 36, 24 hours.
    assert row["lead_time_count"] == 3
    assert row["lead_time_negative"] == 1
    assert row["lead_time_incomplete"] == 1
    assert row["lead_time_median_hours"] == pytest.approx(36)
    assert row["lead_time_p75_hours"] == pytest.approx(66)  # 36 + 0.5 * (96 - 36)
    assert row["lead_time_p90_hours"] == pytest.approx(84)  # 36 + 0.8 * (96 - 36)
    # Merge → deploy: PR1 48, PR2 24, NEG 23, INC 22, t1 21.
    assert row["merge_to_deploy_count"] == 5
    assert row["merge_to_deploy_median_hours"] == pytest.approx(23)
    assert row["coding_median_hours"] == pytest.approx(13)  # (24 + 2) / 2; NEG's is negative
    assert row["pickup_median_hours"] == pytest.approx(6)
    assert row["review_median_hours"] == pytest.approx(11)  # (18 + 4) / 2
    assert row["deploy_median_hours"] == pytest.approx(23)
    assert row["lead_time_cluster"] == "high"  # 36 h: between a day and a week


def test_including_bots_changes_the_median() -> None:
    row = metrics(dataset(), by="repo", exclude_bots=False).iloc[0]
    assert row["lead_time_count"] == 4
    assert row["lead_time_median_hours"] == pytest.approx(30)  # 19, 24, 36, 96 → (24 + 36) / 2


def test_a_team_without_pull_requests_still_gets_a_lead_time() -> None:
    commits = [
        commit("a", [], "2024-01-01T00:00Z"),
        commit("b", ["a"], "2024-01-02T00:00Z", authored_at="2024-01-01T20:00Z"),
        commit("c", ["b"], "2024-01-02T06:00Z"),
    ]
    deploys = [deploy("d1", "a", "2024-01-01T12:00Z"), deploy("d2", "c", "2024-01-02T12:00Z")]
    ds = Dataset.from_frames(commits=commits, deployments=deploys)
    rows = lead_times(ds).set_index("change_id")
    assert rows["lead_time"].to_dict() == {"b": 16 * H, "c": 6 * H}
    assert metrics(ds).iloc[0]["lead_time_median_hours"] == pytest.approx(11)


def test_stored_links_give_the_same_numbers() -> None:
    # A deployment_changes table read back from disk has no row positions: matched by ids.
    ds = dataset()
    stored = link(ds)
    pd.testing.assert_frame_equal(metrics(ds, links=stored), metrics(ds))
    pd.testing.assert_frame_equal(lead_times(ds, links=stored), lead_times(ds))


def test_is_bot_reads_the_flag_first_then_the_name() -> None:
    from deliverypulse.dora.lead_time import is_bot

    changes = pd.DataFrame(
        {
            "author": pd.array(
                ["dependabot[bot]", "alice", None, "dependabot[bot]", "alice", "alice"],
                dtype="string",
            ),
            "is_bot": pd.array([None, None, None, None, True, False], dtype="boolean"),
        }
    )
    # By name where the flag is unknown (a missing name is no bot); the flag where known.
    assert is_bot(changes).tolist() == [True, False, False, True, True, False]


def test_percentiles_per_repo_and_month_agree_with_numpy() -> None:
    # Three repos over two months, changes linked by time (each ships with the first
    # deployment created after its merge). Each group's percentiles are computed here from
    # the inputs alone, with numpy's documented linear method, so a group mixed up with
    # another (the spans are grouped by an integer code) would show.
    import numpy as np

    rng = np.random.default_rng(5)
    start = pd.Timestamp("2024-01-01T00:00Z")
    deployments: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    expected: dict[tuple[str, pd.Timestamp], list[float]] = {}
    for repo in ("o/a", "o/b", "o/c"):
        finished = [start + pd.Timedelta(hours=36 * d + int(rng.integers(0, 5))) for d in range(40)]
        for d, at in enumerate(finished):
            deployments.append(
                {
                    "repo": repo,
                    "deployment_id": f"{repo}-{d}",
                    "environment": "production",
                    "is_production": True,
                    "sha": f"{repo}-s{d}",
                    "status": "success",
                    "created_at": (at - pd.Timedelta(minutes=10)).isoformat(),
                    "finished_at": at.isoformat(),
                }
            )
        for c in range(150):
            merged = start + pd.Timedelta(minutes=int(rng.integers(6 * 60, 38 * 36 * 60)))
            first_commit = merged - pd.Timedelta(hours=int(rng.integers(1, 200)))
            changes.append(
                {
                    "repo": repo,
                    "change_id": f"{repo}-c{c}",
                    "created_at": (merged - pd.Timedelta(minutes=30)).isoformat(),
                    "first_commit_at": first_commit.isoformat(),
                    "merged_at": merged.isoformat(),
                }
            )
            shipped = next(at for at in finished if at - pd.Timedelta(minutes=10) > merged)
            month = pd.Timestamp(year=shipped.year, month=shipped.month, day=1, tz="UTC")
            hours = (shipped - first_commit) / pd.Timedelta(hours=1)
            expected.setdefault((repo, month), []).append(hours)
    ds = Dataset.from_frames(deployments=deployments, changes=changes)
    rows = metrics(ds, by="repo", period="month").set_index(["repo", "period"])
    assert len(expected) == 6
    for (repo, month), hours in expected.items():
        row = rows.loc[(repo, month)]
        assert row["lead_time_count"] == len(hours)
        for stat, q in (("median", 50), ("p75", 75), ("p90", 90)):
            assert row[f"lead_time_{stat}_hours"] == pytest.approx(np.percentile(hours, q))
