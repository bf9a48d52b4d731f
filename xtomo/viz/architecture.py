"""The network drawn from the model object itself, after the paper's Fig. 4 (chapter 2)."""
from __future__ import annotations

import math

from xtomo.learning.model import XrayToVolume, describe, footprint

__all__ = ["KIND_COLOURS", "draw"]

#: Fill colour per block kind, after the paper's Fig. 4 (grey before, orange/blue around, pink after).
KIND_COLOURS = {"stem": "#9e9e9e", "residual": "#f4a261", "pool": "#e76f51",
                "upsample": "#4a90d9", "head": "#e58fb5"}


#: Drawing sizes in data units: the tallest box, box width per bit of channels, the gap between boxes.
TALL, PER_BIT, GAP = 3.0, 0.1, 0.35


def draw(model: XrayToVolume, ax=None):
    """The architecture drawn from ``describe(model)``; returns the figure.

    Boxes in execution order: height ∝ spatial resolution, width ∝ log2(channels), colour by kind;
    arrows for the flow, curved lines from each skip's source to the upsampling that adds it.
    """
    import matplotlib.pyplot as plt

    rows = describe(model)
    total = footprint(model, rows)
    boxes, end = _boxes(rows)
    arcs = _skip_arcs(rows, boxes)
    labels = _labels(rows)
    left, right = -GAP - 1.8, end + 1.6
    scale = max(0.42, 9.0 / (right - left))  # inches per data unit when we make the figure
    label_depth = 0.3 + max(map(len, labels)) * 0.055 / scale  # 7 pt text, rotated
    bottom, top = -TALL / 2 - label_depth, max(arcs.values(), default=TALL / 2) + 1.0
    if ax is None:
        fig, ax = plt.subplots(figsize=(scale * (right - left), scale * (top - bottom) + 0.4))
    fig = ax.figure
    _paint_blocks(ax, rows, labels, boxes)
    _paint_skips(ax, arcs, boxes)
    _paint_ends_and_legend(ax, rows, end)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{type(model).__name__}: {total['params']:,} parameters, "
                 f"{total['gmac']:.3g} GMAC per x-ray, {total['convs']} convolutions", fontsize=9)
    fig.tight_layout()
    return fig


def _boxes(rows: list[dict]) -> tuple[list[tuple[float, float, float]], float]:
    """Each block's box ``(x, width, height)``, left to right, and where the last gap ends."""
    top_res = max(r["out_shape"][-1] for r in rows)
    boxes, x = [], 0.0
    for r in rows:
        w = PER_BIT * math.log2(max(r["out_shape"][0], 2))
        h = TALL * r["out_shape"][-1] / top_res
        boxes.append((x, w, h))
        x += w + GAP
    return boxes, x


def _skip_arcs(rows: list[dict], boxes: list[tuple]) -> dict[tuple[int, int], float]:
    """Per skip (source block, upsampling block): the height of its arc, above the blocks it spans
    and above the arcs inside it (innermost first)."""
    index = {r["name"]: i for i, r in enumerate(rows)}
    links = sorted(((index[r["skip_from"]], i) for i, r in enumerate(rows) if "skip_from" in r),
                   key=lambda ab: ab[1] - ab[0])
    peak_of = {}
    for a, b in links:
        inner = [p for (a2, b2), p in peak_of.items() if a <= a2 and b2 <= b]
        peak_of[(a, b)] = max([boxes[k][2] / 2 for k in range(a, b + 1)] + inner) + 0.45
    return peak_of


def _labels(rows: list[dict]) -> list[str]:
    """Each block's own name, with its output shape where that changes."""
    labels = []
    for i, r in enumerate(rows):
        c, n, _ = r["out_shape"]
        new_shape = i == 0 or r["out_shape"] != rows[i - 1]["out_shape"]
        labels.append(r["name"].rsplit(".", 1)[-1] + (f"  {c}×{n}²" if new_shape else ""))
    return labels


def _paint_blocks(ax, rows: list[dict], labels: list[str], boxes: list[tuple]) -> None:
    """The boxes, coloured by kind and labelled below, and the arrows between them."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    for r, label, (x0, w, h) in zip(rows, labels, boxes):
        ax.add_patch(Rectangle((x0, -h / 2), w, h, facecolor=KIND_COLOURS[r["kind"]],
                               edgecolor="#333333", linewidth=0.6, zorder=3))
        ax.text(x0 + w / 2, -TALL / 2 - 0.15, label, rotation=90, ha="center", va="top", fontsize=7)
    for (x0, w, _), (x1, _, _) in zip(boxes, boxes[1:]):
        ax.add_patch(FancyArrowPatch((x0 + w, 0), (x1, 0), arrowstyle="-|>", mutation_scale=7,
                                     linewidth=0.7, color="#333333", shrinkA=0, shrinkB=0, zorder=4))


def _paint_skips(ax, arcs: dict[tuple[int, int], float], boxes: list[tuple]) -> None:
    """Each skip as a dashed cubic Bézier from its source's top to the upsampling's top."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    for (a, b), peak in arcs.items():
        xa, wa, ha = boxes[a]
        xb, wb, hb = boxes[b]
        p0, p3 = (xa + wa / 2, ha / 2), (xb + wb / 2, hb / 2)
        ctrl = peak + (peak - max(p0[1], p3[1])) / 3  # a cubic Bézier reaches 3/4 of its controls
        path = MplPath([p0, (p0[0], ctrl), (p3[0], ctrl), p3],
                       [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4])
        ax.add_patch(PathPatch(path, facecolor="none", edgecolor=KIND_COLOURS["upsample"],
                               linewidth=1.1, linestyle="--", zorder=2))


def _paint_ends_and_legend(ax, rows: list[dict], end: float) -> None:
    """The input and output shapes at either end, and the legend of kinds."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    c_in, n_in, _ = rows[0]["in_shape"]
    c_out, n_out, _ = rows[-1]["out_shape"]
    ax.text(-GAP, 0, f"x-ray\n{c_in}×{n_in}²", ha="right", va="center", fontsize=8)
    ax.text(end, 0, f"volume\n{c_out}×{n_out}²", ha="left", va="center", fontsize=8)
    handles = [Rectangle((0, 0), 1, 1, facecolor=col, edgecolor="#333333") for col in KIND_COLOURS.values()]
    handles.append(plt.Line2D([], [], color=KIND_COLOURS["upsample"], linestyle="--"))
    ax.legend(handles, [*KIND_COLOURS, "skip"], loc="upper left", fontsize=7, ncol=6, frameon=False,
              bbox_to_anchor=(0, 1.0))
