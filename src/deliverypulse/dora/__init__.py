"""DORA metrics over a Dataset: lead times, deployment frequency, change failure rate,
recovery time and rework rate, each with its benchmark cluster.

Options are one :class:`MetricOptions`; :func:`prepare` links and classifies once, and every
function here takes its result or a Dataset. Definitions and options: docs/metrics.md.
"""

from __future__ import annotations

from deliverypulse.dora.clusters import BENCHMARKS, CLUSTERS, classify
from deliverypulse.dora.options import SIGNALS, MetricOptions, OptionKeywords, check_signals
from deliverypulse.dora.prepared import (
    Prepared,
    deployment_outcomes,
    lead_times,
    prepare,
    resolve,
)
from deliverypulse.dora.table import METRIC_COLUMNS, metrics, summary
from deliverypulse.errors import OptionError
from deliverypulse.rules import BOT_PATTERN, HOTFIX_PATTERN

__all__ = [
    "BENCHMARKS",
    "BOT_PATTERN",
    "CLUSTERS",
    "HOTFIX_PATTERN",
    "METRIC_COLUMNS",
    "SIGNALS",
    "MetricOptions",
    "OptionError",
    "OptionKeywords",
    "Prepared",
    "check_signals",
    "classify",
    "deployment_outcomes",
    "lead_times",
    "metrics",
    "prepare",
    "resolve",
    "summary",
]
