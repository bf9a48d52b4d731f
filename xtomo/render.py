"""Images of volumes for people: shaded iso-surfaces seen from any view.

The iso-surface is found along the rays of ``xray.align`` (the same camera as the x-rays), so a
render and an x-ray of one view line up pixel for pixel.
"""
from __future__ import annotations

import torch

from . import xray

__all__ = ["iso_surface", "shade_aligned"]


def iso_surface(volume: torch.Tensor, direction: torch.Tensor, level: float = 0.1,
                size: int | None = None, n_steps: int | None = None, **shading) -> torch.Tensor:
    """Grey image ``[rows, cols]`` in [0, 1] of the surface where density first reaches ``level``.

    The volume is seen along ``direction`` with the x-ray camera; see ``shade_aligned``.
    """
    vol, _ = xray._check_volume(volume)
    if vol.shape[0] != 1:
        raise ValueError("iso_surface renders one volume at a time")
    aligned = xray.align(vol[0], direction, n_steps=n_steps or vol.shape[-3], size=size)
    return shade_aligned(aligned, level, **shading)


def shade_aligned(a: torch.Tensor, level: float = 0.1, light=(0.4, 0.6, 1.0), ambient: float = 0.25,
                  specular: float = 0.25) -> torch.Tensor:
    """Shaded iso-surface of a view-aligned volume ``[D, rows, cols]`` seen from its front.

    The hit is refined between samples by linear interpolation; the normal is the negated
    density gradient there; shading is ambient + Lambert + a Blinn–Phong highlight with the
    light given in camera coordinates (x right, y up, z towards the viewer). Empty rays are 0.
    """
    if a.dim() != 3:
        raise ValueError(f"shade_aligned needs a [D, rows, cols] volume, got shape {tuple(a.shape)}")
    n_steps = a.shape[0]
    inside = a >= level
    hit = inside.any(0)
    k = inside.float().argmax(0)                                  # first sample at or above level
    prev = (k - 1).clamp_min(0)
    f1 = a.gather(0, k[None])[0]
    f0 = a.gather(0, prev[None])[0]
    frac = torch.where(k > 0, (level - f0) / (f1 - f0).clamp_min(1e-6), torch.zeros_like(f1))
    depth = (prev.float() + frac.clamp(0, 1)) * (k > 0)
    # Gradient of the aligned volume (depth, rows, cols) at the hit, by central differences,
    # interpolated between the two samples around the crossing (avoids terraced shading).
    t = frac.clamp(0, 1)

    def at(field):
        return (1 - t) * field.gather(0, prev[None])[0] + t * field.gather(0, k[None])[0]

    gd, gr, gc = (at(field) for field in torch.gradient(a, dim=(0, 1, 2)))
    # Camera axes: x = columns (right), y = -rows (up), z = -depth (towards the viewer).
    normal = -torch.stack([gc, -gr, -gd * a.shape[-1] / n_steps], dim=0)
    normal = normal / normal.norm(dim=0).clamp_min(1e-8)
    light_dir = torch.tensor(light, dtype=a.dtype, device=a.device)
    light_dir = light_dir / light_dir.norm()
    lambert = (normal * light_dir[:, None, None]).sum(0).clamp_min(0)
    half = light_dir + torch.tensor([0.0, 0.0, 1.0], dtype=a.dtype, device=a.device)
    half = half / half.norm()
    spec = (normal * half[:, None, None]).sum(0).clamp_min(0) ** 32
    # Slight depth cue: farther surfaces are a little darker.
    cue = 1 - 0.35 * depth / n_steps
    shade = (ambient + (1 - ambient) * lambert) * cue + specular * spec
    return torch.where(hit, shade.clamp(0, 1), torch.zeros_like(shade))

