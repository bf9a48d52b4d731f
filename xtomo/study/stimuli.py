"""The stimulus pairs of the two studies, made from this project's own results and real radiographs.

Study 1 (Sec. 5.3): canonical iso-surface renders (``render.iso``, the x-ray's view, the render of
chapter 5's DSSIM) of a held-out skull and of our reconstruction of it. The paper showed its 10
best results by SSIM; choosing the best flatters the method, so a seeded random draw of the
evaluated samples is made too. Study 2 (Sec. 5.6): crops of real radiographs against synthetic
x-rays of held-out crania, resampled to one size and shown through one contrast stretch.

Each maker also returns training pairs for the machine observers, disjoint from the trial
stimuli: other evaluation samples (study 1); other halves of the radiographs and training
species (study 2).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from xtomo import _checks as checks
from xtomo.data import io, realdata
from xtomo.evaluation import scoring
from xtomo.files import artifacts_dir, read_csv, require_artifact
from xtomo.imaging import render
from xtomo.profiles import Profile, get_profile

from .protocol import Pair, Stimulus

__all__ = ["LABELS", "stretch", "iso_selection", "iso_pairs", "xray_pairs", "crop", "pairs_figure"]

#: How the real and the fake image of each kind of study are called in figures.
LABELS = {"iso": ("ground truth", "ours"), "xray": ("real radiograph", "synthetic x-ray")}
LOW, HIGH = 0.5, 99.5   # percentiles of the display stretch


def _profile(profile) -> Profile:
    return get_profile(profile)


def _count(value, name: str, low: int = 0) -> int:
    return checks.integer(value, name, minimum=low)


def stretch(opacity) -> np.ndarray:
    """Display values in [0, 1]: ``opacity`` linearly stretched from its 0.5th to its 99.5th percentile.

    Every x-ray stimulus, real or synthetic, goes through this one mapping, so neither class is
    shown with a contrast of its own; values beyond the two percentiles saturate, as on a viewer.
    """
    x = opacity.detach().cpu().double().numpy() if torch.is_tensor(opacity) else np.asarray(opacity, float)
    lo, hi = np.percentile(x, [LOW, HIGH])
    if not hi > lo:
        raise ValueError(f"stretch: the image is (nearly) constant ({lo:g} to {hi:g}); nothing to show")
    return np.clip((x - lo) / (hi - lo), 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------- study 1: iso renders

def iso_selection(rows: list[dict], n: int = 10, train: int = 0, seed: int = 0) -> dict[str, list[int]]:
    """Which evaluation samples study 1 uses, from chapter 5's result rows: ``iso-best`` (our ``n``
    lowest DSSIM, i.e. highest SSIM, as in the paper), ``iso-random`` (a seeded draw of ``n``) and
    ``iso-train`` (up to ``train`` further samples, in neither set, for the machine observers)."""
    n, train, seed = _count(n, "n", 1), _count(train, "train"), _count(seed, "seed")
    dssim = scoring.by_method(rows, "dssim").get("ours")
    if not dssim:
        raise ValueError("the evaluation rows have no result of our method; rerun chapter 5 (evaluation)")
    samples = sorted(dssim)
    n = min(n, len(samples))
    best = sorted(samples, key=lambda s: (dssim[s], s))[:n]
    rng = np.random.default_rng([seed, 1])
    drawn = sorted(rng.choice(samples, size=n, replace=False).tolist())
    rest = [s for s in samples if s not in set(best) | set(drawn)]
    extra = sorted(rng.choice(rest, size=min(train, len(rest)), replace=False).tolist()) if rest else []
    return {"iso-best": best, "iso-random": drawn, "iso-train": extra}


def iso_pairs(profile: Profile | str = "quick", n: int = 10, train: int = 0, seed: int = 0,
              size: int | None = None, out_dir: str | os.PathLike | None = None,
              rows: list[dict] | None = None) -> dict[str, list[Pair]]:
    """Study-1 pairs for the samples of ``iso_selection`` (``iso-best``, ``iso-random``, ``iso-train``),
    from chapter 5's ``evaluation.csv`` in the profile's artifacts (or ``rows``).

    Each pair is the truth's render (real) and ours (fake), ``size`` pixels square (default the
    profile's x-ray size), from the x-ray's view at the iso-value of chapter 5.
    """
    p = _profile(profile)
    out = Path(out_dir) if out_dir else artifacts_dir(p.name)
    if rows is None:
        rows = read_csv(require_artifact(out / "evaluation.csv", "chapter 5 (evaluation)"))
    chosen = iso_selection(rows, n, train, seed)
    images = _iso_renders(sorted(set().union(*chosen.values())), p, rows, out, size or p.xray_size)
    info = {int(r["sample"]): r for r in rows if r["method"] == "ours"}

    def pair(s: int) -> Pair:
        r = info[s]
        what = f"evaluation sample {s} ({r['species']}, {r['view_class']} view; DSSIM {float(r['dssim']):.3f})"
        truth, ours = images[s]
        return Pair(f"iso-s{s}", Stimulus(f"iso-s{s}-truth", truth, f"ground truth of {what}"),
                    Stimulus(f"iso-s{s}-ours", ours, f"our reconstruction of {what}"))

    return {key: [pair(s) for s in samples] for key, samples in chosen.items()}


def _iso_renders(samples: list[int], p: Profile, rows: list[dict], out: Path, size: int,
                 chunk: int = 16) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """``{sample: (truth render, our render)}``, volumes regenerated by ``scoring.volumes_of``."""
    images = {}
    for start in range(0, len(samples), chunk):
        part = samples[start:start + chunk]
        vols = scoring.volumes_of(part, p, rows, out_dir=out)
        shown = render.iso(torch.stack(vols["truth"] + vols["ours"]), level=scoring.LEVEL, size=size)
        for i, s in enumerate(part):
            images[s] = (shown[i].clamp(0, 1), shown[len(part) + i].clamp(0, 1))
    return images


# ----------------------------------------------------------------------------- study 2: x-rays

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def crop(opacity: torch.Tensor, size: int, rng: np.random.Generator, min_fraction: float = 0.5,
         min_std: float = 0.05, tries: int = 100) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """A random square crop of ``opacity`` (side ``min_fraction`` to 1 of its shorter edge), area-
    resampled to ``size``; crops with a standard deviation below ``min_std`` (blank collimator
    borders) are redrawn. Returns the crop and its (row, col, side) in the input."""
    rows, cols = opacity.shape
    short = min(rows, cols)
    for _ in range(tries):
        side = int(rng.integers(max(size, int(min_fraction * short)), short + 1)) if short > size else short
        r, c = int(rng.integers(0, rows - side + 1)), int(rng.integers(0, cols - side + 1))
        window = opacity[r:r + side, c:c + side]
        if float(window.std()) >= min_std:
            return F.interpolate(window[None, None], size=(size, size), mode="area")[0, 0], (r, c, side)
    raise ValueError(f"crop: no {min_fraction:g}+ crop of a {rows}x{cols} image has contrast "
                     f"(std >= {min_std}) after {tries} tries")


def _halves(opacity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The image cut in two along its longer edge: (first half for trials, second for training)."""
    rows, cols = opacity.shape
    if cols >= rows:
        return opacity[:, : cols // 2], opacity[:, cols // 2:]
    return opacity[: rows // 2], opacity[rows // 2:]


def xray_pairs(profile: Profile | str = "quick", n: int = 10, train: int = 0, seed: int = 0,
               size: int | None = None, radiographs: list[str] | None = None) -> dict[str, list[Pair]]:
    """Study-2 pairs: ``xray`` (``n`` real-against-synthetic pairs) and ``xray-train`` (``train`` more).

    Real images are random crops of the real radiographs (``realdata.RADIOGRAPHS``, all of them by
    default, taken in turn); synthetic ones are x-rays of held-out species (trials) or training
    species (training pairs), so the two sets share no skull. Each radiograph is cut in half along
    its longer edge: trial crops come from the first half, training crops from the second, so they
    share no pixel. Both classes are resampled to ``size`` (default the profile's x-ray size) and
    shown through ``stretch``.
    """
    from xtomo.learning.train import train_val_sets

    p = _profile(profile)
    n, train, seed = _count(n, "n", 1), _count(train, "train"), _count(seed, "seed")
    size = _count(size or p.xray_size, "size", 8)
    names = list(realdata.RADIOGRAPHS) if radiographs is None else list(radiographs)
    unknown = [name for name in names if name not in realdata.RADIOGRAPHS]
    if not names or unknown:
        raise ValueError(f"radiographs must name some of {sorted(realdata.RADIOGRAPHS)}, got {names!r}")
    halves = {name: _halves(1 - io.load_xray(realdata.RADIOGRAPHS[name].path)) for name in names}
    train_set, val_set = train_val_sets(p)
    out = {}
    for key, count, half, dataset, stream in (("xray", n, 0, val_set, 2), ("xray-train", train, 1, train_set, 3)):
        rng = np.random.default_rng([seed, stream])
        picks = rng.choice(len(dataset), size=count, replace=False).tolist() if count else []
        pairs = []
        for i, index in enumerate(picks):
            name = names[i % len(names)]
            real, (r, c, side) = crop(halves[name][half], size, rng)
            item = dataset[index]
            synthetic = 1 - item["xray"][0]
            if synthetic.shape[-1] != size:
                synthetic = F.interpolate(synthetic[None, None], size=(size, size), mode="area")[0, 0]
            species = dataset.bank.name(item["specimen"])
            pid = f"{key}-{i:02d}"
            pairs.append(Pair(pid, Stimulus(f"{pid}-real-{_slug(name)}", stretch(real),
                                            f"{name}: {side}-pixel crop at ({r}, {c}) of half {half + 1}"),
                              Stimulus(f"{pid}-synthetic", stretch(synthetic),
                                       f"synthetic x-ray of {species}, view {item['view']}"
                                       f"{', mirrored' if item['mirrored'] else ''}")))
        out[key] = pairs
    return out


# ----------------------------------------------------------------------------- a figure of pairs

def pairs_figure(pairs: list[Pair], kind: str, cols: int = 4, size: float = 1.7, title: str | None = None):
    """Pairs side by side, real image first, labelled with ``LABELS[kind]``; returns the figure."""
    if kind not in LABELS:
        raise ValueError(f"kind must be one of {sorted(LABELS)}, got {kind!r}")
    pairs = list(pairs)
    cols = max(1, min(cols, len(pairs)))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2 * cols * size, rows * size + (0.4 if title else 0.1)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, pair in enumerate(pairs):
        for j, (stimulus, label) in enumerate(zip((pair.real, pair.fake), LABELS[kind])):
            ax = axes[i // cols, 2 * (i % cols) + j]
            ax.imshow(stimulus.image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{pair.id}\n{label}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
