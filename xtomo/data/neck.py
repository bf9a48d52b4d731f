"""The neck below a head CT's skull: found in the upright skull and cut away before the fit frames it.

The paper's specimens, and our procedural crania, are skulls; a head CT often runs on down the neck, and its
cervical spine then counts in the sphere that ``io.prepare_volume`` fits: the skull comes out smaller and higher in
the cube than any training skull, and the network is asked for a column it never saw (the head phantom
``realdata.PHANTOM_HEAD`` reads 0.86 of the even spread's RMSE with its neck and 0.70 without its lowest 75 mm;
``benchmarks/RESULTS.md``, section ``neck``). In the upright skull (z up) the neck is the run of slices at
the bottom that are all narrow (the middle 90 % of their bone spans at most ``WIDTH`` of the widest slice's across) and
light (at most ``AREA`` of the fullest slice's bone), when that run is at least ``LEAST`` of the bone's height and
its bone lies under the skull's middle, no more than ``FORWARD`` of the skull's length in front of it: the spine
hangs under the skull base, while a jaw's teeth or a walrus's tusks, as narrow and as long, hang in front.
"""
from __future__ import annotations

import numpy as np
import torch

from xtomo import geometry

__all__ = ["WIDTH", "AREA", "LEAST", "FORWARD", "top", "without"]

WIDTH = 0.5   #: a neck slice's bone spans at most this share of the widest slice's (across, middle 90 %)
AREA = 0.25   #: ... and holds at most this share of the fullest slice's bone voxels
LEAST = 0.1   #: the run of such slices at the bottom is a neck from this share of the bone's height
FORWARD = 0.15  #: ... whose bone's centre lies at most this share of the skull's length in front of its middle


def top(cube: torch.Tensor, threshold: float = 0.05) -> int:
    """The first slice (z index) of the upright ``cube`` ``[D, H, W]`` above its neck, 0 where it has none; bone is
    what is denser than ``threshold`` of its densest voxel."""
    bone = cube > threshold * cube.max()
    counts = bone.sum((1, 2))
    rows = counts.nonzero()[:, 0]
    if len(rows) == 0:
        return 0
    low, high = int(rows[0]), int(rows[-1])
    across = bone.sum(1).float().cumsum(1)  # [D, W]: bone up to each x, per slice
    total = across[:, -1:]
    width = ((across < 0.95 * total).sum(1) - (across < 0.05 * total).sum(1)).float()
    narrow = (width <= WIDTH * width.max()) & (counts <= AREA * counts.max())
    broad = (~narrow[low:high + 1]).nonzero()[:, 0]
    run = int(broad[0]) if len(broad) else high + 1 - low
    if not LEAST * (high + 1 - low) <= run < high + 1 - low:  # a short run, or no skull above it
        return 0
    front = bone.any(0).any(1).nonzero()[:, 0].float()  # the skull's extent along y (forward)
    y = torch.arange(cube.shape[1], dtype=torch.float32)
    tail = bone[low:low + run].sum((0, 2)).float()
    centre = float((tail * y).sum() / tail.sum())
    middle, length = float(front[0] + front[-1]) / 2, float(front[-1] - front[0]) + 1
    return low + run if centre <= middle + FORWARD * length else 0


def without(density: np.ndarray, spacing, centre, side: float, rotation: np.ndarray) -> np.ndarray:
    """``density`` (an array, ``spacing`` per axis) with its neck made empty, found in the cube of edge ``side``
    around ``centre`` that ``rotation`` sets upright (``geometry.resample_cube``); ``density`` itself where it has
    no neck."""
    from xtomo.data.pose import TEMPLATE_SIZE

    cut = top(torch.from_numpy(geometry.resample_cube(density, spacing, centre, side, TEMPLATE_SIZE, rotation)))
    if not cut:
        return density
    matrix, offset = geometry.cube_to_array(spacing, centre, side, TEMPLATE_SIZE, rotation)
    height = np.linalg.inv(matrix)[0]  # an array voxel's z index in the upright cube: height . (index - offset)
    z = sum(np.float32(h) * (np.arange(n, dtype=np.float32) - np.float32(o)).reshape([-1 if i == k else 1
                                                                                      for i in range(3)])
            for k, (h, n, o) in enumerate(zip(height, density.shape, offset)))  # float32: a whole CT's worth
    return np.where(z >= cut - 0.5, density, np.float32(0)).astype(density.dtype, copy=False)
