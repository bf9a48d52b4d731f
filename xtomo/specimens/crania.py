"""Procedural mammalian crania: a stand-in for the paper's 175 UTCT skull scans.

A species is a point in a space of anatomical proportions (``xtomo.specimens.proportions``), drawn
around the template of its family, which refines the template of its order (long-snouted
carnivores, short-faced primates, rodents with large incisors, long-faced ungulates, ...). An
individual of a species varies in sex, size and fine detail. ``skull`` turns a (species,
individual, seed) into a density volume at any resolution, built from signed distance fields and
anti-aliased by a one-voxel ramp.

Canonical anatomical frame, shared with ``xtomo.imaging.xray``: +x is the animal's left-right axis,
+y points forward (the snout), +z points up (dorsal). A view from +z is a top view, from +y a
front view, from +-x a side view. Every specimen lies inside the cube's inscribed sphere.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from xtomo._checks import integer
from xtomo.specimens import sdf
from xtomo.specimens.proportions import (
    DENSITY,
    ORDERS,
    TYPE_SPECIES,
    Individual,
    Proportions,
    blended,
    jittered,
    template,
)
from xtomo.specimens.skull_plan import Layout, Parts, skull_layout, teeth

__all__ = ["VERSION", "JAWLESS", "ORDERS", "DENSITY", "Species", "catalog", "split", "individual", "skull",
           "family_template", "cranium", "cranium_sphere"]

#: The generator's version: caches of volumes carry it, so a changed generator never reads old skulls.
VERSION = "v7"
#: The share of a species' further individuals (not its first) drawn without the lower jaw.
JAWLESS = 0.5

_CORTEX = 0.010  # thickness of cortical plates (the vault's tables), local units (about 1 % of a skull's length)
_WARP, _WARP_CELLS = 0.012, 9  # smooth displacement of the whole skull: no edge stays ruler-straight
_WALL_VARIATION = 0.8  # relative variation of the vault's thickness over its surface
_WALL_TILT = 0.5  # how much thicker the crown and occiput are than the temples (relative, per half-axis)
_RELIEF = 0.008  # amplitude of the bone surface's bumps, local units (a few voxels at 128^3)
_SCROLL_SLOPE = 10.0  # typical gradient of 28-cell lattice noise per local unit: |noise| / slope ~ distance
_SPECIES_SIGMA, _BLEND = 0.15, 0.35  # spread of a species around its family; up to 35 % of another family
_PLACEMENT_GRID, _PLACEMENT_EXTENT = 40, 1.4  # the grid over [-1.4, 1.4]^3 that finds a skull's extent


@dataclass(frozen=True)
class Species:
    """One species: its index in the catalogue, its taxonomy and its mean proportions."""

    index: int
    name: str
    order: str
    family: str
    params: Proportions


def _rng(*keys) -> np.random.Generator:
    """A generator seeded by a tuple of integers and strings, stable across runs and platforms."""
    words = [k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence([abs(int(w)) for w in words]))


def catalog(n: int = 175, seed: int = 0) -> list[Species]:
    """``n`` species spread over the families (deterministic for a seed).

    Families get species in turn, so a small catalogue still spans the orders. Each species mixes
    up to 35 % of another family's template into its own (the morphospace is continuous, not a
    few clusters) and then varies its sizes log-normally (15 %). A family's first species may be a named
    one (``TYPE_SPECIES``: *Homo sapiens*), its template unmixed, varying by its own spread.
    """
    n = integer(n, "n", minimum=1, what="catalog")
    seed = integer(seed, "seed", what="catalog")
    families = [(o, f) for o, spec in ORDERS.items() for f in spec["families"]]
    order_perm = _rng("families", seed).permutation(len(families))
    counts: dict[str, int] = {}
    species = []
    for i in range(n):
        order, family = families[order_perm[i % len(families)]]
        counts[family] = counts.get(family, 0) + 1
        mean = template(order, family)
        rng = _rng("species", seed, i)
        other = families[int(rng.integers(len(families)))]
        typed = TYPE_SPECIES.get(family) if counts[family] == 1 else None  # e.g. Homo sapiens: the template
        mixed = blended(mean, template(*other), 0.0 if typed else float(rng.uniform(0.0, _BLEND)))
        params = jittered(mixed, rng, sigma=typed[1] if typed else _SPECIES_SIGMA)
        params = replace(params, cheek_teeth=int(max(2, mean.cheek_teeth + rng.integers(-1, 2))))
        species.append(Species(i, typed[0] if typed else f"{family} sp. {counts[family]:02d}", order, family, params))
    return species


def split(species: list[Species], n_val: int = 20, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices of training and held-out validation species (the paper holds out 20 of 175)."""
    n_val = integer(n_val, "n_val", minimum=1, maximum=len(species) - 1, what="split")
    perm = _rng("split", integer(seed, "seed", what="split")).permutation(len(species))
    val = sorted(int(i) for i in perm[:n_val])
    train = sorted(int(i) for i in perm[n_val:])
    return train, val


def individual(species: Species, individual: int = 0, seed: int = 0) -> Individual:
    """Proportions of one individual: sex (males larger, more crested, longer canines), size, jitter; and,
    for every individual but the first, even odds of a cranium without its mandible (as museum crania and
    CTs cut above the chin come; ``JAWLESS``)."""
    individual = integer(individual, "individual", minimum=0, what="individual")
    rng = _rng("individual", integer(seed, "seed", what="individual"), species.index, individual)
    p = jittered(species.params, rng, sigma=0.03) if individual else species.params
    male = individual % 2 == 0
    if male:
        p = replace(p, sagittal_crest=p.sagittal_crest * 1.4, canine_length=p.canine_length * 1.15,
                    brow_ridge=p.brow_ridge * 1.2)
    size = 1.0 if individual == 0 else float(rng.uniform(0.86, 1.0))
    texture_seed = int(rng.integers(0, 2**31 - 1))
    mandible = individual == 0 or bool(rng.random() >= JAWLESS)  # drawn last: the draws above stay as they were
    return Individual(**asdict(p), size=size, male=male, texture_seed=texture_seed, mandible=mandible)


def family_template(family: str) -> Species:
    """The template species of a family: its order's and family's mean proportions, unjittered
    (``"Muridae"`` is the house mouse whose whole-body phantoms ``xtomo.specimens.mice`` builds)."""
    for order, spec in ORDERS.items():
        if family in spec["families"]:
            return Species(-1, f"{family} template", order, family, template(order, family))
    known = sorted(f for spec in ORDERS.values() for f in spec["families"])
    raise ValueError(f"unknown family {family!r}; choose one of {known}")


# --------------------------------------------------------------------------- the skull's parts

def _vault(p: Individual, lay: Layout, x: sdf.Coords, texture: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The braincase's shell (thicker and thinner over the vault, with ``texture``) and the rostrum
    (a tapered tube of elliptic section with a flat palate, hollowed by the nasal cavity, split by
    a septum, its cavity filled with thin scrolls): their field, the braincase and the brain."""
    bw, bl, bh = lay.braincase
    (y0, zs), (y1, z1) = lay.snout_base, lay.snout_tip
    (sw0, sh0), (sw1, sh1) = lay.base_section, lay.tip_section
    wall, snout_wall = p.braincase_wall, p.snout_wall
    # the cranial base: a dome over a floor, not a whole ellipsoid
    floor, slope = lay.floor_at(x[1]), lay.floor_slope(x[1])
    base = (floor - x[2]) / (1 + slope**2).sqrt()  # distance below the floor, where it falls too
    braincase = torch.maximum(sdf.ellipsoid(x, (0, 0, 0), (bw, bl, bh)), base)
    brain = torch.maximum(sdf.ellipsoid(x, (0, 0, 0), (bw - wall, bl - wall, bh - wall)), base + wall)
    if texture:  # thicker on the crown and at the back, thin over the temples; smooth variation on top;
        # the brain's carve stays beneath it
        lean = (1 + _WALL_TILT * (x[2] / bh - (x[0] / bw) ** 2 - 0.3 * x[1] / bl)).clamp(0.45, 1.6)
        wall = wall * lean * (1 + _WALL_VARIATION * sdf.lattice_noise(x, 5, p.texture_seed + 5, scale=1.2))
    ros = sdf.capsule(x, (0, y0, zs), (0, y1, z1), sh0, sh1, squash=(sh0 / sw0, 1, 1))
    ros = torch.maximum(ros, lay.palate(x[1]) - x[2])
    f = p.orbits_forward  # short-faced primates: a tall, pear-shaped aperture wide at its base
    nasal = sdf.ellipsoid(x, (0, y1 + 0.3 * sh1, z1 + 0.1 * sh1 - 0.15 * f * sh1),
                          ((0.8 - 0.3 * f) * sw1, 0.9 * sh1, (0.8 + 0.15 * f) * sh1))
    if f > 0.5:
        nasal = torch.minimum(nasal, sdf.ellipsoid(x, (0, y1 + 0.3 * sh1, z1 + 0.55 * sh1),
                                                   (0.28 * sw1, 0.9 * sh1, 0.55 * sh1)))
    rostrum = sdf.subtract(sdf.shell(ros, snout_wall), nasal)
    septum = sdf.subtract(torch.maximum(x[0].abs() - 0.25 * snout_wall, ros + 0.5 * snout_wall), nasal)
    if texture:
        septum = torch.minimum(septum, _scrolls(p, lay, x, ros))
    field = torch.minimum(sdf.smooth_union(sdf.shell(braincase, wall), rostrum, 0.03), septum)
    return field, braincase, brain


def _scrolls(p: Individual, lay: Layout, x: sdf.Coords, rostrum: torch.Tensor) -> torch.Tensor:
    """Turbinates and ethmoid labyrinth: thin meandering sheets of bone (the zero set of smooth
    noise) filling the nasal cavity behind its opening."""
    (y0, _), (y1, _) = lay.snout_base, lay.snout_tip
    noise = sdf.lattice_noise(x, 28, p.texture_seed + 6, scale=1.2)
    sheets = noise.abs() / _SCROLL_SLOPE - 0.35 * p.snout_wall
    inside = rostrum + 1.5 * p.snout_wall  # below 0 well inside the rostrum's wall
    behind = x[1] - (y0 + 0.7 * (y1 - y0))  # the front third of the cavity stays open
    return torch.maximum(sheets, torch.maximum(inside, behind))


def _cheekbones(parts: Parts, p: Individual, lay: Layout) -> None:
    """Zygomatic arches (bowed bars from below each orbit back to the side of the braincase),
    post-orbital bars closing the orbits behind, and the brow ridge of the great apes."""
    bw, bl, _ = lay.braincase
    ox, oy, oz, orr = lay.orbit
    zw, root = lay.arch
    zr = p.zygomatic_radius
    for s in (-1, 1):
        parts.rod([(s * root, oy + 0.35 * orr, oz - 0.95 * orr),
                   (s * (0.35 * root + 0.65 * zw), oy - 0.6 * orr, oz - 1.0 * orr),
                   (s * zw, oy - 1.5 * orr, oz - 0.95 * orr),
                   (s * (0.5 * zw + 0.5 * bw * 0.85), -0.05 * bl, oz - 0.9 * orr),
                   (s * bw * 0.8, -0.3 * bl, oz - 0.85 * orr)],
                  [1.5 * zr, 1.3 * zr, 1.2 * zr, 1.2 * zr, 1.6 * zr], squash=(1.6, 1, 0.6), k=0.025)
        if p.postorbital_bar > 0.5:
            parts.rod([(s * (ox + 0.45 * orr), oy - 0.8 * orr, oz + 0.85 * orr),
                       (s * (ox + 0.9 * orr), oy - 0.9 * orr, oz - 0.1 * orr),
                       (s * (0.35 * root + 0.65 * zw), oy - 0.8 * orr, oz - 1.0 * orr)],
                      [zr, 0.8 * zr, zr], squash=(1, 1.4, 1), k=0.015)
    if p.postorbital_bar > 0.5:  # a raised rim around each orbit's opening, squarish and wider than tall
        for s in (-1, 1):
            parts.rod(_orbit_rim(lay, s, p.orbits_forward), [0.6 * zr] * 13, k=0.012)
    if p.brow_ridge > 0:
        parts.rod([(-ox - 0.4 * orr, oy - 0.1 * orr, oz + 0.95 * orr),
                   (ox + 0.4 * orr, oy - 0.1 * orr, oz + 0.95 * orr)], [p.brow_ridge] * 2,
                  squash=(1, 1.3, 1), k=0.02)


def _orbit_rim(lay: Layout, side: int, forward: float) -> list[tuple[float, float, float]]:
    """A closed loop of 13 points around the opening of the orbit at ``side``: a rounded square
    (superellipse) across the orbit's axis, which turns from lateral to forward with ``forward``."""
    ox, oy, oz, orr = lay.orbit
    axis = np.array([side * (1 - forward) + side * 0.3 * forward, forward, 0.0])
    axis /= np.linalg.norm(axis)
    across = np.cross(axis, [0.0, 0.0, 1.0])
    across /= np.linalg.norm(across)
    centre = np.array([side * ox, oy, oz]) + 0.3 * orr * axis
    points = []
    for t in np.linspace(0, 2 * math.pi, 13):
        c, s = math.cos(t), math.sin(t)
        u, v = np.sign(c) * abs(c) ** 0.6, np.sign(s) * abs(s) ** 0.6
        points.append(tuple(centre + 0.92 * orr * u * across + 0.8 * orr * v * np.array([0.0, 0.0, 1.0])))
    return points


def _outgrowths(parts: Parts, p: Individual, lay: Layout) -> None:
    """A sagittal blade on top and a nuchal ridge at the back, where the family has them; hollow
    auditory bullae below the braincase; the horn cores of bovids."""
    bw, bl, bh = lay.braincase
    ct = 0.012  # half-thickness of the crests
    if p.sagittal_crest > 0:
        parts.blob((0, -0.25 * bl, 0), (ct, 0.75 * bl, bh + p.sagittal_crest), k=0.01, keep_above=0.0)
    if p.nuchal_crest > 0:
        nuchal = p.nuchal_crest
        parts.blob((0, -0.86 * bl, 0.05 * bh), (0.8 * bw + nuchal, 1.6 * ct, 0.72 * bh + nuchal),
                   k=0.01, keep_above=-0.2 * bh)
    if p.bulla_radius > 0:
        b = p.bulla_radius
        for s in (-1, 1):
            parts.blob((s * 0.55 * bw, -0.3 * bl, lay.bottom_at(0.55 * bw, -0.3 * bl) - 0.6 * b),
                       (b, 1.25 * b, 0.85 * b), k=0.01, hollow=0.6 * p.snout_wall)
    if p.horn_length > 0:
        h = p.horn_length
        for s in (-1, 1):
            parts.rod([(s * 0.45 * bw, 0.2 * bl, 0.8 * bh),
                       (s * (0.5 * bw + 0.55 * h), 0.05 * bl, bh + 0.25 * h),
                       (s * (0.5 * bw + 0.8 * h), -0.1 * bl - 0.3 * h, bh + 0.55 * h)],
                      [0.045, 0.03, 0.006], k=0.02)


def _mandible(parts: Parts, p: Individual, lay: Layout) -> None:
    """The lower jaw: a thin plate under each tooth row with an ascending ramus and a coronoid
    process, the two halves joined in front at the symphysis."""
    bw, bl, _ = lay.braincase
    y0, y1 = lay.snout_base[0], lay.snout_tip[0]
    (sw0, _), (sw1, sh1) = lay.base_section, lay.tip_section
    _, _, oz, orr = lay.orbit
    mh, jd = p.molar_height, p.jaw_depth
    yb = y0 - 0.05 * bl
    base = lay.occlusal(yb) - mh
    condyle_z = oz - 1.05 * orr
    fronts = []
    for s in (-1, 1):
        front = (s * sw1 * 0.35, y1 - 0.4 * sh1, lay.occlusal(y1) - mh - 0.45 * jd)
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


def _temporal_lines(parts: Parts, lay: Layout) -> None:
    """Where the temporal muscle attaches: a low ridge arching over each side of the vault."""
    bw, bl, bh = lay.braincase
    for s in (-1, 1):
        points = []
        for t in (0.55, 0.25, -0.1, -0.45, -0.7):
            xs = s * bw * (0.55 - 0.15 * abs(t))
            zs = bh * math.sqrt(max(1 - (xs / bw) ** 2 - t**2, 0.0))
            points.append((xs, t * bl, zs))
        parts.rod(points, [0.002, 0.003, 0.003, 0.0025, 0.0015], k=0.006)


def _foramina(p: Individual, lay: Layout, x: sdf.Coords) -> torch.Tensor:
    """Canals through the bone: the infraorbital foramina through the rostrum below the orbits,
    the mental foramina through the front of the mandible."""
    (y0, zs), (y1, _) = lay.snout_base, lay.snout_tip
    sw0, sh0 = lay.base_section
    y = y0 + 0.3 * (y1 - y0)
    z = zs + 0.1 * sh0
    holes = sdf.capsule(x, (-1.3 * sw0, y, z), (1.3 * sw0, y, z), 0.35 * p.snout_wall + 0.004)
    ym = y1 - 0.35 * (y1 - y0)
    zm = lay.occlusal(ym) - p.molar_height - 0.5 * p.jaw_depth
    mental = sdf.capsule(x, (-1.3 * sw0, ym, zm), (1.3 * sw0, ym, zm), 0.004)
    return torch.minimum(holes, mental)


def _carve(bone: torch.Tensor, p: Individual, lay: Layout, x: sdf.Coords, braincase: torch.Tensor,
           brain: torch.Tensor) -> torch.Tensor:
    """``bone`` less the orbits, the foramen magnum, a blowhole and the brain; where an orbit reaches
    into the braincase a thin cup of bone keeps the brain closed."""
    bw, bl, bh = lay.braincase
    ox, oy, oz, orr = lay.orbit
    for s in (-1, 1):
        bone = sdf.subtract(bone, sdf.ellipsoid(x, (s * ox, oy, oz), (orr, orr, orr)))
    (fy, fz), radii = lay.foramen()
    bone = sdf.subtract(bone, sdf.ellipsoid(x, (0, fy, fz), radii))
    if p.blowhole > 0.5:
        bone = sdf.subtract(bone, sdf.ellipsoid(x, (0, 0.55 * bl, 0.75 * bh), (0.25 * bw, 0.2 * bl, 0.3 * bh)))
    bone = sdf.subtract(bone, brain)
    for s in (-1, 1):
        cup = sdf.shell(sdf.ellipsoid(x, (s * ox, oy, oz), (orr, orr, orr)), 0.5 * p.braincase_wall)
        bone = torch.minimum(bone, torch.maximum(cup, braincase))
    return bone


def _shape(p: Individual, lay: Layout, x: sdf.Coords, texture: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed distance to the skull's bone, bumpy when ``texture``; and to its braincase ellipsoid."""
    bw, bl, bh = lay.braincase
    pad = 2.5 * _WARP if texture else 0.0
    field, braincase, brain = _vault(p, lay, x, texture)
    parts = Parts(x, field, pad)
    _cheekbones(parts, p, lay)
    _outgrowths(parts, p, lay)
    if p.mandible:
        _mandible(parts, p, lay)
    if texture:
        _temporal_lines(parts, lay)
    bone = _carve(parts.field, p, lay, x, braincase, brain)
    if texture:  # low-frequency bumps of the bone surface, and the foramina
        bumps = sdf.lattice_noise(x, 14, p.texture_seed + 1, scale=1.2) + 0.8 * sdf.lattice_noise(
            x, 40, p.texture_seed + 8, scale=1.2)
        bone = bone + _RELIEF * bumps
        bone = sdf.subtract(bone, _foramina(p, lay, x))
    parts = Parts(x, bone, pad)
    (fy, fz), _ = lay.foramen()
    for s in (-1, 1):  # occipital condyles beside the foramen magnum
        parts.blob((s * 0.26 * bw, fy - 0.03 * bl, fz - 0.08 * bh), (0.045, 0.06, 0.035))
    return parts.field, braincase


def _tissues(bone: torch.Tensor, braincase: torch.Tensor, p: Individual, lay: Layout, x: sdf.Coords,
             voxel: float, texture: bool) -> torch.Tensor:
    """Density of the bone: cortical near every surface, cancellous (trabecular) deeper inside; with
    ``texture``, mineral density varying over the skull and sutures through the braincase wall."""
    X, Y, Z = x
    bl, ts = lay.braincase[1], p.texture_seed
    occ = sdf.occupancy(bone, voxel)
    cortex = (2 - (-bone).clamp_min(0) / _CORTEX).clamp(0, 1)  # cortical plates, then diploe
    trab = DENSITY["cancellous"]
    if texture:
        trab = trab * (1 + 0.6 * sdf.lattice_noise(x, 48, ts + 2, scale=1.2))
    cortical = p.cortical_density
    if texture:  # mineral density varies smoothly over the skull, as in CT
        cortical = cortical * (1 + 0.14 * sdf.lattice_noise(x, 9, ts + 4, scale=1.2))
    density = occ * (trab + (cortical - trab) * cortex)
    if texture:  # sutures: thin seams of lower density through the braincase wall
        wall = (braincase.abs() < p.braincase_wall).float()
        wig = (0.014 * sdf.lattice_noise(x, 20, ts + 3, scale=1.2)
               + 0.004 * sdf.lattice_noise(x, 64, ts + 7, scale=1.2))  # meander, then interdigitate
        for d in (X + wig, Y - 0.22 * bl + wig, Y + 0.55 * bl - 0.3 * Z + wig):
            density = density * (1 - 0.35 * wall * torch.exp(-(d / 0.004) ** 2))
    return density


def _bone(p: Individual, x: sdf.Coords, voxel: float, texture: bool) -> torch.Tensor:
    """Density of the skull with proportions ``p`` at local coordinates ``x``: bone, then the dense
    petrous bone inside the braincase floor, then the teeth, densest of all."""
    lay = skull_layout(p)
    bw, bl, bh = lay.braincase
    if texture:  # a smooth displacement bends every seam, edge and rod a little
        shift = sdf.lattice_noise(x, _WARP_CELLS, p.texture_seed + 10, scale=1.2, channels=3)
        x = tuple(c + _WARP * d for c, d in zip(x, shift))
    bone, braincase = _shape(p, lay, x, texture)
    density = _tissues(bone, braincase, p, lay, x, voxel, texture)
    dense = Parts(x, torch.ones_like(x[0]), 2.5 * _WARP if texture else 0.0)
    ear, clivus = lay.bottom_at(0.56 * bw, -0.36 * bl), lay.bottom_at(0.16 * bw, -0.1 * bl)
    for s in (-1, 1):  # the petrous ridge runs from the ear forward and inward to the clivus, on the floor
        dense.rod([(s * 0.56 * bw, -0.36 * bl, ear + 0.04 * bh), (s * 0.16 * bw, -0.1 * bl, clivus + 0.1 * bh)],
                  [0.042, 0.014], squash=(1, 1, 1.5))
    density = torch.maximum(density, DENSITY["petrous"] * sdf.occupancy(dense.field, voxel))
    return torch.maximum(density, DENSITY["tooth"] * sdf.occupancy(teeth(p, lay, x, 2.5 * _WARP), voxel))


# --------------------------------------------------------------------------- volumes

def _placement(p: Individual) -> tuple[tuple[float, float, float], float]:
    """Centre and scale (local units per cube unit) that fit the specimen in the sphere."""
    voxel = 2 * _PLACEMENT_EXTENT / _PLACEMENT_GRID
    centre, radius = sdf.bounding_sphere(lambda q: _bone(p, q, voxel=voxel, texture=False) > 0.05,
                             _PLACEMENT_GRID, _PLACEMENT_EXTENT, "skull")
    return tuple(centre.tolist()), radius / sdf.FIT_RADIUS


def skull(species: Species, size: int = 128, individual_index: int = 0, seed: int = 0,
          device="cpu") -> torch.Tensor:
    """Density volume ``[size, size, size]`` of one individual of ``species``, deterministic.

    The same (species, individual, seed) gives the same anatomy at every resolution; only the
    sampling changes. Each voxel is anti-aliased by a one-voxel ramp of the distance field;
    below 64^3 voxels are averaged from a finer evaluation instead (``sdf.sample``).
    """
    size = integer(size, "size", minimum=8, what="skull")
    p = individual(species, individual_index, seed)
    centre, scale = _placement(p)
    vol = sdf.sample(lambda local, voxel: cranium(p, local, voxel)[None], size, centre, scale / p.size, device)
    return vol[0].contiguous()


def cranium(p: Individual, local: sdf.Coords, voxel: float, texture: bool = True) -> torch.Tensor:
    """Skull density of an individual's proportions ``p`` (from ``individual``) at coordinates
    ``local`` of the skull's own frame, anti-aliased over ``voxel`` (local units): lets another
    body place a skull in its head. ``texture=False``: the bare shape, with no warp, relief, noise or
    sutures (its parts where its proportions put them)."""
    return _bone(p, local, voxel, texture=texture).clamp(0, 1)


def cranium_sphere(p: Individual) -> tuple[tuple[float, float, float], float]:
    """Centre and radius, in the skull's local units, of a sphere that holds the whole skull."""
    centre, scale = _placement(p)
    return centre, scale * sdf.FIT_RADIUS
