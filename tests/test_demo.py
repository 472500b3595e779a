"""`deliverypulse demo`: its bundled data, and the whole run end to end on a small organisation."""

from __future__ import annotations

import pytest
from fake_github import API_DIR

from deliverypulse.demo.github_server import bundled_text


@pytest.mark.parametrize("name", ["schema.graphql", "rest-examples.json"])
def test_bundled_copy_equals_the_shared_file(name: str) -> None:
    shared = API_DIR / name
    if not shared.is_file():
        pytest.skip(f"no shared copy at {shared}")
    assert bundled_text(name) == shared.read_text(encoding="utf-8")


def test_bundled_gitlab_payloads_equal_the_shared_file() -> None:
    from deliverypulse.demo.gitlab_server import bundled_text as gitlab_text

    shared = API_DIR.parent / "gitlab" / "merge_requests.list.json"
    if not shared.is_file():
        pytest.skip(f"no shared copy at {shared}")
    assert gitlab_text("merge_requests.list.json") == shared.read_text(encoding="utf-8")
