"""Statistics for the evaluation and the user studies: means with confidence intervals, paired tests,
exact binomial tests, intervals and power, each returned as a small result that prints as a report.

Thin, checked wrappers around scipy.stats, so that every chapter reports the same quantities the
same way (APA-like: "t(95) = -4.21, p = 4.6e-05") and bad input fails loudly instead of giving NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

import xtomo._checks as checks

__all__ = ["MeanCI", "PairedT", "Wilcoxon", "ProportionCI", "BinomialTest", "Power", "SampleSize",
           "mean_ci", "paired_t", "wilcoxon", "proportion_ci", "binomial_test", "binomial_power",
           "participants_for_power", "ParticipantTest", "participant_test", "design_effect"]

ALTERNATIVES = ("two-sided", "greater", "less")


# ----------------------------------------------------------------------------- formatting and checks

def _num(x: float) -> str:
    """A number in four significant digits (what a report shows)."""
    return f"{x:.4g}"


def _pval(p: float) -> str:
    """A p-value in two significant digits: 0.26, 0.0031, 4.6e-05."""
    return f"{p:.2g}"


def _pct(level: float) -> str:
    """A confidence level as a percentage: 95%."""
    return f"{100 * level:g}%"


def _sample(values, name: str) -> np.ndarray:
    """One-dimensional finite float sample of at least two values."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size < 2:
        raise ValueError(f"{name} needs at least 2 values, got {x.size}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two samples of one length (see ``_sample``), paired by position."""
    a, b = _sample(a, "a"), _sample(b, "b")
    if a.size != b.size:
        raise ValueError(f"paired samples must have the same length, got {a.size} and {b.size}")
    return a, b


def _open_unit(p: float, name: str) -> float:
    """A confidence level, a null proportion, a test's alpha: a number in the open interval (0, 1)."""
    value = checks.number(p, name)
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {p!r}")
    return value


def _level(level: float) -> float:
    """A confidence level, strictly between 0 and 1."""
    return _open_unit(level, "level")


def _alternative(alternative: str) -> str:
    """One of ``ALTERNATIVES``."""
    return checks.choice(alternative, "alternative", ALTERNATIVES)


def _ratio(num: float, den: float) -> float:
    """num / den, with 0/0 = nan and x/0 = ±inf (an effect size when every difference is equal)."""
    if den > 0:
        return num / den
    return math.nan if num == 0 else math.copysign(math.inf, num)


# ----------------------------------------------------------------------------- means and paired tests

@dataclass(frozen=True)
class MeanCI:
    """A sample mean with its standard error and t-based confidence interval [low, high]."""
    mean: float
    sem: float
    low: float
    high: float
    sd: float
    n: int
    level: float

    def __str__(self) -> str:
        return (f"M = {_num(self.mean)}, {_pct(self.level)} CI [{_num(self.low)}, {_num(self.high)}] "
                f"(SD = {_num(self.sd)}, SE = {_num(self.sem)}, n = {self.n})")


def mean_ci(values, level: float = 0.95) -> MeanCI:
    """Mean, standard error ``sd / sqrt(n)`` and the t interval ``mean ± t_{(1+level)/2, n-1} · se``."""
    x, level = _sample(values, "values"), _level(level)
    n, mean, sd = x.size, float(x.mean()), float(x.std(ddof=1))
    sem = sd / math.sqrt(n)
    half = float(_st.t.ppf((1 + level) / 2, n - 1)) * sem
    return MeanCI(mean, sem, mean - half, mean + half, sd, n, level)


@dataclass(frozen=True)
class PairedT:
    """Two-sided paired t-test of a against b, on the differences ``a - b``.

    ``p_less`` is the one-sided p-value for "a < b" (e.g. our error lower than the baseline's);
    ``d_z`` is Cohen's d for paired data, ``mean_diff / sd_diff``.
    """
    mean_diff: float
    sd_diff: float
    low: float
    high: float
    t: float
    df: int
    p: float
    p_less: float
    d_z: float
    n: int
    level: float

    def __str__(self) -> str:
        return (f"t({self.df}) = {self.t:.2f}, p = {_pval(self.p)}; mean difference {_num(self.mean_diff)}, "
                f"{_pct(self.level)} CI [{_num(self.low)}, {_num(self.high)}], d_z = {self.d_z:.2f}, n = {self.n}")


def paired_t(a, b, level: float = 0.95) -> PairedT:
    """Paired t-test (``scipy.stats.ttest_rel``) of a vs b, with the CI of the mean difference."""
    a, b = _paired(a, b)
    level = _level(level)
    d = a - b
    two = _st.ttest_rel(a, b)
    ci = two.confidence_interval(level)
    less = _st.ttest_rel(a, b, alternative="less")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    return PairedT(mean, sd, float(ci.low), float(ci.high), float(two.statistic), int(two.df),
                   float(two.pvalue), float(less.pvalue), _ratio(mean, sd), d.size, level)


@dataclass(frozen=True)
class Wilcoxon:
    """Paired Wilcoxon signed-rank test of a against b (zero differences dropped, as Wilcoxon did).

    ``statistic`` is scipy's two-sided W (the smaller rank sum), ``p_less`` the one-sided p-value for
    "a < b", ``rank_biserial`` the matched-pairs effect size ``(R+ - R-) / (R+ + R-)`` in [-1, 1].
    """
    statistic: float
    p: float
    p_less: float
    median_diff: float
    rank_biserial: float
    n: int
    n_nonzero: int

    def __str__(self) -> str:
        return (f"W = {_num(self.statistic)}, p = {_pval(self.p)} (Wilcoxon signed-rank, n = {self.n}, "
                f"{self.n_nonzero} nonzero); median difference {_num(self.median_diff)}, "
                f"r = {self.rank_biserial:.2f}")


def _rank_biserial(d: np.ndarray) -> float:
    """The matched-pairs rank-biserial correlation of the nonzero differences ``d`` (NaN if none)."""
    d = d[d != 0]
    if d.size == 0:
        return math.nan
    ranks = _st.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def wilcoxon(a, b) -> Wilcoxon:
    """Paired Wilcoxon signed-rank test (``scipy.stats.wilcoxon``), the non-parametric check of :func:`paired_t`.

    If every difference is zero there is nothing to rank: p is 1 and ``rank_biserial`` NaN.
    """
    a, b = _paired(a, b)
    d = a - b
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        return Wilcoxon(0.0, 1.0, 1.0, 0.0, math.nan, d.size, 0)
    two = _st.wilcoxon(a, b)
    less = _st.wilcoxon(a, b, alternative="less")
    return Wilcoxon(float(two.statistic), float(two.pvalue), float(less.pvalue), float(np.median(d)),
                    _rank_biserial(d), d.size, nonzero)


# ----------------------------------------------------------------------------- proportions

@dataclass(frozen=True)
class ProportionCI:
    """A proportion k/n with its exact (Clopper–Pearson) confidence interval [low, high]."""
    k: int
    n: int
    proportion: float
    low: float
    high: float
    level: float

    def __str__(self) -> str:
        return (f"{self.k}/{self.n} = {_num(self.proportion)}, {_pct(self.level)} CI "
                f"[{_num(self.low)}, {_num(self.high)}] (Clopper–Pearson)")


def _counts(k, n) -> tuple[int, int]:
    """``k`` successes of ``n`` trials: integers with 0 <= k <= n and n >= 1."""
    n = checks.integer(n, "n", minimum=1)
    k = checks.integer(k, "k", minimum=0)
    if k > n:
        raise ValueError(f"k must not exceed n, got k = {k}, n = {n}")
    return k, n


def proportion_ci(k: int, n: int, level: float = 0.95) -> ProportionCI:
    """Clopper–Pearson interval: beta quantiles ``B(α/2; k, n-k+1)`` and ``B(1-α/2; k+1, n-k)``.

    The lower end is exactly 0 when k = 0 and the upper end exactly 1 when k = n.
    """
    k, n = _counts(k, n)
    alpha = 1 - _level(level)
    low = 0.0 if k == 0 else float(_st.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(_st.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return ProportionCI(k, n, k / n, low, high, level)


@dataclass(frozen=True)
class BinomialTest:
    """Exact binomial test of k successes in n trials against the proportion p0.

    ``p`` is the p-value; [low, high] the exact interval matching the alternative (one-sided
    alternatives give a one-sided interval, as scipy does).
    """
    k: int
    n: int
    proportion: float
    p0: float
    alternative: str
    p: float
    low: float
    high: float
    level: float

    def __str__(self) -> str:
        return (f"{self.k}/{self.n} = {_num(self.proportion)} against {_num(self.p0)} ({self.alternative} exact "
                f"binomial test): p = {_pval(self.p)}, {_pct(self.level)} CI [{_num(self.low)}, {_num(self.high)}]")


def binomial_test(k: int, n: int, p: float = 0.5, alternative: str = "two-sided",
                  level: float = 0.95) -> BinomialTest:
    """Exact binomial test (``scipy.stats.binomtest``) with its Clopper–Pearson interval."""
    k, n = _counts(k, n)
    p0, alternative, level = _open_unit(p, "p"), _alternative(alternative), _level(level)
    res = _st.binomtest(k, n, p0, alternative=alternative)
    ci = res.proportion_ci(confidence_level=level, method="exact")
    return BinomialTest(k, n, k / n, p0, alternative, float(res.pvalue), float(ci.low), float(ci.high), level)


# ----------------------------------------------------------------------------- power

@dataclass(frozen=True)
class Power:
    """Exact power of the binomial test: P(reject | p1), summed over the exact rejection region.

    The region is ``k <= reject_at_most`` or ``k >= reject_at_least`` (-1 or n + 1 when a tail is
    empty); ``size`` is its probability under p0, the test's actual type-I error (at most alpha).
    """
    n: int
    p1: float
    p0: float
    alpha: float
    alternative: str
    power: float
    size: float
    reject_at_most: int
    reject_at_least: int

    def __float__(self) -> float:
        return self.power

    def __str__(self) -> str:
        tails = []
        if self.reject_at_most >= 0:
            tails.append(f"k <= {self.reject_at_most}")
        if self.reject_at_least <= self.n:
            tails.append(f"k >= {self.reject_at_least}")
        region = " or ".join(tails) if tails else "never"
        return (f"power {self.power:.3f} with {self.n} trials at p = {_num(self.p1)} ({self.alternative} exact "
                f"binomial test of p = {_num(self.p0)} at alpha = {_num(self.alpha)}: rejects {region}, "
                f"actual alpha {self.size:.3g})")


def _two_sided_pvalues(pmf: np.ndarray) -> np.ndarray:
    """scipy's two-sided binomial p-values for every k: the total probability of outcomes no more likely than k.

    Same relative tolerance (1e-7) for ties as ``scipy.stats.binomtest``; small terms summed first.
    """
    order = np.sort(pmf)
    cumulative = np.cumsum(order)
    count = np.searchsorted(order, pmf * (1 + 1e-7), side="right")
    return np.minimum(1.0, cumulative[count - 1])


def _pvalues(n: int, p0: float, alternative: str) -> np.ndarray:
    """The exact p-value of every outcome k = 0..n, as :func:`binomial_test` would report it."""
    k = np.arange(n + 1)
    if alternative == "greater":
        return _st.binom.sf(k - 1, n, p0)
    if alternative == "less":
        return _st.binom.cdf(k, n, p0)
    return _two_sided_pvalues(_st.binom.pmf(k, n, p0))


def binomial_power(n: int, p1: float = 0.6, p0: float = 0.5, alpha: float = 0.05,
                   alternative: str = "two-sided") -> Power:
    """Exact power of the binomial test of p0 with n trials when the true proportion is p1.

    The rejection region is every k whose exact p-value (the one :func:`binomial_test` reports) is
    at most alpha; the power is the binomial probability of that region under p1, summed term by
    term. No normal approximation. The power is not monotone in n (a discrete sawtooth).
    """
    n = checks.integer(n, "n", minimum=1)
    p1, p0 = checks.probability(p1, "p1"), _open_unit(p0, "p0")
    alpha, alternative = _open_unit(alpha, "alpha"), _alternative(alternative)
    k = np.arange(n + 1)
    reject = _pvalues(n, p0, alternative) <= alpha
    # one-sided regions are one tail, which may reach past n * p0 when alpha is large; two-sided
    # ones never hold the mode (its p-value is 1)
    if alternative == "two-sided":
        below, above = k[reject & (k < n * p0)], k[reject & (k > n * p0)]
    else:
        below, above = (k[reject], k[:0]) if alternative == "less" else (k[:0], k[reject])
    return Power(n, p1, p0, alpha, alternative,
                 power=float(_st.binom.pmf(k[reject], n, p1).sum()),
                 size=float(_st.binom.pmf(k[reject], n, p0).sum()),
                 reject_at_most=int(below.max()) if below.size else -1,
                 reject_at_least=int(above.min()) if above.size else n + 1)


@dataclass(frozen=True)
class SampleSize:
    """The fewest participants whose pooled trials give the binomial test the target power."""
    participants: int
    trials_per_participant: int
    trials: int
    target: float
    achieved: Power

    def __str__(self) -> str:
        a = self.achieved
        return (f"{self.participants} participants x {self.trials_per_participant} trials = {self.trials} "
                f"pooled trials reach power {a.power:.3f} (target {_num(self.target)}) for p = {_num(a.p1)} "
                f"against {_num(a.p0)} ({a.alternative}, alpha = {_num(a.alpha)}), assuming independent trials")


def participants_for_power(p1: float = 0.6, power: float = 0.8, trials_per_participant: int = 10,
                           p0: float = 0.5, alpha: float = 0.05, alternative: str = "two-sided",
                           max_participants: int = 1000) -> SampleSize:
    """Smallest number of participants m whose ``m × trials_per_participant`` pooled trials reach ``power``.

    Assumes every trial is an independent Bernoulli(p1) draw, i.e. participants do not differ. Trials
    nested in participants who differ are correlated; then the effective sample is smaller and more
    participants are needed (a mixed model or a design effect). Because exact power is a sawtooth in
    n, a slightly larger m can fall just below the target again; the returned m is the first to reach it.
    """
    target = _open_unit(power, "power")
    per = checks.integer(trials_per_participant, "trials_per_participant", minimum=1)
    limit = checks.integer(max_participants, "max_participants", minimum=1)
    alternative, p1 = _alternative(alternative), checks.probability(p1, "p1")
    if (alternative == "greater" and p1 <= p0) or (alternative == "less" and p1 >= p0) or p1 == p0:
        raise ValueError(f"no number of trials gives power against p1 = {p1} with a {alternative} test of p0 = {p0}")
    for m in range(1, limit + 1):
        result = binomial_power(m * per, p1, p0, alpha, alternative)
        if result.power >= target:
            return SampleSize(m, per, m * per, target, result)
    raise ValueError(f"{limit} participants x {per} trials do not reach power {target}; raise max_participants")


# ----------------------------------------------------------------------------- trials nested in participants

@dataclass(frozen=True)
class ParticipantTest:
    """Trials nested in participants, tested with the participant as the unit.

    ``rates`` is the mean per-participant proportion correct with its t interval; ``t``/``df``/``p``
    the one-sample t-test of the rates against p0 (NaN when every rate is the same: no spread to
    scale by), ``p_wilcoxon`` the signed-rank test of the rates against p0. ``chi2``/``p_homogeneity``
    test whether participants differ more than binomial sampling explains (chi-square on the
    participants x {correct, wrong} table); ``dispersion = chi2 / (participants - 1)`` is about 1
    when they do not, and estimates the design effect of the pooled binomial test when they do.
    """
    participants: int
    trials: int
    p0: float
    rates: MeanCI
    t: float
    df: int
    p: float
    p_wilcoxon: float
    chi2: float
    p_homogeneity: float
    dispersion: float

    def __str__(self) -> str:
        t = (f"t({self.df}) = {self.t:.2f}, p = {_pval(self.p)}" if math.isfinite(self.t)
             else "t undefined (every participant has the same rate)")
        return (f"{self.participants} participants, {self.trials} trials; mean rate {self.rates}; against "
                f"{_num(self.p0)}: {t}; Wilcoxon p = {_pval(self.p_wilcoxon)}; participants differ: "
                f"chi2({self.participants - 1}) = {self.chi2:.2f}, p = {_pval(self.p_homogeneity)} "
                f"(dispersion {self.dispersion:.2f})")


def participant_test(correct, trials, p0: float = 0.5, level: float = 0.95) -> ParticipantTest:
    """Participant-level test of 2AFC data: ``correct[i]`` of ``trials[i]`` right for participant i.

    Pooling every trial into one binomial test treats trials as independent; when participants
    differ, trials of one person are correlated and the pooled test is overconfident. Here each
    participant contributes one rate, tested against p0 with a one-sample t-test (the paired t of
    the rates against the constant p0) and a Wilcoxon signed-rank test; the homogeneity
    chi-square says whether the pooled test's independence is plausible.
    """
    k = np.asarray(correct)
    n = np.asarray(trials)
    if k.ndim != 1 or k.shape != n.shape:
        raise ValueError(f"correct and trials must be 1-D of one length, got shapes {k.shape} and {n.shape}")
    if k.size < 2:
        raise ValueError(f"a participant-level test needs at least 2 participants, got {k.size}")
    for ki, ni in zip(k.tolist(), n.tolist()):
        _counts(ki, ni)
    p0, level = _open_unit(p0, "p0"), _level(level)
    k, n = k.astype(float), n.astype(float)
    rates = k / n
    constant = np.full_like(rates, p0)
    spread = float(rates.std(ddof=1))
    if spread > 0:
        t = paired_t(rates, constant, level)
        t_stat, df, p = t.t, t.df, t.p
    else:
        t_stat, df, p = math.nan, int(k.size - 1), math.nan
    pooled = k.sum() / n.sum()
    if 0 < pooled < 1:
        expected = np.stack([n * pooled, n * (1 - pooled)])
        chi2 = float((((np.stack([k, n - k]) - expected) ** 2) / expected).sum())
    else:
        chi2 = 0.0
    dof = k.size - 1
    return ParticipantTest(int(k.size), int(n.sum()), p0, mean_ci(rates, level), t_stat, df, p,
                           wilcoxon(rates, constant).p, chi2, float(_st.chi2.sf(chi2, dof)), chi2 / dof)


def design_effect(trials_per_participant: int, icc: float) -> float:
    """Kish's design effect ``1 + (m - 1) * icc``: how many times more trials nested in participants
    (m each, intra-class correlation icc) a study needs than independent trials for the same precision."""
    m = checks.integer(trials_per_participant, "trials_per_participant", minimum=1)
    return 1 + (m - 1) * checks.probability(icc, "icc")
