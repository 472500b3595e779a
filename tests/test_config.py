"""Config validation: every error names the file, source and key, and what was expected."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import deliverypulse as dp
from deliverypulse.config import load_config


def test_a_valid_config_fills_defaults(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        '[output]\npath = "data"\n\n[[sources]]\ntype = "scripted"\n'
        'repos = ["org/x"]\nsince = 2024-02-01\n'
    )
    config = load_config(path)
    assert config.output == (path.parent / "data").resolve()
    [source] = config.sources
    assert source.name == "scripted"
    assert source.get("pages") == 3
    assert source.since is not None and source.since.isoformat() == "2024-02-01T00:00:00+00:00"
    assert source.production.match("production") and not source.production.match("staging")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[sources]]\ntype = "scripted"\npgaes = 2\n',
            r"deliverypulse.toml, source '\[\[sources\]\] #1 \(scripted\)', key 'pgaes': "
            r"unknown key "
            r"\(did you mean 'pages'\?\)",
        ),
        (
            '[[sources]]\ntype = "scriptd"\n',
            r"key 'type': unknown connector type 'scriptd'; installed connectors: .*scripted",
        ),
        (
            '[[sources]]\ntype = "scripted"\npages = "three"\n',
            r"key 'pages': expected an integer, got 'three'",
        ),
        (
            '[[sources]]\ntype = "scripted"\nsince = "last tuesday"\n',
            r"key 'since': 'last tuesday' is not a date",
        ),
        (
            '[[sources]]\ntype = "scripted"\nproduction = "prod("\n',
            r"key 'production': not a valid regular expression",
        ),
        (
            '[[sources]]\ntype = "scripted"\nstreams = ["builds"]\n',
            r"key 'streams': 'builds' is not a stream of scripted sources",
        ),
        (
            '[outptu]\npath = "x"\n',
            r"key 'outptu': unknown key at top level \(did you mean 'output'",
        ),
        ("[[sources]\n", r"deliverypulse.toml: not valid TOML"),
        ('[output]\npath = "x"\n', r"key 'sources': no \[\[sources\]\] defined"),
        (
            '[[sources]]\ntype = "scripted"\n[[sources]]\ntype = "scripted"\n',
            r"source 'scripted', key 'name': two sources have this name",
        ),
        ('[[sources]]\ntype = "scripted"\nname = "a/b"\n', r"key 'name': use letters"),
    ],
)
def test_config_errors_name_file_source_and_key(
    write_config: Callable[[str], Path], text: str, message: str
) -> None:
    with pytest.raises(dp.ConfigError, match=message):
        load_config(write_config(text))


def test_unset_token_variable_is_named(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DP_TEST_TOKEN", raising=False)
    path = write_config(
        '[[sources]]\nname = "web"\ntype = "scripted"\ntoken_env = "DP_TEST_TOKEN"\n'
    )
    with pytest.raises(
        dp.ConfigError,
        match=r"source 'web', key 'token_env': environment "
        r"variable DP_TEST_TOKEN is not set",
    ):
        load_config(path)
    monkeypatch.setenv("DP_TEST_TOKEN", "value-from-env")
    assert load_config(path).sources[0].token() == "value-from-env"


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(dp.ConfigError, match=r"config file .*nope.toml does not exist"):
        load_config(tmp_path / "nope.toml")


def test_disabled_sources_are_skipped(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        '[[sources]]\nname = "on"\ntype = "scripted"\n'
        '[[sources]]\nname = "off"\ntype = "scripted"\nenabled = false\n'
    )
    assert [s.name for s in load_config(path).sources] == ["on"]
