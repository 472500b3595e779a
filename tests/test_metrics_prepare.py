"""One prepared value: options declared and checked once, linking once, every consumer alike."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from report_data import organisation
from test_metrics_failure import DEPLOYS, deploy

import deliverypulse as dp
from deliverypulse.dataset import Dataset
from deliverypulse.errors import OptionError
from deliverypulse.selection import rollback_flags, successful_deployments


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return organisation(days=90)


def test_every_consumer_gives_the_same_numbers_from_a_prepared_value(ds: Dataset) -> None:
    prepared = dp.prepare(ds, revert_window="3D", exclude_bots=False)
    same = {"revert_window": "3D", "exclude_bots": False}
    pd.testing.assert_frame_equal(
        dp.metrics(prepared, by="repo"), dp.metrics(ds, by="repo", **same)
    )
    pd.testing.assert_frame_equal(dp.summary(prepared), dp.summary(ds, **same))
    pd.testing.assert_frame_equal(dp.lead_times(prepared), dp.lead_times(ds, **same))
    pd.testing.assert_frame_equal(
        dp.deployment_outcomes(prepared), dp.deployment_outcomes(ds, **same)
    )
    assert dp.analyze(prepared).verdict == dp.analyze(ds, **same).verdict


def test_options_and_keywords_build_the_same_value(ds: Dataset) -> None:
    options = dp.MetricOptions.build(since="2024-02-01", failure_signals="status")
    assert options.since == pd.Timestamp("2024-02-01", tz="UTC")
    assert options.failure_signals == ("status",)
    pd.testing.assert_frame_equal(
        dp.summary(ds, options=options),
        dp.summary(ds, since="2024-02-01", failure_signals=["status"]),
    )
    assert dp.prepare(ds, options, trunk=False).options == options.replace(trunk=False)


def test_a_prepared_value_takes_another_time_zone_but_not_other_counting(ds: Dataset) -> None:
    prepared = dp.prepare(ds)
    pd.testing.assert_frame_equal(
        dp.metrics(prepared, period="week", tz="Europe/Berlin"),
        dp.metrics(ds, period="week", tz="Europe/Berlin"),
    )
    with pytest.raises(OptionError, match="exclude_bots"):
        dp.metrics(prepared, exclude_bots=False)
    with pytest.raises(OptionError, match="links"):
        dp.summary(prepared, links=dp.link(ds))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("environments", [1, 2]),
        ("since", "not a date"),
        ("failure_signals", ["pager"]),
        ("revert_window", "soon"),
        ("exclude_bots", "yes"),
        ("bot_pattern", "(unclosed"),
        ("hotfix_pattern", "[a-"),
        ("trunk", None),
        ("approximate", 1),
        ("benchmarks", "1999"),
        ("tz", "Mars/Olympus"),
    ],
)
def test_a_bad_option_is_an_option_error_that_names_it(option: str, value: Any) -> None:
    words = "failure signal" if option == "failure_signals" else option
    with pytest.raises(OptionError, match=words.replace("_", ".")):
        dp.MetricOptions.build(**{option: value})


def test_the_hotfix_pattern_classifies_trunk_commits() -> None:
    commits = [
        {"repo": "o/a", "sha": "c1", "parents": [], "committed_at": "2024-01-01T09:00Z"},
        {
            "repo": "o/a",
            "sha": "c2",
            "parents": ["c1"],
            "committed_at": "2024-01-02T09:00Z",
            "subject": "urgent: patch the parser",
        },
    ]
    deploys = [
        {**deploy("d1", "2024-01-01T10:00Z", "c1"), "created_at": "2023-12-31T00:00Z"},
        deploy("d2", "2024-01-02T10:00Z", "c2"),
    ]
    ds = Dataset.from_frames(deployments=deploys, commits=commits)
    assert not dp.lead_times(ds)["is_hotfix"].any()
    flagged = dp.lead_times(ds, hotfix_pattern="(?i)urgent")
    assert flagged.set_index("change_id")["is_hotfix"].to_dict() == {"c1": False, "c2": True}


def _rollbacks(deployments: list[dict[str, Any]]) -> set[str]:
    success = successful_deployments(Dataset.from_frames(deployments=deployments))
    return set(success.loc[rollback_flags(success), "deployment_id"])


def test_rollback_is_decided_from_the_whole_sequence() -> None:
    # d6 goes back to d4's sha; no connector marked it.
    assert _rollbacks(DEPLOYS) == {"d6"}
    # A redeploy of the live sha is none; neither is the same sha in another environment or repo.
    staging = {**deploy("s1", "2024-01-06T11:00Z", "s4"), "environment": "prod-eu"}
    other = {**deploy("o1", "2024-01-06T11:00Z", "s4"), "repo": "o/b"}
    again = deploy("d6b", "2024-01-05T11:00Z", "s4")
    assert _rollbacks([*DEPLOYS, staging, other, again]) == {"d6"}
    # A provider's explicit marker counts; on a sequence's first deployment it rolls back nothing.
    marked = [
        {**DEPLOYS[0], "is_rollback": True},
        {**DEPLOYS[2], "is_rollback": True},
    ]
    assert _rollbacks(marked) == {"d3"}
