"""The report on incidents and teams (issue 14): how many incidents matched no deployment and
why, only when there are incidents, and the ratings per team the catalogue gives.

The organisation and its hand computation are test_incident_attribution's: 9 incidents, 5
charged (G1, P1, P2, P6, INC0001), INC0002 the same event as P6, and 3 unmatched: P4 names
Search (not in the catalogue), P5 names no service, P3 opened 16.6 days after billing's last
deployment (beyond the 7-day look-back)."""

from __future__ import annotations

from pathlib import Path

import test_incident_attribution as org

import deliverypulse as dp
from deliverypulse.reporting.content import Options
from deliverypulse.reporting.incidents import incident_summary
from deliverypulse.reporting.page import build_page


def _dataset() -> dp.Dataset:
    return dp.Dataset.from_frames(
        deployments=org.DEPLOYMENTS,
        incidents=org.INCIDENTS,
        change_requests=org.CHANGE_REQUESTS,
        services=org.CATALOGUE,
    )


def test_the_report_says_how_many_incidents_matched_no_deployment_and_why(
    tmp_path: Path,
) -> None:
    ds = _dataset()
    text = incident_summary(dp.prepare(ds))
    assert text is not None
    assert text.startswith("9 incidents in the data: 5 charged to a production deployment")
    assert "1 incident was the same event seen in a second system" in text
    assert (
        "3 incidents matched no deployment: 1 names a service the catalogue does not list, "
        "1 names no service and comes from a repo with no production deployments, "
        "1 opened with no deployment of its service in the 7 days before." in text
    )
    # The look-back is the one the metrics used.
    longer = incident_summary(dp.prepare(ds, incident_lookback="3D"))
    assert longer is not None and "in the 3 days before" in longer
    html = dp.report(ds, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "data-incidents" in html
    assert "3 incidents matched no deployment" in html


def test_no_incidents_no_incident_sentence(tmp_path: Path) -> None:
    ds = dp.Dataset.from_frames(deployments=org.DEPLOYMENTS, services=org.CATALOGUE)
    assert incident_summary(dp.prepare(ds)) is None
    html = dp.report(ds, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "data-incidents" not in html
    assert "matched no deployment" not in html


def test_every_incident_matched_says_no_reason() -> None:
    matched = [row for row in org.INCIDENTS if row["incident_id"] in {"G1", "P1", "P2"}]
    ds = dp.Dataset.from_frames(
        deployments=org.DEPLOYMENTS, incidents=matched, services=org.CATALOGUE
    )
    text = incident_summary(dp.prepare(ds))
    assert text is not None and text.startswith("3 incidents in the data: 3 charged")
    assert "matched no deployment" not in text and "second system" not in text


def test_the_report_rates_each_catalogue_team_on_its_own(tmp_path: Path) -> None:
    ds = _dataset()
    assert "team" not in ds.deployments.columns  # the catalogue gives the teams
    page = build_page(ds, Options(metrics=dp.MetricOptions()))
    assert page.spread_units == ("repo", "team")
    assert page.teams_table is not None
    rows = {row[0]: row for row in page.teams_table.rows}
    assert set(rows) == {"payments", "storefront"}
    column = page.teams_table.columns.index("Failure rate")
    # By hand (test_incident_attribution): storefront 5 of 7 attempts failed, payments 1 of 2.
    assert rows["storefront"][column] == "71 % (5/7)"
    assert rows["payments"][column] == "50 % (1/2)"
    recovery = page.teams_table.columns.index("Recovery")
    clusters = dict(zip(rows, page.teams_table.clusters, strict=True))
    assert clusters["storefront"]["Failure rate"] == "low"
    assert clusters["storefront"]["Recovery"] == "high"
    assert rows["storefront"][recovery] and rows["payments"][recovery]
    # The headline's failure-rate tile counts the teams by their own rating.
    tile = next(item for item in page.tiles if item.metric == "change_failure_rate")
    team_spread = next(item for item in tile.spreads if item.unit == "team")
    assert team_spread.total == 2
    html = dp.report(ds, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Per team" in html and "storefront" in html and "payments" in html
    assert 'data-spread="change_failure_rate" data-unit="team"' in html
