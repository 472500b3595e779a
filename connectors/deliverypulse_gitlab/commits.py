"""The ``commits`` stream: the default branch's commit graph, for linking deployments to the
changes they shipped.

One walk of ``/repository/commits`` from the ``since`` watermark (committed date). Commits the
changes stream tied to a merge request in this run keep their ``change_id``; the others (pushed
straight to the branch) have none. The changes stream writes merge request commits with their
``change_id`` itself, so the two agree whichever runs first.

- https://docs.gitlab.com/api/commits/#list-repository-commits
"""

from __future__ import annotations

from collections.abc import Iterator

from deliverypulse.connector import Page
from deliverypulse_gitlab.api import project_path
from deliverypulse_gitlab.changes import _commit_row
from deliverypulse_gitlab.context import StreamContext
from deliverypulse_gitlab.cursor import Watermark, iso, parse_time


def read_commits(ctx: StreamContext, repo: str, cursor: str | None) -> Iterator[Page]:
    state = Watermark.load(cursor)
    params = {"with_stats": "true"}
    since = state.query_from(ctx.since)
    if since:
        params["since"] = since
    known = ctx.handover.commit_change(repo)
    # GitLab lists newest first; the watermark may only move once the walk is complete.
    newest: list[tuple[str, str]] = []
    for page in ctx.api.pages(f"{project_path(repo)}/repository/commits", params):
        rows = []
        for commit in page:
            sha, committed = str(commit["id"]), str(commit.get("committed_date") or "")
            newest.append((sha, committed))
            if not state.is_new(sha, committed):
                continue
            row = _commit_row(commit)
            if sha in known:
                row["change_id"] = known[sha]
            rows.append(row)
        if rows:
            yield Page(rows)
    if newest:
        ordered = sorted(
            newest, key=lambda pair: parse_time(pair[1]) if pair[1] else parse_time(iso_zero())
        )
        yield Page([], cursor=state.advance(ordered).dump())


def iso_zero() -> str:
    from datetime import UTC, datetime

    return iso(datetime(1970, 1, 1, tzinfo=UTC))
