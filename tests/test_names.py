"""Names that reach a URL or a file path are checked where they enter, from config and payloads."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest

import deliverypulse as dp
from deliverypulse.config import config_from_dict
from deliverypulse.errors import ConfigError, DataError
from deliverypulse.names import repo_problem
from deliverypulse.streams import Runtime


@pytest.mark.parametrize(
    "name", ["octo/../../x", "../x", "octo/./x", "octo//x", "octo/x?y=1", "a/b#c", "a/%2e%2e", ""]
)
def test_unsafe_repo_names_are_refused(name: str) -> None:
    assert repo_problem(name) is not None


@pytest.mark.parametrize("name", ["octo/web", "group/sub/project", "my repo", "a.b/c-d_e"])
def test_ordinary_repo_names_pass(name: str) -> None:
    assert repo_problem(name) is None


def test_an_org_listing_cannot_steer_requests_outside_repos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DP_NAMES_TOKEN", "t")
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        if request.url.path.endswith("/graphql"):
            nodes = [{"nameWithOwner": "octo/../../x"}, {"nameWithOwner": "octo/web"}]
            data = {
                "organization": {
                    "repositories": {
                        "pageInfo": {"hasNextPage": False, "endCursor": None},
                        "nodes": nodes,
                    }
                }
            }
            return httpx.Response(200, content=json.dumps({"data": data}).encode())
        body = {"total_count": 0, "workflow_runs": []}
        return httpx.Response(200, content=json.dumps(body).encode())

    config = config_from_dict(
        {
            "sources": [
                {
                    "name": "gh",
                    "type": "github",
                    "org": "octo",
                    "token_env": "DP_NAMES_TOKEN",
                    "api_url": "https://api.github.test",
                    "streams": ["test_runs"],
                }
            ]
        },
        output=tmp_path / "data",
    )
    runtime = Runtime(sleep=lambda _s: None, transport=httpx.MockTransport(answer))
    summary = dp.run_collect(config, runtime=runtime)
    assert not summary.ok
    assert any("'octo/../../x' skipped" in line for line in summary.lines())
    rest = [path for path in paths if not path.endswith("/graphql")]
    assert rest and all(path.startswith("/repos/octo/web/") for path in rest), rest


def test_save_refuses_a_source_name_that_leaves_the_dataset(tmp_path: Path) -> None:
    ds = dp.Dataset.from_frames(
        deployments=pd.DataFrame(
            [
                {
                    "source": "../../escape",
                    "repo": "o/r",
                    "deployment_id": "1",
                    "status": "success",
                    "created_at": "2024-01-01T00:00:00Z",
                }
            ]
        )
    )
    root = tmp_path / "inside" / "data"
    with pytest.raises(DataError, match="cannot be stored"):
        ds.save(root)
    assert not any(tmp_path.rglob("*.parquet"))


def test_a_config_source_name_with_dots_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="key 'name'"):
        config_from_dict({"sources": [{"type": "git", "path": ".", "name": ".."}]})
