"""Images of volumes for people: iso-surfaces, direct volume rendering, MIP, x-rays and anaglyphs.

Every mode looks along the rays of ``xray.align`` (the x-ray camera), so a render and an x-ray of
one view line up pixel for pixel; a view-aligned volume (``view=None``, what the network predicts)
is rendered as it stands. Camera coordinates: x right, y up, z towards the viewer. Images are
grey ``[rows, cols]`` or RGB ``[3, rows, cols]`` in [0, 1]; a batch adds a leading axis. The light
(surfaces, environments, ambient occlusion) comes from ``shading``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo.files import atomic_path
from xtomo.imaging import xray
from xtomo.imaging.shading import AO_SCALES, LEVEL, key_light, shade_surface, shade_volume, studio

__all__ = [
    "MODES", "TRANSFERS", "DEFAULT_VIEW", "LEVEL", "AO_SCALES", "studio", "key_light", "to_camera", "cut",
    "iso", "dvr", "mip", "radiograph", "anaglyph", "wiggle", "preview", "image", "colorize", "save_png", "save_gif",
]

MODES = ("xray", "iso", "dvr", "mip", "anaglyph")
DEFAULT_VIEW = (30.0, 20.0)   # azimuth, elevation in degrees: a pleasing oblique view
REF_STEPS = xray.N_STEPS      # transfer-function opacities are per 1/128 of the cube
IVORY = (1.0, 0.93, 0.80)

# ---------------------------------------------------------------------------------------------
# camera frame


def _size(size, default) -> tuple[int, int]:
    rows, cols = default if size is None else (size, size) if isinstance(size, int) else tuple(size)
    if not all(isinstance(s, int) and s >= 2 for s in (rows, cols)):
        raise ValueError(f"render: size must be an integer >= 2 or a pair of them, got {size!r}")
    return rows, cols


def _camera(volume, view, size, n_steps) -> tuple[torch.Tensor, bool, int]:
    """Camera-frame volume ``[B, n, rows, cols]``, whether the input was a single volume, and the
    input's resolution (voxels along its shortest axis)."""
    vol, single = checks.volume(volume, "render")
    if n_steps is not None:
        n_steps = checks.integer(n_steps, "n_steps", minimum=2, what="render")
    if view is None:
        shape = (n_steps or vol.shape[1], *_size(size, vol.shape[-2:]))
        resolution = min(vol.shape[1:])
        if shape != tuple(vol.shape[1:]):
            vol = F.interpolate(vol[:, None], size=shape, mode="trilinear", align_corners=False)[:, 0]
        return vol, single, resolution
    dirs = checks.directions(view, "render").reshape(-1, 3)
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
    vol, single = checks.volume(volume, "cut")
    n = checks.directions(normal, "cut", vol.dtype, name="normal").reshape(-1)
    if n.numel() != 3:
        raise ValueError(f"cut: normal must be one 3-vector (x, y, z), got {normal!r}")
    if not math.isfinite(offset):
        raise ValueError(f"cut: offset must be finite, got {offset!r}")
    n = n.to(vol.device)
    axes = [(torch.arange(k, device=vol.device, dtype=vol.dtype) * 2 + 1) / k - 1 for k in vol.shape[1:]]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    voxel = 2.0 / min(vol.shape[1:])
    keep = ((offset - (n[0] * x + n[1] * y + n[2] * z)) / voxel + 0.5).clamp(0, 1)
    out = vol * keep
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# the modes


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
    out = shade_surface(a, level, resolution, environment, ao, specular, shininess, albedo, depth_cue, ao_scales)
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
        factor = shade_volume(a, resolution, environment, shading)
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
    frames = checks.integer(frames, "frames", minimum=2, what="wiggle")
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
    vol, single = checks.volume(aligned, "preview")
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
