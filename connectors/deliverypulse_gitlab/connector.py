"""The GitLab connector: gitlab.com or a self-managed instance (``url``), one project, a list,
or a whole group with its subgroups, read through python-gitlab over the core HTTP policy.

Streams: ``deployments`` (every environment, ``is_production`` by tier or the ``production``
regex, with approvals, and GitLab's own deployment → merge request links for production ones
off the default branch),
``commits``, ``changes`` (merged merge requests), ``test_runs`` (pipelines),
``incidents`` and, with the ``teams`` option, ``repo_teams`` (CODEOWNERS). Each but the last
keeps a JSON ``updated_after`` watermark per project, so a nightly rerun with nothing new costs
one request per stream and project.

- https://docs.gitlab.com/api/rest/
- https://python-gitlab.readthedocs.io/
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import ClassVar

from deliverypulse.connector import Connector, Option, Page
from deliverypulse.sources import SourceConfig
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime, Stream, StreamRun, Walks, Watermark
from deliverypulse_gitlab.api import GitLabAPI
from deliverypulse_gitlab.changes import read_changes
from deliverypulse_gitlab.commits import read_commits
from deliverypulse_gitlab.deployments import read_deployments
from deliverypulse_gitlab.incidents import read_incidents
from deliverypulse_gitlab.pipelines import read_test_runs
from deliverypulse_gitlab.projects import group_projects
from deliverypulse_gitlab.settings import OPTIONS, Settings
from deliverypulse_gitlab.teams import read_repo_teams


class GitLabConnector(Connector):
    """Deployments, merge requests, commits, pipelines and incidents from GitLab."""

    type_name: ClassVar[str] = "gitlab"
    streams = (
        Stream(
            "deployments",
            read_deployments,
            cursor=Watermark,
            reads="GET /projects/:id/deployments (updated_after), /environments, "
            "/protected_environments, /deployments/:id (gated, approvals not listed), "
            "/deployments/:id/merge_requests (successful production, off the default branch), "
            "/projects/:id (default_branch, once)",
        ),
        Stream(
            "commits",
            read_commits,
            cursor=Watermark,
            reads="GET /projects/:id/repository/commits (since, with_stats)",
        ),
        Stream(
            "changes",
            read_changes,
            cursor=Watermark,
            reads="GET /projects/:id/merge_requests (merged, updated_after), "
            "/repository/commits (all), /events, /merge_requests/:iid/commits (fast-forwards)",
            # Its merge request commits, tagged with their change, replace the commits
            # stream's rows of the same shas.
            after=("commits",),
        ),
        Stream(
            "test_runs",
            read_test_runs,
            cursor=Watermark,
            reads="GET /projects/:id/pipelines (updated_after), /jobs (keyset), "
            "/pipelines/:id/test_report_summary",
            # The pipelines behind this run's production deployments are owed a test report.
            after=("deployments",),
        ),
        Stream(
            "incidents",
            read_incidents,
            cursor=Walks,
            reads="GET /projects/:id/issues (issue_type=incident or labels, updated_after)",
        ),
        Stream(
            "repo_teams",
            read_repo_teams,
            option="teams",
            reads='with teams = "codeowners": GET /projects/:id/repository/files/'
            ":file_path/raw (CODEOWNERS, docs/, .gitlab/)",
        ),
    )
    #: The most projects the core may run at once; the ``concurrency`` option lowers it.
    concurrency: ClassVar[int] = 16
    options: ClassVar[Mapping[str, Option]] = OPTIONS

    def __init__(self, source: SourceConfig, runtime: Runtime = DEFAULT_RUNTIME) -> None:
        super().__init__(source, runtime)
        self.settings = Settings.from_source(source)
        self.api = GitLabAPI(
            url=self.settings.url,
            token=source.token(),
            source=source.name,
            token_env=source.token_env,
            max_rate_limit_wait=self.settings.max_rate_limit_wait,
            runtime=runtime,
            projects_at_once=self.settings.concurrency,
        )
        self._slots = threading.BoundedSemaphore(self.settings.concurrency)

    @classmethod
    def validate(cls, source: SourceConfig) -> None:
        Settings.from_source(source)

    def repos(self) -> Iterable[str]:
        if self.settings.group is None:
            return list(self.settings.projects)
        return group_projects(self.api, self.settings.group)

    def read_stream(self, run: StreamRun) -> Iterator[Page]:
        """The stream's reader, within the source's ``concurrency`` bound, with the project
        named in this thread's error messages."""
        with self._slots:
            self.api.current_repo = run.repo
            try:
                yield from run.stream.read(self, run)
            finally:
                self.api.current_repo = None

    def close(self) -> None:
        self.api.close()
