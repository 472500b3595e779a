"""A GitHub source's options, checked and typed once (the connector builds them in
``__init__``; the config check builds them too, so a bad option fails at load time).

- https://docs.github.com/en/rest (api_url; GHES: https://HOST/api/v3)
- https://docs.github.com/en/graphql/guides/forming-calls-with-graphql#the-graphql-endpoint
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deliverypulse.ownership import teams_option, teams_setting
from deliverypulse.sources import URL, Option, SourceConfig

DEFAULT_API_URL = "https://api.github.com"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_DEPLOYMENT_MODES = ("deployments", "releases", "tags")
#: Where the ``teams`` option may take a repo's team from (unset: nowhere).
TEAM_MODES = ("codeowners", "github-teams")

#: The GitHub-specific config keys (``production``, ``hotfix`` and ``bots`` are common ones).
OPTIONS: Mapping[str, Option] = {
    "repo": Option(str, help="one repository, owner/name"),
    "repos": Option(list, help="several repositories, [owner/name, ...]"),
    "org": Option(str, help="every (non-archived, non-fork) repository of an organisation"),
    "api_url": Option(URL, DEFAULT_API_URL, help="REST API root; GHES: https://HOST/api/v3"),
    "app_id": Option((int, str), help="GitHub App id (App installation auth)"),
    "app_private_key_env": Option(str, help="variable holding the App's private key (PEM)"),
    "installation_id": Option(int, help="the App's installation id"),
    "deployments": Option(
        str, "deployments", help='"deployments", "releases", "tags" or "workflow:NAME"'
    ),
    "incident_labels": Option(list, ["incident"], help="issue labels that mark incidents"),
    "max_rate_limit_wait": Option(
        (int, float), 900, help="longest wait for a rate limit, seconds; beyond it, stop"
    ),
    "concurrency": Option(int, 8, help="requests in flight at once for this source"),
    "teams": teams_option(TEAM_MODES),
}


def graphql_url(api_url: str) -> str:
    """GitHub's GraphQL endpoint for a REST base URL (``/api/v3`` -> ``/api/graphql`` on GHES)."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return f"{base}/graphql"


@dataclass(frozen=True)
class AppAuth:
    """GitHub App installation auth: the App, where its private key is, the installation."""

    app_id: int | str
    private_key_env: str
    installation_id: int


@dataclass(frozen=True)
class Settings:
    """What one GitHub source reads and how, from its ``[[sources]]`` table."""

    api_url: str
    repos: tuple[str, ...]  # empty when ``org`` is given
    org: str | None
    #: "deployments", "releases", "tags" or "workflow" (then ``workflow`` names it).
    deployments: str
    workflow: str | None
    incident_labels: tuple[str, ...]
    production: re.Pattern[str]
    bots: re.Pattern[str]
    app: AppAuth | None
    max_rate_limit_wait: float
    concurrency: int
    #: "codeowners" or "github-teams": where the repo_teams stream reads a repo's team.
    teams: str | None = None

    @property
    def graphql_url(self) -> str:
        return graphql_url(self.api_url)

    @classmethod
    def from_source(cls, source: SourceConfig) -> Settings:
        """The typed settings, or a ``ConfigError`` naming the key that is wrong."""
        chosen = [key for key in ("repo", "repos", "org") if source.get(key)]
        if len(chosen) != 1:
            raise source.error("give exactly one of 'repo', 'repos' or 'org'", "repo")
        repos = [source.get("repo")] if source.get("repo") else list(source.get("repos") or [])
        for repo in repos:
            if not isinstance(repo, str) or not _REPO.match(repo):
                raise source.error(f"{repo!r} is not owner/name", chosen[0])
        mode = str(source.get("deployments", "deployments"))
        kind, _, workflow = mode.partition(":")
        if mode not in _DEPLOYMENT_MODES and not (kind == "workflow" and workflow):
            raise source.error(
                f"{mode!r}: expected deployments, releases, tags or workflow:NAME", "deployments"
            )
        labels = source.get("incident_labels", ["incident"])
        if not labels or not all(isinstance(label, str) and label for label in labels):
            raise source.error("expected a non-empty list of label names", "incident_labels")
        concurrency = int(source.get("concurrency", 8))
        if concurrency < 1:
            raise source.error("expected a whole number >= 1", "concurrency")
        max_wait = float(source.get("max_rate_limit_wait", 900))
        if max_wait < 0:
            raise source.error("expected a number of seconds >= 0", "max_rate_limit_wait")
        return cls(
            api_url=str(source.get("api_url", DEFAULT_API_URL)).rstrip("/"),
            repos=tuple(repos),
            org=str(source.get("org")) if source.get("org") else None,
            deployments=kind,
            workflow=workflow or None,
            incident_labels=tuple(labels),
            production=source.production,
            bots=source.bots,
            app=_app_auth(source),
            max_rate_limit_wait=max_wait,
            concurrency=concurrency,
            teams=teams_setting(source, TEAM_MODES),
        )


def _app_auth(source: SourceConfig) -> AppAuth | None:
    app_id: Any = source.get("app_id")
    if not app_id:
        if not source.token_env:
            raise source.error(
                'set token_env (say, "GITHUB_TOKEN") or GitHub App auth (app_id)', "token_env"
            )
        return None
    for key in ("app_private_key_env", "installation_id"):
        if not source.get(key):
            raise source.error(f"GitHub App auth (app_id) also needs {key!r}", key)
    return AppAuth(
        app_id=app_id,
        private_key_env=str(source.get("app_private_key_env")),
        installation_id=int(source.get("installation_id")),
    )
