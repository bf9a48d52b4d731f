"""What training does to a specimen before its x-ray is taken, as real CTs differ from the procedural crania:
cut from below by a tilted plane as a CT's field of view cuts a head, stretched along its axes, fitted into
the cube again as every real volume is, turned as a head lies in a scanner, blurred, and made lighter or
denser. Each function takes a whole batch, on the CPU or a GPU: ``datasets.XrayDataset`` draws the
``Augmentation`` of each sample and ``xtomo.data.pipeline`` applies it to batches on the device.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from xtomo.data.io import FIT_RADIUS

__all__ = ["Augmentation", "CUT_TILT", "unchanged", "blurred", "turning", "truncated", "augmented"]

CUT_TILT = math.radians(20)  #: the cutting plane of ``truncated`` leans up to this far forward or back


class Augmentation(NamedTuple):
    """What ``augmented`` does to each of B specimens, in the order it takes them (``augmented(v, *a)``)."""

    blur: torch.Tensor     #: [B] Gaussian sigma, voxels
    gain: torch.Tensor     #: [B] density factor
    cut: torch.Tensor      #: [B] share of the height cut from below
    tilt: torch.Tensor     #: [B] lean of the cutting plane, radians
    stretch: torch.Tensor  #: [B, 3] factors along x, y, z
    turn: torch.Tensor     #: [B, 3] pitch, roll, yaw, radians (``turning``)


def unchanged(n: int) -> Augmentation:
    """The augmentation of ``n`` samples that leaves their specimens as they are: blur 0, gain 1, cut 0,
    tilt 0, stretch 1, turn 0."""
    return Augmentation(torch.zeros(n), torch.ones(n), torch.zeros(n), torch.zeros(n), torch.ones(n, 3),
                        torch.zeros(n, 3))


def blurred(volumes: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Volumes ``[B, D, H, W]``, each smoothed by a Gaussian of its own sigma (voxels; 0 leaves it as
    it is): separable, zero outside, each kernel cut at three of its sigmas and normalised, so mass is
    kept away from the borders and a batch gives each volume what it would get alone."""
    sigmas = sigmas.to(volumes.device, volumes.dtype).reshape(-1)
    if not bool((sigmas > 0).any()):
        return volumes
    radius = int(math.ceil(3 * float(sigmas.max())))
    x = torch.arange(-radius, radius + 1, device=volumes.device, dtype=volumes.dtype)
    width = sigmas.clamp_min(1e-6)[:, None]
    kernels = torch.exp(-x**2 / (2 * width**2)) * (x.abs() <= torch.ceil(3 * width))
    kernels = kernels / kernels.sum(1, keepdim=True)
    out, b = volumes[None], len(sigmas)
    for axis in range(3):
        shape = [b, 1, 1, 1, 1]
        shape[2 + axis] = 2 * radius + 1
        out = F.conv3d(out, kernels.reshape(shape), padding="same", groups=b)
    return out[0]


def turning(turns: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[B, 3, 3]`` acting on (x, y, z) of ``turns`` ``[B, 3]`` (radians, right-handed): pitch
    about x (+y towards +z: a positive pitch lifts the face), then roll about y (+z towards +x), then yaw
    about z (+x towards +y)."""
    c, s = torch.cos(turns), torch.sin(turns)
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def matrix(*rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    pitch = matrix((one, zero, zero), (zero, c[:, 0], -s[:, 0]), (zero, s[:, 0], c[:, 0]))
    roll = matrix((c[:, 1], zero, s[:, 1]), (zero, one, zero), (-s[:, 1], zero, c[:, 1]))
    yaw = matrix((c[:, 2], -s[:, 2], zero), (s[:, 2], c[:, 2], zero), (zero, zero, one))
    return yaw @ roll @ pitch


def truncated(volumes: torch.Tensor, cuts: torch.Tensor, tilts: torch.Tensor,
              stretches: torch.Tensor | None = None, turns: torch.Tensor | None = None) -> torch.Tensor:
    """Volumes ``[B, D, H, W]`` (z up, y forward, x across), each cut from below as a CT's field of view
    cuts a head, then fitted into the cube again as ``io.prepare_volume`` fits every real volume.

    The plane's normal is z tilted by ``tilts`` (radians) towards +y (a positive tilt takes more from the
    back, a negative one more from the face); below it goes the share ``cuts`` of the specimen's extent
    along that normal (its voxels above 5 % of its densest). The rest is centred
    on its bounding box and scaled, equally on all axes, until it reaches ``io.FIT_RADIUS``; trilinear,
    zero outside. ``stretches`` ``[B, 3]`` (x, y, z) first scale each specimen along its own axes (after
    the cut), so the fit sees the stretched shape; ``turns`` ``[B, 3]`` (``turning``) then turn it about the
    fit sphere's centre, which keeps it inside the cube. A volume whose cut is 0, stretch 1 and turn 0 is
    left as it is.
    """
    cuts = cuts.to(volumes.device, volumes.dtype).reshape(-1)
    stretches = (torch.ones(len(cuts), 3) if stretches is None else stretches).to(volumes.device, volumes.dtype)
    turns = (torch.zeros(len(cuts), 3) if turns is None else turns).to(volumes.device, volumes.dtype)
    picked = ((cuts > 0) | (stretches != 1).any(1) | (turns != 0).any(1)).nonzero()[:, 0]
    if len(picked) == 0:
        return volumes
    v = volumes.index_select(0, picked)
    d, h, w = v.shape[1:]
    z, y, x = ((torch.arange(n, device=v.device, dtype=v.dtype) + 0.5) * 2 / n - 1 for n in (d, h, w))
    z, y, x = z.view(1, d, 1, 1), y.view(1, 1, h, 1), x.view(1, 1, 1, w)  # voxel centres in [-1, 1]
    tilt = tilts.to(v.device, v.dtype).index_select(0, picked).view(-1, 1, 1, 1)
    height = (z * torch.cos(tilt) + y * torch.sin(tilt)).expand_as(v).contiguous()
    floor = 0.05 * v.amax((1, 2, 3), keepdim=True)
    inside = v > floor
    low = height.masked_fill(~inside, math.inf).amin((1, 2, 3), keepdim=True)
    high = height.masked_fill(~inside, -math.inf).amax((1, 2, 3), keepdim=True)
    v = v * (height >= low + cuts[picked].view(-1, 1, 1, 1) * (high - low))
    inside = v > floor
    s = stretches.index_select(0, picked)  # the stretched shape's coordinates: x * s_x, y * s_y, z * s_z
    x, y, z = (c * s[:, i].view(-1, 1, 1, 1) for i, c in enumerate((x, y, z)))
    centre = [_middle(c, inside.any(dims)) for c, dims in ((x.flatten(1), (1, 2)), (y.flatten(1), (1, 3)),
                                                            (z.flatten(1), (2, 3)))]
    x, y, z = x - centre[0].view(-1, 1, 1, 1), y - centre[1].view(-1, 1, 1, 1), z - centre[2].view(-1, 1, 1, 1)
    reach = (x * x + y * y + z * z).masked_fill_(~inside, 0).amax((1, 2, 3))
    radius = reach.sqrt() + math.sqrt(3) / min(d, h, w) * s.amax(1)  # to the far corner of a voxel
    scale = (radius / (2 * FIT_RADIUS)).view(-1, 1)  # the cube spans [-1, 1]; the fit sphere 2 * FIT_RADIUS
    # an output point u is the turned stretched point centre + scale * R^T u, so the specimen's point is that / s
    back = turning(turns.index_select(0, picked)).transpose(1, 2)
    theta = torch.cat([(scale / s)[:, :, None] * back, (torch.stack(centre, 1) / s)[:, :, None]], 2)  # x, y, z
    grid = F.affine_grid(theta, [len(v), 1, d, h, w], align_corners=False)
    fitted = F.grid_sample(v[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    return volumes.index_copy(0, picked, fitted)


def _middle(coords: torch.Tensor, occupied: torch.Tensor) -> torch.Tensor:
    """``[B]``: halfway between the lowest and highest of ``coords`` ``[B, N]`` where ``occupied`` ``[B, N]``."""
    low = coords.masked_fill(~occupied, math.inf).amin(1)
    return (low + coords.masked_fill(~occupied, -math.inf).amax(1)) / 2


def augmented(volumes: torch.Tensor, sigmas: torch.Tensor, gains: torch.Tensor, cuts: torch.Tensor | None = None,
              tilts: torch.Tensor | None = None, stretches: torch.Tensor | None = None,
              turns: torch.Tensor | None = None) -> torch.Tensor:
    """Volumes ``[B, D, H, W]`` cut, stretched, fitted again and turned (``truncated``, where ``cuts``,
    ``stretches`` or ``turns`` are given), blurred (``blurred``) and their densities scaled by ``gains``
    ``[B]``, clipped to the densities' range [0, 1] as every loaded volume is."""
    if cuts is not None or stretches is not None or turns is not None:
        cuts = torch.zeros(len(volumes)) if cuts is None else cuts
        volumes = truncated(volumes, cuts, torch.zeros_like(cuts) if tilts is None else tilts, stretches, turns)
    out = blurred(volumes, sigmas)
    gains = gains.to(out.device, out.dtype).reshape(-1, 1, 1, 1)
    return out if bool((gains == 1).all()) else (out * gains).clamp(0.0, 1.0)
