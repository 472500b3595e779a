"""A GitLab source's options, parsed and checked once (:meth:`Settings.from_source`), and what
a stream reader takes from the connector (:class:`Reading`).

The common options (``since``, ``streams``, ``production``, ``hotfix``, ``bots``) are the
core's: it compiles and checks the regexes, and classifies changes with ``hotfix`` and ``bots``.

- https://docs.gitlab.com/api/rest/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, cast

from deliverypulse.ownership import teams_option, teams_setting
from deliverypulse.sources import URL, Option, SourceConfig

if TYPE_CHECKING:
    from deliverypulse_gitlab.api import GitLabAPI

DEFAULT_URL = "https://gitlab.com"
TestReports = Literal["production", "all", "none"]
TEST_REPORT_MODES: tuple[TestReports, ...] = ("production", "all", "none")
#: Projects of one source collected at once when the source does not say.
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_RATE_LIMIT_WAIT = 900
#: Where the ``teams`` option may take a project's team from (unset: nowhere).
TEAM_MODES = ("codeowners",)

#: The config keys of a GitLab source, beyond the common ones.
OPTIONS: Mapping[str, Option] = {
    "project": Option(str, help="one project path, e.g. group/app"),
    "projects": Option(list, help="several project paths"),
    "group": Option(str, help="every project of a group and its subgroups"),
    "url": Option(URL, DEFAULT_URL, help="GitLab instance, e.g. https://gitlab.example.org"),
    "incident_labels": Option(
        list, help="labels that mark an incident issue; default: issues of type incident"
    ),
    "test_reports": Option(
        str,
        "production",
        help="test report summaries for: production (deployed pipelines), all, none",
    ),
    "max_rate_limit_wait": Option(
        (int, float),
        DEFAULT_MAX_RATE_LIMIT_WAIT,
        help="longest single rate-limit wait (s) before the run stops",
    ),
    "concurrency": Option(
        int, DEFAULT_CONCURRENCY, help="projects of this source collected at once"
    ),
    "teams": teams_option(TEAM_MODES),
}


@dataclass(frozen=True)
class Settings:
    """A GitLab source's options, typed.

    projects: the project paths named by ``project`` or ``projects`` (empty for a ``group``).
    group: the group whose projects (subgroups included) the source covers, if any.
    url: the instance's base URL (without ``/api/v4``).
    production: the core's compiled ``production`` regex (a tier of ``production`` counts too).
    """

    projects: tuple[str, ...]
    group: str | None
    url: str
    production: re.Pattern[str]
    incident_labels: tuple[str, ...]
    test_reports: TestReports
    max_rate_limit_wait: float
    concurrency: int
    #: "codeowners": the repo_teams stream reads a project's team from its CODEOWNERS file.
    teams: str | None = None

    @classmethod
    def from_source(cls, source: SourceConfig) -> Settings:
        """The settings of ``source``; a ``ConfigError`` naming the key for a bad option."""
        given = [key for key in ("project", "projects", "group") if source.get(key)]
        if len(given) != 1:
            raise source.error(
                "set exactly one of 'project', 'projects' or 'group'"
                + (f" (got {', '.join(given)})" if given else ""),
                given[1] if len(given) > 1 else "project",
            )
        projects = source.get("projects")
        if projects is not None and not all(isinstance(p, str) and p for p in projects):
            raise source.error("expected a list of project paths (strings)", "projects")
        test_reports = source.get("test_reports", "production")
        if test_reports not in TEST_REPORT_MODES:
            raise source.error(f"expected one of {', '.join(TEST_REPORT_MODES)}", "test_reports")
        labels = source.get("incident_labels")
        if labels is not None and not all(isinstance(x, str) and x for x in labels):
            raise source.error("expected a list of label names", "incident_labels")
        concurrency = int(source.get("concurrency", DEFAULT_CONCURRENCY))
        if concurrency < 1:
            raise source.error("expected a whole number >= 1", "concurrency")
        url = str(source.get("url", DEFAULT_URL))
        if not re.match(r"^https?://", url):
            raise source.error("expected an http(s) URL, e.g. https://gitlab.example.org", "url")
        named = [source.get("project")] if source.get("project") else list(projects or ())
        group = source.get("group")
        return cls(
            projects=tuple(str(p).strip("/") for p in named),
            group=str(group).strip("/") if group else None,
            url=instance_url(url),
            production=source.production,
            incident_labels=tuple(str(x) for x in labels or ()),
            test_reports=cast(TestReports, test_reports),
            max_rate_limit_wait=float(
                source.get("max_rate_limit_wait", DEFAULT_MAX_RATE_LIMIT_WAIT)
            ),
            concurrency=concurrency,
            teams=teams_setting(source, TEAM_MODES),
        )


def instance_url(url: str) -> str:
    """The instance's base URL; python-gitlab adds ``/api/v4`` itself, so a URL copied from
    the API docs (``https://host/api/v4``) works too."""
    url = url.rstrip("/")
    return url[: -len("/api/v4")] if url.endswith("/api/v4") else url


class Reading(Protocol):
    """What a stream reader takes from the connector: the source's API access and settings."""

    @property
    def api(self) -> GitLabAPI: ...

    @property
    def settings(self) -> Settings: ...
