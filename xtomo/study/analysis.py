"""The statistics of the studies: from response rows to proportions, exact tests and power, and a
re-analysis of the numbers that Henzler et al. (2018) report for their two studies.

Rows are those of ``protocol.read_responses``. A 2AFC observer at chance is right half the time,
so every test is against 0.5: two-sided (is the rate different from chance?) and one-sided
"greater" (can observers tell the real image?).
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy import stats as _st

from xtomo.evaluation import stats

__all__ = ["PAPER", "pooled", "per_participant", "participant_level", "power_curve", "participants_needed",
           "matching_counts", "attainable_trials", "paper_reanalysis"]


def _groups(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r)
    return dict(groups)


def _summary(rows: list[dict], level: float) -> dict:
    k, n = sum(r["correct"] for r in rows), len(rows)
    ci = stats.proportion_ci(k, n, level)
    return dict(trials=n, correct=k, proportion=k / n, low=ci.low, high=ci.high,
                p_two_sided=stats.binomial_test(k, n).p, p_greater=stats.binomial_test(k, n, alternative="greater").p,
                median_rt_s=float(np.median([r["rt_s"] for r in rows])))


def pooled(rows: list[dict], by: tuple[str, ...] = ("study", "observer"), level: float = 0.95) -> list[dict]:
    """Per group (default: study and kind of observer): trials, correct, proportion with its
    Clopper–Pearson interval, exact binomial p-values against 0.5, participants and median RT."""
    out = []
    for key, group in sorted(_groups(rows, by).items()):
        out.append(dict(zip(by, key), participants=len({r["participant"] for r in group}),
                        sessions=len({r["session"] for r in group}), **_summary(group, level)))
    return out


def per_participant(rows: list[dict], level: float = 0.95) -> list[dict]:
    """Per study and participant: the same as ``pooled``, one row each."""
    return pooled(rows, ("study", "observer", "participant"), level)


def participant_level(rows: list[dict], study: str, observer: str = "human") -> stats.ParticipantTest | None:
    """The participant-level test (``stats.participant_test``) of one study's observers of one
    kind; None when fewer than two such participants answered it."""
    table = [r for r in per_participant(rows) if r["study"] == study and r["observer"] == observer]
    if len(table) < 2:
        return None
    return stats.participant_test([r["correct"] for r in table], [r["trials"] for r in table])


def power_curve(participants, trials_per_participant: int = 10, p1: float = 0.6, alpha: float = 0.05,
                alternative: str = "two-sided") -> list[dict]:
    """Exact power of the pooled binomial test for each number of participants (independent trials)."""
    return [dict(participants=m, trials=m * trials_per_participant,
                 power=stats.binomial_power(m * trials_per_participant, p1, 0.5, alpha, alternative).power)
            for m in participants]


def participants_needed(trials_per_participant: int = 10, p1: float = 0.6, power: float = 0.8,
                        alpha: float = 0.05, iccs=(0.0, 0.05, 0.1, 0.2)) -> list[dict]:
    """Participants needed to detect a true rate ``p1`` with ``power``: exactly for independent trials
    (``stats.participants_for_power``), then inflated by Kish's design effect for each intra-class
    correlation in ``iccs`` (an approximation: participants who differ carry less information)."""
    base = stats.participants_for_power(p1, power, trials_per_participant, alpha=alpha)
    out = []
    for icc in iccs:
        deff = stats.design_effect(trials_per_participant, icc)
        out.append(dict(icc=icc, design_effect=deff,
                        participants=math.ceil(base.trials * deff / trials_per_participant - 1e-9),
                        exact=icc == 0))
    return out


# ----------------------------------------------------------------------------- the paper's numbers

#: What the paper reports (Secs. 5.3 and 5.6); ``trials`` lists the readings of trials per participant.
PAPER = {
    "study 1: iso-surfaces, 'is the image real?' (Sec. 5.3)":
        dict(participants=27, percent=46.3, decimals=1, reported="p < .023", reported_p=0.023,
             trials={10: "10 pairs (the 10 best results, ground truth against ours)",
                     20: "20 single images (10 ground truth, 10 ours)"}),
    "study 2: x-rays, 'which image is a real x-ray?' (Sec. 5.6)":
        dict(participants=46, percent=50.21, decimals=2, reported="p = .037", reported_p=0.037,
             trials={10: "10 pairs, as the paper says"}),
}


def _shown(value: float, decimals: int, mode: str) -> float:
    scaled = value * 10**decimals
    return (math.floor(scaled + 1e-9) if mode == "truncate" else math.floor(scaled + 0.5)) / 10**decimals


def matching_counts(percent: float, n: int, decimals: int, mode: str = "round") -> list[int]:
    """Every count k of n whose percentage, shown with ``decimals`` decimals, reads ``percent``;
    ``mode`` is "round" (to nearest) or "truncate" (digits cut off)."""
    if mode not in ("round", "truncate"):
        raise ValueError(f"mode must be 'round' or 'truncate', got {mode!r}")
    return [k for k in range(n + 1) if math.isclose(_shown(100 * k / n, decimals, mode), percent, abs_tol=1e-9)]


def attainable_trials(participants: int, percent: float, decimals: int, up_to: int = 60,
                      mode: str = "round") -> list[int]:
    """The numbers of trials per participant (1 to ``up_to``) for which ``percent`` is some count."""
    return [t for t in range(1, up_to + 1) if matching_counts(percent, participants * t, decimals, mode)]


_QUANTITIES = {"p_two_sided": "two-sided test", "p_less": "one-sided test (less)",
               "p_greater": "one-sided test (greater)", "p_exactly_k": "P(X = k)"}


def paper_reanalysis() -> list[dict]:
    """For each study and reading of the trials per participant, every count of correct answers that
    the reported percentage can stand for (rounded or truncated), and what that count gives:
    the exact binomial test against 0.5 (two-sided, and one-sided each way) and the binomial
    probability of exactly that count, ``P(X = k)``, which is not a p-value. ``matches_reported``
    names the quantities that, rounded to three decimals, give the reported p-value."""
    out = []
    for study, info in PAPER.items():
        for per, reading in info["trials"].items():
            n = info["participants"] * per
            found = {}
            for mode in ("round", "truncate"):
                for k in matching_counts(info["percent"], n, info["decimals"], mode):
                    found.setdefault(k, []).append(mode)
            for k, modes in sorted(found.items()):
                out.append(dict(
                    study=study, reading=reading, participants=info["participants"], trials_each=per, trials=n,
                    correct=k, percent=100 * k / n, shown_as=" or ".join("rounded" if m == "round" else "truncated"
                                                                          for m in modes),
                    p_two_sided=stats.binomial_test(k, n).p,
                    p_less=stats.binomial_test(k, n, alternative="less").p,
                    p_greater=stats.binomial_test(k, n, alternative="greater").p,
                    p_exactly_k=float(_st.binom.pmf(k, n, 0.5)),
                    reported=info["reported"], reported_p=info["reported_p"]))
                matches = [label for name, label in _QUANTITIES.items()
                           if round(out[-1][name], 3) == info["reported_p"]]
                out[-1]["matches_reported"] = ", ".join(matches) or "none"
    return out
