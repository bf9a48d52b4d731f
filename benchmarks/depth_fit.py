"""Is the real head's error a matter of where along the ray, or how deep, the network puts the skull?

    python benchmarks/depth_fit.py [--species 4] [--views 8] [--write]

A single x-ray leaves each ray's depth profile to the network's prior. If the network placed the real
head's bone at the wrong depth, or squeezed it (a human braincase is broader than most mammals'), a
shift or a stretch of our reconstruction along the ray would remove much of its error. For each view
this finds the depth scale (about the cube's centre) and shift of the shipped model's fused output
that fit the truth best, each ray rescaled to keep its line integral (so the re-projection stays
exact), and reports them with the share of the L2 they remove, for the real head and for held-out
procedural species. ``--write`` records the table in RESULTS.md (section ``depth-fit``).
"""
from __future__ import annotations

import sys

import torch
from _common import (
    benchmark_parser,
    busy_cores,
    command_line,
    heading,
    publish,
)

import xtomo
from xtomo.data import realdata
from xtomo.data.datasets import make_sample
from xtomo.evaluation import realcase
from xtomo.evaluation.scoring import our_volumes
from xtomo.imaging import xray
from xtomo.learning import train
from xtomo.profiles import get_profile

SCALES = (0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5)
SHIFTS = tuple(range(-4, 5))  # voxels


def moved(volume: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """``volume`` ``[D, H, W]`` stretched by ``scale`` about the centre of its depth axis and moved by
    ``shift`` voxels along it (linear, zero outside), each ray rescaled to its former line integral."""
    d = volume.shape[0]
    source = ((torch.arange(d) + 0.5 - d / 2 - shift) / scale + d / 2 - 0.5).view(-1, 1, 1).expand_as(volume)
    low = source.floor().long()
    weight = source - low

    def at(index):
        inside = (index >= 0) & (index < d)
        return torch.where(inside, volume.gather(0, index.clamp(0, d - 1)), torch.zeros(()))

    return realcase.with_line_integrals(at(low) * (1 - weight) + at(low + 1) * weight, volume.sum(0))


def fits(volume: torch.Tensor, model, views: int) -> list[dict]:
    """Per view: the best depth scale and shift and the L2 before and after."""
    p = get_profile("quick")
    out = []
    for d in xray.sample_directions(views, seed=p.seed):
        alpha, truth = make_sample(volume, d, p)
        ours = our_volumes(alpha, model, truth.shape[-1], p.chi)["ours"][0]
        errors = {(s, t): float(((moved(ours, s, t) - truth) ** 2).mean()) for s in SCALES for t in SHIFTS}
        (scale, shift), best = min(errors.items(), key=lambda item: item[1])
        out.append(dict(scale=scale, shift=shift, before=float(((ours - truth) ** 2).mean()), after=best))
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "depth-fit")
    parser.add_argument("--species", type=int, default=4, help="held-out species beside the head (default 4)")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    p = get_profile("quick")
    model = xtomo.load_model()
    val_set = train.train_val_sets(p)[1]
    cases = {"real head": realdata.head(p.volume_size)}
    cases |= {val_set.bank.name(k): val_set.bank.volume(k) for k in sorted(set(val_set.specimens))[:args.species]}
    lines = heading("Depth placement of the shipped model: the stretch and shift along the ray that fit best",
                    command_line(parser, args), busy)
    lines[-1] += (f" Per view, the depth scale (of {', '.join(map(str, SCALES))}) and shift (voxels, "
                  f"{SHIFTS[0]} to {SHIFTS[-1]}) of the fused output with the least L2, rays rescaled to keep "
                  "their line integrals; L2 kept: the best L2 over the original, averaged over views.")
    lines += ["", "| skull | views | mean scale | mean shift (voxels) | mean abs shift | L2 kept |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, volume in cases.items():
        found = fits(volume, model, args.views)
        mean = {k: sum(r[k] for r in found) / len(found) for k in ("scale", "shift")}
        kept = sum(r["after"] / r["before"] for r in found) / len(found)
        lines.append(f"| {name} | {len(found)} | {mean['scale']:.2f} | {mean['shift']:+.2f} "
                     f"| {sum(abs(r['shift']) for r in found) / len(found):.2f} | {kept:.3f} |")
    publish("\n".join(lines), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
