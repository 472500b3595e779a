"""The HTML report: self-contained, shows the numbers of the dataset it was made from, copes with
empty, one-repo and ungated datasets, and the CLI writes it with the documented exit codes."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import report_data
from click.testing import CliRunner
from markupsafe import escape

import deliverypulse as dp
from deliverypulse.analysis import Analysis, analyze
from deliverypulse.cli import main
from deliverypulse.dataset import Dataset
from deliverypulse.dora import MetricOptions, OptionError, summary
from deliverypulse.reporting import formatting as fmt
from deliverypulse.reporting.content import Options
from deliverypulse.reporting.page import build_page


class Metrics(HTMLParser):
    """Collects ``data-metric`` elements (value attribute and text) and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._open: list[tuple[str, int]] = []  # (metric, depth)
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._depth += 1
        metric = attributes.get("data-metric")
        if metric:
            self.values[metric] = attributes.get("data-value") or ""
            self.texts[metric] = ""
            self._open.append((metric, self._depth))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][1] == self._depth:
            self._open.pop()
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for metric, _ in self._open:
            self.texts[metric] += data


def parse(html: str) -> Metrics:
    parser = Metrics()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def organisation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Analysis, str]:
    """Six repos over six months, reported once for the module (the analysis takes seconds)."""
    ds = report_data.organisation()
    analysis = analyze(ds)
    path = dp.report(ds, tmp_path_factory.mktemp("report") / "report.html", analysis=analysis)
    return ds, analysis, path.read_text(encoding="utf-8")


def test_the_page_fetches_nothing(organisation: tuple[Dataset, Analysis, str]) -> None:
    html = organisation[2]
    assert "<script" not in html.lower()
    assert "@import" not in html and "@font-face" not in html
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    for tag, attributes in parse(html).tags:
        assert tag not in ("img", "iframe", "object", "embed", "link", "video", "audio"), tag
        source = attributes.get("src") or ""
        assert not source, f"<{tag} src={source}>"
        href = attributes.get("href") or attributes.get("xlink:href") or ""
        if href.startswith(("http://", "https://", "//")):
            assert tag == "a", f"<{tag}> loads {href}"
        else:
            assert not href or href.startswith("#"), f"<{tag} href={href}>"
    # Charts are inline SVG, one per chart the page promises (the last: what catches problems).
    assert len(re.findall(r"<svg\b", html)) == 5
    assert "data-controls" in html


def test_headline_numbers_are_the_summary(organisation: tuple[Dataset, Analysis, str]) -> None:
    ds, _, html = organisation
    expected = summary(ds).iloc[0]
    page = parse(html)
    for metric in (
        "deployments_per_day",
        "lead_time_median_hours",
        "change_failure_rate",
        "recovery_median_hours",
        "rework_rate",
        "deployments",
        "failed_deployments",
        "deployment_attempts",
    ):
        assert float(page.values[metric]) == pytest.approx(float(expected[metric])), metric
    failed, attempts = int(expected["failed_deployments"]), int(expected["deployment_attempts"])
    assert page.texts["change_failure_rate"].strip() == f"{100 * failed / attempts:.1f} %"
    assert page.texts["deployments"] == str(int(expected["deployments"]))
    lead_hours = float(expected["lead_time_median_hours"])
    assert page.texts["lead_time_median_hours"].split()[0] == f"{lead_hours:.0f}"
    # The rating is the spread of each repo's own cluster, counted here from summary(by=repo).
    by_repo = summary(ds, by=["repo"])
    spreads = {
        attributes["data-spread"]: attributes
        for tag, attributes in page.tags
        if attributes.get("data-spread") and attributes.get("data-unit") == "repo"
    }
    for metric, column in (
        ("deployments_per_day", "deployment_frequency_cluster"),
        ("lead_time_median_hours", "lead_time_cluster"),
        ("change_failure_rate", "change_failure_rate_cluster"),
        ("recovery_median_hours", "recovery_cluster"),
    ):
        counts = by_repo[column].astype(object).value_counts()
        for cluster in ("elite", "high", "medium", "low"):
            assert spreads[metric][f"data-{cluster}"] == str(counts.get(cluster, 0)), metric
    assert "rework_rate" not in spreads
    assert 'class="badge elite"' not in html  # the pooled organisation gets no rating


def test_verdict_repos_and_comparisons_are_shown(
    organisation: tuple[Dataset, Analysis, str],
) -> None:
    ds, analysis, html = organisation
    text = re.sub(r"\s+", " ", html)
    assert analysis.headline
    assert f'<p class="headline" data-headline>{escape(analysis.headline)}</p>' in text
    # Every sentence of the analysis is on the page: the plain ones up top, the technical
    # statements and caveats under "The statistics behind each sentence".
    for line in [*analysis.verdict, *analysis.caveats]:
        assert str(escape(line)) in text, line
    for finding in analysis.findings:
        assert str(escape(finding.statement)) in text, finding.name
    assert text.index("What the data says") < text.index("Headline metrics")  # answer first
    assert text.index("Headline metrics") < text.index("Trends")
    for repo in ds.deployments["repo"].unique():
        assert f"<td>{repo}</td>" in html
    for group in ("1", "2-3", "4-7", "8+"):
        assert f"<td>{group}</td>" in html
    for group in ("gated", "ungated"):  # like with like first, then every repo pooled
        assert f"<td>{group} (repos that deploy both ways)</td>" in html
        assert f"<td>{group} (all repos pooled)</td>" in html
    assert "Definitions" in html and "DORA 2023 clusters" in html


def test_trends_add_up_to_the_headline() -> None:
    ds = report_data.organisation(days=120)
    page = build_page(ds, Options(period="week"))
    assert page.trends_table is not None and page.trends_svg is not None
    total = sum(int(row[1].split()[0]) for row in page.trends_table.rows)
    assert total == int(summary(ds).iloc[0]["deployments"])
    assert page.trends_table.rows[0][0].startswith("week of ")


def test_the_comparisons_count_the_headline_failures() -> None:
    """The report runs the analysis on the same links and options as the headline, so the
    gated and ungated groups together are exactly the deployments the failure rate counts."""
    ds = report_data.organisation(days=120)
    chosen = MetricOptions.build(revert_window="2D", failure_signals=("status", "revert"))
    page = build_page(ds, Options(metrics=chosen))
    expected = summary(ds, revert_window="2D", failure_signals=("status", "revert")).iloc[0]
    assert page.gates.table is not None
    rows = [row for row in page.gates.table.rows if row[0].endswith("(all repos pooled)")]
    assert [row[0] for row in rows] == ["gated (all repos pooled)", "ungated (all repos pooled)"]
    assert sum(int(row[1]) for row in rows) == int(expected["deployment_attempts"])
    assert sum(int(row[2]) for row in rows) == int(expected["failed_deployments"])


def test_a_page_links_and_prepares_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Summary, trends, the per-repo table and the analysis all read one prepared value."""
    import deliverypulse.dora.prepared as prepared_module

    calls = {"prepare": 0, "link": 0}
    prepare, find_links = prepared_module.prepare, prepared_module.find_links

    def counted_prepare(*args: Any, **kwargs: Any) -> Any:
        calls["prepare"] += 1
        return prepare(*args, **kwargs)

    def counted_link(*args: Any, **kwargs: Any) -> Any:
        calls["link"] += 1
        return find_links(*args, **kwargs)

    monkeypatch.setattr(prepared_module, "prepare", counted_prepare)
    monkeypatch.setattr(prepared_module, "find_links", counted_link)
    dp.report(report_data.organisation(days=60), tmp_path / "once.html", bot_pattern="^nobody$")
    assert calls == {"prepare": 1, "link": 1}


def test_a_prepared_value_makes_the_same_page(tmp_path: Path) -> None:
    ds = report_data.organisation(days=60)
    prepared = dp.prepare(ds, since="2024-01-15")
    moment = pd.Timestamp("2024-06-01", tz="UTC").to_pydatetime()
    by_dataset = build_page(
        ds, Options(metrics=MetricOptions.build(since="2024-01-15")), generated_at=moment
    )
    by_prepared = build_page(prepared, Options(), generated_at=moment)
    assert by_prepared == by_dataset
    with pytest.raises(OptionError, match="since"):
        dp.report(prepared, tmp_path / "other.html", since="2024-02-01")


def test_no_deployments_says_so_instead_of_drawing(tmp_path: Path) -> None:
    for ds in (report_data.no_deployments(), Dataset()):
        html = dp.report(ds, tmp_path / "empty.html").read_text(encoding="utf-8")
        assert "<svg" not in html
        assert "No production deployments in this dataset yet" in html
        page = parse(html)
        assert page.texts["change_failure_rate"] == fmt.MISSING
        assert page.values["change_failure_rate"] == ""
        assert "Definitions" in html


def test_one_ungated_repo(tmp_path: Path) -> None:
    ds = report_data.one_repo()
    html = dp.report(ds, tmp_path / "one.html").read_text(encoding="utf-8")
    assert "All deployments come from one repository, solo/app" in html
    assert "No deployment in this dataset waited for an approval gate" in html
    assert 'id="repos"' in html and "<td>solo/app</td>" not in html
    assert "All deployments fall in one month" in html
    assert parse(html).values["failed_deployments"] == "1.0"


def test_unknown_gates_are_not_compared(tmp_path: Path) -> None:
    base = report_data.one_repo()
    deployments = base.deployments.assign(approval_required=pd.NA)
    ds = Dataset.from_frames(deployments=deployments, changes=base.changes, commits=base.commits)
    html = dp.report(ds, tmp_path / "unknown.html").read_text(encoding="utf-8")
    assert "gated and ungated deployments cannot be compared" in html


def test_definitions_follow_the_options(tmp_path: Path) -> None:
    ds = report_data.one_repo()
    html = dp.report(
        ds,
        tmp_path / "options.html",
        failure_signals=("status", "revert"),
        revert_window="3D",
        exclude_bots=False,
        tz="Europe/Berlin",
        benchmarks="2021",
    ).read_text(encoding="utf-8")
    assert "reverted within 3 days" in html
    assert "an incident opened" not in html
    assert "Changes by bots are included" in html
    assert "calendar month in Europe/Berlin" in html
    assert "DORA 2021 clusters" in html


def test_title_is_escaped(tmp_path: Path) -> None:
    html = dp.report(
        report_data.one_repo(), tmp_path / "t.html", title="<script>alert(1)</script> & co"
    ).read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


@pytest.mark.parametrize(
    ("option", "value"), [("period", "year"), ("tz", "Mars/Olympus"), ("benchmarks", "1999")]
)
def test_bad_options_fail_before_writing(tmp_path: Path, option: str, value: Any) -> None:
    target = tmp_path / "never.html"
    with pytest.raises(OptionError):
        dp.report(report_data.one_repo(), target, **{option: value})
    assert not target.exists()


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (0.25, "15 min"),
        (1, "1.0 hour"),
        (30.4, "30 hours"),
        (72, "3.0 days"),
        (24 * 30, "4.3 weeks"),
        (float("nan"), fmt.MISSING),
        (None, fmt.MISSING),
    ],
)
def test_durations_read_naturally(hours: Any, text: str) -> None:
    assert fmt.duration(hours) == text


def test_rates_and_frequencies_read_naturally() -> None:
    assert fmt.percent(0.1234) == "12.3 %"
    assert fmt.frequency(2) == "2.0 per day"
    assert fmt.frequency(3 / 7) == "3.0 per week"
    assert fmt.frequency(0.05) == "1.5 per month"
    assert fmt.split("1.5 per month") == ("1.5", "per month")
    assert fmt.p_value(0.0001) == "p < 0.001"


def test_cli_writes_the_report_and_prints_its_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    report_data.one_repo().save(data)
    output = tmp_path / "out" / "board.html"
    result = CliRunner().invoke(
        main, ["report", str(data), "-o", str(output), "--period", "week", "--title", "Board"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(output)
    html = output.read_text(encoding="utf-8")
    assert "<title>Board</title>" in html
    assert "<td>solo/app</td>" not in html and "solo/app" in html


def test_cli_default_output_is_report_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report_data.one_repo().save(tmp_path / "deliverypulse-data")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").is_file()


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["report", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert "no dataset at" in missing.output
    assert not (tmp_path / "report.html").exists()
    for bad in (["--period", "year"], ["--tz", "Mars/Olympus"]):
        result = runner.invoke(main, ["report", str(tmp_path), *bad])
        assert result.exit_code == 2, (bad, result.output)


@pytest.mark.parametrize("repo", ["team/a$\\frac{x$b", "team/$x^2$", "team/a_b$"])
def test_names_are_drawn_as_the_text_they_are(tmp_path: Path, repo: str) -> None:
    """matplotlib parses "$...$" as mathtext; a repo name is text (it crashed the report)."""
    base = report_data.organisation(days=60)
    renamed = {
        name: f"{repo}{i}" for i, name in enumerate(sorted(base.deployments["repo"].unique()))
    }
    ds = Dataset.from_frames(
        deployments=base.deployments.assign(repo=base.deployments["repo"].map(renamed)),
        changes=base.changes.assign(repo=base.changes["repo"].map(renamed)),
        commits=base.commits.assign(repo=base.commits["repo"].map(renamed)),
    )
    html = dp.report(ds, tmp_path / "math.html").read_text(encoding="utf-8")
    escaped = repo.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"{escaped}0" in html
