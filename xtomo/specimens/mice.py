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
inside this module are "mouse units": the nose-to-rump length of a typical mouse is about 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from xtomo.specimens import crania, sdf

__all__ = ["TISSUE", "LABELS", "Mouse", "MousePhantom", "population", "phantom", "downsample"]

#: Linear densities of the tissues at the reference energy (the book's units, bone ~0.35-1).
TISSUE = dict(muscle=0.25, fat=0.19, skin=0.29, lung=0.07, gas=0.0, heart=0.27, liver=0.285,
              kidney=0.27, bladder=0.24, marrow=0.36, cortical=0.8)

#: Names of the values of ``MousePhantom.tissue``.
LABELS = ("air", "soft tissue", "lung", "gas", "bone")
AIR, SOFT, LUNG, GAS, BONE = range(len(LABELS))

_FIT_RADIUS = 0.46        # as for the crania: specimens fill the inscribed sphere up to this radius
_MIN_EVALUATION = 64      # coarser phantoms are box-filtered from this resolution
_CORTEX = 0.003           # cortical bone thickness, mouse units


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


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([abs(int(seed)), 8, *[abs(int(k)) for k in keys]]))


def population(n: int = 15, seed: int = 0) -> list[Mouse]:
    """``n`` individual mice, deterministic for a seed (the paper scanned 15)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"population: n must be a positive integer, got {n!r}")
    mice = []
    for i in range(n):
        r = _rng(seed, i)
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


# --------------------------------------------------------------------------- the body plan


def _catmull_rom(points: np.ndarray, n: int) -> np.ndarray:
    """A smooth curve through ``points`` [K, 3], sampled at ``n`` points."""
    p = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    out = []
    for i in range(1, len(p) - 2):
        t = np.linspace(0, 1, n // (len(p) - 3) + 1)[:-1, None]
        a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t ** 2
                          + (3 * b - a - 3 * c + d) * t ** 3))
    return np.vstack(out + [points[-1:]])


def _along(curve: np.ndarray, fractions) -> tuple[np.ndarray, np.ndarray]:
    """Points and unit tangents at arc-length ``fractions`` (0 = start, 1 = end) of a polyline."""
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)]) / seg.sum()
    f = np.asarray(fractions, dtype=float)
    pts = np.stack([np.interp(f, s, curve[:, k]) for k in range(3)], axis=1)
    ahead = np.stack([np.interp(np.minimum(f + 1e-3, 1), s, curve[:, k]) for k in range(3)], axis=1)
    behind = np.stack([np.interp(np.maximum(f - 1e-3, 0), s, curve[:, k]) for k in range(3)], axis=1)
    tangent = ahead - behind
    return pts, tangent / np.linalg.norm(tangent, axis=1, keepdims=True)


def _t(v) -> tuple[float, float, float]:
    return tuple(float(c) for c in v)


def _plan(p: dict) -> dict:
    """Every primitive of a mouse in mouse units: soft-tissue ellipsoids and rods, organs, bones."""
    L, g, h, s = p["length"], p["girth"], p["head"], p["tail_side"]
    rib = g ** 0.3                       # the rib cage grows less with girth than the fat does
    plan = dict(body=[], head_body=[], organs=[], bones=[], gas=[])
    # Soft tissue: ellipsoids along the body, the head (turned about the neck) and the limbs.
    plan["body"] += [("blob", (0, 0.22 * L, 0.0), (0.06 * g ** 0.5, 0.07, 0.055)),
                     ("blob", (0, 0.08 * L, 0.0), (0.1 * g, 0.16 * L, 0.09 * g)),
                     ("blob", (0, -0.14 * L, -0.01), (0.12 * g, 0.17 * L, 0.1 * g)),
                     ("blob", (0, -0.36 * L, 0.0), (0.09 * g, 0.11 * L, 0.085 * g))]
    plan["head_body"] += [("blob", (0, 0.33 * L, 0.0), (0.07 * h, 0.1 * h, 0.062 * h)),
                          ("rod", [(0, 0.36 * L, 0.0), (0, 0.33 * L + 0.14 * h, -0.02 * h)], [0.05 * h, 0.015 * h])]
    for side in (-1, 1):
        plan["head_body"].append(("blob", (side * 0.045 * h, 0.3 * L, 0.062 * h), (0.028 * h, 0.006, 0.03 * h)))
    # Spine: a curve from the back of the skull over the arched thorax to the sacrum.
    spine = _catmull_rom(np.array([(0, 0.25 * L, 0.015), (0, 0.17 * L, 0.035), (0, 0.05 * L, 0.04 + p["arch"]),
                                   (0, -0.1 * L, 0.045), (0, -0.3 * L, 0.04), (0, -0.42 * L, 0.025)]), 300)
    kinds = ["cervical"] * 7 + ["thoracic"] * 13 + ["lumbar"] * 6 + ["sacral"] * 4
    weight = dict(cervical=0.6, thoracic=0.8, lumbar=1.25, sacral=1.0)
    w = np.array([weight[k] for k in kinds])
    edges = np.concatenate([[0], np.cumsum(w)]) / w.sum()
    centres, tangents = _along(spine, (edges[:-1] + edges[1:]) / 2)
    spacing = np.diff(edges) * np.linalg.norm(np.diff(spine, axis=0), axis=1).sum()
    radius = dict(cervical=0.011, thoracic=0.011, lumbar=0.014, sacral=0.012)
    spinous = dict(cervical=0.6, thoracic=2.0, lumbar=1.2, sacral=0.8)
    transverse = dict(cervical=1.2, thoracic=0.9, lumbar=2.2, sacral=1.6)
    thoracic = []
    for kind, c, t, gap in zip(kinds, centres, tangents, spacing):
        r = radius[kind]
        up = np.array([0.0, -t[2], t[1]])
        up = up if up[2] >= 0 else -up
        half = 0.35 * gap * t
        plan["bones"].append(("rod", [_t(c - half), _t(c + half)], [r, r]))
        arch = c + 1.6 * r * up
        plan["bones"].append(("tube", [_t(arch - half), _t(arch + half)], 0.9 * r, 0.5 * r))
        tip = c + (2.4 + spinous[kind]) * r * up + 0.3 * gap * t
        plan["bones"].append(("rod", [_t(c + 2.2 * r * up), _t(tip)], [0.4 * r, 0.3 * r]))
        for side in (-1, 1):
            out = np.array([side, 0.0, 0.0])
            plan["bones"].append(("rod", [_t(c + 0.6 * r * out), _t(c + (1 + transverse[kind]) * r * out + 0.3 * r * up)],
                                  [0.4 * r, 0.3 * r]))
        if kind == "thoracic":
            thoracic.append(c)
    # Ribs: one pair per thoracic vertebra, around the thorax, the first seven reaching the sternum.
    cy, ry, rx, rz, cz = 0.08 * L, 0.16 * L, 0.1 * rib * 0.84, 0.09 * rib * 0.84, -0.005
    sternum = []
    for k, c in enumerate(thoracic):
        yk = c[1] - 0.01
        f = math.sqrt(max(0.2, 1 - ((yk - cy) / ry) ** 2))
        end = 165 if k < 7 else 130 - 6 * (k - 7)
        phis = np.radians(np.linspace(20, end, 5))
        for side in (-1, 1):
            pts = [(side * 0.012, c[1], c[2])] + [
                (side * rx * f * math.sin(a), yk - 0.04 * (a / math.pi), cz + rz * f * math.cos(a)) for a in phis]
            plan["bones"].append(("rod", pts, [0.0055] * len(pts)))
        if k < 7:
            sternum.append((0.0, yk - 0.04 * math.radians(end) / math.pi, cz + rz * f * math.cos(math.radians(end))))
    for a, b in zip(sternum[:-1], sternum[1:]):
        m = 0.15
        plan["bones"].append(("rod", [_t(np.array(a) * (1 - m) + np.array(b) * m),
                                      _t(np.array(a) * m + np.array(b) * (1 - m))], [0.0065, 0.0065]))
    # Shoulder girdle, fore limbs, pelvis and hind limbs.
    fore, hind, splay = p["fore"], p["hind"], p["splay"]
    for side in (-1, 1):
        plan["bones"].append(("blob", (side * 0.072 * rib, 0.14 * L, 0.035), (0.006, 0.045, 0.03)))
        shoulder = np.array([side * 0.075 * rib, 0.155 * L, -0.015])
        plan["bones"].append(("rod", [(side * 0.01, sternum[0][1] + 0.01, sternum[0][2] + 0.01), _t(shoulder)],
                              [0.004, 0.004]))
        elbow = shoulder + np.array([side * 0.012 * splay, -0.045 + 0.03 * fore, -0.055 + 0.01 * fore])
        wrist = elbow + np.array([-side * 0.005, 0.04 + 0.05 * fore, -0.035 + 0.02 * fore])
        plan["bones"].append(("rod", [_t(shoulder), _t(elbow)], [0.008, 0.0065]))
        for dx in (-0.003, 0.003):
            plan["bones"].append(("rod", [_t(elbow + [dx, 0, 0]), _t(wrist + [dx, 0, 0])], [0.0035, 0.003]))
        paw = [wrist + np.array([dx, 0.028, -0.006]) for dx in (-0.011, -0.004, 0.004, 0.011)]
        for tip in paw:
            plan["bones"].append(("rod", [_t(wrist), _t(tip)], [0.0025, 0.002]))
        plan["body"].append(("rod", [_t(shoulder + [0, 0.01, 0.02]), _t(elbow), _t(wrist), _t(wrist + [0, 0.025, -0.004])],
                             [0.03, 0.018, 0.011, 0.009]))
        hip = np.array([side * 0.05, -0.33 * L, -0.015])
        plan["bones"] += [("rod", [(side * 0.02, -0.26 * L, 0.035), _t(hip)], [0.007, 0.007]),
                          ("rod", [_t(hip), (side * 0.035, -0.42 * L, 0.0)], [0.006, 0.006]),
                          ("rod", [_t(hip), (side * 0.01, -0.37 * L, -0.045)], [0.005, 0.005]),
                          ("blob", _t(hip), (0.012, 0.012, 0.012))]
        knee = hip + np.array([side * 0.03 * splay, 0.05 - 0.07 * hind, -0.045])
        ankle = knee + np.array([side * 0.005, -0.06 - 0.03 * hind, -0.035 + 0.02 * hind])
        toe = ankle + np.array([side * 0.005, 0.045 - 0.09 * hind, -0.012 + 0.008 * hind])
        plan["bones"] += [("rod", [_t(hip), _t(knee)], [0.009, 0.008]),
                          ("rod", [_t(knee), _t(ankle)], [0.0065, 0.005]),
                          ("rod", [_t(knee + [side * 0.005, -0.005, 0]), _t(ankle + [side * 0.004, 0.005, 0])],
                           [0.0025, 0.0025])]
        for dx in (-0.008, -0.003, 0.003, 0.008):
            plan["bones"].append(("rod", [_t(ankle), _t(toe + [dx, 0, 0])], [0.003, 0.0022]))
        plan["body"].append(("rod", [_t(hip + [0, 0.01, 0.02]), _t(knee), _t(ankle), _t(toe)],
                             [0.045, 0.024, 0.012, 0.008]))
    # Tail: curled to one side along the body, with caudal vertebrae.
    c = p["tail_curl"]
    tail = np.array([(0, -0.47 * L, 0.0), (0, -0.52 * L, -0.01), (s * 0.06, -0.57 * L, -0.04),
                     (s * 0.15, -0.54 * L, -0.07), (s * 0.2, -0.44 * L, -0.085),
                     (s * (0.2 + 0.02 * c), -0.44 * L + 0.25 * c, -0.09)])
    curve = _catmull_rom(tail, 120)
    plan["body"].append(("rod", [_t(q) for q in curve[::12]], list(np.linspace(0.018, 0.008, len(curve[::12])))))
    f = np.linspace(0.05, 0.95, 14)
    pts, tans = _along(curve, f)
    step = 0.5 / 14 * np.linalg.norm(np.diff(curve, axis=0), axis=1).sum()
    for q, t, r in zip(pts, tans, np.linspace(0.006, 0.0035, 14)):
        plan["bones"].append(("rod", [_t(q - step * t), _t(q + step * t)], [r, r]))
    # Organs: (name, centre, radii); later ones cover earlier ones.
    plan["organs"] += [("liver", (0, -0.05 * L, -0.015), (0.1 * g ** 0.5, 0.05, 0.075)),
                       ("bladder", (0, -0.37 * L, -0.045), (0.02, 0.025, 0.02))]
    for side in (-1, 1):
        plan["organs"] += [("kidney", (side * 0.045, -0.17 * L, 0.035), (0.017, 0.027, 0.016)),
                           ("lung", (side * 0.045 * rib, 0.08 * L, 0.005), (0.045 * rib, 0.11 * L, 0.058 * rib))]
    plan["organs"].append(("heart", (0.01, 0.1 * L, -0.03), (0.035, 0.05, 0.04)))
    plan["gas"].append(((-0.035, -0.08 * L, 0.01), (0.022, 0.02, 0.016)))
    r = _rng(p["texture_seed"], 1)
    for _ in range(6):  # bubbles of gas in the gut
        centre = (float(r.uniform(-0.07, 0.07)), float(r.uniform(-0.28, -0.12)) * L, float(r.uniform(-0.06, 0.02)))
        plan["gas"].append((centre, tuple(float(v) for v in r.uniform(0.006, 0.016, 3))))
    plan["skull"] = ((0, 0.345 * L, 0.0), 0.125 * h)
    plan["pivot"] = (0.0, 0.25 * L, 0.01)
    return plan


# --------------------------------------------------------------------------- evaluation on a grid


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    """Head rotation: nod (about x, positive lifts the nose), then turn (about z)."""
    a, b = math.radians(pitch), math.radians(yaw)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rz = np.array([[math.cos(b), -math.sin(b), 0], [math.sin(b), math.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def _box_corners(lo, hi) -> np.ndarray:
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
        r = self.roll   # body frame = roll^T grid
        x, y, z = (r[0, i] * q[0] + r[1, i] * q[1] + r[2, i] * q[2] for i in range(3))
        x = x - self.bend * y * y
        if not head:
            return x, y, z
        d = [x - self.pivot[0], y - self.pivot[1], z - self.pivot[2]]
        r = self.rot  # local = R^T (world - pivot) + pivot
        return tuple(r[0, i] * d[0] + r[1, i] * d[1] + r[2, i] * d[2] + self.pivot[i] for i in range(3))

    def region(self, lo, hi, head: bool):
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
    field = torch.full_like(like, 1.0)
    for head, items in ((False, plan["body"]), (True, plan["head_body"])):
        for item in items:
            lo, hi, fn = _primitive(item)
            field = canvas.union(field, lo, hi, fn, k=0.03, head=head)
    return field


def _placement(p: dict) -> tuple[tuple[float, float, float], float]:
    """Centre and scale (mouse units per cube unit) that fit the mouse in the inscribed sphere."""
    n, extent = 48, 0.75
    t = torch.linspace(-extent, extent, n)
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    plan = _plan(p)
    inside = _body_field(_Canvas((x, y, z), p, plan["pivot"]), plan, x) < 0
    pts = torch.stack([x[inside], y[inside], z[inside]], dim=1)
    if len(pts) == 0:
        raise RuntimeError("procedural mouse came out empty; its proportions are degenerate")
    centre = (pts.amin(0) + pts.amax(0)) / 2
    radius = (pts - centre).norm(dim=1).max().item() + 2 * extent / n
    skull_centre, skull_radius = plan["skull"]
    radius = max(radius, (torch.tensor(skull_centre) - centre).norm().item() + skull_radius)
    return tuple(centre.tolist()), radius / _FIT_RADIUS


def _mouse(p: dict, grid: sdf.Coords, voxel: float) -> dict:
    """Soft-tissue density, bone density and tissue occupancies of a mouse on a grid (mouse units)."""
    plan = _plan(p)
    canvas = _Canvas(grid, p, plan["pivot"])
    x = grid[0]
    body = _body_field(canvas, plan, x)
    # Soft tissue: skin over fat over muscle, then the organs, then gas.
    fat = 0.012 * p["girth"]
    w_body, w_fat, w_muscle = (sdf.occupancy(body + d, voxel) for d in (0.0, 0.004, fat))
    soft = (TISSUE["skin"] * (w_body - w_fat) + TISSUE["fat"] * (w_fat - w_muscle) + TISSUE["muscle"] * w_muscle)
    soft = soft * (1 + 0.04 * sdf.lattice_noise(canvas.local(grid, False), 24, p["texture_seed"], scale=0.8))
    lung = torch.zeros_like(x)
    gas = torch.zeros_like(x)
    for name, centre, radii in plan["organs"]:
        lo, hi = sdf.ellipsoid_box(centre, radii)
        got = canvas.evaluate(lo, hi, lambda q: sdf.occupancy(sdf.ellipsoid(q, centre, radii), voxel))
        if got is not None:
            sl, occ = got
            soft[sl] = soft[sl] + (TISSUE[name] - soft[sl]) * occ
            lung[sl] = torch.maximum(lung[sl], occ) if name == "lung" else lung[sl] * (1 - occ)
    for centre, radii in plan["gas"]:
        lo, hi = sdf.ellipsoid_box(centre, radii)
        got = canvas.evaluate(lo, hi, lambda q: sdf.occupancy(sdf.ellipsoid(q, centre, radii), voxel))
        if got is not None:
            sl, occ = got
            soft[sl] = soft[sl] * (1 - occ)
            gas[sl] = torch.maximum(gas[sl], occ)
    # Bone: cortical shells over marrow, and the skull (turned with the head).
    bones = torch.full_like(x, 1.0)
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
    return dict(soft=soft, bone=bone, body=w_body, lung=lung, gas=gas)


def phantom(mouse: Mouse, size: int = 128, device="cpu") -> MousePhantom:
    """The phantom of ``mouse`` at ``size``^3, deterministic; the same anatomy at every resolution.

    Voxels are anti-aliased by a one-voxel ramp of the distance fields; below 64^3 they are
    averaged from a 64^3-or-finer evaluation instead, as for the crania.
    """
    if not isinstance(mouse, Mouse):
        raise TypeError(f"phantom: expected a Mouse from population(), got {type(mouse).__name__}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ValueError(f"phantom: size must be an integer of at least 8, got {size!r}")
    p = mouse.params
    centre, scale = _placement(p)
    scale = scale / p["size"]
    ss = math.ceil(_MIN_EVALUATION / size)
    x, y, z = sdf.grid(size * ss, device=device)
    grid = (x * scale + centre[0], y * scale + centre[1], z * scale + centre[2])
    f = _mouse(p, grid, voxel=scale / (size * ss))
    soft = f["soft"].clamp(0, 1)
    mineral = (f["bone"] - soft).clamp_min(0)
    fields = [soft, mineral, f["body"], f["lung"], f["gas"]]
    if ss > 1:
        fields = list(F.avg_pool3d(torch.stack(fields)[None], ss)[0])
    soft, mineral, body, lung, gas = fields
    density = (soft + mineral).clamp(0, 1)
    mineral = density - soft
    tissue = torch.full(density.shape, AIR, dtype=torch.uint8, device=density.device)
    tissue[body > 0.5] = SOFT
    tissue[(lung > 0.5) & (body > 0.5)] = LUNG
    tissue[(gas > 0.5) & (body > 0.5)] = GAS
    tissue[mineral > 0.15] = BONE
    return MousePhantom(density.contiguous(), soft.contiguous(), mineral.contiguous(), tissue)


def downsample(ph: MousePhantom, factor: int) -> MousePhantom:
    """A phantom averaged over blocks of ``factor``^3 voxels (what a coarser voxel holds); each
    block's label is the tissue filling most of it."""
    if not isinstance(factor, int) or factor < 1 or ph.density.shape[0] % factor:
        raise ValueError(f"downsample: factor must be a positive integer dividing the phantom's "
                         f"{ph.density.shape[0]} voxels, got {factor!r}")
    if factor == 1:
        return ph
    pooled = F.avg_pool3d(torch.stack([ph.density, ph.soft, ph.mineral])[None], factor)[0]
    votes = F.one_hot(ph.tissue.long(), len(LABELS)).permute(3, 0, 1, 2).float()
    tissue = F.avg_pool3d(votes[None], factor)[0].argmax(0).to(torch.uint8)
    return MousePhantom(pooled[0].contiguous(), pooled[1].contiguous(), pooled[2].contiguous(), tissue)
