"""Light on density: iso-surfaces and their normals, image-based lighting, ambient occlusion.

The shading ``render`` composes into its modes. Directions are camera coordinates (x right, y up,
z towards the viewer); an environment maps unit directions ``[..., 3]`` to radiance ``[...]`` and
lights surfaces through its spherical-harmonic irradiance (Ramamoorthi & Hanrahan 2001).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

import xtomo._checks as checks

__all__ = ["LEVEL", "AO_SCALES", "Surface", "surface", "studio", "key_light", "sh_coefficients", "irradiance",
           "ambient_occlusion", "shade_surface", "shade_volume"]

LEVEL = 0.1                   # iso level: the paper's surfaces for its 2D metric
AO_SCALES = (0.0125, 0.025, 0.05, 0.1)   # ambient-occlusion radii, fractions of the cube

# ---------------------------------------------------------------------------------------------
# surfaces


def _grid_scale(ref: torch.Tensor) -> torch.Tensor:
    """Camera vector (x right, y up, z towards the viewer) -> grid_sample offset (cols, rows, depth)."""
    return torch.tensor([2.0, -2.0, -2.0], dtype=ref.dtype, device=ref.device)


def _sample(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of ``field [B, n, r, c]`` (or ``[B, 1, n, r, c]``) at ``points [B, ..., 3]``."""
    field = field if field.dim() == 5 else field[:, None]
    b = points.shape[0]
    grid = points.reshape(b, 1, 1, -1, 3)
    out = F.grid_sample(field, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(points.shape[:-1])


class Surface(NamedTuple):
    """The first crossing of an iso level along every ray of a camera-frame volume."""
    hit: torch.Tensor      # [B, rows, cols] bool: the ray reaches the level
    depth: torch.Tensor    # [B, rows, cols] depth index of the crossing, refined (0 = front)
    points: torch.Tensor   # [B, rows, cols, 3] the crossing in grid_sample coordinates
    normal: torch.Tensor   # [B, rows, cols, 3] unit outward normal, camera coordinates
    grid: torch.Tensor     # [B, 1, m, m, m] isotropic copy of the density at the data's resolution


def surface(aligned: torch.Tensor, level: float = LEVEL, resolution: int | None = None) -> Surface:
    """First crossing of ``level`` along depth, refined linearly between the two samples around it.

    ``aligned`` is ``[B, n, rows, cols]``. The normal is the negated density gradient: central
    differences one voxel apart on an isotropic copy at the data's ``resolution`` (default: the
    coarsest axis), blurred by one voxel, read trilinearly at the crossing. Without that blur,
    the terraces of a voxelised surface and the kinks of twice-interpolated data show as rings.
    """
    a = aligned
    b, n, rows, cols = a.shape
    inside = a >= level
    hit = inside.any(1)
    k = inside.to(torch.uint8).argmax(1)
    prev = (k - 1).clamp_min(0)
    f1, f0 = a.gather(1, k[:, None])[:, 0], a.gather(1, prev[:, None])[:, 0]
    frac = ((level - f0) / (f1 - f0).clamp_min(1e-6)).clamp(0, 1)
    depth = torch.where(k > 0, prev + frac, torch.zeros_like(frac))
    v = (torch.arange(rows, device=a.device, dtype=a.dtype) * 2 + 1) / rows - 1
    u = (torch.arange(cols, device=a.device, dtype=a.dtype) * 2 + 1) / cols - 1
    points = torch.stack([u.expand(b, rows, cols), v[:, None].expand(b, rows, cols),
                          (depth * 2 + 1) / n - 1], dim=-1)
    grid = _resize(a[:, None], resolution or min(n, rows, cols))
    m = grid.shape[-1]
    smooth = _blur(grid, 1.0)
    steps = torch.cat([torch.eye(3), -torch.eye(3)]).to(a) / m * _grid_scale(a)
    s = _sample(smooth, points[:, None] + steps[None, :, None, None, :])     # [B, 6, rows, cols]
    grad = (s[:, :3] - s[:, 3:]).movedim(1, -1)
    norm = grad.norm(dim=-1, keepdim=True)
    towards_viewer = torch.tensor([0.0, 0.0, 1.0], dtype=a.dtype, device=a.device)
    normal = torch.where(norm > 1e-8, -grad / norm.clamp_min(1e-8), towards_viewer)
    return Surface(hit, depth, points, normal, grid)


# ---------------------------------------------------------------------------------------------
# image-based lighting: spherical-harmonic irradiance (Ramamoorthi & Hanrahan 2001)


def studio(d: torch.Tensor) -> torch.Tensor:
    """Default environment radiance for camera directions ``[..., 3]``: a bright sky above and in
    front, a dim ground below, a key light from the upper left behind the viewer."""
    x, y, z = d.unbind(-1)
    sky = 0.05 + 0.25 * ((y + 0.3 * z + 0.2) / 1.2).clamp(0, 1) ** 1.5
    ground = 0.06 * (-y).clamp(0, 1)
    key_dir = torch.tensor([-0.45, 0.55, 0.70], dtype=d.dtype, device=d.device)
    key = 12.0 * torch.exp(((d * (key_dir / key_dir.norm())).sum(-1) - 1) / 0.03)
    return sky + ground + key


def key_light(direction=(0.6, 0.3, 0.75), strength: float = 12.0, sky: float = 0.25) -> Callable:
    """An environment lit by one sharp key light from ``direction`` (camera coordinates: x right,
    y up, z towards the viewer) over a dim, even sky: relighting a surface for a new look."""
    key_dir = checks.directions(direction, "key_light", torch.float64, name="direction")
    if key_dir.shape != (3,):
        raise ValueError(f"key_light: direction must be one 3-vector, got {direction!r}")

    def environment(d: torch.Tensor) -> torch.Tensor:
        key = strength * torch.exp(((d * key_dir.to(d)).sum(-1) - 1) / 0.03)
        return sky * (0.2 + 0.8 * (d[..., 1] + 1) / 2) + key

    return environment


def _sh_basis(d: torch.Tensor) -> torch.Tensor:
    """The nine real spherical harmonics up to l = 2 at unit directions ``[..., 3]``: ``[..., 9]``."""
    x, y, z = d.unbind(-1)
    return torch.stack([0.282095 * torch.ones_like(x), 0.488603 * y, 0.488603 * z, 0.488603 * x,
                        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
                        1.092548 * x * z, 0.546274 * (x * x - y * y)], dim=-1)


@functools.lru_cache(maxsize=32)
def sh_coefficients(environment: Callable = studio, resolution: int = 96) -> torch.Tensor:
    """Projection ``L_lm`` (float64 ``[9]``, order (0,0), (1,-1), (1,0), (1,1), (2,-2) ... (2,2))
    of an environment ``direction [..., 3] -> radiance [...]`` onto the SH basis, by midpoint
    quadrature on a ``resolution x 2 resolution`` (theta, phi) grid; cached per environment."""
    theta = (torch.arange(resolution, dtype=torch.float64) + 0.5) * math.pi / resolution
    phi = (torch.arange(2 * resolution, dtype=torch.float64) + 0.5) * math.pi / resolution
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    d = torch.stack([t.sin() * p.cos(), t.sin() * p.sin(), t.cos()], dim=-1)
    radiance = torch.as_tensor(environment(d), dtype=torch.float64)
    if radiance.shape != t.shape or not torch.isfinite(radiance).all():
        raise ValueError("environment must map directions [..., 3] to finite radiance [...]")
    weight = t.sin() * (math.pi / resolution) ** 2
    return (radiance[..., None] * _sh_basis(d) * weight[..., None]).sum((0, 1))


def irradiance(normal: torch.Tensor, environment: Callable = studio) -> torch.Tensor:
    """Irradiance ``E(n)`` at unit normals ``[..., 3]`` under ``environment``, from its nine SH
    coefficients in the closed quadratic form of Ramamoorthi & Hanrahan (2001, Eq. 12).

    A constant environment of radiance L gives E = pi L for every normal; a Lambertian surface
    of albedo rho then reflects rho E / pi.
    """
    c = sh_coefficients(environment).tolist()
    c1, c2, c3, c4, c5 = 0.429043, 0.511664, 0.743125, 0.886227, 0.247708
    x, y, z = normal.unbind(-1)
    return (c1 * c[8] * (x * x - y * y) + c3 * c[6] * z * z + c4 * c[0] - c5 * c[6]
            + 2 * c1 * (c[4] * x * y + c[7] * x * z + c[5] * y * z)
            + 2 * c2 * (c[3] * x + c[1] * y + c[2] * z))


def _dominant_light(environment, like: torch.Tensor) -> torch.Tensor:
    """The environment's dominant light direction (its l = 1 band), for the specular highlight."""
    c = sh_coefficients(environment)
    d = torch.stack([c[3], c[1], c[2]]).to(like)
    return d / d.norm().clamp_min(1e-12)

# ---------------------------------------------------------------------------------------------
# ambient occlusion: multi-scale blurred occupancy


def _resize(field: torch.Tensor, m: int) -> torch.Tensor:
    """Resample ``[B, 1, ...3 axes]`` to ``m^3``: trilinear to a whole multiple k of m per axis,
    then a k-box average. (Adaptive pooling's uneven windows would alias into contour rings.)"""
    k = [max(1, round(s / m)) for s in field.shape[2:]]
    if [f * m for f in k] != list(field.shape[2:]):
        field = F.interpolate(field, size=[f * m for f in k], mode="trilinear", align_corners=False)
    return F.avg_pool3d(field, k) if k != [1, 1, 1] else field


def _blur(field: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Separable Gaussian blur of ``[B, 1, ...3 axes]`` (sigma in voxels), zero outside.

    Shifted copies added up: on a CPU several times faster than ``conv3d`` with thin kernels."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float64) ** 2 / (2 * sigma**2))
    k = (k / k.sum()).tolist()
    for axis in (2, 3, 4):
        pad = [0] * 6
        pad[2 * (4 - axis)] = pad[2 * (4 - axis) + 1] = r
        padded, length = F.pad(field, pad), field.shape[axis]
        field = sum(w * padded.narrow(axis, i, length) for i, w in enumerate(k))
    return field


def ambient_occlusion(aligned: torch.Tensor, surf: Surface, level: float = LEVEL,
                      scales=AO_SCALES) -> torch.Tensor:
    """Openness ``[B, rows, cols]`` in [0, 1] (1 = unoccluded) of the surface points ``surf``.

    The occupancy of the isotropic ``surf.grid`` (density over 3 level, at most 1: set by the
    level alone, and linear, so voxel staircases average out) is box-averaged into a pyramid. For
    each radius s (at least two voxels), the pyramid level with voxels of s/2 to s is blurred (sigma s)
    and read at the point (b0) and 1.5 s out along the normal (b). A plane through the point
    would read ``Phi(Phi^-1(b0) - 1.5)`` out there; creases and cavities read more. Each
    scale's excess beyond a small dead zone (0.04, which hides what is left of voxel terraces),
    reaching 1 at 0.25, is an occlusion; openness is one minus their mean.
    """
    full = 3.0 * level
    pyramid = [(surf.grid / full).clamp(0, 1)]
    m = pyramid[0].shape[-1]
    total = torch.zeros_like(surf.depth)
    step = surf.normal * 1.5 * _grid_scale(aligned)
    for s in scales:                                             # a few scales
        s = max(s, 2 / m)
        j = max(0, min(int(math.log2(s * m)), int(math.log2(m / 4))))   # voxels of 2^j / m
        while len(pyramid) <= j:
            pyramid.append(_resize(pyramid[-1], max(1, round(pyramid[-1].shape[-1] / 2))))
        sigma = s * pyramid[j].shape[-1]                         # in that level's voxels
        out = 1.5 * sigma / math.sqrt(sigma**2 + 1 / 12)        # offset in units of the total blur
        where = torch.stack([surf.points, surf.points + step * s], 1)
        b0, b = _sample(_blur(pyramid[j], sigma), where).unbind(1)
        flat = torch.special.ndtr(torch.special.ndtri(b0.clamp(0.02, 0.98)) - out)
        total += ((b - flat - 0.04) / (0.25 - flat).clamp_min(0.05)).clamp(0, 1)
    return 1 - total / max(len(scales), 1)


# ---------------------------------------------------------------------------------------------
# shading for the render modes


def shade_surface(a, level, resolution, environment, ao, specular, shininess, albedo, depth_cue,
                  ao_scales) -> torch.Tensor:
    """Grey iso-surface shading ``[B, rows, cols]`` of a camera-frame volume ``a``, 0 where no ray
    reaches ``level``: the Lambert, ambient-occlusion, highlight and depth-cue mix that ``render.iso``
    documents."""
    surf = surface(a, level, resolution)
    diffuse = albedo * irradiance(surf.normal, environment) / math.pi
    openness = ambient_occlusion(a, surf, level, ao_scales) if ao > 0 else torch.ones_like(diffuse)
    light = _dominant_light(environment, a)
    half = light + torch.tensor([0.0, 0.0, 1.0]).to(a)
    spec = (surf.normal * (half / half.norm())).sum(-1).clamp_min(0) ** shininess
    shade = (diffuse * (1 - ao * (1 - openness)) + specular * spec * openness)
    shade = shade * (1 - depth_cue * surf.depth / a.shape[1])
    return torch.where(surf.hit, shade.clamp(0, 1), torch.zeros_like(shade))


def shade_volume(a: torch.Tensor, resolution: int, environment, shading: float) -> torch.Tensor:
    """Per-sample colour factor ``[B, n, rows, cols]``: SH irradiance at the normal of a blurred
    isotropic copy, blended in where the density gradient is strong (``shading`` at most)."""
    smooth = _blur(_resize(a[:, None], resolution), 1.0)[:, 0]
    gd, gr, gc = torch.gradient(smooth * resolution, dim=(1, 2, 3))
    grad = torch.stack([gc, -gr, -gd], dim=-1)
    strength = grad.norm(dim=-1)
    lit = irradiance(-grad / strength[..., None].clamp_min(1e-6), environment) / math.pi
    weight = shading * (strength / 4).clamp(0, 1)      # a bone edge's gradient is about 40
    factor = (1 - weight + weight * 1.3 * lit)[:, None]           # 1.3: lit faces near white
    return F.interpolate(factor, size=a.shape[1:], mode="trilinear", align_corners=False)[:, 0]
