"""The ``changes`` stream: pull requests with first commit, ready-for-review time, reviews,
approvals, sizes, labels, bot authors, reverts and hotfixes, fifty per GraphQL request.

- https://docs.github.com/en/graphql/reference/objects#pullrequest
- https://docs.github.com/en/graphql/reference/objects#pullrequestreview
- https://docs.github.com/en/graphql/reference/objects#readyforreviewevent
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from deliverypulse.connector import Page
from deliverypulse_github import queries
from deliverypulse_github.context import (
    StreamContext,
    login,
    nodes,
    page,
    split_repo,
    walk_graphql,
)
from deliverypulse_github.cursor import WalkCursor, earliest

#: GitHub's "Revert" button writes this title and body ("Reverts owner/repo#123").
_REVERT_TITLE = re.compile(r'^\s*Revert\s+"', re.IGNORECASE)
_REVERTS_BODY = re.compile(r"\bReverts\s+(?:[\w.-]+/[\w.-]+)?#(\d+)", re.IGNORECASE)
_REVERTS_SHA = re.compile(r"\bThis reverts commit ([0-9a-f]{7,40})", re.IGNORECASE)


def read_changes(ctx: StreamContext, repo: str, cursor_text: str | None) -> Iterator[Page]:
    owner, name = split_repo(repo)
    variables = {"owner": owner, "name": name, "first": queries.PULL_REQUESTS_PAGE}
    walk = walk_graphql(
        ctx,
        queries.PULL_REQUESTS,
        variables,
        ("repository", "pullRequests"),
        WalkCursor.load(cursor_text),
        "updatedAt",
        repo,
    )
    for pull_requests, cursor, _ in walk:
        yield page([change_record(ctx, pr) for pr in pull_requests], cursor)


def change_record(ctx: StreamContext, pr: Mapping[str, Any]) -> dict[str, Any]:
    """One ``changes`` row from a GraphQL PullRequest node."""
    author = pr.get("author") or {}
    author_login = login(author)
    reviews = nodes(pr.get("reviews"))
    by_others = [
        r for r in reviews if login(r.get("author")) != author_login and r.get("state") != "PENDING"
    ]
    approvals = [r for r in by_others if r.get("state") == "APPROVED"]
    # A comment by someone else counts as a first review too, but not a bot's (CI, coverage).
    comments = [
        c
        for c in nodes(pr.get("comments"))
        if login(c.get("author")) != author_login and not ctx.is_bot(c.get("author"))
    ]
    first_commit = next(iter(nodes(pr.get("commits"))), {}).get("commit") or {}
    ready_event = next(iter(nodes(pr.get("timelineItems"))), {})
    labels = [str(label["name"]) for label in nodes(pr.get("labels")) if label.get("name")]
    title = str(pr.get("title") or "")
    body = str(pr.get("body") or "")
    reverted = _REVERTS_BODY.search(body) or _REVERTS_SHA.search(body)
    is_revert = bool(_REVERT_TITLE.match(title) or reverted)
    head_ref = pr.get("headRefName")
    hotfix_text = " ".join([title, str(head_ref or ""), *labels])
    state = str(pr.get("state") or "").lower() or None
    return {
        "change_id": str(pr["number"]),
        "number": pr["number"],
        "title": title,
        "author": author_login,
        "is_bot": ctx.is_bot(author),
        "base_ref": pr.get("baseRefName"),
        "head_ref": head_ref,
        "state": state,
        "created_at": pr.get("createdAt"),
        "ready_at": _ready_at(pr, ready_event),
        "first_commit_at": earliest(first_commit.get("authoredDate"))
        or first_commit.get("committedDate"),
        "first_review_at": earliest(
            *(_review_time(r) for r in by_others), *(c.get("createdAt") for c in comments)
        ),
        "first_approval_at": earliest(*(_review_time(r) for r in approvals)),
        "merged_at": pr.get("mergedAt"),
        "closed_at": pr.get("closedAt"),
        "updated_at": pr.get("updatedAt"),
        "merge_sha": (pr.get("mergeCommit") or {}).get("oid"),
        "additions": pr.get("additions"),
        "deletions": pr.get("deletions"),
        "changed_files": pr.get("changedFiles"),
        "commit_count": (pr.get("commits") or {}).get("totalCount"),
        "review_count": len(by_others),
        "approval_count": len(approvals),
        "approvers": sorted({a for a in (login(r.get("author")) for r in approvals) if a}),
        "labels": labels,
        "is_revert": is_revert,
        "reverts": reverted.group(1) if reverted else None,
        "is_hotfix": bool(ctx.hotfix.search(hotfix_text)),
        "url": pr.get("url"),
    }


def _review_time(review: Mapping[str, Any]) -> str | None:
    value = review.get("submittedAt") or review.get("createdAt")
    return str(value) if value else None


def _ready_at(pr: Mapping[str, Any], ready_event: Mapping[str, Any]) -> str | None:
    """When the pull request asked for review: its ready-for-review event, or its creation if
    it was never a draft; None while it is still a draft."""
    if ready_event.get("createdAt"):
        return str(ready_event["createdAt"])
    if pr.get("isDraft"):
        return None
    value = pr.get("createdAt")
    return str(value) if value else None
