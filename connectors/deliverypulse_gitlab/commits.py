"""The ``commits`` stream: the default branch's commit graph, for linking deployments to the
changes they shipped; and the commit row every stream that stores commits writes.

One walk of ``/repository/commits`` from the watermark (committed date); GitLab lists newest
first, so the watermark only moves once the walk is complete. Commits pushed straight to the
branch have no ``change_id``. The ``changes`` stream is declared after this one: it writes the
commits of each merge request again with their ``change_id``, over the rows written here.

- https://docs.gitlab.com/api/commits/#list-repository-commits
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.streams import StreamRun, Watermark
from deliverypulse_gitlab.api import JSONObject, project_path
from deliverypulse_gitlab.settings import Reading

#: How far before the watermark the walk starts (GitLab's ``since`` bound may be exclusive).
OVERLAP = timedelta(seconds=1)


def read_commits(connector: Reading, run: StreamRun) -> Iterator[Page]:
    """The commits since the watermark, skipping those the previous run stored."""
    cursor: Watermark = run.cursor
    params = {"with_stats": "true"}
    since = cursor.query_from(run.since, OVERLAP)
    if since:
        params["since"] = since
    walked: list[tuple[str, str | None]] = []
    for page in connector.api.pages(f"{project_path(run.repo)}/repository/commits", params):
        rows = []
        for commit in page:
            sha, committed = str(commit["id"]), commit.get("committed_date") or None
            walked.append((sha, committed))
            if cursor.is_new(sha, committed):
                rows.append(commit_row(commit))
        if rows:
            yield Page(rows)
    if walked:
        yield Page([], cursor=cursor.advance(walked))


def commit_row(commit: Mapping[str, Any]) -> JSONObject:
    """A ``commits`` row from GitLab's commit object (``with_stats`` gives its size)."""
    stats = commit.get("stats") or {}
    return {
        "sha": str(commit["id"]),
        "parents": list(commit.get("parent_ids") or []),
        "authored_at": commit.get("authored_date"),
        "committed_at": commit.get("committed_date"),
        "author": commit.get("author_name"),
        "subject": commit.get("title"),
        "additions": stats.get("additions"),
        "deletions": stats.get("deletions"),
    }
