"""Images of volumes for people: iso-surfaces, direct volume rendering, MIP, x-rays and anaglyphs.

Every mode looks along the rays of ``xray.align`` (the x-ray camera), so a render and an x-ray of
one view line up pixel for pixel; a view-aligned volume (``view=None``, what the network predicts)
is rendered as it stands. Camera coordinates: x right, y up, z towards the viewer. Images are
grey ``[rows, cols]`` or RGB ``[3, rows, cols]`` in [0, 1]; a batch adds a leading axis.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from xtomo.files import atomic_path
from xtomo.imaging import xray

__all__ = [
    "MODES", "TRANSFERS", "DEFAULT_VIEW", "LEVEL", "AO_SCALES", "studio", "key_light",
    "to_camera", "cut", "Surface", "surface", "sh_coefficients", "irradiance", "ambient_occlusion",
    "iso", "dvr", "mip", "radiograph", "anaglyph", "wiggle", "preview", "image", "colorize", "save_png", "save_gif",
]

MODES = ("xray", "iso", "dvr", "mip", "anaglyph")
DEFAULT_VIEW = (30.0, 20.0)   # azimuth, elevation in degrees: a pleasing oblique view
LEVEL = 0.1                   # iso level: the paper's surfaces for its 2D metric
AO_SCALES = (0.0125, 0.025, 0.05, 0.1)   # ambient-occlusion radii, fractions of the cube
REF_STEPS = xray.N_STEPS      # transfer-function opacities are per 1/128 of the cube
IVORY = (1.0, 0.93, 0.80)

# ---------------------------------------------------------------------------------------------
# camera frame and surfaces


def _size(size, default) -> tuple[int, int]:
    rows, cols = default if size is None else (size, size) if isinstance(size, int) else tuple(size)
    if not all(isinstance(s, int) and s >= 2 for s in (rows, cols)):
        raise ValueError(f"render: size must be an integer >= 2 or a pair of them, got {size!r}")
    return rows, cols


def _camera(volume, view, size, n_steps) -> tuple[torch.Tensor, bool, int]:
    """Camera-frame volume ``[B, n, rows, cols]``, whether the input was a single volume, and the
    input's resolution (voxels along its shortest axis)."""
    vol, single = xray._check_volume(volume)
    if n_steps is not None and (not isinstance(n_steps, int) or n_steps < 2):
        raise ValueError(f"render: n_steps must be an integer >= 2, got {n_steps!r}")
    if view is None:
        shape = (n_steps or vol.shape[1], *_size(size, vol.shape[-2:]))
        resolution = min(vol.shape[1:])
        if shape != tuple(vol.shape[1:]):
            vol = F.interpolate(vol[:, None], size=shape, mode="trilinear", align_corners=False)[:, 0]
        return vol, single, resolution
    dirs = xray._check_directions(view).reshape(-1, 3)
    if dirs.shape[0] > 1 and vol.shape[0] == 1:     # one volume, several views
        vol, single = vol.expand(dirs.shape[0], *vol.shape[1:]), False
    size = None if size is None else _size(size, None)
    return xray.align(vol, dirs, n_steps=n_steps or vol.shape[1], size=size), single, min(vol.shape[1:])


def to_camera(volume: torch.Tensor, view=None, size=None, n_steps: int | None = None) -> torch.Tensor:
    """The camera-frame volume ``[n_steps, rows, cols]`` (``[B, ...]`` for a batch), front to back.

    ``view=None``: ``volume`` is already view-aligned (resampled only where ``size``/``n_steps``
    ask); otherwise a direction ``[3]`` or ``[B, 3]`` given to ``xray.align``.
    """
    out, single, _ = _camera(volume, view, size, n_steps)
    return out[0] if single else out


def cut(volume: torch.Tensor, normal, offset: float = 0.0) -> torch.Tensor:
    """The volume with the half-space ``p . normal > offset`` emptied: a cut-away that opens the
    specimen to show its inside, for any render mode.

    ``p`` is the voxel centre in the cube's normalised coordinates, each in [-1, 1]: x along the
    last axis (W), y along H, z along the first axis (D; depth for a view-aligned volume, so
    ``normal=(0, 0, -1)`` removes the front). The cut edge is one voxel soft, so iso-surfaces of
    the cut face come out flat instead of staircased.
    """
    vol, single = xray._check_volume(volume)
    n = torch.as_tensor(normal, dtype=vol.dtype).reshape(-1)
    if n.numel() != 3 or not torch.isfinite(n).all() or float(n.norm()) == 0:
        raise ValueError(f"cut: normal must be a non-zero 3-vector (x, y, z), got {normal!r}")
    if not math.isfinite(offset):
        raise ValueError(f"cut: offset must be finite, got {offset!r}")
    n = (n / n.norm()).to(vol.device)
    axes = [(torch.arange(k, device=vol.device, dtype=vol.dtype) * 2 + 1) / k - 1 for k in vol.shape[1:]]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    voxel = 2.0 / min(vol.shape[1:])
    keep = ((offset - (n[0] * x + n[1] * y + n[2] * z)) / voxel + 0.5).clamp(0, 1)
    out = vol * keep
    return out[0] if single else out


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
    key_dir = torch.as_tensor(direction, dtype=torch.float64)
    if key_dir.shape != (3,) or not torch.isfinite(key_dir).all() or float(key_dir.norm()) == 0:
        raise ValueError(f"key_light: direction must be a non-zero 3-vector, got {direction!r}")
    key_dir = key_dir / key_dir.norm()

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
# the modes


def _shade(a, level, resolution, environment, ao, specular, shininess, albedo, depth_cue, ao_scales):
    surf = surface(a, level, resolution)
    diffuse = albedo * irradiance(surf.normal, environment) / math.pi
    openness = ambient_occlusion(a, surf, level, ao_scales) if ao > 0 else torch.ones_like(diffuse)
    light = _dominant_light(environment, a)
    half = light + torch.tensor([0.0, 0.0, 1.0]).to(a)
    spec = (surf.normal * (half / half.norm())).sum(-1).clamp_min(0) ** shininess
    shade = (diffuse * (1 - ao * (1 - openness)) + specular * spec * openness)
    shade = shade * (1 - depth_cue * surf.depth / a.shape[1])
    return torch.where(surf.hit, shade.clamp(0, 1), torch.zeros_like(shade))


def iso(volume: torch.Tensor, view=None, level: float = LEVEL, size=None, n_steps: int | None = None,
        environment: Callable = studio, ao: float = 0.9, specular: float = 0.3,
        shininess: float = 40.0, albedo: float = 0.95, depth_cue: float = 0.15,
        ao_scales=AO_SCALES) -> torch.Tensor:
    """Iso-surface ray casting, grey ``[rows, cols]`` (``[B, ...]``) in [0, 1], background 0.

    The paper's image for its 2D metric (Sec. 5.2): image-based Lambertian lighting from the
    ``environment``'s SH irradiance, darkened by ambient occlusion (strength ``ao``), a slight
    Blinn-Phong highlight towards the environment's dominant light, farther surfaces a little
    darker (``depth_cue``). ``view=None``: the volume is view-aligned.
    """
    if not (math.isfinite(level) and level > 0):
        raise ValueError(f"iso: level must be a positive density, got {level!r}")
    a, single, resolution = _camera(volume, view, size, n_steps)
    out = _shade(a, level, resolution, environment, ao, specular, shininess, albedo, depth_cue, ao_scales)
    return out[0] if single else out


def _smoothstep(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _mix(c0, c1, t: torch.Tensor) -> torch.Tensor:
    c0, c1 = (torch.tensor(c, dtype=t.dtype, device=t.device) for c in (c0, c1))
    return c0 + (c1 - c0) * t[..., None]


@functools.lru_cache(maxsize=16)
def _lut(cmap: str) -> torch.Tensor:
    """A matplotlib colormap as a ``[256, 3]`` table."""
    import matplotlib
    try:
        table = matplotlib.colormaps[cmap](torch.linspace(0, 1, 256).numpy())[:, :3]
    except KeyError:
        raise ValueError(f"unknown colormap {cmap!r}; use a matplotlib colormap name or 'ivory'") from None
    return torch.tensor(table, dtype=torch.float32)


def _apply_lut(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``table [K, 3]`` at ``x`` in [0, 1]: ``[..., 3]``."""
    table = table.to(device=x.device, dtype=x.dtype)
    pos = x.clamp(0, 1) * (table.shape[0] - 1)
    i0 = pos.floor().long().clamp(max=table.shape[0] - 2)
    t = (pos - i0)[..., None]
    return table[i0] * (1 - t) + table[i0 + 1] * t


def _bone(d):
    """Soft tissue faint and reddish, bone opaque, ivory brightening with density."""
    opacity = torch.maximum(0.02 * _smoothstep(0.02, 0.06, d), 0.8 * _smoothstep(0.15, 0.4, d))
    rgb = _mix((0.80, 0.50, 0.42), (0.88, 0.80, 0.66), _smoothstep(0.1, 0.2, d))
    return _mix_to(rgb, IVORY, _smoothstep(0.3, 0.9, d)), opacity


def _skin_bone(d):
    """Skin-coloured, translucent low densities; white, nearly opaque bone."""
    bone = _smoothstep(0.25, 0.4, d)
    opacity = torch.maximum(0.05 * _smoothstep(0.02, 0.06, d), 0.9 * bone)
    return _mix((0.93, 0.70, 0.58), (0.98, 0.97, 0.94), bone), opacity


def _rainbow(d):
    """Density through matplotlib's turbo colormap, translucent: a new modality."""
    return _apply_lut(_lut("turbo"), (d - 0.05) / 0.85), 0.3 * _smoothstep(0.03, 0.8, d)


def _mix_to(rgb: torch.Tensor, colour, t: torch.Tensor) -> torch.Tensor:
    return rgb + (torch.tensor(colour, dtype=rgb.dtype, device=rgb.device) - rgb) * t[..., None]


#: Named transfer functions: density -> (rgb [..., 3], opacity per 1/128 of the cube [...]).
TRANSFERS: dict[str, Callable] = {"bone": _bone, "skin-bone": _skin_bone, "rainbow": _rainbow,
                                  "colourful": _rainbow}


def _integrals(transfer: Callable, lo: float, hi: float, like: torch.Tensor, k: int = 1024):
    """Pre-integration table ``[k, 4]`` of a transfer function on densities [lo, hi]: the
    integrals over density of tau and of tau times (r, g, b), where tau = -ln(1 - opacity) * 128
    is the extinction per unit length."""
    x = torch.linspace(lo, hi, k, dtype=like.dtype, device=like.device)
    rgb, opacity = transfer(x)
    rgb = torch.as_tensor(rgb).to(x).expand(k, 3).double()
    opacity = torch.as_tensor(opacity).to(x).expand(k).double()
    for name, t in (("rgb", rgb), ("opacity", opacity)):
        if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
            raise ValueError(f"dvr: the transfer function's {name} must lie within [0, 1]")
    tau = -torch.log1p(-opacity.clamp(max=1 - 1e-6)) * REF_STEPS
    f = torch.cat([tau[:, None], tau[:, None] * rgb], dim=1)
    step = (hi - lo) / (k - 1)
    return torch.cat([f[:1] * 0, torch.cumsum((f[1:] + f[:-1]) * step / 2, dim=0)]).to(like.dtype)


def _lighting(a: torch.Tensor, resolution: int, environment, shading: float) -> torch.Tensor:
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


def dvr(volume: torch.Tensor, view=None, transfer="bone", size=None, n_steps: int | None = None,
        background=(0.0, 0.0, 0.0), shading: float = 0.6,
        environment: Callable = studio) -> torch.Tensor:
    """Emission-absorption direct volume rendering, RGB ``[3, rows, cols]`` (``[B, 3, ...]``).

    ``transfer`` (a name in ``TRANSFERS`` or a callable ``density -> (rgb [..., 3], opacity)``,
    opacity per 1/128 of the cube) is pre-integrated (Engel et al. 2001) over each segment
    between two samples, so thin bone gives no wood-grain rings. Segments composite front to
    back with a cumulative product of transmittance; what passes all of them shows the
    ``background``. ``shading`` in [0, 1] lights colours by the SH irradiance at the gradient
    normal, where the gradient is strong.
    """
    if isinstance(transfer, str):
        if transfer not in TRANSFERS:
            raise ValueError(f"unknown transfer function {transfer!r}; choose one of {sorted(TRANSFERS)}")
        transfer = TRANSFERS[transfer]
    a, single, resolution = _camera(volume, view, size, n_steps)
    lo, hi = min(0.0, float(a.min())), max(1.0, float(a.max()))   # [0, 1] unless data go beyond
    table = _integrals(transfer, lo, hi, a)
    k, width = table.shape[0], (hi - lo) / (table.shape[0] - 1)
    pos = ((a - lo) / width).clamp(0, k - 1)
    i0 = pos.floor().long().clamp(max=k - 2)
    t = pos - i0
    del pos
    slopes = table[1:] - table[:-1]                  # per bin: width times its mean tau (colour)

    def look(channel):             # the integral at each sample, and its bin's slope
        slope = torch.take(slopes[:, channel].contiguous(), i0)
        return torch.take(table[:, channel].contiguous(), i0) + slope * t, slope

    dd = a[:, 1:] - a[:, :-1]
    steep = dd.abs() > width                         # else: both samples in about one bin
    integral, slope = look(0)
    d_t = torch.where(steep, integral[:, 1:] - integral[:, :-1], slope[:, :-1])
    run = torch.where(steep, dd, torch.full_like(dd, width))
    alpha = -torch.expm1(-(d_t / run).clamp_min(0) / a.shape[1])
    before = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha], dim=1), dim=1)
    weight = before[:, :-1] * alpha
    if shading > 0:
        factor = _lighting(a, resolution, environment, shading)
        weight = weight * (factor[:, 1:] + factor[:, :-1]) / 2
    weight = weight / torch.where(d_t.abs() > 1e-9, d_t, torch.ones_like(d_t))
    colour = []
    for c in range(3):                                   # red, green, blue: mean colour d_K / d_T
        integral, slope = look(1 + c)
        d_k = torch.where(steep, integral[:, 1:] - integral[:, :-1], slope[:, :-1])
        colour.append((weight * d_k).sum(1))
    bg = torch.as_tensor(background, dtype=a.dtype, device=a.device).reshape(1, 3, 1, 1)
    out = (torch.stack(colour, 1) + before[:, -1:] * bg).clamp(0, 1)
    return out[0] if single else out


def mip(volume: torch.Tensor, view=None, size=None, n_steps: int | None = None) -> torch.Tensor:
    """Maximum intensity projection ``[rows, cols]``: the densest sample along each ray."""
    a, single, _ = _camera(volume, view, size, n_steps)
    out = a.amax(1)
    return out[0] if single else out


def radiograph(volume: torch.Tensor, view=None, chi: float = xray.CHI, size=None,
               n_steps: int | None = None) -> torch.Tensor:
    """The x-ray from any view: transparency alpha ``[rows, cols]``, as ``xtomo.imaging.xray.simulate`` returns.

    Show (and ``image``/``save_png`` write) opacity ``1 - alpha``, bone bright.
    """
    a, single, _ = _camera(volume, view, size, n_steps)
    out = xray.composite(a, chi=chi)
    return out[0] if single else out


def anaglyph(volume: torch.Tensor, view=None, separation: float = 4.0, level: float = LEVEL, size=None,
             n_steps: int | None = None, **shading) -> torch.Tensor:
    """Red-cyan anaglyph ``[3, rows, cols]`` of two iso renders, the camera turned
    ``-separation / 2`` (left eye, red) and ``+separation / 2`` degrees (right eye, green and blue).

    With a ``view`` direction the eyes' azimuths differ (at the turntable camera's pole, a top
    view, that offset turns the image and the parallax fades); ``view=None`` takes a view-aligned
    volume, such as a reconstruction, and turns it about the image's vertical (``xray.turn``):
    stereo from a single x-ray.
    """
    half = float(separation) / 2
    if view is None:
        eyes = [xray.turn(volume, -half), xray.turn(volume, half)]
        left, right = (iso(eye, None, level, size, n_steps, **shading) for eye in eyes)
    else:
        az, el = xray.angles(view)
        left = iso(volume, xray.direction(az - half, el), level, size, n_steps, **shading)
        right = iso(volume, xray.direction(az + half, el), level, size, n_steps, **shading)
    return torch.stack([left, right, right], dim=-3)


def wiggle(volume: torch.Tensor, view=None, angle: float = 5.0, frames: int = 12, mode: str = "iso",
           **options) -> torch.Tensor:
    """Frames ``[frames, ...]`` of a wiggle stereogram: the camera swings ``angle`` degrees to
    either side and back (a sine), which the eye reads as depth without glasses.

    ``view=None`` swings a view-aligned volume about its x-ray's view (``xray.turn``); with a
    direction the azimuth swings. ``mode`` and ``options`` as for ``image``.
    """
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 2:
        raise ValueError(f"wiggle: frames must be an integer >= 2, got {frames!r}")
    swings = [float(angle) * math.sin(2 * math.pi * k / frames) for k in range(frames)]
    if view is None:
        return torch.stack([image(xray.turn(volume, a), mode, None, **options) for a in swings])
    az, el = xray.angles(view)
    return torch.stack([image(volume, mode, xray.direction(az + a, el), **options) for a in swings])


# ---------------------------------------------------------------------------------------------
# images for files


def image(volume: torch.Tensor, mode: str = "iso", view=None, size=None, level: float = LEVEL,
          transfer="bone", n_steps: int | None = None) -> torch.Tensor:
    """One mode's display image in [0, 1]: x-rays as opacity (bone bright), iso in ivory, RGB
    ``[3, rows, cols]`` except MIP (grey). What ``xtomo render`` writes."""
    if mode not in MODES:
        raise ValueError(f"unknown render mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "xray":
        return 1 - radiograph(volume, view, size=size, n_steps=n_steps)
    if mode == "iso":
        return colorize(iso(volume, view, level, size, n_steps), "ivory")
    if mode == "dvr":
        return dvr(volume, view, transfer, size, n_steps)
    if mode == "mip":
        return mip(volume, view, size, n_steps)
    return anaglyph(volume, view, level=level, size=size, n_steps=n_steps)


PREVIEW_TURNS = {"x-ray view": (0.0, 0.0), "turned 60° right": (60.0, 0.0), "from above": (0.0, 60.0)}


def preview(aligned: torch.Tensor, alpha: torch.Tensor | None = None, size: int = 192,
            level: float = LEVEL) -> torch.Tensor:
    """One RGB strip ``[3, size, k * size]`` to check a reconstruction at a glance: its x-ray
    (if given), then ivory iso-surfaces of the view-aligned volume from the three
    ``PREVIEW_TURNS`` of its camera (the x-ray's own view, turned to the side, from above)."""
    vol, single = xray._check_volume(aligned)
    if not single:
        raise ValueError(f"preview: expected one view-aligned volume [D, H, W], got shape {tuple(aligned.shape)}")
    panels = [] if alpha is None else [
        colorize(1 - F.interpolate(torch.as_tensor(alpha, dtype=torch.float32).reshape(1, 1, *alpha.shape[-2:]),
                                   size=(size, size), mode="area")[0, 0], "gray")]
    for az, el in PREVIEW_TURNS.values():
        panels.append(image(xray.turn(vol[0], az, el), "iso", None, size=size, level=level))
    return torch.cat(panels, dim=-1).clamp(0, 1)


def colorize(grey: torch.Tensor, cmap: str = "bone") -> torch.Tensor:
    """Grey ``[..., H, W]`` in [0, 1] through a matplotlib colormap (or ``"ivory"``, a black to
    ivory ramp) to RGB ``[..., 3, H, W]``."""
    if cmap == "ivory":
        tint = torch.tensor(IVORY, dtype=grey.dtype, device=grey.device)
        return grey.clamp(0, 1)[..., None, :, :] * tint[:, None, None]
    return _apply_lut(_lut(cmap), grey).movedim(-1, -3)


def save_png(image: torch.Tensor, path, cmap: str | None = None) -> Path:
    """Write grey ``[H, W]`` or RGB ``[3, H, W]`` in [0, 1] as an 8-bit PNG, atomically.

    ``cmap`` colours a grey image (see ``colorize``). Values outside [0, 1] are an error.
    """
    import imageio.v3 as iio
    import numpy as np

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: images are saved as .png, got '{path.suffix}'")
    image = torch.as_tensor(image).detach().float().cpu()
    if image.dim() == 2 and cmap is not None:
        image = colorize(image, cmap)
    if not (image.dim() == 2 or (image.dim() == 3 and image.shape[0] == 3)):
        raise ValueError(f"{path}: expected a grey [H, W] or RGB [3, H, W] image, "
                         f"got shape {tuple(image.shape)}")
    if not torch.isfinite(image).all() or image.min() < -1e-6 or image.max() > 1 + 1e-6:
        raise ValueError(f"{path}: image values must be finite and within [0, 1]")
    values = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    values = values if values.dim() == 2 else values.permute(1, 2, 0)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.ascontiguousarray(values.numpy()), extension=".png")
    return path


def save_gif(frames: torch.Tensor, path, fps: float = 12.0) -> Path:
    """Write frames ``[N, H, W]`` (grey) or ``[N, 3, H, W]`` (RGB) in [0, 1] as a looping GIF,
    atomically."""
    import imageio.v3 as iio
    import numpy as np

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{path}: animations are saved as .gif, got '{path.suffix}'")
    frames = torch.as_tensor(frames).detach().float().cpu()
    if not (frames.dim() == 3 or (frames.dim() == 4 and frames.shape[1] == 3)) or frames.shape[0] < 1:
        raise ValueError(f"{path}: expected frames [N, H, W] or [N, 3, H, W], got shape {tuple(frames.shape)}")
    if not torch.isfinite(frames).all() or frames.min() < -1e-6 or frames.max() > 1 + 1e-6:
        raise ValueError(f"{path}: frame values must be finite and within [0, 1]")
    if not fps > 0:
        raise ValueError(f"{path}: fps must be positive, got {fps!r}")
    values = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
    values = values if values.dim() == 3 else values.permute(0, 2, 3, 1)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.ascontiguousarray(values.numpy()), extension=".gif",
                    duration=1000.0 / fps, loop=0)
    return path
