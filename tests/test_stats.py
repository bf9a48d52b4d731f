"""Statistics: hand-computed means, t-tests and intervals, scipy agreement, exact binomial power."""
from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from xtomo.evaluation import stats

# ----------------------------------------------------------------------------- mean_ci

def test_mean_ci_hand_computed():
    r = stats.mean_ci([1, 2, 3, 4, 5])
    sem = math.sqrt(2.5 / 5)  # sample variance 2.5
    assert (r.mean, r.n, r.level) == (3.0, 5, 0.95)
    assert r.sem == pytest.approx(sem) and r.sd == pytest.approx(math.sqrt(2.5))
    assert r.low == pytest.approx(3 - 2.776445 * sem, abs=1e-6)
    assert r.high == pytest.approx(3 + 2.776445 * sem, abs=1e-6)
    assert str(r) == "M = 3, 95% CI [1.037, 4.963] (SD = 1.581, SE = 0.7071, n = 5)"
    r99 = stats.mean_ci([1, 2, 3, 4, 5], level=0.99)
    assert r99.high - r99.mean == pytest.approx(4.604095 * sem, abs=1e-6)  # t_{0.995, 4}
    with pytest.raises(FrozenInstanceError):
        r.mean = 0.0


def test_mean_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        stats.mean_ci([1.0])
    with pytest.raises(ValueError, match="NaN"):
        stats.mean_ci([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        stats.mean_ci([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="level"):
        stats.mean_ci([1.0, 2.0], level=95)


# ----------------------------------------------------------------------------- paired tests

A = [0.31, 0.27, 0.40, 0.22, 0.35, 0.29, 0.33, 0.26]
B = [0.35, 0.30, 0.41, 0.30, 0.36, 0.35, 0.34, 0.31]


def test_paired_t_equals_scipy_and_hand_computation():
    r = stats.paired_t(A, B)
    d = np.subtract(A, B)
    n, mean, sd = d.size, d.mean(), d.std(ddof=1)
    t = mean / (sd / math.sqrt(n))
    assert (r.n, r.df) == (8, 7)
    assert r.t == pytest.approx(t) and r.mean_diff == pytest.approx(mean) and r.sd_diff == pytest.approx(sd)
    assert r.p == pytest.approx(2 * sst.t.sf(abs(t), n - 1))
    assert r.p_less == pytest.approx(sst.t.cdf(t, n - 1))
    half = sst.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert (r.low, r.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert r.d_z == pytest.approx(mean / sd)
    ref = sst.ttest_rel(A, B)
    assert (r.t, r.p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert str(r).startswith(f"t(7) = {t:.2f}, p = {r.p:.2g}; mean difference")
    assert r.t < 0 and r.p_less < r.p  # a is lower: the one-sided p is half the two-sided one
    assert r.p_less == pytest.approx(r.p / 2)


def test_paired_t_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        stats.paired_t([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        stats.paired_t([1.0, 2.0, float("nan")], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 2"):
        stats.paired_t([1.0], [2.0])


def test_wilcoxon_equals_scipy_with_rank_biserial():
    r = stats.wilcoxon(A, B)
    ref, ref_less = sst.wilcoxon(A, B), sst.wilcoxon(A, B, alternative="less")
    assert (r.statistic, r.p, r.p_less) == (ref.statistic, pytest.approx(ref.pvalue), pytest.approx(ref_less.pvalue))
    assert (r.n, r.n_nonzero) == (8, 8)
    assert r.median_diff == pytest.approx(np.median(np.subtract(A, B)))
    # every difference is negative: all the rank sum is R-, so r = -1
    assert r.rank_biserial == pytest.approx(-1.0)
    # hand example: differences 1, -2, 3 (and a zero, dropped): ranks 1, 2, 3; R+ = 4, R- = 2
    h = stats.wilcoxon([1.0, 0.0, 3.0, 5.0], [0.0, 2.0, 0.0, 5.0])
    assert (h.n, h.n_nonzero, h.statistic) == (4, 3, 2.0)
    assert h.rank_biserial == pytest.approx((4 - 2) / 6)
    same = stats.wilcoxon([1.0, 2.0], [1.0, 2.0])
    assert same.p == 1.0 and same.n_nonzero == 0 and math.isnan(same.rank_biserial)
    assert "Wilcoxon signed-rank, n = 8, 8 nonzero" in str(r)


# ----------------------------------------------------------------------------- proportions

def test_clopper_pearson_known_values_and_edges():
    r = stats.proportion_ci(7, 20)
    assert r.proportion == 0.35
    assert r.low == pytest.approx(0.1539092, abs=1e-7) and r.high == pytest.approx(0.5921885, abs=1e-7)
    zero = stats.proportion_ci(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-10)
    full = stats.proportion_ci(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(0.025 ** (1 / 10), rel=1e-10)
    assert str(r) == "7/20 = 0.35, 95% CI [0.1539, 0.5922] (Clopper–Pearson)"
    for k, n in [(11, 10), (-1, 10), (1, 0), (2.5, 10)]:
        with pytest.raises(ValueError):
            stats.proportion_ci(k, n)


@pytest.mark.parametrize("k, n, p0, alternative", [(7, 20, 0.5, "two-sided"), (60, 96, 0.5, "greater"),
                                                   (3, 40, 0.2, "less"), (13, 17, 0.3, "two-sided")])
def test_binomial_test_equals_scipy(k, n, p0, alternative):
    r = stats.binomial_test(k, n, p0, alternative)
    ref = sst.binomtest(k, n, p0, alternative=alternative)
    ci = ref.proportion_ci(0.95, method="exact")
    assert (r.k, r.n, r.proportion, r.p0, r.alternative) == (k, n, k / n, p0, alternative)
    assert r.p == pytest.approx(ref.pvalue) and (r.low, r.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    if alternative == "two-sided":
        cp = stats.proportion_ci(k, n)
        assert (r.low, r.high) == (pytest.approx(cp.low), pytest.approx(cp.high))
    assert f"p = {r.p:.2g}" in str(r)


def test_binomial_test_rejects_bad_input():
    with pytest.raises(ValueError, match="alternative"):
        stats.binomial_test(3, 10, alternative="bigger")
    with pytest.raises(ValueError, match="p must lie"):
        stats.binomial_test(3, 10, p=1.0)


# ----------------------------------------------------------------------------- power

def pmf(k, n, p):
    return math.comb(n, k) * p ** k * (1 - p) ** (n - k)


def test_binomial_power_n10_hand_enumeration():
    # two-sided, p0 = 0.5: P(K <= 1) = 11/1024, so p(1) = 22/1024 = 0.021 <= 0.05 but p(2) = 112/1024 > 0.05
    r = stats.binomial_power(10, p1=0.6)
    assert (r.reject_at_most, r.reject_at_least) == (1, 9)
    assert r.power == pytest.approx(sum(pmf(k, 10, 0.6) for k in (0, 1, 9, 10)), rel=1e-12)
    assert r.size == pytest.approx(22 / 1024, rel=1e-12)
    # one-sided "greater": P(K >= 9) = 11/1024 <= 0.05 but P(K >= 8) = 56/1024 = 0.055 > 0.05
    g = stats.binomial_power(10, p1=0.6, alternative="greater")
    assert (g.reject_at_most, g.reject_at_least) == (-1, 9)
    assert g.power == pytest.approx(pmf(9, 10, 0.6) + pmf(10, 10, 0.6), rel=1e-12)
    assert float(g) == g.power
    assert "rejects k >= 9" in str(g) and "rejects k <= 1 or k >= 9" in str(r)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), p0=st.floats(0.05, 0.95), alpha=st.sampled_from([0.01, 0.05, 0.1]),
       alternative=st.sampled_from(stats.ALTERNATIVES))
def test_rejection_region_is_where_binomial_test_rejects(n, p0, alpha, alternative):
    """The power is computed for exactly the test that binomial_test runs; its size never exceeds alpha."""
    r = stats.binomial_power(n, 0.5, p0, alpha, alternative)
    rejected = [k for k in range(n + 1) if sst.binomtest(k, n, p0, alternative=alternative).pvalue <= alpha]
    region = [k for k in range(n + 1) if k <= r.reject_at_most or k >= r.reject_at_least]
    assert region == rejected
    assert r.size == pytest.approx(sum(sst.binom.pmf(rejected, n, p0)), abs=1e-12)
    assert r.size <= alpha + 1e-12
    assert r.power == pytest.approx(sum(sst.binom.pmf(rejected, n, 0.5)), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), p1=st.floats(0.5, 0.99), step=st.floats(0.001, 0.2),
       alternative=st.sampled_from(["greater", "two-sided"]))
def test_power_increases_with_n_at_a_fixed_critical_value_and_with_the_effect(n, p1, step, alternative):
    """Exact power is a sawtooth in n; it can only fall where the critical value moves up.

    With the same critical value, one more trial can only add successes, so power cannot fall.
    And a larger true proportion never lowers the power (for two-sided, with p0 = 0.5).
    """
    now = stats.binomial_power(n, p1, alternative=alternative)
    more = stats.binomial_power(n + 1, p1, alternative=alternative)
    if more.reject_at_least == now.reject_at_least and more.reject_at_most == now.reject_at_most:
        assert more.power >= now.power - 1e-12
    assert stats.binomial_power(n, min(1.0, p1 + step), alternative=alternative).power >= now.power - 1e-12


def test_power_sawtooth_and_growth():
    # the exact power dips although n grows: 19 participants x 10 trials beat 20 x 10
    assert stats.binomial_power(190).power > stats.binomial_power(200).power
    powers = [stats.binomial_power(n).power for n in (10, 50, 100, 200, 400, 800)]
    assert powers == sorted(powers) and powers[-1] > 0.99


def scipy_power(n: int, p1: float, p0: float = 0.5, alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """Exact power from scipy alone: the probability under Binomial(n, p1) of the counts k that
    scipy's own binomial test rejects at alpha."""
    rejected = [k for k in range(n + 1) if sst.binomtest(k, n, p0, alternative=alternative).pvalue <= alpha]
    return float(sst.binom.pmf(rejected, n, p1).sum())


def test_participants_for_power_is_the_first_to_reach_the_target():
    r = stats.participants_for_power(p1=0.6, power=0.8, trials_per_participant=10)
    # independently (scipy's test and binomial pmf): the first multiple of 10 trials reaching 80%
    powers = [scipy_power(10 * m, 0.6) for m in range(1, 22)]
    first = next(m for m, power in enumerate(powers, start=1) if power >= 0.8)
    assert (r.participants, r.trials) == (first, 10 * first) == (21, 210)
    assert r.achieved.power == pytest.approx(powers[first - 1], abs=1e-12) and r.achieved.power >= 0.8
    # the normal approximation, n = ((z_(1 - alpha/2) sqrt(p0 q0) + z_power sqrt(p1 q1)) / (p1 - p0))^2,
    # asks for fewer pooled trials (194) than the exact test needs
    normal = ((sst.norm.ppf(0.975) * 0.5 + sst.norm.ppf(0.8) * math.sqrt(0.6 * 0.4)) / 0.1) ** 2
    assert math.ceil(normal) == 194 and r.trials >= normal
    assert "21 participants x 10 trials = 210 pooled trials" in str(r)
    one = stats.participants_for_power(p1=0.75, power=0.9, trials_per_participant=1, alternative="greater")
    assert stats.binomial_power(one.trials, 0.75, alternative="greater").power >= 0.9
    assert stats.binomial_power(one.trials - 1, 0.75, alternative="greater").power < 0.9
    with pytest.raises(ValueError, match="no number of trials"):
        stats.participants_for_power(p1=0.4, alternative="greater")
    with pytest.raises(ValueError, match="max_participants"):
        stats.participants_for_power(p1=0.51, max_participants=5)
