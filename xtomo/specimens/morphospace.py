"""Where species lie in shape space, and how close a held-out species' nearest training twin is.

The memorising baselines of chapter 5 (NN, ORACLE) can only be as good as the closest training
skull to a held-out one; the paper's 175 real species rarely offered a near twin. ``twin_distances``
measures that closeness on the volumes themselves; ``coordinates`` places each species in the
space of its proportions (log sizes, standardised, then projected on principal axes) for a map.
"""
from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import torch

from xtomo._checks import integer
from xtomo.specimens.proportions import Proportions

__all__ = ["proportion_vector", "coordinates", "twin_distances"]


def proportion_vector(p: Proportions) -> np.ndarray:
    """The proportions as numbers: log of each size (``log1p`` over its scale, so absent parts are
    0), switches and counts as they are."""
    out = []
    for f in fields(Proportions):
        value = float(getattr(p, f.name))
        out.append(math.log1p(value / max(abs(float(f.default)), 1e-3)))
    return np.array(out)


def coordinates(params: list[Proportions], dims: int = 2) -> np.ndarray:
    """``[n, dims]`` principal coordinates of species' standardised proportion vectors."""
    dims = integer(dims, "dims", minimum=1, maximum=len(fields(Proportions)), what="coordinates")
    if len(params) < 2:
        raise ValueError(f"coordinates: need at least 2 species, got {len(params)}")
    x = np.stack([proportion_vector(p) for p in params])
    spread = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    _, _, axes = np.linalg.svd(x, full_matrices=False)
    return x @ axes[:dims].T


def twin_distances(volumes: torch.Tensor, train: list[int], val: list[int], relative: bool = False) -> torch.Tensor:
    """For each held-out species ``val[i]``: the RMS density difference to its nearest training
    species (``volumes [n, D, H, W]``, one per species, aligned in the canonical frame).

    ``relative``: divided by the median distance to all training species, so that thinner or
    lighter bone, which shrinks every difference, does not pass for a nearer twin (1 means the
    nearest twin is no closer than a typical species).
    """
    if volumes.ndim != 4:
        raise ValueError(f"twin_distances: expected volumes [n, D, H, W], got shape {tuple(volumes.shape)}")
    if not train or not val:
        raise ValueError("twin_distances: train and val must both name at least one species")
    if set(train) & set(val):
        raise ValueError(f"twin_distances: species in both train and val: {sorted(set(train) & set(val))}")
    flat = volumes.reshape(len(volumes), -1).double()
    d = torch.cdist(flat[val], flat[train]) / math.sqrt(flat.shape[1])
    nearest = d.min(dim=1).values
    return (nearest / d.median(dim=1).values if relative else nearest).float()
