"""The ``repo_teams`` stream: a project's team from its CODEOWNERS file, for the ``teams``
option (``teams = "codeowners"``).

GitLab uses the first of ``CODEOWNERS``, ``docs/CODEOWNERS`` and ``.gitlab/CODEOWNERS`` it
finds on the default branch; each is one raw-file request, so a project costs one to three.
The team is the first group owner (``@group/subgroup``) of the last catch-all rule, sections'
default owners included (:func:`deliverypulse.ownership.codeowners_team`). One row per
project, its ``team`` missing when the file names no group, so a rerun replaces a team that
is gone.

- https://docs.gitlab.com/user/project/codeowners/#codeowners-file
- https://docs.gitlab.com/user/project/codeowners/reference/
- https://docs.gitlab.com/api/repository_files/#get-raw-file-from-repository
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from deliverypulse.connector import Page
from deliverypulse.ownership import codeowners_team
from deliverypulse.streams import StreamRun
from deliverypulse_gitlab.api import GitLabAPI, project_path
from deliverypulse_gitlab.settings import Reading

#: Where GitLab looks for CODEOWNERS, in the order it looks (the first found counts).
CODEOWNERS_PATHS = ("CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")


def read_repo_teams(connector: Reading, run: StreamRun) -> Iterator[Page]:
    """One ``repo_teams`` row for the project when ``teams`` is set; nothing if not."""
    origin = connector.settings.teams
    if origin is None:
        return
    text = codeowners_text(connector.api, run.repo)
    team = codeowners_team(text, sections=True) if text else None
    yield Page([{"team": team, "origin": origin}])


def codeowners_text(api: GitLabAPI, repo: str) -> str | None:
    """The text of the CODEOWNERS file GitLab uses for ``repo`` (None: it has none)."""
    for path in CODEOWNERS_PATHS:
        url = f"{project_path(repo)}/repository/files/{quote(path, safe='')}/raw"
        text = api.text_optional(url, {"ref": "HEAD"})
        if text is not None:
            return text
    return None
