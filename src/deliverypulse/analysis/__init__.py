"""Batch size and approval gates against change failure rate, recovery and lead time.

``analyze(ds)`` returns an :class:`Analysis`: one row per production deployment, one
:class:`Finding` per comparison (effect sizes, 95 % confidence intervals, tests from scipy and
statsmodels, stratified by repo) and a plain-language verdict. Method: docs/analysis.md.
"""

from __future__ import annotations

from deliverypulse.analysis.batches import DEFAULT_BINS, AnalysisError, deployment_table
from deliverypulse.analysis.core import MIN_WINDOW_DAYS, analyze
from deliverypulse.analysis.model import Analysis, Estimate, Finding

__all__ = [
    "DEFAULT_BINS",
    "MIN_WINDOW_DAYS",
    "Analysis",
    "AnalysisError",
    "Estimate",
    "Finding",
    "analyze",
    "deployment_table",
]
