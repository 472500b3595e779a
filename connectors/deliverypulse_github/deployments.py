"""The ``deployments`` stream: GitHub deployments with every status, per environment, and the
approval gate each one went through; or releases, tags or a named workflow's runs instead.

A deployment behind an environment with required reviewers gets a ``waiting`` status when the
approval is requested and moves on (``queued``/``in_progress``) when it is approved; the
approvers are the run's deployment reviews. The environments' protection rules come from one
REST request per repo (conditional, so usually a free 304).

- https://docs.github.com/en/rest/deployments/deployments
- https://docs.github.com/en/rest/deployments/statuses (states, incl. ``waiting``)
- https://docs.github.com/en/rest/deployments/environments (protection_rules)
- https://docs.github.com/en/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run
- https://docs.github.com/en/graphql/reference/objects#deployment
- https://docs.github.com/en/graphql/reference/objects#release
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.errors import NotFoundError
from deliverypulse_github import queries
from deliverypulse_github.context import (
    StreamContext,
    login,
    nodes,
    page,
    split_repo,
    walk_graphql,
)
from deliverypulse_github.cursor import WalkCursor, earliest, latest, parse_time, shift
from deliverypulse_github.runs import read_workflow_deployments

log = logging.getLogger("deliverypulse.github")

#: GraphQL DeploymentStatusState -> the dataset's status vocabulary.
STATUS_NAMES = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "ERROR": "error",
    "INACTIVE": "inactive",
    "IN_PROGRESS": "in_progress",
    "QUEUED": "queued",
    "PENDING": "queued",
    "WAITING": "waiting",
}
#: Deployment.state (no status yet) -> status.
STATE_NAMES = {
    **STATUS_NAMES,
    "ACTIVE": "success",
    "ABANDONED": "cancelled",
    "DESTROYED": "inactive",
}
FINISHED = {"SUCCESS", "FAILURE", "ERROR"}
#: States after ``waiting`` that mean the gate was passed.
PASSED_GATE = {"QUEUED", "IN_PROGRESS", "PENDING", "SUCCESS"}
#: How far back an unfinished deployment keeps the watermark from moving.
OPEN_LOOKBACK_DAYS = 7
_RUN_URL = re.compile(r"^(https?://.+?/actions/runs/(\d+))")
_ROLLBACK = re.compile(r"(?i)\broll[- ]?back\b")


def read_deployments(ctx: StreamContext, repo: str, cursor_text: str | None) -> Iterator[Page]:
    mode = ctx.deployments
    if mode == "releases":
        yield from _read_releases(ctx, repo, cursor_text)
    elif mode == "tags":
        yield from _read_tags(ctx, repo, cursor_text)
    elif mode.startswith("workflow:"):
        yield from read_workflow_deployments(ctx, repo, cursor_text, mode.split(":", 1)[1])
    else:
        yield from _read_github_deployments(ctx, repo, cursor_text)


# -- the Deployments API --------------------------------------------------------------------


def _read_github_deployments(
    ctx: StreamContext, repo: str, cursor_text: str | None
) -> Iterator[Page]:
    cursor = WalkCursor.load(cursor_text)
    owner, name = split_repo(repo)
    variables = {"owner": owner, "name": name, "first": queries.DEPLOYMENTS_PAGE}
    reviewed: dict[str, Any] = dict(cursor.extra.get("reviewed") or {})
    environments: dict[str, dict[str, Any]] | None = None
    for data, connection in _pages(ctx, variables, cursor, repo):
        if environments is None:
            environments = environment_gates(data)
        deployments, next_cursor, finished = connection
        for deployment in deployments:
            _complete_statuses(ctx, deployment, repo)
        reviews = _run_reviews(ctx, repo, deployments, reviewed)
        records = [deployment_record(ctx, d, environments, reviews) for d in deployments]
        _mark_rollbacks(records)
        open_since = earliest(
            next_cursor.extra.get("open"),
            *(r["created_at"] for r in records if r["finished_at"] is None),
        )
        extra = {**next_cursor.extra, "open": open_since} if open_since else next_cursor.extra
        next_cursor = replace(next_cursor, extra=extra)
        if finished:
            next_cursor = _hold_watermark_for_open(next_cursor, reviewed)
        yield page(records, next_cursor)


def _pages(
    ctx: StreamContext, variables: Mapping[str, Any], cursor: WalkCursor, repo: str
) -> Iterator[tuple[dict[str, Any], tuple[list[dict[str, Any]], WalkCursor, bool]]]:
    """The deployments walk, with each page's whole GraphQL data (it carries environments).

    A token that may not read environments makes GitHub null the whole repository; the walk
    then starts again without them (the gates are then unknown, and that is logged).
    """
    seen: dict[str, Any] = {}

    def remember(data: dict[str, Any]) -> None:
        seen["data"] = data

    def walk(query: str, allow_partial: bool) -> Iterator[Any]:
        return walk_graphql(
            ctx,
            query,
            variables,
            ("repository", "deployments"),
            cursor,
            "createdAt",
            repo,
            on_data=remember,
            allow_partial=allow_partial,
        )

    steps = walk(queries.DEPLOYMENTS, allow_partial=True)
    try:
        first = next(steps, None)
    except NotFoundError:
        log.warning(
            "%s: environments not readable with this token; approval gates are "
            "taken from deployment statuses and run reviews only",
            repo,
        )
        steps = walk(queries.DEPLOYMENTS_ONLY, allow_partial=False)
        first = next(steps, None)
    if first is None:
        return
    yield seen.get("data") or {}, first
    for step in steps:
        yield seen.get("data") or {}, step


def _hold_watermark_for_open(cursor: WalkCursor, reviewed: Mapping[str, Any]) -> WalkCursor:
    """Keep re-reading deployments that had not finished (a status may still come), but not
    those abandoned for more than a week; remember whose reviews were looked up."""
    extra = {k: v for k, v in cursor.extra.items() if k not in ("open", "reviewed")}
    open_since = cursor.extra.get("open")
    since = cursor.since
    if open_since and since:
        since = earliest(since, latest(open_since, shift(since, days=-OPEN_LOOKBACK_DAYS)))
    if reviewed:
        # Only the newest deployments are read again by a later run: a bounded memory.
        extra["reviewed"] = dict(list(reviewed.items())[-200:])
    return replace(cursor, since=since, extra=extra)


def environment_gates(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{environment name: {"required": bool, "reviewers": [...]}} from the environments (and
    their protection rules) that come with the deployments query."""
    gates: dict[str, dict[str, Any]] = {}
    repository = data.get("repository") or {}
    for environment in nodes(repository.get("environments")):
        reviewers: list[str] = []
        required = False
        for rule in nodes(environment.get("protectionRules")):
            if rule.get("type") == "REQUIRED_REVIEWERS":
                required = True
                for who in nodes(rule.get("reviewers")):
                    name = who.get("login") or who.get("slug")
                    if name:
                        reviewers.append(str(name))
        gates[str(environment.get("name"))] = {"required": required, "reviewers": reviewers}
    return gates


def _complete_statuses(ctx: StreamContext, deployment: dict[str, Any], repo: str) -> None:
    """Fetch the rest of a deployment's statuses in the rare case it has more than a page."""
    statuses = deployment.get("statuses") or {}
    have = nodes(statuses)
    if (statuses.get("totalCount") or 0) <= len(have) or not deployment.get("id"):
        return
    collected: list[dict[str, Any]] = []
    for _, connection in ctx.client.graphql_pages(
        queries.DEPLOYMENT_STATUSES,
        {"id": deployment["id"], "first": 100},
        ("node", "statuses"),
        repo=repo,
    ):
        collected.extend(nodes(connection))
    deployment["statuses"] = {"totalCount": len(collected), "nodes": collected}


def _run_url(deployment: Mapping[str, Any]) -> str | None:
    for status in nodes(deployment.get("statuses")):
        match = _RUN_URL.match(str(status.get("logUrl") or ""))
        if match:
            return match.group(1)
    return None


def _was_gated(deployment: Mapping[str, Any]) -> bool:
    return any(s.get("state") == "WAITING" for s in nodes(deployment.get("statuses")))


def _run_reviews(
    ctx: StreamContext,
    repo: str,
    deployments: Sequence[Mapping[str, Any]],
    reviewed: dict[str, Any],
) -> dict[str, list[dict[str, Any]] | None]:
    """Deployment reviews of the runs behind gated deployments: {run URL: reviews}.

    One GraphQL request per 50 runs; a run GraphQL cannot resolve falls back to the REST
    review history of that run. ``reviewed`` (kept in the cursor) remembers the reviews of
    deployments a later run will read again, keyed by run URL with the number of statuses
    seen: unchanged, they cost no request.
    """
    found: dict[str, list[dict[str, Any]] | None] = {}
    wanted: dict[str, int] = {}
    for deployment in deployments:
        url = _run_url(deployment)
        if not url or not _was_gated(deployment):
            continue
        count = len(nodes(deployment.get("statuses")))
        cached = reviewed.get(url)
        if isinstance(cached, dict) and cached.get("statuses") == count:
            found[url] = cached.get("reviews")
        else:
            wanted[url] = count
    urls = sorted(wanted)
    for start in range(0, len(urls), queries.REVIEW_BATCH):
        batch = urls[start : start + queries.REVIEW_BATCH]
        data = ctx.client.graphql(
            queries.deployment_reviews_query(len(batch)),
            {f"u{i}": url for i, url in enumerate(batch)},
            repo=repo,
            allow_partial=True,
        )
        for i, url in enumerate(batch):
            run = data.get(f"r{i}")
            if run and "deploymentReviews" in run:
                found[url] = [
                    {
                        "state": r.get("state"),
                        "login": login(r.get("user")),
                        "environments": [e.get("name") for e in nodes(r.get("environments"))],
                    }
                    for r in nodes(run.get("deploymentReviews"))
                ]
    for url in urls:
        if url not in found:
            found[url] = _rest_run_reviews(ctx, repo, url)
        reviewed[url] = {"statuses": wanted[url], "reviews": found[url]}
    return found


def _rest_run_reviews(ctx: StreamContext, repo: str, run_url: str) -> list[dict[str, Any]]:
    match = _RUN_URL.match(run_url)
    if not match:
        return []
    try:
        response = ctx.client.get(
            f"/repos/{repo}/actions/runs/{match.group(2)}/approvals", repo=repo
        )
    except NotFoundError:
        return []
    return [
        {
            "state": str(r.get("state") or "").upper(),
            "login": login(r.get("user")),
            "environments": [e.get("name") for e in r.get("environments") or []],
        }
        for r in response.data or []
    ]


def deployment_record(
    ctx: StreamContext,
    deployment: Mapping[str, Any],
    environments: Mapping[str, Mapping[str, Any]],
    run_reviews: Mapping[str, list[dict[str, Any]] | None],
) -> dict[str, Any]:
    """One ``deployments`` row from a GraphQL Deployment node with its statuses."""
    statuses = sorted(nodes(deployment.get("statuses")), key=lambda s: parse_time(s["createdAt"]))
    states = [str(s.get("state")) for s in statuses]
    environment = str(deployment.get("environment") or "")
    finished = next((s for s in statuses if s.get("state") in FINISHED), None)
    if "SUCCESS" in states:
        status = "success"  # later INACTIVE only means a newer deployment replaced it
        finished = next(s for s in statuses if s.get("state") == "SUCCESS")
    elif statuses:
        status = STATUS_NAMES.get(states[-1], states[-1].lower())
    else:
        status = STATE_NAMES.get(str(deployment.get("state") or ""), "queued")

    waiting = [i for i, s in enumerate(states) if s == "WAITING"]
    run_url = _run_url(deployment)
    reviews = run_reviews.get(run_url or "", None) if waiting else None
    relevant = [
        r for r in reviews or [] if not r["environments"] or environment in r["environments"]
    ]
    rejected = any(r["state"] == "REJECTED" for r in relevant)
    gate = environments.get(environment)
    # ``waiting`` also means a wait timer or a custom protection rule: it is an approval gate
    # when a reviewer acted on it, or when the environment requires reviewers.
    if relevant:
        approval_required: bool | None = True
    elif gate is not None:
        approval_required = bool(gate.get("required")) and bool(waiting)
    else:
        approval_required = True if waiting else None
    requested_at = approved_at = None
    if waiting and approval_required:
        requested_at = statuses[waiting[0]]["createdAt"]
        if not rejected:
            after_gate = statuses[waiting[-1] + 1 :]
            approved_at = next(
                (s["createdAt"] for s in after_gate if s["state"] in PASSED_GATE), None
            )
    approvers: list[str] | None = None  # unknown
    if reviews is not None:
        approvers = sorted(
            {r["login"] for r in relevant if r["state"] == "APPROVED" and r["login"]}
        )
    elif approval_required is False:
        approvers = []
    description = str(deployment.get("description") or "")
    log_url = next((s.get("logUrl") for s in reversed(statuses) if s.get("logUrl")), None)
    return {
        "deployment_id": str(deployment.get("databaseId") or deployment.get("id")),
        "environment": environment or None,
        "is_production": bool(environment and ctx.production.search(environment)),
        "sha": deployment.get("commitOid"),
        "ref": (deployment.get("ref") or {}).get("name"),
        "created_at": deployment.get("createdAt"),
        "finished_at": finished["createdAt"] if finished else None,
        "status": status,
        "approval_required": approval_required,
        "approval_requested_at": requested_at,
        "approved_at": approved_at,
        "approvers": approvers,
        "is_rollback": bool(
            _ROLLBACK.search(description) or _ROLLBACK.search(str(deployment.get("task") or ""))
        ),
        "url": log_url,
        "creator": login(deployment.get("creator")),
        "updated_at": deployment.get("updatedAt"),
    }


def _mark_rollbacks(records: list[dict[str, Any]]) -> None:
    """A production deployment of a sha that an earlier, different successful deployment to the
    same environment already shipped goes backwards: a rollback. Only within what was read."""
    by_environment: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["is_production"] and record["status"] == "success" and record["sha"]:
            by_environment.setdefault(str(record["environment"]), []).append(record)
    for group in by_environment.values():
        group.sort(key=lambda r: parse_time(r["created_at"]))
        shipped: list[str] = []
        for record in group:
            if shipped and record["sha"] != shipped[-1] and record["sha"] in shipped:
                record["is_rollback"] = True
            shipped.append(record["sha"])


# -- releases and tags as deployments ------------------------------------------------------


def _read_releases(ctx: StreamContext, repo: str, cursor_text: str | None) -> Iterator[Page]:
    owner, name = split_repo(repo)
    walk = walk_graphql(
        ctx,
        queries.RELEASES,
        {"owner": owner, "name": name, "first": queries.PAGE},
        ("repository", "releases"),
        WalkCursor.load(cursor_text),
        "createdAt",
        repo,
    )
    for releases, cursor, _ in walk:
        records = [
            {
                "deployment_id": f"release-{r.get('databaseId') or r.get('tagName')}",
                "environment": "prerelease" if r.get("isPrerelease") else "release",
                "is_production": not r.get("isPrerelease"),
                "sha": (r.get("tagCommit") or {}).get("oid"),
                "ref": r.get("tagName"),
                "created_at": r.get("createdAt"),
                "finished_at": r.get("publishedAt"),
                "status": "success",
                "approval_required": None,
                "is_rollback": False,
                "url": r.get("url"),
                "creator": login(r.get("author")),
            }
            for r in releases
            if not r.get("isDraft") and r.get("publishedAt")
        ]
        yield page(records, cursor)


def _tag_commit(ref: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(sha, time) of a tag ref: the commit it points at (through an annotated tag object)."""
    target = ref.get("target") or {}
    if target.get("__typename") == "Tag":
        commit = target.get("target") or {}
        when = (target.get("tagger") or {}).get("date") or commit.get("committedDate")
        return commit.get("oid"), when
    return target.get("oid"), target.get("committedDate")


def _read_tags(ctx: StreamContext, repo: str, cursor_text: str | None) -> Iterator[Page]:
    owner, name = split_repo(repo)
    walk = walk_graphql(
        ctx,
        queries.TAGS,
        {"owner": owner, "name": name, "first": queries.PAGE},
        ("repository", "refs"),
        WalkCursor.load(cursor_text),
        lambda ref: _tag_commit(ref)[1],
        repo,
    )
    for refs, cursor, _ in walk:
        records = []
        for ref in refs:
            sha, when = _tag_commit(ref)
            if not when:
                continue
            records.append(
                {
                    "deployment_id": f"tag-{ref.get('name')}",
                    "environment": "tag",
                    "is_production": True,
                    "sha": sha,
                    "ref": ref.get("name"),
                    "created_at": when,
                    "finished_at": when,
                    "status": "success",
                    "is_rollback": False,
                }
            )
        yield page(records, cursor)
