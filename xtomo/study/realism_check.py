"""Chapter 1's realism check: the real head beside the procedural crania, in statistics and to a
machine observer.

``realism_specimens`` picks the procedural skulls to compare (one species of every order, and
every primate family, whose skulls the human head should resemble most); ``realism_report``
measures them and the real skull the same way (``xtomo.evaluation.realism``: bone, shell
thickness, surface, relief, density and x-ray texture) and asks machine observers, as in
chapter 7, to tell their x-rays apart on views they were not trained on: one sees whole x-rays
(and so also the one real head's shape), the other only patches of them (``xray_patches``: the
bone's texture). One real head can show where the generator is off for this head; it cannot show
the spread of real skulls.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from xtomo import _checks as checks
from xtomo.evaluation import realism
from xtomo.imaging import xray
from xtomo.profiles import Profile, get_profile
from xtomo.specimens import crania
from xtomo.study.observers import Discrimination, realism_discriminator

__all__ = ["RealismReport", "realism_specimens", "realism_report", "xray_patches", "PATCH", "PATCH_FLOOR"]

PATCH = 0.25       #: side of a texture patch, a fraction of the x-ray's side
PATCH_FLOOR = 0.15  #: opacity a patch's centre must reach: patches lie on the specimen, not on air


@dataclass(frozen=True)
class RealismReport:
    """Statistics per specimen (``real`` names the real one), the real value against the range of
    all procedural skulls and of the primates alone, and the held-out accuracy of the observer of
    whole x-rays and of the observer of patches (texture)."""

    real: str
    stats: dict
    table: pd.DataFrame
    primates: pd.DataFrame
    observer: Discrimination
    texture_observer: Discrimination


def realism_specimens(profile: Profile | str = "quick", size: int = 128) -> dict[str, tuple[str, torch.Tensor]]:
    """``{species name: (order, volume)}``: the first species of each order in the catalogue and the
    first of each primate family, at ``size^3``."""
    p = get_profile(profile)
    size = checks.integer(size, "size", minimum=16, what="realism_specimens")
    chosen, seen = [], set()
    for s in crania.catalog(p.n_species, seed=p.seed):
        key = s.family if s.order == "Primates" else s.order
        if key not in seen:
            seen.add(key)
            chosen.append(s)
    return {s.name: (s.order, crania.skull(s, size, seed=p.seed)) for s in chosen}


def _xrays(volume: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    return torch.stack([xray.simulate(volume, d) for d in directions])


def xray_patches(alphas: torch.Tensor, per_view: int = 4, size: float = PATCH, floor: float = PATCH_FLOOR,
                 seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """``per_view`` square patches of side ``size`` (a fraction of the side) from each x-ray
    ``[N, H, W]`` (alpha), centred on seeded pixels of opacity at least ``floor``, and the index
    of the x-ray each came from: ``([N * per_view, s, s], [N * per_view])``. A patch shows the
    bone's texture without the specimen's outline."""
    alphas = checks.alpha(alphas, "xray_patches")
    if alphas.ndim != 3:
        raise ValueError(f"xray_patches: alphas must be x-rays [N, H, W], got shape {tuple(alphas.shape)}")
    per_view = checks.integer(per_view, "per_view", minimum=1, what="xray_patches")
    side = int(round(checks.number(size, "size", above=0, maximum=1, what="xray_patches") * min(alphas.shape[1:])))
    if side < 4:
        raise ValueError(f"xray_patches: size = {size} gives patches of {side} px; the x-rays are too small")
    g = torch.Generator().manual_seed(checks.integer(seed, "seed", minimum=0, what="xray_patches"))
    half = side // 2
    out = []
    for view, alpha in enumerate(alphas):  # a few views, each a vectorised draw
        inner = (1 - alpha)[half:alpha.shape[0] - side + half + 1, half:alpha.shape[1] - side + half + 1]
        ys, xs = torch.nonzero(inner >= floor, as_tuple=True)
        if len(ys) == 0:
            raise ValueError(f"xray_patches: x-ray {view} has no pixel of opacity >= {floor} away from its border")
        pick = torch.randint(len(ys), (per_view,), generator=g)
        out += [alpha[y:y + side, x:x + side] for y, x in zip(ys[pick].tolist(), xs[pick].tolist())]
    return torch.stack(out), np.repeat(np.arange(len(alphas)), per_view)


def realism_report(real: torch.Tensor, procedural: dict[str, tuple[str, torch.Tensor]], real_name: str = "real head",
                   views: int = 8, observer_views: int = 48, seed: int = 0, cnn_steps: int = 150) -> RealismReport:
    """Measure ``real`` and every ``procedural`` skull (``realism_specimens``' form) alike: volume
    statistics, and x-ray statistics over ``views`` seeded directions; then a CNN observer fitted
    on three quarters of ``observer_views`` directions (the real head's x-rays against procedural
    ones, each direction shown with a skull in turn) and tested on the rest; and a second CNN on
    patches of the same x-rays (``xray_patches``), split by the same rule."""
    views = checks.integer(views, "views", minimum=1, what="realism_report")
    observer_views = checks.integer(observer_views, "observer_views", minimum=8, what="realism_report")
    if not procedural:
        raise ValueError("realism_report: procedural must name at least one skull")
    directions = xray.sample_directions(views, seed=seed)
    stats = {real_name: realism.volume_stats(real) | realism.xray_stats(_xrays(real, directions))}
    for name, (_, volume) in procedural.items():
        stats[name] = realism.volume_stats(volume) | realism.xray_stats(_xrays(volume, directions))
    others = {n: s for n, s in stats.items() if n != real_name}
    primates = {n: others[n] for n, (order, _) in procedural.items() if order == "Primates"} or others
    looks = xray.sample_directions(observer_views, seed=seed + 1)
    skulls = [v for _, v in procedural.values()]
    fakes = torch.stack([xray.simulate(skulls[i % len(skulls)], d) for i, d in enumerate(looks)])
    reals = _xrays(real, looks)
    judge = realism_discriminator(reals, fakes, seed=seed, steps=cnn_steps)
    (real_patches, real_views), (fake_patches, fake_views) = (xray_patches(reals, seed=seed),
                                                              xray_patches(fakes, seed=seed + 1))
    texture = realism_discriminator(real_patches, fake_patches, real_views, fake_views, seed=seed, steps=cnn_steps)
    return RealismReport(real_name, stats, realism.realism_table(stats[real_name], others),
                         realism.realism_table(stats[real_name], primates), judge, texture)
