"""The ``commits`` stream: the default branch's history with parents, a hundred commits per
GraphQL request, each with the pull request that brought it (for linking).

- https://docs.github.com/en/graphql/reference/objects#commit (history, parents,
  associatedPullRequests)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.streams import StreamRun, WalkCursor, latest, shift
from deliverypulse_github import queries
from deliverypulse_github.api import GitHub, login, nodes, repository_variables

#: Commits can land with an older commit date (a fast-forward merge of old work), so each
#: run looks this far behind the newest commit it has seen; the overlap is upserted.
OVERLAP_DAYS = 1


def read_commits(github: GitHub, run: StreamRun) -> Iterator[Page]:
    """The history since the watermark, less a day, in full: history is ordered by the graph,
    not by time, so it is not a newest-first walk that may stop early."""
    cursor: WalkCursor = run.cursor
    floor = cursor.floor(run.since)
    since = shift(floor, days=-OVERLAP_DAYS) if cursor.since and floor else floor
    variables = {**repository_variables(run.repo, queries.PAGE), "since": since}
    after = cursor.after
    while True:
        data = github.client.graphql(queries.COMMITS, {**variables, "after": after}, repo=run.repo)
        branch = (data.get("repository") or {}).get("defaultBranchRef")
        if branch is None:
            yield Page([], cursor.complete())  # an empty repository has no default branch
            return
        history = (branch.get("target") or {}).get("history") or {}
        commits = nodes(history)
        cursor = cursor.advance(latest(*(c.get("committedDate") for c in commits)))
        page_info = history.get("pageInfo") or {}
        after = page_info.get("endCursor")
        if not page_info.get("hasNextPage") or not after:
            yield Page([commit_record(c) for c in commits], cursor.complete())
            return
        cursor = WalkCursor(cursor.since, cursor.high, after)
        yield Page([commit_record(c) for c in commits], cursor)


def commit_record(commit: Mapping[str, Any]) -> dict[str, Any]:
    """One ``commits`` row from a GraphQL Commit node."""
    author = commit.get("author") or {}
    pull = next(iter(nodes(commit.get("associatedPullRequests"))), None)
    return {
        "sha": commit["oid"],
        "parents": [p["oid"] for p in nodes(commit.get("parents"))],
        "authored_at": commit.get("authoredDate"),
        "committed_at": commit.get("committedDate"),
        "author": login(author.get("user")) or author.get("name"),
        "change_id": str(pull["number"]) if pull else None,
        "subject": commit.get("messageHeadline"),
    }
