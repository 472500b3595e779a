"""The example notebook runs top to bottom on a dataset and shows the same headline numbers."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from report_data import organisation

import deliverypulse as dp

NOTEBOOK = Path(__file__).parent.parent / "examples" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, Path]:
    data = tmp_path_factory.mktemp("nb") / "deliverypulse-demo"
    organisation(days=120).save(data)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The notebook's default path is relative: run it where the dataset's folder sits.
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(data.parent)}},
    ).execute()
    return notebook, data


def outputs(cell: nbformat.NotebookNode) -> str:
    return "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for o in cell.get("outputs", [])
    )


def test_headline_cell_matches_the_library(
    executed: tuple[nbformat.NotebookNode, Path],
) -> None:
    notebook, data = executed
    headline = dp.summary(dp.load(data)).iloc[0]
    cell = next(c for c in notebook.cells if "headline = dp.summary" in c.source)
    text = outputs(cell)
    assert f"deployments per day: {headline.deployments_per_day:.2f}" in text
    assert f"median lead time: {headline.lead_time_median_hours:.1f} h" in text
    assert f"change failure rate: {headline.change_failure_rate:.1%}" in text
    assert f"({headline.change_failure_rate_cluster})" in text


def test_chart_cell_draws_a_picture(executed: tuple[nbformat.NotebookNode, Path]) -> None:
    notebook, _ = executed
    cell = next(c for c in notebook.cells if "pivot.plot" in c.source)
    assert any("image/png" in o.get("data", {}) for o in cell.outputs)


def test_verdict_cell_prints_the_analysis(executed: tuple[nbformat.NotebookNode, Path]) -> None:
    notebook, data = executed
    verdict = dp.analyze(dp.load(data)).verdict
    cell = next(c for c in notebook.cells if "dp.analyze(prepared)" in c.source)
    assert verdict[0] in outputs(cell)
