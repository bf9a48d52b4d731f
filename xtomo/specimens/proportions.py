"""What a procedural cranium is made of: its tissues' densities, the proportions of its parts, and
the orders and families of mammals that set those proportions.

Lengths are in the skull's local units: the braincase is centred at the origin and a whole skull
is about one unit long; ``xtomo.specimens.crania.skull`` scales it to fit the volume. An order
gives defaults, a family overrides some, and a species then varies around its family's template.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = ["DENSITY", "Proportions", "Individual", "ORDERS", "TYPE_SPECIES", "template", "jittered", "blended"]

#: Linear densities of the tissues (dimensionless, in [0, 1]; bone dominates like the UTCT data). Set so
#: that the bone's density quantiles match the real dry head's (``realdata.head``, chapter 1).
DENSITY = {"cortical": 0.74, "cancellous": 0.34, "tooth": 1.0, "petrous": 0.85}


@dataclass(frozen=True)
class Proportions:
    """The anatomy of a species' cranium; the defaults are the mammal every order starts from.

    Lengths are local units; a "switch" is on above 0.5 and a part whose size is 0 is absent.
    """

    braincase_width: float = 0.24     #: half-width (x) of the braincase, an ellipsoid
    braincase_length: float = 0.30    #: half-length (y) of the braincase
    braincase_height: float = 0.22    #: half-height (z) of the braincase
    braincase_wall: float = 0.022     #: mean thickness of the braincase wall
    braincase_floor: float = 0.6      #: depth of the braincase's flat floor below its centre, times its half-height
    snout_length: float = 0.35        #: length of the rostrum (snout), from its base to its tip
    snout_width: float = 0.55         #: half-width of the rostrum's base, times the braincase's half-width
    snout_height: float = 0.55        #: half-height of the rostrum's base, times the braincase's half-height
    snout_taper: float = 0.55         #: size of the rostrum's tip section over its base section
    snout_drop: float = 0.35          #: depth of the rostrum's base below the braincase's centre, times its half-height
    snout_wall: float = 0.014         #: thickness of the rostrum's wall (and of the bullae's, times 0.6)
    orbit_size: float = 0.42          #: radius of the orbits, times the braincase's half-height
    orbits_forward: float = 0.0       #: where the orbits sit: 0 beside the snout (lateral), 1 forward-facing
    postorbital_bar: float = 0.0      #: switch: a bar of bone closing each orbit behind
    brow_ridge: float = 0.0           #: radius of the supra-orbital torus (great apes)
    zygomatic_span: float = 0.30      #: how far the zygomatic arches reach beyond the braincase, times its half-width
    zygomatic_radius: float = 0.022   #: radius of the zygomatic arches
    sagittal_crest: float = 0.0       #: height of the sagittal crest above the braincase
    nuchal_crest: float = 0.02        #: size of the nuchal ridge at the back of the braincase
    incisors: float = 0.06            #: above 0: a row of small incisors (animals without rodent incisors)
    canine_length: float = 0.10       #: length of the canines
    rodent_incisors: float = 0.0      #: switch: long, curved, ever-growing incisors (rodents, lagomorphs)
    upper_incisors: float = 1.0       #: switch: incisors in the upper jaw too (ruminants lack them)
    cheek_teeth: int = 6              #: premolars and molars in each row (a count)
    molar_height: float = 0.030       #: crown height of the cheek teeth
    diastema: float = 0.05            #: toothless gap before the cheek teeth, a fraction of the dental arcade
    jaw_depth: float = 0.07           #: depth of the mandible
    bulla_radius: float = 0.05        #: radius of the auditory bullae
    horn_length: float = 0.0          #: length of the horn cores (bovids)
    tusk_down: float = 0.0            #: length of tusks pointing down (walrus)
    tusk_up: float = 0.0              #: length of tusks curving up and out (pigs)
    blowhole: float = 0.0             #: switch: a blowhole through the top of the skull (whales)
    cortical_density: float = DENSITY["cortical"]  #: density of cortical bone
    base_drop: float = 0.0            #: how far the cranial floor falls behind, times the braincase's half-height
    orbit_drop: float = 0.0           #: how far forward-facing orbits sit lower, times the braincase half-height


@dataclass(frozen=True)
class Individual(Proportions):
    """The proportions of one individual, with what sets it apart from its species' mean."""

    size: float = 1.0                 #: its size, relative to the species' mean
    male: bool = True                 #: males are larger, more crested, with longer canines
    texture_seed: int = 0             #: seed of its bone's fine texture
    mandible: bool = True             #: its lower jaw and lower teeth are there (a dry cranium, or a CT cut
                                      #: above the chin, has none)


# counts, switches and the tissue's density, which a species or individual inherits unjittered
_FIXED = {"cheek_teeth", "rodent_incisors", "upper_incisors", "orbits_forward", "postorbital_bar", "blowhole",
          "cortical_density"}

ORDERS: dict[str, dict] = {
    "Carnivora": dict(
        base=dict(snout_length=0.32, zygomatic_span=0.45, sagittal_crest=0.05, canine_length=0.13,
                  bulla_radius=0.07, nuchal_crest=0.05),
        families={
            "Canidae": dict(snout_length=0.45, snout_taper=0.5, sagittal_crest=0.04),
            "Felidae": dict(snout_length=0.16, braincase_length=0.27, braincase_height=0.23, canine_length=0.15,
                            zygomatic_span=0.55, snout_taper=0.75),
            "Ursidae": dict(snout_length=0.34, braincase_width=0.26, sagittal_crest=0.07, molar_height=0.04,
                            cheek_teeth=7),
            "Mustelidae": dict(braincase_height=0.16, braincase_length=0.34, snout_length=0.18,
                               zygomatic_span=0.30, snout_taper=0.7),
            "Odobenidae": dict(snout_length=0.16, snout_width=0.8, snout_taper=0.9, tusk_down=0.42,
                               canine_length=0.0, zygomatic_span=0.25, sagittal_crest=0.0, orbit_size=0.36,
                               cheek_teeth=4),
        }),
    "Primates": dict(
        base=dict(braincase_width=0.31, braincase_length=0.36, braincase_height=0.30, braincase_wall=0.027,
                  braincase_floor=0.5, base_drop=0.4,
                  snout_length=0.08,
                  snout_width=0.5, snout_height=0.65, snout_taper=0.8, snout_drop=0.55, orbits_forward=1.0,
                  postorbital_bar=1.0, orbit_size=0.33, zygomatic_span=0.12, sagittal_crest=0.0,
                  nuchal_crest=0.0, canine_length=0.05, cheek_teeth=5, molar_height=0.034, bulla_radius=0.0,
                  incisors=0.05, jaw_depth=0.10),
        families={
            # a human: a globular braincase (cranial index ~0.78) on a flexed base, the orbits under the
            # frontal lobes and a tall face under them (fitted to the real head: benchmarks/twin_fit.py); the
            # floor's two depths set by hand in crania v7, after sections of both real heads: the anterior
            # fossa over the orbits, the middle one almost at the braincase's bottom
            "Hominidae": dict(braincase_width=0.28, braincase_height=0.28, braincase_floor=0.45, base_drop=0.55,
                              snout_length=0.06, snout_width=0.65, snout_taper=0.48, jaw_depth=0.13,
                              brow_ridge=0.028, orbit_drop=0.45),
            "Pongidae": dict(braincase_width=0.27, braincase_length=0.31, braincase_height=0.25,
                             snout_length=0.22, brow_ridge=0.04, sagittal_crest=0.06, canine_length=0.11,
                             snout_drop=0.6),
            "Cercopithecidae": dict(braincase_width=0.25, braincase_length=0.29, braincase_height=0.24,
                                    snout_length=0.24, canine_length=0.10, snout_drop=0.45, brow_ridge=0.02),
            "Lemuridae": dict(braincase_width=0.22, braincase_length=0.27, braincase_height=0.2,
                              snout_length=0.28, orbits_forward=0.55, snout_taper=0.55, snout_drop=0.35,
                              orbit_size=0.42, zygomatic_span=0.25),
        }),
    "Rodentia": dict(
        base=dict(rodent_incisors=1.0, canine_length=0.0, diastema=0.42, cheek_teeth=4, molar_height=0.026,
                  braincase_height=0.18, snout_length=0.32, snout_taper=0.7, zygomatic_span=0.38,
                  bulla_radius=0.08, jaw_depth=0.09, snout_drop=0.25),
        families={
            "Muridae": dict(snout_length=0.38, braincase_height=0.17, snout_taper=0.6, orbit_size=0.45),
            "Sciuridae": dict(snout_length=0.26, braincase_height=0.21, orbit_size=0.5, snout_taper=0.75),
            "Caviidae": dict(snout_length=0.30, braincase_width=0.27, braincase_height=0.19,
                             zygomatic_span=0.5, molar_height=0.032),
        }),
    "Lagomorpha": dict(
        base=dict(rodent_incisors=1.0, canine_length=0.0, diastema=0.40, cheek_teeth=5, molar_height=0.026,
                  snout_length=0.36, braincase_height=0.20, orbit_size=0.52, zygomatic_span=0.30,
                  bulla_radius=0.07, snout_taper=0.75, snout_drop=0.15, jaw_depth=0.10),
        families={"Leporidae": dict(),
                  "Ochotonidae": dict(snout_length=0.22, orbit_size=0.42, braincase_height=0.17)}),
    "Artiodactyla": dict(
        base=dict(snout_length=0.62, snout_taper=0.55, snout_drop=0.25, orbit_size=0.45, postorbital_bar=1.0,
                  orbits_forward=0.1, zygomatic_span=0.25, upper_incisors=0.0, canine_length=0.0,
                  diastema=0.28, cheek_teeth=6, molar_height=0.036, jaw_depth=0.11, bulla_radius=0.05,
                  braincase_width=0.22, braincase_length=0.27, braincase_height=0.2),
        families={
            "Bovidae": dict(horn_length=0.34),
            "Cervidae": dict(horn_length=0.0, snout_length=0.58),
            "Suidae": dict(snout_length=0.58, snout_taper=0.7, upper_incisors=1.0, canine_length=0.0,
                           tusk_up=0.22, postorbital_bar=0.0, sagittal_crest=0.0, nuchal_crest=0.09,
                           diastema=0.1),
            "Camelidae": dict(snout_length=0.52, canine_length=0.06, upper_incisors=0.0, diastema=0.2),
        }),
    "Perissodactyla": dict(
        base=dict(snout_length=0.78, snout_taper=0.65, snout_drop=0.2, orbit_size=0.42, postorbital_bar=1.0,
                  zygomatic_span=0.22, canine_length=0.04, diastema=0.3, cheek_teeth=6, molar_height=0.04,
                  jaw_depth=0.13, braincase_width=0.21, braincase_length=0.25, braincase_height=0.19,
                  nuchal_crest=0.06),
        families={"Equidae": dict(),
                  "Tapiridae": dict(snout_length=0.45, snout_height=0.7, postorbital_bar=0.0,
                                    sagittal_crest=0.06)}),
    "Diprotodontia": dict(
        base=dict(snout_length=0.30, snout_taper=0.65, canine_length=0.0, upper_incisors=1.0, incisors=0.09,
                  diastema=0.2, cheek_teeth=5, zygomatic_span=0.40, bulla_radius=0.04, jaw_depth=0.1),
        families={
            "Macropodidae": dict(snout_length=0.45, snout_taper=0.6, braincase_height=0.2),
            "Phascolarctidae": dict(snout_length=0.14, snout_width=0.75, snout_height=0.75, snout_taper=0.85,
                                    braincase_width=0.27, zygomatic_span=0.45),
        }),
    "Cetacea": dict(
        base=dict(snout_length=0.85, snout_taper=0.3, snout_width=0.5, snout_height=0.38, snout_drop=0.2,
                  braincase_width=0.28, braincase_length=0.22, braincase_height=0.26, zygomatic_span=0.05,
                  zygomatic_radius=0.012, canine_length=0.0, incisors=0.0, rodent_incisors=0.0,
                  upper_incisors=0.0, cheek_teeth=18, molar_height=0.02, diastema=0.0, jaw_depth=0.06,
                  blowhole=1.0, orbit_size=0.38, nuchal_crest=0.0, bulla_radius=0.07),
        families={"Delphinidae": dict()}),
}

#: Families whose first species is a named one, (name, spread): the family's template itself, unmixed with
#: other families and varying by the spread alone. The human template was fitted to the book's real head
#: (``benchmarks/twin_fit.py``), and the jitter every other species gets would lose most of that fit.
TYPE_SPECIES: dict[str, tuple[str, float]] = {"Hominidae": ("Homo sapiens", 0.04)}


def template(order: str, family: str) -> Proportions:
    """The mean proportions of a family: its order's defaults with the family's own on top."""
    spec = ORDERS[order]
    return Proportions(**{**spec["base"], **spec["families"][family]})


def jittered(p: Proportions, rng: np.random.Generator, sigma: float) -> Proportions:
    """``p`` with every size jittered log-normally by ``sigma``, in field order; counts, switches
    and absent parts are kept."""
    values = {}
    for f in fields(p):
        value = getattr(p, f.name)
        if f.name in _FIXED or value == 0:
            values[f.name] = value
        else:
            values[f.name] = float(value * math.exp(rng.normal(0.0, sigma)))
    return replace(p, **values)


def blended(p: Proportions, q: Proportions, weight: float) -> Proportions:
    """``p`` moved ``weight`` of the way towards ``q``: sizes present in both geometrically; a part
    ``q`` lacks shrinks, one ``p`` lacks stays absent (no horns on a pika); counts, switches and
    densities stay ``p``'s."""
    values = {}
    for f in fields(p):
        a, b = getattr(p, f.name), getattr(q, f.name)
        if f.name in _FIXED or a == 0:
            values[f.name] = a
        elif b > 0:
            values[f.name] = float(a ** (1 - weight) * b ** weight)
        else:
            values[f.name] = float((1 - weight) * a)
    return replace(p, **values)
