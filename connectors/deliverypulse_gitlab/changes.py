"""The ``changes`` stream: merged merge requests with first commit time, approvals, first
review by someone other than the author, size, labels and draft state, and the ``commits`` each
one brought (tagged with its ``change_id``; the stream runs after ``commits``, so these rows
are the ones kept). Rows carry facts (title, description as ``body``, branch, labels, author);
the core decides reverts (GitLab writes "This reverts merge request !N" or "... commit SHA"),
hotfixes and bots from them.

Requests are spent in bulk walks, not per merge request:

- the merge request list, ``state=merged`` by ``updated_after`` (one page per 100);
- every ref's commits (``all=true``, ``with_stats``) over the window the new merge requests
  span: on each target branch's first-parent line, a merge commit's second-parent side, minus
  what the line and earlier merges hold, is the merge request's commits, and a squashed merge
  request's commits are those its head ref (``refs/merge-requests/:iid/head``, which GitLab
  keeps after the merge) reaches off the line; so first commit time and commit count come from
  the graph, and the landing commit's stats give the size;
- the project events ``approved`` and ``commented`` over the same window: approvers, approval
  times and the first note by someone other than the author.

Only merge requests the graph cannot answer for (fast-forwarded: no commit of their own marks
where the branch began; or a branch reaching past the commit window; or a landing commit off
its target's first-parent line) cost one ``/merge_requests/:iid/commits`` call each.

- https://docs.gitlab.com/api/merge_requests/#list-project-merge-requests
- https://docs.gitlab.com/api/merge_requests/#get-single-merge-request-commits
- https://docs.gitlab.com/api/commits/#list-repository-commits
- https://docs.gitlab.com/api/events/#list-a-projects-visible-events
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.streams import StreamRun, UpdatedAfter, Watermark, earliest, iso, parse_time
from deliverypulse_gitlab.api import GitLabAPI, JSONObject, project_path, username
from deliverypulse_gitlab.commits import commit_row
from deliverypulse_gitlab.settings import Reading

#: How far before the oldest new merge request the commit walk starts: branch commits are
#: usually written in the days before a merge request is opened.
COMMIT_LOOKBACK = timedelta(days=14)
#: Merge requests merged this close before the previous walk's end are processed again, for
#: clock differences between ``merged_at`` and ``updated_at``.
MERGE_MARGIN = timedelta(minutes=5)
#: Changes per stored page (and cursor checkpoint).
CHUNK = 500


@dataclass
class _Review:
    """What the events say about one merge request."""

    approvals: dict[str, str] = field(default_factory=dict)  # approver -> first approval time
    notes: list[tuple[str, str]] = field(default_factory=list)  # (author, time)


@dataclass
class _History:
    """What the commit graph says about one merge request."""

    first_commit_at: str | None = None
    commit_count: int | None = None
    additions: int | None = None
    deletions: int | None = None
    commits: list[JSONObject] = field(default_factory=list)


def read_changes(connector: Reading, run: StreamRun) -> Iterator[Page]:
    """Merge requests merged and updated since the watermark, with their commits."""
    api = connector.api
    cursor: Watermark = run.cursor
    base = project_path(run.repo)
    listed, walked = _list_merged(api, base, cursor, run.since)
    if not listed:
        # Nothing new; a walk cut short earlier is complete now.
        done = walked.with_extra(merged_after=walked.updated_at)
        if walked.updated_at and done != cursor:
            yield Page([], cursor=done)
        return
    merged_after = _time(cursor.extra.get("merged_after"))
    since = run.since
    new = [
        mr
        for mr in listed
        if (merged := _time(mr.get("merged_at"))) is not None
        and (merged_after is None or merged > merged_after - MERGE_MARGIN)
        and (since is None or merged >= since)
    ]
    histories: dict[int, _History] = {}
    reviews: dict[int, _Review] = {}
    if new:
        oldest = min(parse_time(mr["created_at"]) for mr in new)
        histories = _histories(api, base, new, oldest - COMMIT_LOOKBACK)
        reviews = _reviews(api, base, iso(oldest - timedelta(days=1))[:10])
    new_ids = {mr["id"] for mr in new}
    state = cursor
    for start in range(0, len(listed), CHUNK):
        chunk = listed[start : start + CHUNK]
        records = []
        commits: list[JSONObject] = []
        for mr in chunk:
            if mr["id"] not in new_ids:
                continue
            history = histories.get(mr["iid"], _History())
            records.append(_record(mr, history, reviews.get(mr["iid"], _Review())))
            commits.extend({**commit, "change_id": str(mr["iid"])} for commit in history.commits)
        state = state.advance((str(mr["id"]), mr.get("updated_at")) for mr in chunk)
        if start + CHUNK >= len(listed):
            # The walk is complete: merge requests merged before its end are done with.
            state = state.with_extra(merged_after=state.updated_at)
        if commits:
            yield Page(commits, table="commits")
        yield Page(records, cursor=state)


def _list_merged(
    api: GitLabAPI, base: str, cursor: Watermark, since: datetime | None
) -> tuple[list[JSONObject], Watermark]:
    """The merged merge requests the previous run did not store, oldest update first, and
    the watermark past all of them."""
    fetch = api.updated_after(f"{base}/merge_requests", {"state": "merged"})
    listed: list[JSONObject] = []
    for step in UpdatedAfter().walk(fetch, cursor, since):
        listed.extend(step.items)
        cursor = step.cursor
    listed.sort(key=lambda mr: parse_time(mr.get("updated_at") or mr["created_at"]))
    return listed, cursor


def _time(value: Any) -> datetime | None:
    return parse_time(value) if isinstance(value, str) and value else None


# --- the commit graph ------------------------------------------------------------------------


def _histories(
    api: GitLabAPI, base: str, mrs: list[JSONObject], window_start: Any
) -> dict[int, _History]:
    """Each merge request's commits: from the commit graph where it answers, else from GitLab
    (``/merge_requests/:iid/commits``, one call each)."""
    graph = _commit_window(api, base, iso(window_start))
    histories: dict[int, _History] = {}
    by_target: dict[str, list[JSONObject]] = defaultdict(list)
    for mr in mrs:
        by_target[str(mr.get("target_branch") or "")].append(mr)
    for targeting in by_target.values():
        histories.update(_from_graph(graph, targeting))
    unanswered = [mr for mr in mrs if mr["iid"] not in histories]
    answers = api.each(lambda mr: _history_from_api(api, base, mr, graph), unanswered)
    for mr, history in zip(unanswered, answers, strict=True):
        histories[mr["iid"]] = history
    return histories


def _first_authored(commits: Iterable[Mapping[str, Any]]) -> str | None:
    """The earliest authored time (committed time where a commit has none) of a merge
    request's own commits, whatever order they are listed in: after a rebase the oldest work
    can sit anywhere in the branch."""
    return earliest(*(c.get("authored_date") or c.get("committed_date") for c in commits))


def _on_target(mr: Mapping[str, Any]) -> str | None:
    """The commit a merged merge request put on its target branch's first-parent line: its
    merge commit, else its squash commit (a fast-forward leaves neither)."""
    sha = mr.get("merge_commit_sha") or mr.get("squash_commit_sha")
    return str(sha) if sha else None


@dataclass
class _Graph:
    """The project's commits over a window, from every ref (``all=true``): the default and
    other target branches, and each merge request's head ref, which GitLab keeps after the
    merge, so a squashed branch's own commits are here too."""

    commits: dict[str, JSONObject]

    def first_parents(self, head: str) -> tuple[list[str], set[str]]:
        """The first-parent line from ``head``, newest first, as far as the window goes, and
        the set of its commits plus the first parent of its oldest (beyond the window but on
        the line: a branch forked from there is still wholly in the window)."""
        line: list[str] = []
        sha: str | None = head
        while sha and sha in self.commits:
            line.append(sha)
            parents = self.commits[sha].get("parent_ids") or []
            sha = str(parents[0]) if parents else None
        return line, {*line, *([sha] if sha else [])}

    def side(self, tips: Iterable[str], *stops: set[str]) -> tuple[list[JSONObject], bool]:
        """The commits reachable from ``tips`` without passing through any of ``stops``, and
        whether the walk stayed inside the window (False: it reached a commit the window
        lacks)."""
        members: list[JSONObject] = []
        complete = True
        stack = [str(t) for t in tips]
        visited: set[str] = set()
        while stack:
            sha = stack.pop()
            if sha in visited or any(sha in stop for stop in stops):
                continue
            commit = self.commits.get(sha)
            if commit is None:
                complete = False
                continue
            visited.add(sha)
            members.append(commit)
            stack.extend(str(p) for p in commit.get("parent_ids") or [])
        return members, complete


def _from_graph(graph: _Graph, mrs: list[JSONObject]) -> dict[int, _History]:
    """What the graph says about merge requests into one target branch.

    The branch's first-parent line runs back from the newest of their merge or squash
    commits. Walking it oldest first, a merge commit brought in its second-parent side minus
    the line and what earlier merges brought (``git log M^1..M^2``); a squashed merge
    request's commits are those reachable from its head (``sha``) that the line and earlier
    merges do not hold (its ``/commits`` as GitLab lists them). A merge request whose commit is
    not on the line, whose side reaches past the window, or a fast-forward (no commit of its
    own marks where its branch began) is left to GitLab.
    """
    placed = [
        (parse_time(str(mr["merged_at"])), sha)
        for mr in mrs
        if (sha := _on_target(mr)) and sha in graph.commits and mr.get("merged_at")
    ]
    if not placed:
        return {}
    line, on_line = graph.first_parents(max(placed)[1])
    merges = {str(m["merge_commit_sha"]): m for m in mrs if m.get("merge_commit_sha")}
    merges = {sha: m for sha, m in merges.items() if not m.get("squash")}
    squashes = {_on_target(m): m for m in mrs if m.get("squash") and m.get("sha")}
    histories: dict[int, _History] = {}
    claimed: set[str] = set()
    for sha in reversed(line):  # oldest first, so earlier merges claim first
        squashed = squashes.get(sha)
        if squashed is not None:
            own, complete = graph.side([str(squashed["sha"])], on_line, claimed)
            if own and complete:
                histories[squashed["iid"]] = _history_of(squashed, own, graph)
        parents = graph.commits[sha].get("parent_ids") or []
        if len(parents) < 2:
            continue
        members, complete = graph.side(parents[1:], on_line, claimed)
        claimed.update(str(c["id"]) for c in members)
        mr = merges.get(sha)
        if mr is None or not complete:
            continue  # not a merge request's, or its side reaches past the window
        merge = graph.commits[sha]
        histories[mr["iid"]] = _History(
            first_commit_at=_first_authored(members),
            commit_count=len(members),
            additions=(merge.get("stats") or {}).get("additions"),
            deletions=(merge.get("stats") or {}).get("deletions"),
            commits=[commit_row(c) for c in [*members, merge]],
        )
    return histories


def _commit_window(api: GitLabAPI, base: str, since: str) -> _Graph:
    """Every ref's commits since ``since`` (one walk, with stats). Should GitLab answer a page
    of ``all=true`` with commits it already sent (it ignored ``page``: GitLab issue 586997),
    the walk stops and the default branch is walked instead, as before ``all``: squashed merge
    requests then cost their ``/commits`` call each, and nothing is answered from a partial
    graph."""
    commits: dict[str, JSONObject] = {}
    path = f"{base}/repository/commits"
    for page in api.pages(path, {"since": since, "with_stats": "true", "all": "true"}):
        fresh = [c for c in page if str(c["id"]) not in commits]
        if page and not fresh:
            break
        commits.update((str(c["id"]), c) for c in fresh)
    else:
        return _Graph(commits)
    default_branch: dict[str, JSONObject] = {}
    for page in api.pages(path, {"since": since, "with_stats": "true"}):
        default_branch.update((str(c["id"]), c) for c in page)
    return _Graph(default_branch)


def _history_from_api(api: GitLabAPI, base: str, mr: Mapping[str, Any], graph: _Graph) -> _History:
    """One merge request's commits from GitLab, for those the graph cannot answer."""
    listed: list[JSONObject] = []
    for page in api.pages(f"{base}/merge_requests/{mr['iid']}/commits"):
        listed.extend(page)
    return _history_of(mr, listed, graph)


def _history_of(mr: Mapping[str, Any], listed: list[JSONObject], graph: _Graph) -> _History:
    """A merge request's history from its own commits (as ``/merge_requests/:iid/commits``
    lists them, or as the graph found them), with sizes and rows from the graph."""
    first = _first_authored(listed)
    landed = mr.get("squash_commit_sha") or mr.get("merge_commit_sha")
    landing = graph.commits.get(str(landed)) if landed else None
    stats = (landing or {}).get("stats") or {}
    if mr.get("squash") or mr.get("squash_commit_sha"):
        # The branch commits were squashed away; only the squash (and merge) commit is history.
        landed_shas = {str(mr.get("squash_commit_sha")), str(mr.get("merge_commit_sha"))}
        rows = [commit_row(graph.commits[s]) for s in landed_shas if s in graph.commits]
    else:
        rows = [commit_row(graph.commits.get(str(c["id"])) or c) for c in listed]
        if landing:
            rows.append(commit_row(landing))
    if not stats and not mr.get("squash"):
        known = [graph.commits[c["id"]] for c in listed if c.get("id") in graph.commits]
        if known and len(known) == len(listed):
            stats = {
                "additions": sum(int((c.get("stats") or {}).get("additions") or 0) for c in known),
                "deletions": sum(int((c.get("stats") or {}).get("deletions") or 0) for c in known),
            }
    return _History(
        first_commit_at=first,
        commit_count=len(listed),
        additions=stats.get("additions"),
        deletions=stats.get("deletions"),
        commits=rows,
    )


# --- reviews from the events ------------------------------------------------------------------


def _reviews(api: GitLabAPI, base: str, after_date: str) -> dict[int, _Review]:
    """Approvals and notes on merge requests, from two walks of the project's events."""
    reviews: dict[int, _Review] = defaultdict(_Review)
    approved = {"action": "approved", "target_type": "merge_request", "after": after_date}
    for event in _events(api, base, approved):
        iid = event.get("target_iid")
        who = username(event.get("author")) or event.get("author_username")
        if iid is None or not who:
            continue
        review = reviews[int(iid)]
        when = str(event["created_at"])
        if who not in review.approvals or parse_time(when) < parse_time(review.approvals[who]):
            review.approvals[who] = when
    commented = {"action": "commented", "target_type": "note", "after": after_date}
    for event in _events(api, base, commented):
        note = event.get("note") or {}
        if note.get("noteable_type") != "MergeRequest" or note.get("system"):
            continue
        iid = note.get("noteable_iid")
        who = username(event.get("author")) or event.get("author_username")
        if iid is None or not who:
            continue
        reviews[int(iid)].notes.append((str(who), str(event["created_at"])))
    return reviews


def _events(api: GitLabAPI, base: str, params: Mapping[str, Any]) -> Iterable[JSONObject]:
    for page in api.pages(f"{base}/events", {**params, "sort": "asc"}):
        yield from page


# --- the record -----------------------------------------------------------------------------


def _record(mr: Mapping[str, Any], history: _History, review: _Review) -> JSONObject:
    """The ``changes`` row: facts only (the core classifies reverts, hotfixes and bots from
    the title, the description as ``body``, the branch, the labels and the author)."""
    author = username(mr.get("author"))
    others_approvals = {u: t for u, t in review.approvals.items() if u != author}
    others_notes = [t for u, t in review.notes if u != author]
    first_review = min([*others_notes, *others_approvals.values()], key=parse_time, default=None)
    first_approval = min(review.approvals.values(), key=parse_time, default=None)
    draft = mr.get("draft", mr.get("work_in_progress"))
    return {
        "change_id": str(mr["iid"]),
        "number": mr["iid"],
        "title": str(mr.get("title") or ""),
        "body": str(mr.get("description") or ""),  # GitLab's revert names what it reverts here
        "author": author,
        "base_ref": mr.get("target_branch"),
        "head_ref": mr.get("source_branch"),
        "state": "draft" if draft and mr.get("state") != "merged" else mr.get("state"),
        "created_at": mr.get("created_at"),
        "ready_at": None,  # when a draft was marked ready is only in its system notes
        "first_commit_at": history.first_commit_at,
        "first_review_at": first_review,
        "first_approval_at": first_approval,
        "merged_at": mr.get("merged_at"),
        "closed_at": mr.get("closed_at"),
        "updated_at": mr.get("updated_at"),
        "merge_sha": mr.get("merge_commit_sha") or mr.get("squash_commit_sha") or mr.get("sha"),
        "additions": history.additions,
        "deletions": history.deletions,
        "changed_files": None,  # only the single merge request (changes_count) has it
        "commit_count": history.commit_count,
        "review_count": len(others_notes) + len(others_approvals),
        "approval_count": len(review.approvals),
        "approvers": sorted(review.approvals),
        "labels": [str(label) for label in mr.get("labels") or []],
        "url": mr.get("web_url"),
    }
