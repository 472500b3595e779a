"""In-process connectors for the core's tests: scripted pages, failures and token use."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import deliverypulse as dp
from deliverypulse.errors import AuthError, RetryableAPIError


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
