"""In-process connectors for the core's tests: scripted pages, failures and token use (the old
style: plain stream names and ``read``), and declared streams (``RelayConnector``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import deliverypulse as dp
from deliverypulse.errors import AuthError, RetryableAPIError
from deliverypulse.streams import DEFAULT_RUNTIME, Runtime, StreamRun, WalkCursor


def deployment(repo: str, number: int, **extra: Any) -> dict[str, Any]:
    return {
        "repo": repo,
        "deployment_id": str(number),
        "environment": "production",
        "is_production": True,
        "sha": f"{number:040x}",
        "created_at": f"2024-03-{1 + number % 28:02d}T10:{number % 60:02d}:00Z",
        "finished_at": f"2024-03-{1 + number % 28:02d}T10:{number % 60:02d}:30Z",
        "status": "success",
        **extra,
    }


@dp.register_connector
class ScriptedConnector(dp.Connector):
    """Yields ``pages`` deployments pages of ``page_size`` for each repo; can fail on cue.

    ``fail_at``: page index at which to raise (a retryable API error); ``auth_fail``: raise an
    AuthError that quotes the token; the cursor is the number of pages already read.
    """

    type_name = "scripted"
    streams = ("deployments", "incidents")
    options: ClassVar[dict[str, dp.Option]] = {
        "repos": dp.Option(list, ["org/a", "org/b"], help="repos"),
        "pages": dp.Option(int, 3, help="pages per repo"),
        "page_size": dp.Option(int, 4, help="rows per page"),
        "fail_at": dp.Option(int, help="page index that fails"),
        "fail_repo": dp.Option(str, help="repo that fails"),
        "auth_fail": dp.Option(bool, False, help="fail with an auth error quoting the token"),
    }
    reads: ClassVar[list[tuple[str, str, str | None]]] = []

    def repos(self) -> Iterable[str]:
        return list(self.source.get("repos"))

    def read(self, stream: str, repo: str, cursor: str | None) -> Iterator[dp.Page]:
        ScriptedConnector.reads.append((stream, repo, cursor))
        token = self.source.token()
        if self.source.get("auth_fail"):
            raise AuthError(
                f"bad credentials for token {token} (set {self.source.token_env})",
                status=401,
                url=f"https://api.example.test/repos/{repo}?access_token={token}",
                source=self.source.name,
            )
        if stream == "incidents":
            return
        start = int(cursor or 0)
        size = self.source.get("page_size")
        for page in range(start, self.source.get("pages")):
            fail_repo = self.source.get("fail_repo")
            if self.source.get("fail_at") == page and fail_repo in (None, repo):
                raise RetryableAPIError("server error", status=502, source=self.source.name)
            rows = [deployment(repo, page * size + i) for i in range(size)]
            for row in rows:
                row["url"] = f"https://example.test/{repo}/deployments/{row['deployment_id']}"
                row["creator"] = "deploy-bot" if token else None
            yield dp.Page(records=rows, cursor=str(page + 1))


@dp.register_connector
class ConcurrentScriptedConnector(ScriptedConnector):
    """The scripted connector, with repos collected on eight threads."""

    type_name = "scripted-concurrent"
    concurrency = 8


# --- a declared-stream connector: the core's wiring (runtime, order, shares, cursors, rules) ---

#: Change rows as a provider gives them: facts only (the core classifies them).
FACT_CHANGES: list[dict[str, Any]] = [
    {"change_id": "1", "number": 1, "title": "Add login", "author": "ann", "labels": []},
    {
        "change_id": "2",
        "number": 2,
        "title": 'Revert "Add login"',
        "body": "Reverts octo/web#1\n\nIt broke sign-in.",
        "author": "renovate[bot]",  # a bot by the default pattern, not by this source's
    },
    {
        "change_id": "3",
        "number": 3,
        "title": "Stop the crash",
        "head_ref": "fix/crash",
        "labels": ["urgent-fix"],
        "author": "cleo",
        "author_is_bot": True,  # the provider says so
    },
    {
        "change_id": "4",
        "number": 4,
        "title": "Tidy up",
        "body": "This reverts commit abcdef1.",
        "author": "release-robot",
    },
]


def relay_changes(connector: RelayConnector, run: StreamRun) -> Iterator[dp.Page]:
    """Newest-first style: everything merged after the cursor's ``since``."""
    RelayConnector.log.append(("changes", run.repo, run.cursor, run.runtime))
    if run.cursor.since:
        return
    rows = [
        {**row, "created_at": f"2024-05-0{i}T10:00:00Z", "merged_at": f"2024-05-0{i}T12:00:00Z"}
        for i, row in enumerate(FACT_CHANGES, start=1)
    ]
    run.share("numbers", [row["number"] for row in rows])
    yield dp.Page(rows, WalkCursor(since=rows[-1]["merged_at"]))


def relay_commits(connector: RelayConnector, run: StreamRun) -> Iterator[dp.Page]:
    """The commits of the pull requests the ``changes`` stream read in this run."""
    numbers = run.shared("changes", "numbers", [])
    RelayConnector.log.append(("commits", run.repo, numbers, run.runtime))
    rows = [{"sha": f"{n:040x}", "change_id": str(n)} for n in numbers]
    yield dp.Page(rows, "done")


def relay_incidents(connector: RelayConnector, run: StreamRun) -> Iterator[dp.Page]:
    """Peeks at a stream it does not declare in ``after``: the core refuses."""
    RelayConnector.log.append(("incidents", run.repo, None, run.runtime))
    if connector.source.value("peek", bool):
        run.shared("changes", "numbers")
    return iter(())


@dp.register_connector
class RelayConnector(dp.Connector):
    """Declared streams, listed out of order: ``commits`` must run after ``changes``."""

    type_name = "relay"
    streams = (
        dp.Stream(
            "commits",
            relay_commits,
            reads="the commits of those pull requests",
            after=("changes",),
        ),
        dp.Stream("changes", relay_changes, cursor=WalkCursor, reads="the scripted pull requests"),
        dp.Stream("incidents", relay_incidents),
    )
    options: ClassVar[dict[str, dp.Option]] = {
        "repo": dp.Option(str, "octo/web", help="the one repo"),
        "peek": dp.Option(bool, False, help="incidents read what changes shared, undeclared"),
        "ticket": dp.Option(re.Pattern, r"^[A-Z]+-\d+$", help="regex on ticket keys"),
    }
    log: ClassVar[list[tuple[str, str, Any, Runtime]]] = []
    instances: ClassVar[list[RelayConnector]] = []

    def __init__(self, source: dp.SourceConfig, runtime: Runtime = DEFAULT_RUNTIME) -> None:
        super().__init__(source, runtime)
        RelayConnector.instances.append(self)

    def repos(self) -> Iterable[str]:
        return [self.source.value("repo", str)]
