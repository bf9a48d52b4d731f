"""Chapter 1's realism check: the real head beside the procedural crania, in statistics and to a
machine observer.

``realism_specimens`` picks the procedural skulls to compare (one species of every order, and
every primate family, whose skulls the human head should resemble most); ``realism_report``
measures them and the real skull the same way (``xtomo.evaluation.realism``: bone, shell
thickness, surface, relief, density and x-ray texture) and asks a machine observer, as in
chapter 7, to tell their x-rays apart on views it was not trained on. One real head can show where
the generator is off for this head; it cannot show the spread of real skulls.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from xtomo import _checks as checks
from xtomo.evaluation import realism
from xtomo.imaging import xray
from xtomo.profiles import Profile, get_profile
from xtomo.specimens import crania
from xtomo.study.observers import Discrimination, realism_discriminator

__all__ = ["RealismReport", "realism_specimens", "realism_report"]


@dataclass(frozen=True)
class RealismReport:
    """Statistics per specimen (``real`` names the real one), the real value against the range of
    all procedural skulls and of the primates alone, and the observer's held-out accuracy."""

    real: str
    stats: dict
    table: pd.DataFrame
    primates: pd.DataFrame
    observer: Discrimination


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


def realism_report(real: torch.Tensor, procedural: dict[str, tuple[str, torch.Tensor]], real_name: str = "real head",
                   views: int = 8, observer_views: int = 48, seed: int = 0, cnn_steps: int = 150) -> RealismReport:
    """Measure ``real`` and every ``procedural`` skull (``realism_specimens``' form) alike: volume
    statistics, and x-ray statistics over ``views`` seeded directions; then a CNN observer fitted
    on three quarters of ``observer_views`` directions (the real head's x-rays against procedural
    ones, each direction shown with a skull in turn) and tested on the rest."""
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
    judge = realism_discriminator(_xrays(real, looks), fakes, seed=seed, steps=cnn_steps)
    return RealismReport(real_name, stats, realism.realism_table(stats[real_name], others),
                         realism.realism_table(stats[real_name], primates), judge)
