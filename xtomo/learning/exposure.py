"""How dense an x-ray's specimen looks, and bringing an x-ray into the range a network was trained on.

A network learns from x-rays whose specimens attenuate within some range; a CT in other units, a
lighter specimen or another exposure can fall outside it, where the network has never been asked
anything. Scaling every line integral of an x-ray by ``g`` is raising it to ``alpha ** g``, the x-ray
of the same specimen ``g`` times as dense, so the network's answer to that, divided by ``g``, is an
answer to the original from inside the range (``inference.infer``). Measured on the real head made
lighter and denser: ``benchmarks/density_scale.py`` (RESULTS.md, ``density``).
"""
from __future__ import annotations

import torch

import xtomo._checks as checks
from xtomo.imaging.xray import CHI

__all__ = ["AIR", "QUANTILES", "SAMPLES", "level", "span", "gain", "of_training", "of_checkpoint"]

#: the line integral (mean density along the ray across the cube) under which a pixel counts as air
AIR = 0.002
#: the share of training x-rays a span leaves out below and above it
QUANTILES = (0.01, 0.99)
#: how many training x-rays ``of_training`` measures
SAMPLES = 256


def level(alpha: torch.Tensor, chi: float = CHI) -> torch.Tensor:
    """The median line integral ``-ln(alpha) / chi`` over each x-ray's specimen (its pixels denser than
    ``AIR``): ``[B]`` for x-rays ``[B, ..., H, W]``, a scalar for one ``[H, W]``; 0 with no specimen."""
    a = checks.alpha(alpha, "x-ray").float()
    integral = -a.clamp_min(torch.finfo(torch.float32).tiny).log() / chi
    flat = integral.reshape(-1, integral.shape[-2] * integral.shape[-1]) if a.dim() > 2 else integral.reshape(1, -1)
    inside = flat > AIR
    median = flat.masked_fill(~inside, float("nan")).nanmedian(dim=1).values.nan_to_num(0.0)
    return median[0] if a.dim() == 2 else median


def span(xrays, chi: float = CHI, quantiles: tuple[float, float] = QUANTILES) -> tuple[float, float]:
    """The ``quantiles`` of the specimen ``level`` over training x-rays (a tensor ``[N, ..., H, W]`` or an
    iterable of batches): the exposure range a network trained on them has seen."""
    batches = [xrays] if torch.is_tensor(xrays) else list(xrays)
    levels = torch.cat([level(b, chi).reshape(-1) for b in batches])
    levels = levels[levels > 0]
    if levels.numel() == 0:
        raise ValueError("exposure span: none of the x-rays shows a specimen")
    lo, hi = torch.quantile(levels.double(), torch.tensor(quantiles, dtype=torch.float64)).tolist()
    return float(lo), float(hi)


def gain(alpha: torch.Tensor, within: tuple[float, float] | None, chi: float = CHI) -> torch.Tensor:
    """The factor ``g`` (``[B]``, or a scalar for one x-ray) that brings each x-ray's ``level`` into
    ``within`` = (low, high): 1 inside it, and where there is no specimen or no span."""
    lv = level(alpha, chi)
    if within is None:
        return torch.ones_like(lv)
    lo, hi = (float(v) for v in within)
    if not 0 < lo <= hi:
        raise ValueError(f"exposure span must be 0 < low <= high, got {within!r}")
    return torch.where(lv > 0, lv.clamp(lo, hi) / lv.clamp_min(torch.finfo(torch.float32).tiny), 1.0)


def of_training(p, train_set=None) -> tuple[float, float]:
    """The ``span`` of a profile's training x-rays, augmented as training makes them: up to ``SAMPLES``
    seeded samples of ``train_set`` (a dataset of ``{"xray": ...}`` items; default: the profile's)."""
    if train_set is None:
        from xtomo.learning.train import train_val_sets

        train_set = train_val_sets(p)[0]
    picked = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(p.seed + 11))[:SAMPLES]
    return span(torch.stack([train_set[i]["xray"] for i in picked.tolist()]), p.chi)


def of_checkpoint(ck: dict) -> tuple[float, float] | None:
    """The span a checkpoint's network was trained on: stored by training, or in a shipped model's
    manifest; None for checkpoints from before spans were measured."""
    found = ck.get("exposure") or ck.get("manifest", {}).get("exposure")
    return tuple(float(v) for v in found) if found else None
