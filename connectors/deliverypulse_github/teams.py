"""The ``repo_teams`` stream: a repo's team as GitHub says it, for the ``teams`` option.

- ``codeowners``: the catch-all rule of the repo's CODEOWNERS file, the first of
  ``.github/CODEOWNERS``, ``CODEOWNERS`` and ``docs/CODEOWNERS`` found on the default branch
  (GitHub's own order), all three asked in one GraphQL request.
- ``github-teams``: the organisation's team with the strongest permission on the repo (admin >
  maintain > push), read once per organisation and run: ``GET /orgs/{org}/teams``, then each
  team's ``GET /orgs/{org}/teams/{team_slug}/repos``.

One row per repo, its ``team`` missing when GitHub names none, so a rerun replaces a team
that is gone. Deciding is :mod:`deliverypulse.ownership`'s.

- https://docs.github.com/en/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners#codeowners-file-location
- https://docs.github.com/en/graphql/reference/objects#repository (object(expression:))
- https://docs.github.com/en/rest/teams/teams#list-teams
- https://docs.github.com/en/rest/teams/teams#list-team-repositories
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import quote

from deliverypulse.connector import Page
from deliverypulse.errors import AuthError, DeliveryPulseError, FatalAPIError, NotFoundError
from deliverypulse.http import HTTPClient
from deliverypulse.ownership import codeowners_team, permission_rank, strongest_teams
from deliverypulse.streams import StreamRun
from deliverypulse_github.api import GitHub, split_repo

#: Where GitHub looks for CODEOWNERS, in the order it looks (the first found counts).
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
_ALIASES = ("github", "root", "docs")

#: One request per repo: the three places at once (a missing file is null, not an error).
CODEOWNERS = (
    "\nquery CodeOwners($owner: String!, $name: String!) {\n"
    "  repository(owner: $owner, name: $name) {\n"
    + "".join(
        f'    {alias}: object(expression: "HEAD:{path}") {{ ... on Blob {{ text }} }}\n'
        for alias, path in zip(_ALIASES, CODEOWNERS_PATHS, strict=True)
    )
    + "  }\n}\n"
)
#: Teams and team repos per page (GitHub's most).
PER_PAGE = 100


class OrgTeams:
    """Repo -> its strongest team, read once per organisation and run, shared by the repos of
    a source (they run on several threads; the others wait for the first read)."""

    def __init__(self, client: HTTPClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._teams: dict[str, dict[str, str] | DeliveryPulseError] = {}

    def team_of(self, repo: str) -> str | None:
        owner = split_repo(repo)[0]
        with self._lock:
            found = self._teams.get(owner.casefold())
            if found is None:
                try:
                    found = self._read(owner, repo)
                except AuthError as error:
                    if error.status != 403:
                        raise
                    # A token without read:org: say what it needs; the other streams go on.
                    found = FatalAPIError(
                        f'teams = "github-teams" needs a token that may list the teams of '
                        f"{owner!r} (scope read:org, or the Members organisation permission)",
                        status=error.status,
                        url=error.url,
                        request_id=error.request_id,
                        source=error.source,
                    )
                self._teams[owner.casefold()] = found
        if isinstance(found, DeliveryPulseError):
            raise found
        return found.get(repo.casefold())

    def _read(self, owner: str, repo: str) -> dict[str, str]:
        org = quote(owner, safe="")
        try:
            teams = [str(t["slug"]) for t in self._list(f"/orgs/{org}/teams", repo) if "slug" in t]
        except NotFoundError:
            return {}  # a user account, not an organisation: no teams
        grants = [
            (slug, str(item.get("full_name")), permission_rank(item))
            for slug in teams
            for item in self._list(f"/orgs/{org}/teams/{quote(slug, safe='')}/repos", repo)
        ]
        return strongest_teams(grants)

    def _list(self, path: str, repo: str) -> Iterator[dict[str, Any]]:
        for response in self.client.paginate(path, {"per_page": PER_PAGE}, repo=repo):
            yield from (item for item in response.data or [] if isinstance(item, dict))


class TeamReading(GitHub, Protocol):
    """The connector as this stream sees it: also the organisations' teams, read once."""

    @property
    def org_teams(self) -> OrgTeams: ...


def read_repo_teams(connector: TeamReading, run: StreamRun) -> Iterator[Page]:
    """One ``repo_teams`` row for the repo when the ``teams`` option is set; nothing if not."""
    origin = connector.settings.teams
    if origin is None:
        return
    if origin == "codeowners":
        team = codeowners_team(codeowners_text(connector.client, run.repo) or "")
    else:
        team = connector.org_teams.team_of(run.repo)
    yield Page([{"team": team, "origin": origin}])


def codeowners_text(client: HTTPClient, repo: str) -> str | None:
    """The text of the CODEOWNERS file GitHub uses for ``repo`` (None: it has none)."""
    owner, name = split_repo(repo)
    data = client.graphql(CODEOWNERS, {"owner": owner, "name": name}, repo=repo)
    found = data.get("repository") or {}
    for alias in _ALIASES:
        blob = found.get(alias)
        if isinstance(blob, dict) and isinstance(blob.get("text"), str):
            return str(blob["text"])
    return None
