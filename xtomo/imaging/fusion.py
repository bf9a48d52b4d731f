"""Fusion (Henzler et al. 2018, Sec. 4.2): make a coarse predicted volume re-project exactly to the
full-resolution x-ray by handing each ray's density error back to its slices.

Per pixel, with n slices, ``dt = 1 / n`` and the input transparency alpha, Beer–Lambert
(``xtomo.imaging.xray.composite``) demands the optical mass ``S = sum_i mu_i = -ln(alpha) / (chi dt)``.
The prediction carries ``sum_i mu_i``; the *density error* ``Delta = sum_i mu_i - S`` is what a
policy removes (Delta > 0: too dense) or adds (Delta < 0). Every policy here returns densities
that are never negative and sum to ``S`` exactly, so ``composite(fused) == alpha`` (alpha
raised to :func:`alpha_floor` at most):

* ``first``: the paper's "wall", the whole error on the front slice.
* ``even``: the paper's convex example, ``Delta / n`` per slice.
* ``proportional``: the paper's Eq. 2, the error spread in proportion to ``mu_i ** beta``.
* ``scaled`` (ours): removal by one common factor ``S / sum mu``, addition as in Eq. 2.

Removal can ask a slice for more than it holds (Eq. 2 with beta > 1 takes most from the densest
slices). Then the policy's weights are kept and the level raised until the emptied slices sit at
exactly zero and the rest carry ``S``: the fixed point of "clamp at 0, redistribute the remainder
over the slices still positive", solved exactly per ray by sorting (see ``_clamped_removal``).

``fuse`` works on one volume; ``fuse_upsampled`` first upsamples a coarse volume laterally to
the x-ray's size; ``fuse_to_file`` does the same in blocks of rows streamed into a NIfTI file, so
that the full ``[n, H, W]`` result never sits in memory.
"""
from __future__ import annotations

import functools
import gzip
import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import xtomo._checks as checks
from xtomo.files import atomic_path
from xtomo.geometry import DEFAULT_FOV_MM, grid_affine, nifti_header
from xtomo.imaging.xray import CHI, N_STEPS

__all__ = ["MAX_DENSITY", "POLICIES", "alpha_floor", "required_sum", "density_error",
           "paper_density_error", "first", "even", "proportional", "scaled", "fuse",
           "fuse_upsampled", "fuse_to_file"]

MAX_DENSITY = 1.0
"""The largest mean density a ray may need: density 1 (the top of the convention) along the whole ray."""


def alpha_floor(chi: float = CHI) -> float:
    """The darkest transparency fusion honours, ``exp(-chi * MAX_DENSITY)`` (4.5e-5 for chi = 10).

    Darker pixels, alpha = 0 above all (infinite optical depth: a saturated detector, never
    physical), are read as this floor, so a ray never needs more than ``n * MAX_DENSITY``.
    """
    return math.exp(-_chi(chi, "alpha_floor") * MAX_DENSITY)


def required_sum(alpha, chi: float = CHI, n: int = N_STEPS) -> torch.Tensor:
    """The target optical mass ``S = -ln(alpha) / (chi dt)``, ``dt = 1 / n``: what ``sum_i mu_i`` must be.

    Alpha below :func:`alpha_floor` (0 included) counts as the floor.
    """
    n = checks.integer(n, "n (slices per ray)", minimum=1, what="required_sum")
    return _required_sum(checks.alpha(alpha, "required_sum"), _chi(chi, "required_sum"), n)


def density_error(alpha, mu, chi: float = CHI) -> torch.Tensor:
    """The exact density error ``Delta = sum_i mu_i - S`` ``[..., H, W]`` of ``mu [..., n, H, W]``.

    From ``alpha = exp(-chi dt S)`` and ``alpha_pred = exp(-chi dt sum mu)``:
    ``Delta = ln(alpha / alpha_pred) / (chi dt) = ln(1 - Delta_alpha / alpha_pred) / (chi dt)``
    with ``Delta_alpha = alpha_pred - alpha``; positive when the prediction is too dense.
    """
    mu, alpha = _check_pair(mu, alpha, "density_error")
    return mu.sum(-3) - _required_sum(alpha, _chi(chi, "density_error"), mu.shape[-3])


def paper_density_error(alpha, mu, chi: float = CHI) -> torch.Tensor:
    """The paper's density error ``log(1 - Delta_alpha) / (chi dt)``, in the units of :func:`density_error`.

    The exact error is ``ln(1 - Delta_alpha / alpha_pred) / (chi dt)``; the paper's drops the
    division by ``alpha_pred``. To first order they read ``-Delta_alpha / alpha_pred`` and
    ``-Delta_alpha``: they agree only for small errors on nearly transparent rays (alpha_pred ~ 1);
    on a bone ray with alpha_pred = 0.1 the paper's error is about ten times too small.
    """
    mu, alpha = _check_pair(mu, alpha, "paper_density_error")
    chi, n = _chi(chi, "paper_density_error"), mu.shape[-3]
    predicted = torch.exp(-chi / n * mu.sum(-3))
    return torch.log1p(alpha.clamp_min(alpha_floor(chi)) - predicted) * (n / chi)


# ---------------------------------------------------------------------------------------------
# policies: (mu [..., n, H, W], Delta [..., H, W]) -> fused mu, never negative, summing to S

def first(mu: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The whole error on the front slice (the paper's "wall": right x-ray, wrong from any other view).

    A removal larger than the front slice's density carries on to the next slices, front to back,
    so nothing goes negative: slice i keeps ``clamp(cumsum_i(mu) - Delta, 0, mu_i)``.
    """
    out = (mu.cumsum(-3) - delta.clamp_min(0).unsqueeze(-3)).clamp_min_(0).minimum(mu)
    out[..., 0, :, :] += (-delta).clamp_min(0)
    return out


def even(mu: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``Delta / n`` off every slice (the paper's convex example; it fills empty space with haze).

    A removal that would take a slice below zero empties it and takes the rest evenly from the
    slices still positive: one common level subtracted, clamped at zero.
    """
    weights = torch.ones((), dtype=mu.dtype, device=mu.device).expand_as(mu)
    return _distribute(mu, delta, weights, float(mu.shape[-3]))


def proportional(mu: torch.Tensor, delta: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """The paper's Eq. 2: ``mu_i - Delta * mu_i**beta / sum_j mu_j**beta`` (beta = 2 sharpens).

    With beta > 1 a large removal takes most from the densest slices and would drive them
    negative; those are emptied and the remainder taken, with the same weights, from the rest.
    A ray the prediction left empty has no weights: missing density is spread evenly over it.
    """
    weights, total = _weights(mu, beta)
    return _distribute(mu, delta, weights, total)


def scaled(mu: torch.Tensor, delta: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Ours: a too-dense ray is scaled by ``S / sum mu``; a too-light one gains as in Eq. 2 (``mu**beta``).

    Removal by a common factor is Eq. 2 with beta = 1: it never goes negative, keeps empty space
    empty and relative densities (bone stays bone), and undoes a global over-estimate exactly,
    whereas Eq. 2 with beta = 2 strips the densest voxels first and can erase bone outright.
    Addition keeps Eq. 2's preference for dense voxels (beta = 1 makes the policy purely
    multiplicative). An empty predicted ray gains evenly.
    """
    total = mu.sum(-3)
    factor = torch.where(delta > 0, (total - delta) / total, torch.ones_like(total))
    weights, weight_sum = _weights(mu, beta)
    return mu * factor.unsqueeze(-3) + (weights / weight_sum) * (-delta).clamp_min(0).unsqueeze(-3)


POLICIES = {"first": first, "even": even, "proportional": proportional, "scaled": scaled}
"""Error-distribution policies by name; ``proportional`` and ``scaled`` take ``beta``."""


def _weights(mu: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``mu**beta`` and its sum over depth (kept), uniform on rays where every weight is zero."""
    weights = mu.pow(beta)
    total = weights.sum(-3, keepdim=True)
    empty = total == 0
    if empty.any():
        weights = weights + empty
        total = total.masked_fill(empty, mu.shape[-3])
    return weights, total


def _distribute(mu, delta, weights, weight_sum) -> torch.Tensor:
    """``mu - Delta * weights / weight_sum``; rays where that goes negative go to ``_clamped_removal``.

    The shares ``weights / weight_sum`` are taken first: ``Delta / weight_sum`` overflows where the weights
    are tiny (a subnormal density), and inf times a zero weight is NaN."""
    out = torch.sub(mu, (weights / weight_sum).mul_(delta.unsqueeze(-3)))   # one full-size temporary, as before
    negative = (out < 0).any(-3)
    if negative.any():
        target = mu.sum(-3)[negative] - delta[negative]
        rays = out.movedim(-3, -1)
        rays[negative] = _clamped_removal(mu.movedim(-3, -1)[negative], target,
                                          weights.movedim(-3, -1)[negative]).to(out.dtype)
    return out


def _clamped_removal(mu: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``max(mu - level * w, 0)`` per ray ``[m, n]``, with the level at which each ray sums to ``target``.

    The sum falls continuously as the level rises; slice i empties once the level passes
    ``q_i = mu_i / w_i``. With the slices sorted by q, emptying the first k leaves the level
    ``(A_k - target) / B_k`` (A, B: the remaining mass and weight); the right k is the number of
    slices that level still overruns. One sort per ray: the cost does not depend on how many
    slices empty, unlike the clamp-and-redistribute passes, which may take up to n rounds.
    """
    n = mu.shape[-1]
    q, order = torch.where(weights > 0, mu / weights, math.inf).sort(-1)
    mass = mu.gather(-1, order).flip(-1).cumsum(-1).flip(-1)
    weight = weights.gather(-1, order).flip(-1).cumsum(-1).flip(-1)
    levels = (mass - target.unsqueeze(-1)) / weight
    emptied = (levels > q).sum(-1, keepdim=True)
    level = levels.gather(-1, emptied.clamp_max(n - 1)).masked_fill(emptied == n, math.inf)
    return torch.where(weights > 0, (mu - level * weights).clamp_min(0), mu)


# ---------------------------------------------------------------------------------------------
# front doors

def fuse(mu, alpha, chi: float = CHI, policy: str = "proportional", beta: float = 2.0) -> torch.Tensor:
    """Fused densities ``[..., n, H, W]``: ``mu`` corrected so that it re-projects to ``alpha [..., H, W]``.

    Never negative, and ``composite(fused, chi)`` equals ``max(alpha, alpha_floor(chi))`` to
    float rounding. Where alpha = 1 (nothing there) the fused ray is exactly zero. ``policy``
    names one of :data:`POLICIES`; ``beta`` is the sharpness of ``proportional`` and ``scaled``.
    """
    mu, alpha = _check_pair(mu, alpha, "fuse")
    return _fuse(mu, alpha, _chi(chi, "fuse"), _policy(policy, beta, "fuse"))


def fuse_upsampled(mu_coarse, alpha_full, chi: float = CHI, policy: str = "proportional",
                   beta: float = 2.0) -> torch.Tensor:
    """Fuse a coarse volume ``[n, h, w]`` with a full-resolution x-ray ``[H, W]``: ``[n, H, W]``.

    Each slice is upsampled bilinearly (``F.interpolate(..., align_corners=False)`` sampling; no
    prefilter, so meant for H >= h, W >= w) and every full-resolution pixel is fused on its own.
    Depth stays n. Holds the whole result in memory; see :func:`fuse_to_file` for large images.
    """
    mu, alpha = _check_coarse(mu_coarse, alpha_full, "fuse_upsampled")
    return _fuse(_upsample_rows(mu, alpha.shape, 0, alpha.shape[0]), alpha, _chi(chi, "fuse_upsampled"),
                 _policy(policy, beta, "fuse_upsampled"))


def fuse_to_file(mu_coarse, alpha_full, path, tile: int = 256, chi: float = CHI,
                 policy: str = "proportional", beta: float = 2.0, progress: bool = True,
                 affine=None) -> Path:
    """:func:`fuse_upsampled` streamed block by block into a NIfTI file (``.nii`` or ``.nii.gz``), atomically.

    Blocks are whole rows holding about ``tile * tile`` pixels each, so memory is bounded by
    ``n * tile**2`` voxels whatever the image size. Each block's rows are sampled on the global
    grid, so blocks join seamlessly. The file has the layout of ``xtomo.data.io.save_volume`` (float32,
    x fastest, qform = sform = ``affine``, in mm; by default, as there, the cube of side
    ``DEFAULT_FOV_MM`` centred on 0): ``load_volume(path, fit=False)`` and nibabel read it as such.
    ``.nii`` is written in place, one positioned write per depth slice and block (no memory map,
    so written pages never count as this process's memory); ``.nii.gz`` is not seekable, so it
    is written as ``.nii`` beside the target first and then compressed sequentially.
    """
    mu, alpha = _check_coarse(mu_coarse, alpha_full, "fuse_to_file")
    path = Path(path)
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise ValueError(f"fuse_to_file: {path}: expected a .nii or .nii.gz path")
    tile = checks.integer(tile, "tile", minimum=1, what="fuse_to_file")
    chi, fn = _chi(chi, "fuse_to_file"), _policy(policy, beta, "fuse_to_file")
    shape = (mu.shape[0], *alpha.shape)
    if affine is None:
        affine = grid_affine(DEFAULT_FOV_MM / np.array(shape, float), shape)
    header = nifti_header(shape, np.asarray(affine, float))
    header.set_data_offset(352)
    header = header.binaryblock + b"\0" * 4  # no extensions
    with atomic_path(path) as tmp:
        if path.name.lower().endswith(".nii"):
            _stream_nifti(tmp, header, mu, alpha, tile, chi, fn, progress)
        else:
            raw = tmp.with_name(tmp.name[:-len(".gz")])
            try:
                _stream_nifti(raw, header, mu, alpha, tile, chi, fn, progress)
                with open(raw, "rb") as src, gzip.open(tmp, "wb", compresslevel=1) as dst:
                    shutil.copyfileobj(src, dst, 1 << 24)
            finally:
                raw.unlink(missing_ok=True)
    return path


def _fuse(mu, alpha, chi, policy) -> torch.Tensor:
    """Fuse checked inputs; rays that need no density (alpha = 1) come out exactly zero."""
    target = _required_sum(alpha, chi, mu.shape[-3])
    return policy(mu, mu.sum(-3) - target).masked_fill_((target == 0).unsqueeze(-3), 0)


def _required_sum(alpha, chi, n) -> torch.Tensor:
    return alpha.clamp_min(alpha_floor(chi)).log() * (-n / chi)


def _upsample_rows(mu: torch.Tensor, size, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of ``mu [n, h, w]`` upsampled bilinearly to ``size = (H, W)``: ``[n, rows, W]``.

    Rows are interpolated here on the global grid (source row ``(r + 0.5) h / H - 0.5``, clamped
    at the edges, as ``F.interpolate`` with ``align_corners=False``), so any block of rows
    matches the same rows of the whole image; the columns then go through ``F.interpolate``.
    """
    (h, w), (H, W) = mu.shape[-2:], size
    rows = torch.arange(start, stop, dtype=torch.float64, device=mu.device)
    source = ((rows + 0.5) * (h / H) - 0.5).clamp_min(0)
    lower = source.floor().long().clamp_max(h - 1)
    frac = (source - lower).to(mu.dtype)[:, None]
    upper = (lower + 1).clamp_max(h - 1)
    block = mu[:, lower] * (1 - frac) + mu[:, upper] * frac
    return block if W == w else F.interpolate(block, size=W, mode="linear", align_corners=False)


def _stream_nifti(path: Path, header: bytes, mu, alpha, tile, chi, policy, progress) -> None:
    """Write the fused volume to an uncompressed NIfTI at ``path`` (``header`` first), one block of
    rows at a time."""
    n, (H, W) = mu.shape[0], alpha.shape
    rows = max(1, tile * tile // W)
    slab = H * W * 4  # bytes of one depth slice: the file holds slice after slice, rows within
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.pwrite(fd, header, 0)
        os.ftruncate(fd, len(header) + n * slab)
        with tqdm(total=H, unit="row", desc="fusion", disable=not progress) as bar:
            for start in range(0, H, rows):
                stop = min(start + rows, H)
                block = _fuse(_upsample_rows(mu, (H, W), start, stop), alpha[start:stop], chi, policy)
                block = np.ascontiguousarray(block.cpu().numpy(), dtype=np.float32)  # a view when not upsampled
                for d in range(n):
                    os.pwrite(fd, block[d], len(header) + d * slab + start * W * 4)
                bar.update(stop - start)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# checks: bad input is named, never clipped

def _chi(chi, what: str) -> float:
    return checks.positive(chi, "chi (extinction coefficient)", what)


def _policy(policy, beta, what: str):
    """The policy function for a name, with ``beta`` bound where the policy has one."""
    checks.choice(policy, "policy", POLICIES, what)
    beta = checks.nonnegative(beta, "beta (sharpness)", what)
    return functools.partial(POLICIES[policy], beta=beta) if policy in ("proportional", "scaled") \
        else POLICIES[policy]


def _check_pair(mu, alpha, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    mu = checks.tensor(mu, "mu (predicted densities)", what, nonnegative=True)
    if mu.dim() < 3:
        raise ValueError(f"{what}: mu (predicted densities) must be a view-aligned volume [..., n, H, W], "
                         f"got shape {tuple(mu.shape)}")
    alpha = checks.alpha(alpha, what)
    expected = mu.shape[:-3] + mu.shape[-2:]
    if alpha.shape != expected:
        raise ValueError(f"{what}: alpha has shape {tuple(alpha.shape)} but the volume "
                         f"{tuple(mu.shape)} needs an x-ray of shape {tuple(expected)}")
    return mu, alpha.to(mu.device, mu.dtype)


def _check_coarse(mu, alpha, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    mu = checks.tensor(mu, "mu_coarse", what, nonnegative=True)
    alpha = checks.alpha(alpha, what)
    if mu.dim() != 3:
        raise ValueError(f"{what}: mu_coarse must be [n, h, w], got shape {tuple(mu.shape)}")
    if alpha.dim() != 2:
        raise ValueError(f"{what}: alpha_full must be [H, W], got shape {tuple(alpha.shape)}")
    if min(mu.shape) < 1 or min(alpha.shape) < 1:
        raise ValueError(f"{what}: empty input: mu_coarse {tuple(mu.shape)}, alpha_full {tuple(alpha.shape)}")
    return mu, alpha.to(mu.device, mu.dtype)
