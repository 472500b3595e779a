"""DORA metrics over a Dataset: lead times, deployment frequency, change failure rate,
recovery time and rework rate, each with its benchmark cluster.

Definitions and options: docs/metrics.md.
"""

from __future__ import annotations

from deliverypulse.dora.clusters import BENCHMARKS, CLUSTERS, classify
from deliverypulse.dora.failure import SIGNALS, deployment_outcomes
from deliverypulse.dora.lead_time import BOT_PATTERN, lead_times
from deliverypulse.dora.table import METRIC_COLUMNS, metrics, summary
from deliverypulse.errors import OptionError

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
