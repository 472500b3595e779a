"""The GitHub connector: one repo, a list, or a whole organisation, on github.com or GitHub
Enterprise Server, through GraphQL where it batches and REST where it does not.

- https://docs.github.com/en/graphql (api_url/graphql; GHES: https://HOST/api/graphql)
- https://docs.github.com/en/rest (api_url; GHES: https://HOST/api/v3)
- https://docs.github.com/en/graphql/reference/objects#organization (repositories)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import httpx

from deliverypulse.config import SourceConfig
from deliverypulse.connector import Connector, Option, Page
from deliverypulse.http import HTTPClient, RetryPolicy
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime
from deliverypulse_github import queries
from deliverypulse_github.auth import token_source
from deliverypulse_github.changes import read_changes
from deliverypulse_github.commits import read_commits
from deliverypulse_github.context import DEFAULT_BOTS, DEFAULT_HOTFIX, StreamContext, nodes
from deliverypulse_github.deployments import read_deployments
from deliverypulse_github.incidents import read_incidents
from deliverypulse_github.runs import read_test_runs

DEFAULT_API_URL = "https://api.github.com"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_DEPLOYMENT_MODES = ("deployments", "releases", "tags")

#: The sleep every new connector's client uses; tests replace it so they never wait.
SLEEP: Callable[[float], None] = time.sleep
#: An httpx transport for new connectors (None: the network); tests may replace it.
TRANSPORT: httpx.BaseTransport | None = None

Reader = Callable[[StreamContext, str, str | None], Iterator[Page]]
READERS: dict[str, Reader] = {
    "deployments": read_deployments,
    "changes": read_changes,
    "commits": read_commits,
    "test_runs": read_test_runs,
    "incidents": read_incidents,
}


def graphql_url(api_url: str) -> str:
    """GitHub's GraphQL endpoint for a REST base URL (``/api/v3`` -> ``/api/graphql`` on GHES)."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return f"{base}/graphql"


class GitHubConnector(Connector):
    """Deployments (with approval gates), pull requests, commits, workflow runs and incidents
    from GitHub."""

    type_name: ClassVar[str] = "github"
    streams: ClassVar[tuple[str, ...]] = tuple(READERS)
    concurrency: ClassVar[int] = 8
    options: ClassVar[Mapping[str, Option]] = {
        "repo": Option(str, help="one repository, owner/name"),
        "repos": Option(list, help="several repositories, [owner/name, ...]"),
        "org": Option(str, help="every (non-archived, non-fork) repository of an organisation"),
        "api_url": Option(str, DEFAULT_API_URL, help="REST API root; GHES: https://HOST/api/v3"),
        "app_id": Option((int, str), help="GitHub App id (App installation auth)"),
        "app_private_key_env": Option(str, help="variable holding the App's private key (PEM)"),
        "installation_id": Option(int, help="the App's installation id"),
        "deployments": Option(
            str, "deployments", help='"deployments", "releases", "tags" or "workflow:NAME"'
        ),
        "incident_labels": Option(list, ["incident"], help="issue labels that mark incidents"),
        "hotfix": Option(str, DEFAULT_HOTFIX, help="regex on title/branch/labels of hotfixes"),
        "bots": Option(str, DEFAULT_BOTS, help="regex on logins of bot authors"),
        "max_rate_limit_wait": Option(
            (int, float), 900, help="longest wait for a rate limit, seconds; beyond it, stop"
        ),
        "concurrency": Option(int, 8, help="requests in flight at once for this source"),
    }

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
        chosen = [key for key in ("repo", "repos", "org") if source.get(key)]
        if len(chosen) != 1:
            raise source.error("give exactly one of 'repo', 'repos' or 'org'", "repo")
        for repo in _configured_repos(source):
            if not isinstance(repo, str) or not _REPO.match(repo):
                raise source.error(f"{repo!r} is not owner/name", chosen[0])
        mode = str(source.get("deployments"))
        if mode not in _DEPLOYMENT_MODES and not (mode.startswith("workflow:") and mode[9:]):
            raise source.error(
                f"{mode!r}: expected deployments, releases, tags or workflow:NAME", "deployments"
            )
        for key in ("hotfix", "bots"):
            try:
                re.compile(str(source.get(key)))
            except re.error as error:
                raise source.error(f"not a valid regular expression: {error}", key) from None
        labels = source.get("incident_labels")
        if not labels or not all(isinstance(label, str) and label for label in labels):
            raise source.error("expected a non-empty list of label names", "incident_labels")
        if source.get("app_id"):
            for key in ("app_private_key_env", "installation_id"):
                if not source.get(key):
                    raise source.error(f"GitHub App auth (app_id) also needs {key!r}", key)
        elif not source.token_env:
            raise source.error(
                'set token_env (say, "GITHUB_TOKEN") or GitHub App auth (app_id)', "token_env"
            )
        if int(source.get("concurrency")) < 1:
            raise source.error("expected a whole number >= 1", "concurrency")
        if float(source.get("max_rate_limit_wait")) < 0:
            raise source.error("expected a number of seconds >= 0", "max_rate_limit_wait")

    def __init__(
        self,
        source: SourceConfig,
        runtime: Runtime = DEFAULT_RUNTIME,
        *,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(source, runtime)
        api_url = str(source.get("api_url", DEFAULT_API_URL)).rstrip("/")
        token, secret_name = token_source(source, api_url)
        max_wait = float(source.get("max_rate_limit_wait", 900))
        self.client = HTTPClient(
            api_url,
            graphql_url=graphql_url(api_url),
            token=token,
            source=source.name,
            token_env=secret_name,
            policy=policy or RetryPolicy(max_rate_limit_wait=max_wait),
            sleep=sleep or SLEEP,
            transport=transport or TRANSPORT,
            max_in_flight=int(source.get("concurrency", 8)),
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "deliverypulse",
            },
        )
        self.context = StreamContext(
            client=self.client,
            production=source.production,
            hotfix=re.compile(str(source.get("hotfix", DEFAULT_HOTFIX))),
            bots=re.compile(str(source.get("bots", DEFAULT_BOTS))),
            incident_labels=tuple(source.get("incident_labels", ["incident"])),
            deployments=str(source.get("deployments", "deployments")),
            since=source.since,
        )

    def repos(self) -> Iterable[str]:
        org = self.source.get("org")
        if not org:
            return list(_configured_repos(self.source))
        found: list[str] = []
        for _, connection in self.client.graphql_pages(
            queries.ORG_REPOSITORIES,
            {"login": org, "first": queries.PAGE},
            ("organization", "repositories"),
        ):
            found.extend(str(n["nameWithOwner"]) for n in nodes(connection))
        return found

    def read(self, stream: str, repo: str, cursor: str | None) -> Iterator[Page]:
        return READERS[stream](self.context, repo, cursor)

    def close(self) -> None:
        self.client.close()


def _configured_repos(source: SourceConfig) -> list[Any]:
    if source.get("repo"):
        return [source.get("repo")]
    return list(source.get("repos") or [])
