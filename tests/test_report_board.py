"""What a board reads first: the answer in plain words (the analysis's headline, each finding's
plain sentence, "what if we dropped the gate"), the spread of per-repo and per-team ratings,
what counted as a deployment, the change against the previous period and where a figure rests
on weak ground. The analysis values are built here (``report_data.plain_analysis``), so these
tests do not depend on how the analysis words its findings."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import report_data
from markupsafe import escape

import deliverypulse as dp
from deliverypulse.analysis import Analysis, analyze
from deliverypulse.analysis.model import empty_what_if
from deliverypulse.dataset import Dataset
from deliverypulse.dora import summary
from deliverypulse.reporting import board
from deliverypulse.reporting.content import Options
from deliverypulse.reporting.page import build_page, render

TECHNICAL = ("odds ratio", "Fisher", "Mantel", "Mann-Whitney", "Spearman", "p = ", "p < ", "CI ")


@pytest.fixture(scope="module")
def organisation() -> tuple[Dataset, Analysis]:
    ds = report_data.organisation(days=120)
    return ds, report_data.plain_analysis(analyze(ds))


def section(html: str, name: str) -> str:
    """The text of ``<section ... id="name">`` up to its end, whitespace folded."""
    start = html.index(f'id="{name}"')
    return re.sub(r"\s+", " ", html[start : html.index("</section>", start)])


def test_the_answer_comes_first_in_plain_words(organisation: tuple[Dataset, Analysis]) -> None:
    ds, analysis = organisation
    html = render(build_page(ds, Options(), analysis=analysis))
    answer = section(html, "answer")
    assert html.index('id="answer"') < html.index('aria-label="Headline metrics"')
    assert answer.index(str(escape(report_data.PLAIN_HEADLINE))) < answer.index(
        str(escape(report_data.PLAIN_BATCH))
    )
    assert html.count(str(escape(report_data.PLAIN_HEADLINE))) >= 1
    # The crude comparison is there, second and labelled.
    crude = str(escape("Across repos (not like with like): " + report_data.PLAIN_CRUDE))
    assert crude not in answer  # it starts with "Across" already: not labelled twice
    assert str(escape(report_data.PLAIN_CRUDE)) in answer
    assert answer.index(str(escape(report_data.PLAIN_BATCH))) < answer.index(
        str(escape(report_data.PLAIN_CRUDE))
    )
    for word in TECHNICAL:
        assert word not in answer, word
    # The other findings are not repeated in the answer: they follow under "More".
    assert "In plain words:" not in answer
    assert "In plain words:" in section(html, "more-findings")
    # One layer down: every technical sentence and estimate, with its test.
    statistics = section(html, "statistics")
    assert str(escape(analysis.gates.statement)) in statistics
    for estimate in analysis.gates.estimates:
        assert str(escape(estimate.test)) in statistics


def test_a_crude_finding_is_labelled_when_its_sentence_does_not_say_so(
    organisation: tuple[Dataset, Analysis],
) -> None:
    _, analysis = organisation
    crude = replace(analysis.finding("gates_crude"), plain="12 of 61 gated deployments failed.")
    relabelled = replace(
        analysis,
        findings=tuple(crude if item.name == "gates_crude" else item for item in analysis.findings),
    )
    lines = board.answer(relabelled)
    assert lines[-1] == "Across repos (not like with like): 12 of 61 gated deployments failed."
    assert report_data.PLAIN_HEADLINE not in lines  # the headline is not repeated


def test_findings_without_a_plain_sentence_fall_back_to_their_statement() -> None:
    ds = report_data.organisation(days=120)
    found = analyze(ds)
    analysis = replace(
        found,
        gates=replace(found.gates, plain=""),
        batch_size=replace(found.batch_size, plain=""),
        findings=tuple(replace(item, plain="") for item in found.findings),
    )
    page = build_page(ds, Options(), analysis=analysis)
    assert page.headline == analysis.headline
    leading = [item for item in analysis.findings if board.leading(analysis, item)]
    shown = [item.statement for item in leading if item.enough_data]
    within = [line for line in shown if line != analysis.headline]
    label = "Across repos (not like with like): "
    assert sorted(line.removeprefix(label) for line in page.answer) == sorted(dict.fromkeys(within))
    # The other findings follow further down, in "More from the analysis".
    others = [item for item in analysis.findings if item not in leading and item.enough_data]
    assert [text for _, text in page.other_findings] == [item.statement for item in others]


def test_what_if_we_dropped_the_gate(organisation: tuple[Dataset, Analysis]) -> None:
    ds, analysis = organisation
    page = build_page(ds, Options(), analysis=analysis)
    assert page.what_if == tuple(analysis.what_if["plain"])
    assert page.what_if_table is not None
    assert page.what_if_table.columns[0] == "Where"
    assert page.what_if_table.rows == (
        (
            "acme/checkout",
            "21",
            "20 hours",
            "2.7 weeks",
            "23 hours (9.5 hours to 31 hours)",
            "+12 points (\u22125 points to +30 points)",
        ),
        (
            "acme/ledger",
            "9",
            "2.1 days",
            "2.8 weeks",
            "40 hours (12 hours to 2.9 days)",
            "no ungated deployments to compare with",
        ),
    )
    answer = section(render(page), "answer")
    assert "What if we dropped the gate?" in answer
    for sentence in analysis.what_if["plain"]:
        assert str(escape(sentence)) in answer


def test_no_what_if_rows_no_what_if_block() -> None:
    ds = report_data.organisation(days=60)
    analysis = replace(analyze(ds), what_if=empty_what_if())
    page = build_page(ds, Options(), analysis=analysis)
    assert page.what_if == () and page.what_if_table is None
    assert "What if we dropped the gate?" not in render(page)


def test_names_in_the_answer_are_escaped(organisation: tuple[Dataset, Analysis]) -> None:
    ds, analysis = organisation
    what_if = analysis.what_if.assign(
        group=["<script>x</script>", "a&b"], plain=["<b>bold</b> claim", "fine"]
    )
    html = render(build_page(ds, Options(), analysis=replace(analysis, what_if=what_if)))
    assert "<script>x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt; claim" in html


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        (
            (("elite", 1), ("high", 4), ("medium", 1), ("low", 0)),
            "1 of 6 repos elite, 4 high, 1 medium",
        ),
        ((("elite", 0), ("high", 0), ("medium", 2), ("low", 1)), "2 of 3 repos medium, 1 low"),
        ((("elite", 0), ("high", 1), ("not rated", 1)), "1 of 2 repos high, 1 not rated"),
        ((("elite", 0), ("high", 1)), "1 of 1 repo high"),
    ],
)
def test_spread_reads_as_counts(counts: tuple[tuple[str, int], ...], text: str) -> None:
    assert board.Spread("repo", counts).text == text


def test_ratings_are_per_repo_and_per_team(tmp_path: Path) -> None:
    base = report_data.organisation(days=120)
    teams = {
        "acme/web": "shop",
        "acme/api": "shop",
        "acme/checkout": "shop",
        "acme/search": "find",
        "acme/billing": "money",
        "acme/ledger": "money",
    }
    deployments = base.deployments.assign(team=base.deployments["repo"].map(teams))
    ds = Dataset.from_frames(deployments=deployments, changes=base.changes, commits=base.commits)
    page = build_page(ds, Options())
    lead = next(tile for tile in page.tiles if tile.metric == "lead_time_median_hours")
    assert [spread.unit for spread in lead.spreads] == ["repo", "team"]
    by_team = summary(ds, by=["team"])
    expected = by_team["lead_time_cluster"].astype(object).value_counts()
    team_spread = lead.spreads[1]
    assert team_spread.total == 3
    for cluster in board.CLUSTERS:
        assert team_spread.count(cluster) == expected.get(cluster, 0)
    assert page.teams_table is not None
    assert {row[0] for row in page.teams_table.rows} == {"shop", "find", "money"}
    html = render(page)
    assert 'data-unit="team"' in html and "<h3>Per team</h3>" in html
    rework = next(tile for tile in page.tiles if tile.metric == "rework_rate")
    assert rework.spreads == () and not rework.rated


def test_warnings_where_figures_rest_on_weak_ground(
    organisation: tuple[Dataset, Analysis],
) -> None:
    _, analysis = organisation
    deployments = analysis.deployments
    known = deployments.loc[deployments["gated"].notna()]
    both = known.groupby("repo")["gated"].nunique()
    mixed = sorted(both.index[both == 2])
    inside = known.loc[known["repo"].isin(mixed)]
    gated = int(inside["gated"].astype(bool).sum())
    outcomes = pd.DataFrame({"recovery": pd.to_timedelta(["0s", "0s", "30s", "2h", "5h"])})
    few = replace(analysis, deployments=deployments.loc[~deployments["repo"].isin(mixed[1:])])
    shipped_nothing = deployments.assign(batch_changes=0)
    lines = board.warnings(replace(few, deployments=shipped_nothing), outcomes)
    text = " ".join(lines)
    assert "3 of 5 recoveries took a minute or less" in text
    succeeded = int((~shipped_nothing["failed"].astype(bool)).sum())
    assert f"{succeeded} of {succeeded} successful deployments shipped no change" in text
    one = known.loc[known["repo"] == mixed[0]]
    ones_gated = int(one["gated"].astype(bool).sum())
    assert (
        f"in the 1 repo that deploy both ways there are {ones_gated} gated and "
        f"{len(one) - ones_gated} ungated deployments"
    ) in text or len(one) - ones_gated >= board.FEW_DEPLOYMENTS
    assert gated > 0
    assert lines[-1].startswith("These are patterns in the delivery history, not proof of cause")


def test_what_counted_as_a_deployment_for_each_source() -> None:
    at = pd.date_range("2024-03-01", periods=6, freq="D", tz="UTC")
    deployments = pd.DataFrame(
        {
            "source": ["git"] * 3 + ["gh"] * 3,
            "repo": ["o/lib"] * 3 + ["o/app"] * 3,
            "deployment_id": ["v1.0.0", "v1.1.0", "v1.2.0", "11", "12", "13"],
            "environment": ["production"] * 3 + ["production", "staging", "production"],
            "ref": ["v1.0.0", "v1.1.0", "v1.2.0", "main", "main", "main"],
            "sha": ["a", "b", "c", "d", "e", "f"],
            "url": [None, None, None, "https://x/1", "https://x/2", "https://x/3"],
            "created_at": at,
            "finished_at": at,
            "approval_required": [None, None, None, True, False, True],
        }
    )
    outcomes = deployments.loc[deployments["environment"] == "production"]
    lines = board.deployment_sources(deployments, outcomes)
    assert lines == (
        "gh: 2 production deployment attempts to “production”, from deployment records kept "
        "by the provider, each with its own status; 2 of them waited for an approval; "
        "not counted: “staging” (1).",
        "git: 3 production deployment attempts to “production”, from release tags in git (a "
        "tag is a deployment at the moment it was made).",
    )


def test_the_page_says_what_counted_and_how_the_last_period_changed() -> None:
    ds = report_data.organisation(days=120)
    page = build_page(ds, Options())
    html = render(page)
    counted = section(html, "counted")
    sources = sorted(ds.deployments["source"].astype(str).unique())
    for source in sources:
        assert f"{source}: " in counted
    per_month = dp.metrics(ds, period="month")
    last, before = per_month.iloc[-1], per_month.iloc[-2]
    assert page.trends_change is not None
    change = int(last["deployments"]) - int(before["deployments"])
    signed = "no change" if change == 0 else f"{change:+d}".replace("-", "\u2212")
    assert f"{int(last['deployments'])} deployments ({signed})" in page.trends_change
    assert f"{int(last['lead_time_count'])} changes" in page.trends_change
    assert (
        f"{int(last['failed_deployments'])} of {int(last['deployment_attempts'])}"
        in page.trends_change
    )
    assert page.trends_change.startswith(f"{pd.Timestamp(last['period']):%B %Y}")
    # Every trend row says what it rests on.
    assert page.trends_table is not None
    assert "Changes it rests on" in page.trends_table.columns
    assert page.trends_table.rows[-1][3] == f"{int(last['lead_time_count']):,}"


def test_the_batch_chart_and_its_sentence_agree_or_say_why_not(
    organisation: tuple[Dataset, Analysis],
) -> None:
    _, analysis = organisation
    groups = analysis.batch_size.groups.copy()
    groups["cfr_low"] = [0.01, 0.02, 0.03, 0.2]
    groups["cfr_high"] = [0.08, 0.09, 0.1, 0.4]
    groups["change_failure_rate"] = [0.05, 0.05, 0.06, 0.3]
    no_link = replace(analysis.batch_size, groups=groups, p_value=0.4)
    note = report_data_note(replace(analysis, batch_size=no_link))
    assert note.startswith("Why the bars and the sentence differ: the bars mix repos.")
    biggest = analysis.deployments.loc[analysis.deployments["batch_group"].astype(object) == "8+"]
    top = biggest["repo"].value_counts()
    assert str(top.index[0]) in note
    assert f"of the {len(biggest)} deployments of 8+ changes" in note
    linked = replace(no_link, p_value=0.001)
    assert report_data_note(replace(analysis, batch_size=linked)).startswith(
        "The bars pool every repo"
    )


def report_data_note(analysis: Analysis) -> str:
    from deliverypulse.reporting.content import batch_note

    return batch_note(analysis)


def test_the_gate_chart_shows_like_with_like_first(
    organisation: tuple[Dataset, Analysis],
) -> None:
    ds, analysis = organisation
    page = build_page(ds, Options(), analysis=analysis)
    assert page.gates.svg is not None and page.gates.table is not None
    assert "deploy both ways (like with like)" in page.gates.svg
    assert "All repos pooled (mixes repos)" in page.gates.svg
    deployments = analysis.deployments
    mixed = board.mixed_repos(deployments)
    inside = deployments.loc[deployments["repo"].isin(mixed) & deployments["gated"].notna()]
    rows = {row[0]: row for row in page.gates.table.rows}
    gated = inside.loc[inside["gated"].astype(bool)]
    row = rows["gated (repos that deploy both ways)"]
    assert (row[1], row[2]) == (str(len(gated)), str(int(gated["failed"].sum())))
    assert page.gates.note.startswith("Read the left-hand bars")
    assert page.gates.statement == report_data.PLAIN_HEADLINE
