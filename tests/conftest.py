"""Shared fixtures: a scripted connector registered in-process and config-file helpers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fake_connectors


@pytest.fixture
def scripted_reads() -> list[tuple[str, str, str | None]]:
    fake_connectors.ScriptedConnector.reads.clear()
    return fake_connectors.ScriptedConnector.reads


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a TOML config into tmp_path and return its path."""

    def write(text: str, name: str = "deliverypulse.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
