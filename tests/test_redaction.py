"""A sentinel token must never reach the dataset, the state, logs or exception text."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

import deliverypulse as dp

SENTINEL = "ghp_SENTINEL0123456789abcdefSECRET"


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_sentinel_token_is_never_written_logged_or_raised(
    write_config: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DP_SENTINEL", SENTINEL)
    path = write_config(
        '[output]\npath = "data"\n'
        '[[sources]]\nname = "ok"\ntype = "scripted"\ntoken_env = "DP_SENTINEL"\n'
        '[[sources]]\nname = "leaky"\ntype = "scripted"\ntoken_env = "DP_SENTINEL"\n'
        "auth_fail = true\n"
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(dp.CollectError) as caught:
        dp.collect(path)
    text = str(caught.value)
    assert "bad credentials for token ***" in text  # the message was there, the token was not
    assert SENTINEL not in text
    assert SENTINEL not in repr(caught.value.summary.to_dict())
    assert SENTINEL not in caplog.text
    assert "leaky" in caplog.text
    data = path.parent / "data"
    assert (data / "_deliverypulse" / "state.json").exists()
    assert SENTINEL.encode() not in all_bytes(data)
    assert len(dp.load(data).deployments) == 24  # the good source's rows were stored


def test_api_errors_redact_urls_and_messages() -> None:
    from deliverypulse.redaction import register_secret

    register_secret(SENTINEL)
    error = dp.AuthError(
        f"token {SENTINEL} rejected",
        status=401,
        url=f"https://h.test/x?t={SENTINEL}",
        request_id="ABC:1",
        source="web",
    )
    assert SENTINEL not in str(error)
    assert error.url == "https://h.test/x?t=***"
    assert str(error) == (
        "source 'web': token *** rejected (HTTP 401, https://h.test/x?t=***, request id ABC:1)"
    )
