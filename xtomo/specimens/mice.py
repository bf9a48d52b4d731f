"""Procedural whole-body mice: the specimens of the reality check (chapter 8, the paper's Sec. 5.6).

Henzler et al. (2018) scanned 15 mice in a micro-CT. Here a mouse is built like the crania of
``xtomo.specimens.crania``, from signed distance fields, at any resolution and deterministically from a
seed: skin over a layer of fat over muscle, lungs full of air, heart, liver, kidneys, bladder and
gas in the gut; and a skeleton: a murid skull from ``xtomo.specimens.crania``, a spine of vertebrae along
a curved line, ribs and sternum, shoulder blades and collar bones, the pelvis, and the bones of
the four limbs down to the digits. Individuals differ in size, girth, proportions and posture
(head nodded and turned, back arched, body bent sideways and rolled a little, legs tucked or
stretched, tail curled to one side or the other).

Besides the density (the book's convention: float32 in [0, 1], the mouse inside the cube's
inscribed sphere) a phantom keeps its two materials apart, soft tissue and bone mineral, because
a polychromatic x-ray (``xtomo.imaging.microct``) attenuates them differently; and a label per voxel.

Frame as in ``xtomo.specimens.crania``: +x left-right, +y forward (the nose), +z up (the back). Lengths
inside this module are "mouse units": the nose-to-rump length of a typical mouse is about 1. The
primitives a mouse is built from are its plan (``xtomo.specimens.mouse_plan``); this module warps
it into the mouse's posture and evaluates it on a grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from xtomo._checks import integer
from xtomo.specimens import crania, mouse_plan, sdf

__all__ = ["TISSUE", "LABELS", "Mouse", "MousePhantom", "population", "phantom", "downsample"]

#: Linear densities of the tissues at the reference energy (the book's units, bone ~0.35-1).
TISSUE = dict(muscle=0.25, fat=0.19, skin=0.29, lung=0.07, gas=0.0, heart=0.27, liver=0.285,
              kidney=0.27, bladder=0.24, marrow=0.36, cortical=0.8)

#: Names of the values of ``MousePhantom.tissue``.
LABELS = ("air", "soft tissue", "lung", "gas", "bone")
AIR, SOFT, LUNG, GAS, BONE = range(len(LABELS))

_CORTEX = 0.003  # cortical bone thickness, mouse units


@dataclass(frozen=True)
class Mouse:
    """One individual: its index, a name, and the proportions and posture it is built from."""

    index: int
    name: str
    params: dict


class MousePhantom(NamedTuple):
    """A phantom at one resolution: ``density = soft + mineral`` (all ``[D, H, W]`` float32) and
    ``tissue``, the index into ``LABELS`` of what fills most of each voxel (uint8)."""

    density: torch.Tensor
    soft: torch.Tensor
    mineral: torch.Tensor
    tissue: torch.Tensor


def population(n: int = 15, seed: int = 0) -> list[Mouse]:
    """``n`` individual mice, deterministic for a seed (the paper scanned 15)."""
    n = integer(n, "n", minimum=1, what="population")
    seed = integer(seed, "seed", what="population")
    mice = []
    for i in range(n):
        r = mouse_plan.generator(seed, i)
        p = dict(
            size=float(r.uniform(0.88, 1.0)), length=float(r.uniform(0.93, 1.07)),
            girth=float(r.uniform(0.88, 1.15)), head=float(r.uniform(0.94, 1.06)),
            pitch=float(r.uniform(-15, 10)), yaw=float(r.uniform(-20, 20)), roll=float(r.uniform(-12, 12)),
            bend=float(r.uniform(-0.6, 0.6)), arch=float(r.uniform(0.01, 0.045)),
            fore=float(r.uniform(0, 1)), hind=float(r.uniform(0, 1)), splay=float(r.uniform(0.8, 1.2)),
            tail_side=float(r.choice([-1.0, 1.0])), tail_curl=float(r.uniform(0.55, 1.0)),
            cortical=float(TISSUE["cortical"] * r.uniform(0.92, 1.08)),
            texture_seed=int(r.integers(0, 2**31 - 1)),
            skull=crania.individual(crania.family_template("Muridae"), i + 1, seed),  # a mouse skull each
        )
        mice.append(Mouse(i, f"mouse {i + 1:02d}", p))
    return mice


# --------------------------------------------------------------------------- evaluation on a grid


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    """Head rotation: nod (about x, positive lifts the nose), then turn (about z)."""
    a, b = math.radians(pitch), math.radians(yaw)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rz = np.array([[math.cos(b), -math.sin(b), 0], [math.sin(b), math.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def _box_corners(lo, hi) -> np.ndarray:
    """The eight corners ``[8, 3]`` of the box ``[lo, hi]``."""
    return np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])


class _Canvas:
    """Grid coordinates (mouse units, axis-separable) and the mouse's warps: a roll of the whole
    body about its long axis, a sideways bend, and the head's rotation about the neck. Parts are
    evaluated only inside their boxes, mapped back to the grid conservatively."""

    def __init__(self, grid: sdf.Coords, p: dict, pivot):
        self.grid, self.bend = grid, p["bend"]
        self.rot = _rotation(p["yaw"], p["pitch"])
        a = math.radians(p["roll"])
        self.roll = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
        self.pivot = np.array(pivot)

    def local(self, q: sdf.Coords, head: bool) -> sdf.Coords:
        """Grid coordinates ``q`` in the unwarped body's frame (or the head's, turned about the neck)."""
        r = self.roll   # body frame = roll^T grid
        x, y, z = (r[0, i] * q[0] + r[1, i] * q[1] + r[2, i] * q[2] for i in range(3))
        x = x - self.bend * y * y
        if not head:
            return x, y, z
        d = [x - self.pivot[0], y - self.pivot[1], z - self.pivot[2]]
        r = self.rot  # local = R^T (world - pivot) + pivot
        return tuple(r[0, i] * d[0] + r[1, i] * d[1] + r[2, i] * d[2] + self.pivot[i] for i in range(3))

    def region(self, lo, hi, head: bool):
        """Grid slices that cover the box ``[lo, hi]`` of the body's (or head's) frame once warped."""
        lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
        if head:
            body = (_box_corners(lo, hi) - self.pivot) @ self.rot.T + self.pivot
            lo, hi = body.min(0), body.max(0)
        ys = np.linspace(lo[1], hi[1], 17)
        shift = self.bend * np.concatenate([ys ** 2, [0.0] if lo[1] < 0 < hi[1] else []])
        lo[0], hi[0] = lo[0] + shift.min(), hi[0] + shift.max()
        world = _box_corners(lo, hi) @ self.roll.T
        return sdf.region(self.grid, world.min(0).tolist(), world.max(0).tolist())

    def evaluate(self, lo, hi, part, head: bool = False):
        """``(slices, values)`` of ``part(local coordinates)`` on the grid inside its box, or None."""
        sl = self.region(lo, hi, head)
        if any(s.stop <= s.start for s in sl):
            return None
        return sl, part(self.local(tuple(c[sl] for c in self.grid), head))

    def union(self, field, lo, hi, part, k: float = 0.0, head: bool = False):
        """Union ``part`` into ``field`` in place, blended over ``k``, evaluating it only in its box."""
        lo, hi = [c - k for c in lo], [c + k for c in hi]
        got = self.evaluate(lo, hi, part, head)
        if got is not None:
            sl, values = got
            field[sl] = sdf.smooth_union(field[sl], values, k)
        return field


def _primitive(item):
    """``(lo, hi, distance function)`` of a plan item."""
    kind = item[0]
    if kind == "blob":
        _, centre, radii = item
        lo, hi = sdf.ellipsoid_box(centre, radii)
        return lo, hi, lambda q: sdf.ellipsoid(q, centre, radii)
    if kind == "rod":
        _, points, radii = item
        lo, hi = sdf.capsule_box(points, max(radii))
        return lo, hi, lambda q: sdf.polyline(q, points, radii)
    _, points, r, wall = item   # "tube": a hollow capsule, the neural arch around the spinal cord
    lo, hi = sdf.capsule_box(points, r + wall)
    return lo, hi, lambda q: sdf.shell(sdf.polyline(q, points, [r, r]), wall)


def _body_field(canvas: _Canvas, plan: dict, like: torch.Tensor) -> torch.Tensor:
    """Signed distance to the skin: the body's and the head's soft-tissue parts, smoothly joined."""
    field = torch.full_like(like, 1.0)
    for head, items in ((False, plan["body"]), (True, plan["head_body"])):
        for item in items:
            lo, hi, fn = _primitive(item)
            field = canvas.union(field, lo, hi, fn, k=0.03, head=head)
    return field


def _placement(p: dict) -> tuple[tuple[float, float, float], float]:
    """Centre and scale (mouse units per cube unit) that fit the mouse in the inscribed sphere."""
    plan = mouse_plan.plan(p)
    centre, radius = sdf.bounding_sphere(lambda q: _body_field(_Canvas(q, p, plan["pivot"]), plan, q[0]) < 0,
                             48, 0.75, "mouse")
    skull_centre, skull_radius = plan["skull"]
    radius = max(radius, (torch.tensor(skull_centre) - centre).norm().item() + skull_radius)
    return tuple(centre.tolist()), radius / sdf.FIT_RADIUS


def _filled(centre, radii, voxel: float):
    """Occupancy of an ellipsoid, a function of local coordinates."""
    return lambda q: sdf.occupancy(sdf.ellipsoid(q, centre, radii), voxel)


def _soft_tissue(canvas: _Canvas, plan: dict, p: dict, voxel: float) -> dict:
    """Soft-tissue density (skin over fat over muscle, then the organs, then gas) and the
    occupancies of the body, the lungs and the gas."""
    grid = canvas.grid
    body = _body_field(canvas, plan, grid[0])
    fat = 0.012 * p["girth"]
    w_body, w_fat, w_muscle = (sdf.occupancy(body + d, voxel) for d in (0.0, 0.004, fat))
    soft = (TISSUE["skin"] * (w_body - w_fat) + TISSUE["fat"] * (w_fat - w_muscle) + TISSUE["muscle"] * w_muscle)
    soft = soft * (1 + 0.04 * sdf.lattice_noise(canvas.local(grid, False), 24, p["texture_seed"], scale=0.8))
    lung = torch.zeros_like(grid[0])
    gas = torch.zeros_like(grid[0])
    for name, centre, radii in plan["organs"]:
        got = canvas.evaluate(*sdf.ellipsoid_box(centre, radii), _filled(centre, radii, voxel))
        if got is not None:
            sl, occ = got
            soft[sl] = soft[sl] + (TISSUE[name] - soft[sl]) * occ
            lung[sl] = torch.maximum(lung[sl], occ) if name == "lung" else lung[sl] * (1 - occ)
    for centre, radii in plan["gas"]:
        got = canvas.evaluate(*sdf.ellipsoid_box(centre, radii), _filled(centre, radii, voxel))
        if got is not None:
            sl, occ = got
            soft[sl] = soft[sl] * (1 - occ)
            gas[sl] = torch.maximum(gas[sl], occ)
    return dict(soft=soft, body=w_body, lung=lung, gas=gas)


def _skeleton(canvas: _Canvas, plan: dict, p: dict, voxel: float) -> torch.Tensor:
    """Bone density: cortical shells over marrow, and the skull (turned with the head)."""
    bones = torch.full_like(canvas.grid[0], 1.0)
    for item in plan["bones"]:
        lo, hi, fn = _primitive(item)
        bones = canvas.union(bones, lo, hi, fn, k=0.002)
    cortex = (2 - (-bones).clamp_min(0) / _CORTEX).clamp(0, 1)
    bone = sdf.occupancy(bones, voxel) * (TISSUE["marrow"] + (p["cortical"] - TISSUE["marrow"]) * cortex)
    (sc, sr), sk = plan["skull"], p["skull"]
    local_centre, local_radius = crania.cranium_sphere(sk)
    k = local_radius / sr                    # skull units per mouse unit

    def skull(q):
        return crania.cranium(sk, tuple((q[i] - sc[i]) * k + local_centre[i] for i in range(3)), voxel * k)

    got = canvas.evaluate([c - sr for c in sc], [c + sr for c in sc], skull, head=True)
    if got is not None:
        sl, values = got
        bone[sl] = torch.maximum(bone[sl], values)
    return bone


def _materials(p: dict, grid: sdf.Coords, voxel: float) -> torch.Tensor:
    """Soft tissue, bone mineral (bone over soft tissue) and the occupancies of the body, the lungs
    and the gas of a mouse on a grid (mouse units), stacked ``[5, D, H, W]``."""
    plan = mouse_plan.plan(p)
    canvas = _Canvas(grid, p, plan["pivot"])
    f = _soft_tissue(canvas, plan, p, voxel)
    soft = f["soft"].clamp(0, 1)
    mineral = (_skeleton(canvas, plan, p, voxel) - soft).clamp_min(0)
    return torch.stack([soft, mineral, f["body"], f["lung"], f["gas"]])


def phantom(mouse: Mouse, size: int = 128, device="cpu") -> MousePhantom:
    """The phantom of ``mouse`` at ``size^3``, deterministic; the same anatomy at every resolution.

    Voxels are anti-aliased by a one-voxel ramp of the distance fields; below 64^3 they are
    averaged from a finer evaluation instead, as for the crania (``sdf.sample``).
    """
    if not isinstance(mouse, Mouse):
        raise TypeError(f"phantom: expected a Mouse from population(), got {type(mouse).__name__}")
    size = integer(size, "size", minimum=8, what="phantom")
    p = mouse.params
    centre, scale = _placement(p)
    soft, mineral, body, lung, gas = sdf.sample(lambda grid, voxel: _materials(p, grid, voxel), size, centre,
                                                scale / p["size"], device)
    density = (soft + mineral).clamp(0, 1)
    mineral = density - soft
    tissue = torch.full(density.shape, AIR, dtype=torch.uint8, device=density.device)
    tissue[body > 0.5] = SOFT
    tissue[(lung > 0.5) & (body > 0.5)] = LUNG
    tissue[(gas > 0.5) & (body > 0.5)] = GAS
    tissue[mineral > 0.15] = BONE
    return MousePhantom(density.contiguous(), soft.contiguous(), mineral.contiguous(), tissue)


def downsample(ph: MousePhantom, factor: int) -> MousePhantom:
    """A phantom averaged over blocks of ``factor^3`` voxels (what a coarser voxel holds); each
    block's label is the tissue filling most of it."""
    factor = integer(factor, "factor", minimum=1, what="downsample")
    if ph.density.shape[0] % factor:
        raise ValueError(f"downsample: factor must divide the phantom's {ph.density.shape[0]} voxels, "
                         f"got {factor}")
    if factor == 1:
        return ph
    pooled = F.avg_pool3d(torch.stack([ph.density, ph.soft, ph.mineral])[None], factor)[0]
    votes = F.one_hot(ph.tissue.long(), len(LABELS)).permute(3, 0, 1, 2).float()
    tissue = F.avg_pool3d(votes[None], factor)[0].argmax(0).to(torch.uint8)
    return MousePhantom(pooled[0].contiguous(), pooled[1].contiguous(), pooled[2].contiguous(), tissue)
