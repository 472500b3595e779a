"""The ``deployments`` stream: GitHub deployments with every status, per environment, and the
approval gate each one went through; or releases, tags or a named workflow's runs instead.

A deployment behind an environment with required reviewers gets a ``waiting`` status when the
approval is requested and moves on (``queued``/``in_progress``) when it is approved; the
approvers are the run's deployment reviews. The environments' protection rules come from one
REST request per repo (conditional, so usually a free 304).

``started_by`` is GitHub's word on what started a deployment: a workflow when a status's log
URL is a GitHub Actions run (Actions creates a job's deployment as the user who triggered the
workflow, so the creator alone would say "person"), an app when the creator is a ``Bot``
(``github-actions``, any GitHub App), a person when it is a ``User``; null for releases and
tags, which do not say. The core adds the ``bots`` pattern (``rules.automated_flags``).

- https://docs.github.com/en/rest/deployments/deployments
- https://docs.github.com/en/rest/deployments/statuses (states, incl. ``waiting``)
- https://docs.github.com/en/rest/deployments/environments (protection_rules)
- https://docs.github.com/en/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run
- https://docs.github.com/en/graphql/reference/objects#deployment
- https://docs.github.com/en/graphql/reference/interfaces#actor (``Bot``, ``User``)
- https://docs.github.com/en/graphql/reference/objects#release
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from deliverypulse.connector import Page
from deliverypulse.errors import NotFoundError
from deliverypulse.http import HTTPClient
from deliverypulse.rules import AUTOMATION, PERSON, is_production
from deliverypulse.streams import NewestFirst, RawPage, StreamRun, WalkCursor, parse_time
from deliverypulse_github import queries
from deliverypulse_github.api import (
    GitHub,
    JSONObject,
    graphql_fetch,
    graphql_pages,
    login,
    nodes,
    repository_variables,
    resumed,
)
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
_RUN_URL = re.compile(r"^(https?://.+?/actions/runs/(\d+))")
#: The kind of account that created a deployment (GraphQL ``Actor.__typename``) ->
#: ``started_by``. Other actors (an ``Organization``, a ``Mannequin``) say nothing: null.
CREATOR_STARTED_BY = {"Bot": AUTOMATION, "User": PERSON}
#: GitHub's own rollback marker: a deployment whose description or task says so.
_ROLLBACK = re.compile(r"(?i)\broll[- ]?back\b")
_PATH = ("repository", "deployments")
#: Whose deployment reviews the cursor remembers (the newest: only those are read again).
REVIEWED_KEPT = 200


def _unfinished(deployment: Mapping[str, Any]) -> bool:
    """No success, failure or error yet: a status may still come. (A deployment with more
    statuses than a page holds counts as unfinished until they are fetched: held, not lost.)"""
    return not any(s.get("state") in FINISHED for s in nodes(deployment.get("statuses")))


#: Deployments newest first; an unfinished one keeps the watermark back, a week at most.
WALK = NewestFirst("createdAt", unfinished=_unfinished, lookback=timedelta(days=7))


def read_deployments(github: GitHub, run: StreamRun) -> Iterator[Page]:
    settings = github.settings
    if settings.deployments == "releases":
        return _read_releases(github, run)
    if settings.deployments == "tags":
        return _read_tags(github, run)
    if settings.deployments == "workflow" and settings.workflow:
        return read_workflow_deployments(github, run, settings.workflow)
    return _read_github_deployments(github, run)


# -- the Deployments API --------------------------------------------------------------------


def _read_github_deployments(github: GitHub, run: StreamRun) -> Iterator[Page]:
    cursor = resumed(run.cursor)
    reviewed: dict[str, Any] = dict(cursor.extra.get("reviewed") or {})
    pages = DeploymentPages(github.client, run.repo)
    for step in WALK.walk(pages.fetch, cursor, run.since):
        for deployment in step.items:
            _complete_statuses(github.client, deployment, run.repo)
        reviews = _run_reviews(github.client, run.repo, step.items, reviewed)
        records = [
            deployment_record(d, pages.environments, reviews, github.settings.production)
            for d in step.items
        ]
        yield Page(records, _remember_reviews(step.cursor, reviewed))


@dataclass
class DeploymentPages:
    """The deployments connection as a ``fetch``, keeping the environments (and their
    protection rules) that come with a walk's first page.

    A token that may not read environments makes GitHub null the whole repository; the walk
    then goes on without them (the gates are then unknown, and that is logged).
    """

    client: HTTPClient
    repo: str
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fetch(self, after: str | None, etag: str | None) -> Iterator[RawPage]:
        variables = repository_variables(self.repo, queries.DEPLOYMENTS_PAGE)
        pages = graphql_pages(
            self.client,
            queries.DEPLOYMENTS,
            variables,
            _PATH,
            repo=self.repo,
            after=after,
            allow_partial=True,
        )
        try:
            data, first = next(pages)
        except NotFoundError:
            log.warning(
                "%s: environments not readable with this token; approval gates are "
                "taken from deployment statuses and run reviews only",
                self.repo,
            )
            pages = graphql_pages(
                self.client, queries.DEPLOYMENTS_ONLY, variables, _PATH, repo=self.repo, after=after
            )
            data, first = next(pages)
        self.environments = environment_gates(data)
        yield first
        for _, raw in pages:
            yield raw


def _remember_reviews(cursor: WalkCursor, reviewed: Mapping[str, Any]) -> WalkCursor:
    """The cursor with the reviews looked up so far, so that a deployment read again (it had
    not finished) costs no review request when its statuses did not change."""
    if not reviewed:
        return cursor
    kept = dict(list(reviewed.items())[-REVIEWED_KEPT:])
    return replace(cursor, extra={**cursor.extra, "reviewed": kept})


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


def _complete_statuses(client: HTTPClient, deployment: JSONObject, repo: str) -> None:
    """Fetch the rest of a deployment's statuses in the rare case it has more than a page."""
    statuses = deployment.get("statuses") or {}
    have = nodes(statuses)
    if (statuses.get("totalCount") or 0) <= len(have) or not deployment.get("id"):
        return
    collected: list[dict[str, Any]] = []
    for _, connection in client.graphql_pages(
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


def started_by(deployment: Mapping[str, Any]) -> str | None:
    """``"automation"`` when a workflow run or an app started the deployment, ``"person"`` when
    a user created it, else None.

    The run comes first: a deployment an Actions job makes is created as the user who
    triggered the workflow (or whose token it uses), yet it was the workflow that started it.
    """
    if _run_url(deployment):
        return AUTOMATION
    creator = deployment.get("creator") or {}
    return CREATOR_STARTED_BY.get(str(creator.get("__typename") or ""))


def _was_gated(deployment: Mapping[str, Any]) -> bool:
    return any(s.get("state") == "WAITING" for s in nodes(deployment.get("statuses")))


def _run_reviews(
    client: HTTPClient,
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
        data = client.graphql(
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
            found[url] = _rest_run_reviews(client, repo, url)
        reviewed[url] = {"statuses": wanted[url], "reviews": found[url]}
    return found


def _rest_run_reviews(client: HTTPClient, repo: str, run_url: str) -> list[dict[str, Any]]:
    match = _RUN_URL.match(run_url)
    if not match:
        return []
    try:
        response = client.get(f"/repos/{repo}/actions/runs/{match.group(2)}/approvals", repo=repo)
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
    deployment: Mapping[str, Any],
    environments: Mapping[str, Mapping[str, Any]],
    run_reviews: Mapping[str, list[dict[str, Any]] | None],
    production: re.Pattern[str],
) -> dict[str, Any]:
    """One ``deployments`` row from a GraphQL Deployment node with its statuses.

    ``is_rollback`` is GitHub's own marker only (the description or task says rollback); the
    core decides the rest from the sequence of production deployments."""
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
    marker = f"{deployment.get('description') or ''} {deployment.get('task') or ''}"
    log_url = next((s.get("logUrl") for s in reversed(statuses) if s.get("logUrl")), None)
    return {
        "deployment_id": str(deployment.get("databaseId") or deployment.get("id")),
        "environment": environment or None,
        "is_production": is_production(environment, production),
        "sha": deployment.get("commitOid"),
        "ref": (deployment.get("ref") or {}).get("name"),
        "created_at": deployment.get("createdAt"),
        "finished_at": finished["createdAt"] if finished else None,
        "status": status,
        "approval_required": approval_required,
        "approval_requested_at": requested_at,
        "approved_at": approved_at,
        "approvers": approvers,
        "is_rollback": True if _ROLLBACK.search(marker) else None,
        "url": log_url,
        "creator": login(deployment.get("creator")),
        "started_by": started_by(deployment),
        "updated_at": deployment.get("updatedAt"),
    }


# -- releases and tags as deployments ------------------------------------------------------


def _read_releases(github: GitHub, run: StreamRun) -> Iterator[Page]:
    fetch = graphql_fetch(github.client, queries.RELEASES, "releases", run.repo, queries.PAGE)
    for step in NewestFirst("createdAt").walk(fetch, run.cursor, run.since):
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
                "is_rollback": None,
                "url": r.get("url"),
                "creator": login(r.get("author")),
                # A release names who published it, not what deployed it: unknown.
                "started_by": None,
            }
            for r in step.items
            if not r.get("isDraft") and r.get("publishedAt")
        ]
        yield Page(records, step.cursor)


def _tag_commit(ref: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(sha, time) of a tag ref: the commit it points at (through an annotated tag object)."""
    target = ref.get("target") or {}
    if target.get("__typename") == "Tag":
        commit = target.get("target") or {}
        when = (target.get("tagger") or {}).get("date") or commit.get("committedDate")
        return commit.get("oid"), when
    return target.get("oid"), target.get("committedDate")


def _read_tags(github: GitHub, run: StreamRun) -> Iterator[Page]:
    fetch = graphql_fetch(github.client, queries.TAGS, "refs", run.repo, queries.PAGE)
    walk = NewestFirst(lambda ref: _tag_commit(ref)[1]).walk(fetch, run.cursor, run.since)
    for step in walk:
        records = []
        for ref in step.items:
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
                    "is_rollback": None,
                }
            )
        yield Page(records, step.cursor)
