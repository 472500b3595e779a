"""The httpx client under the policy, with respx: retries, limits, pagination, ETags, secrets."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import respx

from deliverypulse.errors import (
    AuthError,
    NotFoundError,
    RateLimitError,
    RetryableAPIError,
)
from deliverypulse.http import GraphQLAPIError, HTTPClient, RetryPolicy, next_link
from deliverypulse.redaction import register_secret

API = "https://api.example.test"
SENTINEL = "ghp_SENTINEL_TOKEN_do_not_leak_123"


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(slept: list[float]) -> HTTPClient:
    register_secret(SENTINEL)
    return HTTPClient(
        API,
        token=lambda: SENTINEL,
        source="web",
        token_env="GITHUB_TOKEN",
        policy=RetryPolicy(max_attempts=4, max_rate_limit_wait=300),
        sleep=slept.append,
    )


@respx.mock
def test_sends_bearer_token_and_decodes_json(client: HTTPClient) -> None:
    route = respx.get(f"{API}/repos/o/r").respond(200, json={"id": 1})
    assert client.get("/repos/o/r").data == {"id": 1}
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {SENTINEL}"
    assert client.stats.total == 1


@respx.mock
def test_retries_5xx_bursts_with_backoff(client: HTTPClient, slept: list[float]) -> None:
    respx.get(f"{API}/x").mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(200, json=[1])]
    )
    assert client.get("/x").data == [1]
    assert len(slept) == 2 and slept[1] > slept[0] * 0.5
    assert client.stats.total == 3 and client.stats.retries == 2


@respx.mock
def test_gives_up_after_max_attempts_with_retryable_error(client: HTTPClient) -> None:
    respx.get(f"{API}/x").respond(500, headers={"x-github-request-id": "REQ-1"})
    with pytest.raises(RetryableAPIError) as caught:
        client.get("/x")
    assert caught.value.status == 500 and caught.value.request_id == "REQ-1"
    assert client.stats.total == 4


@respx.mock
def test_connection_errors_and_truncated_json_are_retried(client: HTTPClient) -> None:
    respx.get(f"{API}/x").mock(
        side_effect=[
            httpx.RemoteProtocolError("peer closed connection"),
            httpx.Response(200, content=b'[{"id": 1}, {"i'),
            httpx.Response(200, json=[{"id": 1}]),
        ]
    )
    assert client.get("/x").data == [{"id": 1}]
    assert client.stats.total == 3


@respx.mock
def test_retry_after_is_honoured(client: HTTPClient, slept: list[float]) -> None:
    respx.get(f"{API}/x").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "12"}), httpx.Response(200)]
    )
    client.get("/x")
    assert len(slept) == 1 and 12 <= slept[0] <= 14


@respx.mock
def test_secondary_limit_without_retry_after_waits_a_minute(
    client: HTTPClient, slept: list[float]
) -> None:
    body = {"message": "You have exceeded a secondary rate limit"}
    respx.get(f"{API}/x").mock(
        side_effect=[httpx.Response(403, json=body), httpx.Response(200, json={})]
    )
    client.get("/x")
    assert slept and slept[0] >= 60


@respx.mock
def test_primary_limit_waits_until_reset(client: HTTPClient, slept: list[float]) -> None:
    reset = int(time.time()) + 100
    limited = httpx.Response(
        403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )
    respx.get(f"{API}/x").mock(side_effect=[limited, httpx.Response(200, json={})])
    client.get("/x")
    assert len(slept) == 1 and 95 <= slept[0] <= 103


@respx.mock
def test_primary_limit_beyond_max_wait_raises_with_reset_time(client: HTTPClient) -> None:
    reset = int(time.time()) + 3600
    respx.get(f"{API}/x").respond(
        403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )
    with pytest.raises(RateLimitError) as caught:
        client.get("/x")
    assert caught.value.reset_at is not None
    assert int(caught.value.reset_at.timestamp()) == reset


@respx.mock
def test_budget_seen_in_headers_is_respected_before_sending(
    client: HTTPClient, slept: list[float]
) -> None:
    reset = int(time.time()) + 50
    route = respx.get(f"{API}/x").respond(
        200, json={}, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )
    client.get("/x")
    client.get("/x")  # the budget is spent: wait first, do not burn a request on a 403
    assert route.call_count == 2 and len(slept) == 1 and slept[0] >= 49


@respx.mock
def test_auth_errors_name_source_and_variable_never_the_token(client: HTTPClient) -> None:
    respx.get(f"{API}/repos/o/r").respond(401, json={"message": f"Bad credentials {SENTINEL}"})
    with pytest.raises(AuthError) as caught:
        client.get(f"/repos/o/r?access_token={SENTINEL}", repo="o/r")
    text = str(caught.value)
    assert "web" in text and "GITHUB_TOKEN" in text
    assert SENTINEL not in text and SENTINEL not in (caught.value.url or "")
    assert client.stats.total == 1  # fatal: never retried


@respx.mock
def test_404_names_the_repo(client: HTTPClient) -> None:
    respx.get(f"{API}/repos/o/gone").respond(404, json={"message": "Not Found"})
    with pytest.raises(NotFoundError, match="o/gone"):
        client.get("/repos/o/gone", repo="o/gone")


@respx.mock
def test_link_pagination_follows_next(client: HTTPClient) -> None:
    page2 = f"{API}/items?per_page=2&page=2"
    respx.get(f"{API}/items", params={"page": "2"}).respond(200, json=[3])
    respx.get(f"{API}/items").respond(
        200, json=[1, 2], headers={"Link": f'<{page2}>; rel="next", <{page2}>; rel="last"'}
    )
    pages = [page.data for page in client.paginate("/items", {"per_page": 2})]
    assert pages == [[1, 2], [3]]


@respx.mock
def test_conditional_get_sends_etag_and_returns_not_modified(client: HTTPClient) -> None:
    route = respx.get(f"{API}/items").respond(304)
    pages = list(client.paginate("/items", etag='W/"abc"'))
    assert route.calls.last.request.headers["If-None-Match"] == 'W/"abc"'
    assert len(pages) == 1 and pages[0].not_modified and client.stats.not_modified == 1


def test_next_link_parsing() -> None:
    link = '<https://a/x?page=3>; rel="next", <https://a/x?page=9>; rel="last"'
    assert next_link(link) == "https://a/x?page=3"
    assert next_link('<https://a/x?page=1>; rel="prev"') is None
    assert next_link(None) is None


@respx.mock
def test_graphql_errors_without_data_raise_clearly(client: HTTPClient) -> None:
    respx.post(f"{API}/graphql").respond(
        200, json={"data": None, "errors": [{"message": "Field 'nope' doesn't exist"}]}
    )
    with pytest.raises(GraphQLAPIError, match="nope"):
        client.graphql("{ nope }")


@respx.mock
def test_graphql_not_found_names_repo(client: HTTPClient) -> None:
    respx.post(f"{API}/graphql").respond(
        200,
        json={
            "data": {"repository": None},
            "errors": [{"type": "NOT_FOUND", "path": ["repository"], "message": "Could not"}],
        },
    )
    with pytest.raises(NotFoundError, match="o/r"):
        client.graphql('{ repository(owner:"o", name:"r") { id } }', repo="o/r")


@respx.mock
def test_graphql_partial_data_is_returned_and_logged(
    client: HTTPClient, caplog: pytest.LogCaptureFixture
) -> None:
    respx.post(f"{API}/graphql").respond(
        200,
        json={
            "data": {"a": {"id": 1}, "b": None},
            "errors": [{"type": "NOT_FOUND", "path": ["b"], "message": "gone"}],
        },
    )
    data = client.graphql("{ a b }", allow_partial=True)
    assert data == {"a": {"id": 1}, "b": None}
    assert "partial data" in caplog.text and "at b" in caplog.text


@respx.mock
def test_graphql_rate_limited_waits_for_reset(client: HTTPClient, slept: list[float]) -> None:
    reset = int(time.time()) + 40
    limited = httpx.Response(
        200,
        json={"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    respx.post(f"{API}/graphql").mock(
        side_effect=[limited, httpx.Response(200, json={"data": {"ok": True}})]
    )
    assert client.graphql("{ ok }") == {"ok": True}
    assert len(slept) == 1 and slept[0] >= 39


@respx.mock
def test_graphql_cursor_pagination(client: HTTPClient) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        after = json.loads(request.content)["variables"]["after"]
        nodes, end, more = ([1, 2], "c2", True) if after is None else ([3], "c3", False)
        return httpx.Response(
            200,
            json={
                "data": {
                    "repo": {
                        "items": {
                            "nodes": nodes,
                            "pageInfo": {"hasNextPage": more, "endCursor": end},
                        }
                    }
                }
            },
        )

    respx.post(f"{API}/graphql").mock(side_effect=answer)
    pages = list(client.graphql_pages("q", {}, ["repo", "items"]))
    assert [conn["nodes"] for _, conn in pages] == [[1, 2], [3]]
