"""The GitHub connector: one repo, a list, or a whole organisation, on github.com or GitHub
Enterprise Server, through GraphQL where it batches and REST where it does not.

- https://docs.github.com/en/graphql (api_url/graphql; GHES: https://HOST/api/graphql)
- https://docs.github.com/en/rest (api_url; GHES: https://HOST/api/v3)
- https://docs.github.com/en/graphql/reference/objects#organization (repositories)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from deliverypulse.connector import Option
from deliverypulse.hosted import HTTPConnector, http_client
from deliverypulse.http import RetryPolicy
from deliverypulse.sources import SourceConfig
from deliverypulse.streams import Runtime, Stream, WalkCursor
from deliverypulse_github import queries
from deliverypulse_github.api import nodes
from deliverypulse_github.auth import token_source
from deliverypulse_github.changes import read_changes
from deliverypulse_github.commits import read_commits
from deliverypulse_github.deployments import read_deployments
from deliverypulse_github.incidents import read_incidents
from deliverypulse_github.runs import read_test_runs
from deliverypulse_github.settings import OPTIONS, Settings
from deliverypulse_github.teams import OrgTeams, read_repo_teams

_HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "deliverypulse",
}


class GitHubConnector(HTTPConnector):
    """Deployments (with approval gates), pull requests, commits, workflow runs and incidents
    from GitHub."""

    type_name: ClassVar[str] = "github"
    streams = (  # declared; the base class derives the names
        Stream(
            "deployments",
            read_deployments,
            cursor=WalkCursor,
            reads="GraphQL deployments with statuses, environments and run reviews "
            '(or releases, tags, a workflow\'s runs: the "deployments" option)',
        ),
        Stream(
            "changes",
            read_changes,
            cursor=WalkCursor,
            reads="GraphQL pullRequests with reviews, comments, first commit, labels",
        ),
        Stream(
            "commits",
            read_commits,
            cursor=WalkCursor,
            reads="GraphQL default-branch history with parents and pull requests",
        ),
        Stream(
            "test_runs",
            read_test_runs,
            cursor=WalkCursor,
            reads="REST /repos/{repo}/actions/runs (conditional)",
        ),
        Stream(
            "incidents",
            read_incidents,
            cursor=WalkCursor,
            reads="REST /repos/{repo}/issues with an incident label (conditional)",
        ),
        Stream(
            "repo_teams",
            read_repo_teams,
            option="teams",
            reads='with the "teams" option: GraphQL CODEOWNERS blobs, or REST '
            "/orgs/{org}/teams and /orgs/{org}/teams/{slug}/repos",
        ),
    )
    concurrency: ClassVar[int] = 8
    options: ClassVar[Mapping[str, Option]] = OPTIONS

    settings_type = Settings
    settings: Settings

    def connect(self, source: SourceConfig, runtime: Runtime, policy: RetryPolicy) -> None:
        token, secret_name = token_source(source, self.settings)
        self.client = http_client(
            self.settings.api_url,
            source,
            runtime,
            policy,
            graphql_url=self.settings.graphql_url,
            token=token,
            token_env=secret_name,
            max_in_flight=self.settings.concurrency,
            headers=_HEADERS,
        )
        self.org_teams = OrgTeams(self.client)

    def repos(self) -> Iterable[str]:
        if not self.settings.org:
            return list(self.settings.repos)
        found: list[str] = []
        for _, connection in self.client.graphql_pages(
            queries.ORG_REPOSITORIES,
            {"login": self.settings.org, "first": queries.PAGE},
            ("organization", "repositories"),
        ):
            found.extend(str(n["nameWithOwner"]) for n in nodes(connection))
        return found
