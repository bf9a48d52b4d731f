"""Classical parallel-beam tomography on stacks of slices: the radon transform, filtered
back-projection (FBP) and the simultaneous algebraic reconstruction technique (SART).

A scanner with a parallel beam measures every slice perpendicular to its rotation axis
independently, so a volume is a stack of 2-D problems. Here they are solved all at once: the
slices ride along as channels of one ``grid_sample`` call per chunk of angles, which keeps a CPU
(or GPU) busy where scikit-image's ``radon``/``iradon``/``iradon_sart`` loop over slices one by
one in NumPy (``benchmarks/tomography_speed.py`` measures both).

Geometry, in pixel units about the slice's centre (x along columns, y along rows, downwards):
the projection at angle ``theta`` (degrees) and detector position ``t`` integrates the slice
along the line ``x cos(theta) - y sin(theta) = t``, scikit-image's convention except that the
centre is the slice's geometric centre (scikit-image turns about pixel ``N // 2``); detector bins
lie at the pixel centres of a row. Slices are
``[S, N, N]``, sinograms ``[S, A, N]`` (slice, angle, detector bin). Values outside the inscribed
circle are assumed to be zero, as in a scanner whose field of view holds the whole specimen.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import xtomo._checks as checks

__all__ = ["WINDOWS", "scan_angles", "circle", "radon", "backproject", "ramp_filter", "fbp", "sart",
           "golden_order"]

#: Windows of the ramp filter (Kak & Slaney 1988, ch. 3): plain ramp, or ramp damped at high frequencies.
WINDOWS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")

_CHUNK = 1 << 24   # samples per grid_sample call: bounds the memory of a chunk of angles


def scan_angles(n: int, arc: float = 180.0) -> torch.Tensor:
    """``n`` equally spaced projection angles in degrees over ``arc`` (180 or 360), from 0."""
    n = checks.integer(n, "n", minimum=1, what="scan_angles")
    if arc not in (180, 360):
        raise ValueError(f"scan_angles: arc must be 180 or 360 degrees for parallel beams, got {arc!r}")
    return torch.arange(n, dtype=torch.float64) * (arc / n)


def circle(n: int, device=None) -> torch.Tensor:
    """``[N, N]`` mask of the pixels whose centres lie inside the inscribed circle."""
    c = torch.arange(n, dtype=torch.float32, device=device) - (n - 1) / 2
    return (c[:, None] ** 2 + c[None, :] ** 2 <= (n / 2) ** 2).float()


def _angles(angles, device) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.as_tensor(angles, dtype=torch.float64).reshape(-1)
    if a.numel() == 0 or not torch.isfinite(a).all():
        raise ValueError("angles must be a non-empty list of finite numbers (degrees)")
    r = torch.deg2rad(a)
    return r.cos().float().to(device), r.sin().float().to(device)


def _slices(x, what: str = "slices") -> torch.Tensor:
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point torch tensor, got "
                        f"{type(x).__name__ if not torch.is_tensor(x) else x.dtype}")
    if x.dim() != 3 or x.shape[-1] != x.shape[-2] or x.shape[-1] < 2:
        raise ValueError(f"{what} must be a stack of square slices [S, N, N], got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or inf")
    return x


def _sinogram(sino, angles) -> torch.Tensor:
    if not torch.is_tensor(sino) or not sino.is_floating_point() or sino.dim() != 3:
        raise ValueError("sinogram must be a floating-point tensor [S, A, N] (slices, angles, detector bins), "
                         f"got {tuple(sino.shape) if torch.is_tensor(sino) else type(sino).__name__}")
    n_angles = torch.as_tensor(angles).reshape(-1).numel()
    if sino.shape[1] != n_angles:
        raise ValueError(f"sinogram has {sino.shape[1]} angles but {n_angles} angles were given")
    if not torch.isfinite(sino).all():
        raise ValueError("sinogram contains NaN or inf")
    return sino


def radon(slices: torch.Tensor, angles) -> torch.Tensor:
    """Parallel projections ``[S, A, N]`` of slices ``[S, N, N]`` at ``angles`` (degrees).

    Each angle turns the sampling grid, not the image: bilinear samples one pixel apart along
    every ray, summed (line integrals in pixel units).
    """
    f = _slices(slices)
    s, n = f.shape[0], f.shape[-1]
    cos, sin = _angles(angles, f.device)
    c = (torch.arange(n, device=f.device, dtype=torch.float32) - (n - 1) / 2) * (2 / n)
    t, v = c[None, None, :], c[None, :, None]          # detector along columns, ray along rows
    out = []
    step = max(1, _CHUNK // (s * n * n))
    for i in range(0, len(cos), step):
        cs, sn = cos[i:i + step, None, None], sin[i:i + step, None, None]
        grid = torch.stack([t * cs + v * sn, -t * sn + v * cs], dim=-1)          # [a, N(v), N(t), 2]
        samples = F.grid_sample(f[None], grid.reshape(1, -1, n, 2).to(f.dtype), mode="bilinear",
                                padding_mode="zeros", align_corners=False)       # [1, S, a*N, N]
        out.append(samples.reshape(s, -1, n, n).sum(2))
    return torch.cat(out, 1)


def backproject(sino: torch.Tensor, angles, size: int | None = None) -> torch.Tensor:
    """Smear each projection back along its rays and add: ``[S, A, N]`` -> ``[S, size, size]``.

    Linear interpolation between detector bins; no weighting (the transpose of ``radon`` up to
    interpolation, as FBP and SART need it).
    """
    q = _sinogram(sino, angles)
    s, a, n = q.shape
    size = n if size is None else size
    cos, sin = _angles(angles, q.device)
    c = torch.arange(size, device=q.device, dtype=torch.float32) - (size - 1) / 2
    x, y = c[None, None, :], c[None, :, None]
    rows = (torch.arange(a, device=q.device, dtype=torch.float32) * 2 + 1) / a - 1
    out = torch.zeros(s, size * size, dtype=q.dtype, device=q.device)
    step = max(1, _CHUNK // (s * size * size))
    for i in range(0, a, step):
        cs, sn = cos[i:i + step, None, None], sin[i:i + step, None, None]
        t = (x * cs - y * sn) * (2 / n)                                          # [a, size, size]
        row = rows[i:i + step, None, None].expand_as(t)
        grid = torch.stack([t, row], dim=-1).reshape(1, -1, size * size, 2)
        out += F.grid_sample(q[None], grid.to(q.dtype), mode="bilinear", padding_mode="zeros",
                             align_corners=False)[0].sum(1)
    return out.reshape(s, size, size)


def _filter(n: int, window: str, device, dtype) -> torch.Tensor:
    """Frequency response of the ramp filter of length ``n`` (zero-padded detector), windowed.

    The ramp is built in space (Kak & Slaney 1988, Eq. 61) and transformed, which avoids the DC
    offset of sampling ``|omega|`` directly; the factor 2 matches scikit-image's filter."""
    k = torch.cat([torch.arange(1, n // 2 + 1, 2), torch.arange(n // 2 - 1, 0, -2)]).double()
    h = torch.zeros(n, dtype=torch.float64)
    h[0] = 0.25
    h[1::2] = -1 / (math.pi * k) ** 2
    response = 2 * torch.fft.fft(h).real
    omega = math.pi * torch.fft.fftfreq(n, dtype=torch.float64)
    if window == "shepp-logan":
        response[1:] *= torch.sin(omega[1:]) / omega[1:]
    elif window == "cosine":
        response *= torch.cos(omega / 2)
    elif window == "hamming":
        response *= torch.fft.fftshift(torch.hamming_window(n, periodic=False, dtype=torch.float64))
    elif window == "hann":
        response *= torch.fft.fftshift(torch.hann_window(n, periodic=False, dtype=torch.float64))
    return response.to(device=device, dtype=dtype)


def ramp_filter(sino: torch.Tensor, window: str = "ram-lak") -> torch.Tensor:
    """Filter every projection with the (windowed) ramp along the detector, zero-padded to at
    least twice its length so that the circular convolution does not wrap around."""
    if window not in WINDOWS:
        raise ValueError(f"unknown ramp-filter window {window!r}; choose one of {WINDOWS}")
    n = sino.shape[-1]
    padded = max(64, 1 << math.ceil(math.log2(2 * n)))
    spectrum = torch.fft.fft(F.pad(sino, (0, padded - n)), dim=-1)
    response = _filter(padded, window, sino.device, torch.float64 if sino.dtype == torch.float64 else torch.float32)
    return torch.fft.ifft(spectrum * response, dim=-1).real[..., :n].to(sino.dtype)


def fbp(sino: torch.Tensor, angles, window: str = "ram-lak", size: int | None = None) -> torch.Tensor:
    """Filtered back-projection ``[S, A, N]`` -> ``[S, N, N]`` for angles spread evenly over 180
    or 360 degrees (the discrete form of the inverse radon transform, Kak & Slaney 1988)."""
    q = _sinogram(sino, angles)
    a = q.shape[1]
    mask = circle(size or q.shape[-1], q.device)
    return backproject(ramp_filter(q, window), angles, size) * (math.pi / (2 * a)) * mask


def golden_order(n: int) -> list[int]:
    """Angle indices in golden-ratio order: each next projection as different as possible from
    the ones before, which makes sequential (SART) updates converge faster."""
    step = (math.sqrt(5) - 1) / 2
    keys = [(i * step) % 1.0 for i in range(n)]
    return sorted(range(n), key=lambda i: keys[i])


def sart(sino: torch.Tensor, angles, sweeps: int = 2, relaxation: float = 0.25, subsets: int | None = None,
         init: torch.Tensor | None = None, nonnegative: bool = True, progress: bool = False,
         history: list | None = None) -> torch.Tensor:
    """SART (Andersen & Kak 1984) for every slice at once: ``[S, A, N]`` -> ``[S, N, N]``.

    Each update takes one subset of the angles (``subsets`` of them per sweep, default: every
    angle on its own, classical SART), compares the current slices' projections with the
    measured ones, divides the difference by each ray's length through the field of view,
    back-projects it, and adds ``relaxation`` times its mean over the subset. Angles are visited
    in golden-ratio order. ``init`` (e.g. an FBP) starts elsewhere than zero; ``nonnegative``
    clamps density at zero after every update. If ``history`` is a list, the relative residual
    ``|radon(f) - p| / |p|`` after every sweep is appended to it.
    """
    from tqdm.auto import tqdm

    q = _sinogram(sino, angles)
    s, a, n = q.shape
    sweeps = checks.integer(sweeps, "sweeps", minimum=1, what="sart")
    if not 0 < relaxation < 2:
        raise ValueError(f"sart: relaxation must lie in (0, 2), got {relaxation!r}")
    subsets = a if subsets is None else checks.integer(subsets, "subsets (of the angles)", 1, a, "sart")
    angles = torch.as_tensor(angles, dtype=torch.float64).reshape(-1)
    mask = circle(n, q.device).to(q.dtype)
    lengths = radon(mask[None], angles)[0]                                   # [A, N] ray lengths
    weight = torch.where(lengths > 0.5, 1 / lengths.clamp_min(0.5), torch.zeros_like(lengths))
    f = torch.zeros(s, n, n, dtype=q.dtype, device=q.device) if init is None else _slices(init, "init").clone()
    if f.shape != (s, n, n):
        raise ValueError(f"sart: init must have shape {(s, n, n)}, got {tuple(f.shape)}")
    order = golden_order(a)
    groups = [order[k::subsets] for k in range(subsets)]
    bar = tqdm(total=sweeps * subsets, desc="SART", unit="update", disable=not progress)
    for _ in range(sweeps):
        for g in groups:
            idx = torch.tensor(g, device=q.device)
            residual = (q[:, idx] - radon(f, angles[g])) * weight[idx]
            f += (relaxation / len(g)) * backproject(residual, angles[g], n)
            if nonnegative:
                f.clamp_(min=0)
            f *= mask
            bar.update()
        if history is not None:
            history.append(float((radon(f, angles) - q).norm() / q.norm().clamp_min(1e-12)))
    bar.close()
    return f
