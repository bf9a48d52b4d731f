"""Bilateral symmetry at inference: our answers made symmetric about the skull's mid-sagittal plane, against the
even spread, on both real heads and on held-out species.

    python benchmarks/symmetry.py [--species 4] [--views 8] [--model NAME=CHECKPOINT ...] [--write [--section S]]

Each network's coarse answer is averaged with its mirror image before fusion (``inference.reconstruct``'s
``symmetry``): not at all (the book's default), about a plane it estimates itself (``estimate``: what a reader's
radiograph of unknown direction allows), or about the plane of the view's known direction (``view``); with
"leveled", each x-ray is first turned in its plane by the one of ``inference.LEVEL_TURNS`` whose answer is most
symmetric about the known plane (``level``). The real heads are x-rayed by both acquisitions. ``--write`` replaces the
``symmetry`` section of RESULTS.md (``--section`` names another).
"""
from __future__ import annotations

import sys

from _common import even_section, network_study

from xtomo.data import realdata
from xtomo.evaluation import realcase
from xtomo.evaluation.scoring import METHODS
from xtomo.learning import train
from xtomo.profiles import get_profile

#: (symmetry, level) -> label, as ``realcase.evaluate_volume`` takes them
PLANES = {(None, False): "none", ("estimate", False): "estimated plane", ("view", False): "plane of the known view",
          ("view", True): "plane of the known view, leveled"}


def rows(models: dict, species: int, views: int) -> list[dict]:
    """One row per network, case, acquisition and symmetry: ours over the even spread, pooled over a case's skulls."""
    p = get_profile("quick")
    _, val_set = train.train_val_sets(p)
    held_out = sorted(set(val_set.specimens))[:species]
    cases = {"real head": ([realdata.head(p.volume_size)], realcase.ACQUISITIONS),
             "second real head (blind)": ([realdata.second_head(p.volume_size)], realcase.ACQUISITIONS),
             f"{species} held-out species": ([val_set.bank.volume(k) for k in held_out], ("ideal",))}
    out = []
    for name, model in models.items():
        for case, (volumes, acquisitions) in cases.items():
            for acquisition in acquisitions:
                for (symmetry, level), label in PLANES.items():
                    found = []
                    for i, v in enumerate(volumes):
                        scored, _ = realcase.evaluate_volume(v, model, p, views=views, seed=p.seed, name=f"{case} {i}",
                                                             acquisition=acquisition, symmetry=symmetry, level=level)
                        found += scored
                    out += [dict(r, network=name, case=case, symmetry=label) for r in realcase.against_even(found)
                            if r["model"] == METHODS["ours"]]
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    return even_section("Bilateral symmetry at inference: ours over the even spread (`quick`)",
                        "Symmetry: the coarse answer averaged with its mirror image about the plane named, then "
                        "fused with the x-ray; leveled: the x-ray first turned in its plane (up to 20 degrees) "
                        "to make that answer most symmetric.", found,
                        {"network": "network", "case": "case", "acquisition": "acquisition", "symmetry": "symmetry"},
                        command, busy)


def main(argv=None) -> int:
    return network_study(__file__, __doc__, "symmetry", rows, table, ("species", 4, "held-out species"), argv)


if __name__ == "__main__":
    sys.exit(main())
