"""Which projects a source covers: one ``project``, a list of ``projects``, or every project of
a ``group`` and its subgroups (archived and shared-in projects left out), listed with keyset
pagination.

- https://docs.gitlab.com/api/groups/#list-projects
"""

from __future__ import annotations

from urllib.parse import quote

from deliverypulse_gitlab.api import GitLabAPI


def group_projects(api: GitLabAPI, group: str) -> list[str]:
    params = {
        "include_subgroups": "true",
        "archived": "false",
        "with_shared": "false",
        "order_by": "id",
        "sort": "asc",
        "pagination": "keyset",
        "simple": "true",
    }
    paths: list[str] = []
    for page in api.pages(f"/groups/{quote(group, safe='')}/projects", params):
        paths.extend(str(p["path_with_namespace"]) for p in page)
    return paths
