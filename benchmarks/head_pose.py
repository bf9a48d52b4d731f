"""How a head's pose moves the score: the real heads and held-out species turned before their x-rays are taken.

    python benchmarks/head_pose.py [--species 3] [--views 8] [--model NAME=CHECKPOINT ...] [--write [--section S]]

The procedural crania are all made in one pose (the cube's z up, y forward); a real head lies in a
scanner, or before a film, as it lies. The x-ray's view directions are drawn over the whole hemisphere,
but a view never rolls about its own axis, so a head pitched or rolled in its CT shows the network a
turned image it never trained on. Each case is turned about the cube's centre by one pitch, roll or yaw
(``augment.truncated`` with ``turns``, the resampling training uses, which fits it into the cube again
as ``io.prepare_volume`` does), then scored against the even spread (``realcase.evaluate_volume``, ideal
x-rays, seeded views). A network that depends on the canonical pose scores best in it and worse the further
a head is turned; the real heads' best angles say how their poses differ from the generator's. ``--write``
replaces the ``head-pose`` section of RESULTS.md (``--section`` names another).
"""
from __future__ import annotations

import math
import sys

import torch
from _common import even_section, network_study

from xtomo.data import realdata
from xtomo.data.augment import truncated
from xtomo.evaluation import realcase
from xtomo.evaluation.scoring import METHODS
from xtomo.learning import train
from xtomo.profiles import get_profile

#: the turns tried on the real heads, by name: (pitch, roll, yaw) in degrees
TURNS = {"none": (0, 0, 0), "pitch -20": (-20, 0, 0), "pitch -10": (-10, 0, 0), "pitch +10": (10, 0, 0),
         "pitch +20": (20, 0, 0), "roll -10": (0, -10, 0), "roll +10": (0, 10, 0), "yaw +15": (0, 0, 15)}
SPECIES_TURNS = ("none", "pitch -20", "pitch +20")  #: ... and on the held-out species


def turned(volume: torch.Tensor, degrees: tuple[float, float, float]) -> torch.Tensor:
    """``volume`` ``[S, S, S]`` turned by (pitch, roll, yaw) degrees about the cube's centre, fitted again."""
    turns = torch.tensor([[math.radians(a) for a in degrees]])
    return truncated(volume[None], torch.zeros(1), torch.zeros(1), None, turns)[0]


def rows(models: dict, species: int, views: int) -> list[dict]:
    """One row per network, case and turn: ratios of ours to the even spread, pooled over a case's skulls."""
    p = get_profile("quick")
    _, val_set = train.train_val_sets(p)
    held_out = sorted(set(val_set.specimens))[:species]
    cases = {"real head": ([realdata.head(p.volume_size)], TURNS),
             "second real head (blind)": ([realdata.second_head(p.volume_size)], TURNS),
             f"{species} held-out species": ([val_set.bank.volume(k) for k in held_out], SPECIES_TURNS)}
    out = []
    for name, model in models.items():
        for case, (volumes, turns) in cases.items():
            for turn in turns:
                found = []
                for i, v in enumerate(volumes):
                    scored, _ = realcase.evaluate_volume(turned(v, TURNS[turn]), model, p, views=views, seed=p.seed,
                                                         name=f"{case} {i}")
                    found += scored
                out += [dict(r, network=name, case=case, turn=turn) for r in realcase.against_even(found)
                        if r["model"] == METHODS["ours"]]
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    return even_section("Head pose: the real heads and held-out species turned before their x-rays (`quick`)",
                        "Turns in degrees about the cube's centre: pitch about x (positive lifts the face), roll "
                        "about y, yaw about z.", found, {"network": "network", "case": "case", "turn": "turn"},
                        command, busy)


def main(argv=None) -> int:
    return network_study(__file__, __doc__, "head-pose", rows, table, ("species", 3, "held-out species turned"), argv)


if __name__ == "__main__":
    sys.exit(main())
