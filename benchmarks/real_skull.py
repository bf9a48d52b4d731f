"""Is the real head harder than the held-out species? Each network of ours against the even spread.

    python benchmarks/real_skull.py [--species 6] [--views 8] [--write]

The even spread (each pixel's line integral spread evenly along its ray, ``classical.extrude``)
re-projects to the x-ray exactly, as our fused output does, and knows nothing of depth. For every
network of ours that the `quick` artifacts hold (chapter 3's L2 run, its surface run, the shipped
model) this scores, by ``xtomo.evaluation.realcase``, the ratio of our error to the even spread's
(L2, RMSE, DSSIM) on seeded views of the first held-out procedural species (ideal x-rays), of the
procedural Hominidae the networks trained on (the shape closest to a human skull), of new individuals
of the procedural *Homo sapiens* (training saw its first individual alone; these come through
``io.prepare_volume`` as a reader's CT does: the nearest this repository comes to human skulls it has
not seen, since the human template was fitted to the real head), and of the real
head (ideal and physical x-rays; as its file gives it and as CT numbers through ``io.HU_WINDOW``, the
path a reader's CT takes), and of the second real head (``realdata.second_head``, a clinical CT the
generator was never fitted to), with the one-sided paired p of "ours has the smaller L2".
The gap between the two rows of a network is what the procedural crania do not teach it about a
real skull. ``--write`` replaces the ``real-skull`` section of RESULTS.md.
"""
from __future__ import annotations

import sys

import torch
from _common import (
    benchmark_parser,
    busy_cores,
    command_line,
    even_section,
    publish,
)

import xtomo
from xtomo.data import io, realdata
from xtomo.data.datasets import TensorBank
from xtomo.evaluation import realcase, scoring
from xtomo.learning import train
from xtomo.profiles import get_profile
from xtomo.specimens import crania
from xtomo.specimens.proportions import TYPE_SPECIES


def scored_views(bank, specimens: list[int], model, others: dict, p, views: int) -> list[dict]:
    """The rows of ``realcase.evaluate_volume`` for each of a bank's ``specimens`` (named by the bank)."""
    rows = []
    for k in specimens:
        found, _ = realcase.evaluate_volume(bank.volume(k), model, p, views=views, seed=p.seed, others=others,
                                            name=bank.name(k))
        rows += found
    return rows


def human_individuals(n: int, p, first: int = 1) -> dict[str, torch.Tensor]:
    """Individuals ``first``..``first + n - 1`` of the catalogue's *Homo sapiens* (the shipped model's first
    runs saw individual 0 alone), by name, drawn at twice the profile's volume size: what
    ``io.prepare_volume`` brings to it as a reader's CT."""
    human = next(s for s in crania.catalog(p.n_species, seed=p.seed) if s.name == TYPE_SPECIES["Hominidae"][0])
    return {f"{human.name}, individual {i}": crania.skull(human, 2 * p.volume_size, individual_index=i, seed=p.seed)
            for i in range(first, first + n)}


def new_humans(n: int, p, first: int = 1) -> TensorBank:
    """``human_individuals`` brought to the profile's size by ``io.prepare_volume``, the path a reader's CT takes."""
    found = human_individuals(n, p, first)
    return TensorBank([io.prepare_volume(v, p.volume_size, source=k) for k, v in found.items()], list(found))


def cases(species: int, views: int, model=None, others: dict | None = None) -> list[dict]:
    """The rows of ``realcase.against_even`` for the held-out species, the training Hominidae, new procedural
    humans and the two real heads, of ``model`` (default: chapter 3's) and ``others`` (default: every other
    network of ours)."""
    p = get_profile("quick")
    model = model if model is not None else xtomo.load_model(p.name)
    others = others if others is not None else scoring.other_networks(p)[0]
    train_set, val_set = train.train_val_sets(p)
    held_out = sorted(set(val_set.specimens))[:species]
    rows = scored_views(val_set.bank, held_out, model, others, p, views)
    out = [dict(case=f"{len(held_out)} held-out species", **r) for r in realcase.against_even(rows)]
    # the procedural skulls most like a human's, seen in training: how hard the shape alone is
    hominids = [k for k in sorted(set(train_set.specimens)) if train_set.bank.species[k].family == "Hominidae"]
    rows = scored_views(train_set.bank, hominids[:species], model, others, p, views)
    out += [dict(case=f"{len(hominids[:species])} training Hominidae", **r) for r in realcase.against_even(rows)]
    rows = scored_views(new_humans(species, p), list(range(species)), model, others, p, views)
    out += [dict(case=f"{species} new procedural humans", **r) for r in realcase.against_even(rows)]
    # the head as its file gives it, and as a clinical CT would (CT numbers through io.HU_WINDOW)
    heads = {"real head": realdata.head(p.volume_size),
             "real head, as CT numbers": io.prepare_volume(realdata.head_hu(), p.volume_size, source="head in HU"),
             "second real head (blind)": realdata.second_head(p.volume_size)}
    for case, head in heads.items():
        for acquisition in realcase.ACQUISITIONS:
            found, _ = realcase.evaluate_volume(head, model, p, views=views, seed=p.seed, others=others,
                                                name=case, acquisition=acquisition)
            out += [dict(case=case, **r) for r in realcase.against_even(found)]
    return out


def table(rows: list[dict], command: str, busy: float) -> str:
    return even_section("Real head against held-out species: ours over the even spread (`quick`)", "", rows,
                        {"case": "case", "acquisition": "acquisition", "network": "model"}, command, busy)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "real-skull")
    parser.add_argument("--species", type=int, default=6, help="held-out species scored (default 6)")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    publish(table(cases(args.species, args.views), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
