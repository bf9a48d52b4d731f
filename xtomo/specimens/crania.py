"""Procedural mammalian crania: a stand-in for the paper's 175 UTCT skull scans.

A species is a point in a space of anatomical proportions, drawn around the template of its
family, which refines the template of its order (long-snouted carnivores, short-faced primates,
rodents with large incisors, long-faced ungulates, ...). An individual of a species varies in
sex, size and fine detail. ``skull`` turns a (species, individual, seed) into a density volume
at any resolution, built from signed distance fields and anti-aliased by a one-voxel ramp.

Canonical anatomical frame, shared with ``xtomo.imaging.xray``: +x is the animal's left-right axis,
+y points forward (the snout), +z points up (dorsal). A view from +z is a top view, from +y a
front view, from +-x a side view. Every specimen lies inside the cube's inscribed sphere.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from xtomo.specimens import sdf

__all__ = ["ORDERS", "Species", "catalog", "split", "skull", "DENSITY"]

#: Linear densities of the tissues (dimensionless, in [0, 1]; bone dominates like the UTCT data).
DENSITY = {"cortical": 0.74, "cancellous": 0.34, "tooth": 1.0, "petrous": 0.95}

# Proportions in local units (braincase centred at the origin, roughly unit size).
# Orders give defaults; families override some; species then vary around them.
_BASE = dict(
    bw=0.24, bl=0.30, bh=0.22, bthick=0.030,                # braincase half-extents, wall
    snout=0.35, sw=0.55, sh=0.55, taper=0.55, sdrop=0.35,  # rostrum, relative to braincase
    sthick=0.022, orbit=0.42, ofront=0.0, pob=0.0, brow=0.0,
    zyg=0.30, zr=0.022, crest=0.0, nuchal=0.02,
    incisor=0.06, canine=0.10, rodent=0.0, upper_incisors=1.0, n_cheek=6, molar=0.030,
    diastema=0.05, jaw=0.07, bulla=0.05, horns=0.0, tusk=0.0, tusk_up=0.0, blowhole=0.0,
    cortical=DENSITY["cortical"],
)

ORDERS: dict[str, dict] = {
    "Carnivora": dict(
        base=dict(snout=0.32, zyg=0.45, crest=0.05, canine=0.13, bulla=0.07, nuchal=0.05),
        families={
            "Canidae": dict(snout=0.45, taper=0.5, crest=0.04),
            "Felidae": dict(snout=0.16, bl=0.27, bh=0.23, canine=0.15, zyg=0.55, taper=0.75),
            "Ursidae": dict(snout=0.34, bw=0.26, crest=0.07, molar=0.04, n_cheek=7),
            "Mustelidae": dict(bh=0.16, bl=0.34, snout=0.18, zyg=0.30, taper=0.7),
            "Odobenidae": dict(snout=0.16, sw=0.8, taper=0.9, tusk=0.42, canine=0.0, zyg=0.25,
                               crest=0.0, orbit=0.36, n_cheek=4),
        }),
    "Primates": dict(
        base=dict(bw=0.31, bl=0.36, bh=0.30, snout=0.08, sw=0.5, sh=0.65, taper=0.8, sdrop=0.55,
                  ofront=1.0, pob=1.0, orbit=0.33, zyg=0.12, crest=0.0, nuchal=0.0, canine=0.05,
                  n_cheek=5, molar=0.034, bulla=0.0, incisor=0.05, jaw=0.10),
        families={
            "Hominidae": dict(bw=0.33, bh=0.33, snout=0.06, brow=0.028),
            "Pongidae": dict(bw=0.27, bl=0.31, bh=0.25, snout=0.22, brow=0.04, crest=0.06,
                             canine=0.11, sdrop=0.6),
            "Cercopithecidae": dict(bw=0.25, bl=0.29, bh=0.24, snout=0.24, canine=0.10,
                                    sdrop=0.45, brow=0.02),
            "Lemuridae": dict(bw=0.22, bl=0.27, bh=0.2, snout=0.28, ofront=0.55, taper=0.55,
                              sdrop=0.35, orbit=0.42, zyg=0.25),
        }),
    "Rodentia": dict(
        base=dict(rodent=1.0, canine=0.0, diastema=0.42, n_cheek=4, molar=0.026, bh=0.18,
                  snout=0.32, taper=0.7, zyg=0.38, bulla=0.08, jaw=0.09, sdrop=0.25),
        families={
            "Muridae": dict(snout=0.38, bh=0.17, taper=0.6, orbit=0.45),
            "Sciuridae": dict(snout=0.26, bh=0.21, orbit=0.5, taper=0.75),
            "Caviidae": dict(snout=0.30, bw=0.27, bh=0.19, zyg=0.5, molar=0.032),
        }),
    "Lagomorpha": dict(
        base=dict(rodent=1.0, canine=0.0, diastema=0.40, n_cheek=5, molar=0.026, snout=0.36,
                  bh=0.20, orbit=0.52, zyg=0.30, bulla=0.07, taper=0.75, sdrop=0.15, jaw=0.10),
        families={"Leporidae": dict(), "Ochotonidae": dict(snout=0.22, orbit=0.42, bh=0.17)}),
    "Artiodactyla": dict(
        base=dict(snout=0.62, taper=0.55, sdrop=0.25, orbit=0.45, pob=1.0, ofront=0.1,
                  zyg=0.25, upper_incisors=0.0, canine=0.0, diastema=0.28, n_cheek=6,
                  molar=0.036, jaw=0.11, bulla=0.05, bw=0.22, bl=0.27, bh=0.2),
        families={
            "Bovidae": dict(horns=0.34),
            "Cervidae": dict(horns=0.0, snout=0.58),
            "Suidae": dict(snout=0.58, taper=0.7, upper_incisors=1.0, canine=0.0, tusk_up=0.22,
                           pob=0.0, crest=0.0, nuchal=0.09, diastema=0.1),
            "Camelidae": dict(snout=0.52, canine=0.06, upper_incisors=0.0, diastema=0.2),
        }),
    "Perissodactyla": dict(
        base=dict(snout=0.78, taper=0.65, sdrop=0.2, orbit=0.42, pob=1.0, zyg=0.22,
                  canine=0.04, diastema=0.3, n_cheek=6, molar=0.04, jaw=0.13, bw=0.21,
                  bl=0.25, bh=0.19, nuchal=0.06),
        families={"Equidae": dict(), "Tapiridae": dict(snout=0.45, sh=0.7, pob=0.0, crest=0.06)}),
    "Diprotodontia": dict(
        base=dict(snout=0.30, taper=0.65, canine=0.0, upper_incisors=1.0, incisor=0.09,
                  diastema=0.2, n_cheek=5, zyg=0.40, bulla=0.04, jaw=0.1),
        families={
            "Macropodidae": dict(snout=0.45, taper=0.6, bh=0.2),
            "Phascolarctidae": dict(snout=0.14, sw=0.75, sh=0.75, taper=0.85, bw=0.27, zyg=0.45),
        }),
    "Cetacea": dict(
        base=dict(snout=0.85, taper=0.3, sw=0.5, sh=0.38, sdrop=0.2, bw=0.28, bl=0.22, bh=0.26,
                  zyg=0.05, zr=0.012, canine=0.0, incisor=0.0, rodent=0.0, upper_incisors=0.0,
                  n_cheek=18, molar=0.02, diastema=0.0, jaw=0.06, blowhole=1.0, orbit=0.38,
                  nuchal=0.0, bulla=0.07),
        families={"Delphinidae": dict()}),
}

_COUNT_PARAMS = {"n_cheek"}
_SWITCH_PARAMS = {"rodent", "upper_incisors", "ofront", "pob", "blowhole"}


@dataclass(frozen=True)
class Species:
    """One species: its index in the catalogue, its taxonomy and its mean proportions."""

    index: int
    name: str
    order: str
    family: str
    params: dict


def _rng(*keys) -> np.random.Generator:
    """A generator seeded by a tuple of integers and strings, stable across runs and platforms."""
    words = [k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence([abs(int(w)) for w in words]))


def _vary(params: dict, rng: np.random.Generator, sigma: float) -> dict:
    """Proportions jittered log-normally; counts and switches are kept."""
    out = {}
    for key, value in params.items():
        if key in _SWITCH_PARAMS or key in _COUNT_PARAMS or value == 0:
            out[key] = value
        else:
            out[key] = float(value * math.exp(rng.normal(0.0, sigma)))
    return out


def catalog(n: int = 175, seed: int = 0) -> list[Species]:
    """``n`` species spread over the families (deterministic for a seed).

    Families get species in turn, so a small catalogue still spans the orders.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"catalog: n must be a positive integer, got {n!r}")
    families = [(o, f) for o, spec in ORDERS.items() for f in spec["families"]]
    order_perm = _rng("families", seed).permutation(len(families))
    counts: dict[str, int] = {}
    species = []
    for i in range(n):
        order, family = families[order_perm[i % len(families)]]
        counts[family] = counts.get(family, 0) + 1
        template = {**_BASE, **ORDERS[order]["base"], **ORDERS[order]["families"][family]}
        rng = _rng("species", seed, i)
        params = _vary(template, rng, sigma=0.09)
        params["n_cheek"] = int(max(2, template["n_cheek"] + rng.integers(-1, 2)))
        species.append(Species(i, f"{family} sp. {counts[family]:02d}", order, family, params))
    return species


def split(species: list[Species], n_val: int = 20, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices of training and held-out validation species (the paper holds out 20 of 175)."""
    if not 0 < n_val < len(species):
        raise ValueError(f"split: n_val must be between 1 and {len(species) - 1}, got {n_val}")
    perm = _rng("split", seed).permutation(len(species))
    val = sorted(int(i) for i in perm[:n_val])
    train = sorted(int(i) for i in perm[n_val:])
    return train, val


def individual(species: Species, individual: int = 0, seed: int = 0) -> dict:
    """Proportions of one individual: sex (males larger, more crested, longer canines), size, jitter."""
    rng = _rng("individual", seed, species.index, individual)
    p = _vary(species.params, rng, sigma=0.03) if individual else dict(species.params)
    male = individual % 2 == 0
    if male:
        p["crest"] = p["crest"] * 1.4
        p["canine"] = p["canine"] * 1.15
        p["brow"] = p["brow"] * 1.2
    p["size"] = 1.0 if individual == 0 else float(rng.uniform(0.86, 1.0))
    p["male"] = male
    p["texture_seed"] = int(rng.integers(0, 2**31 - 1))
    return p


class _Parts:
    """A distance field being assembled; small parts are evaluated only inside their boxes."""

    def __init__(self, x: sdf.Coords, field: torch.Tensor):
        self.x, self.field = x, field

    def rod(self, points, radii, squash=(1.0, 1.0, 1.0), k: float = 0.0):
        """Union a bent, tapered rod (a polyline of capsules), blended over ``k``."""
        lo, hi = sdf.capsule_box(points, max(radii), squash)
        self.field = sdf.add_part(self.field, self.x, lo, hi,
                                  lambda q: sdf.polyline(q, points, radii, squash), k)

    def blob(self, centre, radii, k: float = 0.0, hollow: float = 0.0, keep_above=None):
        """Union an ellipsoid (a shell of ``hollow`` thickness if given; only z > keep_above)."""
        lo, hi = sdf.ellipsoid_box(centre, [r + hollow for r in radii])

        def part(q):
            d = sdf.ellipsoid(q, centre, radii)
            d = sdf.shell(d, hollow) if hollow else d
            return d if keep_above is None else torch.maximum(d, keep_above - q[2])

        if keep_above is not None:
            lo[2] = max(lo[2], keep_above)
        self.field = sdf.add_part(self.field, self.x, lo, hi, part, k)


def _bone(p: dict, x: sdf.Coords, voxel: float, texture: bool) -> torch.Tensor:
    """Density of the skull with proportions ``p`` at local coordinates ``x``."""
    X, Y, Z = x
    bw, bl, bh = p["bw"], p["bl"], p["bh"]
    ts = p["texture_seed"]
    # Braincase: an ellipsoidal shell; its interior (the brain) is carved out at the end.
    bc = sdf.ellipsoid(x, (0, 0, 0), (bw, bl, bh))
    brain = sdf.ellipsoid(x, (0, 0, 0), (bw - p["bthick"], bl - p["bthick"], bh - p["bthick"]))
    # Rostrum: a tapered tube of elliptic section with a flat palate; its hollow is the nasal cavity.
    y0, zs = bl * 0.55, -bh * p["sdrop"]
    sw0, sh0 = bw * p["sw"], bh * p["sh"]
    y1 = y0 + p["snout"]
    z1 = zs - 0.25 * sh0 * (1 - p["taper"])
    sh1, sw1 = sh0 * p["taper"], sw0 * p["taper"]
    ros = sdf.capsule(x, (0, y0, zs), (0, y1, z1), sh0, sh1, squash=(sh0 / sw0, 1, 1))

    def palate(y):
        t = (y - y0) / max(y1 - y0, 1e-6)
        t = t.clamp(0, 1) if torch.is_tensor(t) else min(max(t, 0.0), 1.0)
        return (zs - 0.78 * sh0) + t * ((z1 - 0.78 * sh1) - (zs - 0.78 * sh0))

    ros = torch.maximum(ros, palate(Y) - Z)
    nasal = sdf.ellipsoid(x, (0, y1 + 0.3 * sh1, z1 + 0.1 * sh1), (0.8 * sw1, 0.9 * sh1, 0.8 * sh1))
    rostrum = sdf.subtract(sdf.shell(ros, p["sthick"]), nasal)
    septum = sdf.subtract(torch.maximum(X.abs() - 0.25 * p["sthick"], ros + 0.5 * p["sthick"]), nasal)
    parts = _Parts(x, torch.minimum(sdf.smooth_union(sdf.shell(bc, p["bthick"]), rostrum, 0.03), septum))
    # Orbits: between lateral (carnivores, ungulates) and forward-facing (primates) positions.
    orr = p["orbit"] * bh
    f = p["ofront"]
    ox = (1 - f) * (sw0 + 0.35 * orr) + f * (0.48 * bw)
    oy = (1 - f) * (y0 + 0.15 * orr) + f * (bl * 0.92)
    oz = (1 - f) * (zs + 0.55 * sh0) + f * (0.02 * bh)
    # Zygomatic arches: bowed bars from below the orbit back to the side of the braincase.
    zw, zr = bw * (1 + p["zyg"]), p["zr"]
    root = max(sw0, ox) * 0.95
    for s in (-1, 1):
        parts.rod([(s * root, oy + 0.35 * orr, oz - 0.95 * orr),
                   (s * (0.35 * root + 0.65 * zw), oy - 0.6 * orr, oz - 1.0 * orr),
                   (s * zw, oy - 1.5 * orr, oz - 0.95 * orr),
                   (s * (0.5 * zw + 0.5 * bw * 0.85), -0.05 * bl, oz - 0.9 * orr),
                   (s * bw * 0.8, -0.3 * bl, oz - 0.85 * orr)],
                  [1.5 * zr, 1.3 * zr, 1.2 * zr, 1.2 * zr, 1.6 * zr], squash=(1.6, 1, 0.6), k=0.025)
        if p["pob"] > 0.5:  # post-orbital bar closing the orbit behind
            parts.rod([(s * (ox + 0.45 * orr), oy - 0.8 * orr, oz + 0.85 * orr),
                       (s * (ox + 0.9 * orr), oy - 0.9 * orr, oz - 0.1 * orr),
                       (s * (0.35 * root + 0.65 * zw), oy - 0.8 * orr, oz - 1.0 * orr)],
                      [zr, 0.8 * zr, zr], squash=(1, 1.4, 1), k=0.015)
    if p["brow"] > 0:  # supra-orbital torus of the great apes
        parts.rod([(-ox - 0.4 * orr, oy - 0.1 * orr, oz + 0.95 * orr),
                   (ox + 0.4 * orr, oy - 0.1 * orr, oz + 0.95 * orr)], [p["brow"]] * 2,
                  squash=(1, 1.3, 1), k=0.02)
    # Crests: a sagittal blade on top and a nuchal ridge at the back, where the family has them.
    ct = 0.012
    if p["crest"] > 0:
        parts.blob((0, -0.25 * bl, 0), (ct, 0.75 * bl, bh + p["crest"]), k=0.01, keep_above=0.0)
    if p["nuchal"] > 0:
        parts.blob((0, -0.86 * bl, 0.05 * bh), (0.8 * bw + p["nuchal"], 1.6 * ct, 0.72 * bh + p["nuchal"]),
                   k=0.01, keep_above=-0.2 * bh)
    # Ear region: hollow auditory bullae below the braincase.
    if p["bulla"] > 0:
        for s in (-1, 1):
            parts.blob((s * 0.55 * bw, -0.3 * bl, -0.86 * bh),
                       (p["bulla"], 1.25 * p["bulla"], 0.85 * p["bulla"]), k=0.01, hollow=0.6 * p["sthick"])
    if p["horns"] > 0:  # horn cores of bovids
        h = p["horns"]
        for s in (-1, 1):
            parts.rod([(s * 0.45 * bw, 0.2 * bl, 0.8 * bh),
                       (s * (0.5 * bw + 0.55 * h), 0.05 * bl, bh + 0.25 * h),
                       (s * (0.5 * bw + 0.8 * h), -0.1 * bl - 0.3 * h, bh + 0.55 * h)],
                      [0.045, 0.03, 0.006], k=0.02)
    # Mandible: a thin plate under the tooth row with an ascending ramus and coronoid process.
    mh, jd = p["molar"], p["jaw"]

    def occl(y):  # occlusal plane, where upper and lower teeth meet
        return palate(y) - mh

    yb = y0 - 0.05 * bl
    base = occl(yb) - mh
    condyle_z = oz - 1.05 * orr
    fronts = []
    for s in (-1, 1):
        front = (s * sw1 * 0.35, y1 - 0.4 * sh1, occl(y1) - mh - 0.45 * jd)
        fronts.append(front)
        angle = (s * bw * 0.78, -0.2 * bl, base - 0.55 * jd)
        parts.rod([front, (s * sw0 * 0.8, yb, base - 0.5 * jd), angle],
                  [0.5 * jd, 0.55 * jd, 0.5 * jd], squash=(2.2, 1, 1), k=0.02)
        parts.rod([(s * bw * 0.78, -0.17 * bl, base - 0.55 * jd), (s * bw * 0.8, -0.2 * bl, condyle_z)],
                  [0.55 * jd, 0.35 * jd], squash=(2.6, 0.8, 1), k=0.02)
        parts.rod([(s * bw * 0.78, -0.02 * bl, base - 0.2 * jd),
                   (s * bw * 0.82, 0.05 * bl, condyle_z + 0.6 * orr)],
                  [0.3 * jd, 0.1 * jd], squash=(2.4, 1, 1), k=0.02)
    parts.rod(fronts, [0.45 * jd] * 2, k=0.02)  # symphysis
    # Carvings: orbits, foramen magnum, blowhole, and the brain itself.
    bone = parts.field
    for s in (-1, 1):
        bone = sdf.subtract(bone, sdf.ellipsoid(x, (s * ox, oy, oz), (orr, orr, orr)))
    bone = sdf.subtract(bone, sdf.ellipsoid(x, (0, -0.92 * bl, -0.42 * bh), (0.24 * bw, 0.3 * bw, 0.22 * bw)))
    if p["blowhole"] > 0.5:
        bone = sdf.subtract(bone, sdf.ellipsoid(x, (0, 0.55 * bl, 0.75 * bh), (0.25 * bw, 0.2 * bl, 0.3 * bh)))
    bone = sdf.subtract(bone, brain)
    # Orbital walls: where an orbit reaches into the braincase, a thin cup keeps the brain closed.
    for s in (-1, 1):
        cup = sdf.shell(sdf.ellipsoid(x, (s * ox, oy, oz), (orr, orr, orr)), 0.5 * p["bthick"])
        bone = torch.minimum(bone, torch.maximum(cup, bc))
    if texture:  # low-frequency bumps of the bone surface
        bone = bone + 0.004 * sdf.lattice_noise(x, 14, ts + 1, scale=1.2)
    parts = _Parts(x, bone)
    for s in (-1, 1):  # occipital condyles beside the foramen magnum
        parts.blob((s * 0.26 * bw, -0.95 * bl, -0.5 * bh), (0.045, 0.06, 0.035))
    bone = parts.field
    # Tissue: cortical near every bone surface, cancellous (trabecular) deeper inside.
    occ = sdf.occupancy(bone, voxel)
    cortex = (2 - (-bone).clamp_min(0) / _CORTEX).clamp(0, 1)  # cortical plates, then diploe
    trab = DENSITY["cancellous"]
    if texture:
        trab = trab * (1 + 0.6 * sdf.lattice_noise(x, 48, ts + 2, scale=1.2))
    cortical = p["cortical"]
    if texture:  # mineral density varies smoothly over the skull, as in CT
        cortical = cortical * (1 + 0.14 * sdf.lattice_noise(x, 9, ts + 4, scale=1.2))
    density = occ * (trab + (cortical - trab) * cortex)
    if texture:  # sutures: thin seams of lower density through the braincase wall
        wall = (bc.abs() < p["bthick"]).float()
        wig = 0.012 * sdf.lattice_noise(x, 20, ts + 3, scale=1.2)
        for d in (X + wig, Y - 0.22 * bl + wig, Y + 0.55 * bl - 0.3 * Z + wig):
            density = density * (1 - 0.5 * wall * torch.exp(-(d / 0.005) ** 2))
    # Dense petrous bone inside the braincase floor, and the teeth, densest of all.
    dense = _Parts(x, torch.ones_like(X))
    for s in (-1, 1):
        dense.blob((s * 0.5 * bw, -0.3 * bl, -0.62 * bh), (0.05, 0.075, 0.035))
    density = torch.maximum(density, DENSITY["petrous"] * sdf.occupancy(dense.field, voxel))
    teeth = _teeth(p, x, palate, occl, (y0, y1, sw0, sw1, sh1))
    return torch.maximum(density, DENSITY["tooth"] * sdf.occupancy(teeth, voxel))


def _teeth(p: dict, x: sdf.Coords, palate, occl, rostrum) -> torch.Tensor:
    """Distance field of all teeth: incisors, canines or tusks, and the cheek-tooth rows."""
    y0, y1, sw0, sw1, sh1 = rostrum
    mh, jd = p["molar"], p["jaw"]
    teeth = _Parts(x, torch.ones_like(x[0]))

    def arc(t):  # dental arcade: narrow at the front, wide at the back
        y = y1 - t * (y1 - (y0 - 0.12 * p["bl"]))
        return sw1 * 0.45 + (sw0 * 0.78 - sw1 * 0.45) * math.sqrt(t), y

    # Cheek teeth (premolars and molars), upper and lower, each an ellipsoidal crown.
    t0 = 0.16 + p["diastema"]
    n = int(p["n_cheek"])
    step = (1.0 - t0) / n
    for k in range(n):
        w, y = arc(t0 + (k + 0.5) * step)
        length = max(step * (y1 - y0 + 0.12 * p["bl"]) * 0.48, 0.006)
        zo = occl(y)
        for s in (-1, 1):
            for zc in (zo + 0.5 * mh, zo - 0.5 * mh):
                teeth.blob((s * w, y, zc), (0.7 * mh, length, 0.62 * mh))
    if p["incisor"] > 0 and p["rodent"] < 0.5:
        for k in range(3):
            w, y = arc(0.015 + 0.035 * k)
            zo = occl(y)
            for s in (-1, 1):
                if p["upper_incisors"] > 0.5:
                    teeth.rod([(s * w, y, zo + 0.8 * mh), (s * w, y + 0.01, zo - 0.2 * mh)], [0.008] * 2)
                teeth.rod([(s * w, y - 0.01, zo - 1.2 * mh), (s * w, y, zo + 0.1 * mh)], [0.007] * 2)
    # Rodent and lagomorph incisors: long curved rods, ever-growing, from deep in the jaw.
    if p["rodent"] > 0.5:
        zt = occl(y1)
        for s in (-1, 1):
            xs = s * max(sw1 * 0.25, 0.012)
            teeth.rod([(xs, y1 - 0.35 * (y1 - y0), palate(y1) + 0.6 * sh1), (xs, y1 - 0.02, palate(y1) + 0.2 * sh1),
                       (xs, y1 + 0.03, zt - 0.01)], [0.016, 0.017, 0.014])
            teeth.rod([(xs * 1.4, y0 - 0.02, zt - mh - 0.5 * jd), (xs, y1 - 0.1, zt - mh - 0.3 * jd),
                       (xs, y1 + 0.01, zt - 0.01)], [0.013, 0.014, 0.012])
    # Canines, or tusks: walrus-like (downwards) or pig-like (curving up and out).
    w, y = arc(0.13)
    zo = occl(y)
    for s in (-1, 1):
        if p["canine"] > 0:
            c = p["canine"] * (0.35 + 0.65 * (p["rodent"] < 0.5))
            teeth.rod([(s * w * 1.1, y, zo + 0.5 * c), (s * w * 1.15, y - 0.01, zo - 0.55 * c)], [0.018, 0.004])
            teeth.rod([(s * w, y + 0.02, zo - 0.5 * c), (s * w * 1.05, y + 0.025, zo + 0.45 * c)], [0.016, 0.004])
        if p["tusk"] > 0:
            t = p["tusk"]
            teeth.rod([(s * w, y, zo + 0.06), (s * w * 1.05, y + 0.01, zo - 0.3 * t), (s * w, y - 0.02, zo - t)],
                      [0.03, 0.026, 0.01])
        if p["tusk_up"] > 0:
            t = p["tusk_up"]
            teeth.rod([(s * w, y, zo - 0.06), (s * (w + 0.4 * t), y + 0.02, zo + 0.2 * t),
                       (s * (w + 0.55 * t), y - 0.05, zo + 0.55 * t)], [0.02, 0.016, 0.005])
    return teeth.field


_FIT_RADIUS = 0.46  # specimens fill the inscribed sphere up to this radius (of 0.5)
_CORTEX = 0.011  # thickness of cortical plates, local units (about 1.5 % of a skull's length)
_MIN_EVALUATION = 64  # coarser volumes are box-filtered from this resolution


def _placement(p: dict) -> tuple[tuple[float, float, float], float]:
    """Centre and scale (local units per cube unit) that fit the specimen in the sphere."""
    n = 40
    t = torch.linspace(-1.4, 1.4, n)
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    occ = _bone(p, (x, y, z), voxel=2.8 / n, texture=False) > 0.05
    pts = torch.stack([x[occ], y[occ], z[occ]], dim=1)
    if len(pts) == 0:
        raise RuntimeError("procedural skull came out empty; the proportions are degenerate")
    centre = (pts.amin(0) + pts.amax(0)) / 2
    radius = (pts - centre).norm(dim=1).max().item() + 2.8 / n
    return tuple(centre.tolist()), radius / _FIT_RADIUS


def skull(species: Species, size: int = 128, individual_index: int = 0, seed: int = 0,
          device="cpu") -> torch.Tensor:
    """Density volume ``[size, size, size]`` of one individual of ``species``, deterministic.

    The same (species, individual, seed) gives the same anatomy at every resolution; only the
    sampling changes. Each voxel is anti-aliased by a one-voxel ramp of the distance field;
    below 64^3, where walls get thinner than a voxel and the ramp would thicken them, voxels
    are averaged from a 64^3-or-finer evaluation instead.
    """
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"skull: size must be an integer of at least 8, got {size!r}")
    p = individual(species, individual_index, seed)
    centre, scale = _placement(p)
    scale = scale / p["size"]
    ss = math.ceil(_MIN_EVALUATION / size)
    x, y, z = sdf.grid(size * ss, device=device)
    local = (x * scale + centre[0], y * scale + centre[1], z * scale + centre[2])
    vol = _bone(p, local, voxel=scale / (size * ss), texture=True).clamp(0, 1)
    if ss > 1:
        vol = torch.nn.functional.avg_pool3d(vol[None, None], ss)[0, 0]
    return vol.contiguous()


# --------------------------------------------------------------------------- skulls for xtomo.specimens.mice

def family_template(family: str) -> Species:
    """The template species of a family: its order's and family's mean proportions, unjittered
    (``"Muridae"`` is the house mouse whose whole-body phantoms ``xtomo.specimens.mice`` builds)."""
    for order, spec in ORDERS.items():
        if family in spec["families"]:
            params = {**_BASE, **spec["base"], **spec["families"][family]}
            return Species(-1, f"{family} template", order, family, params)
    known = sorted(f for spec in ORDERS.values() for f in spec["families"])
    raise ValueError(f"unknown family {family!r}; choose one of {known}")


def cranium(p: dict, local: sdf.Coords, voxel: float) -> torch.Tensor:
    """Skull density of an individual's proportions ``p`` (from ``individual``) at coordinates
    ``local`` of the skull's own frame, anti-aliased over ``voxel`` (local units): lets another
    body place a skull in its head."""
    return _bone(p, local, voxel, texture=True).clamp(0, 1)


def cranium_sphere(p: dict) -> tuple[tuple[float, float, float], float]:
    """Centre and radius, in the skull's local units, of a sphere that holds the whole skull."""
    centre, scale = _placement(p)
    return centre, scale * _FIT_RADIUS
