"""Bilateral symmetry of a skull in the camera frame of one x-ray: its mid-sagittal plane, the
reflection across it, and a reconstruction made symmetric about it.

Every specimen lies in the cube mirror-symmetric about the world plane x = 0 (the procedural crania
exactly, but for their texture; a real head as nearly as it lies straight in its scanner). Seen
along a direction ``d``, that plane passes through the cube's centre with a normal that depends only
on ``d`` (:func:`mirror_normal`). If the truth is symmetric, so is the best estimate of it given the
x-ray (the conditional mean commutes with the reflection), and averaging an estimate with its mirror
image (:func:`symmetrize`) projects it onto the symmetric volumes, which brings it no farther from a
symmetric truth. A reader's radiograph seldom comes with its direction, so :func:`estimate_normal`
finds the plane about which a reconstruction is most nearly symmetric.

Normals are given in the view-aligned volume's normalised grid coordinates ``(x, y, z)`` = (columns
left to right, rows top to bottom, depth front to back), each spanning the cube from -1 to 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo.imaging.xray import camera_angles

__all__ = ["mirror_normal", "reflect", "symmetrize", "estimate_normal", "asymmetry"]


def mirror_normal(direction: torch.Tensor) -> torch.Tensor:
    """Unit normals ``[3]`` (or ``[B, 3]``) of the world plane x = 0 in the frame of the view along
    ``direction``, in grid order (columns, rows, depth): the camera basis of ``xray.align``."""
    d = checks.directions(direction, "mirror_normal").double()
    single = d.dim() == 1
    cos_az, sin_az, cos_po, sin_po = camera_angles(d.reshape(-1, 3))
    # the first row of align's rotation (camera (right, up, back) -> world): world x along each camera axis
    right, up, back = -sin_az, -cos_az * cos_po, cos_az * sin_po
    n = torch.stack([right, -up, -back], dim=1)  # rows run down the image, depth runs away from the source
    n = (n / n.norm(dim=1, keepdim=True)).float()
    return n[0] if single else n


def reflect(aligned: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """View-aligned volumes ``[D, H, W]`` (or ``[B, D, H, W]``) reflected across the plane through the
    cube's centre with unit ``normal`` ``[3]`` (or ``[B, 3]``); trilinear, zero outside the cube.

    Across a plane of the grid (a side or a front view) voxel centres land on voxel centres, so the
    reflection is the exact flip of that axis."""
    vol, single = checks.volume(aligned, "reflect")
    n = _normals(normal, len(vol), "reflect").to(vol)
    theta = torch.eye(3, dtype=vol.dtype, device=vol.device) - 2 * n[:, :, None] * n[:, None, :]
    theta = torch.cat([theta, torch.zeros(len(n), 3, 1, dtype=vol.dtype, device=vol.device)], dim=2)
    grid = F.affine_grid(theta, [len(vol), 1, *vol.shape[1:]], align_corners=False)
    out = F.grid_sample(vol[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    return out[0] if single else out


def symmetrize(aligned: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """The mean of view-aligned volumes and their reflections across ``normal``'s plane."""
    return 0.5 * (aligned + reflect(aligned, normal))


def asymmetry(aligned: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """How far volumes are from symmetric about ``normal``'s plane: ``|v - reflect(v)|^2 / (2 |v|^2)``
    (0 if symmetric; per volume)."""
    vol, single = checks.volume(aligned, "asymmetry")
    diff = (vol - reflect(vol, normal)).square().flatten(1).sum(1)
    out = diff / (2 * vol.square().flatten(1).sum(1)).clamp_min(1e-30)
    return out[0] if single else out


def estimate_normal(aligned: torch.Tensor, candidates: int = 600, refine: int = 200, chunk: int = 100,
                    seed: int = 0) -> torch.Tensor:
    """The plane through the cube's centre about which a view-aligned volume ``[D, H, W]`` is most
    nearly symmetric: its unit normal ``[3]``.

    ``candidates`` normals spread evenly over the hemisphere (a Fibonacci lattice; a normal and its
    opposite are one plane) are tried on the volume averaged down by 2, then ``refine`` seeded
    perturbations of the best (about 3 degrees) at full size."""
    vol, single = checks.volume(aligned, "estimate_normal")
    if not single:
        raise ValueError(f"estimate_normal: expected one volume [D, H, W], got shape {tuple(aligned.shape)}")
    candidates = checks.integer(candidates, "candidates", minimum=1, what="estimate_normal")
    refine = checks.integer(refine, "refine", minimum=0, what="estimate_normal")
    vol = vol.float()
    small = F.avg_pool3d(vol[None], 2)[0] if min(vol.shape[1:]) >= 4 else vol
    best = _least_asymmetric(small, _hemisphere(candidates), chunk)
    if refine:
        g = torch.Generator().manual_seed(int(seed))
        near = best + 0.06 * torch.randn(refine, 3, generator=g)
        near = torch.cat([best[None], near / near.norm(dim=1, keepdim=True)])
        best = _least_asymmetric(vol, near, chunk)
    return best


def _least_asymmetric(vol: torch.Tensor, normals: torch.Tensor, chunk: int) -> torch.Tensor:
    errors = torch.cat([(vol - reflect(vol.expand(len(n), -1, -1, -1), n)).square().flatten(1).sum(1)
                        for n in normals.split(chunk)])
    return normals[int(errors.argmin())]


def _hemisphere(n: int) -> torch.Tensor:
    """``n`` unit vectors with z > 0 spread evenly over the hemisphere (a Fibonacci lattice)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = i / n
    phi = i * math.pi * (3 - math.sqrt(5))
    r = (1 - z * z).sqrt()
    return torch.stack([r * phi.cos(), r * phi.sin(), z], dim=1).float()


def _normals(normal, batch: int, what: str) -> torch.Tensor:
    n = checks.directions(normal, what, name="plane normal")
    if n.dim() > 2:
        raise ValueError(f"{what}: plane normal must be [3] or [B, 3], got shape {tuple(n.shape)}")
    return checks.batched(n, batch, what, "plane normals")
