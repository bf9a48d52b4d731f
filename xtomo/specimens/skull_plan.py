"""Where a procedural skull's parts go, and how they are put together: the landmarks that its
proportions set (``Layout``, ``skull_layout``), a distance field assembled part by part
(``Parts``), and the teeth (``teeth``). ``xtomo.specimens.crania`` builds the bone on them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from xtomo.specimens import sdf
from xtomo.specimens.proportions import Individual

__all__ = ["Parts", "Layout", "skull_layout", "teeth"]

class Parts:
    """A distance field being assembled; small parts are evaluated only inside their boxes (padded
    by ``pad`` where the grid is warped, since the boxes are found on the grid's first rows)."""

    def __init__(self, x: sdf.Coords, field: torch.Tensor, pad: float = 0.0):
        self.x, self.field, self.pad = x, field, pad

    def _box(self, lo, hi):
        return [c - self.pad for c in lo], [c + self.pad for c in hi]

    def rod(self, points, radii, squash=(1.0, 1.0, 1.0), k: float = 0.0):
        """Union a bent, tapered rod (a polyline of capsules), blended over ``k``."""
        lo, hi = self._box(*sdf.capsule_box(points, max(radii), squash))
        self.field = sdf.add_part(self.field, self.x, lo, hi,
                                  lambda q: sdf.polyline(q, points, radii, squash), k)

    def blob(self, centre, radii, k: float = 0.0, hollow: float = 0.0, keep_above=None):
        """Union an ellipsoid (a shell of ``hollow`` thickness if given; only z > keep_above)."""
        lo, hi = self._box(*sdf.ellipsoid_box(centre, [r + hollow for r in radii]))

        def part(q):
            d = sdf.ellipsoid(q, centre, radii)
            d = sdf.shell(d, hollow) if hollow else d
            return d if keep_above is None else torch.maximum(d, keep_above - q[2])

        if keep_above is not None:
            lo[2] = max(lo[2], keep_above - self.pad)
        self.field = sdf.add_part(self.field, self.x, lo, hi, part, k)


@dataclass(frozen=True)
class Layout:
    """Landmarks that the proportions put in place (local units), shared by the skull's parts."""

    braincase: tuple[float, float, float]     # half-extents (x, y, z) of the braincase
    snout_base: tuple[float, float]           # (y, z) of the rostrum's base
    snout_tip: tuple[float, float]            # (y, z) of the rostrum's tip
    base_section: tuple[float, float]         # half-width and half-height of the rostrum at its base
    tip_section: tuple[float, float]          # ... and at its tip
    orbit: tuple[float, float, float, float]  # centre (x, y, z) of the orbit at +x, and its radius
    arch: tuple[float, float]                 # half-span of the zygomatic arches, and x of their roots
    molar: float                              # crown height of the cheek teeth
    floor: float                              # z of the cranial floor in front (the anterior cranial fossa)
    floor_drop: float = 0.0                   # how far the floor falls behind (the posterior cranial fossa)

    def palate(self, y):
        """Height of the palate (the rostrum's flat floor) at ``y``, a float or a tensor."""
        (y0, zs), (y1, z1), sh0, sh1 = self.snout_base, self.snout_tip, self.base_section[1], self.tip_section[1]
        t = (y - y0) / max(y1 - y0, 1e-6)
        t = t.clamp(0, 1) if torch.is_tensor(t) else min(max(t, 0.0), 1.0)
        return (zs - 0.78 * sh0) + t * ((z1 - 0.78 * sh1) - (zs - 0.78 * sh0))

    # the flexed floor falls in two steps: most of it at the sphenoid's ridge, from the anterior to the middle
    # cranial fossa (0.3 to 0.1 of the half-length), the rest over the petrous ridges into the posterior fossa
    # (-0.1 to -0.5); (start, end, share of floor_drop)
    _STEPS = ((0.3, 0.1, 0.7), (-0.1, -0.5, 0.3))

    def _fall(self, y, derivative: bool = False):
        """The share of ``floor_drop`` fallen at ``y`` (0 in front, 1 behind), or its derivative d/dy."""
        bl, out = self.braincase[1], 0.0
        for start, end, share in self._STEPS:
            length = (start - end) * bl
            t = (start * bl - y) / length
            t = t.clamp(0, 1) if torch.is_tensor(t) else min(max(t, 0.0), 1.0)
            out = out + share * (6 * t * (1 - t) / -length if derivative else t * t * (3 - 2 * t))
        return out

    def floor_at(self, y):
        """Height of the cranial floor at ``y`` (a float or a tensor): level in front (the anterior cranial
        fossa), falling by ``floor_drop`` behind in two smooth steps (``_STEPS``), so a flexed cranial base
        holds the temporal lobes and the cerebellum below the level of the orbits."""
        return self.floor - self.floor_drop * self._fall(y)

    def floor_slope(self, y):
        """The cranial floor's slope dz/dy at ``y``: how steeply it falls there (``floor_at``)."""
        return -self.floor_drop * self._fall(y, derivative=True)

    def bottom_at(self, x, y):
        """Height of the braincase's bottom at ``(x, y)`` (floats): the cranial floor, or the braincase
        ellipsoid's own lower wall where the floor falls below it (a deep posterior fossa)."""
        bw, bl, bh = self.braincase
        return max(self.floor_at(y), -bh * math.sqrt(max(1 - (x / bw) ** 2 - (y / bl) ** 2, 0.0)))

    def foramen(self) -> tuple[tuple[float, float], tuple[float, float, float]]:
        """(y, z) and radii of the foramen magnum: at the back of a level cranial base, moved under the
        braincase and opening downwards, through its bottom, as the floor falls behind (an upright
        primate's head sits on its spine from below)."""
        bw, bl, bh = self.braincase
        w = min(1.0, self.floor_drop / (0.4 * bh))
        y = -0.92 * bl + 0.5 * w * bl
        return (y, (1 - w) * -0.42 * bh + w * self.bottom_at(0.0, y)), (0.24 * bw, (0.3 - 0.12 * w) * bw, 0.22 * bw)

    def occlusal(self, y):
        """Height of the occlusal plane, where upper and lower teeth meet, at ``y``."""
        return self.palate(y) - self.molar

    def arcade(self, t: float) -> tuple[float, float]:
        """Half-width and y of the dental arcade at ``t`` (0 front, 1 back): narrow in front, wide behind."""
        y0, y1, bl = self.snout_base[0], self.snout_tip[0], self.braincase[1]
        (sw0, _), (sw1, _) = self.base_section, self.tip_section
        y = y1 - t * (y1 - (y0 - 0.12 * bl))
        return sw1 * 0.45 + (sw0 * 0.78 - sw1 * 0.45) * math.sqrt(t), y


def skull_layout(p: Individual) -> Layout:
    """Where the rostrum, orbits and arches go: orbits between lateral (carnivores, ungulates) and
    forward-facing (primates) positions."""
    bw, bl, bh = p.braincase_width, p.braincase_length, p.braincase_height
    y0, zs = bl * 0.55, -bh * p.snout_drop
    sw0, sh0 = bw * p.snout_width, bh * p.snout_height
    orr = p.orbit_size * bh
    f = p.orbits_forward
    ox = (1 - f) * (sw0 + 0.35 * orr) + f * (0.48 * bw)
    oy = (1 - f) * (y0 + 0.15 * orr) + f * (bl * 0.92)
    oz = (1 - f) * (zs + 0.55 * sh0) + f * (0.02 - p.orbit_drop) * bh
    # a face under forward-facing orbits reaches at least as far forward as their rims
    y1 = max(y0 + p.snout_length, f * (oy + 0.4 * orr))
    z1 = zs - 0.25 * sh0 * (1 - p.snout_taper)
    sh1, sw1 = sh0 * p.snout_taper, sw0 * p.snout_taper
    arch = (bw * (1 + p.zygomatic_span), max(sw0, ox) * 0.95)
    return Layout((bw, bl, bh), (y0, zs), (y1, z1), (sw0, sh0), (sw1, sh1), (ox, oy, oz, orr), arch,
                   p.molar_height, -p.braincase_floor * bh, p.base_drop * bh)


def teeth(p: Individual, lay: Layout, x: sdf.Coords, pad: float = 0.0) -> torch.Tensor:
    """Distance field of all teeth: the cheek-tooth rows, incisors, and canines or tusks (the lower ones
    only where the individual has its mandible)."""
    field = Parts(x, torch.ones_like(x[0]), pad)  # pad: the grid may be warped (``crania``)
    _cheek_teeth(field, p, lay)
    _incisors(field, p, lay)
    _canines(field, p, lay)
    return field.field


def _cheek_teeth(teeth: Parts, p: Individual, lay: Layout) -> None:
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
            for up in (1, -1) if p.mandible else (1,):  # a crown, and its root reaching into the jaw's alveolus
                zc = zo + up * 0.5 * mh
                teeth.blob((s * w, y, zc), (0.7 * mh, length, 0.62 * mh))
                teeth.rod([(s * w, y, zc + up * 0.4 * mh), (s * w * 1.03, y, zc + up * 1.9 * mh)],
                          [0.4 * mh, 0.12 * mh])


def _incisors(teeth: Parts, p: Individual, lay: Layout) -> None:
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
                if p.mandible:
                    teeth.rod([(s * w, y - 0.01, zo - 1.2 * mh), (s * w, y, zo + 0.1 * mh)], [0.007] * 2)
    if p.rodent_incisors > 0.5:
        zt, top = lay.occlusal(y1), lay.palate(y1)
        for s in (-1, 1):
            xs = s * max(sw1 * 0.25, 0.012)
            teeth.rod([(xs, y1 - 0.35 * (y1 - y0), top + 0.6 * sh1), (xs, y1 - 0.02, top + 0.2 * sh1),
                       (xs, y1 + 0.03, zt - 0.01)], [0.016, 0.017, 0.014])
            if p.mandible:
                teeth.rod([(xs * 1.4, y0 - 0.02, zt - mh - 0.5 * jd), (xs, y1 - 0.1, zt - mh - 0.3 * jd),
                           (xs, y1 + 0.01, zt - 0.01)], [0.013, 0.014, 0.012])


def _canines(teeth: Parts, p: Individual, lay: Layout) -> None:
    """Canines, or tusks: walrus-like (downwards) or pig-like (curving up and out)."""
    w, y = lay.arcade(0.13)
    zo = lay.occlusal(y)
    for s in (-1, 1):
        if p.canine_length > 0:
            c = p.canine_length * (0.35 + 0.65 * (p.rodent_incisors < 0.5))
            teeth.rod([(s * w * 1.1, y, zo + 0.5 * c), (s * w * 1.15, y - 0.01, zo - 0.55 * c)], [0.018, 0.004])
            if p.mandible:
                teeth.rod([(s * w, y + 0.02, zo - 0.5 * c), (s * w * 1.05, y + 0.025, zo + 0.45 * c)],
                          [0.016, 0.004])
        if p.tusk_down > 0:
            t = p.tusk_down
            teeth.rod([(s * w, y, zo + 0.06), (s * w * 1.05, y + 0.01, zo - 0.3 * t), (s * w, y - 0.02, zo - t)],
                      [0.03, 0.026, 0.01])
        if p.tusk_up > 0:
            t = p.tusk_up
            teeth.rod([(s * w, y, zo - 0.06), (s * (w + 0.4 * t), y + 0.02, zo + 0.2 * t),
                       (s * (w + 0.55 * t), y - 0.05, zo + 0.55 * t)], [0.02, 0.016, 0.005])
