"""Row building from GraphQL nodes, for the cases the synthetic repos do not cover."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
from deliverypulse_github.changes import change_record
from deliverypulse_github.deployments import deployment_record

from deliverypulse import rules

RUN = "https://github.com/o/r/actions/runs/77"
PRODUCTION = re.compile("^prod")
BOTS = re.compile(rules.BOT_PATTERN)


def classified(row: dict[str, Any]) -> pd.Series:
    """A ``changes`` row as the collector stores it: classified by the rules module."""
    return rules.classify_changes(pd.DataFrame([row])).iloc[0]


def deployment(environment: str, *states: str) -> dict[str, Any]:
    return {
        "databaseId": 1,
        "environment": environment,
        "createdAt": "2024-01-01T00:00:00Z",
        "commitOid": "abc",
        "statuses": {
            "nodes": [
                {"state": s, "createdAt": f"2024-01-01T00:0{k + 1}:00Z", "logUrl": f"{RUN}/job/1"}
                for k, s in enumerate(states)
            ]
        },
    }


def test_waiting_on_a_wait_timer_is_not_an_approval_gate() -> None:
    gates = {"prod": {"required": False, "reviewers": []}}
    row = deployment_record(
        deployment("prod", "WAITING", "QUEUED", "SUCCESS"), gates, {}, PRODUCTION
    )
    assert row["approval_required"] is False
    assert row["approval_requested_at"] is None and row["approved_at"] is None


def test_waiting_in_an_unknown_environment_counts_as_gated() -> None:
    row = deployment_record(
        deployment("prod", "WAITING", "IN_PROGRESS", "SUCCESS"), {}, {}, PRODUCTION
    )
    assert row["approval_required"] is True
    assert row["approval_requested_at"] == "2024-01-01T00:01:00Z"
    assert row["approved_at"] == "2024-01-01T00:02:00Z"
    assert row["approvers"] is None  # reviews unknown


def test_rejected_deployment_has_no_approval_time() -> None:
    reviews = {RUN: [{"state": "REJECTED", "login": "boss", "environments": ["prod"]}]}
    gates = {"prod": {"required": True, "reviewers": ["boss"]}}
    row = deployment_record(deployment("prod", "WAITING", "FAILURE"), gates, reviews, PRODUCTION)
    assert row["approval_required"] is True and row["approved_at"] is None
    assert row["status"] == "failure" and row["approvers"] == []


def test_deployment_without_statuses_uses_its_state() -> None:
    node = {**deployment("staging"), "statuses": {"nodes": []}, "state": "ABANDONED"}
    row = deployment_record(node, {}, {}, PRODUCTION)
    assert row["status"] == "cancelled" and row["finished_at"] is None
    assert row["approval_required"] is None and not row["is_production"]


def pull(**overrides: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "number": 9,
        "title": "Add thing",
        "body": "",
        "state": "OPEN",
        "isDraft": True,
        "createdAt": "2024-01-01T00:00:00Z",
        "author": {"__typename": "User", "login": "ann"},
        "reviews": {"nodes": []},
        "comments": {"nodes": []},
        "commits": {
            "totalCount": 1,
            "nodes": [{"commit": {"authoredDate": "2023-12-31T00:00:00Z"}}],
        },
        "timelineItems": {"nodes": []},
        "labels": {"nodes": [{"name": "Hotfix"}]},
    }
    node.update(overrides)
    return node


def test_draft_has_no_ready_time_and_self_reviews_and_bot_comments_do_not_count() -> None:
    row = change_record(
        pull(
            reviews={
                "nodes": [
                    {
                        "state": "COMMENTED",
                        "submittedAt": "2024-01-01T01:00:00Z",
                        "author": {"login": "ann"},
                    },
                    {
                        "state": "APPROVED",
                        "submittedAt": "2024-01-01T03:00:00Z",
                        "author": {"login": "bob"},
                    },
                ]
            },
            comments={
                "nodes": [
                    {
                        "createdAt": "2024-01-01T00:30:00Z",
                        "author": {"__typename": "Bot", "login": "codecov"},
                    },
                    {"createdAt": "2024-01-01T02:00:00Z", "author": {"login": "cid"}},
                ]
            },
        ),
        BOTS,
    )
    assert row["ready_at"] is None and row["state"] == "open"
    assert row["first_review_at"] == "2024-01-01T02:00:00Z"  # cid's comment, not ann, not bot
    assert row["first_approval_at"] == "2024-01-01T03:00:00Z"
    assert row["review_count"] == 1 and row["approvers"] == ["bob"]
    assert classified(row)["is_hotfix"]  # the Hotfix label
    assert row["first_commit_at"] == "2023-12-31T00:00:00Z"


def test_revert_of_a_commit_is_recognised() -> None:
    row = change_record(pull(title="Undo", body="This reverts commit 0123abcd4567."), BOTS)
    assert "is_revert" not in row and "reverts" not in row  # facts only: the core classifies
    change = classified(row)
    assert change["is_revert"] and change["reverts"] == "0123abcd4567"
    assert "body" not in change  # transient: used to classify, not stored


def test_githubs_revert_button_and_bot_flag_are_facts_the_core_classifies() -> None:
    row = change_record(
        pull(
            title='Revert "Add thing"',
            body="Reverts octo/web#8",
            author={"__typename": "Bot", "login": "release-helper"},
            labels={"nodes": []},
        ),
        BOTS,
    )
    assert row["author_is_bot"] and row["body"] == "Reverts octo/web#8"
    change = classified(row)
    assert change["is_revert"] and change["reverts"] == "8"
    assert change["is_bot"] and not change["is_hotfix"]


def test_rollback_is_githubs_own_marker_only() -> None:
    marked = {**deployment("prod", "SUCCESS"), "task": "deploy:rollback"}
    assert deployment_record(marked, {}, {}, PRODUCTION)["is_rollback"] is True
    plain = deployment_record(deployment("prod", "SUCCESS"), {}, {}, PRODUCTION)
    assert plain["is_rollback"] is None  # the core decides from the deployment sequence
