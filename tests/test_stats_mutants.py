"""Statistics, the edge cases mutation testing found untested: the effect size of differences that
never vary, and power reports whose rejection region touches 0 or n or is empty."""
from __future__ import annotations

import math

import pytest
from scipy import stats as sst

from xtomo.evaluation import stats


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's t of a zero-variance sample
@pytest.mark.parametrize("shift, expected", [(1.0, math.inf), (-1.0, -math.inf), (2.5, math.inf)])
def test_d_z_of_constant_differences_is_signed_infinity(shift, expected):
    b = [0.0, 1.0, 2.0, 3.0]
    r = stats.paired_t([x + shift for x in b], b)
    assert r.sd_diff == 0.0 and r.mean_diff == shift
    assert r.d_z == expected


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_d_z_of_identical_samples_is_nan():
    r = stats.paired_t([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert math.isnan(r.d_z)


def test_d_z_is_mean_over_sd_when_the_differences_vary():
    a, b = [1.0, 2.0, 4.0], [0.0, 0.0, 0.0]
    assert stats.paired_t(a, b).d_z == pytest.approx(7 / 3 / math.sqrt(7 / 3), rel=1e-12)


def test_power_report_names_a_region_that_ends_at_zero_or_at_n():
    # n = 5, p0 = 0.5: P(k = 0) = P(k = 5) = 1/32 < 0.05 and P(k <= 1) = 6/32 > 0.05
    less = stats.binomial_power(5, p1=0.2, alternative="less")
    assert (less.reject_at_most, less.reject_at_least) == (0, 6)
    assert "rejects k <= 0, actual alpha 0.0312)" in str(less)
    assert less.power == pytest.approx(sst.binom.pmf(0, 5, 0.2))
    greater = stats.binomial_power(5, p1=0.8, alternative="greater")
    assert (greater.reject_at_most, greater.reject_at_least) == (-1, 5)
    assert "rejects k >= 5, actual alpha 0.0312)" in str(greater)


def test_power_report_of_a_test_that_can_never_reject():
    # n = 3: even k = 0 has two-sided p = 2/8 > 0.05
    r = stats.binomial_power(3)
    assert (r.power, r.size, r.reject_at_most, r.reject_at_least) == (0.0, 0.0, -1, 4)
    assert "rejects never, actual alpha 0)" in str(r)
