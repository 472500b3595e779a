"""One pass: every public call and CLI command that aggregates (``metrics``, ``summary``,
``analyze``, ``report``) links, builds the commit graph, derives the change table and computes
the deployment outcomes exactly once, however many tables it then reads off the result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import report_data
from click.testing import CliRunner

import deliverypulse as dp
import deliverypulse.dora.prepared as prepared_module
import deliverypulse.linking.assemble as assemble_module
import deliverypulse.linking.attempts as attempts_module
from deliverypulse.cli import main
from deliverypulse.dataset import Dataset

#: What one pass does once: (module, function) counted under the key.
COUNTED = {
    "link": (prepared_module, "find_links"),
    "changes": (prepared_module, "change_table"),
    "outcomes": (prepared_module, "outcome_rows"),
    "graph": (assemble_module, "build"),
    "graph_again": (attempts_module, "build"),
}
ONCE = {"link": 1, "changes": 1, "outcomes": 1, "graph": 1, "graph_again": 0}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    counts = dict.fromkeys(COUNTED, 0)

    def counting(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return function(*args, **kwargs)

        return counted

    for name, (module, attribute) in COUNTED.items():
        monkeypatch.setattr(module, attribute, counting(name, getattr(module, attribute)))
    yield counts


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """Sixty days of an organisation with commits, failed deployments and rollbacks' kin: the
    batches of failed attempts walk the graph, so a second graph build would show."""
    ds = report_data.organisation(days=60)
    assert (ds.deployments["status"] == "failure").any() and len(ds.commits)
    return ds


@pytest.fixture(scope="module")
def saved(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("one-pass") / "data"
    dataset.save(root)
    return root


def test_metrics_prepares_once(dataset: Dataset, calls: dict[str, int]) -> None:
    table = dp.metrics(dataset, period="week", by="repo", bot_pattern="^nobody$")
    assert len(table) and calls == ONCE


def test_summary_prepares_once(dataset: Dataset, calls: dict[str, int]) -> None:
    table = dp.summary(dataset, by=["repo"])
    assert len(table) and calls == ONCE


def test_analyze_prepares_once(dataset: Dataset, calls: dict[str, int]) -> None:
    result = dp.analyze(dataset)
    assert result is not None and calls == ONCE


def test_report_prepares_once(dataset: Dataset, calls: dict[str, int], tmp_path: Path) -> None:
    dp.report(dataset, tmp_path / "page.html")
    assert calls == ONCE


def test_a_prepared_value_is_never_prepared_again(
    dataset: Dataset, calls: dict[str, int], tmp_path: Path
) -> None:
    prepared = dp.prepare(dataset)
    dp.metrics(prepared, period="month")
    dp.summary(prepared, tz="Europe/Berlin")
    dp.analyze(prepared)
    dp.report(prepared, tmp_path / "page.html")
    dp.lead_times(prepared)
    dp.deployment_outcomes(prepared)
    assert calls == ONCE


@pytest.mark.parametrize(
    "arguments",
    [
        ["metrics", "{root}", "--by", "repo"],
        ["metrics", "{root}", "--summary"],
        ["analyze", "{root}"],
        ["report", "{root}", "--output", "{out}"],
    ],
    ids=["metrics", "metrics-summary", "analyze", "report"],
)
def test_each_command_prepares_once(
    saved: Path, calls: dict[str, int], tmp_path: Path, arguments: list[str]
) -> None:
    filled = [part.format(root=saved, out=tmp_path / "report.html") for part in arguments]
    result = CliRunner().invoke(main, filled)
    assert result.exit_code == 0, result.output
    assert calls == ONCE
