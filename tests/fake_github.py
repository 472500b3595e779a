"""The fake GitHub server, now in the package (``deliverypulse.demo.github_server``) so the demo
can serve it; re-exported here so the connector tests and the benchmark keep their imports.

``github_schema`` here is built from the shared copy (``../shared/api/github/schema.graphql``)
when it exists, so the query tests validate against the reference file itself, not only the
bundled copy (``test_demo.py`` checks the two are equal).
"""

from __future__ import annotations

import functools
from pathlib import Path

from graphql import GraphQLSchema

from deliverypulse.demo.github_server import *  # noqa: F403
from deliverypulse.demo.github_server import (
    FakeGitHub,
    Fault,
    LoggedRequest,
    Repo,
    build_github_schema,
    make_repo,
    serve,
    serve_in_process,
    ts,
)
from deliverypulse.demo.github_server import github_schema as bundled_schema

API_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "api" / "github"
if not API_DIR.is_dir():  # the project root's sibling, as ../shared/api/github
    API_DIR = Path("/work/shared/api/github")


@functools.cache
def github_schema() -> GraphQLSchema:
    """GitHub's schema from the shared reference file (the bundled copy if it is absent)."""
    shared = API_DIR / "schema.graphql"
    if not shared.is_file():
        return bundled_schema()
    return build_github_schema(shared.read_text(encoding="utf-8"))


__all__ = [
    "API_DIR",
    "FakeGitHub",
    "Fault",
    "LoggedRequest",
    "Repo",
    "github_schema",
    "make_repo",
    "serve",
    "serve_in_process",
    "ts",
]
