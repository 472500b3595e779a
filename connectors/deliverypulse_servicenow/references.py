"""Deployment references in a change request's text: what a CI pipeline writes when it opens or
updates a change (the repo and the sha it deploys, a commit or deployment URL).

Three forms are kept, normalised, in order of appearance and without repeats:

- ``owner/name@sha`` (7 to 40 hex digits; GitLab paths with subgroups too), lower-cased;
- a full 40-digit sha on its own, lower-cased;
- any ``http(s)://`` URL, as written (trailing punctuation dropped); a commit URL
  (``.../owner/name/commit/SHA`` on GitHub, ``.../group/project/-/commit/SHA`` on GitLab)
  also gives its ``owner/name@sha``.

The linking stage (``deliverypulse.linking.link_change_requests``) matches them against the
deployments' repo and sha, and their URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL = re.compile(r"https?://[^\s<>\"'`)\]}]+")
_REPO_SHA = re.compile(
    r"(?<![\w./-])([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+)@([0-9a-fA-F]{7,40})(?![0-9a-zA-Z])"
)
_FULL_SHA = re.compile(r"(?<![0-9a-zA-Z@/])([0-9a-fA-F]{40})(?![0-9a-zA-Z])")
_COMMIT_URL = re.compile(
    r"https?://[^/\s]+/(?P<repo>[^\s?#]+?)(?:/-)?/commits?/(?P<sha>[0-9a-fA-F]{7,40})\b"
)


def references(texts: Iterable[str]) -> list[str]:
    """The deployment references in ``texts``, normalised (see the module docstring)."""
    found: list[str] = []

    def add(reference: str) -> None:
        if reference not in found:
            found.append(reference)

    for text in texts:
        if not text:
            continue
        for match in _URL.finditer(text):
            url = match.group(0).rstrip(".,;:!?")
            commit = _COMMIT_URL.match(url)
            if commit:
                add(f"{commit['repo'].lower()}@{commit['sha'].lower()}")
            add(url)
        without_urls = _URL.sub(" ", text)
        for match in _REPO_SHA.finditer(without_urls):
            add(f"{match.group(1).lower()}@{match.group(2).lower()}")
        for match in _FULL_SHA.finditer(without_urls):
            add(match.group(1).lower())
    return found
