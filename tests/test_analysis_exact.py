"""The exact conditional test for stratified 2 x 2 tables, against documented results."""

from __future__ import annotations

import math

import pytest
from scipy import stats
from scipy.stats.contingency import odds_ratio

from deliverypulse.analysis.exact import exact_conditional

#: R's ``example(mantelhaen.test)``: penicillin and rabbits (Rabbits array, strata = penicillin
#: level; rows Delay None / 1.5h, columns Cured / Died), as [[a, b], [c, d]] per stratum.
RABBITS = [
    [[0, 6], [0, 5]],
    [[3, 3], [0, 6]],
    [[6, 0], [2, 4]],
    [[5, 1], [6, 0]],
    [[2, 0], [5, 0]],
]


def test_reproduces_rs_documented_rabbits_example() -> None:
    # mantelhaen.test(Rabbits, exact = TRUE): S = 16, p-value = 0.03994,
    # common odds ratio 10.36102, 95 percent CI 1.077401 529.837399.
    result = exact_conditional(RABBITS)
    assert result.statistic == 16
    assert result.p_value == pytest.approx(0.03994, abs=5e-6)
    assert result.odds_ratio == pytest.approx(10.36102, abs=5e-5)
    # R's uniroot stops at a tolerance of about 1e-4 on its search scale; the bounds agree to that.
    assert result.ci_low == pytest.approx(1.077401, rel=1e-3)
    assert 1 / result.ci_high == pytest.approx(1 / 529.837399, abs=1.2e-4)


@pytest.mark.parametrize(
    "table", [[[3, 1], [1, 3]], [[10, 2], [3, 15]], [[1, 9], [11, 3]], [[0, 5], [4, 6]]]
)
def test_one_stratum_is_fishers_exact_test(table: list[list[int]]) -> None:
    """With one stratum the exact conditional test is Fisher's; scipy computes it on its own."""
    result = exact_conditional([table])
    assert result.p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9)
    reference = odds_ratio(table, kind="conditional")
    assert result.odds_ratio == pytest.approx(reference.statistic, rel=1e-6)
    interval = reference.confidence_interval(0.95)
    assert result.ci_low == pytest.approx(interval.low, rel=1e-4, abs=1e-9)
    if math.isinf(interval.high):
        assert math.isinf(result.ci_high)
    else:
        assert result.ci_high == pytest.approx(interval.high, rel=1e-4)


def test_strata_without_information_change_nothing() -> None:
    """A stratum where one group is empty, or nobody failed, carries no information."""
    base = exact_conditional(RABBITS[1:4])
    padded = exact_conditional([*RABBITS[1:4], [[0, 0], [3, 4]], [[0, 7], [0, 2]]])
    assert padded.p_value == pytest.approx(base.p_value)
    assert padded.odds_ratio == pytest.approx(base.odds_ratio)
    assert padded.strata == base.strata == 3


def test_all_failures_in_the_exposed_group_has_an_infinite_estimate() -> None:
    """Every failure gated, none ungated: the estimate is unbounded, the interval is one-sided."""
    result = exact_conditional([[[4, 6], [0, 8]], [[3, 7], [0, 9]]])
    assert math.isinf(result.odds_ratio) and math.isinf(result.ci_high)
    assert result.ci_low > 1
    assert 0 < result.p_value < 0.05
