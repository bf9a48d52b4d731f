"""Signed distance fields on voxel grids: the small vocabulary the procedural anatomy is built from.

Every function takes coordinates ``p = (x, y, z)`` as a tuple of same-shaped tensors and returns
the signed distance (negative inside). Distances are exact for spheres, capsules and planes and
close (a lower bound, good enough for anti-aliasing a one-voxel ramp) for ellipsoids and cones.
``fit`` and ``sample`` place a specimen in the unit cube and sample it at any resolution.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Coords = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

__all__ = ["FIT_RADIUS", "MIN_EVALUATION", "grid", "ellipsoid", "capsule", "polyline", "shell", "smooth_union",
           "subtract", "occupancy", "lattice_noise", "region", "add_part", "capsule_box", "ellipsoid_box",
           "bounding_sphere", "sample"]

FIT_RADIUS = 0.46  #: specimens fill the cube's inscribed sphere (radius 0.5) up to this radius
MIN_EVALUATION = 64  #: coarser volumes are box-filtered from a grid at least this fine


def grid(size: int, device="cpu") -> Coords:
    """Voxel-centre coordinates of the unit cube ``[-0.5, 0.5]^3``, as ``(x, y, z)`` ``[D, H, W]``."""
    t = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size - 0.5
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    return x, y, z


def ellipsoid(p: Coords, centre, radii) -> torch.Tensor:
    """Approximate distance to an axis-aligned ellipsoid (Quilez's k0 (k0 - 1) / k1 bound)."""
    q = [(p[i] - centre[i]) / radii[i] for i in range(3)]
    k0 = torch.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2)
    k1 = torch.sqrt(sum((q[i] / radii[i]) ** 2 for i in range(3))).clamp_min(1e-9)
    return k0 * (k0 - 1) / k1


def capsule(p: Coords, a, b, r0: float, r1: float | None = None, squash=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """Distance to a segment a-b thickened to radius r0 at a and r1 at b (a tapered capsule).

    ``squash`` scales the local axes before measuring, giving elliptic cross-sections (a value
    above 1 makes the part thinner along that world axis).
    """
    r1 = r0 if r1 is None else r1
    ab = [b[i] - a[i] for i in range(3)]
    ap = [p[i] - a[i] for i in range(3)]
    ab2 = max(sum(c * c for c in ab), 1e-12)
    t = ((ap[0] * ab[0] + ap[1] * ab[1] + ap[2] * ab[2]) / ab2).clamp(0, 1)
    d = [(ap[i] - t * ab[i]) * squash[i] for i in range(3)]
    return torch.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2) - (r0 + (r1 - r0) * t)


def polyline(p: Coords, points, radii, squash=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """Union of tapered capsules through ``points`` with a radius per point (a bent rod)."""
    out = None
    for i in range(len(points) - 1):
        d = capsule(p, points[i], points[i + 1], radii[i], radii[i + 1], squash)
        out = d if out is None else torch.minimum(out, d)
    return out


def shell(d: torch.Tensor, thickness: float) -> torch.Tensor:
    """A hollow wall of ``thickness`` centred on the surface of ``d``."""
    return d.abs() - thickness / 2


def smooth_union(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Union that blends the two surfaces over a width ``k`` (polynomial smooth minimum)."""
    if k <= 0:
        return torch.minimum(a, b)
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def subtract(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a`` with ``b`` carved out."""
    return torch.maximum(a, -b)


def occupancy(d: torch.Tensor, voxel: float) -> torch.Tensor:
    """Fraction of a voxel inside the surface: a one-voxel linear ramp, the anti-aliasing filter."""
    return (0.5 - d / voxel).clamp(0, 1)


def lattice_noise(p: Coords, cells: int, seed: int, scale: float = 1.0, channels: int | None = None) -> torch.Tensor:
    """Smooth value noise in [-1, 1], a function of position alone (identical at any resolution).

    Random values on a ``cells^3`` lattice over the cube ``[-scale, scale]^3``, interpolated
    trilinearly at ``p``. ``channels`` independent noises ``[channels, *shape]`` cost one lookup.
    """
    g = torch.Generator().manual_seed(int(seed))
    lattice = torch.rand(1, channels or 1, cells, cells, cells, generator=g) * 2 - 1
    lattice = lattice.to(p[0].device)
    where = torch.stack([p[0], p[1], p[2]], dim=-1) / scale
    out = F.grid_sample(lattice, where.reshape(1, 1, 1, -1, 3), mode="bilinear",
                        padding_mode="border", align_corners=True)
    return out.reshape(p[0].shape) if channels is None else out.reshape(channels, *p[0].shape)


def region(p: Coords, lo, hi) -> tuple[slice, slice, slice]:
    """Index slices ``(z, y, x)`` of the grid ``p`` that cover the box ``[lo, hi]`` (local units).

    Works for any grid whose x varies along the last axis, y along the middle and z along the
    first (as ``grid`` makes, scaled and shifted), so small parts are evaluated only near them.
    """
    axes = (p[2][:, 0, 0].contiguous(), p[1][0, :, 0].contiguous(), p[0][0, 0, :].contiguous())
    bounds = ((lo[2], hi[2]), (lo[1], hi[1]), (lo[0], hi[0]))
    out = []
    for t, (a, b) in zip(axes, bounds):
        i0 = int(torch.searchsorted(t, torch.tensor(float(a), dtype=t.dtype, device=t.device))) - 1
        i1 = int(torch.searchsorted(t, torch.tensor(float(b), dtype=t.dtype, device=t.device))) + 1
        out.append(slice(max(i0, 0), max(min(i1, len(t)), 0)))
    return tuple(out)


def add_part(field: torch.Tensor, p: Coords, lo, hi, part, k: float = 0.0) -> torch.Tensor:
    """Union ``part`` (a function of coordinates) into ``field`` in place, evaluating it only inside its box.

    ``lo``/``hi`` bound the part's solid; the box is widened by the blend width ``k`` so the
    smooth union is the same as on the whole grid.
    """
    lo = [c - k for c in lo]
    hi = [c + k for c in hi]
    sl = region(p, lo, hi)
    if any(s.stop <= s.start for s in sl):
        return field
    sub = tuple(c[sl] for c in p)
    field[sl] = smooth_union(field[sl], part(sub), k)
    return field


def capsule_box(points, radius: float, squash=(1.0, 1.0, 1.0)):
    """Bounding box ``(lo, hi)`` of a (poly)capsule through ``points`` with largest radius ``radius``."""
    pad = [radius / min(s, 1.0) if s < 1 else radius for s in squash]
    lo = [min(pt[i] for pt in points) - pad[i] for i in range(3)]
    hi = [max(pt[i] for pt in points) + pad[i] for i in range(3)]
    return lo, hi


def ellipsoid_box(centre, radii):
    """Bounding box ``(lo, hi)`` of an axis-aligned ellipsoid."""
    return [c - r for c, r in zip(centre, radii)], [c + r for c, r in zip(centre, radii)]


def bounding_sphere(inside: Callable[[Coords], torch.Tensor], n: int, extent: float,
                    what: str) -> tuple[torch.Tensor, float]:
    """Centre ``[3]`` and radius of a sphere that holds the solid ``inside(coords)`` (a boolean grid),
    found on an ``n^3`` grid over ``[-extent, extent]^3`` and padded by one of its cells."""
    t = torch.linspace(-extent, extent, n)
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    occupied = inside((x, y, z))
    pts = torch.stack([x[occupied], y[occupied], z[occupied]], dim=1)
    if len(pts) == 0:
        raise RuntimeError(f"procedural {what} came out empty; its proportions are degenerate")
    centre = (pts.amin(0) + pts.amax(0)) / 2
    return centre, (pts - centre).norm(dim=1).max().item() + 2 * extent / n


def sample(evaluate: Callable[[Coords, float], torch.Tensor], size: int, centre, scale: float,
           device="cpu") -> torch.Tensor:
    """Fields ``evaluate(coords, voxel)`` ``[C, n, n, n]`` of a specimen sampled at ``size^3``, the cube
    mapped to local coordinates ``centre + scale * cube`` and ``voxel`` the grid's spacing in them.

    Below ``MIN_EVALUATION^3``, where walls get thinner than a voxel and the one-voxel ramp would
    thicken them, the fields are evaluated on a grid at least that fine and box-averaged down, so
    the anatomy is the same at every resolution.
    """
    ss = math.ceil(MIN_EVALUATION / size)
    x, y, z = grid(size * ss, device=device)
    local = (x * scale + centre[0], y * scale + centre[1], z * scale + centre[2])
    fields = evaluate(local, scale / (size * ss))
    if ss > 1:
        fields = F.avg_pool3d(fields[None], ss)[0]
    return fields
