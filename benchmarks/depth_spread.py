"""How far along the ray a network spreads a skull: the depth of bone in its answer against the truth's.

    python benchmarks/depth_spread.py [--humans 3] [--model NAME=CHECKPOINT] [--write [--section S]]

A side view hides a skull's width, a front view its length: the network must guess that axis from what it
learned. For each real head and ``--humans`` new procedural *Homo sapiens* (individuals 20 and up, read through
``io.prepare_volume`` as a reader's CT), each network's fused answer to the ideal x-ray from the side (+x) and
from the front (+y) is weighed slice by slice along the ray: the spread (standard deviation, in voxels of the
`quick` volume) of its mass over depth and the depth that holds the middle 80 % of it, beside the same of the
view-aligned truth. An answer wider than the truth along the ray is a network that reads that axis as wider
than the skull is (RESULTS `proportion-fit-v7`: the first head is read best made 15 % wider). ``--write``
replaces the ``depth-spread`` section of RESULTS.md.
"""
from __future__ import annotations

import sys

import torch
from _common import add_model_option, benchmark_parser, busy_cores, command_line, heading, networks, publish
from individuals import UNSEEN
from real_skull import new_humans

from xtomo.data import realdata
from xtomo.evaluation import realcase
from xtomo.evaluation.scoring import our_volumes
from xtomo.profiles import get_profile

VIEWS = {"side (+x), width along the ray": (1.0, 0.0, 0.0), "front (+y), length along the ray": (0.0, 1.0, 0.0)}


def spread(volume: torch.Tensor) -> tuple[float, float, float]:
    """The standard deviation of a view-aligned volume's mass over depth, the depth (voxels) holding its
    middle 80 %, and its mean depth."""
    mass = volume.clamp_min(0).sum(dim=(-2, -1)).double()
    weights = mass / mass.sum()
    depth = torch.arange(len(weights), dtype=torch.float64)
    mean = (weights * depth).sum()
    cumulative = weights.cumsum(0)
    low, high = (int(torch.searchsorted(cumulative, torch.tensor(q, dtype=torch.float64))) for q in (0.1, 0.9))
    return float(((weights * (depth - mean) ** 2).sum()).sqrt()), float(high - low + 1), float(mean)


def rows(models: dict, humans: int) -> list[dict]:
    p = get_profile("quick")
    skulls = {"real head": realdata.head(p.volume_size),
              "second real head (blind)": realdata.second_head(p.volume_size)}
    found = new_humans(humans, p, first=UNSEEN)
    skulls |= {f"new procedural human {i + 1}": found.volume(i) for i in range(humans)}
    out = []
    for skull, volume in skulls.items():
        for view, direction in VIEWS.items():
            alpha, truth = realcase.acquire(volume, torch.tensor(direction), p)
            row = dict(skull=skull, view=view, truth=spread(truth))
            row |= {name: spread(our_volumes(alpha, model, truth.shape[-1], p.chi)["ours"][0])
                    for name, model in models.items()}
            out.append(row)
    return out


def table(found: list[dict], names: list[str], command: str, busy: float) -> str:
    lines = heading("Depth of bone along the ray: our answers against the truth (`quick`)", command, busy)
    lines[-1] += (" Ideal x-rays; spread: the standard deviation of the mass over depth, in voxels; middle 80 %: the "
                  "depth that holds it; ratio: ours / truth of the spread; shift: our mean depth less the truth's "
                  "(positive: further from the source).")
    head = " | ".join(f"{n}: spread | {n}: middle 80 % | {n}: ratio | {n}: shift" for n in names)
    lines += ["", f"| skull | view | truth: spread | truth: middle 80 % | {head} |",
              "|---|---|" + "---:|" * (2 + 4 * len(names))]
    for r in found:
        cells = " | ".join(f"{r[n][0]:.2f} | {r[n][1]:.0f} | {r[n][0] / r['truth'][0]:.2f} | "
                           f"{r[n][2] - r['truth'][2]:+.1f}" for n in names)
        lines.append(f"| {r['skull']} | {r['view']} | {r['truth'][0]:.2f} | {r['truth'][1]:.0f} | {cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "depth-spread")
    parser.add_argument("--humans", type=int, default=3, help="new procedural humans (default 3)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    busy = busy_cores()
    models = networks(parser, args.model)
    publish(table(rows(models, args.humans), list(models), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
