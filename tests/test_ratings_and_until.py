"""Ratings do not depend on a month's calendar length (issue 10, item 8), and ``until`` ends the
window of every metric, the analysis and the report as ``since`` starts it (item 10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from report_data import organisation

import deliverypulse as dp


def monthly_deployments(months: list[str]) -> dp.Dataset:
    return dp.Dataset.from_frames(
        deployments=[
            {
                "repo": "acme/app",
                "deployment_id": str(n),
                "environment": "production",
                "sha": f"{n:040x}",
                "created_at": f"{month}-10T09:00:00Z",
                "finished_at": f"{month}-10T10:00:00Z",
                "status": "success",
            }
            for n, month in enumerate(months)
        ]
    )


def test_one_deployment_a_month_rates_the_same_in_february_and_march() -> None:
    months = ["2024-01", "2024-02", "2024-03", "2024-04"]  # 31, 29, 31 and 30 days
    table = dp.metrics(monthly_deployments(months), period="month").set_index("period")
    assert list(table["period_days"]) == [31, 29, 31, 30]
    assert list(table["deployments"]) == [1, 1, 1, 1]
    # One a month is 12 a year, whatever the month: 12 / 365.25 a day.
    assert table["deployments_per_day"].tolist() == [12 / 365.25] * 4
    ratings = set(table["deployment_frequency_cluster"])
    assert ratings == {"medium"}  # at least once a month (2023 clusters), in every month

    # A week is always seven days: one deployment a week rates alike in every week.
    weekly = dp.metrics(monthly_deployments(months), period="week")
    active = weekly.loc[weekly["deployments"] > 0]
    assert set(active["deployments_per_day"]) == {1 / 7}
    assert set(active["deployment_frequency_cluster"]) == {"high"}


def test_until_ends_the_window_of_metrics_analysis_and_report(tmp_path: Path) -> None:
    ds = organisation(days=120)
    since, until = pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")
    everything = dp.summary(ds).iloc[0]
    window = dp.summary(ds, since=since, until=until).iloc[0]
    assert 0 < window.deployment_attempts < everything.deployment_attempts
    assert window.start >= since and window.end < until

    outcomes = dp.deployment_outcomes(ds, since=since, until=until)
    assert outcomes["deployed_at"].between(since, until, inclusive="left").all()
    expected = dp.deployment_outcomes(ds)
    inside = expected["deployed_at"].between(since, until, inclusive="left")
    assert len(outcomes) == int(inside.sum()) == window.deployment_attempts
    lead = dp.lead_times(ds, since=since, until=until)
    assert (lead["deployed_at"] < until).all() and len(lead) == window.lead_time_count

    monthly = dp.metrics(ds, period="month", since=since, until=until)
    assert list(monthly["period"]) == [since]
    assert int(monthly["deployment_attempts"].sum()) == window.deployment_attempts

    analysis = dp.analyze(ds, since=since, until=until)
    assert len(analysis.deployments) == window.deployment_attempts
    assert analysis.deployments["finished_at"].max() < until
    assert analysis.parameters["since"] == str(since)

    page = dp.report(ds, tmp_path / "r.html", since=since, until=until)
    assert "Nothing from" in page.read_text(encoding="utf-8")


def test_cli_until_on_metrics_analyze_and_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    organisation(days=120).save(data)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "deliverypulse", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    rows = json.loads(
        run("metrics", str(data), "--summary", "--format", "json", "--until", "2024-03-01")
    )
    assert rows[0]["end"] < "2024-03-01"
    analysis = json.loads(run("analyze", str(data), "--format", "json", "--until", "2024-03-01"))
    assert max(d["finished_at"] for d in analysis["deployments"]) < "2024-03-01"
    out = tmp_path / "r.html"
    run("report", str(data), "-o", str(out), "--since", "2024-02-01", "--until", "2024-03-01")
    assert "Nothing from 2024-03-01" in out.read_text(encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "deliverypulse", "metrics", str(data), "--until", "soon"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "until" in bad.stderr
