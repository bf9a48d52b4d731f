"""A skull's pose in its scan: how well ``xtomo.data.pose`` sets a turned skull upright, and what that does
to the shipped model on the real heads.

    python benchmarks/pose.py [--species 10] [--turns 3] [--views 8[,12,...]] [--acquisition both]
                              [--model NAME=CHECKPOINT ...] [--write [--section S]]

First table: ``--species`` procedural species (every 17th of the catalogue, all orders) at the pose's 64^3, each
turned by ``--turns`` seeded random rotations (``pose.rotated``); the estimate's errors are the angles between
where it puts the skull's up and front and where they belong. The real heads are judged the same way against
their own estimate as scanned (consistency: the same upright head from any pose), and the turn that estimate
makes is listed. Second table: each network over the even spread on ``--views`` seeded views of each real head
(each count in turn), ideal and physical (``--acquisition``), read as scanned and set upright (``realdata.head``
and ``second_head``, ``upright=``), and from a file that holds it on its side (its CT numbers turned a quarter
about y, read through ``io.prepare_volume`` as ``xtomo evaluate`` reads a reader's CT) with and without
``upright``. ``--write`` replaces the ``pose`` section of RESULTS.md.
"""
from __future__ import annotations

import math
import statistics
import sys
import time

import numpy as np
import torch
from _common import (
    EVEN_SPREAD_NOTE,
    add_model_option,
    against_even_table,
    benchmark_parser,
    busy_cores,
    command_line,
    heading,
    networks,
    publish,
)

from xtomo.data import io, pose, realdata
from xtomo.evaluation import realcase
from xtomo.evaluation.scoring import METHODS
from xtomo.profiles import get_profile
from xtomo.specimens import crania


def errors(found: torch.Tensor, applied: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """Degrees between where ``found`` puts up and front of a skull turned by ``applied`` and where ``reference``
    puts them on the skull as it was."""
    both = (found.double() @ applied.double() @ reference.double().T).diagonal()
    return tuple(math.degrees(math.acos(min(1.0, float(c)))) for c in both[:2])


def accuracy(species: int, turns: int) -> list[dict]:
    """One row per skull: the estimate's turn as made (or scanned) and its errors over seeded turns."""
    catalog = crania.catalog(175)
    skulls = {f"{s.name} ({s.order})": (crania.skull(s, size=pose.TEMPLATE_SIZE), torch.eye(3))
              for s in catalog[::17][:species]}
    for name, load in (("real head", realdata.head), ("second real head (blind)", realdata.second_head)):
        v = load(pose.TEMPLATE_SIZE, upright=False)
        skulls[f"{name}, as scanned"] = (v, pose.estimate(v))
    out = []
    for name, (v, reference) in skulls.items():
        start = time.perf_counter()
        as_is = pose.estimate(v)
        seconds = [time.perf_counter() - start]
        found = []
        for k in range(turns):
            applied = pose.random_rotation(1000 + k)
            start = time.perf_counter()
            estimate = pose.estimate(pose.rotated(v, applied))
            seconds.append(time.perf_counter() - start)
            found.append(errors(estimate, applied, reference))
        out.append(dict(skull=name, turn=pose.turn_angle(as_is), up=[u for u, _ in found],
                        front=[f for _, f in found], seconds=statistics.median(seconds)))
    return out


def on_its_side(hu: np.ndarray, spacing) -> tuple[np.ndarray, tuple]:
    """CT numbers (z, y, x) turned a quarter about y: the vault towards -x, as a skull lies on its side."""
    return np.ascontiguousarray(hu.transpose(2, 1, 0)[::-1]), tuple(spacing)[::-1]


def heads(size: int) -> dict[str, torch.Tensor]:
    first = (realdata.head_hu(), (1.0, 1.0, 1.0))
    second = realdata.second_head_hu()
    out = {}
    for name, load, (hu, spacing) in (("real head", realdata.head, first),
                                      ("second real head (blind)", realdata.second_head, second)):
        out[f"{name} | as scanned"] = load(size, upright=False)
        out[f"{name} | set upright"] = load(size)
        side, side_spacing = on_its_side(hu, spacing)
        out[f"{name} | file on its side, as scanned"] = io.prepare_volume(side, size, spacing=side_spacing)
        out[f"{name} | file on its side, set upright"] = io.prepare_volume(side, size, spacing=side_spacing,
                                                                           upright=True)
    return out


def even_rows(models: dict, views: list[int], acquisitions: tuple[str, ...]) -> list[dict]:
    p = get_profile("quick")
    out = []
    for case, volume in heads(p.volume_size).items():
        head, reading = case.split(" | ")
        for name, model in models.items():
            for acquisition in acquisitions:
                for n in views:
                    found, _ = realcase.evaluate_volume(volume, model, p, views=n, seed=p.seed, name=head,
                                                        acquisition=acquisition)
                    out += [dict(r, network=name, head=head, reading=reading) for r in realcase.against_even(found)
                            if r["model"] == METHODS["ours"]]
    return out


def table(found: list[dict], scored: list[dict], command: str, busy: float) -> str:
    lines = heading("A skull's pose in its scan: set upright by `xtomo.data.pose`", command, busy)
    lines[-1] += (" Turn: how far the estimate turns the skull as made (procedural) or as scanned (real heads), in "
                  "degrees; up, front: the estimate's errors on the skull turned by seeded random rotations (for the "
                  "real heads: against their own estimate as scanned), median and largest; seconds: one estimate, "
                  "median (templates built once before, not counted).")
    lines += ["", "| skull | turn | up: median | up: largest | front: median | front: largest | seconds |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in found:
        lines.append(f"| {r['skull']} | {r['turn']:.1f} | {statistics.median(r['up']):.1f} | {max(r['up']):.1f} "
                     f"| {statistics.median(r['front']):.1f} | {max(r['front']):.1f} | {r['seconds']:.1f} |")
    lines += ["", "Ours (the shipped model and each `--model`) over the even spread on the real heads, by how they are "
              "read. " + EVEN_SPREAD_NOTE, ""]
    lines += against_even_table(scored, {"network": "network", "head": "head", "reading": "reading",
                                         "acquisition": "acquisition"})
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "pose")
    parser.add_argument("--species", type=int, default=10, help="procedural species (default 10)")
    parser.add_argument("--turns", type=int, default=3, help="seeded random turns of each skull (default 3)")
    parser.add_argument("--views", default="8", help="seeded views of each real head, one count or several "
                        "(8,12,32: the first views of one seeded draw; default 8)")
    parser.add_argument("--acquisition", default="both", choices=("ideal", "physical", "both"),
                        help="how the real heads are x-rayed (default both)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    busy = busy_cores()
    models = networks(parser, args.model)
    pose.estimate(realdata.head(pose.TEMPLATE_SIZE, upright=False))  # builds the templates outside the timing
    views = [int(v) for v in args.views.split(",")]
    acquisitions = realcase.ACQUISITIONS if args.acquisition == "both" else (args.acquisition,)
    publish(table(accuracy(args.species, args.turns), even_rows(models, views, acquisitions),
                  command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
