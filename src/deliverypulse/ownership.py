"""Which team owns a repo, as the code host says it: the catch-all rule of its CODEOWNERS file,
or the organisation team with the strongest permission on it. Shared: the GitHub and GitLab
connectors read the host, this module decides, so both decide alike.

A repo's team is a team, never a person: an owner that is a user (``@login``, an e-mail) or a
role (GitLab's ``@@maintainer``) names no team.

- https://docs.github.com/en/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners
- https://docs.gitlab.com/user/project/codeowners/reference/
- https://docs.github.com/en/rest/teams/teams#list-team-repositories
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deliverypulse.sources import Option, SourceConfig

#: Patterns that match every file of a repo (gitignore syntax, as CODEOWNERS uses).
#: (``/*`` is not one: it matches only the files at the top.)
CATCH_ALL = frozenset({"*", "**", "/", "/**"})

#: Permissions that make a team an owner, weakest first (GitHub's ``permissions`` keys and
#: ``role_name`` values); read and triage access own nothing.
OWNING_PERMISSIONS: dict[str, int] = {"push": 1, "write": 1, "maintain": 2, "admin": 3}


def teams_option(allowed: tuple[str, ...]) -> Option:
    """The ``teams`` option of a code-host source accepting ``allowed`` (default: off)."""
    choices = " or ".join(f'"{value}"' for value in allowed)
    return Option(str, help=f"a repo's team where the [[services]] catalogue names none: {choices}")


def teams_setting(source: SourceConfig, allowed: tuple[str, ...]) -> str | None:
    """The ``teams`` option checked against ``allowed`` (None: off), or a ``ConfigError``
    naming the key and the values it takes."""
    value = source.optional("teams", str)
    if value is None:
        return None
    if value not in allowed:
        raise source.error(f"{value!r}: expected one of {', '.join(allowed)}", "teams")
    return value


def codeowners_team(text: str, *, sections: bool = False) -> str | None:
    """The team that owns every file of a repo by its CODEOWNERS ``text``: the first team
    owner (``@org/team-slug``, GitLab ``@group/subgroup``) of the last catch-all rule (``*``,
    ``/``...; later rules take precedence), as the team's slug (its last path segment). None
    when no catch-all rule exists or the last one names no team (people only, or no owner).

    With ``sections`` (GitLab), a section line (``[Name] @default-owner``) gives its default
    owners to the rules under it that name none.
    """
    owners: list[str] | None = None
    defaults: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if sections and line.lstrip("^").startswith("["):  # [Name][approvals] @owners
            defaults = _owners(line.split("]")[-1].split())
            continue
        pattern, *rest = line.split()
        if pattern in CATCH_ALL:
            owners = _owners(rest) or defaults
    if not owners:
        return None
    teams = [owner for owner in owners if _is_team(owner)]
    return teams[0].rstrip("/").rsplit("/", 1)[-1] if teams else None


def _owners(words: Iterable[str]) -> list[str]:
    """The owners of a rule, up to an inline comment."""
    found = []
    for word in words:
        if word.startswith("#"):
            break
        found.append(word)
    return found


def _is_team(owner: str) -> bool:
    """``@org/team`` (GitHub) or ``@group/subgroup`` (GitLab); not ``@user``, ``@@role`` or
    an e-mail address."""
    return owner.startswith("@") and not owner.startswith("@@") and "/" in owner.strip("/")


def permission_rank(repository: Mapping[str, Any]) -> int:
    """How strongly a team holds a repo, from GitHub's minimal-repository object of the team's
    repos list (its ``permissions`` flags, else its ``role_name``): 0 when it cannot write."""
    flags = repository.get("permissions")
    if isinstance(flags, Mapping) and flags:
        held = (OWNING_PERMISSIONS.get(str(name), 0) for name, on in flags.items() if on is True)
        return max(held, default=0)
    return OWNING_PERMISSIONS.get(str(repository.get("role_name") or "").lower(), 0)


def strongest_teams(grants: Iterable[tuple[str, str, int]]) -> dict[str, str]:
    """Repo (case-folded) -> the team with the strongest permission on it, from (team, repo,
    rank) grants; a tie goes to the team whose name sorts first; rank 0 owns nothing."""
    best: dict[str, tuple[int, str]] = {}
    for team, repo, rank in grants:
        if rank <= 0:
            continue
        key, candidate = repo.casefold(), (-rank, team)
        if key not in best or candidate < best[key]:
            best[key] = candidate
    return {repo: team for repo, (_, team) in best.items()}


__all__ = [
    "CATCH_ALL",
    "OWNING_PERMISSIONS",
    "codeowners_team",
    "permission_rank",
    "strongest_teams",
    "teams_option",
    "teams_setting",
]
