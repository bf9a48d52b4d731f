"""Matplotlib figures the chapters share: image grids, view hemispheres, volume slices.

X-rays are shown as opacity ``1 - alpha`` (bone bright), as radiographs are: ``opacity`` and
``show_xray``.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

import xtomo._checks as checks
from xtomo.imaging import render, xray

__all__ = ["opacity", "show_xray", "image_grid", "labelled_grid", "specimen_views", "hemisphere", "slices",
           "reconstructions", "training_curves", "held_out_curves", "error_means", "error_distributions",
           "method_errors", "error_means_grid", "method_grid", "grouped_means", "slice_counts", "paired_scatter",
           "scaling_ratios", "scaling_caption", "depth_profiles", "METHOD_COLOURS"]

#: Views named as the paper's Fig. 8b sorts them: (azimuth, elevation) in degrees.
VIEWS = {"top": (0.0, 90.0), "front": (90.0, 0.0), "side": (0.0, 0.0), "oblique": (55.0, 20.0)}


def _as_image(a) -> np.ndarray:
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)


def opacity(alpha):
    """An x-ray as people look at it: the opacity ``1 - alpha`` (bone bright) of the transparency
    ``alpha`` that the library computes; tensor in, tensor out (array in, array out)."""
    return 1 - alpha


def show_xray(alpha, ax=None, title: str | None = None, cmap: str = "bone"):
    """Draw an x-ray (transparency ``alpha``, ``[H, W]``) on ``ax`` as opacity on the fixed range
    [0, 1], so that images drawn this way compare; returns the matplotlib image."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    image = ax.imshow(_as_image(opacity(alpha)), cmap=cmap, vmin=0, vmax=1)
    if title:
        ax.set_title(title)
    return image


def _displayable(a) -> np.ndarray:
    """Grey ``[H, W]`` as it is, RGB ``[3, H, W]`` (the renderers' layout) as ``[H, W, 3]``."""
    a = _as_image(a)
    return np.moveaxis(a, 0, -1).clip(0, 1) if a.ndim == 3 and a.shape[0] == 3 else a


def labelled_grid(rows: dict[str, Sequence], columns: Sequence[str], size: float = 1.9,
                  cmap: str = "bone", suptitle: str | None = None):
    """Images in named rows under column titles (grey ``[H, W]`` in [0, 1] through ``cmap``, or
    RGB ``[3, H, W]``); ``None`` leaves a cell empty, and a row may be shorter than the titles."""
    if not rows or not columns:
        raise ValueError("labelled_grid needs at least one row and one column title")
    long = [name for name, images in rows.items() if len(images) > len(columns)]
    if long:
        raise ValueError(f"labelled_grid: rows {long} have more images than the {len(columns)} column titles")
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                             figsize=(size * len(columns), size * len(rows) + (0.4 if suptitle else 0)))
    for row, (name, images) in zip(axes, rows.items()):
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
        for ax, image in zip(row, images):
            if image is not None:
                ax.imshow(_displayable(image), cmap=cmap, vmin=0, vmax=1)
        row[0].set_ylabel(_wrapped(name, int(size * 13)), fontsize=8)   # about what fits beside a row
    for ax, title in zip(axes[0], columns):
        ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _wrapped(label: str, width: int) -> str:
    """``label`` with each of its lines broken at spaces to at most ``width`` characters where it can be."""
    return "\n".join(part for line in label.split("\n") for part in textwrap.wrap(line, width) or [""])


def image_grid(images: Sequence, titles: Sequence[str] | None = None, cols: int | None = None,
               cmap: str = "gray", vmin: float = 0.0, vmax: float = 1.0, size: float = 2.4,
               suptitle: str | None = None, colorbar: bool = False):
    """Images in a grid, axes off; returns the figure."""
    n = len(images)
    cols = cols or n
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            im = ax.imshow(_as_image(images[i]), cmap=cmap, vmin=vmin, vmax=vmax)
            if titles:
                ax.set_title(titles[i], fontsize=9)
            if colorbar:
                fig.colorbar(im, ax=ax, fraction=0.046)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def specimen_views(volumes: Sequence[torch.Tensor], names: Sequence[str], views=("top", "front", "side"),
                   chi: float = xray.CHI, render_view: str = "oblique", level: float = 0.1, size: float = 2.0):
    """One row per specimen: its x-rays from ``views`` and a shaded iso-surface render."""
    fig, axes = plt.subplots(len(volumes), len(views) + 1, figsize=(size * (len(views) + 1), size * len(volumes)),
                             squeeze=False)
    for row, (vol, name) in zip(axes, zip(volumes, names)):
        n = vol.shape[-1]
        for ax, view in zip(row, views):
            show_xray(xray.simulate(vol, xray.direction(*VIEWS[view]), chi=chi, n_steps=n), ax, cmap="gray")
        shade = render.iso(vol, xray.direction(*VIEWS[render_view]), level=level, size=2 * n)
        row[-1].imshow(_as_image(shade), cmap="bone", vmin=0, vmax=1)
        row[0].set_ylabel(_wrapped(name, int(size * 13)), fontsize=8)   # about what fits beside a row
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], [f"x-ray, {v}" for v in views] + [f"iso-surface {level}, {render_view}"]):
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def hemisphere(directions: torch.Tensor, ax=None, title: str | None = None):
    """View directions on the +z hemisphere in Lambert's equal-area projection.

    Equal areas on the hemisphere stay equal on the disc, so a uniform sample looks uniform.
    The rim is the horizon (side and front views), the centre the top view.
    """
    d = checks.directions(directions, "hemisphere").reshape(-1, 3).cpu().double()
    r = torch.sqrt(2 * (1 - d[:, 2].clamp(-1, 1))) / math.sqrt(2)   # 1 at the horizon
    phi = torch.atan2(d[:, 1], d[:, 0])
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.scatter((r * phi.cos()).numpy(), (r * phi.sin()).numpy(), s=3, alpha=0.6)
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, lw=1, color="k"))
    for el in (30, 60):
        rr = math.sqrt(2 * (1 - math.sin(math.radians(el)))) / math.sqrt(2)
        ax.add_patch(plt.Circle((0, 0), rr, fill=False, lw=0.5, ls=":", color="k"))
    ax.annotate("+x (side)", (1.02, 0), fontsize=8, va="center")
    ax.annotate("+y (front)", (0, 1.04), fontsize=8, ha="center")
    ax.set_aspect("equal")
    ax.set_xlim(-1.25, 1.35)
    ax.set_ylim(-1.15, 1.2)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def slices(volume: torch.Tensor, title: str | None = None, size: float = 2.4, vmax: float = 1.0):
    """The three central slices of a canonical volume: axial (z), coronal (y), sagittal (x)."""
    v = _as_image(volume)
    d, h, w = v.shape
    images = [v[d // 2], v[:, h // 2, :][::-1], v[:, :, w // 2][::-1]]
    return image_grid(images, ["axial (top)", "coronal (front)", "sagittal (side)"], cmap="gray",
                      vmax=vmax, size=size, suptitle=title)


def reconstructions(xrays, predicted, truth, names, level: float = 0.1, novel=(55.0, 20.0), size: float = 1.9):
    """One row per sample: x-ray, iso-surfaces of prediction and truth from the x-ray's view and
    from a novel view, and a central depth slice of each (view-aligned volumes, depth first)."""
    cols = ["input x-ray", "ours, x-ray view", "truth, x-ray view", "ours, novel view", "truth, novel view",
            "ours, mid-depth slice", "truth, mid-depth slice"]
    fig, axes = plt.subplots(len(names), len(cols), figsize=(size * len(cols), size * len(names)), squeeze=False)
    d = xray.direction(*novel)
    for row, x, pred, gt, name in zip(axes, xrays, predicted, truth, names):
        k = pred.shape[0] // 2
        images = [opacity(x), render.iso(pred, None, level), render.iso(gt, None, level),
                  render.iso(pred, d, level), render.iso(gt, d, level), pred[k], gt[k]]
        for ax, image, cmap in zip(row, images, ["gray", "bone", "bone", "bone", "bone", "gray", "gray"]):
            ax.imshow(_as_image(image), cmap=cmap, vmin=0, vmax=1 if cmap == "bone" or ax is row[0] else 0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(_wrapped(name, int(size * 13)), fontsize=8)   # about what fits beside a row
    for ax, title in zip(axes[0], cols):
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(history, baseline: float | None = None, ax=None):
    """Training and held-out L2 against step, log scale, with the mean-volume baseline."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["train_l2"] for h in history], "o-", ms=3, label="training species (batch mean)")
    ax.plot(steps, [h["val_l2"] for h in history], "s-", ms=3, label="held-out species")
    if baseline is not None:
        ax.axhline(baseline, color="k", ls="--", lw=1, label="predict the mean training volume")
    ax.set(xlabel="step", ylabel="L2 (mean squared voxel error)", yscale="log")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def held_out_curves(runs: dict[str, list[dict]], baseline: float | None = None, ax=None):
    """Held-out L2 of several training runs (``{label: history}``) against the samples each had seen,
    both axes logarithmic, with the mean-volume baseline: how much more training buys."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    for label, history in runs.items():
        ax.plot([h["samples"] for h in history], [h["val_l2"] for h in history], "o-", ms=3, label=label)
    if baseline is not None:
        ax.axhline(baseline, color="k", ls="--", lw=1, label="predict the mean training volume")
    ax.set(xlabel="training samples seen", ylabel="held-out L2", xscale="log", yscale="log")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def depth_profiles(volumes: dict[str, torch.Tensor], rays: Sequence[tuple[int, int]], level: float = 0.1,
                   size: float = 2.6):
    """Density along a few rays (``(row, col)`` pixels of view-aligned volumes ``[D, V, V]``), one
    panel per ray and one line per volume, with the iso-level: where along the ray each volume puts
    its bone, and whether it commits to it or spreads it thin."""
    fig, axes = plt.subplots(1, len(rays), figsize=(size * len(rays), size * 0.8), sharey=True, squeeze=False)
    for ax, (r, c) in zip(axes[0], rays):
        for label, v in volumes.items():
            ax.plot(v[:, r, c].detach().float().cpu().numpy(), label=label, lw=1.2)
        ax.axhline(level, color="k", ls=":", lw=1)
        ax.set(xlabel="depth along the ray (slice)", title=f"ray at pixel ({r}, {c})")
    axes[0, 0].set_ylabel("density")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def scaling_ratios(rows: Sequence[dict], paper: dict | None = None, axes=None):
    """Ours over NN and over ORACLE in both metrics against the training samples seen (rows of
    ``benchmarks/scaling.py``), with the break-even line (below it the network beats memorisation)
    and, given ``paper`` (``scoring.PAPER``), the paper's final ratios as dotted lines (its released
    weights are from iteration 150,000; it does not say its batch size, so not how many samples)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    seen = [r["samples_seen"] for r in rows]
    for ax, metric in zip(axes, ("l2", "dssim")):
        for other, colour in (("nn", METHOD_COLOURS["nn"]), ("oracle", METHOD_COLOURS["oracle"])):
            ax.plot(seen, [r[f"{metric}/{other}"] for r in rows], "o-", color=colour, label=f"ours / {other.upper()}")
            if paper is not None:
                ax.axhline(paper[metric]["ours"] / paper[metric][other], color=colour, ls=":", lw=1.2,
                           label=f"paper, ours / {other.upper()}")
        ax.axhline(1.0, color="k", ls="--", lw=1)
        ax.set(xscale="log", xlabel="training samples seen", title=metric.upper())
    axes[0].set_ylabel("ratio of mean errors (< 1: ours better)")
    axes[-1].legend(fontsize=7)
    axes[0].figure.tight_layout()
    return axes


def scaling_caption(record: dict, crania_version: str) -> str:
    """The line over a scaling record (``benchmarks/scaling.json``): when, on which machine and profile and
    on which crania it was measured, and, when those are not ``crania_version`` (the book's), that it
    stands for the run before the crania changed, scored on the crania of its day."""
    made_on = record.get("generator", "?")
    stale = "" if made_on == crania_version else (f" (this book's crania are {crania_version}: the record is of "
                                                  "the run before they changed, scored on the crania of its day)")
    return (f"Measured {record['measured']} on {record['machine']}, profile `{record['profile']}`, "
            f"crania {made_on}{stale}:")


#: One colour per method, shared by every evaluation figure.
METHOD_COLOURS = {"ours": "#d62728", "ours_unfused": "#ff9896", "ours_surface": "#e377c2", "ours_shipped": "#8c564b",
                  "ours_shipped_even": "#bcbd22", "ours_held_out": "#c49c94",
                  "nn": "#1f77b4", "oracle": "#2ca02c", "classical": "#9467bd"}


def error_means(summary_rows: Sequence[dict], metric_label: str, ax=None):
    """Mean error per method with its confidence interval (the paper's Fig. 6a/c)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 2.6))
    for y, r in enumerate(summary_rows):
        colour = METHOD_COLOURS.get(r["method"], "grey")
        ax.barh(y, r["mean"], color=colour, alpha=0.8)
        if r["n"] > 1:
            ax.errorbar(r["mean"], y, xerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]], color="k", capsize=3)
    ax.set_yticks(range(len(summary_rows)), [f"{r['label']} (n={r['n']})" for r in summary_rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"mean {metric_label} (95% CI), less is better")
    ax.figure.tight_layout()
    return ax


def error_distributions(values: dict[str, Sequence[float]], labels: dict[str, str], metric_label: str, ax=None):
    """Every sample's error, sorted, per method: the share of samples below each error (Fig. 6b/d)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 2.8))
    for method, v in values.items():
        v = np.sort(np.asarray(list(v), dtype=float))
        ax.plot(v, np.arange(1, len(v) + 1) / len(v), drawstyle="steps-post", lw=1.6,
                color=METHOD_COLOURS.get(method, "grey"), label=labels.get(method, method),
                marker="o" if len(v) < 15 else None, ms=3)
    ax.set(xlabel=metric_label, ylabel="share of samples with smaller error", ylim=(0, 1.02))
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax


def method_grid(xrays, volumes: dict[str, Sequence[torch.Tensor]], novel=(55.0, 20.0), level: float = 0.1,
                size: float = 1.7, pixels: int | None = None):
    """The paper's Figs. 5 and 17: per sample the input, then each method's iso-surface from the
    x-ray's view (top row of the pair) and from a novel view (bottom row); ``pixels`` sets the
    renders' side (default: the volumes')."""
    names = list(volumes)
    n = len(xrays)
    fig, axes = plt.subplots(2 * n, len(names) + 1, figsize=(size * (len(names) + 1), 2 * size * n), squeeze=False)
    d = xray.direction(*novel)
    for i, alpha in enumerate(xrays):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        show_xray(alpha, top[0], cmap="gray")
        bottom[0].axis("off")
        for j, name in enumerate(names, start=1):
            v = volumes[name][i]
            top[j].imshow(_as_image(render.iso(v, level=level, size=pixels)), cmap="bone", vmin=0, vmax=1)
            bottom[j].imshow(_as_image(render.iso(v, d, level=level, size=pixels)), cmap="bone", vmin=0, vmax=1)
        for ax in (*top, *bottom[1:]):
            ax.set_xticks([])
            ax.set_yticks([])
        top[0].set_ylabel("x-ray view", fontsize=8)
        bottom[1].set_ylabel("novel view", fontsize=8)
    for ax, title in zip(axes[0], ["input x-ray", *names]):
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def grouped_means(groups: dict[str, dict[str, Sequence[float]]], metric_label: str, ax=None):
    """Mean and 95% CI of an error per group (x axis) and method (colour), e.g. per view class."""
    from xtomo.evaluation import stats

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 2.8))
    methods = list(next(iter(groups.values())))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        for i, per_method in enumerate(groups.values()):
            values = list(per_method.get(method, []))
            if len(values) < 2:
                continue
            ci = stats.mean_ci(values)
            x = i + (j - (len(methods) - 1) / 2) * width
            ax.bar(x, ci.mean, width, color=METHOD_COLOURS.get(method, "grey"), alpha=0.8,
                   label=method if i == 0 else None)
            ax.errorbar(x, ci.mean, yerr=[[ci.mean - ci.low], [ci.high - ci.mean]], color="k", capsize=2, lw=1)
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={len(next(iter(v.values())))})" for g, v in groups.items()],
                  fontsize=8)
    ax.set_ylabel(f"mean {metric_label} (95% CI)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax


def method_errors(rows: Sequence[dict], metrics: dict[str, str] | None = None):
    """Chapter 5's results at a glance (the paper's Fig. 6): per metric (a column; ``metrics`` maps
    each to its label, default ``scoring.METRIC_LABELS``), the mean error per method with its 95%
    CI above, every sample's error sorted below."""
    from xtomo.evaluation import scoring

    metrics = metrics or scoring.METRIC_LABELS
    fig, axes = plt.subplots(2, len(metrics), figsize=(5 * len(metrics), 6), squeeze=False)
    for col, (m, label) in enumerate(metrics.items()):
        error_means(scoring.summary(rows, m), label, ax=axes[0, col])
        values = {method: list(v.values()) for method, v in scoring.by_method(rows, m).items()}
        error_distributions(values, scoring.METHODS, label, ax=axes[1, col])
    fig.tight_layout()
    return fig


def error_means_grid(groups: dict[str, Sequence[dict]], metrics: dict[str, str] | None = None,
                     size: tuple = (5.0, 2.5)):
    """``error_means`` for several groups of results rows (one row of panels each, titled with the
    group's name) and metrics (one column each, ``metrics`` mapping each to its label, default
    ``scoring.METRIC_LABELS``)."""
    from xtomo.evaluation import scoring

    metrics = metrics or scoring.METRIC_LABELS
    fig, axes = plt.subplots(len(groups), len(metrics), squeeze=False,
                             figsize=(size[0] * len(metrics), size[1] * len(groups)))
    for row, (name, part) in zip(axes, groups.items()):
        for ax, (m, label) in zip(row, metrics.items()):
            error_means(scoring.summary(part, m), label, ax=ax)
            ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def slice_counts(table, ax=None):
    """The slice-count study (the paper's Figs. 7, 8a) from ``scoring.slice_table``: mean DSSIM
    against the full output, with 1.96 standard errors, per number of depth slices kept."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3))
    ax.errorbar(table.index, table["mean"], yerr=1.96 * table["sem"], marker="o", capsize=3)
    ax.set(xscale="log", xlabel="depth slices kept", ylabel="DSSIM against the full output")
    ax.set_xticks(list(table.index), [str(s) for s in table.index])
    ax.figure.tight_layout()
    return ax


def paired_scatter(x: dict, y: dict, xlabel: str, ylabel: str, title: str = "one dot per held-out sample",
                   ax=None):
    """One dot per sample of ``y`` (``{sample: value}``) against the same sample in ``x``, with the
    diagonal: dots below it are samples where ``y`` is smaller."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.4))
    common = sorted(y)
    ax.scatter([x[s] for s in common], [y[s] for s in common], s=8)
    lim = max(max(y.values()), max(x.values()))
    ax.plot([0, lim], [0, lim], "k--", lw=1)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.figure.tight_layout()
    return ax
