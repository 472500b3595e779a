"""A repo's team from the code host (a source's ``teams`` option): CODEOWNERS on GitHub and
GitLab, GitHub's team permissions; stored as ``repo_teams`` and used by ``Dataset.with_teams``
where the catalogue names no team.

The servers here are small and local, speaking the real shapes: GitHub's GraphQL executed by
graphql-core against GitHub's schema (an invalid query fails as on github.com), its REST team
lists with Link paging, GitLab's raw-file endpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pandas as pd
import pytest
from deliverypulse_github.teams import CODEOWNERS as CODEOWNERS_QUERY
from fake_github import github_schema
from graphql import graphql_sync, parse, validate

import deliverypulse as dp
from deliverypulse.collector import RunSummary, run_collect
from deliverypulse.config import config_from_dict
from deliverypulse.errors import ConfigError
from deliverypulse.ownership import codeowners_team, permission_rank, strongest_teams
from deliverypulse.store.catalogue import Service
from deliverypulse.streams import Runtime

TOKEN = "ghp_TEAMS_sentinel_0123456789"
NO_SLEEP = Runtime(sleep=lambda seconds: None)


# -- a local code host ------------------------------------------------------------------------


class CodeHost:
    """GitHub (``/graphql``, ``/orgs/...``) and GitLab (``/api/v4/projects/...``) on one
    port. ``files``: repo -> {path: text}; ``grants``: org -> {team slug: {repo: permission}};
    ``page_size`` caps REST pages, as GitHub's 100 does, so a few teams already page."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, str]] = {}
        self.grants: dict[str, dict[str, dict[str, str]]] = {}
        self.forbidden_orgs: set[str] = set()
        self.page_size = 2
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.operations: list[str] = []  # GraphQL operation names
        self._lock = threading.Lock()
        handler = _handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> CodeHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def count(self, fragment: str) -> int:
        with self._lock:
            return sum(1 for _, path in self.requests if fragment in path)

    # GitHub GraphQL: repository.object(expression: "HEAD:path") is a Blob or null.
    def graphql(self, body: dict[str, Any]) -> dict[str, Any]:
        operation = re.search(r"query\s+(\w+)", body["query"])
        self.operations.append(operation.group(1) if operation else "")

        def repository(_info: Any, owner: str, name: str, **_: Any) -> dict[str, Any]:
            files = self.files.get(f"{owner}/{name}", {})

            def git_object(_info: Any, expression: str, **_: Any) -> dict[str, Any] | None:
                path = expression.removeprefix("HEAD:")
                if path not in files:
                    return None
                return {"__typename": "Blob", "text": files[path]}

            return {"object": git_object}

        result = graphql_sync(
            github_schema(),
            body["query"],
            root_value={"repository": repository},
            variable_values=body.get("variables") or {},
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [{"message": e.message} for e in result.errors]
        return payload

    # GitHub REST: GET /orgs/{org}/teams and /orgs/{org}/teams/{slug}/repos.
    def rest(self, path: str) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "orgs" or parts[2] != "teams":
            return 404, {"message": "Not Found"}
        org = parts[1]
        if org not in self.grants:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com"}
        if org in self.forbidden_orgs:
            return 403, {"message": "Must have admin rights to Repository."}
        teams = self.grants[org]
        if len(parts) == 3:
            return 200, [_team(org, slug) for slug in teams]
        if len(parts) == 5 and parts[4] == "repos" and parts[3] in teams:
            return 200, [_minimal_repo(r, p) for r, p in teams[parts[3]].items()]
        return 404, {"message": "Not Found"}

    # GitLab: GET /api/v4/projects/:id/repository/files/:file_path/raw
    def gitlab_file(self, path: str) -> tuple[int, Any]:
        parts = path.split("/")  # still encoded: the project and the file path are one part
        if len(parts) != 9 or parts[5:7] != ["repository", "files"] or parts[8] != "raw":
            return 404, {"message": "404 Not Found"}
        project, file_path = unquote(parts[4]), unquote(parts[7])
        if project not in self.files:
            return 404, {"message": "404 Project Not Found"}
        text = self.files[project].get(file_path)
        if text is None:
            return 404, {"message": "404 File Not Found"}
        return 200, text


def _team(org: str, slug: str) -> dict[str, Any]:
    return {
        "id": zlib.crc32(slug.encode()) % 10_000,
        "node_id": "MDQ6VGVhbTE=",
        "url": f"https://api.github.com/teams/{slug}",
        "html_url": f"https://github.com/orgs/{org}/teams/{slug}",
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "description": "",
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": f"https://api.github.com/teams/{slug}/members{{/member}}",
        "repositories_url": f"https://api.github.com/teams/{slug}/repos",
        "parent": None,
    }


#: GitHub's permission flags per role, as a team's repos list reports them.
_FLAGS = {
    "admin": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    "maintain": {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
    "push": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    "triage": {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
    "pull": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
}
_ROLE_NAMES = {"push": "write", "pull": "read"}


def _minimal_repo(full_name: str, permission: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": zlib.crc32(full_name.encode()) % 100_000,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": full_name,
        "owner": {"login": owner, "type": "Organization"},
        "private": False,
        "html_url": f"https://github.com/{full_name}",
        "permissions": _FLAGS[permission],
        "role_name": _ROLE_NAMES.get(permission, permission),
    }


def _handler(host: CodeHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with host._lock:
                host.requests.append((method, self.path))
            headers: dict[str, str] = {}
            if parts.path.startswith("/api/v4/"):
                if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                    status, payload = 401, {"message": "401 Unauthorized"}
                else:
                    status, payload = host.gitlab_file(parts.path)
            elif self.headers.get("Authorization", "").split()[-1:] != [TOKEN]:
                status, payload = 401, {"message": "Bad credentials"}
            elif method == "POST" and parts.path == "/graphql":
                status, payload = 200, host.graphql(json.loads(raw))
            else:
                status, payload = host.rest(parts.path)
                if status == 200 and isinstance(payload, list):
                    payload, headers = _page(host, parts.path, parse_qs(parts.query), payload)
            if isinstance(payload, str):
                data, kind = payload.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(payload).encode(), "application/json; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _page(
    host: CodeHost, path: str, query: dict[str, list[str]], items: list[Any]
) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` with GitHub's Link header (``per_page`` capped at the host's)."""
    size = min(int(query.get("per_page", ["30"])[0]), host.page_size)
    number = int(query.get("page", ["1"])[0])
    last = max(1, -(-len(items) // size))
    headers = {}
    if number < last:
        params = {k: v[0] for k, v in query.items()} | {"page": str(number + 1)}
        headers["Link"] = f'<{host.url}{path}?{urlencode(params)}>; rel="next"'
    return items[(number - 1) * size : number * size], headers


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[CodeHost]:
    monkeypatch.setenv("CODE_HOST_TOKEN", TOKEN)
    with CodeHost() as server:
        yield server


def collect(out: Path, *sources: dict[str, Any], ok: bool = True) -> RunSummary:
    config = config_from_dict({"output": {"path": str(out)}, "sources": list(sources)})
    summary = run_collect(config, runtime=NO_SLEEP)
    assert summary.ok is ok, summary.lines()
    return summary


def github(host: CodeHost, repos: list[str], **options: Any) -> dict[str, Any]:
    return {
        "type": "github",
        "name": "gh",
        "repos": repos,
        "api_url": host.url,
        "token_env": "CODE_HOST_TOKEN",
        "streams": ["repo_teams"],
        **options,
    }


def gitlab(host: CodeHost, projects: list[str], **options: Any) -> dict[str, Any]:
    return {
        "type": "gitlab",
        "name": "gl",
        "projects": projects,
        "url": host.url,
        "token_env": "CODE_HOST_TOKEN",
        "streams": ["repo_teams"],
        **options,
    }


def stored(out: Path) -> dict[str, tuple[Any, str]]:
    frame = dp.load(out).repo_teams
    return {
        repo: (None if pd.isna(team) else team, origin)
        for repo, team, origin in zip(frame["repo"], frame["team"], frame["origin"], strict=True)
    }


# -- CODEOWNERS, read as the hosts read it ------------------------------------------------


def test_the_last_catch_all_rule_names_the_team_and_people_name_none() -> None:
    assert codeowners_team("* @acme/web\n") == "web"
    # Later rules take precedence; a rule for a folder is not a catch-all; a comment ends it.
    assert codeowners_team("* @acme/first\n/docs/ @acme/docs\n/** @bob @acme/second # x\n") == (
        "second"
    )
    assert codeowners_team("# owners\n* @acme/web\n* @alice\n") is None  # people are not a team
    assert codeowners_team("* @acme/web\n*\n") is None  # a last rule with no owner: none
    assert codeowners_team("/* @acme/top-only\n*.py @acme/python\n") is None
    assert codeowners_team("* jane@example.com @@maintainer @group\n") is None
    assert codeowners_team("") is None
    # GitLab: a section's default owners go to its rules without owners; nested groups.
    gitlab_file = "[Backend] @grp/platform/ops\n*\n^[Docs][2] @grp/docs\n/docs/\n"
    assert codeowners_team(gitlab_file, sections=True) == "ops"
    assert codeowners_team("[x] @grp/team\n*\n") is None  # GitHub has no sections


def test_a_teams_strongest_permission_owns_a_repo_and_ties_go_by_name() -> None:
    ranks = {p: permission_rank({"permissions": flags}) for p, flags in _FLAGS.items()}
    assert ranks == {"admin": 3, "maintain": 2, "push": 1, "triage": 0, "pull": 0}
    assert permission_rank({"role_name": "maintain"}) == 2  # no flags: the role name
    grants = [
        ("zeta", "o/A", 1),
        ("alpha", "o/a", 1),
        ("mid", "o/b", 2),
        ("top", "o/b", 3),
        ("readers", "o/c", 0),
    ]
    assert strongest_teams(grants) == {"o/a": "alpha", "o/b": "top"}


def test_the_query_validates_against_githubs_schema() -> None:
    errors = validate(github_schema(), parse(CODEOWNERS_QUERY))
    assert not errors, [e.message for e in errors]
    assert CODEOWNERS_QUERY.count("object(expression:") == 3


# -- GitHub -----------------------------------------------------------------------------------


def test_github_codeowners_one_request_per_repo(host: CodeHost, tmp_path: Path) -> None:
    host.files = {
        # .github/ comes first, even with a root file beside it.
        "octo/web": {".github/CODEOWNERS": "* @octo/web-team\n", "CODEOWNERS": "* @octo/x\n"},
        "octo/api": {"CODEOWNERS": "* @octo/first\n/docs/ @octo/docs\n* @octo/second\n"},
        "octo/cli": {"docs/CODEOWNERS": "* @alice\n"},
        "octo/lib": {},  # no CODEOWNERS anywhere
    }
    repos = ["octo/web", "octo/api", "octo/cli", "octo/lib"]
    collect(tmp_path, github(host, repos, teams="codeowners"))
    assert stored(tmp_path) == {
        "octo/web": ("web-team", "codeowners"),
        "octo/api": ("second", "codeowners"),
        "octo/cli": (None, "codeowners"),
        "octo/lib": (None, "codeowners"),
    }
    assert host.count("/graphql") == 4 and len(host.requests) == 4

    # The team changes on GitHub; a rerun replaces it, and a team that is gone is gone.
    host.files["octo/web"][".github/CODEOWNERS"] = "* @octo/storefront\n"
    host.files["octo/api"]["CODEOWNERS"] += "* @bob\n"
    collect(tmp_path, github(host, repos, teams="codeowners"))
    again = stored(tmp_path)
    assert again["octo/web"] == ("storefront", "codeowners")
    assert again["octo/api"] == (None, "codeowners") and len(again) == 4


def test_github_teams_by_strongest_permission(host: CodeHost, tmp_path: Path) -> None:
    host.grants = {
        "octo": {
            "platform": {"octo/api": "admin", "octo/web": "push"},
            "web-team": {"octo/web": "maintain"},
            "everyone": {"octo/web": "pull", "octo/api": "pull", "octo/lib": "pull"},
            "beta": {"octo/cli": "push"},
            "alpha": {"octo/cli": "push", "octo/lib": "triage"},
        }
    }
    repos = ["octo/web", "octo/api", "octo/cli", "octo/lib", "alice/dotfiles"]
    collect(tmp_path, github(host, repos, teams="github-teams"))
    assert stored(tmp_path) == {
        "octo/web": ("web-team", "github-teams"),  # maintain beats push
        "octo/api": ("platform", "github-teams"),
        "octo/cli": ("alpha", "github-teams"),  # a tie: the name that sorts first
        "octo/lib": (None, "github-teams"),  # read and triage own nothing
        "alice/dotfiles": (None, "github-teams"),  # a user, not an organisation (404)
    }
    # Read once per organisation, not per repo: 5 teams in pages of 2, then each team's repos.
    assert host.count("/orgs/octo/teams?") == 3
    assert host.count("/orgs/octo/teams/platform/repos") == 1
    assert host.count("/orgs/octo/teams/everyone/repos") == 2  # 3 repos, pages of 2
    assert host.count("/orgs/alice/teams") == 1


def test_a_token_that_cannot_list_teams_says_what_it_needs(host: CodeHost, tmp_path: Path) -> None:
    host.grants = {"octo": {"platform": {"octo/api": "admin"}}}
    host.forbidden_orgs = {"octo"}
    summary = collect(
        tmp_path, github(host, ["octo/api", "octo/web"], teams="github-teams"), ok=False
    )
    (result,) = summary.results
    assert len(result.errors) == 2 and all("read:org" in e for e in result.errors)
    assert host.count("/orgs/octo/teams") == 1  # asked once, not once per repo
    assert TOKEN not in " ".join(summary.lines())


def test_without_the_option_the_stream_is_not_read(host: CodeHost, tmp_path: Path) -> None:
    source = github(host, ["octo/web"])
    with pytest.raises(ConfigError, match="'repo_teams' is read only when 'teams' is set"):
        config_from_dict({"output": {"path": str(tmp_path)}, "sources": [source]})
    config = config_from_dict(
        {"output": {"path": str(tmp_path)}, "sources": [{**source, "streams": []}]}
    )
    summary = run_collect(config, runtime=NO_SLEEP)  # the other streams fail here: no matter
    assert [r.stream for r in summary.results] == [
        "deployments",
        "changes",
        "commits",
        "test_runs",
        "incidents",
    ]
    assert host.operations.count("CodeOwners") == 0 and "Deployments" in host.operations


# -- GitLab -----------------------------------------------------------------------------------


def test_gitlab_codeowners_in_gitlabs_order(host: CodeHost, tmp_path: Path) -> None:
    host.files = {
        "grp/app": {"CODEOWNERS": "* @grp/backend\n", ".gitlab/CODEOWNERS": "* @grp/x\n"},
        "grp/svc": {".gitlab/CODEOWNERS": "[Default] @grp/platform/ops\n*\n/docs/ @grp/docs\n"},
        "grp/docs": {"docs/CODEOWNERS": "* @bob\n"},
        "grp/sub/none": {},
    }
    projects = ["grp/app", "grp/svc", "grp/docs", "grp/sub/none"]
    collect(tmp_path, gitlab(host, projects, teams="codeowners"))
    assert stored(tmp_path) == {
        "grp/app": ("backend", "codeowners"),
        "grp/svc": ("ops", "codeowners"),
        "grp/docs": (None, "codeowners"),
        "grp/sub/none": (None, "codeowners"),
    }
    # Root first, then docs/, then .gitlab/: stop at the first found.
    assert host.count("/projects/grp%2Fapp/") == 1
    assert host.count("/projects/grp%2Fdocs/") == 2
    assert (
        host.count("/projects/grp%2Fsvc/") == 3 and host.count("/projects/grp%2Fsub%2Fnone/") == 3
    )
    assert host.count(".gitlab%2FCODEOWNERS/raw?ref=HEAD") == 2


def test_a_missing_gitlab_project_is_not_found_not_teamless(host: CodeHost, tmp_path: Path) -> None:
    host.files = {"grp/app": {"CODEOWNERS": "* @grp/backend\n"}}
    summary = collect(tmp_path, gitlab(host, ["grp/app", "grp/gone"], teams="codeowners"), ok=False)
    assert summary.results[0].errors and "grp/gone" in summary.results[0].errors[0]
    assert stored(tmp_path) == {"grp/app": ("backend", "codeowners")}


# -- the option is checked when the config is read --------------------------------------------


@pytest.mark.parametrize(
    ("source", "value", "allowed"),
    [
        (github, "github-team", "codeowners, github-teams"),
        (gitlab, "github-teams", "codeowners"),
        (github, "CODEOWNERS", "codeowners, github-teams"),
    ],
)
def test_a_bad_teams_value_is_a_config_error_naming_it(
    host: CodeHost, tmp_path: Path, source: Any, value: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(
            {
                "output": {"path": str(tmp_path)},
                "sources": [{**source(host, ["a/b"]), "teams": value}],
            }
        )
    assert caught.value.key == "teams"
    assert f"{value!r}: expected one of {allowed}" in str(caught.value)


# -- teams in the metrics ---------------------------------------------------------------------


def deployment(repo: str, number: int, day: int, status: str = "success") -> dict[str, Any]:
    return {
        "source": "gh",
        "repo": repo,
        "deployment_id": f"{repo}-{number}",
        "environment": "production",
        "sha": hashlib.sha1(f"{repo}@{number}".encode()).hexdigest(),
        "status": status,
        "created_at": f"2024-03-{day:02d}T10:00:00Z",
        "finished_at": f"2024-03-{day:02d}T10:30:00Z",
    }


def test_metrics_by_team_use_the_host_where_the_catalogue_is_silent(
    host: CodeHost, tmp_path: Path
) -> None:
    host.files = {
        "octo/web": {".github/CODEOWNERS": "* @octo/storefront\n"},
        "octo/api": {"CODEOWNERS": "* @octo/storefront\n"},  # the catalogue says payments
        "octo/billing": {"CODEOWNERS": "* @octo/payments\n"},
        "octo/cli": {"CODEOWNERS": "* @carol\n"},  # no team anywhere
    }
    collect(tmp_path, github(host, list(host.files), teams="codeowners"))
    deployments = (
        [deployment("octo/web", n, n) for n in range(1, 5)]  # 4, one failed
        + [deployment("octo/web", 5, 6, "failure")]
        + [deployment("octo/api", n, n + 10) for n in range(1, 4)]  # 3
        + [deployment("octo/billing", n, n + 1) for n in range(1, 3)]  # 2
        + [deployment("octo/cli", 1, 20)]  # 1
    )
    catalogue = [Service("payments-api", repos=("OCTO/API",), team="payments")]
    ds = dp.Dataset.from_frames(
        deployments=deployments,
        repo_teams=dp.load(tmp_path).repo_teams,
        services=catalogue,
        source="gh",
    )
    # By hand: storefront = web (5 attempts, 1 failed); payments = api (3, by the catalogue)
    # + billing (2, by CODEOWNERS); cli has no team.
    summary = dp.summary(ds, by="team")
    named = summary.loc[summary["team"].notna()].set_index("team")
    assert named["deployment_attempts"].to_dict() == {"payments": 5, "storefront": 5}
    assert named["failed_deployments"].to_dict() == {"payments": 0, "storefront": 1}
    assert named.loc["storefront", "change_failure_rate"] == pytest.approx(1 / 5)
    assert summary.loc[summary["team"].isna(), "deployment_attempts"].tolist() == [1]
    monthly = dp.metrics(ds, by=["team"])
    march = monthly.loc[monthly["team"].notna()].groupby("team")["deployment_attempts"].sum()
    assert march.to_dict() == {"payments": 5, "storefront": 5}
