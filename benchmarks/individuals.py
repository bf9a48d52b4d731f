"""Does a network learn the skulls it trained on, or skulls? New individuals of its species beside the real heads.

    python benchmarks/individuals.py [--species 8] [--views 8] [--model NAME=CKPT ...] [--write]

The paper's collection, and the book's, has one specimen per species, so a network can learn those
specimens rather than what a skull of their kind looks like. This scores each network of ours against
the even spread (``xtomo.evaluation.realcase``, ideal x-rays) on individual 0 of training species (what
it saw), on new individuals of the same species (``crania.individual``: sex, size and proportions
jittered; individuals 20 and up, which no ``--individuals`` run below 20 has seen), on held-out species,
on new procedural humans (individuals 20 and up, through ``io.prepare_volume`` as a reader's CT), and on
both real heads (ideal and physical x-rays). The gap between the first two cases is what the network
memorised of its specimens. Networks: the shipped model and every ``--model NAME=CHECKPOINT``.
``--write`` replaces the ``individuals`` section of RESULTS.md (``--section`` names another).
"""
from __future__ import annotations

import sys

from _common import even_section, network_study
from real_skull import new_humans, scored_views

from xtomo.data import realdata
from xtomo.data.datasets import TensorBank
from xtomo.evaluation import realcase
from xtomo.learning import train
from xtomo.profiles import get_profile
from xtomo.specimens import crania

UNSEEN = 20  #: the first individual index the scored new individuals take


def skull_sets(species: int, p) -> dict[str, tuple[object, list[int]]]:
    """The procedural cases, by name: (bank, specimens)."""
    train_set, val_set = train.train_val_sets(p)
    seen = sorted(set(train_set.specimens))
    picked = seen[:: max(1, len(seen) // species)][:species]   # spread over the catalogue's orders
    catalogue = train_set.bank.species
    fresh = TensorBank([crania.skull(catalogue[k], p.volume_size, individual_index=UNSEEN + i, seed=p.seed)
                        for i, k in enumerate(picked)], [f"{catalogue[k].name}, individual {UNSEEN + i}"
                                                             for i, k in enumerate(picked)])
    return {f"{len(picked)} training species, individual 0 (seen)": (train_set.bank, picked),
            f"{len(picked)} training species, new individuals": (fresh, list(range(len(picked)))),
            f"{species} held-out species": (val_set.bank, sorted(set(val_set.specimens))[:species]),
            f"{species} new procedural humans": (new_humans(species, p, first=UNSEEN), list(range(species)))}


def rows(models: dict, species: int, views: int) -> list[dict]:
    """One row per network, case and acquisition: ratios of ours to the even spread."""
    p = get_profile("quick")
    sets = skull_sets(species, p)
    heads = {"real head": realdata.head(p.volume_size), "second real head (blind)": realdata.second_head(p.volume_size)}
    out = []
    for name, model in models.items():
        for case, (bank, specimens) in sets.items():
            pooled = realcase.against_even(scored_views(bank, specimens, model, {}, p, views))
            out += [dict(r, network=name, case=case) for r in pooled]
        for case, head in heads.items():
            for acquisition in realcase.ACQUISITIONS:
                found, _ = realcase.evaluate_volume(head, model, p, views=views, seed=p.seed, name=case,
                                                    acquisition=acquisition)
                out += [dict(r, network=name, case=case) for r in realcase.against_even(found)]
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    return even_section("Individuals: new skulls of the training species beside the real heads (`quick`)", "", found,
                        {"network": "network", "case": "case", "acquisition": "acquisition"}, command, busy)


def main(argv=None) -> int:
    return network_study(__file__, __doc__, "individuals", rows, table, ("species", 8, "species per procedural case"),
                         argv)


if __name__ == "__main__":
    sys.exit(main())
