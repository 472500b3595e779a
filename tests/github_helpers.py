"""Helpers shared by the GitHub connector tests: configs pointing at the fake server, and the
dataset read back as sorted frames so that two runs can be compared row for row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import deliverypulse as dp
from deliverypulse.config import Config, config_from_dict
from deliverypulse.store.schemas import TABLES

#: A sentinel token: tests assert it never shows up in a log line or an exception.
TOKEN = "ghp_SENTINEL_token_0123456789abcdef"
STREAMS = ("deployments", "changes", "commits", "test_runs", "incidents")


def github_config(output: Path, sources: list[dict[str, Any]], concurrency: int = 4) -> Config:
    return config_from_dict(
        {
            "output": {"path": str(output)},
            "sources": sources,
            "collect": {"concurrency": concurrency},
        }
    )


def github_source(url: str, **options: Any) -> dict[str, Any]:
    source = {
        "type": "github",
        "name": "web",
        "repo": "octo/web",
        "api_url": url,
        "token_env": "GITHUB_TOKEN",
    }
    source.update(options)
    return {k: v for k, v in source.items() if v is not None}


def tables(path: Path) -> dict[str, pd.DataFrame]:
    """Every stream's rows, sorted by primary key, index reset: comparable with ``equals``."""
    dataset = dp.load(path)
    out = {}
    for stream in STREAMS:
        frame = getattr(dataset, stream)
        key = [k for k in TABLES[stream].key if k in frame.columns]
        frame = frame.sort_values(key).reset_index(drop=True)
        out[stream] = frame.astype({"source": "string"}) if "source" in frame else frame
    return out


def assert_same_rows(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    for stream in STREAMS:
        assert len(left[stream]) == len(right[stream]), stream
        pd.testing.assert_frame_equal(left[stream], right[stream], check_dtype=False, obj=stream)
