"""``since`` starts the window of every metric, so the headline and the analysis agree."""

from __future__ import annotations

import pandas as pd
from report_data import organisation

import deliverypulse as dp


def test_since_drops_earlier_deployments_from_headline_and_analysis_alike() -> None:
    ds = organisation(days=120)
    since = pd.Timestamp("2024-03-01", tz="UTC")
    everything = dp.summary(ds).iloc[0]
    windowed = dp.summary(ds, since=since).iloc[0]
    assert windowed.deployment_attempts < everything.deployment_attempts
    assert windowed.start >= since
    analysis = dp.analyze(ds, since=since)
    assert len(analysis.deployments) == windowed.deployment_attempts
    assert int(analysis.deployments["failed"].sum()) == windowed.failed_deployments
    monthly = dp.metrics(ds, period="month", since=since)
    assert monthly["period"].min() >= since
    assert int(monthly["deployment_attempts"].sum()) == windowed.deployment_attempts
