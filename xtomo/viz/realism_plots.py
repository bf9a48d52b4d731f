"""Figures of realism: where a real skull's statistics fall among the procedural crania's, and their curves.

Both take the dictionaries of ``xtomo.evaluation.realism`` (``volume_stats``, ``xray_stats``, or
both merged with ``|``) and return matplotlib figures.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from xtomo.evaluation import realism

__all__ = ["REAL_COLOUR", "statistic_ranges", "realism_curves", "morphospace_map"]

#: The colour of the real specimen in every realism figure; procedural ones are grey or coloured by name.
REAL_COLOUR = "#d62728"


def statistic_ranges(real: dict, procedural: dict[str, dict], statistics=None, width: float = 7.5):
    """One strip per statistic: every procedural value (grey ticks, their range shaded) and the real
    value (a diamond, filled when within the range, hollow when outside); rows as in
    ``realism.realism_table``, whose checks apply."""
    table = realism.realism_table(real, procedural, statistics)
    fig, axes = plt.subplots(len(table), 1, figsize=(width, 0.42 * len(table) + 0.7), squeeze=False)
    for ax, (key, row) in zip(axes[:, 0], table.iterrows()):
        values = np.array([float(p[key]) for p in procedural.values()])
        ax.axvspan(row.procedural_min, row.procedural_max, color="0.9", lw=0)
        ax.scatter(values, np.zeros_like(values), marker="|", s=160, color="0.45", lw=1.4)
        ax.scatter([row.real], [0], marker="D", s=42, edgecolor=REAL_COLOUR, lw=1.5,
                   facecolor=REAL_COLOUR if row.within else "white", zorder=3)
        low, high = min(row.procedural_min, row.real), max(row.procedural_max, row.real)
        pad = 0.08 * (high - low) if high > low else 0.05 * max(abs(high), 1e-3)
        ax.set_xlim(low - pad, high + pad)
        ax.set_yticks([])
        ax.set_ylabel(key, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(axis="x", labelsize=7, pad=1)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    axes[0, 0].set_title(f"real (diamond: filled inside the range, hollow outside) vs {len(procedural)} "
                         f"procedural (ticks)", fontsize=9)
    fig.tight_layout(h_pad=0.3)
    return fig


def _curve(ax, x, y, name: str, real: str | None, colours: dict, step: bool = False) -> None:
    style = dict(color=REAL_COLOUR, lw=2.2, zorder=3) if name == real else dict(color=colours.get(name), lw=1.1)
    if step:
        ax.stairs(y, x, label=name, **style)
    else:
        ax.plot(x, y, label=name, **style)


def realism_curves(stats: dict[str, dict], real: str | None = None, band=realism.BAND):
    """The curves behind the statistics, one line per specimen (``real``, if named, drawn thick
    in ``REAL_COLOUR``): the density histogram of the volume, the opacity histogram and the
    radial power spectrum (log-log, the fit ``band`` shaded) of the x-rays; a panel only for
    curves that every dictionary of ``stats`` (name: statistics) holds."""
    if not isinstance(stats, dict) or not stats:
        raise ValueError("realism_curves: stats must be a non-empty dict of name: statistics dict")
    if real is not None and real not in stats:
        raise ValueError(f"realism_curves: real must name one of {list(stats)}, got {real!r}")
    panels = [(key, edges) for key, edges in (("density_histogram", "density_bins"),
                                               ("opacity_histogram", "opacity_bins"),
                                               ("spectrum_power", "spectrum_frequency"))
              if all(key in s and edges in s for s in stats.values())]
    if not panels:
        raise ValueError("realism_curves: no curve (density_histogram, opacity_histogram, spectrum_power) "
                         "is in every dictionary of stats")
    others = [n for n in stats if n != real]
    colours = dict(zip(others, plt.cm.tab10(np.linspace(0, 1, 10))[np.arange(len(others)) % 10]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    for ax, (key, xkey) in zip(axes[0], panels):
        for name, s in stats.items():
            _curve(ax, s[xkey], s[key], name, real, colours, step=key != "spectrum_power")
        if key == "spectrum_power":
            ax.axvspan(*band, color="0.92", lw=0, zorder=0)
            ax.set(xscale="log", yscale="log", xlabel="cycles per image", ylabel="power (share of variance)",
                   title="radial power spectrum of opacity")
        else:
            what = "density" if key.startswith("density") else "opacity"
            ax.set(xlabel=what, ylabel="share of voxels" if what == "density" else "share of pixels",
                   title=f"{what} histogram (> {realism.FLOOR})")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def morphospace_map(coords: np.ndarray, orders: list[str], held_out: list[int], twins=None, size: float = 4.2):
    """Species on the first two principal axes of their proportions, coloured by order, held-out
    ones ringed; with ``twins`` (one distance per held-out species, ``morphospace.twin_distances``)
    a second panel shows how near each held-out species' nearest training twin is."""
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] < 2 or len(coords) != len(orders):
        raise ValueError(f"morphospace_map: coords must be [n, >= 2] with one order per species, got shape "
                         f"{coords.shape} and {len(orders)} orders")
    panels = 1 if twins is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(size * panels * 1.15, size), squeeze=False)
    ax = axes[0, 0]
    names = sorted(set(orders))
    cmap = plt.get_cmap("tab10")
    for k, order in enumerate(names):
        idx = [i for i, o in enumerate(orders) if o == order]
        ax.scatter(coords[idx, 0], coords[idx, 1], s=14, color=cmap(k % 10), label=order)
    ax.scatter(coords[held_out, 0], coords[held_out, 1], s=60, facecolor="none", edgecolor="k", lw=1.0,
               label="held out")
    ax.set(xlabel="first principal axis", ylabel="second principal axis", title="species by proportions")
    ax.legend(fontsize=6, loc="best", ncol=2)
    if twins is not None:
        twins = np.sort(np.asarray(twins))
        axes[0, 1].barh(range(len(twins)), twins, color="0.5")
        axes[0, 1].set(xlabel="distance to the nearest training species", ylabel="held-out species (sorted)",
                       title="nearest training twin")
    fig.tight_layout()
    return fig
