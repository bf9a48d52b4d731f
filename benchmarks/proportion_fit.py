"""Is a real head's gap its proportions? Networks on the heads stretched along each axis.

    python benchmarks/proportion_fit.py [--views 8] [--scales 0.7,0.85,1,1.15] [--heads first,blind]
                                        [--model NAME=CHECKPOINT] [--write]

Each real head (``realdata.head``, the first, and ``realdata.second_head``, the blind one, at the `quick`
volume size, canonical frame: height z, length y, width x) is scaled along one anatomical axis at a time by
each factor, then along all three by ``--combined``, and fitted into the cube again by ``augment.truncated``
(the training's stretch augmentation, which fits as ``io.prepare_volume`` fits every CT), and each network
(the shipped model, and each ``--model``) is scored by ``xtomo.evaluation.realcase`` against the even spread
on seeded ideal x-rays. If a network had learned proportions that a human skull lies outside of, a head
squashed or stretched towards the procedural crania would score clearly better than the head as it is; how
much better bounds what training on more varied proportions could gain. ``--write`` replaces the
``proportion-fit`` section of RESULTS.md.
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
from xtomo.profiles import get_profile

AXES = ("height", "length", "width")  #: the canonical axes (z, y, x) of a volume [z, y, x]


#: the real heads by name, as ``--heads`` takes them
HEADS = {"first": ("real head", realdata.head), "blind": ("second real head (blind)", realdata.second_head)}


def rows(models: dict, scales: list[float], combined: tuple[float, float, float], views: int,
         heads: list[str]) -> list[dict]:
    """``against_even`` of each network on each head scaled along each axis by each of ``scales``, then
    by ``combined``."""
    p = get_profile("quick")
    cases = [("none", "1", (1.0, 1.0, 1.0))]
    cases += [(name, f"{s:g}", tuple(s if i == axis else 1.0 for i in range(3)))
              for axis, name in enumerate(AXES) for s in scales if s != 1]
    cases.append(("all three", " x ".join(f"{s:g}" for s in combined), combined))
    out = []
    for key in heads:
        case, load = HEADS[key]
        head = load(p.volume_size)[None]
        for network, model in models.items():
            for name, label, factors in cases:
                stretch = torch.tensor([factors[::-1]])  # (x, y, z), as truncated takes it
                volume = truncated(head, torch.zeros(1), torch.zeros(1), stretch)[0]
                found, _ = realcase.evaluate_volume(volume, model, p, views=views, seed=p.seed, name=case)
                out += [dict(r, network=network, case=case, axis=name, scale=label)
                        for r in realcase.against_even(found)]
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "proportion-fit")
    parser.add_argument("--views", type=int, default=8, help="seeded views (default 8)")
    parser.add_argument("--scales", default="0.7,0.85,1,1.15", help="factors along each axis")
    parser.add_argument("--combined", default="0.85,1,1.15", help="factors (height, length, width) together")
    parser.add_argument("--heads", default="first", help=f"real heads, of {', '.join(HEADS)} (default first)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    busy = busy_cores()
    scales = [float(s) for s in args.scales.split(",") if s]
    combined = tuple(float(s) for s in args.combined.split(","))
    if len(combined) != 3:
        parser.error("--combined takes three factors: height,length,width")
    heads = [h for h in args.heads.split(",") if h]
    if not heads or any(h not in HEADS for h in heads):
        parser.error(f"--heads takes names of {', '.join(HEADS)}, got {args.heads!r}")
    models = networks(parser, args.model)
    publish(even_section("Proportions of the real heads: the shipped model on a head stretched along one axis",
                         "Ideal x-rays, `quick` sizes.", rows(models, scales, combined, args.views, heads),
                         {"network": "network", "case": "case", "axis stretched": "axis", "scale": "scale"},
                         command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
