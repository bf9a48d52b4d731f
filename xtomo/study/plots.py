"""Figures of the study analysis: per-participant rates with exact intervals, and power curves."""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["rates", "power"]


def rates(table: list[dict], title: str = "", ax=None):
    """One row per (study, participant) of ``analysis.per_participant``: proportion correct with its
    Clopper–Pearson interval, chance (0.5) dashed; studies in separate colours. Returns the axes."""
    if not table:
        raise ValueError("rates: no participants to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.2, 0.28 * len(table) + 1.2))
    studies = list(dict.fromkeys(r["study"] for r in table))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for y, r in enumerate(table):
        c = colours[studies.index(r["study"]) % len(colours)]
        ax.errorbar(r["proportion"], y, xerr=[[r["proportion"] - r["low"]], [r["high"] - r["proportion"]]],
                    fmt="o", color=c, capsize=2, ms=4)
    for study, c in zip(studies, colours):
        ax.plot([], [], "o", color=c, label=study)
    ax.axvline(0.5, ls="--", color="k", lw=1)
    ax.set_yticks(range(len(table)), [f"{r['participant']} ({r['correct']}/{r['trials']})" for r in table], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(-0.02, 1.02), xlabel="proportion correct (95% Clopper–Pearson)", title=title)
    ax.legend(fontsize=7, loc="lower left")
    ax.figure.tight_layout()
    return ax


def power(curve: list[dict], target: float = 0.8, title: str = "", ax=None):
    """Exact power against the number of participants (``analysis.power_curve``), the target dotted
    and the first number that reaches it marked. Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.2))
    m = [r["participants"] for r in curve]
    ax.plot(m, [r["power"] for r in curve], marker=".", lw=1)
    ax.axhline(target, ls=":", color="k", lw=1)
    first = next((r for r in curve if r["power"] >= target), None)
    if first is not None:
        ax.annotate(f"{first['participants']} participants", (first["participants"], first["power"]),
                    xytext=(8, -18), textcoords="offset points", fontsize=8, arrowprops=dict(arrowstyle="->"))
    ax.set(xlabel="participants", ylabel="power", ylim=(0, 1.02), title=title)
    ax.figure.tight_layout()
    return ax
