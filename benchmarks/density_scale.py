"""Does the network depend on how dense a real skull comes out? The real head at several density scales.

    python benchmarks/density_scale.py [--scales 0.2,0.35,0.5,0.7,1,1.4,2] [--views 8] [--model NAME=CKPT ...] [--write]

How dense bone is in a CT volume depends on the scanner, its calibration, the window that maps its
numbers to densities and the extinction coefficient, none of which a user controls once the file is
made. This scales the real head's densities (clipped to [0, 1], as every loaded volume is) and scores
each network of ours on its x-rays (ideal and physical, ``xtomo.evaluation.realcase``) against the
even spread: a network that learned skulls and not one density should hold its ratio across the
scales. Networks: the shipped model and every ``--model NAME=CHECKPOINT`` given; a network that knows
the exposure span it was trained on (``xtomo.learning.exposure``) is scored with it, as inference uses
it, and without it. ``--write`` replaces the ``density`` section of RESULTS.md.
"""
from __future__ import annotations

import sys

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
from xtomo.evaluation import realcase
from xtomo.profiles import get_profile


def rows(models: dict, scales: list[float], views: int) -> list[dict]:
    """One row per network, acquisition and density scale: ratios of ours to the even spread."""
    p = get_profile("quick")
    head = realdata.head(p.volume_size)
    out = []
    for name, model in models.items():
        span = getattr(model, "exposure", None)
        variants = [(name, span)] + ([(f"{name}, without its exposure span", None)] if span else [])
        for label, used in variants:
            model.exposure = used
            for scale in scales:
                for acquisition in realcase.ACQUISITIONS:
                    found, _ = realcase.evaluate_volume((head * scale).clamp(0, 1), model, p, views=views,
                                                        seed=p.seed, name="real head", acquisition=acquisition)
                    out += [dict(r, network=label, scale=scale) for r in realcase.against_even(found)]
        model.exposure = span
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    return even_section("The real head at other density scales: ours over the even spread (`quick`)",
                        "The head's densities times the scale, clipped to [0, 1].", found,
                        {"network": "network", "density scale": "scale", "acquisition": "acquisition"}, command, busy)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "density")
    parser.add_argument("--scales", default="0.2,0.35,0.5,0.7,1,1.4,2",
                        help="density factors (default 0.2,0.35,0.5,0.7,1,1.4,2)")
    parser.add_argument("--views", type=int, default=8, help="seeded views of the head (default 8)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    busy = busy_cores()
    models = networks(parser, args.model)
    scales = [float(s) for s in args.scales.split(",")]
    publish(table(rows(models, scales, args.views), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
