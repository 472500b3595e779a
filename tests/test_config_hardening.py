"""Config mistakes found by trying bad values: each is one clear ConfigError, at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from deliverypulse.config import load_config
from deliverypulse.errors import ConfigError

GITHUB = '[[sources]]\ntype = "github"\nrepo = "a/b"\ntoken_env = "DP_TEST_TOKEN"\n'
GITLAB = '[[sources]]\ntype = "gitlab"\nproject = "a/b"\ntoken_env = "DP_TEST_TOKEN"\n'


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DP_TEST_TOKEN", "not-a-real-token")


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (GITHUB + 'api_url = "http://[::1"\n', "api_url", "not a valid URL"),
        (GITHUB + 'api_url = "ftp://example.org/api"\n', "api_url", "expected an http:// or"),
        (GITHUB + 'api_url = "https://"\n', "api_url", "has no host"),
        (GITHUB + 'api_url = "http://example.org:99999"\n', "api_url", "not a valid URL"),
        (GITLAB + 'url = "http://[::1"\n', "url", "not a valid URL"),
        (GITLAB + "url = 3\n", "url", "expected an http(s) URL"),
        ("[collect]\nconcurrency = true\n" + GITHUB, "collect.concurrency", "whole number"),
        ('[collect]\nconcurrency = "4"\n' + GITHUB, "collect.concurrency", "whole number"),
        ("[collect]\nconcurrenc = 4\n" + GITHUB, "concurrenc", "did you mean 'concurrency'"),
        ("collect = 3\n" + GITHUB, "collect", "must be a table"),
        ("sourcs = []\n" + GITHUB, "sourcs", "did you mean 'sources'"),
    ],
)
def test_bad_values_are_config_errors(
    write_config: Callable[[str], Path], text: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(text))
    assert caught.value.key == key
    assert message in str(caught.value)


def test_a_bad_date_names_its_key_once(write_config: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(GITHUB + 'since = "yesterday"\n'))
    text = str(caught.value)
    assert text.count("key 'since'") == 1, text
    assert "'yesterday' is not a date" in text


def test_a_bad_url_exits_2_at_once_without_a_traceback(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config(GITHUB + 'api_url = "ftp://example.org"\n')
    done = subprocess.run(
        [sys.executable, "-m", "deliverypulse", "collect", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DP_TEST_TOKEN": "x"},
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "key 'api_url'" in done.stderr
