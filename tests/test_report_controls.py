"""The report's "What catches problems" section and the ``analyze`` CLI's text of it (issue 16).

The controls rows are made by hand here (``CONTROLS``), in the contract's columns, so these
tests check what the page and the terminal show, not how the analysis computes them. Expected
cells are written out by hand: 9 of 140 is 6.4 %, shown as 6 %; 36 hours of lead time read as
"36 hours", 120 hours as "5.0 days"."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import report_data
from click.testing import CliRunner
from markupsafe import escape

import deliverypulse as dp
from deliverypulse.analysis import Analysis, analyze
from deliverypulse.analysis.model import CONTROLS_COLUMNS
from deliverypulse.cli import main
from deliverypulse.cli.analyze import render_text
from deliverypulse.dataset import Dataset
from deliverypulse.reporting import controls
from deliverypulse.reporting.content import Options
from deliverypulse.reporting.page import build_page, render

Z = 1.959963984540054  # the 97.5 % point of the normal distribution


def wilson(failures: int, deployments: int) -> tuple[float, float, float]:
    """The rate and its Wilson 95 % interval, written out from the formula."""
    rate = failures / deployments
    centre = (rate + Z * Z / (2 * deployments)) / (1 + Z * Z / deployments)
    half = (
        Z
        * math.sqrt(rate * (1 - rate) / deployments + Z * Z / (4 * deployments**2))
        / (1 + Z * Z / deployments)
    )
    return rate, centre - half, centre + half


def control(
    name: str,
    label: str,
    with_counts: tuple[int, int],
    without_counts: tuple[int, int],
    verdict: str,
    *,
    within: tuple[float | None, float | None, float | None, float | None] = (None,) * 4,
    both: int = 3,
    unknown: int = 0,
    lead: tuple[float, float] = (10.0, 10.0),
) -> dict[str, object]:
    """One row of ``Analysis.controls``: (deployments, failures) with and without it."""
    rows: dict[str, object] = {"control": name, "label": label}
    for side, (deployments, failures) in (("with", with_counts), ("without", without_counts)):
        rate, low, high = wilson(failures, deployments)
        rows |= {
            f"{side}_deployments": deployments,
            f"{side}_failures": failures,
            f"{side}_rate": rate,
            f"{side}_rate_low": low,
            f"{side}_rate_high": high,
        }
    ratio, low, high, p_value = within
    rows |= {
        "unknown_deployments": unknown,
        "strata_both_ways": both,
        "within_odds_ratio": ratio,
        "within_low": low,
        "within_high": high,
        "within_p": p_value,
        "within_test": "Mantel-Haenszel (stratified by repo)" if ratio is not None else "",
        "adjusted_odds_ratio": ratio,
        "adjusted_low": low,
        "adjusted_high": high,
        "adjusted_p": p_value,
        "adjusted_test": "conditional logistic regression (by repo)" if ratio is not None else "",
        "median_lead_time_with_h": lead[0],
        "median_lead_time_without_h": lead[1],
        "verdict": verdict,
        "plain": f"{label}: {verdict}.",
    }
    return rows


#: In the contract's order (CAB first), which is not the order the page ranks them in.
CONTROLS = pd.DataFrame(
    [
        control(
            "cab_approved",
            "Change board (CAB) approval",
            (12, 3),
            (188, 20),
            "no clear difference",
            within=(1.9, 0.5, 7.2, 0.61),
            lead=(120.0, 20.0),
        ),
        control(
            "gated",
            "Approval gate before production",
            (40, 5),
            (160, 18),
            "cannot tell",
            both=0,
        ),
        control(
            "fully_reviewed",
            "Peer review of every change",
            (140, 9),
            (60, 14),
            "fewer failures",
            within=(0.31, 0.12, 0.78, 0.003),
            lead=(30.0, 12.0),
        ),
        control(
            "tests_passed",
            "Tests passed before deploying",
            (150, 10),
            (30, 8),
            "fewer failures",
            within=(0.22, 0.07, math.inf, 0.02),
            unknown=20,
        ),
        control(
            "automated",
            "Automated deployment",
            (170, 19),
            (30, 4),
            "no clear difference",
            within=(0.8, 0.3, 2.4, 0.41),
            lead=(36.0, 5.0),
        ),
    ],
    columns=list(CONTROLS_COLUMNS),
)
#: What the data can show first; among equals the smaller within-repo p-value.
RANKED = ["fully_reviewed", "tests_passed", "automated", "cab_approved", "gated"]
VERDICT = (
    "Peer review of every change went with fewer failures within the same repos: 9 of 140 "
    "reviewed deployments failed against 14 of 60 others.",
    "Tests passing before deploying went with fewer failures too.",
    "The data cannot tell whether the approval gate helps: no repo deploys both ways.",
)


@pytest.fixture(scope="module")
def organisation() -> tuple[Dataset, Analysis]:
    ds = report_data.organisation(days=120)
    analysis = analyze(ds)
    return ds, replace(analysis, controls=CONTROLS, controls_verdict=VERDICT)


def section(html: str) -> str:
    """The controls section's HTML, whitespace folded."""
    start = html.index('id="controls"')
    return re.sub(r"\s+", " ", html[start : html.index("</section>", start)])


class Rows(HTMLParser):
    """The ``data-control`` of each table row and the cells in it; checks tags balance."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "path", "use", "rect", "line", "stop"}

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.stack: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)
        found = dict(attrs).get("data-control")
        if tag == "tr" and found:
            self.rows.append((found, []))
        if tag == "td" and self.rows and self.stack.count("tr"):
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_section_ranks_controls_with_counts_a_person_can_check(
    organisation: tuple[Dataset, Analysis], tmp_path: Path
) -> None:
    ds, analysis = organisation
    html = dp.report(ds, tmp_path / "report.html", analysis=analysis).read_text("utf-8")
    part = section(html)
    assert "<h2>What catches problems</h2>" in part
    # The first sentence of the verdict comes before the table.
    lead = str(escape(VERDICT[0]))
    assert part.index(lead) < part.index("data-controls-table")
    # The rest of the verdict follows, in its order.
    assert part.index(str(escape(VERDICT[1]))) < part.index(str(escape(VERDICT[2])))
    parsed = Rows()
    parsed.feed(html)
    assert parsed.stack == []  # every element the page opens is closed
    assert [key for key, _ in parsed.rows] == RANKED
    cells = dict(parsed.rows)
    assert cells["fully_reviewed"] == [
        "Peer review of every change",
        "9 of 140 failed, 6 %",  # 6.4 %
        "14 of 60 failed, 23 %",  # 23.3 %
        "Fewer failures, within the same repos",
        "30 hours / 12 hours",
    ]
    assert cells["tests_passed"][1:3] == ["10 of 150 failed, 7 %", "8 of 30 failed, 27 %"]
    assert cells["automated"][1:] == [
        "19 of 170 failed, 11 %",
        "4 of 30 failed, 13 %",
        "No clear difference in failures",
        "36 hours / 5.0 hours",  # it adds waiting and shows no fewer failures
    ]
    assert cells["cab_approved"][1:] == [
        "3 of 12 failed, 25 %",
        "20 of 188 failed, 11 %",
        "No clear difference in failures",
        "5.0 days / 20 hours",
    ]
    assert cells["gated"][3] == "Cannot tell: no repo deploys both with and without it"


def test_the_tests_and_odds_ratios_are_one_layer_down(
    organisation: tuple[Dataset, Analysis],
) -> None:
    ds, analysis = organisation
    part = section(render(build_page(ds, Options(), analysis=analysis)))
    plain, _, technical = part.partition("data-controls-technical")
    for word in ("odds ratio", "Mantel", "logistic", "p = ", "p < "):
        assert word not in plain.split("<details", 1)[0], word
    assert "How this was computed" in technical
    assert "Mantel-Haenszel (stratified by repo), p = 0.003" in technical
    assert "0.31 (0.12 to 0.78)" in technical
    assert "0.22 (0.07 to no upper bound)" in technical  # an unbounded interval in words
    assert "conditional logistic regression (by repo), p = 0.020" in technical
    # The unplaced deployments are counted: 20 for the tests.
    row = re.search(r"<tr><td>Tests passed before deploying</td>(.*?)</tr>", technical)
    assert row is not None
    assert "<td>20</td>" in row.group(1)
    # 9 of 140: 6.4 %, Wilson 3.4 % to 11.8 % (by the formula above).
    _, low, high = wilson(9, 140)
    assert (round(low, 3), round(high, 3)) == (0.034, 0.118)
    assert f"6.4 % ({low * 100:.1f} % to {high * 100:.1f} %)" in technical


def test_the_caveats_are_there_and_name_what_cannot_be_judged(
    organisation: tuple[Dataset, Analysis],
) -> None:
    ds, analysis = organisation
    part = section(render(build_page(ds, Options(), analysis=analysis)))
    caveats = part[part.index("data-controls-caveats") :]
    assert "observational data, not an experiment" in caveats
    assert "applied on purpose" in caveats and "riskiest changes" in caveats
    assert "never varies within a repo" in caveats
    assert (
        "Here no repo deploys both with and without: Approval gate before production."
    ) in caveats
    # People are not the unit: nothing person-level in the section.
    assert "person-" not in part
    assert not set(ds.changes["author"].dropna()) & set(re.findall(r"[\w.-]+", part))


def test_a_chart_shows_failure_rates_with_and_without(
    organisation: tuple[Dataset, Analysis],
) -> None:
    ds, analysis = organisation
    page = build_page(ds, Options(), analysis=analysis)
    assert page.controls is not None and page.controls.svg is not None
    svg = page.controls.svg
    assert svg.startswith('<svg role="img" aria-label="controls" class="chart"')
    # Each bar carries its counts, in the ranked order.
    labels = re.findall(r"(\d+ of \d+)", svg)
    assert labels[:5] == ["9 of 140", "10 of 150", "19 of 170", "3 of 12", "5 of 40"]
    assert labels[5:10] == ["14 of 60", "8 of 30", "4 of 30", "20 of 188", "18 of 160"]


def test_no_controls_says_so_in_one_line(
    organisation: tuple[Dataset, Analysis], tmp_path: Path
) -> None:
    ds, analysis = organisation
    bare = replace(analysis, controls=CONTROLS.iloc[0:0], controls_verdict=())
    part = section(render(build_page(ds, Options(), analysis=bare)))
    assert "What catches problems" in part
    assert f'<p class="note" data-controls-empty>{escape(controls.EMPTY)}</p>' in part
    assert "data-controls-table" not in part and "data-controls-caveats" not in part
    # A dataset with no production deployment at all: the page is mostly empty, the section
    # still says why it has nothing to show.
    empty = dp.report(report_data.no_deployments(), tmp_path / "empty.html")
    html = empty.read_text("utf-8")
    assert str(escape(controls.EMPTY)) in section(html)
    parsed = Rows()
    parsed.feed(html)
    assert parsed.stack == []


def test_ranking_breaks_ties_by_p_value_then_contract_order() -> None:
    frame = CONTROLS.assign(
        verdict="no clear difference", within_p=[0.5, None, 0.5, 0.1, None], adjusted_p=None
    )
    frame.loc[frame["control"] == "automated", "verdict"] = "more failures"
    order = list(controls.ranked(frame)["control"])
    # automated (a clear effect), then the smallest p, then equal p in CONTROLS' order, then
    # those without a p-value in CONTROLS' order.
    assert order == ["automated", "tests_passed", "cab_approved", "fully_reviewed", "gated"]
    # The all-controls model's p-value, where the control was in it, comes before the
    # within-repo one (it is what the verdict rests on).
    frame.loc[frame["control"] == "gated", "adjusted_p"] = 0.01
    assert list(controls.ranked(frame)["control"])[1] == "gated"
    assert controls.share(1, 300) == "1 of 300 failed, under 1 %"
    assert controls.share(0, 0) == "no deployments"
    assert controls.odds(None, None, None) == "cannot estimate"


def test_the_cli_text_has_the_section(
    organisation: tuple[Dataset, Analysis],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds, analysis = organisation
    root = tmp_path / "data"
    ds.save(root)
    monkeypatch.setattr("deliverypulse.cli.analyze.analyze", lambda *_, **__: analysis)
    result = CliRunner().invoke(main, ["analyze", str(root)])
    assert result.exit_code == 0, result.output
    out = result.output
    part = out[out.index("What catches problems") : out.index("\nCaveats")]
    assert part.splitlines()[1].startswith("- Peer review of every change went with fewer")
    numbered = [line.strip() for line in part.splitlines() if re.match(r"\s+\d\. ", line)]
    assert numbered == [
        "1. Peer review of every change: Fewer failures, within the same repos",
        "2. Tests passed before deploying: Fewer failures, within the same repos",
        "3. Automated deployment: No clear difference in failures",
        "4. Change board (CAB) approval: No clear difference in failures",
        "5. Approval gate before production: Cannot tell: no repo deploys both with and without it",
    ]
    assert "with it:    9 of 140 failed, 6 %" in part
    assert "without it: 14 of 60 failed, 23 %" in part
    assert "median lead time with / without: 5.0 days / 20 hours" in part
    assert "observational data" in part and "odds ratio" not in part
    technical = out[out.index("Technical detail") :]
    assert "Peer review of every change: within repo odds ratio 0.31 (0.12 to 0.78)" in (
        re.sub(r"\s+", " ", technical)
    )
    assert "4 repos" not in technical and "20 deployments cannot be placed" in (
        re.sub(r"\s+", " ", technical)
    )


def test_the_cli_text_says_when_there_is_nothing_to_compare(
    organisation: tuple[Dataset, Analysis],
) -> None:
    _, analysis = organisation
    bare = replace(analysis, controls=CONTROLS.iloc[0:0], controls_verdict=())
    text = render_text(bare, 98)
    part = text[text.index("What catches problems") : text.index("\nCaveats")]
    assert re.sub(r"\s+", " ", part).strip() == f"What catches problems {controls.EMPTY}"
    assert "Which controls go with fewer failures?" not in text


def test_nullable_columns_and_a_control_no_deployment_had(
    organisation: tuple[Dataset, Analysis],
) -> None:
    """The analysis may hand nullable dtypes (Int64, Float64) with NA where nothing was
    estimated; a control no deployment had says so instead of a rate."""
    ds, analysis = organisation
    frame = CONTROLS.copy()
    never = frame["control"] == "cab_approved"
    for column in ("with_rate", "with_rate_low", "with_rate_high"):
        frame[column] = frame[column].astype("Float64").mask(never)
    frame.loc[never, ["with_deployments", "with_failures"]] = 0
    frame.loc[never, "verdict"] = "cannot tell"
    counts = [name for name in CONTROLS_COLUMNS if name.endswith(("_deployments", "_failures"))]
    frame[counts] = frame[counts].astype("Int64")
    estimates = ["within_odds_ratio", "within_low", "within_high", "within_p"]
    frame[estimates] = frame[estimates].astype("Float64").mask(never)
    page = build_page(ds, Options(), analysis=replace(analysis, controls=frame))
    assert page.controls is not None and page.controls.table is not None
    assert page.controls.svg is not None
    rows = dict(zip(page.controls.keys, page.controls.table.rows, strict=True))
    assert rows["cab_approved"][1:4] == (
        "no deployments",
        "20 of 188 failed, 11 %",
        "Cannot tell: no deployment had it",
    )
    assert page.controls.keys[-2:] == ("cab_approved", "gated")
