"""What the report says about incidents: how many were charged to a deployment, how many were
the same event seen in two systems, and how many matched no deployment and why (from
:attr:`deliverypulse.Prepared.unmatched_incidents`; the rule is
:mod:`deliverypulse.dora.incidents`)."""

from __future__ import annotations

import pandas as pd

from deliverypulse.dora.prepared import Prepared
from deliverypulse.reporting import formatting as fmt


def _lookback(window: pd.Timedelta) -> str:
    if window == pd.Timedelta(days=window.days):
        return f"{window.days} day" if window.days == 1 else f"{window.days} days"
    return fmt.duration(window.total_seconds() / 3600)


def _incidents(count: int) -> str:
    return f"{count} incident" if count == 1 else f"{count} incidents"


def _reason(reason: str, count: int, lookback: str) -> str:
    one = count == 1
    if reason == "unknown_service":
        return f"{count} {'names' if one else 'name'} a service the catalogue does not list"
    if reason == "no_service":
        return (
            f"{count} {'names' if one else 'name'} no service and {'comes' if one else 'come'} "
            "from a repo with no production deployments"
        )
    if reason == "no_deployment":
        return (
            f"{count} opened with no deployment of {'its' if one else 'their'} service in the "
            f"{lookback} before"
        )
    return f"{count} opened, or point to a deployment, outside the period of this report"


ORDER = ("unknown_service", "no_service", "no_deployment", "outside_window")


def incident_summary(prepared: Prepared) -> str | None:
    """One paragraph: how the incidents were counted; ``None`` when there are none.

    "5 incidents: 2 charged to the deployment before them ... 3 incidents matched no deployment:
    2 name a service the catalogue does not list, 1 opened with no deployment of its service in
    the 7 days before." Unmatched incidents are kept and counted here, not dropped."""
    table = prepared.incidents
    if table.empty:
        return None
    duplicates = int((table["duplicate_of"].fillna(-1).astype(int) >= 0).sum())
    counted = int((table["outcome"].fillna(-1).astype(int) >= 0).sum())
    unmatched = prepared.unmatched_incidents
    total = len(table)
    sentences = [
        f"{_incidents(total)} in the data: {counted} charged to a production deployment "
        "(the one its cause shipped in, else the last one of its repo or service before it "
        "opened), where it counts as that deployment's failure and its resolution as the "
        "recovery."
    ]
    if duplicates:
        sentences.append(
            f"{_incidents(duplicates)} {'was' if duplicates == 1 else 'were'} the same event "
            "seen in a second system (a ServiceNow incident that names a PagerDuty or Opsgenie "
            "one) and counted once."
        )
    if len(unmatched):
        counts = unmatched["reason"].value_counts()
        lookback = _lookback(prepared.options.incident_lookback)
        reasons = [
            _reason(reason, int(counts[reason]), lookback) for reason in ORDER if reason in counts
        ]
        sentences.append(
            f"{_incidents(len(unmatched))} matched no deployment: {', '.join(reasons)}. "
            f"{'It is' if len(unmatched) == 1 else 'They are'} kept in the data but "
            "fail no deployment."
        )
    return " ".join(sentences)


__all__ = ["incident_summary"]
