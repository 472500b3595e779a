"""Names that end up in a URL path or a file path: what they may look like, checked once.

Source names come from the config; repo names from the config *and* from providers' payloads
(an organisation's repository list, a group's projects). Either can be hostile or broken
(``octo/../../x`` would steer an authenticated request outside ``/repos/``; a source named
``..`` would write outside the dataset), so every one is checked at the boundary where it
enters: the config loader, the collector (for what ``Connector.repos()`` returns) and the store.
"""

from __future__ import annotations

import re

from deliverypulse.errors import DataError

#: A source's name: a folder name in the dataset (``deployments/source=NAME/``).
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: What no segment of a repo path may hold: characters that change a URL's or a path's meaning.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\?#%]")
MAX_REPO_LENGTH = 512


def source_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a source, or None."""
    if not isinstance(name, str) or not SOURCE_NAME.match(name):
        return "use letters, digits, '.', '_' and '-' only, starting with a letter or digit"
    return None


def check_source_name(name: object) -> str:
    """``name`` if it can be a folder of the dataset; else a DataError naming it."""
    problem = source_name_problem(name)
    if problem:
        raise DataError(f"source name {name!r} cannot be stored: {problem}", table="source")
    return str(name)


def repo_problem(name: object) -> str | None:
    """Why ``name`` is not a safe repo path (``owner/name``, a GitLab path, or a local
    repository's name), or None: no empty, ``.`` or ``..`` segment, nothing that changes what a
    URL or a path means."""
    if not isinstance(name, str) or not name.strip():
        return "it is empty or not text"
    if len(name) > MAX_REPO_LENGTH:
        return f"it is longer than {MAX_REPO_LENGTH} characters"
    for segment in name.split("/"):
        if segment.strip() in ("", ".", ".."):
            return "it has an empty, '.' or '..' part"
        if _UNSAFE.search(segment):
            return "it holds a character that changes a URL's or a path's meaning"
    return None


def check_repo(name: object) -> str:
    """``name`` if it is a safe repo path; else a DataError naming it."""
    problem = repo_problem(name)
    if problem:
        raise DataError(f"repo name {name!r} is not a repository path: {problem}", table="repos")
    return str(name)


__all__ = [
    "SOURCE_NAME",
    "check_repo",
    "check_source_name",
    "repo_problem",
    "source_name_problem",
]
