"""Statistics, the edge cases mutation testing found untested: the effect size of differences that
never vary, power reports whose rejection region touches 0 or n or is empty, the exact messages
that name each bad argument, the smallest valid inputs, documented defaults, every report's format,
and participants who all fail or all succeed."""
from __future__ import annotations

import math
import re

import numpy as np
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


# ----------------------------------------------------------------------------- messages that name the argument

def exactly(message):
    """A ``pytest.raises`` pattern that matches the whole message and nothing more."""
    return "^" + re.escape(message) + "$"


@pytest.mark.parametrize("call, message", [
    (lambda: stats.mean_ci([[1.0, 2.0], [3.0, 4.0]]), "values must be one-dimensional, got shape (2, 2)"),
    (lambda: stats.mean_ci([1.0]), "values needs at least 2 values, got 1"),
    (lambda: stats.mean_ci([1.0, math.inf]), "values contains NaN or infinite values"),
    (lambda: stats.mean_ci([1.0, 2.0], level=1.0), "level must lie strictly between 0 and 1, got 1.0"),
    (lambda: stats.mean_ci([1.0, 2.0], level=0), "level must lie strictly between 0 and 1, got 0"),
    (lambda: stats.mean_ci([1.0, 2.0], level="high"), "level must be a finite number, got 'high'"),
    (lambda: stats.paired_t([1.0], [1.0, 2.0]), "a needs at least 2 values, got 1"),
    (lambda: stats.paired_t([1.0, 2.0], [[1.0, 2.0]]), "b must be one-dimensional, got shape (1, 2)"),
    (lambda: stats.paired_t([1.0, 2.0, 3.0], [1.0, 2.0]), "paired samples must have the same length, got 3 and 2"),
    (lambda: stats.wilcoxon([1.0, 2.0], [1.0, math.nan]), "b contains NaN or infinite values"),
    (lambda: stats.proportion_ci(1, 0), "n must be an integer >= 1, got 0"),
    (lambda: stats.proportion_ci(-1, 10), "k must be an integer >= 0, got -1"),
    (lambda: stats.proportion_ci(11, 10), "k must not exceed n, got k = 11, n = 10"),
    (lambda: stats.binomial_test(3, 10, p=0.0), "p must lie strictly between 0 and 1, got 0.0"),
    (lambda: stats.binomial_test(3, 10, alternative="bigger"),
     "alternative must be one of two-sided, greater, less, got 'bigger'"),
    (lambda: stats.binomial_power(0), "n must be an integer >= 1, got 0"),
    (lambda: stats.binomial_power(10, p1=1.5), "p1 must be a finite number >= 0 and <= 1, got 1.5"),
    (lambda: stats.binomial_power(10, p0=1.0), "p0 must lie strictly between 0 and 1, got 1.0"),
    (lambda: stats.binomial_power(10, alpha=1.0), "alpha must lie strictly between 0 and 1, got 1.0"),
    (lambda: stats.participants_for_power(power=1.0), "power must lie strictly between 0 and 1, got 1.0"),
    (lambda: stats.participants_for_power(trials_per_participant=0),
     "trials_per_participant must be an integer >= 1, got 0"),
    (lambda: stats.participants_for_power(max_participants=0), "max_participants must be an integer >= 1, got 0"),
    (lambda: stats.participants_for_power(p1=2), "p1 must be a finite number >= 0 and <= 1, got 2"),
    (lambda: stats.participants_for_power(p1=0.5),
     "no number of trials gives power against p1 = 0.5 with a two-sided test of p0 = 0.5"),
    (lambda: stats.participants_for_power(p1=0.5, alternative="greater"),
     "no number of trials gives power against p1 = 0.5 with a greater test of p0 = 0.5"),
    (lambda: stats.participants_for_power(p1=0.6, alternative="less"),
     "no number of trials gives power against p1 = 0.6 with a less test of p0 = 0.5"),
    (lambda: stats.participants_for_power(p1=0.501, trials_per_participant=1),  # the default limit
     "1000 participants x 1 trials do not reach power 0.8; raise max_participants"),
    (lambda: stats.participants_for_power(max_participants=20),  # 21 would reach it: the limit is inclusive
     "20 participants x 10 trials do not reach power 0.8; raise max_participants"),
    (lambda: stats.participants_for_power(p1=0.55, max_participants=5),
     "5 participants x 10 trials do not reach power 0.8; raise max_participants"),
    (lambda: stats.participant_test([[1, 2], [3, 4]], [[5, 5], [5, 5]]),
     "correct and trials must be 1-D of one length, got shapes (2, 2) and (2, 2)"),
    (lambda: stats.participant_test([1, 2], [5, 5, 5]),
     "correct and trials must be 1-D of one length, got shapes (2,) and (3,)"),
    (lambda: stats.participant_test([1], [5]), "a participant-level test needs at least 2 participants, got 1"),
    (lambda: stats.participant_test([1, 2], [5, 0]), "n must be an integer >= 1, got 0"),
    (lambda: stats.participant_test([1, 2], [5, 5], p0=1.0), "p0 must lie strictly between 0 and 1, got 1.0"),
    (lambda: stats.participant_test([1, 2], [5, 5], level=1.5), "level must lie strictly between 0 and 1, got 1.5"),
    (lambda: stats.design_effect(0, 0.1), "trials_per_participant must be an integer >= 1, got 0"),
    (lambda: stats.design_effect(10, 1.5), "icc must be a finite number >= 0 and <= 1, got 1.5"),
])
def test_bad_input_is_named_exactly(call, message):
    with pytest.raises(ValueError, match=exactly(message)):
        call()


# ----------------------------------------------------------------------------- the smallest valid inputs

def test_two_values_one_trial_and_one_participant_of_trials_are_enough():
    r = stats.mean_ci([1.0, 3.0])  # sd sqrt 2, se 1, t_{0.975, 1} = 12.7062
    assert (r.mean, r.n) == (2.0, 2) and r.sem == pytest.approx(1.0)
    assert r.high - r.mean == pytest.approx(sst.t.ppf(0.975, 1), rel=1e-12)
    assert stats.paired_t([1.0, 3.0], [0.0, 0.0]).df == 1
    assert (stats.proportion_ci(0, 1).low, stats.proportion_ci(1, 1).high) == (0.0, 1.0)
    one = stats.binomial_power(1)  # one trial: both outcomes have p = 1, never rejected
    assert (one.n, one.power, one.reject_at_most, one.reject_at_least) == (1, 0.0, -1, 2)
    # one participant of 20 trials at p1 = 0.99 already has power > 0.5, within max_participants = 1
    first = stats.participants_for_power(p1=0.99, power=0.5, trials_per_participant=20, max_participants=1)
    assert (first.participants, first.trials) == (1, 20)
    single = stats.participants_for_power(p1=0.99, power=0.5, trials_per_participant=1, alternative="greater")
    assert single.trials_per_participant == 1
    assert stats.binomial_power(single.trials, 0.99, alternative="greater").power >= 0.5
    assert stats.binomial_power(single.trials - 1, 0.99, alternative="greater").power < 0.5
    pair = stats.participant_test([3, 4], [5, 5])   # two participants
    assert (pair.participants, pair.df) == (2, 1)


def test_design_effect_is_kish_1_plus_m_minus_1_icc():
    assert stats.design_effect(1, 0.7) == 1.0      # one trial each: no clustering to pay for
    assert stats.design_effect(3, 0.25) == pytest.approx(1.5)
    assert stats.design_effect(5, 1.0) == 5.0      # perfectly correlated: each person counts once
    assert stats.design_effect(5, 0.0) == 1.0


def test_lower_alternatives_with_p1_below_p0_have_power():
    less = stats.participants_for_power(p1=0.3, trials_per_participant=10, alternative="less")
    assert less.achieved.power >= 0.8 and less.achieved.alternative == "less"
    assert less.achieved.power == pytest.approx(
        stats.binomial_power(less.trials, 0.3, alternative="less").power, abs=1e-15)
    two = stats.participants_for_power(p1=0.3, trials_per_participant=10)   # two-sided, p1 below p0
    assert two.achieved.power >= 0.8 and two.achieved.p1 == 0.3


# ----------------------------------------------------------------------------- defaults

def test_defaults_are_the_documented_ones():
    assert stats.binomial_test(7, 20) == stats.binomial_test(7, 20, 0.5, "two-sided", 0.95)
    assert stats.binomial_power(30) == stats.binomial_power(30, 0.6, 0.5, 0.05, "two-sided")
    assert stats.paired_t([1.0, 2.0, 4.0], [0.0, 1.0, 1.0]) == stats.paired_t([1.0, 2.0, 4.0], [0.0, 1.0, 1.0], 0.95)
    assert stats.participants_for_power() == stats.participants_for_power(0.6, 0.8, 10, 0.5, 0.05, "two-sided", 1000)
    assert stats.participant_test([3, 4, 6], [8, 8, 8]) == stats.participant_test([3, 4, 6], [8, 8, 8], 0.5, 0.95)


# ----------------------------------------------------------------------------- reports, character for character

def test_reports_print_in_the_documented_formats():
    """``_num`` = 4 significant digits, ``_pval`` = 2, ``_pct`` = percent with %g; fields checked elsewhere."""
    a, b = [0.31, 0.27, 0.40, 0.22, 0.35], [0.35, 0.30, 0.41, 0.30, 0.36]
    t = stats.paired_t(a, b, level=0.9)
    assert str(t) == (f"t(4) = {t.t:.2f}, p = {t.p:.2g}; mean difference {t.mean_diff:.4g}, "
                      f"90% CI [{t.low:.4g}, {t.high:.4g}], d_z = {t.d_z:.2f}, n = 5")
    assert t.level == 0.9 and t.high - t.mean_diff == pytest.approx(sst.t.ppf(0.95, 4) * t.sd_diff / math.sqrt(5))
    assert str(stats.mean_ci([1, 2, 3, 4, 5], level=0.9)).startswith("M = 3, 90% CI [")
    w = stats.wilcoxon([1.0, 0.0, 3.0, 5.0], [0.0, 2.0, 0.0, 5.0])
    assert str(w) == (f"W = 2, p = {w.p:.2g} (Wilcoxon signed-rank, n = 4, 3 nonzero); "
                      f"median difference {w.median_diff:.4g}, r = 0.33")
    bt = stats.binomial_test(13, 17, 0.3, level=0.9)
    assert str(bt) == (f"13/17 = 0.7647 against 0.3 (two-sided exact binomial test): p = {bt.p:.2g}, "
                       f"90% CI [{bt.low:.4g}, {bt.high:.4g}]")
    pw = stats.binomial_power(10, p1=0.6)
    assert str(pw) == (f"power {pw.power:.3f} with 10 trials at p = 0.6 (two-sided exact binomial test of p = 0.5 "
                       f"at alpha = 0.05: rejects k <= 1 or k >= 9, actual alpha {22 / 1024:.3g})")
    s = stats.participants_for_power(p1=0.75, power=0.9, trials_per_participant=4, alternative="greater")
    assert str(s) == (f"{s.participants} participants x 4 trials = {4 * s.participants} pooled trials reach power "
                      f"{s.achieved.power:.3f} (target 0.9) for p = 0.75 against 0.5 (greater, alpha = 0.05), "
                      f"assuming independent trials")


def test_wilcoxon_of_identical_samples_reports_nothing_to_rank():
    r = stats.wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (r.statistic, r.p, r.p_less, r.median_diff, r.n, r.n_nonzero) == (0.0, 1.0, 1.0, 0.0, 3, 0)
    assert math.isnan(r.rank_biserial)
    assert str(r) == "W = 0, p = 1 (Wilcoxon signed-rank, n = 3, 0 nonzero); median difference 0, r = nan"


# ----------------------------------------------------------------------------- participant-level edges

def test_participant_test_report_and_fields_against_scipy():
    correct, trials = [6, 7, 5, 9, 8], [10, 10, 10, 10, 12]
    r = stats.participant_test(correct, trials, p0=0.4, level=0.9)
    rates = np.array(correct) / np.array(trials)
    ref = sst.ttest_1samp(rates, 0.4)
    assert (r.t, r.p, r.df, r.p0) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue), 4, 0.4)
    assert r.rates == stats.mean_ci(rates, 0.9)
    assert r.p_wilcoxon == pytest.approx(sst.wilcoxon(rates - 0.4).pvalue)
    assert str(r) == (f"5 participants, 52 trials; mean rate {r.rates}; against 0.4: t(4) = {r.t:.2f}, "
                      f"p = {r.p:.2g}; Wilcoxon p = {r.p_wilcoxon:.2g}; participants differ: chi2(4) = "
                      f"{r.chi2:.2f}, p = {r.p_homogeneity:.2g} (dispersion {r.dispersion:.2f})")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's Wilcoxon of rates that never vary
@pytest.mark.parametrize("correct", [[0, 0, 0], [8, 8, 8]])
def test_participants_who_all_fail_or_all_succeed_do_not_differ(correct):
    r = stats.participant_test(correct, [8, 8, 8])
    assert (r.chi2, r.p_homogeneity, r.dispersion, r.df) == (0.0, 1.0, 0.0, 2)
    assert math.isnan(r.t) and math.isnan(r.p)


def test_two_sided_regions_equal_scipys_for_every_n_at_one_half():
    """p0 = 1/2 makes pmf(k) = pmf(n - k) in exact arithmetic: ties, which scipy's relative tolerance
    (1e-7) counts as equally likely although float rounding may part them."""
    for n in range(1, 41):
        r = stats.binomial_power(n, 0.7)
        rejected = [k for k in range(n + 1) if sst.binomtest(k, n).pvalue <= 0.05]
        assert [k for k in range(n + 1) if k <= r.reject_at_most or k >= r.reject_at_least] == rejected
        assert r.reject_at_most + r.reject_at_least == n  # symmetric region


@pytest.mark.parametrize("n, alpha, alternative", [(2, 0.9, "less"), (10, 0.7, "greater"), (10, 0.6, "less"),
                                                   (7, 0.5, "greater"), (9, 0.3, "two-sided")])
def test_the_reported_region_is_scipys_region_even_at_a_large_alpha(n, alpha, alternative):
    """With alpha near or above 1/2 a one-sided region reaches the mean n p0 (found by mutation testing:
    the report used to cut it there, "rejects k >= 6" where k = 5 was rejected too)."""
    r = stats.binomial_power(n, 0.5, alpha=alpha, alternative=alternative)
    rejected = [k for k in range(n + 1) if sst.binomtest(k, n, alternative=alternative).pvalue <= alpha]
    assert [k for k in range(n + 1) if k <= r.reject_at_most or k >= r.reject_at_least] == rejected
    assert r.size == pytest.approx(sum(sst.binom.pmf(rejected, n, 0.5)), abs=1e-12)


@pytest.mark.filterwarnings("ignore::UserWarning")  # scipy: exact Wilcoxon of one nonzero difference
def test_wilcoxon_of_one_nonzero_difference_and_of_fractional_differences():
    one = stats.wilcoxon([1.0, 2.0, 3.5], [1.0, 2.0, 3.0])      # one difference, +0.5
    assert (one.n, one.n_nonzero, one.rank_biserial, one.median_diff) == (3, 1, 1.0, 0.0)
    assert one.p == pytest.approx(sst.wilcoxon([0.5]).pvalue)
    # differences 0.5, 2, -1: ranks 1, 3, 2; R+ = 4, R- = 2
    frac = stats.wilcoxon([0.5, 2.0, 0.0], [0.0, 0.0, 1.0])
    assert frac.rank_biserial == pytest.approx((4 - 2) / 6)


def test_binomial_test_interval_at_the_requested_level():
    r = stats.binomial_test(13, 17, 0.3, level=0.9)
    ref = sst.binomtest(13, 17, 0.3).proportion_ci(confidence_level=0.9, method="exact")
    assert (r.low, r.high) == (pytest.approx(ref.low, rel=1e-12), pytest.approx(ref.high, rel=1e-12))


def test_participant_report_when_every_rate_is_the_same():
    r = stats.participant_test([5, 5, 5], [10, 10, 10])
    assert str(r).startswith(f"3 participants, 30 trials; mean rate {r.rates}; against 0.5: "
                             "t undefined (every participant has the same rate); Wilcoxon p = ")
