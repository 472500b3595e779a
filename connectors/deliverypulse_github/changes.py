"""The ``changes`` stream: pull requests with first commit, ready-for-review time, reviews,
approvals, sizes, labels and the facts the core classifies (title, body, branch, labels,
author and GitHub's own bot flag), fifty per GraphQL request, newest-updated first.

``first_commit_at`` is the earliest authored time (committed time where a commit has none)
among the pull request's own commits, not the first one listed: GitHub lists them in branch
order, and after a rebase or reorder that is not the oldest work. Each page brings up to 100
commits per pull request; the few with more cost one extra request per page of pull requests
and hundred commits (GitHub lists at most 250 commits of a pull request, so at most two).

GitHub's "Revert" button writes a ``Revert "..."`` title and a ``Reverts owner/repo#123`` body;
``deliverypulse.rules`` reads them (and hotfixes and bots) for every connector alike.

- https://docs.github.com/en/graphql/reference/objects#pullrequest
- https://docs.github.com/en/graphql/reference/objects#pullrequestreview
- https://docs.github.com/en/graphql/reference/objects#readyforreviewevent
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.http import HTTPClient
from deliverypulse.rules import is_bot
from deliverypulse.streams import NewestFirst, StreamRun, earliest
from deliverypulse_github import queries
from deliverypulse_github.api import GitHub, JSONObject, graphql_fetch, login, nodes, split_repo

#: Pull requests come newest-updated first: an update re-reads one.
WALK = NewestFirst("updatedAt")


def read_changes(github: GitHub, run: StreamRun) -> Iterator[Page]:
    fetch = graphql_fetch(
        github.client, queries.PULL_REQUESTS, "pullRequests", run.repo, queries.PULL_REQUESTS_PAGE
    )
    for step in WALK.walk(fetch, run.cursor, run.since):
        pulls = with_all_commits(github.client, run.repo, step.items)
        yield Page([change_record(pr, github.settings.bots) for pr in pulls], step.cursor)


def with_all_commits(
    client: HTTPClient, repo: str, pulls: Sequence[JSONObject]
) -> list[JSONObject]:
    """``pulls`` with every commit listed: those with more than one page of commits get the
    rest, one request per round for all of them (each round one more page each)."""
    pending = {
        int(pr["number"]): str(info["endCursor"])
        for pr in pulls
        if (info := (pr.get("commits") or {}).get("pageInfo") or {}).get("hasNextPage")
        and info.get("endCursor")
    }
    more: dict[int, list[JSONObject]] = {number: [] for number in pending}
    owner, name = split_repo(repo)
    while pending:
        batch = sorted(pending)[: queries.PULL_REQUESTS_PAGE]
        variables: dict[str, Any] = {"owner": owner, "name": name}
        for i, number in enumerate(batch):
            variables[f"n{i}"], variables[f"a{i}"] = number, pending[number]
        data = client.graphql(
            queries.pull_request_commits_query(len(batch)), variables, repo=repo, allow_partial=True
        )
        found = data.get("repository") or {}
        for i, number in enumerate(batch):
            page = (found.get(f"p{i}") or {}).get("commits") or {}
            more[number].extend(nodes(page))
            info = page.get("pageInfo") or {}
            after = info.get("endCursor")
            if info.get("hasNextPage") and after and after != pending[number]:
                pending[number] = str(after)
            else:
                del pending[number]
    if not more:
        return list(pulls)
    return [
        {**pr, "commits": {**pr["commits"], "nodes": [*nodes(pr["commits"]), *more[number]]}}
        if (number := int(pr["number"])) in more
        else pr
        for pr in pulls
    ]


def _is_bot(actor: Mapping[str, Any] | None, bots: re.Pattern[str]) -> bool:
    actor = actor or {}
    return is_bot(bots, login(actor), flagged=actor.get("__typename") == "Bot")


def change_record(pr: Mapping[str, Any], bots: re.Pattern[str]) -> dict[str, Any]:
    """One ``changes`` row from a GraphQL PullRequest node: facts only; ``is_revert``,
    ``reverts``, ``is_hotfix`` and ``is_bot`` are decided by ``rules.classify_changes``.
    ``bots`` only keeps bots' comments from counting as a first review."""
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
        if login(c.get("author")) != author_login and not _is_bot(c.get("author"), bots)
    ]
    commits = [c.get("commit") or {} for c in nodes(pr.get("commits"))]
    ready_event = next(iter(nodes(pr.get("timelineItems"))), {})
    labels = [str(label["name"]) for label in nodes(pr.get("labels")) if label.get("name")]
    state = str(pr.get("state") or "").lower() or None
    return {
        "change_id": str(pr["number"]),
        "number": pr["number"],
        "title": str(pr.get("title") or ""),
        "body": str(pr.get("body") or ""),
        "author": author_login,
        "author_is_bot": author.get("__typename") == "Bot",
        "base_ref": pr.get("baseRefName"),
        "head_ref": pr.get("headRefName"),
        "state": state,
        "created_at": pr.get("createdAt"),
        "ready_at": _ready_at(pr, ready_event),
        # The earliest authored time of the pull request's own commits, not the first listed.
        "first_commit_at": earliest(
            *(c.get("authoredDate") or c.get("committedDate") for c in commits)
        ),
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
