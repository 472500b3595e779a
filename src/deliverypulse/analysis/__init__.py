"""Batch size and approval gates against change failure rate, recovery and lead time.

``analyze(ds)`` returns an :class:`Analysis`: one row per production deployment, one
:class:`Finding` per comparison (effect sizes, 95 % confidence intervals, tests from scipy and
statsmodels, stratified by repo) and a plain-language verdict. Method: docs/analysis.md.
"""

from __future__ import annotations

from deliverypulse.analysis.model import Analysis, Estimate, Finding

__all__ = ["Analysis", "Estimate", "Finding"]
