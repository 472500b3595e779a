"""DORA metrics over a Dataset: lead times, deployment frequency, change failure rate,
recovery time and rework rate, each with its benchmark cluster.

Definitions and options: docs/metrics.md.
"""

from __future__ import annotations

from deliverypulse.metrics.clusters import BENCHMARKS, CLUSTERS, classify
from deliverypulse.metrics.failure import SIGNALS, deployment_outcomes
from deliverypulse.metrics.lead_time import BOT_PATTERN, lead_times
from deliverypulse.metrics.periods import OptionError
from deliverypulse.metrics.table import METRIC_COLUMNS, metrics, summary

__all__ = [
    "BENCHMARKS",
    "BOT_PATTERN",
    "CLUSTERS",
    "METRIC_COLUMNS",
    "SIGNALS",
    "OptionError",
    "classify",
    "deployment_outcomes",
    "lead_times",
    "metrics",
    "summary",
]
