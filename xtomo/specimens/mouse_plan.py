"""The body plan of a procedural mouse (``xtomo.specimens.mice``): every primitive it is built from.

A plan lists, in mouse units (nose to rump about 1) and the frame of ``xtomo.specimens.crania``,
soft-tissue ellipsoids and rods of the body and of the head, the organs, gas in the gut and the
bones: ``("blob", centre, radii)``, ``("rod", points, radii)`` (a bent, tapered rod) or ``("tube",
points, radius, wall)`` (a hollow one). ``xtomo.specimens.mice`` evaluates it on a grid.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["plan", "generator"]


def generator(seed: int, *keys: int) -> np.random.Generator:
    """The mice's random numbers: one stream per (seed, keys), the same on every platform."""
    return np.random.default_rng(np.random.SeedSequence([abs(int(seed)), 8, *[abs(int(k)) for k in keys]]))


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
    """A point as a tuple of Python floats."""
    return tuple(float(c) for c in v)


def plan(p: dict) -> dict:
    """Every primitive of a mouse with proportions and posture ``p`` (from ``mice.population``), by
    kind: ``body`` and ``head_body`` (soft tissue), ``organs``, ``bones``, ``gas``; and the sphere
    that holds its ``skull`` and the ``pivot`` its head turns about."""
    L, g, h = p["length"], p["girth"], p["head"]
    rib = g ** 0.3                       # the rib cage grows less with girth than the fat does
    vertebrae, thoracic = _vertebrae(p, L)
    ribs, sternum = _ribs(thoracic, L, rib)
    body, bones = _trunk(L, g), vertebrae + ribs
    for side in (-1, 1):
        for limb_bones, flesh in (_fore_limb(p, side, L, rib, sternum[0]), _hind_limb(p, side, L)):
            bones += limb_bones
            body.append(flesh)
    flesh, tail_bones = _tail(p, L)
    return dict(body=body + [flesh], head_body=_head(L, h), organs=_organs(L, g, rib), bones=bones + tail_bones,
                gas=_gas(p, L), skull=((0, 0.345 * L, 0.0), 0.125 * h), pivot=(0.0, 0.25 * L, 0.01))


def _trunk(L: float, g: float) -> list:
    """Soft tissue of the body: ellipsoids from the neck to the rump."""
    return [("blob", (0, 0.22 * L, 0.0), (0.06 * g ** 0.5, 0.07, 0.055)),
            ("blob", (0, 0.08 * L, 0.0), (0.1 * g, 0.16 * L, 0.09 * g)),
            ("blob", (0, -0.14 * L, -0.01), (0.12 * g, 0.17 * L, 0.1 * g)),
            ("blob", (0, -0.36 * L, 0.0), (0.09 * g, 0.11 * L, 0.085 * g))]


def _head(L: float, h: float) -> list:
    """Soft tissue of the head (turned about the neck with it): skull, snout and ears."""
    head = [("blob", (0, 0.33 * L, 0.0), (0.07 * h, 0.1 * h, 0.062 * h)),
            ("rod", [(0, 0.36 * L, 0.0), (0, 0.33 * L + 0.14 * h, -0.02 * h)], [0.05 * h, 0.015 * h])]
    return head + [("blob", (side * 0.045 * h, 0.3 * L, 0.062 * h), (0.028 * h, 0.006, 0.03 * h))
                   for side in (-1, 1)]


# per region of the spine: vertebrae, relative length, radius (mouse units), and the lengths of the
# spinous and transverse processes (in radii)
_SPINE = {"cervical": (7, 0.6, 0.011, 0.6, 1.2), "thoracic": (13, 0.8, 0.011, 2.0, 0.9),
          "lumbar": (6, 1.25, 0.014, 1.2, 2.2), "sacral": (4, 1.0, 0.012, 0.8, 1.6)}


def _vertebrae(p: dict, L: float) -> tuple[list, list]:
    """The vertebrae along a curve from the back of the skull over the arched thorax to the sacrum:
    bodies, neural arches and processes; and the centres of the thoracic ones, which carry ribs."""
    spine = _catmull_rom(np.array([(0, 0.25 * L, 0.015), (0, 0.17 * L, 0.035), (0, 0.05 * L, 0.04 + p["arch"]),
                                   (0, -0.1 * L, 0.045), (0, -0.3 * L, 0.04), (0, -0.42 * L, 0.025)]), 300)
    kinds = [kind for kind, (count, *_) in _SPINE.items() for _ in range(count)]
    w = np.array([_SPINE[k][1] for k in kinds])
    edges = np.concatenate([[0], np.cumsum(w)]) / w.sum()
    centres, tangents = _along(spine, (edges[:-1] + edges[1:]) / 2)
    spacing = np.diff(edges) * np.linalg.norm(np.diff(spine, axis=0), axis=1).sum()
    bones, thoracic = [], []
    for kind, c, t, gap in zip(kinds, centres, tangents, spacing):
        bones += _vertebra(kind, c, t, gap)
        if kind == "thoracic":
            thoracic.append(c)
    return bones, thoracic


def _vertebra(kind: str, c: np.ndarray, t: np.ndarray, gap: float) -> list:
    """One vertebra at ``c`` along tangent ``t``, ``gap`` from the next: body, neural arch, spinous
    process up and a transverse process to each side."""
    _, _, r, spinous, transverse = _SPINE[kind]
    up = np.array([0.0, -t[2], t[1]])
    up = up if up[2] >= 0 else -up
    half = 0.35 * gap * t
    arch = c + 1.6 * r * up
    tip = c + (2.4 + spinous) * r * up + 0.3 * gap * t
    bones = [("rod", [_t(c - half), _t(c + half)], [r, r]),
             ("tube", [_t(arch - half), _t(arch + half)], 0.9 * r, 0.5 * r),
             ("rod", [_t(c + 2.2 * r * up), _t(tip)], [0.4 * r, 0.3 * r])]
    for side in (-1, 1):
        out = np.array([side, 0.0, 0.0])
        bones.append(("rod", [_t(c + 0.6 * r * out), _t(c + (1 + transverse) * r * out + 0.3 * r * up)],
                      [0.4 * r, 0.3 * r]))
    return bones


def _ribs(thoracic: list, L: float, rib: float) -> tuple[list, list]:
    """One pair of ribs per thoracic vertebra around the thorax, the first seven reaching the
    sternum; and the sternum's segments. Returns the bones and the sternum's joints."""
    cy, ry, rx, rz, cz = 0.08 * L, 0.16 * L, 0.1 * rib * 0.84, 0.09 * rib * 0.84, -0.005
    bones, sternum = [], []
    for k, c in enumerate(thoracic):
        yk = c[1] - 0.01
        f = math.sqrt(max(0.2, 1 - ((yk - cy) / ry) ** 2))
        end = 165 if k < 7 else 130 - 6 * (k - 7)
        phis = np.radians(np.linspace(20, end, 5))
        for side in (-1, 1):
            pts = [(side * 0.012, c[1], c[2])] + [
                (side * rx * f * math.sin(a), yk - 0.04 * (a / math.pi), cz + rz * f * math.cos(a)) for a in phis]
            bones.append(("rod", pts, [0.0055] * len(pts)))
        if k < 7:
            sternum.append((0.0, yk - 0.04 * math.radians(end) / math.pi, cz + rz * f * math.cos(math.radians(end))))
    for a, b in zip(sternum[:-1], sternum[1:]):
        m = 0.15
        bones.append(("rod", [_t(np.array(a) * (1 - m) + np.array(b) * m),
                              _t(np.array(a) * m + np.array(b) * (1 - m))], [0.0065, 0.0065]))
    return bones, sternum


def _fore_limb(p: dict, side: int, L: float, rib: float, manubrium) -> tuple[list, tuple]:
    """Shoulder blade, collar bone (from the sternum's top, ``manubrium``), the arm's bones down to
    the digits, and the flesh around them; tucked or stretched by ``p["fore"]``."""
    fore, splay = p["fore"], p["splay"]
    bones = [("blob", (side * 0.072 * rib, 0.14 * L, 0.035), (0.006, 0.045, 0.03))]
    shoulder = np.array([side * 0.075 * rib, 0.155 * L, -0.015])
    bones.append(("rod", [(side * 0.01, manubrium[1] + 0.01, manubrium[2] + 0.01), _t(shoulder)], [0.004, 0.004]))
    elbow = shoulder + np.array([side * 0.012 * splay, -0.045 + 0.03 * fore, -0.055 + 0.01 * fore])
    wrist = elbow + np.array([-side * 0.005, 0.04 + 0.05 * fore, -0.035 + 0.02 * fore])
    bones.append(("rod", [_t(shoulder), _t(elbow)], [0.008, 0.0065]))
    for dx in (-0.003, 0.003):
        bones.append(("rod", [_t(elbow + [dx, 0, 0]), _t(wrist + [dx, 0, 0])], [0.0035, 0.003]))
    paw = [wrist + np.array([dx, 0.028, -0.006]) for dx in (-0.011, -0.004, 0.004, 0.011)]
    for tip in paw:
        bones.append(("rod", [_t(wrist), _t(tip)], [0.0025, 0.002]))
    flesh = ("rod", [_t(shoulder + [0, 0.01, 0.02]), _t(elbow), _t(wrist), _t(wrist + [0, 0.025, -0.004])],
             [0.03, 0.018, 0.011, 0.009])
    return bones, flesh


def _hind_limb(p: dict, side: int, L: float) -> tuple[list, tuple]:
    """Half of the pelvis, the leg's bones down to the toes and the flesh around them; tucked or
    stretched by ``p["hind"]``."""
    hind, splay = p["hind"], p["splay"]
    hip = np.array([side * 0.05, -0.33 * L, -0.015])
    bones = [("rod", [(side * 0.02, -0.26 * L, 0.035), _t(hip)], [0.007, 0.007]),
             ("rod", [_t(hip), (side * 0.035, -0.42 * L, 0.0)], [0.006, 0.006]),
             ("rod", [_t(hip), (side * 0.01, -0.37 * L, -0.045)], [0.005, 0.005]),
             ("blob", _t(hip), (0.012, 0.012, 0.012))]
    knee = hip + np.array([side * 0.03 * splay, 0.05 - 0.07 * hind, -0.045])
    ankle = knee + np.array([side * 0.005, -0.06 - 0.03 * hind, -0.035 + 0.02 * hind])
    toe = ankle + np.array([side * 0.005, 0.045 - 0.09 * hind, -0.012 + 0.008 * hind])
    bones += [("rod", [_t(hip), _t(knee)], [0.009, 0.008]),
              ("rod", [_t(knee), _t(ankle)], [0.0065, 0.005]),
              ("rod", [_t(knee + [side * 0.005, -0.005, 0]), _t(ankle + [side * 0.004, 0.005, 0])],
               [0.0025, 0.0025])]
    for dx in (-0.008, -0.003, 0.003, 0.008):
        bones.append(("rod", [_t(ankle), _t(toe + [dx, 0, 0])], [0.003, 0.0022]))
    flesh = ("rod", [_t(hip + [0, 0.01, 0.02]), _t(knee), _t(ankle), _t(toe)], [0.045, 0.024, 0.012, 0.008])
    return bones, flesh


def _tail(p: dict, L: float) -> tuple[tuple, list]:
    """The tail, curled to one side along the body: its flesh, and its caudal vertebrae."""
    c, s = p["tail_curl"], p["tail_side"]
    tail = np.array([(0, -0.47 * L, 0.0), (0, -0.52 * L, -0.01), (s * 0.06, -0.57 * L, -0.04),
                     (s * 0.15, -0.54 * L, -0.07), (s * 0.2, -0.44 * L, -0.085),
                     (s * (0.2 + 0.02 * c), -0.44 * L + 0.25 * c, -0.09)])
    curve = _catmull_rom(tail, 120)
    flesh = ("rod", [_t(q) for q in curve[::12]], list(np.linspace(0.018, 0.008, len(curve[::12]))))
    f = np.linspace(0.05, 0.95, 14)
    pts, tans = _along(curve, f)
    step = 0.5 / 14 * np.linalg.norm(np.diff(curve, axis=0), axis=1).sum()
    bones = [("rod", [_t(q - step * t), _t(q + step * t)], [r, r])
             for q, t, r in zip(pts, tans, np.linspace(0.006, 0.0035, 14))]
    return flesh, bones


def _organs(L: float, g: float, rib: float) -> list:
    """Organs as (name, centre, radii); later ones cover earlier ones."""
    organs = [("liver", (0, -0.05 * L, -0.015), (0.1 * g ** 0.5, 0.05, 0.075)),
              ("bladder", (0, -0.37 * L, -0.045), (0.02, 0.025, 0.02))]
    for side in (-1, 1):
        organs += [("kidney", (side * 0.045, -0.17 * L, 0.035), (0.017, 0.027, 0.016)),
                   ("lung", (side * 0.045 * rib, 0.08 * L, 0.005), (0.045 * rib, 0.11 * L, 0.058 * rib))]
    return organs + [("heart", (0.01, 0.1 * L, -0.03), (0.035, 0.05, 0.04))]


def _gas(p: dict, L: float) -> list:
    """Gas in the gut as (centre, radii): one pocket, and six bubbles placed by the mouse's seed."""
    gas = [((-0.035, -0.08 * L, 0.01), (0.022, 0.02, 0.016))]
    r = generator(p["texture_seed"], 1)
    for _ in range(6):
        centre = (float(r.uniform(-0.07, 0.07)), float(r.uniform(-0.28, -0.12)) * L, float(r.uniform(-0.06, 0.02)))
        gas.append((centre, tuple(float(v) for v in r.uniform(0.006, 0.016, 3))))
    return gas
