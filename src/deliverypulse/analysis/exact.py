"""Exact conditional inference for a common odds ratio over K stratified 2 x 2 tables.

What R's ``mantelhaen.test(x, exact = TRUE)`` reports, for small or sparse strata where the
Mantel-Haenszel estimate is undefined (a zero cell in every stratum) or its normal
approximation is poor: given every stratum's margins, the number of "exposed and failed"
summed over strata, S, has a distribution that depends only on the common odds ratio psi (a
convolution of the strata's noncentral hypergeometric distributions). The test, the
conditional maximum-likelihood estimate of psi and its exact interval all come from that one
distribution, so the sentence built on them can never contradict itself.

Each table is ``[[a, b], [c, d]]``: rows exposed / not exposed (say gated / ungated), columns
event / no event (failed / not failed). Reference: R's ``stats::mantelhaen.test`` (exact
branch); Mehta, Patel & Gray (1985).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

FloatArray = npt.NDArray[np.float64]
_REL_ERR = 1 + 1e-7  # R's tolerance for "as or less likely than observed"
_TINY = float(np.finfo(float).eps)


@dataclass(frozen=True)
class ExactResult:
    """The exact conditional test of psi = 1 with the conditional MLE of psi and its interval."""

    statistic: int  # S, the observed sum of the strata's top-left cells
    p_value: float
    odds_ratio: float  # conditional MLE (0 or inf at the edges of the support)
    ci_low: float
    ci_high: float
    strata: int  # strata that carry information (both rows and both columns used)


class _Distribution:
    """The distribution of S given every stratum's margins, as a function of psi."""

    def __init__(self, tables: Sequence[Sequence[Sequence[int]]]) -> None:
        density = np.ones(1)
        lo = 0
        for table in tables:
            (a, b), (c, d) = table
            m, n, t = a + b, c + d, a + c  # exposed, not exposed, events
            low, high = max(0, t - n), min(m, t)
            support = np.arange(low, high + 1)
            pmf = stats.hypergeom.pmf(support, m + n, m, t)
            density = np.convolve(density, pmf)
            lo += low
        self.lo = lo
        self.hi = lo + density.size - 1
        self.support = np.arange(self.lo, self.hi + 1, dtype=float)
        with np.errstate(divide="ignore"):
            self.log_null = np.log(density / density.sum())

    def density(self, psi: float) -> FloatArray:
        if psi == 1:
            null: FloatArray = np.exp(self.log_null)
            return null
        weights = self.log_null + math.log(psi) * self.support
        weights = np.exp(weights - weights.max())
        result: FloatArray = weights / weights.sum()
        return result

    def mean(self, psi: float) -> float:
        if psi == 0:
            return float(self.lo)
        if math.isinf(psi):
            return float(self.hi)
        return float((self.support * self.density(psi)).sum())

    def cdf(self, q: int, psi: float, upper: bool = False) -> float:
        """P(S <= q), or P(S >= q) when ``upper``."""
        if psi == 0:
            return float(q <= self.lo) if upper else float(q >= self.lo)
        if math.isinf(psi):
            return float(q <= self.hi) if upper else float(q >= self.hi)
        d = self.density(psi)
        return float(d[self.support >= q].sum() if upper else d[self.support <= q].sum())


def _root(function: Callable[[float], float], low: float, high: float) -> float:
    return float(optimize.brentq(function, low, high, xtol=1e-12, rtol=1e-10, maxiter=500))


def _solve(target: Callable[[float], float], value: float) -> float:
    """psi with ``target(psi) == value``, for a ``target`` increasing in psi (R's approach:
    search (0, 1] directly and (1, inf) through 1 / psi)."""
    at_one = target(1.0)
    if at_one > value:
        return _root(lambda psi: target(psi) - value, 0.0, 1.0)
    if at_one < value:
        return 1.0 / _root(lambda inv: target(1.0 / inv) - value, _TINY, 1.0)
    return 1.0


def exact_conditional(
    tables: Sequence[Sequence[Sequence[int]]], confidence: float = 0.95
) -> ExactResult:
    """The exact conditional test, estimate and interval for K 2 x 2 tables (two-sided)."""
    informative = [
        t
        for t in tables
        if (t[0][0] + t[0][1]) > 0
        and (t[1][0] + t[1][1]) > 0
        and (t[0][0] + t[1][0]) > 0
        and (t[0][1] + t[1][1]) > 0
    ]
    s = int(sum(t[0][0] for t in tables))
    dist = _Distribution(informative)
    s_inf = s - int(sum(t[0][0] for t in tables if t not in informative))
    null = dist.density(1.0)
    observed = null[s_inf - dist.lo] if dist.lo <= s_inf <= dist.hi else 0.0
    p_value = float(min(1.0, null[null <= observed * _REL_ERR].sum()))

    if s_inf == dist.lo:
        estimate = 0.0
    elif s_inf == dist.hi:
        estimate = math.inf
    else:
        estimate = _solve(dist.mean, float(s_inf))

    alpha = (1 - confidence) / 2
    # P(S >= s; psi) rises with psi: the lower bound is where it reaches alpha.
    low = 0.0 if s_inf == dist.lo else _solve(lambda psi: dist.cdf(s_inf, psi, upper=True), alpha)
    if s_inf == dist.hi:
        high = math.inf
    else:
        # P(S <= s; psi) falls with psi: solve 1 - P(S <= s) = 1 - alpha, which rises.
        high = _solve(lambda psi: 1.0 - dist.cdf(s_inf, psi), 1.0 - alpha)
    return ExactResult(s, p_value, estimate, low, high, len(informative))


__all__ = ["ExactResult", "exact_conditional"]
