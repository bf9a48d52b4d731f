"""Is a cut field of view what sets the real head apart? Whole and cut procedural skulls beside the real head.

    python benchmarks/cut_study.py [--species 6] [--views 8] [--cuts 0.2,0.35] [--model NAME=CKPT ...] [--write]

A head CT's field of view often ends above the jaw, and the volume is then fitted into the cube as
it is (``io.prepare_volume``), so its framing differs from a whole skull's. This cuts held-out
procedural species from below by a share of their height (``augment.truncated``, plane level, then
fitted again) and scores each network of ours on them (ideal x-rays), on the same species whole, and
on the real head (ideal and physical x-rays, ``xtomo.evaluation.realcase``), against the even spread.
Networks: the shipped model and every ``--model NAME=CHECKPOINT``. ``--write`` replaces the ``cut``
section of RESULTS.md.
"""
from __future__ import annotations

import sys

import torch
from _common import (
    add_model_option,
    benchmark_parser,
    busy_cores,
    command_line,
    even_section,
    networks,
    publish,
)

from xtomo.data import realdata
from xtomo.data.augment import truncated
from xtomo.evaluation import realcase
from xtomo.learning import train
from xtomo.profiles import get_profile


def _species(model, cut: float, species: int, views: int) -> list[dict]:
    """``against_even`` of the first held-out species, each cut by ``cut`` (0: whole), pooled over views."""
    p = get_profile("quick")
    val_set = train.train_val_sets(p)[1]
    rows = []
    for k in sorted(set(val_set.specimens))[:species]:
        volume = val_set.bank.volume(k)
        if cut:
            volume = truncated(volume[None], torch.tensor([cut]), torch.zeros(1))[0]
        found, _ = realcase.evaluate_volume(volume, model, p, views=views, seed=p.seed, name=val_set.bank.name(k))
        rows += found
    return realcase.against_even(rows)


def rows(models: dict, cuts: list[float], species: int, views: int) -> list[dict]:
    """One row per network and case: ratios of ours to the even spread."""
    p = get_profile("quick")
    head = realdata.head(p.volume_size)
    out = []
    for name, model in models.items():
        for cut in [0.0, *cuts]:
            case = f"{species} held-out species" + (f", cut {cut:g}" if cut else ", whole")
            out += [dict(r, network=name, case=case) for r in _species(model, cut, species, views)]
        for acquisition in realcase.ACQUISITIONS:
            found, _ = realcase.evaluate_volume(head, model, p, views=views, seed=p.seed, name="real head",
                                                acquisition=acquisition)
            out += [dict(r, network=name, case="real head") for r in realcase.against_even(found)]
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    return even_section("Cut fields of view: ours over the even spread (`quick`)",
                        "A cut removes that share of the skull's height from below (a level plane) and fits the rest "
                        "into the cube again, as a real CT is fitted.", found,
                        {"network": "network", "case": "case", "acquisition": "acquisition"}, command, busy)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "cut")
    parser.add_argument("--species", type=int, default=6, help="held-out species scored (default 6)")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    parser.add_argument("--cuts", default="0.2,0.35", help="shares of the height cut away (default 0.2,0.35)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    busy = busy_cores()
    models = networks(parser, args.model)
    cuts = [float(c) for c in args.cuts.split(",") if c]
    publish(table(rows(models, cuts, args.species, args.views), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
