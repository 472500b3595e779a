"""`deliverypulse demo`: its bundled data, and the whole run end to end on a small organisation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fake_github import API_DIR

import deliverypulse as dp
from deliverypulse.demo import DEMO_TOKEN, TOKEN_ENV, run_demo
from deliverypulse.demo.github_server import bundled_text
from deliverypulse.reporting import formatting as fmt

STREAMS = ("deployments", "changes", "commits", "test_runs", "incidents")


@pytest.mark.parametrize("name", ["schema.graphql", "rest-examples.json"])
def test_bundled_copy_equals_the_shared_file(name: str) -> None:
    shared = API_DIR / name
    if not shared.is_file():
        pytest.skip(f"no shared copy at {shared}")
    assert bundled_text(name) == shared.read_text(encoding="utf-8")


def test_bundled_gitlab_payloads_equal_the_shared_file() -> None:
    from deliverypulse.demo.gitlab_server import bundled_text as gitlab_text

    shared = API_DIR.parent / "gitlab" / "merge_requests.list.json"
    if not shared.is_file():
        pytest.skip(f"no shared copy at {shared}")
    assert gitlab_text("merge_requests.list.json") == shared.read_text(encoding="utf-8")


# -- the demo, end to end ------------------------------------------------------------------

SCALE = "0.15"  # about four weeks of the six repos: a few seconds per run


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m deliverypulse demo ...`` in a fresh process: the installed entry points,
    package data and connectors are what run, not this test's imports."""
    environment = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    return subprocess.run(
        [sys.executable, "-m", "deliverypulse", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    done = run_cli("--out", str(out), "--scale", SCALE)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def printed_figures(stdout: str) -> dict[str, tuple[str, str]]:
    """{label: (figure, cluster)} from the headline lines the demo printed."""
    figures = {}
    for label in LABELS.values():
        line = next(line for line in stdout.splitlines() if line.startswith(label))
        figure, _, cluster = line[len(label) :].strip().partition("  ")
        figures[label] = (figure.strip(), cluster.strip())
    return figures


def spread_text(ratings: pd.Series) -> str:
    """ "1 of 6 repos elite, 3 high, 2 medium", counted here with pandas."""
    counts = ratings.astype(object).value_counts()
    shown = [(name, counts[name]) for name in ("elite", "high", "medium", "low") if name in counts]
    total = len(ratings)
    unrated = int(ratings.isna().sum())
    if unrated:
        shown.append(("not rated", unrated))
    (first, many), *rest = shown
    return ", ".join([f"{many} of {total} repos {first}", *(f"{n} {name}" for name, n in rest)])


LABELS = {
    "deployments_per_day": "Deployment frequency",
    "lead_time_median_hours": "Lead time for changes",
    "change_failure_rate": "Change failure rate",
    "recovery_median_hours": "Recovery time",
    "rework_rate": "Rework rate",
}


def test_demo_collects_both_sources(demo: tuple[Path, str]) -> None:
    out, stdout = demo
    ds = dp.load(out)
    for table in (ds.deployments, ds.changes):
        assert set(table["source"]) == {"github", "gitlab"}
    assert set(ds.deployments["repo"]) == {
        "acme/payments",
        "acme/ledger",
        "acme/web",
        "acme/search",
        "platform/api",
        "platform/billing-engine",
    }
    for source in ("github", "gitlab"):
        for stream in ("deployments", "changes", "commits", "test_runs"):
            assert re.search(rf"^{source} {stream}: \d+ repos?, [\d,]+ rows fetched", stdout, re.M)
    assert len(ds.incidents) > 0


def test_demo_links_by_commit_graph_and_has_gated_and_ungated_deployments(
    demo: tuple[Path, str],
) -> None:
    ds = dp.load(demo[0])
    links = dp.link(ds)
    assert set(links["source"]) == {"github", "gitlab"}
    assert (~links["is_approximate"].astype(bool)).mean() > 0.9
    production = ds.deployments.loc[ds.deployments["is_production"].astype(bool)]
    gates = production["approval_required"]
    assert gates.eq(True).sum() >= 5
    assert gates.eq(False).sum() >= 5
    assert production["is_rollback"].eq(True).any() or ds.changes["is_revert"].any()


def test_demo_prints_the_summary_and_the_report_shows_it(demo: tuple[Path, str]) -> None:
    out, stdout = demo
    row = dp.summary(dp.load(out)).iloc[0]
    expected = {
        "deployments_per_day": fmt.frequency(row["deployments_per_day"]),
        "lead_time_median_hours": fmt.duration(row["lead_time_median_hours"]),
        "change_failure_rate": fmt.percent(row["change_failure_rate"]),
        "recovery_median_hours": fmt.duration(row["recovery_median_hours"]),
        "rework_rate": fmt.percent(row["rework_rate"]),
    }
    # The rating printed is the spread of the repos' own clusters, never the pooled one.
    by_repo = dp.summary(dp.load(out), by=["repo"])
    clusters = {
        metric: spread_text(by_repo[column])
        for metric, column in (
            ("deployments_per_day", "deployment_frequency_cluster"),
            ("lead_time_median_hours", "lead_time_cluster"),
            ("change_failure_rate", "change_failure_rate_cluster"),
            ("recovery_median_hours", "recovery_cluster"),
        )
    }
    printed = printed_figures(stdout)
    report = (out / "report.html").read_text(encoding="utf-8")
    for metric, label in LABELS.items():
        figure, cluster = printed[label]
        assert figure == expected[metric], label
        assert figure != fmt.MISSING, label
        if metric in clusters:
            assert cluster == clusters[metric], label
        number, _, unit = figure.partition(" ")
        assert f'data-metric="{metric}" data-value="{float(row[metric])!r}"' in report, label
        assert f'<span class="number">{number}</span> <span class="unit">{unit}</span>' in report
    assert f"Report: {out / 'report.html'}" in stdout
    assert f"deliverypulse metrics {out} --by repo" in stdout


def test_demo_config_points_only_at_local_servers(demo: tuple[Path, str]) -> None:
    config = tomllib.loads((demo[0] / "deliverypulse.toml").read_text(encoding="utf-8"))
    urls = [source.get("api_url") or source.get("url") for source in config["sources"]]
    assert len(urls) == 4
    assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+", str(url)) for url in urls), urls
    types = {source["type"] for source in config["sources"]}
    assert types == {"github", "gitlab", "servicenow", "pagerduty"}
    assert DEMO_TOKEN not in (demo[0] / "deliverypulse.toml").read_text(encoding="utf-8")


def test_demo_rerun_into_the_same_folder_keeps_the_same_rows(demo: tuple[Path, str]) -> None:
    out, stdout = demo
    before = {table: len(getattr(dp.load(out), table)) for table in STREAMS}
    report = out / "elsewhere" / "again.html"
    again = run_cli("--out", str(out), "--scale", SCALE, "-o", str(report))
    assert again.returncode == 0, again.stderr
    after = {table: len(getattr(dp.load(out), table)) for table in STREAMS}
    assert after == before
    assert report.is_file()
    assert printed_figures(again.stdout) == printed_figures(stdout)


def test_run_demo_restores_the_environment_and_stops_its_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "the user's own value")
    result = run_demo(tmp_path / "out", scale=0.08)
    assert os.environ[TOKEN_ENV] == "the user's own value"
    assert result.collect.ok and result.report.is_file()
    assert result.summary["deployments"].iloc[0] > 0
    config = tomllib.loads(result.config.read_text(encoding="utf-8"))
    with pytest.raises(httpx.TransportError):
        httpx.get(config["sources"][0]["api_url"] + "/rate_limit", timeout=2)


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path: Path) -> None:
    # The demo writes deliverypulse.toml and adds sources: a user's own folder must be left alone.
    own = tmp_path / "project"
    own.mkdir()
    (own / "deliverypulse.toml").write_text('[[sources]]\ntype = "git"\n', encoding="utf-8")
    with pytest.raises(dp.ConfigError, match="did not write"):
        run_demo(own, scale=0.08)
    assert (own / "deliverypulse.toml").read_text(encoding="utf-8").startswith("[[sources]]")
    assert sorted(p.name for p in own.iterdir()) == ["deliverypulse.toml"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine", encoding="utf-8")
    done = run_cli("--out", str(tmp_path / "data"), "--scale", "0.08")
    assert done.returncode == 2
    assert "not empty" in done.stderr and "Traceback" not in done.stderr


def test_demo_report_shows_the_change_board(demo: tuple[Path, str]) -> None:
    """Issue 13 item 6: the demo's ServiceNow instance is collected by the real connector and
    the report gets a "Change board" section: the table by change type, the within-repo
    sentence and what CAB approval costs."""
    out, _ = demo
    ds = dp.load(out)
    assert set(ds.change_requests["type"].astype(str)) == {"normal", "standard", "emergency"}
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Change board</h2>" in report
    section = report[report.index("data-change-board") :]
    section = section[: section.index("</section>")]
    for label in ("Normal: approved by the change board (CAB)", "Standard: pre-approved"):
        assert label in section
    assert "CAB-approved" in section and "Dropping CAB approval on acme/" in section


def test_demo_pages_its_fast_teams_and_rates_each_team(demo: tuple[Path, str]) -> None:
    """Issue 14 item 5: the fast repos' incidents come from PagerDuty, attributed by the
    catalogue's service and time; the catalogue's four teams get their own ratings."""
    out, stdout = demo
    assert re.search(r"^pagerduty incidents: 1 repo, \d+ rows fetched", stdout, re.M)
    config = tomllib.loads((out / "deliverypulse.toml").read_text(encoding="utf-8"))
    paged = {
        repo: service["incident_services"]
        for service in config["services"]
        if "incident_services" in service
        for repo in service["repos"]
    }
    assert paged == {
        "acme/web": ["web-prod"],
        "acme/search": ["search-prod"],
        "platform/api": ["api-prod"],
    }
    teams = {repo: service["team"] for service in config["services"] for repo in service["repos"]}
    assert teams == {
        "acme/payments": "payments",
        "platform/billing-engine": "payments",
        "acme/ledger": "finance",
        "acme/web": "storefront",
        "acme/search": "discovery",
        "platform/api": "discovery",
    }
    ds = dp.load(out)
    pages = ds.incidents.loc[ds.incidents["source"].astype(str) == "pagerduty"]
    # Every page names a catalogued service (four weeks hold no api page: one in fifty fails).
    assert {"acme/web", "acme/search"} <= set(pages["repo"]) <= set(paged)
    # The fast teams file no incident issues: their incidents are the pages.
    issues = ds.incidents.loc[ds.incidents["source"].astype(str) != "pagerduty"]
    assert not set(issues["repo"]) & set(paged)
    prepared = dp.prepare(ds)
    charged = prepared.incidents.loc[prepared.incidents["source"].astype(str) == "pagerduty"]
    # By hand: the page opened before the first search deployment matches none; every other
    # page is charged by its service to the last successful deployment of its repo before it.
    first = ds.deployments.loc[ds.deployments["repo"] == "acme/search", "created_at"].min()
    early = charged["created_at"] < first
    assert early.sum() == 1
    assert list(charged.loc[early, "reason"]) == ["no_deployment"]
    assert (charged.loc[~early, "charged_by"] == "service").all()
    outcomes = prepared.outcomes
    for row in charged.loc[~early].itertuples():
        deployment = outcomes.iloc[int(row.outcome)]
        assert deployment["repo"] == row.repo and deployment["failed"]
        ok = outcomes.loc[
            (outcomes["repo"] == row.repo)
            & outcomes["is_success"].astype(bool)
            & (outcomes["deployed_at"] <= row.created_at)
        ]
        assert deployment["deployed_at"] == ok["deployed_at"].max()
    by_team = dp.summary(ds, by=["team"])
    assert sorted(by_team["team"]) == ["discovery", "finance", "payments", "storefront"]
    report = (out / "report.html").read_text(encoding="utf-8")
    table = report[report.index("<h3>Per team</h3>") :]
    for team in ("discovery", "finance", "payments", "storefront"):
        assert f"<td>{team}</td>" in table
    assert "1 opened with no deployment of its service in the 7 days before" in report


def test_demo_organisation_differs_in_controls() -> None:
    """Issue 16 item 4, on the organisation the servers serve (full size, no collection):
    storefront merges a share of its pull requests unreviewed, search deploys over red builds
    and deploys some by hand, api deploys some by hand; the others do none of that."""
    from deliverypulse.demo.organisation import build_organisation

    org = build_organisation()
    unreviewed = {
        repo.name: sum(not pull["reviews"] for pull in repo.pulls) / len(repo.pulls)
        for repo in org.repos
    }
    assert 0.2 < unreviewed["web"] < 0.4
    assert unreviewed["payments"] == unreviewed["ledger"] == unreviewed["search"] == 0
    for repo in org.repos:
        production = [d for d in repo.deployments if d["environment"] == "production"]
        red = {
            run["head_sha"]: run["updated_at"]
            for run in repo.runs
            if run["name"] == "CI" and run["conclusion"] == "failure"
        }
        # Deployed over red: a red run on the deployed sha finished before it started.
        over_red = [d for d in production if d["sha"] in red and red[d["sha"]] <= d["createdAt"]]
        by_hand = [d for d in production if d["creator_type"] == "User"]
        assert all(d["creator"] == "github-actions[bot]" for d in production if d not in by_hand)
        if repo.name == "search":
            assert 0.1 < len(over_red) / len(production) < 0.35
            assert 0.1 < len(by_hand) / len(production) < 0.35
            assert {d["creator"] for d in by_hand} <= {"sofia", "tariq", "uma"}
        else:
            assert over_red == [] and by_hand == [], repo.name
    for project in org.projects:
        production = [d for d in project.deployments if d["environment"]["name"] == "production"]
        by_hand = [d for d in production if d["deployable"] is None]
        red = {p["sha"] for p in project.pipelines if p["status"] == "failed"}
        assert not [d for d in production if d["sha"] in red], project.path
        assert not [c for c in project.commits if c["title"].startswith("Trunk fix")]
        if project.path == "platform/api":
            assert 0.05 < len(by_hand) / len(production) < 0.3
            assert all(d["user"]["username"] != "deployer" for d in by_hand)
        else:
            assert by_hand == []
