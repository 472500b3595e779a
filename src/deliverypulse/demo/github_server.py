"""A real HTTP server on 127.0.0.1 that speaks GitHub: REST shapes built from GitHub's own
examples (``data/rest-examples.json.gz``, @octokit/openapi 23.0.2, MIT licence, copyright GitHub)
with Link pagination, x-ratelimit-* headers and ETag/304; and a ``/graphql`` endpoint that
*executes* queries with graphql-core against GitHub's schema (``data/schema.graphql.gz``,
@octokit/graphql-schema 15.26.1, same licence), so an invalid query fails here exactly as it
would on github.com.

It lives in the package, not in ``tests/``, because ``deliverypulse demo`` serves its bundled
organisation through it to the real GitHub connector; the connector tests and
``benchmarks/bench_github.py`` use it through ``tests/fake_github.py``.

Knobs: ``latency`` (seconds per request), ``faults`` (5xx, 429 Retry-After, secondary limit,
dropped connection, truncated JSON, exhausted rate limit), ``requests`` (the log).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from graphql import GraphQLError, GraphQLSchema, build_schema, graphql_sync

#: GitHub's schema and REST examples, gzipped package data (licence: data/NOTICE).
DATA = resources.files("deliverypulse.demo") / "data"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def bundled_text(name: str) -> str:
    """The text of a gzipped data file shipped with the package (``schema.graphql``...)."""
    return gzip.decompress((DATA / f"{name}.gz").read_bytes()).decode("utf-8")


def build_github_schema(sdl: str) -> GraphQLSchema:
    """GitHub's SDL has duplicate/deprecation quirks the full schema check rejects; skipping
    that check keeps query validation and execution exact."""
    return build_schema(sdl, assume_valid=True, assume_valid_sdl=True)


@functools.cache
def github_schema() -> GraphQLSchema:
    return build_github_schema(bundled_text("schema.graphql"))


@functools.cache
def examples() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(bundled_text("rest-examples.json"))
    return data


def template(name: str) -> dict[str, Any]:
    """A shallow copy of one of GitHub's example objects (lists: the first item)."""
    value = examples()[name]
    if isinstance(value, list):
        value = value[0]
    return dict(value)


def ts(hours: float) -> str:
    return (BASE_TIME + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def sha_of(*parts: Any) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


# -- the synthetic world ---------------------------------------------------------------------


@dataclass
class Repo:
    """One repository's objects, in a neutral model the REST and GraphQL views both render.

    A deployment is a dict with ``id``, ``environment``, ``sha``, ``ref``, ``createdAt``,
    ``updatedAt``, ``description``, ``creator`` (a login) and ``statuses`` (each ``state``,
    ``createdAt`` and, optionally, ``logUrl``: a GitHub Actions job URL
    ``https://github.com/o/r/actions/runs/<id>/job/<id>`` when a workflow made it, any other URL
    or none when a deploy tool did). Optional: ``creator_type`` (the creator's ``Actor`` type;
    default ``Bot`` for a login ending in ``[bot]``, ``User`` for any other, as on GitHub, where
    a machine user such as ``deploy-bot`` is a ``User``) and ``app`` (the slug of the GitHub
    App that created it, REST ``performed_via_github_app``; default the bot's own for a ``Bot``).
    """

    owner: str
    name: str
    pulls: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)  # newest first
    environments: dict[str, list[str]] = field(default_factory=dict)  # name -> reviewers
    releases: list[dict[str, Any]] = field(default_factory=list)
    run_reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def make_repo(
    owner: str = "octo",
    name: str = "web",
    *,
    pulls: int = 120,
    reviews: int = 3,
    deployments: int = 60,
    statuses: int = 4,
    runs: int = 150,
    incidents: int = 5,
    gated_every: int = 1,
    run_id_base: int = 1_000_000,
    commits: int = 2,
    rebased_every: int = 0,
) -> Repo:
    """A repository with ``pulls`` merged pull requests (``reviews`` reviews each, one of them
    an approval; ``commits`` commits each, an hour apart), ``deployments`` deployments
    alternating staging/production with ``statuses`` statuses each (every ``gated_every``-th
    production one waits for an approval), ``runs`` workflow runs and ``incidents`` incident
    issues. Every ``rebased_every``-th pull request (none at 0) was rebased with its oldest
    commit moved up the branch: GitHub lists commits in branch order, so neither the first
    nor the last listed is the earliest authored, and all share the rebase's commit time.
    Deterministic."""
    repo = Repo(owner, name)
    repo.environments = {"production": ["lead"], "staging": []}
    for i in range(pulls):
        number = i + 1
        created = i * 2.0
        author = "dependabot[bot]" if i % 17 == 5 else f"dev{i % 7}"
        kind = "Bot" if author.endswith("[bot]") else "User"
        review_list = [
            {
                "state": "APPROVED" if r == reviews - 1 else "COMMENTED",
                "submittedAt": ts(created + 1 + r * 0.25),
                "author": {"__typename": "User", "login": f"rev{(i + r) % 5}"},
            }
            for r in range(reviews)
        ]
        title = f"Change {number}"
        body = ""
        if i % 23 == 22:
            title, body = f'Revert "Change {number - 1}"', f"Reverts {owner}/{name}#{number - 1}"
        head = f"hotfix/thing-{number}" if i % 29 == 3 else f"feature/{number}"
        merged = created + 5 + (i % 3)
        repo.pulls.append(
            {
                "number": number,
                "title": title,
                "body": body,
                "state": "MERGED",
                "isDraft": False,
                "createdAt": ts(created),
                "updatedAt": ts(merged + 0.1),
                "mergedAt": ts(merged),
                "closedAt": ts(merged),
                "baseRefName": "main",
                "headRefName": head,
                "additions": 10 + i % 50,
                "deletions": i % 13,
                "changedFiles": 1 + i % 4,
                "author": {"__typename": kind, "login": author},
                "mergeSha": sha_of(name, "merge", number),
                "labels": ["bug"] if i % 5 == 0 else [],
                "commits": _branch_commits(
                    name,
                    number,
                    created,
                    commits,
                    rebased=rebased_every > 0 and i % rebased_every == 0,
                ),
                "reviews": review_list,
                "comments": [],
                "readyAt": ts(created + 0.5) if i % 4 == 0 else None,
            }
        )
    for i in range(len(repo.pulls)):
        pr = repo.pulls[i]
        repo.commits.append(
            {
                "oid": pr["mergeSha"],
                "authoredDate": pr["mergedAt"],
                "committedDate": pr["mergedAt"],
                "messageHeadline": pr["title"],
                "login": pr["author"]["login"],
                "parents": [repo.commits[-1]["oid"]] if repo.commits else [],
                "pull": pr["number"],
            }
        )
    repo.commits.reverse()
    for i in range(deployments):
        deployment_id = 5000 + i
        environment = "production" if i % 2 else "staging"
        created = i * 3.0
        run_id = run_id_base + i
        run_url = f"https://github.com/{owner}/{name}/actions/runs/{run_id}"
        gated = environment == "production" and (i // 2) % gated_every == 0
        states = ["QUEUED", "IN_PROGRESS", "SUCCESS", "INACTIVE"]
        if gated:
            states = ["WAITING", "QUEUED", "IN_PROGRESS", "SUCCESS"]
            repo.run_reviews[run_id] = [
                {
                    "state": "APPROVED",
                    "comment": "ship it",
                    "login": "lead",
                    "environments": [environment],
                }
            ]
        if i % 11 == 7:
            states = ["QUEUED", "IN_PROGRESS", "FAILURE"]
        if statuses > 4:  # a long history: repeat the cycle
            states = (states * (statuses // len(states) + 1))[:statuses]
        repo.deployments.append(
            {
                "id": deployment_id,
                "environment": environment,
                "sha": repo.pulls[min(i, len(repo.pulls) - 1)]["mergeSha"]
                if repo.pulls
                else sha_of(name, "d", i),
                "ref": "main",
                "createdAt": ts(created),
                "updatedAt": ts(created + 0.1 * len(states)),
                "description": "Deploy",
                "creator": "deploy-bot",
                "statuses": [
                    {
                        "state": s,
                        "createdAt": ts(created + 0.1 * (k + 1)),
                        "logUrl": f"{run_url}/job/{run_id * 10 + k}",
                    }
                    for k, s in enumerate(states)
                ],
            }
        )
    for i in range(runs):
        created = i * 1.0
        repo.runs.append(
            {
                "id": run_id_base + 500_000 + i,
                "name": "CI" if i % 5 else "Deploy",
                "head_sha": sha_of(name, "run", i),
                "head_branch": "main",
                "event": "push" if i % 3 else "pull_request",
                "status": "completed",
                "conclusion": "failure" if i % 9 == 4 else "success",
                "created_at": ts(created),
                "run_started_at": ts(created + 0.01),
                "updated_at": ts(created + 0.2),
                "run_attempt": 1 + (i % 10 == 0),
            }
        )
    for i in range(incidents):
        created = 10.0 + i * 24
        repo.issues.append(
            {
                "number": 10_000 + i,
                "title": f"Outage {i}",
                "labels": ["incident", "sev1" if i % 2 else "sev2"],
                "created_at": ts(created),
                "updated_at": ts(created + 2),
                "closed_at": ts(created + 2) if i % 3 else None,
                "state": "closed" if i % 3 else "open",
            }
        )
    repo.issues.append(
        {
            "number": 20_000,
            "title": "Not an incident",
            "labels": ["bug"],
            "created_at": ts(1),
            "updated_at": ts(1),
            "closed_at": None,
            "state": "open",
        }
    )
    repo.releases = [
        {
            "id": 900 + i,
            "tag": f"v1.{i}",
            "createdAt": ts(i * 10.0),
            "publishedAt": ts(i * 10.5),
            "sha": repo.commits[-1 - i]["oid"] if len(repo.commits) > i else sha_of("rel", i),
            "prerelease": i % 4 == 3,
        }
        for i in range(5)
    ]
    return repo


def _branch_commits(
    name: str, number: int, created: float, count: int, *, rebased: bool
) -> list[dict[str, Any]]:
    """A pull request's commits in the order GitHub lists them (branch order): ``count``
    commits authored an hour apart before ``created``; ``rebased``: the oldest was moved to the
    middle of the branch (after the next ``count // 2``) by an interactive rebase, which
    rewrote every commit time to the rebase's."""
    commits = [
        {
            "oid": sha_of(name, "c", number, c),
            "authoredDate": ts(created - count - 1 + c),
            "committedDate": ts(created - count - 1 + c),
        }
        for c in range(count)
    ]
    if rebased and count > 1:
        middle = max(1, count // 2)
        commits = [*commits[1 : middle + 1], commits[0], *commits[middle + 1 :]]
        for c, commit in enumerate(commits):
            commit["oid"] = sha_of(name, "rebased", number, c)
            commit["committedDate"] = ts(created - 0.5)
    return commits


# -- GraphQL resolvers over the model ---------------------------------------------------------


class NotFound(Exception):
    pass


class Forbidden(Exception):
    pass


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _index(cursor: str) -> int:
    return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])


def connection(
    items: list[Any],
    first: int | None = None,
    after: str | None = None,
    render: Callable[[Any], Any] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """A GraphQL connection page; ``render`` turns only the page's items into nodes."""
    if first is not None and not 0 <= first <= 100:
        # GitHub's own limit ("first" between 1 and 100), so a query asking more fails here too.
        raise GraphQLError(
            f"Requesting {first} records on the connection exceeds the `first` limit of 100"
        )
    start = _index(after) + 1 if after else 0
    size = first if first is not None else 100
    chunk = items[start : start + size]
    if render is not None:
        chunk = [render(item) for item in chunk]
    end = start + len(chunk) - 1
    return {
        "totalCount": len(items),
        "nodes": chunk,
        "edges": [{"cursor": _cursor(start + k), "node": n} for k, n in enumerate(chunk)],
        "pageInfo": {
            "hasNextPage": start + size < len(items),
            "hasPreviousPage": start > 0,
            "endCursor": _cursor(end) if chunk else after,
            "startCursor": _cursor(start) if chunk else None,
        },
    }


def conn(items: list[Any]) -> Callable[..., dict[str, Any]]:
    return lambda _info, **args: connection(items, **args)


def _user(login: str) -> dict[str, Any]:
    kind = "Bot" if login.endswith("[bot]") else "User"
    return {"__typename": kind, "login": login}


def creator_kind(d: dict[str, Any]) -> str:
    """The ``Actor`` type of a deployment model's creator: its ``creator_type`` when it says,
    else ``Bot`` for a login ending in ``[bot]`` and ``User`` for any other."""
    explicit = d.get("creator_type")
    return str(explicit or ("Bot" if str(d["creator"]).endswith("[bot]") else "User"))


def creator_app(d: dict[str, Any]) -> str | None:
    """The slug of the GitHub App that created a deployment model (REST
    ``performed_via_github_app``): its ``app`` when it has the key, else a bot's own."""
    if "app" in d:
        return str(d["app"]) if d["app"] else None
    return str(d["creator"]).removesuffix("[bot]") if creator_kind(d) == "Bot" else None


def deployment_creator(d: dict[str, Any]) -> dict[str, Any]:
    """A deployment model's creator as GraphQL shows it: a ``Bot``'s login without the
    ``[bot]`` suffix REST adds (``github-actions``, REST ``github-actions[bot]``)."""
    kind = creator_kind(d)
    login = str(d["creator"])
    return {"__typename": kind, "login": login.removesuffix("[bot]") if kind == "Bot" else login}


def pr_node(repo: Repo, pr: dict[str, Any]) -> dict[str, Any]:
    ready = (
        [{"__typename": "ReadyForReviewEvent", "createdAt": pr["readyAt"]}] if pr["readyAt"] else []
    )

    def timeline(_info: Any, itemTypes: list[str] | None = None, **args: Any) -> dict[str, Any]:
        wanted = ready if not itemTypes or "READY_FOR_REVIEW_EVENT" in itemTypes else []
        return connection(wanted, **args)

    return {
        **{
            k: pr[k]
            for k in (
                "number",
                "title",
                "body",
                "state",
                "isDraft",
                "createdAt",
                "updatedAt",
                "mergedAt",
                "closedAt",
                "baseRefName",
                "headRefName",
                "additions",
                "deletions",
                "changedFiles",
                "author",
            )
        },
        "url": f"https://github.com/{repo.full_name}/pull/{pr['number']}",
        "mergeCommit": {"oid": pr["mergeSha"]} if pr["mergeSha"] else None,
        "labels": conn([{"name": label} for label in pr["labels"]]),
        "commits": conn([{"commit": c} for c in pr["commits"]]),
        "reviews": conn([{**r, "createdAt": r["submittedAt"]} for r in pr["reviews"]]),
        "comments": conn(pr["comments"]),
        "timelineItems": timeline,
    }


def deployment_node(repo: Repo, d: dict[str, Any]) -> dict[str, Any]:
    # Newest status first, as the REST API lists them; the connector must not rely on order.
    statuses = [
        {
            "state": s["state"],
            "createdAt": s["createdAt"],
            "environment": d["environment"],
            "logUrl": s.get("logUrl"),
        }
        for s in reversed(d["statuses"])
    ]
    return {
        "__typename": "Deployment",
        "id": f"DE_{repo.full_name}_{d['id']}",
        "databaseId": d["id"],
        "createdAt": d["createdAt"],
        "updatedAt": d["updatedAt"],
        "environment": d["environment"],
        "originalEnvironment": d["environment"],
        "description": d["description"],
        "task": "deploy",
        "state": d["statuses"][-1]["state"] if d["statuses"] else "PENDING",
        "commitOid": d["sha"],
        "ref": {"name": d["ref"]},
        "creator": deployment_creator(d),
        "statuses": conn(statuses),
    }


def _desc(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda x: x[key], reverse=True)


def repository_node(world: FakeGitHub, repo: Repo) -> dict[str, Any]:
    def pull_requests(
        _info: Any,
        orderBy: dict[str, str] | None = None,
        states: list[str] | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        field_name = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt"}[
            (orderBy or {}).get("field", "CREATED_AT")
        ]
        items = sorted(
            repo.pulls,
            key=lambda p: p[field_name],
            reverse=(orderBy or {}).get("direction") == "DESC",
        )
        if states:
            items = [p for p in items if p["state"] in states]
        return connection(items, render=lambda p: pr_node(repo, p), **args)

    def pull_request(_info: Any, number: int) -> dict[str, Any] | None:
        found = [p for p in repo.pulls if p["number"] == number]
        if not found:
            raise NotFound(f"Could not resolve to a PullRequest with the number of {number}.")
        return pr_node(repo, found[0])

    def deployments(
        _info: Any,
        orderBy: dict[str, str] | None = None,
        environments: list[str] | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        items = sorted(
            repo.deployments,
            key=lambda d: (d["createdAt"], d["id"]),
            reverse=(orderBy or {}).get("direction") == "DESC",
        )
        if environments:
            items = [d for d in items if d["environment"] in environments]
        return connection(items, render=lambda d: deployment_node(repo, d), **args)

    def history(_info: Any, since: str | None = None, **args: Any) -> dict[str, Any]:
        items = [c for c in repo.commits if not since or c["committedDate"] >= since]
        return connection(items, render=commit_node, **args)

    def environments(_info: Any, **args: Any) -> dict[str, Any]:
        if world.forbid_environments:
            raise Forbidden("Resource not accessible by integration")
        return connection(
            [
                {
                    "name": name,
                    "protectionRules": conn(
                        [
                            {
                                "type": "REQUIRED_REVIEWERS",
                                "reviewers": conn([_user(r) for r in revs]),
                            }
                        ]
                        if revs
                        else []
                    ),
                }
                for name, revs in sorted(repo.environments.items())
            ],
            **args,
        )

    def releases(_info: Any, **args: Any) -> dict[str, Any]:
        return connection(
            [
                {
                    "databaseId": r["id"],
                    "name": r["tag"],
                    "tagName": r["tag"],
                    "url": f"https://github.com/{repo.full_name}/releases/tag/{r['tag']}",
                    "createdAt": r["createdAt"],
                    "publishedAt": r["publishedAt"],
                    "isDraft": False,
                    "isPrerelease": r["prerelease"],
                    "author": {"login": "releaser"},
                    "tagCommit": {"oid": r["sha"]},
                }
                for r in _desc(repo.releases, "createdAt")
            ],
            **{k: v for k, v in args.items() if k != "orderBy"},
        )

    def refs(_info: Any, refPrefix: str = "", **args: Any) -> dict[str, Any]:
        items = (
            [
                {
                    "name": r["tag"],
                    "target": {
                        "__typename": "Commit",
                        "oid": r["sha"],
                        "committedDate": r["createdAt"],
                    },
                }
                for r in _desc(repo.releases, "createdAt")
            ]
            if refPrefix == "refs/tags/"
            else []
        )
        return connection(items, **{k: v for k, v in args.items() if k in ("first", "after")})

    return {
        "__typename": "Repository",
        "nameWithOwner": repo.full_name,
        "pullRequests": pull_requests,
        "pullRequest": pull_request,
        "deployments": deployments,
        "environments": environments,
        "releases": releases,
        "refs": refs,
        "defaultBranchRef": {
            "name": "main",
            "target": {
                "__typename": "Commit",
                "oid": repo.commits[0]["oid"] if repo.commits else sha_of("empty"),
                "history": history,
            },
        }
        if repo.commits
        else None,
    }


def commit_node(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "Commit",
        "oid": c["oid"],
        "authoredDate": c["authoredDate"],
        "committedDate": c["committedDate"],
        "messageHeadline": c["messageHeadline"],
        "author": {"name": c["login"], "user": {"login": c["login"]}},
        "parents": conn([{"oid": p} for p in c["parents"]]),
        "associatedPullRequests": conn([{"number": c["pull"]}] if c.get("pull") else []),
    }


def query_root(world: FakeGitHub) -> dict[str, Any]:
    def repository(_info: Any, owner: str, name: str, **_: Any) -> dict[str, Any]:
        repo = world.repos.get(f"{owner}/{name}")
        if repo is None:
            raise NotFound(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return repository_node(world, repo)

    def organization(_info: Any, login: str) -> dict[str, Any]:
        names = sorted(r for r in world.repos if r.split("/")[0] == login)
        if not names:
            raise NotFound(f"Could not resolve to an Organization with the login of '{login}'.")
        return {"repositories": conn([{"nameWithOwner": n} for n in names])}

    def resource(_info: Any, url: str) -> dict[str, Any] | None:
        match = re.search(r"github\.com/([^/]+/[^/]+)/actions/runs/(\d+)$", url)
        if not world.resolve_runs_in_graphql or not match or match.group(1) not in world.repos:
            return None
        reviews = world.repos[match.group(1)].run_reviews.get(int(match.group(2)))
        if reviews is None:
            return None
        return {
            "__typename": "WorkflowRun",
            "databaseId": int(match.group(2)),
            "deploymentReviews": conn(
                [
                    {
                        "state": r["state"],
                        "comment": r["comment"],
                        "user": {"login": r["login"]},
                        "environments": conn([{"name": e} for e in r["environments"]]),
                    }
                    for r in reviews
                ]
            ),
        }

    def node(_info: Any, id: str) -> dict[str, Any] | None:
        match = re.match(r"DE_(.+)_(\d+)$", id)
        if not match or match.group(1) not in world.repos:
            return None
        repo = world.repos[match.group(1)]
        found = [d for d in repo.deployments if d["id"] == int(match.group(2))]
        return deployment_node(repo, found[0]) if found else None

    return {
        "repository": repository,
        "organization": organization,
        "resource": resource,
        "node": node,
    }


# -- REST renderers (GitHub's example objects with our values) ------------------------------


def rest_deployment(repo: Repo, d: dict[str, Any]) -> dict[str, Any]:
    item = template("deployment")
    api = f"https://api.github.com/repos/{repo.full_name}/deployments/{d['id']}"
    item.update(
        id=d["id"],
        sha=d["sha"],
        ref=d["ref"],
        environment=d["environment"],
        created_at=d["createdAt"],
        updated_at=d["updatedAt"],
        url=api,
        statuses_url=f"{api}/statuses",
        description=d["description"],
    )
    kind, login = creator_kind(d), str(d["creator"])
    item["creator"] = {
        **item["creator"],
        "login": login,
        "type": kind,
        "url": f"https://api.github.com/users/{login}",
        "html_url": f"https://github.com/{'apps/' if kind == 'Bot' else ''}"
        + (login.removesuffix("[bot]") if kind == "Bot" else login),
    }
    app = creator_app(d)
    item["performed_via_github_app"] = (
        {"id": int(sha_of("app", app)[:6], 16), "slug": app, "name": app} if app else None
    )
    return item


def rest_status(repo: Repo, d: dict[str, Any], k: int, s: dict[str, Any]) -> dict[str, Any]:
    item = template("deployment-status-items")
    item.update(
        id=d["id"] * 100 + k,
        state=s["state"].lower(),
        created_at=s["createdAt"],
        updated_at=s["createdAt"],
        environment=d["environment"],
        log_url=s.get("logUrl"),
        target_url=s.get("logUrl"),
    )
    return item


def rest_pull(repo: Repo, p: dict[str, Any]) -> dict[str, Any]:
    item = template("pull-request-simple-items")
    item.update(
        number=p["number"],
        title=p["title"],
        body=p["body"],
        state="closed" if p["state"] != "OPEN" else "open",
        created_at=p["createdAt"],
        updated_at=p["updatedAt"],
        merged_at=p["mergedAt"],
        closed_at=p["closedAt"],
        merge_commit_sha=p["mergeSha"],
        draft=p["isDraft"],
        user={**template("pull-request-simple-items")["user"], "login": p["author"]["login"]},
    )
    return item


def rest_review(p: dict[str, Any], k: int, r: dict[str, Any]) -> dict[str, Any]:
    item = template("pull-request-review-items")
    item.update(
        id=p["number"] * 100 + k,
        state=r["state"],
        submitted_at=r["submittedAt"],
        user={**item["user"], "login": r["author"]["login"]},
    )
    return item


def rest_commit(c: dict[str, Any]) -> dict[str, Any]:
    item = template("commit-items")
    item.update(
        sha=c["oid"],
        commit={
            **item["commit"],
            "author": {"name": "dev", "email": "d@example.com", "date": c["authoredDate"]},
        },
    )
    return item


def rest_run(repo: Repo, r: dict[str, Any]) -> dict[str, Any]:
    item = template("workflow-run")
    item.update(r)
    item["html_url"] = f"https://github.com/{repo.full_name}/actions/runs/{r['id']}"
    item["path"] = ".github/workflows/" + ("ci.yml" if r["name"] == "CI" else "deploy.yml")
    return item


def rest_issue(repo: Repo, i: dict[str, Any]) -> dict[str, Any]:
    item = template("issue-items")
    label = template("issue-items")["labels"][0]
    item.update(
        number=i["number"],
        title=i["title"],
        state=i["state"],
        created_at=i["created_at"],
        updated_at=i["updated_at"],
        closed_at=i["closed_at"],
        labels=[{**label, "name": n} for n in i["labels"]],
        html_url=f"https://github.com/{repo.full_name}/issues/{i['number']}",
    )
    item.pop("pull_request", None)
    return item


# -- the server -------------------------------------------------------------------------------


@dataclass
class Fault:
    """Break the next ``times`` requests whose path contains ``where``.

    kind: "status" (answer ``status``), "retry_after" (429 + Retry-After), "secondary" (403
    secondary limit, no Retry-After), "drop" (close without answering), "truncate" (a 200 whose
    JSON is cut in half), "exhaust" (403 with the primary limit spent until ``reset_in`` s).
    """

    kind: str
    where: str = ""  # a path fragment or a GraphQL operation name
    times: int = 1
    skip: int = 0  # let this many matching requests through first
    status: int = 502
    seconds: int = 3
    reset_in: int = 30


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    operation: str | None = None


class FakeGitHub:
    """The server's state: repos, tokens, rate limit, faults and the request log."""

    def __init__(
        self,
        repos: list[Repo] | None = None,
        *,
        token: str = "test-token",
        latency: float = 0.0,
        rate_limit: int = 5000,
    ) -> None:
        self.repos = {r.full_name: r for r in repos or []}
        self.tokens = {token}
        self.latency = latency
        self.rate_limit = rate_limit
        self.remaining = {"core": rate_limit, "graphql": rate_limit}
        self.reset_at = int(time.time()) + 3600
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self.app_keys: dict[str, str] = {}  # app id -> public key PEM
        self.resolve_runs_in_graphql = True  # False: resource(url:) finds no workflow run
        # Benchmarks: answer a repeated request from memory, so that the server costs only its
        # latency (GitHub's CPU is not on our machine; graphql-core's would be).
        self.cache_responses = False
        self.forbid_environments = False  # True: the token may not read environments
        self.response_cache: dict[tuple[Any, ...], tuple[int, bytes, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FakeGitHub:
        github_schema()
        handler = functools.partial(_Handler, self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    # helpers for tests
    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def count(self, predicate: Callable[[LoggedRequest], bool] = lambda r: True) -> int:
        with self._lock:
            return sum(1 for r in self.requests if predicate(r))

    def take_fault(self, path: str, operation: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and (fault.where in path or fault.where == operation):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None

    def spend(self, resource: str) -> dict[str, str]:
        with self._lock:
            self.remaining[resource] = max(0, self.remaining[resource] - 1)
            return self.rate_headers(resource)

    def rate_headers(self, resource: str) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(self.remaining[resource]),
            "x-ratelimit-used": str(self.rate_limit - self.remaining[resource]),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-resource": resource,
        }

    def log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    # GraphQL
    def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        result = graphql_sync(
            github_schema(),
            body.get("query", ""),
            root_value=query_root(self),
            variable_values=body.get("variables") or {},
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [_github_error(e) for e in result.errors]
        return payload


def _github_error(error: GraphQLError) -> dict[str, Any]:
    shaped: dict[str, Any] = {"message": error.message}
    if error.path:
        shaped["path"] = list(error.path)
    if isinstance(error.original_error, NotFound):
        shaped["type"] = "NOT_FOUND"
    elif isinstance(error.original_error, Forbidden):
        shaped["type"] = "FORBIDDEN"
    elif error.locations:
        shaped["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    return shaped


def paginate(items: list[Any], query: dict[str, list[str]]) -> tuple[list[Any], int, int]:
    per_page = min(100, int(query.get("per_page", ["30"])[0]))
    number = int(query.get("page", ["1"])[0])
    last = max(1, -(-len(items) // per_page))
    return items[(number - 1) * per_page : number * per_page], number, last


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, world: FakeGitHub, *args: Any) -> None:
        self.world = world
        super().__init__(*args)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and delayed
        # ACKs add 40 ms to every response and the latency knob would lie.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/_fake/"):  # control endpoints for a server in another process
            if path == "/_fake/clear":
                self.world.clear_log()
            self._send(200, json.dumps({"requests": self.world.count()}).encode(), {})
            return
        # GitHub Enterprise Server layout: /api/v3/... for REST, /api/graphql for GraphQL.
        path = "/graphql" if path == "/api/graphql" else path.removeprefix("/api/v3")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: dict[str, Any] = json.loads(raw) if raw else {}
        operation = None
        if path.endswith("/graphql"):
            match = re.search(r"(?:query|mutation)\s+(\w+)", body.get("query", ""))
            operation = match.group(1) if match else None
        if self.world.latency:
            time.sleep(self.world.latency)
        resource = "graphql" if path.endswith("/graphql") else "core"
        fault = self.world.take_fault(path, operation)
        if fault is not None and fault.kind == "drop":
            self.world.log(LoggedRequest(method, path, query, 0, operation))
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault is not None and fault.kind != "truncate":
            self._fault(fault, method, path, query, operation, resource)
            return
        key = (method, self.path, raw, self.headers.get("Authorization"))
        cached = self.world.response_cache.get(key) if self.world.cache_responses else None
        if cached is not None:
            status, data, headers = cached[0], cached[1], dict(cached[2])
        else:
            status, payload, headers = self._route(method, path, query, body, resource)
            data = json.dumps(payload).encode() if payload is not None else b""
            if self.world.cache_responses and status == 200:
                self.world.response_cache[key] = (status, data, dict(headers))
        if status == 200 and method == "GET":
            etag = 'W/"' + hashlib.sha1(data).hexdigest() + '"'
            headers["ETag"] = etag
            if self.headers.get("If-None-Match") == etag:
                status, data = 304, b""
                headers.update(self.world.rate_headers(resource))
        if status in (200, 201) and "x-ratelimit-remaining" not in headers:
            headers.update(self.world.spend(resource))
        if fault is not None and fault.kind == "truncate":
            data = data[: max(1, len(data) // 2)]
        self.world.log(LoggedRequest(method, path, query, status, operation))
        self._send(status, data, headers)

    def _fault(
        self,
        fault: Fault,
        method: str,
        path: str,
        query: dict[str, list[str]],
        operation: str | None,
        resource: str,
    ) -> None:
        headers = self.world.rate_headers(resource)
        message = "Server Error"
        status = fault.status
        if fault.kind == "retry_after":
            status, message = 429, "Too many requests"
            headers["Retry-After"] = str(fault.seconds)
        elif fault.kind == "secondary":
            status = 403
            message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        elif fault.kind == "exhaust":
            status, message = 403, "API rate limit exceeded"
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(int(time.time()) + fault.reset_in)
        self.world.log(LoggedRequest(method, path, query, status, operation))
        self._send(status, json.dumps({"message": message}).encode(), headers)

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Request-Id", f"FAKE:{id(self):x}:{len(self.world.requests)}")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        return given.removeprefix("Bearer ").removeprefix("token ") in self.world.tokens

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: dict[str, Any],
        resource: str,
    ) -> tuple[int, Any, dict[str, str]]:
        if method == "POST" and re.fullmatch(r"/app/installations/\d+/access_tokens", path):
            return self._installation_token()
        if not self._authorised():
            return (
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
                {},
            )
        if method == "POST" and path.endswith("/graphql"):
            return 200, self.world.execute(body), {}
        if path == "/rate_limit":
            return 200, template("rate-limit-overview"), {}
        match = re.match(r"/repos/([^/]+/[^/]+)(/.*)?$", path)
        if not match or match.group(1) not in self.world.repos:
            return 404, {"message": "Not Found"}, {}
        repo, rest = self.world.repos[match.group(1)], match.group(2) or ""
        items = self._rest_items(repo, rest, query)
        if items is None:
            return 404, {"message": "Not Found"}, {}
        if isinstance(items, dict):
            return 200, items, {}
        wrapper = "workflow_runs" if rest == "/actions/runs" else None
        chunk, number, last = paginate(items, query)
        chunk = [item() if callable(item) else item for item in chunk]
        headers = {}
        links = []
        base = f"{self.world.url}{path}"
        for rel, target in (
            ("next", number + 1),
            ("last", last),
            ("prev", number - 1),
            ("first", 1),
        ):
            if 1 <= target <= last and target != number:
                params = {k: v[0] for k, v in query.items()}
                params["page"] = str(target)
                links.append(f'<{base}?{urlencode(params)}>; rel="{rel}"')
        if links:
            headers["Link"] = ", ".join(links)
        payload = {"total_count": len(items), wrapper: chunk} if wrapper else chunk
        return 200, payload, headers

    def _rest_items(self, repo: Repo, rest: str, query: dict[str, list[str]]) -> Any:
        if rest == "":
            return {"full_name": repo.full_name, "default_branch": "main"}
        if rest == "/deployments":
            return [
                functools.partial(rest_deployment, repo, d)
                for d in _desc(repo.deployments, "createdAt")
            ]
        if m := re.fullmatch(r"/deployments/(\d+)/statuses", rest):
            found = [d for d in repo.deployments if d["id"] == int(m.group(1))]
            if not found:
                return None
            d = found[0]
            return [rest_status(repo, d, k, s) for k, s in reversed(list(enumerate(d["statuses"])))]
        if rest == "/pulls":
            return [functools.partial(rest_pull, repo, p) for p in _desc(repo.pulls, "createdAt")]
        if m := re.fullmatch(r"/pulls/(\d+)/(reviews|commits)", rest):
            found = [p for p in repo.pulls if p["number"] == int(m.group(1))]
            if not found:
                return None
            p = found[0]
            if m.group(2) == "reviews":
                return [rest_review(p, k, r) for k, r in enumerate(p["reviews"])]
            return [rest_commit(c) for c in p["commits"]]
        if rest == "/actions/runs":
            return [functools.partial(rest_run, repo, r) for r in _desc(repo.runs, "created_at")]
        if m := re.fullmatch(r"/actions/runs/(\d+)/approvals", rest):
            template_item = template("environment-approvals-items")
            return [
                {
                    **template_item,
                    "state": r["state"].lower(),
                    "comment": r["comment"],
                    "user": {**template_item["user"], "login": r["login"]},
                    "environments": [
                        {**template_item["environments"][0], "name": e} for e in r["environments"]
                    ],
                }
                for r in repo.run_reviews.get(int(m.group(1)), [])
            ]
        if rest == "/issues":
            labels = set(query.get("labels", [""])[0].split(",")) - {""}
            since = query.get("since", [""])[0]
            state = query.get("state", ["open"])[0]
            chosen = [
                i
                for i in _desc(repo.issues, "updated_at")
                if labels <= set(i["labels"])
                and (not since or i["updated_at"] >= since)
                and (state == "all" or i["state"] == state)
            ]
            return [rest_issue(repo, i) for i in chosen]
        return None

    def _installation_token(self) -> tuple[int, Any, dict[str, str]]:
        import jwt

        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(given, options={"verify_signature": False})
            key = self.world.app_keys[str(claims["iss"])]
            jwt.decode(given, key, algorithms=["RS256"])
        except Exception:
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        token = f"ghs_installation_{len(self.world.tokens)}_{'x' * 20}"
        self.world.tokens.add(token)
        expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        return (
            201,
            {
                "token": token,
                "expires_at": expires,
                "permissions": {},
                "repository_selection": "all",
            },
            {},
        )


def serve(repos: list[Repo], **kwargs: Any) -> Iterator[FakeGitHub]:
    """Context-manager-friendly generator for fixtures."""
    world = FakeGitHub(repos, **kwargs).start()
    try:
        yield world
    finally:
        world.stop()


def serve_in_process(
    make: Callable[[], list[Repo]], url_out: Any, cache: bool = False, **kwargs: Any
) -> None:
    """Run a server until killed, in a process of its own (so that its CPU, like GitHub's,
    is not the client's); sends its URL through ``url_out`` (a multiprocessing pipe end)."""
    world = FakeGitHub(make(), **kwargs)
    world.cache_responses = cache
    world.start()
    url_out.send(world.url)
    threading.Event().wait()


__all__ = ["FakeGitHub", "Fault", "Repo", "make_repo", "serve"]
