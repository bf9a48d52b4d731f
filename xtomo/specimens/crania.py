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
from xtomo.specimens.proportions import DENSITY, ORDERS, Individual, Proportions, jittered, template

__all__ = ["ORDERS", "DENSITY", "Species", "catalog", "split", "individual", "skull", "family_template",
           "cranium", "cranium_sphere"]

_CORTEX = 0.011  # thickness of cortical plates, local units (about 1.5 % of a skull's length)
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

    Families get species in turn, so a small catalogue still spans the orders.
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
        params = jittered(mean, rng, sigma=0.09)
        params = replace(params, cheek_teeth=int(max(2, mean.cheek_teeth + rng.integers(-1, 2))))
        species.append(Species(i, f"{family} sp. {counts[family]:02d}", order, family, params))
    return species


def split(species: list[Species], n_val: int = 20, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices of training and held-out validation species (the paper holds out 20 of 175)."""
    n_val = integer(n_val, "n_val", minimum=1, maximum=len(species) - 1, what="split")
    perm = _rng("split", integer(seed, "seed", what="split")).permutation(len(species))
    val = sorted(int(i) for i in perm[:n_val])
    train = sorted(int(i) for i in perm[n_val:])
    return train, val


def individual(species: Species, individual: int = 0, seed: int = 0) -> Individual:
    """Proportions of one individual: sex (males larger, more crested, longer canines), size, jitter."""
    individual = integer(individual, "individual", minimum=0, what="individual")
    rng = _rng("individual", integer(seed, "seed", what="individual"), species.index, individual)
    p = jittered(species.params, rng, sigma=0.03) if individual else species.params
    male = individual % 2 == 0
    if male:
        p = replace(p, sagittal_crest=p.sagittal_crest * 1.4, canine_length=p.canine_length * 1.15,
                    brow_ridge=p.brow_ridge * 1.2)
    size = 1.0 if individual == 0 else float(rng.uniform(0.86, 1.0))
    texture_seed = int(rng.integers(0, 2**31 - 1))
    return Individual(**asdict(p), size=size, male=male, texture_seed=texture_seed)


def family_template(family: str) -> Species:
    """The template species of a family: its order's and family's mean proportions, unjittered
    (``"Muridae"`` is the house mouse whose whole-body phantoms ``xtomo.specimens.mice`` builds)."""
    for order, spec in ORDERS.items():
        if family in spec["families"]:
            return Species(-1, f"{family} template", order, family, template(order, family))
    known = sorted(f for spec in ORDERS.values() for f in spec["families"])
    raise ValueError(f"unknown family {family!r}; choose one of {known}")


# --------------------------------------------------------------------------- the skull's parts

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


@dataclass(frozen=True)
class _Layout:
    """Landmarks that the proportions put in place (local units), shared by the skull's parts."""

    braincase: tuple[float, float, float]     # half-extents (x, y, z) of the braincase
    snout_base: tuple[float, float]           # (y, z) of the rostrum's base
    snout_tip: tuple[float, float]            # (y, z) of the rostrum's tip
    base_section: tuple[float, float]         # half-width and half-height of the rostrum at its base
    tip_section: tuple[float, float]          # ... and at its tip
    orbit: tuple[float, float, float, float]  # centre (x, y, z) of the orbit at +x, and its radius
    arch: tuple[float, float]                 # half-span of the zygomatic arches, and x of their roots
    molar: float                              # crown height of the cheek teeth

    def palate(self, y):
        """Height of the palate (the rostrum's flat floor) at ``y``, a float or a tensor."""
        (y0, zs), (y1, z1), sh0, sh1 = self.snout_base, self.snout_tip, self.base_section[1], self.tip_section[1]
        t = (y - y0) / max(y1 - y0, 1e-6)
        t = t.clamp(0, 1) if torch.is_tensor(t) else min(max(t, 0.0), 1.0)
        return (zs - 0.78 * sh0) + t * ((z1 - 0.78 * sh1) - (zs - 0.78 * sh0))

    def occlusal(self, y):
        """Height of the occlusal plane, where upper and lower teeth meet, at ``y``."""
        return self.palate(y) - self.molar

    def arcade(self, t: float) -> tuple[float, float]:
        """Half-width and y of the dental arcade at ``t`` (0 front, 1 back): narrow in front, wide behind."""
        y0, y1, bl = self.snout_base[0], self.snout_tip[0], self.braincase[1]
        (sw0, _), (sw1, _) = self.base_section, self.tip_section
        y = y1 - t * (y1 - (y0 - 0.12 * bl))
        return sw1 * 0.45 + (sw0 * 0.78 - sw1 * 0.45) * math.sqrt(t), y


def _layout(p: Individual) -> _Layout:
    """Where the rostrum, orbits and arches go: orbits between lateral (carnivores, ungulates) and
    forward-facing (primates) positions."""
    bw, bl, bh = p.braincase_width, p.braincase_length, p.braincase_height
    y0, zs = bl * 0.55, -bh * p.snout_drop
    sw0, sh0 = bw * p.snout_width, bh * p.snout_height
    y1 = y0 + p.snout_length
    z1 = zs - 0.25 * sh0 * (1 - p.snout_taper)
    sh1, sw1 = sh0 * p.snout_taper, sw0 * p.snout_taper
    orr = p.orbit_size * bh
    f = p.orbits_forward
    ox = (1 - f) * (sw0 + 0.35 * orr) + f * (0.48 * bw)
    oy = (1 - f) * (y0 + 0.15 * orr) + f * (bl * 0.92)
    oz = (1 - f) * (zs + 0.55 * sh0) + f * (0.02 * bh)
    arch = (bw * (1 + p.zygomatic_span), max(sw0, ox) * 0.95)
    return _Layout((bw, bl, bh), (y0, zs), (y1, z1), (sw0, sh0), (sw1, sh1), (ox, oy, oz, orr), arch,
                   p.molar_height)


def _vault(p: Individual, lay: _Layout, x: sdf.Coords) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The braincase's shell and the rostrum (a tapered tube of elliptic section with a flat palate,
    hollowed by the nasal cavity, split by a septum): their field, the braincase and the brain."""
    bw, bl, bh = lay.braincase
    (y0, zs), (y1, z1) = lay.snout_base, lay.snout_tip
    (sw0, sh0), (sw1, sh1) = lay.base_section, lay.tip_section
    wall, snout_wall = p.braincase_wall, p.snout_wall
    braincase = sdf.ellipsoid(x, (0, 0, 0), (bw, bl, bh))
    brain = sdf.ellipsoid(x, (0, 0, 0), (bw - wall, bl - wall, bh - wall))
    ros = sdf.capsule(x, (0, y0, zs), (0, y1, z1), sh0, sh1, squash=(sh0 / sw0, 1, 1))
    ros = torch.maximum(ros, lay.palate(x[1]) - x[2])
    nasal = sdf.ellipsoid(x, (0, y1 + 0.3 * sh1, z1 + 0.1 * sh1), (0.8 * sw1, 0.9 * sh1, 0.8 * sh1))
    rostrum = sdf.subtract(sdf.shell(ros, snout_wall), nasal)
    septum = sdf.subtract(torch.maximum(x[0].abs() - 0.25 * snout_wall, ros + 0.5 * snout_wall), nasal)
    field = torch.minimum(sdf.smooth_union(sdf.shell(braincase, wall), rostrum, 0.03), septum)
    return field, braincase, brain


def _cheekbones(parts: _Parts, p: Individual, lay: _Layout) -> None:
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
    if p.brow_ridge > 0:
        parts.rod([(-ox - 0.4 * orr, oy - 0.1 * orr, oz + 0.95 * orr),
                   (ox + 0.4 * orr, oy - 0.1 * orr, oz + 0.95 * orr)], [p.brow_ridge] * 2,
                  squash=(1, 1.3, 1), k=0.02)


def _outgrowths(parts: _Parts, p: Individual, lay: _Layout) -> None:
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
            parts.blob((s * 0.55 * bw, -0.3 * bl, -0.86 * bh), (b, 1.25 * b, 0.85 * b), k=0.01,
                       hollow=0.6 * p.snout_wall)
    if p.horn_length > 0:
        h = p.horn_length
        for s in (-1, 1):
            parts.rod([(s * 0.45 * bw, 0.2 * bl, 0.8 * bh),
                       (s * (0.5 * bw + 0.55 * h), 0.05 * bl, bh + 0.25 * h),
                       (s * (0.5 * bw + 0.8 * h), -0.1 * bl - 0.3 * h, bh + 0.55 * h)],
                      [0.045, 0.03, 0.006], k=0.02)


def _mandible(parts: _Parts, p: Individual, lay: _Layout) -> None:
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


def _carve(bone: torch.Tensor, p: Individual, lay: _Layout, x: sdf.Coords, braincase: torch.Tensor,
           brain: torch.Tensor) -> torch.Tensor:
    """``bone`` less the orbits, the foramen magnum, a blowhole and the brain; where an orbit reaches
    into the braincase a thin cup of bone keeps the brain closed."""
    bw, bl, bh = lay.braincase
    ox, oy, oz, orr = lay.orbit
    for s in (-1, 1):
        bone = sdf.subtract(bone, sdf.ellipsoid(x, (s * ox, oy, oz), (orr, orr, orr)))
    bone = sdf.subtract(bone, sdf.ellipsoid(x, (0, -0.92 * bl, -0.42 * bh), (0.24 * bw, 0.3 * bw, 0.22 * bw)))
    if p.blowhole > 0.5:
        bone = sdf.subtract(bone, sdf.ellipsoid(x, (0, 0.55 * bl, 0.75 * bh), (0.25 * bw, 0.2 * bl, 0.3 * bh)))
    bone = sdf.subtract(bone, brain)
    for s in (-1, 1):
        cup = sdf.shell(sdf.ellipsoid(x, (s * ox, oy, oz), (orr, orr, orr)), 0.5 * p.braincase_wall)
        bone = torch.minimum(bone, torch.maximum(cup, braincase))
    return bone


def _shape(p: Individual, lay: _Layout, x: sdf.Coords, texture: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed distance to the skull's bone, bumpy when ``texture``; and to its braincase ellipsoid."""
    bw, bl, bh = lay.braincase
    field, braincase, brain = _vault(p, lay, x)
    parts = _Parts(x, field)
    _cheekbones(parts, p, lay)
    _outgrowths(parts, p, lay)
    _mandible(parts, p, lay)
    bone = _carve(parts.field, p, lay, x, braincase, brain)
    if texture:  # low-frequency bumps of the bone surface
        bone = bone + 0.004 * sdf.lattice_noise(x, 14, p.texture_seed + 1, scale=1.2)
    parts = _Parts(x, bone)
    for s in (-1, 1):  # occipital condyles beside the foramen magnum
        parts.blob((s * 0.26 * bw, -0.95 * bl, -0.5 * bh), (0.045, 0.06, 0.035))
    return parts.field, braincase


def _tissues(bone: torch.Tensor, braincase: torch.Tensor, p: Individual, lay: _Layout, x: sdf.Coords,
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
        wig = 0.012 * sdf.lattice_noise(x, 20, ts + 3, scale=1.2)
        for d in (X + wig, Y - 0.22 * bl + wig, Y + 0.55 * bl - 0.3 * Z + wig):
            density = density * (1 - 0.5 * wall * torch.exp(-(d / 0.005) ** 2))
    return density


def _bone(p: Individual, x: sdf.Coords, voxel: float, texture: bool) -> torch.Tensor:
    """Density of the skull with proportions ``p`` at local coordinates ``x``: bone, then the dense
    petrous bone inside the braincase floor, then the teeth, densest of all."""
    lay = _layout(p)
    bw, bl, bh = lay.braincase
    bone, braincase = _shape(p, lay, x, texture)
    density = _tissues(bone, braincase, p, lay, x, voxel, texture)
    dense = _Parts(x, torch.ones_like(x[0]))
    for s in (-1, 1):
        dense.blob((s * 0.5 * bw, -0.3 * bl, -0.62 * bh), (0.05, 0.075, 0.035))
    density = torch.maximum(density, DENSITY["petrous"] * sdf.occupancy(dense.field, voxel))
    return torch.maximum(density, DENSITY["tooth"] * sdf.occupancy(_teeth(p, lay, x), voxel))


# --------------------------------------------------------------------------- teeth

def _teeth(p: Individual, lay: _Layout, x: sdf.Coords) -> torch.Tensor:
    """Distance field of all teeth: the cheek-tooth rows, incisors, and canines or tusks."""
    teeth = _Parts(x, torch.ones_like(x[0]))
    _cheek_teeth(teeth, p, lay)
    _incisors(teeth, p, lay)
    _canines(teeth, p, lay)
    return teeth.field


def _cheek_teeth(teeth: _Parts, p: Individual, lay: _Layout) -> None:
    """Premolars and molars behind the diastema, upper and lower, each an ellipsoidal crown."""
    y0, y1 = lay.snout_base[0], lay.snout_tip[0]
    mh = p.molar_height
    t0 = 0.16 + p.diastema
    n = int(p.cheek_teeth)
    step = (1.0 - t0) / n
    for k in range(n):
        w, y = lay.arcade(t0 + (k + 0.5) * step)
        length = max(step * (y1 - y0 + 0.12 * p.braincase_length) * 0.48, 0.006)
        zo = lay.occlusal(y)
        for s in (-1, 1):
            for zc in (zo + 0.5 * mh, zo - 0.5 * mh):
                teeth.blob((s * w, y, zc), (0.7 * mh, length, 0.62 * mh))


def _incisors(teeth: _Parts, p: Individual, lay: _Layout) -> None:
    """Three small incisors a side; or, in rodents and lagomorphs, long curved ever-growing ones
    reaching from deep in the jaw."""
    y0, y1 = lay.snout_base[0], lay.snout_tip[0]
    sw1, sh1 = lay.tip_section
    mh, jd = p.molar_height, p.jaw_depth
    if p.incisors > 0 and p.rodent_incisors < 0.5:
        for k in range(3):
            w, y = lay.arcade(0.015 + 0.035 * k)
            zo = lay.occlusal(y)
            for s in (-1, 1):
                if p.upper_incisors > 0.5:
                    teeth.rod([(s * w, y, zo + 0.8 * mh), (s * w, y + 0.01, zo - 0.2 * mh)], [0.008] * 2)
                teeth.rod([(s * w, y - 0.01, zo - 1.2 * mh), (s * w, y, zo + 0.1 * mh)], [0.007] * 2)
    if p.rodent_incisors > 0.5:
        zt, top = lay.occlusal(y1), lay.palate(y1)
        for s in (-1, 1):
            xs = s * max(sw1 * 0.25, 0.012)
            teeth.rod([(xs, y1 - 0.35 * (y1 - y0), top + 0.6 * sh1), (xs, y1 - 0.02, top + 0.2 * sh1),
                       (xs, y1 + 0.03, zt - 0.01)], [0.016, 0.017, 0.014])
            teeth.rod([(xs * 1.4, y0 - 0.02, zt - mh - 0.5 * jd), (xs, y1 - 0.1, zt - mh - 0.3 * jd),
                       (xs, y1 + 0.01, zt - 0.01)], [0.013, 0.014, 0.012])


def _canines(teeth: _Parts, p: Individual, lay: _Layout) -> None:
    """Canines, or tusks: walrus-like (downwards) or pig-like (curving up and out)."""
    w, y = lay.arcade(0.13)
    zo = lay.occlusal(y)
    for s in (-1, 1):
        if p.canine_length > 0:
            c = p.canine_length * (0.35 + 0.65 * (p.rodent_incisors < 0.5))
            teeth.rod([(s * w * 1.1, y, zo + 0.5 * c), (s * w * 1.15, y - 0.01, zo - 0.55 * c)], [0.018, 0.004])
            teeth.rod([(s * w, y + 0.02, zo - 0.5 * c), (s * w * 1.05, y + 0.025, zo + 0.45 * c)], [0.016, 0.004])
        if p.tusk_down > 0:
            t = p.tusk_down
            teeth.rod([(s * w, y, zo + 0.06), (s * w * 1.05, y + 0.01, zo - 0.3 * t), (s * w, y - 0.02, zo - t)],
                      [0.03, 0.026, 0.01])
        if p.tusk_up > 0:
            t = p.tusk_up
            teeth.rod([(s * w, y, zo - 0.06), (s * (w + 0.4 * t), y + 0.02, zo + 0.2 * t),
                       (s * (w + 0.55 * t), y - 0.05, zo + 0.55 * t)], [0.02, 0.016, 0.005])


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


def cranium(p: Individual, local: sdf.Coords, voxel: float) -> torch.Tensor:
    """Skull density of an individual's proportions ``p`` (from ``individual``) at coordinates
    ``local`` of the skull's own frame, anti-aliased over ``voxel`` (local units): lets another
    body place a skull in its head."""
    return _bone(p, local, voxel, texture=True).clamp(0, 1)


def cranium_sphere(p: Individual) -> tuple[tuple[float, float, float], float]:
    """Centre and radius, in the skull's local units, of a sphere that holds the whole skull."""
    centre, scale = _placement(p)
    return centre, scale * sdf.FIT_RADIUS
