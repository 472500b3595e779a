"""The GitLab connector: gitlab.com or a self-managed instance (``url``), one project, a list,
or a whole group with its subgroups, read through python-gitlab over the core HTTP policy.

Streams: ``deployments`` (production, with approvals and GitLab's own deployment → merge
request links), ``commits``, ``changes`` (merged merge requests), ``test_runs`` (pipelines) and
``incidents``. Each keeps a JSON ``updated_after`` cursor per project, so a nightly rerun with
nothing new costs one request per stream and project.

- https://docs.gitlab.com/api/rest/
- https://python-gitlab.readthedocs.io/
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import ClassVar

from deliverypulse.config import SourceConfig
from deliverypulse.connector import Connector, Option, Page
from deliverypulse.http.requests_adapter import Sleep
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime
from deliverypulse_gitlab.api import GitLabAPI
from deliverypulse_gitlab.changes import read_changes
from deliverypulse_gitlab.commits import read_commits
from deliverypulse_gitlab.context import DEFAULT_BOTS, DEFAULT_HOTFIX, StreamContext
from deliverypulse_gitlab.deployments import read_deployments
from deliverypulse_gitlab.incidents import read_incidents
from deliverypulse_gitlab.pipelines import read_test_runs
from deliverypulse_gitlab.projects import group_projects

DEFAULT_URL = "https://gitlab.com"
TEST_REPORT_MODES = ("production", "all", "none")
#: Projects of one source collected at once when the source does not say.
DEFAULT_CONCURRENCY = 4

Reader = Callable[[StreamContext, str, str | None], Iterator[Page]]
READERS: dict[str, Reader] = {
    "deployments": read_deployments,
    "commits": read_commits,
    "changes": read_changes,
    "test_runs": read_test_runs,
    "incidents": read_incidents,
}


class GitLabConnector(Connector):
    """Deployments, merge requests, commits, pipelines and incidents from GitLab."""

    type_name: ClassVar[str] = "gitlab"
    # Commits before changes: the changes stream then re-tags merge request commits it owns.
    streams: ClassVar[tuple[str, ...]] = tuple(READERS)
    #: The most projects the core may run at once; the ``concurrency`` option lowers it.
    concurrency: ClassVar[int] = 16
    options: ClassVar[Mapping[str, Option]] = {
        "project": Option(str, help="one project path, e.g. group/app"),
        "projects": Option(list, help="several project paths"),
        "group": Option(str, help="every project of a group and its subgroups"),
        "url": Option(str, DEFAULT_URL, help="GitLab instance, e.g. https://gitlab.example.org"),
        "incident_labels": Option(
            list, help="labels that mark an incident issue; default: issues of type incident"
        ),
        "test_reports": Option(
            str,
            "production",
            help="test report summaries for: production (deployed pipelines), all, none",
        ),
        "hotfix": Option(str, DEFAULT_HOTFIX, help="regex on title, branch, labels: a hotfix"),
        "bots": Option(str, DEFAULT_BOTS, help="regex on usernames: bot authors"),
        "max_rate_limit_wait": Option(
            (int, float), 900, help="longest single rate-limit wait (s) before the run stops"
        ),
        "concurrency": Option(
            int, DEFAULT_CONCURRENCY, help="projects of this source collected at once"
        ),
    }

    #: Tests and the benchmark replace this to avoid real sleeps.
    sleep: ClassVar[Sleep] = staticmethod(time.sleep)

    def __init__(self, source: SourceConfig, runtime: Runtime = DEFAULT_RUNTIME) -> None:
        super().__init__(source, runtime)
        self.api = GitLabAPI(
            url=instance_url(str(source.get("url", DEFAULT_URL))),
            token=source.token(),
            source=source.name,
            token_env=source.token_env,
            max_rate_limit_wait=float(source.get("max_rate_limit_wait", 900)),
            sleep=type(self).sleep,
            projects_at_once=int(source.get("concurrency", DEFAULT_CONCURRENCY)),
        )
        self.context = StreamContext(
            api=self.api,
            production=source.production,
            hotfix=re.compile(str(source.get("hotfix", DEFAULT_HOTFIX))),
            bots=re.compile(str(source.get("bots", DEFAULT_BOTS))),
            incident_labels=tuple(str(x) for x in source.get("incident_labels", ()) or ()),
            test_reports=str(source.get("test_reports", "production")),
            since=source.since,
            streams=source.streams or self.streams,
        )
        self._slots = threading.BoundedSemaphore(
            int(source.get("concurrency", DEFAULT_CONCURRENCY))
        )

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
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
        if source.get("test_reports", "production") not in TEST_REPORT_MODES:
            raise source.error(f"expected one of {', '.join(TEST_REPORT_MODES)}", "test_reports")
        for key in ("hotfix", "bots"):
            try:
                re.compile(str(source.get(key, "")))
            except re.error as error:
                raise source.error(f"not a valid regular expression: {error}", key) from None
        labels = source.get("incident_labels")
        if labels is not None and not all(isinstance(x, str) and x for x in labels):
            raise source.error("expected a list of label names", "incident_labels")
        if int(source.get("concurrency", DEFAULT_CONCURRENCY)) < 1:
            raise source.error("expected a whole number >= 1", "concurrency")
        url = str(source.get("url", DEFAULT_URL))
        if not re.match(r"^https?://", url):
            raise source.error("expected an http(s) URL, e.g. https://gitlab.example.org", "url")

    def repos(self) -> Iterable[str]:
        if self.source.get("project"):
            return [str(self.source.get("project")).strip("/")]
        if self.source.get("projects"):
            return [str(p).strip("/") for p in self.source.get("projects")]
        return group_projects(self.api, str(self.source.get("group")).strip("/"))

    def read(self, stream: str, repo: str, cursor: str | None) -> Iterator[Page]:
        reader = READERS[stream]
        with self._slots:
            self.api.current_repo = repo
            try:
                yield from reader(self.context, repo, cursor)
            finally:
                self.api.current_repo = None

    def close(self) -> None:
        self.api.close()


def instance_url(url: str) -> str:
    """The instance's base URL; python-gitlab adds ``/api/v4`` itself, so a URL copied from
    the API docs (``https://host/api/v4``) works too."""
    url = url.rstrip("/")
    return url[: -len("/api/v4")] if url.endswith("/api/v4") else url
