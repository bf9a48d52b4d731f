"""How far from the truth an answer is that scores like ours: the truth stretched along the ray, or blurred.

    python benchmarks/depth_floor.py [--humans 4] [--views 32] [--write]

One x-ray fixes each ray's line integral and the skull's outline; how deep the skull runs along the ray
(its width, in a side view) it leaves to the prior. This scores, beside the even spread and over the same
seeded views as ``realcase.evaluate_volume`` (ideal x-rays), answers made from the truth itself: the truth
stretched along the ray by a wrong depth scale (about the cube's centre, each ray rescaled to its line
integral, as our fused output is), and the mean of such stretches over scales log-uniform in [1/f, f],
the least-squares answer of a reader who knows the skull exactly except for its depth scale, known
within a factor f; and the truth blurred by a Gaussian of sigma voxels (each ray rescaled as well), an answer
that knows where every wall lies but draws it that much softer. The shipped model's ratio stands beside them.
``--write`` records the table in RESULTS.md (section ``depth-floor``).
"""
from __future__ import annotations

import math
import sys

import torch
from _common import benchmark_parser, busy_cores, command_line, heading, publish
from depth_fit import moved
from real_skull import new_humans

from xtomo.data import realdata
from xtomo.data.datasets import make_sample
from xtomo.evaluation import realcase
from xtomo.evaluation.scoring import our_volumes
from xtomo.imaging import xray
from xtomo.learning import shipped
from xtomo.profiles import get_profile

WRONG = (0.95, 1.05, 0.9, 1.1)   #: single wrong depth scales
UNSURE = (1.05, 1.1, 1.15)       #: factors f of the depth scale's uncertainty
GRID = 9                         #: scales averaged over for each f


def answers(truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """The truth-made answers of one view, by label."""
    out = {f"depth x{s}": moved(truth, s, 0.0) for s in WRONG}
    for f in UNSURE:
        scales = torch.exp(torch.linspace(-math.log(f), math.log(f), GRID)).tolist()
        out[f"mean over depth x1/{f}..x{f}"] = torch.stack([moved(truth, s, 0.0) for s in scales]).mean(0)
    return out | {f"blur {sigma:g}": realcase.softened(truth, sigma) for sigma in realcase.SOFTENINGS}


def ratios(volume: torch.Tensor, model, p, views: int) -> dict[str, float]:
    """RMSE over the even spread's (per view, then summed over views, as ``realcase.against_even``)."""
    totals: dict[str, float] = {}
    for d in xray.sample_directions(views, seed=p.seed):
        alpha, truth = make_sample(volume, d, p)
        found = {"even": realcase.even_spread(alpha, truth.shape, p.chi),
                 "shipped model": our_volumes(alpha, model, truth.shape[-1], p.chi)["ours"][0]} | answers(truth)
        for label, out in found.items():
            totals[label] = totals.get(label, 0.0) + float(((out - truth) ** 2).mean().sqrt())
    return {label: total / totals["even"] for label, total in totals.items() if label != "even"}


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "depth-floor")
    parser.add_argument("--humans", type=int, default=4, help="new procedural humans beside the heads (default 4)")
    parser.add_argument("--views", type=int, default=32, help="seeded views per skull (default 32)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    p = get_profile("quick")
    model = shipped.load()
    humans = new_humans(args.humans, p, first=20)
    cases = {"real head": realdata.head(p.volume_size), "second real head (blind)": realdata.second_head(p.volume_size)}
    cases |= {humans.name(k): humans.volume(k) for k in range(len(humans))}
    found = {name: ratios(volume, model, p, args.views) for name, volume in cases.items()}
    labels = list(next(iter(found.values())))
    lines = heading("Answers made from the truth, stretched along the ray or blurred, beside the even spread",
                    command_line(parser, args), busy)
    lines[-1] += (f" Ideal x-rays, {args.views} seeded views per skull; RMSE ratio over the even spread. "
                  "depth xs: the truth stretched by s along each ray about the cube's centre, each ray rescaled "
                  f"to its line integral; mean over depth x1/f..xf: the mean of {GRID} such stretches, log-uniform; "
                  "blur sigma: the truth smoothed by a Gaussian of sigma voxels, each ray rescaled alike.")
    lines += ["", "| skull | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    lines += [f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in labels) + " |" for name, row in found.items()]
    publish("\n".join(lines), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
