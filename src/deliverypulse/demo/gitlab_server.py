"""A fake GitLab (API v4) on 127.0.0.1: a real threaded HTTP server that speaks GitLab's shapes,
pagination headers and faults, for the GitLab connector's tests and benchmark.

Payload shapes follow GitLab's API documentation and real payloads (merge requests are copies
of a real list entry, ``data/gitlab-merge_requests.list.json.gz``, with fields overridden;
go-gitlab 0.73.1 test data, Apache-2.0). It lives in the package, not in ``tests/``, because
``deliverypulse demo`` serves its bundled organisation through it to the real GitLab connector;
the tests and ``benchmarks/bench_gitlab.py`` use it through ``tests/fake_gitlab.py``.

Offset pagination sends ``X-Page``, ``X-Per-Page``, ``X-Total``, ``X-Total-Pages``,
``X-Next-Page``, ``X-Prev-Page`` and a ``Link`` header; the endpoints where GitLab offers
keyset pagination (project jobs, group projects) answer ``pagination=keyset`` with only
``Link: <...>; rel="next"``.

Faults (:meth:`FakeGitLab.fail`): 5xx bursts, 429 with ``Retry-After`` and/or
``RateLimit-Reset``, a dropped connection, a truncated JSON body, a body shorter than its
``Content-Length``, 401/403/404. ``latency`` delays every answer; ``log`` records every request.
"""

from __future__ import annotations

import base64
import bisect
import copy
import functools
import gzip
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlencode

from deliverypulse.demo.fakeserver import FakeServer, JSONHandler, split_request

#: Real GitLab payloads, gzipped package data (licence: data/NOTICE).
DATA = resources.files("deliverypulse.demo") / "data"

JSON = dict[str, Any]
T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)  # a Monday


def ts(value: datetime) -> str:
    """GitLab's timestamp format: milliseconds and Z."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def parse_ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def user(name: str, user_id: int | None = None) -> JSON:
    return {
        "id": user_id if user_id is not None else abs(hash(name)) % 100_000,
        "username": name,
        "name": name.replace(".", " ").title(),
        "state": "active",
        "avatar_url": None,
        "web_url": f"https://gitlab.example.com/{name}",
    }


def bundled_text(name: str) -> str:
    """The text of a gzipped GitLab data file shipped with the package."""
    return gzip.decompress((DATA / f"gitlab-{name}.gz").read_bytes()).decode("utf-8")


@functools.cache
def _mr_entries() -> str:
    return bundled_text("merge_requests.list.json")


def _mr_template() -> JSON:
    entries = json.loads(_mr_entries())
    template: JSON = entries[0]
    return template


@dataclass
class FakeProject:
    """One project's data, in GitLab's list shapes. Lists are kept in creation order.

    A deployment is served as it is (keys starting with ``_`` left out): a pipeline job's has
    its ``deployable`` (the job, with its ``pipeline``); one created through the Deployments
    API without a job has ``"deployable": None`` and the token's owner as ``user``.
    """

    id: int
    path: str
    default_branch: str = "main"
    commits: list[JSON] = field(default_factory=list)  # newest first, like git log
    merge_requests: list[JSON] = field(default_factory=list)
    mr_commits: dict[int, list[JSON]] = field(default_factory=dict)
    notes: dict[int, list[JSON]] = field(default_factory=dict)
    events: list[JSON] = field(default_factory=list)
    environments: list[JSON] = field(default_factory=list)
    protected_environments: list[JSON] | None = field(default_factory=list)
    deployments: list[JSON] = field(default_factory=list)
    deployment_mrs: dict[int, list[JSON]] = field(default_factory=dict)
    pipelines: list[JSON] = field(default_factory=list)
    jobs: list[JSON] = field(default_factory=list)
    test_summaries: dict[int, JSON] = field(default_factory=dict)
    issues: list[JSON] = field(default_factory=list)
    approvals_in_list: bool = True

    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per key: a filtered, sorted list for a query, an index by id.
        Keys carry the sizes of the lists they depend on, so appending data (as the tests do)
        gets a fresh answer."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def changed(self) -> None:
        """Forget memoised lists and indexes after editing objects in place."""
        self._memo.clear()

    def sizes(self) -> tuple[int, ...]:
        return (
            len(self.merge_requests),
            len(self.events),
            len(self.deployments),
            len(self.pipelines),
            len(self.jobs),
            len(self.issues),
            len(self.commits),
        )

    def by_id(self, name: str, key: str = "id") -> dict[Any, JSON]:
        items: list[JSON] = getattr(self, name)
        index: dict[Any, JSON] = self.memo(
            ("by", name, key, len(items)), lambda: {i[key]: i for i in items}
        )
        return index

    @property
    def web_url(self) -> str:
        return f"https://gitlab.example.com/{self.path}"

    def summary(self) -> JSON:
        return {
            "id": self.id,
            "name": self.path.rsplit("/", 1)[-1],
            "path": self.path.rsplit("/", 1)[-1],
            "path_with_namespace": self.path,
            "default_branch": self.default_branch,
            "web_url": self.web_url,
            "archived": False,
        }


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path matches ``pattern`` with ``kind``."""

    pattern: str
    kind: str
    times: int = 1
    retry_after: str | None = None
    reset_in: float | None = None


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]


class FakeGitLab(FakeServer):
    """The server. Use as a context manager; ``url`` is its base (``http://127.0.0.1:port``)."""

    def __init__(
        self, *, latency: float = 0.0, token: str | None = None, link_headers: bool = True
    ) -> None:
        self.latency = latency
        self.token = token
        #: False: offset pages carry only X-Next-Page & co., no Link header.
        self.link_headers = link_headers
        #: True: ``repository/commits?all=true`` ignores ``page`` (GitLab issue 586997).
        self.all_commits_ignore_page = False
        self.in_flight = 0
        self.max_in_flight = 0
        self.projects: dict[str, FakeProject] = {}
        self.groups: dict[str, list[str]] = {}
        self._init_server(_make_handler)
        self._request_ids = iter(range(1, 10**9))

    # --- data and faults -----------------------------------------------------------------

    def add_project(self, project: FakeProject, group: str | None = None) -> FakeProject:
        self.projects[project.path] = project
        return project

    def fail(
        self,
        pattern: str,
        kind: str,
        times: int = 1,
        *,
        retry_after: str | None = None,
        reset_in: float | None = None,
    ) -> None:
        with self._lock:
            self.faults.append(Fault(pattern, kind, times, retry_after, reset_in))

    def next_request_id(self) -> str:
        with self._lock:
            return f"req-{next(self._request_ids):06d}"


# --- HTTP handling ---------------------------------------------------------------------------


class _Answer(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def _make_handler(fake: FakeGitLab) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        wbufsize = 1 << 16  # headers and body leave in one write

        def do_GET(self) -> None:
            raw_path, query = split_request(self.path)
            with fake._lock:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                self._answer(raw_path, query)
            finally:
                with fake._lock:
                    fake.in_flight -= 1

        def _answer(self, raw_path: str, query: dict[str, str]) -> None:
            if fake.latency:
                time.sleep(fake.latency)
            status, body = 200, None
            headers: dict[str, str] = {}
            fault = fake._take_fault(unquote(raw_path))
            try:
                if fault is not None and self._apply_fault(fault, raw_path, query):
                    return
                if fake.token is not None and self.headers.get("PRIVATE-TOKEN") != fake.token:
                    raise _Answer(401, {"message": "401 Unauthorized"})
                body, headers = _route(fake, raw_path, query, self._base())
                if not fake.link_headers and "X-Page" in headers:
                    headers.pop("Link", None)
            except _Answer as answer:
                status, body, headers = answer.status, answer.body, answer.headers
            self._send(status, body, headers, raw_path, query)

        def _base(self) -> str:
            return f"http://{self.headers.get('Host')}"

        def _apply_fault(self, fault: Fault, path: str, query: dict[str, str]) -> bool:
            """Carry out a fault; True if the answer has been given (or withheld)."""
            kind = fault.kind
            if kind == "drop":
                fake._record(LoggedRequest("GET", unquote(path), query, 0, {}))
                self.drop()
                return True
            if kind in ("truncate", "short"):
                body, headers = _route(fake, path, query, self._base())
                fake._record(LoggedRequest("GET", unquote(path), query, 200, {}))
                self.send_truncated(200, body, declare_full=kind == "short")
                return True
            if kind == "429":
                # GitLab's throttle answer: the budget is spent until RateLimit-Reset (epoch
                # seconds); Retry-After says the same as a delay.
                wait = (
                    fault.reset_in if fault.reset_in is not None else float(fault.retry_after or 60)
                )
                headers = {
                    "RateLimit-Limit": "2000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(int(time.time() + wait)),
                }
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
                raise _Answer(429, {"message": "Retry later"}, headers)
            status = int(kind)
            messages = {401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Project Not Found"}
            raise _Answer(status, {"message": messages.get(status, f"{status} error")})

        def _send(
            self, status: int, body: Any, headers: dict[str, str], path: str, query: dict[str, str]
        ) -> None:
            request_id = fake.next_request_id()
            fake._record(LoggedRequest("GET", unquote(path), query, status, dict(headers)))
            own = [("X-Request-Id", request_id), ("RateLimit-Limit", "2000")]
            if "RateLimit-Remaining" not in headers:
                own.append(("RateLimit-Remaining", "1999"))
                own.append(("RateLimit-Reset", str(int(time.time()) + 60)))
            self.send_json(status, json.dumps(body).encode(), [*own, *headers.items()])

    return Handler


# --- routes ----------------------------------------------------------------------------------


def _route(
    fake: FakeGitLab, raw_path: str, query: dict[str, str], base: str
) -> tuple[Any, dict[str, str]]:
    if not raw_path.startswith("/api/v4/"):
        raise _Answer(404, {"message": "404 Not Found"})
    parts = raw_path[len("/api/v4/") :].strip("/").split("/")
    url = f"{base}{raw_path}"
    if parts[0] == "groups" and len(parts) == 3 and parts[2] == "projects":
        return _group_projects(fake, unquote(parts[1]), query, url)
    if parts[0] != "projects" or len(parts) < 2:
        raise _Answer(404, {"message": "404 Not Found"})
    project = _project(fake, unquote(parts[1]))
    rest = parts[2:]
    if not rest:
        return project.summary(), {}
    resource = rest[0]
    handler = _ROUTES.get((resource, len(rest)))
    if handler is None and resource == "repository" and rest[1:] == ["commits"]:
        handler = _commits
    if handler is None:
        raise _Answer(404, {"message": "404 Not Found"})
    if len(rest) == 1 or resource == "repository":
        # A list: filter and sort once per query (its pages differ only in page or cursor).
        listing = {k: v for k, v in query.items() if k not in ("page", "cursor", "per_page")}
        key = ("list", tuple(rest), tuple(sorted(listing.items())), project.sizes())
        everything = {**listing, "per_page": str(ALL)}
        full: list[JSON] = project.memo(key, lambda: handler(project, rest, everything, url)[0])
        if resource == "repository" and query.get("all") == "true":
            return _all_commits_page(fake, full, query, url)
        return _paginate(full, query, url, **_KEYSET.get(resource, {}))
    return handler(project, rest, query, url)


def _project(fake: FakeGitLab, key: str) -> FakeProject:
    if key in fake.projects:
        return fake.projects[key]
    for project in fake.projects.values():
        if str(project.id) == key:
            return project
    raise _Answer(404, {"message": "404 Project Not Found"})


def _group_projects(
    fake: FakeGitLab, group: str, query: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    if group not in fake.groups:
        raise _Answer(404, {"message": "404 Group Not Found"})
    subgroups = query.get("include_subgroups") == "true"
    paths = [
        p
        for p in fake.projects
        if p.rsplit("/", 1)[0] == group or (subgroups and p.startswith(group + "/"))
    ]
    items = sorted((fake.projects[p].summary() for p in paths), key=lambda p: p["id"])
    return _paginate(items, query, url, keyset_key="id")


def _times(items: list[JSON], key: str, query: dict[str, str]) -> list[JSON]:
    if "updated_after" in query:
        after = parse_ts(query["updated_after"])
        items = [i for i in items if parse_ts(i[key]) > after]
    if "updated_before" in query:
        before = parse_ts(query["updated_before"])
        items = [i for i in items if parse_ts(i[key]) < before]
    return items


def _ordered(items: list[JSON], query: dict[str, str], default: str = "id") -> list[JSON]:
    order_by = query.get("order_by", default)
    reverse = query.get("sort", "desc" if default == "created_at" else "asc") == "desc"
    if order_by in ("updated_at", "created_at"):
        return sorted(items, key=lambda i: (parse_ts(i[order_by]), i["id"]), reverse=reverse)
    return sorted(items, key=lambda i: i[order_by], reverse=reverse)


def _merge_requests(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    items = p.merge_requests
    if q.get("state", "all") != "all":
        items = [m for m in items if m["state"] == q["state"]]
    items = _times(items, "updated_at", q)
    return _paginate(_ordered(items, q, "created_at"), q, url)


def _merge_request_sub(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    iid = int(rest[1])
    mr = p.by_id("merge_requests", "iid").get(iid)
    if mr is None:
        raise _Answer(404, {"message": "404 Not found"})
    if len(rest) == 2:
        return {**mr, "changes_count": str(mr.get("_changes", 1))}, {}
    what = rest[2]
    if what == "commits":
        return _paginate(p.mr_commits.get(iid, []), q, url)
    if what == "notes":
        return _paginate(p.notes.get(iid, []), q, url)
    if what == "approvals":
        approvals = p.memo(("approvals", len(p.events)), lambda: _approvals_by_iid(p))
        approvers = approvals.get(iid, [])
        return {
            "id": mr["id"],
            "iid": iid,
            "approved": bool(approvers),
            "approvals_required": 1,
            "approvals_left": 0 if approvers else 1,
            "approved_by": [{"user": a} for a in approvers],
        }, {}
    raise _Answer(404, {"message": "404 Not found"})


def _commits(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    items = p.commits
    if q.get("all") == "true":
        items = _every_ref_commits(p)
    if "since" in q:
        since = parse_ts(q["since"])
        items = [c for c in items if parse_ts(c["committed_date"]) >= since]
    if "until" in q:
        until = parse_ts(q["until"])
        items = [c for c in items if parse_ts(c["committed_date"]) <= until]
    if q.get("with_stats") != "true":
        items = [{k: v for k, v in c.items() if k != "stats"} for c in items]
    return _paginate(items, q, url)


def _every_ref_commits(p: FakeProject) -> list[JSON]:
    """``git log --all``: the default branch and every merge request's head ref
    (``refs/merge-requests/:iid/head``, which GitLab keeps after a merge, so a squashed
    branch's commits stay listed), newest commit first."""
    seen: dict[str, JSON] = {c["id"]: c for c in p.commits}
    for branch in p.mr_commits.values():
        for commit in branch:
            seen.setdefault(commit["id"], commit)
    return sorted(seen.values(), key=lambda c: parse_ts(c["committed_date"]), reverse=True)


def _all_commits_page(
    fake: FakeGitLab, items: list[JSON], query: dict[str, str], url: str
) -> tuple[list[JSON], dict[str, str]]:
    """A page of ``all=true``: Gitaly runs ``git log --all --reverse`` with ``--skip`` and
    ``--max-count``, and git reverses after limiting, so pages go newest to oldest while each
    page lists its commits oldest first. ``fake.all_commits_ignore_page`` reproduces GitLab
    issue 586997 (every ``page`` answered with the first one)."""
    if fake.all_commits_ignore_page:
        query = {k: v for k, v in query.items() if k != "page"}
    body, headers = _paginate(items, query, url)
    return list(reversed(body)), headers


_EVENT_TARGETS = {
    "merge_request": ("MergeRequest",),
    "note": ("Note", "DiffNote", "DiscussionNote"),
    "issue": ("Issue",),
}


def _events(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    items = p.events
    if "action" in q:
        items = [e for e in items if e["action_name"].split(" ")[0] == q["action"]]
    if "target_type" in q:
        targets = _EVENT_TARGETS.get(q["target_type"], ())
        items = [e for e in items if e["target_type"] in targets]
    if "after" in q:  # a date; events created after that day
        after = datetime.combine(
            date.fromisoformat(q["after"]) + timedelta(days=1), datetime.min.time(), UTC
        )
        items = [e for e in items if parse_ts(e["created_at"]) >= after]
    if "before" in q:
        before = datetime.combine(date.fromisoformat(q["before"]), datetime.min.time(), UTC)
        items = [e for e in items if parse_ts(e["created_at"]) < before]
    reverse = q.get("sort", "desc") == "desc"
    items = sorted(items, key=lambda e: (parse_ts(e["created_at"]), e["id"]), reverse=reverse)
    return _paginate(items, q, url)


def _environments(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    return _paginate(p.environments, q, url)


def _protected(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    if p.protected_environments is None:
        raise _Answer(403, {"message": "403 Forbidden"})
    return _paginate(p.protected_environments, q, url)


def _deployment_list_shape(p: FakeProject, d: JSON) -> JSON:
    shown = {k: v for k, v in d.items() if not k.startswith("_")}
    if not p.approvals_in_list:
        shown.pop("approvals", None)
    return shown


def _deployments(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    if len(rest) == 1:
        items = p.deployments
        if "environment" in q:
            items = [d for d in items if d["environment"]["name"] == q["environment"]]
        if "status" in q:
            items = [d for d in items if d["status"] == q["status"]]
        if ("updated_after" in q or "updated_before" in q) and q.get("order_by") != "updated_at":
            raise _Answer(400, {"message": "400 Bad request - order_by must be updated_at"})
        items = _times(items, "updated_at", q)
        body, headers = _paginate(_ordered(items, q), q, url)
        return [_deployment_list_shape(p, d) for d in body], headers
    deployment_id = int(rest[1])
    deployment = p.by_id("deployments").get(deployment_id)
    if deployment is None:
        raise _Answer(404, {"message": "404 Not found"})
    if len(rest) == 2:
        return {k: v for k, v in deployment.items() if not k.startswith("_")}, {}
    if rest[2] == "merge_requests":
        return _paginate(p.deployment_mrs.get(deployment_id, []), q, url)
    raise _Answer(404, {"message": "404 Not found"})


def _pipelines(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    if len(rest) == 1:
        items = _times(p.pipelines, "updated_at", q)
        shown = [
            {k: v for k, v in i.items() if not k.startswith("_")} for i in _ordered(items, q, "id")
        ]
        if "sort" not in q and q.get("order_by", "id") == "id":
            shown.reverse()  # GitLab's default: newest first
        return _paginate(shown, q, url)
    pipeline_id = int(rest[1])
    pipeline = p.by_id("pipelines").get(pipeline_id)
    if pipeline is None:
        raise _Answer(404, {"message": "404 Not found"})
    if len(rest) == 2:
        detail = {k: v for k, v in pipeline.items() if not k.startswith("_")}
        return {**detail, **pipeline.get("_detail", {})}, {}
    if rest[2] == "test_report_summary":
        return p.test_summaries.get(pipeline_id, _EMPTY_SUMMARY), {}
    if rest[2] == "jobs":
        jobs = p.memo(("jobs_by_pipeline", len(p.jobs)), lambda: _jobs_by_pipeline(p))
        return _paginate(jobs.get(pipeline_id, []), q, url)
    raise _Answer(404, {"message": "404 Not found"})


def _approvals_by_iid(p: FakeProject) -> dict[int, list[JSON]]:
    found: dict[int, list[JSON]] = {}
    for event in p.events:
        if event["action_name"] == "approved":
            found.setdefault(event["target_iid"], []).append(event["author"])
    return found


def _jobs_by_pipeline(p: FakeProject) -> dict[int, list[JSON]]:
    found: dict[int, list[JSON]] = {}
    for job in p.jobs:
        found.setdefault(job["pipeline"]["id"], []).append(job)
    return found


_EMPTY_SUMMARY = {
    "total": {
        "time": 0,
        "count": 0,
        "success": 0,
        "failed": 0,
        "skipped": 0,
        "error": 0,
        "suite_error": None,
    },
    "test_suites": [],
}


def _jobs(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    items = sorted(p.jobs, key=lambda j: j["id"], reverse=True)  # newest first, as GitLab lists
    return _paginate(items, {k: v for k, v in q.items() if k != "pagination"}, url)


#: The project lists where GitLab offers keyset pagination, and their order.
_KEYSET: dict[str, dict[str, Any]] = {"jobs": {"keyset_key": "id", "keyset_descending": True}}
#: ``per_page`` the routes use internally to get a whole filtered list.
ALL = 10**9


def _issues(
    p: FakeProject, rest: list[str], q: dict[str, str], url: str
) -> tuple[Any, dict[str, str]]:
    items = p.issues
    if "issue_type" in q:
        items = [i for i in items if i["issue_type"] == q["issue_type"]]
    if "labels" in q:
        wanted = set(q["labels"].split(","))
        items = [i for i in items if wanted <= set(i["labels"])]
    if q.get("state", "all") != "all":
        items = [i for i in items if i["state"] == q["state"]]
    items = _times(items, "updated_at", q)
    return _paginate(_ordered(items, q, "created_at"), q, url)


_ROUTES: dict[
    tuple[str, int],
    Callable[[FakeProject, list[str], dict[str, str], str], tuple[Any, dict[str, str]]],
] = {
    ("merge_requests", 1): _merge_requests,
    ("merge_requests", 2): _merge_request_sub,
    ("merge_requests", 3): _merge_request_sub,
    ("events", 1): _events,
    ("environments", 1): _environments,
    ("protected_environments", 1): _protected,
    ("deployments", 1): _deployments,
    ("deployments", 2): _deployments,
    ("deployments", 3): _deployments,
    ("pipelines", 1): _pipelines,
    ("pipelines", 2): _pipelines,
    ("pipelines", 3): _pipelines,
    ("jobs", 1): _jobs,
    ("issues", 1): _issues,
}


def _paginate(
    items: list[JSON],
    query: dict[str, str],
    url: str,
    *,
    keyset_key: str | None = None,
    keyset_descending: bool = False,
) -> tuple[list[JSON], dict[str, str]]:
    per_page = max(1, int(query.get("per_page", 20)))
    per_page = per_page if per_page == ALL else min(100, per_page)
    if keyset_key and query.get("pagination") == "keyset":
        return _keyset(items, query, url, per_page, keyset_key, keyset_descending)
    page = max(1, int(query.get("page", 1)))
    total = len(items)
    pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    base = {k: v for k, v in query.items() if k != "page"}

    def link(number: int) -> str:
        return f"{url}?{urlencode({**base, 'page': number})}"

    links = [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "X-Next-Page": str(page + 1) if page < pages else "",
        "X-Prev-Page": str(page - 1) if page > 1 else "",
    }
    if page < pages:
        links.insert(0, f'<{link(page + 1)}>; rel="next"')
    if page > 1:
        links.insert(0, f'<{link(page - 1)}>; rel="prev"')
    headers["Link"] = ", ".join(links)
    return chunk, headers


def _keyset(
    items: list[JSON],
    query: dict[str, str],
    url: str,
    per_page: int,
    key: str,
    descending: bool,
) -> tuple[list[JSON], dict[str, str]]:
    if "cursor" in query:
        last = json.loads(base64.urlsafe_b64decode(query["cursor"]))["last"]
        items = [i for i in items if (i[key] < last if descending else i[key] > last)]
    chunk = items[:per_page]
    headers: dict[str, str] = {}
    if len(items) > per_page:
        cursor = base64.urlsafe_b64encode(json.dumps({"last": chunk[-1][key]}).encode()).decode()
        base = {k: v for k, v in query.items() if k not in ("cursor", "page")}
        headers["Link"] = f'<{url}?{urlencode({**base, "cursor": cursor})}>; rel="next"'
    return chunk, headers


# --- synthetic data --------------------------------------------------------------------------


@dataclass
class Scenario:
    """Knobs of :func:`synthetic_project`."""

    merge_requests: int = 30
    deployments: int = 8
    pipelines: int = 40
    incidents: int = 3
    jobs_per_pipeline: int = 3
    start: datetime = T0
    mr_spacing: timedelta = timedelta(hours=6)
    #: Every ``rebased_every``-th merge request with three commits (none at 0) was rebased
    #: with its oldest commit moved to the middle of the branch: GitLab lists its commits newest
    #: first, so neither end of the list is the earliest authored; the rebase rewrote their
    #: commit times.
    rebased_every: int = 0
    #: Every ``api_deployments_every``-th production deployment (none at 0) was created
    #: through the Deployments API by a person's script, not by a pipeline job: GitLab shows
    #: it with ``"deployable": None`` and that person as its ``user``.
    api_deployments_every: int = 0
    #: Who created the API deployments (their token's user).
    api_deployer: str = "ops.engineer"


def _sha(*parts: Any) -> str:
    import hashlib

    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class _Builder:
    def __init__(self, project: FakeProject, scenario: Scenario) -> None:
        self.p = project
        self.s = scenario
        self.head: str | None = None
        self.commit_by_sha: dict[str, JSON] = {}
        self.event_ids = iter(range(1, 10**9))
        self.template = _mr_template()
        self.head_after: dict[int, str] = {}  # merge request iid -> default branch head after it
        self.through: dict[str, int] = {}  # head sha -> last merge request iid it contains

    def commit(
        self, sha: str, parents: list[str], when: datetime, author: str, title: str, *, main: bool
    ) -> JSON:
        commit = {
            "id": sha,
            "short_id": sha[:8],
            "title": title,
            "message": title + "\n",
            "author_name": author,
            "author_email": f"{author}@example.com",
            "authored_date": ts(when),
            "committer_name": author,
            "committer_email": f"{author}@example.com",
            "committed_date": ts(when),
            "created_at": ts(when),
            "parent_ids": parents,
            "web_url": f"{self.p.web_url}/-/commit/{sha}",
            "stats": {"additions": 10, "deletions": 2, "total": 12},
        }
        self.commit_by_sha[sha] = commit
        if main:
            self.p.commits.insert(0, commit)
        return commit

    def event(self, action: str, when: datetime, author: str, **fields: Any) -> None:
        event_id = next(self.event_ids)
        self.p.events.append(
            {
                "id": event_id,
                "project_id": self.p.id,
                "action_name": action,
                "created_at": ts(when),
                "author": user(author),
                "author_id": user(author)["id"],
                "author_username": author,
                **fields,
            }
        )

    def build(self) -> None:
        s = self.s
        root = self.commit(
            _sha(self.p.path, "root"),
            [],
            s.start - timedelta(days=30),
            "founder",
            "Initial commit",
            main=True,
        )
        self.head = root["id"]
        authors = ["alice", "bob", "carol", "dave"]
        merged: list[JSON] = []
        for index in range(s.merge_requests):
            merged.append(
                self.merge_request(
                    index, authors[index % len(authors)], authors[(index + 1) % len(authors)]
                )
            )
            if index % 10 == 4:  # a push straight to the default branch
                when = parse_ts(merged[-1]["merged_at"]) + timedelta(minutes=20)
                pushed = self.commit(
                    _sha(self.p.path, "push", index),
                    [self.head],
                    when,
                    "erin",
                    f"Trunk fix {index}",
                    main=True,
                )
                self.head = pushed["id"]
                self.through[self.head] = index + 1
        # GitLab lists the default branch's commits newest first (git log order).
        self.p.commits.sort(key=lambda c: parse_ts(c["committed_date"]), reverse=True)
        self.deployments_and_pipelines(merged)
        self.incidents()

    def merge_request(self, index: int, author: str, reviewer: str) -> JSON:
        s = self.s
        iid = index + 1
        created = s.start + index * s.mr_spacing
        merged_at = created + timedelta(hours=2)
        kind = "squash" if index % 10 == 7 else "ff" if index % 25 == 3 else "merge"
        fork = self.head
        assert fork is not None
        branch: list[JSON] = []
        parent = fork
        for n in range(1 + index % 3):
            when = created - timedelta(hours=3) + timedelta(minutes=30 * n)
            on_main = kind != "squash"  # a squashed branch's commits never reach the branch
            c = self.commit(
                _sha(self.p.path, "mr", iid, n),
                [parent],
                when,
                author,
                f"Work {iid}.{n}",
                main=on_main,
            )
            if kind == "ff":  # rebased onto the head and fast-forwarded: committed at merge
                c["committed_date"] = ts(merged_at - timedelta(minutes=1))
            branch.append(c)
            parent = c["id"]
        if s.rebased_every and len(branch) == 3 and (index // 3) % s.rebased_every == 0:
            # An interactive rebase moved the oldest commit after the next: the middle commit is
            # now the earliest authored, and every commit carries the rebase's commit time.
            first, second = branch[0]["authored_date"], branch[1]["authored_date"]
            branch[0]["authored_date"], branch[1]["authored_date"] = second, first
            for c in branch:
                if kind != "ff":
                    c["committed_date"] = c["created_at"] = ts(created - timedelta(minutes=10))
        merge_sha = squash_sha = None
        if kind in ("merge", "squash"):
            # The commit that lands on main: a merge commit, or the squashed one.
            parents, message = (
                ([fork, parent], f"Merge branch 'feature-{iid}' into 'main'")
                if kind == "merge"
                else ([fork], f"Feature {iid}")
            )
            landed = self.commit(
                _sha(self.p.path, kind, iid), parents, merged_at, author, message, main=True
            )
            landed["stats"] = {
                "additions": 10 * len(branch),
                "deletions": 2 * len(branch),
                "total": 12 * len(branch),
            }
            self.head = landed["id"]
            if kind == "merge":
                merge_sha = self.head
            else:
                squash_sha = self.head
        else:
            self.head = parent
        title = f"Feature {iid}"
        description = "Adds a feature."
        labels = ["feature"]
        branch_name = f"feature-{iid}"
        if index % 17 == 16:
            title, description = (
                f'Revert "Feature {iid - 1}"',
                f"This reverts merge request !{iid - 1}",
            )
        if index % 13 == 12:
            branch_name, labels = f"hotfix-{iid}", ["hotfix"]
        mr = copy.deepcopy(self.template)
        mr.update(
            {
                "id": 10_000 + self.p.id * 100_000 + iid,
                "iid": iid,
                "project_id": self.p.id,
                "title": title,
                "description": description,
                "state": "merged",
                "created_at": ts(created),
                "updated_at": ts(merged_at + timedelta(seconds=5)),
                "merged_at": ts(merged_at),
                "closed_at": None,
                "merge_commit_sha": merge_sha,
                "squash_commit_sha": squash_sha,
                "squash": kind == "squash",
                "sha": branch[-1]["id"],
                "source_branch": branch_name,
                "target_branch": "main",
                "author": user(author),
                "merged_by": user(reviewer),
                "labels": labels,
                "draft": False,
                "work_in_progress": False,
                "user_notes_count": 2,
                "web_url": f"{self.p.web_url}/-/merge_requests/{iid}",
                "reference": f"!{iid}",
            }
        )
        self.p.merge_requests.append(mr)
        self.p.mr_commits[iid] = list(reversed(branch))
        # The review: the author notes first, the reviewer comments, then approves.
        notes = []
        for n, (who, minutes) in enumerate([(author, 5), (reviewer, 40), (reviewer, 70)]):
            when = created + timedelta(minutes=minutes)
            note = {
                "id": iid * 10 + n,
                "body": "Looks good" if who == reviewer else "Ready for review",
                "author": user(who),
                "created_at": ts(when),
                "updated_at": ts(when),
                "system": False,
                "noteable_id": mr["id"],
                "noteable_type": "MergeRequest",
                "noteable_iid": iid,
            }
            notes.append(note)
            self.event(
                "commented on",
                when,
                who,
                target_id=note["id"],
                target_iid=note["id"],
                target_type="DiffNote" if n == 2 else "Note",
                target_title=title,
                note=note,
            )
        self.p.notes[iid] = notes
        self.event(
            "approved",
            created + timedelta(minutes=90),
            reviewer,
            target_id=mr["id"],
            target_iid=iid,
            target_type="MergeRequest",
            target_title=title,
        )
        if index % 4 == 0:
            self.event(
                "approved",
                created + timedelta(minutes=100),
                "erin",
                target_id=mr["id"],
                target_iid=iid,
                target_type="MergeRequest",
                target_title=title,
            )
        self.event(
            "merged",
            merged_at,
            reviewer,
            target_id=mr["id"],
            target_iid=iid,
            target_type="MergeRequest",
            target_title=title,
        )
        self.head_after[iid] = self.head
        self.through[self.head] = iid
        return mr

    def deployments_and_pipelines(self, merged: list[JSON]) -> None:
        s, p = self.s, self.p
        p.environments = [
            {
                "id": 1,
                "name": "production",
                "slug": "production",
                "external_url": "https://app.example.com",
                "state": "available",
                "tier": "production",
            },
            {
                "id": 2,
                "name": "staging",
                "slug": "staging",
                "external_url": None,
                "state": "available",
                "tier": "staging",
            },
            {
                "id": 3,
                "name": "live-eu",
                "slug": "live-eu",
                "external_url": None,
                "state": "available",
                "tier": "production",
            },
        ]
        p.protected_environments = [
            {
                "name": "production",
                "deploy_access_levels": [{"access_level": 40}],
                "required_approval_count": 0,
                "approval_rules": [
                    {
                        "id": 1,
                        "user_id": None,
                        "group_id": 9,
                        "access_level": None,
                        "required_approvals": 1,
                    }
                ],
            },
        ]
        # Pipelines spread over the merge timeline; production deployments pick up the latest.
        span_end = parse_ts(merged[-1]["merged_at"]) + timedelta(hours=1) if merged else s.start
        span = span_end - s.start
        job_id = 1
        for n in range(s.pipelines):
            created = s.start + span * (n / max(1, s.pipelines))
            head = self._head_at(merged, created)
            started = created + timedelta(seconds=30)
            finished = started + timedelta(minutes=10)
            status = "failed" if n % 9 == 8 else "success"
            pipeline: JSON = {
                "id": 500 + n,
                "iid": n + 1,
                "project_id": p.id,
                "sha": head,
                "ref": "main",
                "status": status,
                "source": "push" if n % 3 else "merge_request_event",
                "created_at": ts(created),
                "updated_at": ts(finished + timedelta(seconds=2)),
                "web_url": f"{p.web_url}/-/pipelines/{500 + n}",
                "name": None,
                "_detail": {
                    "started_at": ts(started),
                    "finished_at": ts(finished),
                    "duration": 600,
                    "queued_duration": 30,
                    "coverage": None,
                },
            }
            p.pipelines.append(pipeline)
            for k in range(s.jobs_per_pipeline):
                job_start = started + timedelta(minutes=3 * k)
                job_end = (
                    started + timedelta(minutes=10)
                    if k == s.jobs_per_pipeline - 1
                    else job_start + timedelta(minutes=3)
                )
                p.jobs.append(
                    {
                        "id": job_id,
                        "name": ["build", "test", "package", "lint"][k % 4],
                        "stage": ["build", "test", "deploy", "test"][k % 4],
                        "status": status if k == s.jobs_per_pipeline - 1 else "success",
                        "ref": "main",
                        "created_at": ts(created),
                        "started_at": ts(job_start),
                        "finished_at": ts(job_end),
                        "duration": (job_end - job_start).total_seconds(),
                        "queued_duration": 1.0,
                        "pipeline": {
                            k2: pipeline[k2]
                            for k2 in (
                                "id",
                                "iid",
                                "project_id",
                                "sha",
                                "ref",
                                "status",
                                "source",
                                "created_at",
                                "updated_at",
                                "web_url",
                            )
                        },
                        "web_url": f"{p.web_url}/-/jobs/{job_id}",
                    }
                )
                job_id += 1
            total = 20 + n % 5
            failed = 1 if status == "failed" else 0
            p.test_summaries[500 + n] = {
                "total": {
                    "time": 12.5,
                    "count": total,
                    "success": total - failed - 1,
                    "failed": failed,
                    "skipped": 1,
                    "error": 0,
                    "suite_error": None,
                },
                "test_suites": [
                    {
                        "name": "unit",
                        "total_time": 12.5,
                        "total_count": total,
                        "success_count": total - failed - 1,
                        "failed_count": failed,
                        "skipped_count": 1,
                        "error_count": 0,
                        "build_ids": [job_id - 1],
                        "suite_error": None,
                    }
                ],
            }
        shipped_through = 0
        deployment_id = 900
        pipeline_times = [parse_ts(q["created_at"]) for q in p.pipelines]
        for n in range(s.deployments):
            created = s.start + span * ((n + 1) / (s.deployments + 1))
            created_before = bisect.bisect_right(pipeline_times, created)
            last: list[JSON] = p.pipelines[:created_before][-1:]
            deployed: JSON | None = last[0] if last else None
            sha = deployed["sha"] if deployed else self.head
            status = "failed" if n % 7 == 6 else "success"
            blocked = n == s.deployments - 1 and s.deployments > 2
            if blocked:
                status = "blocked"
            finished = created + timedelta(minutes=20)
            deployment_id += 1
            approvals = (
                []
                if blocked
                else [
                    {
                        "user": user("release.manager"),
                        "status": "approved",
                        "created_at": ts(created + timedelta(minutes=10)),
                        "comment": "ship it",
                    }
                ]
            )
            deployment = {
                "id": deployment_id,
                "iid": n + 1,
                "ref": "main",
                "sha": sha,
                "created_at": ts(created),
                "updated_at": ts(finished if not blocked else created + timedelta(seconds=1)),
                "finished_at": ts(finished) if not blocked else None,
                "status": status,
                "user": user("deployer"),
                "environment": {
                    "id": 1,
                    "name": "production",
                    "external_url": "https://app.example.com",
                },
                "deployable": {
                    "id": 70_000 + n,
                    "name": "deploy",
                    "stage": "deploy",
                    "status": status if not blocked else "manual",
                    "ref": "main",
                    "tag": False,
                    "created_at": ts(created),
                    "started_at": ts(created + timedelta(minutes=11)) if not blocked else None,
                    "finished_at": ts(finished) if not blocked else None,
                    "web_url": f"{p.web_url}/-/jobs/{70_000 + n}",
                    "pipeline": {
                        k: deployed[k]
                        for k in (
                            "id",
                            "iid",
                            "sha",
                            "ref",
                            "status",
                            "created_at",
                            "updated_at",
                            "web_url",
                        )
                    }
                    if deployed
                    else None,
                },
                "approvals": approvals,
                "pending_approval_count": 1 if blocked else 0,
            }
            api = s.api_deployments_every and n % s.api_deployments_every == 0
            if api and not blocked:  # a blocked deployment waits in its job
                deployment["deployable"] = None
                deployment["user"] = user(s.api_deployer)
            p.deployments.append(deployment)
            if status == "success":
                through = self.through.get(str(sha), 0)
                shipped = merged[shipped_through:through]  # iids shipped_through+1 .. through
                if shipped:
                    shipped_through = max(m["iid"] for m in shipped)
                p.deployment_mrs[deployment_id] = [
                    {k: v for k, v in m.items() if not k.startswith("_")} for m in shipped
                ]
            if n % 2 == 0:  # a staging deployment in between: not production, not collected
                deployment_id += 1
                staging = copy.deepcopy(deployment)
                staging.update(
                    {
                        "id": deployment_id,
                        "iid": n + 1000,
                        "status": "success",
                        "environment": {"id": 2, "name": "staging", "external_url": None},
                        "approvals": [],
                        "pending_approval_count": 0,
                    }
                )
                p.deployments.append(staging)

    def _head_at(self, merged: list[JSON], when: datetime) -> str:
        """The default branch's head at ``when``: after the last merge request merged by then
        (merge requests are merged in iid order)."""
        if not hasattr(self, "_merge_times"):
            self._merge_times = [parse_ts(mr["merged_at"]) for mr in merged]
        count = bisect.bisect_right(self._merge_times, when)
        return self.head_after[merged[count - 1]["iid"]] if count else self.p.commits[-1]["id"]

    def incidents(self) -> None:
        p, s = self.p, self.s
        for n in range(s.incidents + 2):
            created = s.start + timedelta(days=1 + 2 * n, hours=3)
            is_incident = n < s.incidents
            p.issues.append(
                {
                    "id": 40_000 + p.id * 1000 + n,
                    "iid": n + 1,
                    "project_id": p.id,
                    "title": f"Outage {n}" if is_incident else f"Bug {n}",
                    "state": "closed" if n % 2 == 0 else "opened",
                    "created_at": ts(created),
                    "updated_at": ts(created + timedelta(hours=2)),
                    "closed_at": ts(created + timedelta(hours=2)) if n % 2 == 0 else None,
                    "labels": ["incident", "severity::high"] if is_incident else ["bug"],
                    "issue_type": "incident" if is_incident else "issue",
                    "type": "INCIDENT" if is_incident else "ISSUE",
                    "severity": "HIGH" if is_incident else "UNKNOWN",
                    "web_url": f"{p.web_url}/-/issues/{n + 1}",
                    "author": user("oncall"),
                }
            )


def synthetic_project(
    path: str, project_id: int = 1, scenario: Scenario | None = None
) -> FakeProject:
    """A project with merge requests (merge commits, squashes, fast-forwards, reverts,
    hotfixes), approvals and notes in its events, pipelines with jobs and test summaries,
    production and staging deployments with approvals, and incidents."""
    project = FakeProject(id=project_id, path=path)
    _Builder(project, scenario or Scenario()).build()
    return project


def iter_merge_requests(project: FakeProject) -> Iterator[JSON]:
    yield from project.merge_requests


# --- helpers for tests and the benchmark -----------------------------------------------------


def gitlab_source(server: FakeGitLab, **options: Any) -> dict[str, Any]:
    """A ``[[sources]]`` table for the fake server (``project = "acme/app"`` unless given)."""
    source: dict[str, Any] = {"type": "gitlab", "url": server.url}
    if not {"project", "projects", "group"} & set(options):
        source["project"] = "acme/app"
    source.update(options)
    return source
