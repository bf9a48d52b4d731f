"""Analytic test objects whose x-rays have closed forms: the yardsticks of the forward model."""
from __future__ import annotations

import torch

from xtomo._checks import integer, number, positive

__all__ = ["ball", "ball_xray"]


def ball(size: int, radius: float, density: float = 1.0, centre=(0.0, 0.0, 0.0),
         supersample: int = 4) -> torch.Tensor:
    """A uniform ball ``[size]^3`` with partial-volume voxels (exact along z).

    Each voxel holds ``density`` times the fraction of it inside the ball: the chord's overlap
    with the voxel along z, averaged over ``supersample^2`` sub-columns across x and y. Seen
    from the top it therefore integrates to the pixel-averaged chord exactly.
    """
    size = integer(size, "size", minimum=1, what="ball")
    supersample = integer(supersample, "supersample", minimum=1, what="ball")
    radius = number(radius, "radius (to fit the unit cube)", above=0, maximum=0.5, what="ball")
    n, h = size * supersample, 1.0 / size
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
    y, x = torch.meshgrid(t - centre[1], t - centre[0], indexing="ij")
    half = (radius**2 - x**2 - y**2).clamp_min(0).sqrt()  # half-chord of every sub-column
    lo, hi = centre[2] - half, centre[2] + half
    z0 = torch.arange(size, dtype=torch.float64)[:, None, None] * h - 0.5
    overlap = (torch.minimum(hi[None], z0 + h) - torch.maximum(lo[None], z0)).clamp_min(0) / h
    out = torch.nn.functional.avg_pool2d(overlap, supersample)
    return (density * out).float()


def ball_xray(size: int, radius: float, density: float = 1.0, chi: float = 10.0,
              supersample: int = 1) -> torch.Tensor:
    """Closed-form x-ray of a centred ball: ``exp(-chi * density * 2 sqrt(r^2 - rho^2))``.

    With ``supersample`` > 1 the chord is averaged over each pixel's footprint first, which is
    what a partial-volume ball integrates to.
    """
    size = integer(size, "size", minimum=1, what="ball_xray")
    supersample = integer(supersample, "supersample", minimum=1, what="ball_xray")
    radius = positive(radius, "radius", what="ball_xray")
    n = size * supersample
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
    v, u = torch.meshgrid(t, t, indexing="ij")
    chord = 2 * (radius**2 - u**2 - v**2).clamp_min(0).sqrt()
    chord = torch.nn.functional.avg_pool2d(chord[None], supersample)[0]
    return torch.exp(-chi * density * chord).float()
