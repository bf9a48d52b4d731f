"""How wide and how tall a skull is for its length: the real heads beside the procedural humans and their family.

    python benchmarks/skull_proportions.py [--individuals 3] [--write [--section S]]

The bone's bounding box (voxels above 5 % of the densest, at the `quick` volume size, canonical frame: height z,
length y, width x) of each real head, of ``--individuals`` procedural *Homo sapiens* and of individual 0 of every
other Hominidae species. A network learns the proportions of the skulls it trains on, and where an x-ray hides an
axis (a side view hides the width) it answers with them (RESULTS `proportion-fit-v7`). Textbook human crania
are 0.75-0.80 as wide as long (the cranial index), the face adding a little length. ``--write`` replaces the
``skull-proportions`` section of RESULTS.md.
"""
from __future__ import annotations

import sys

import torch
from _common import benchmark_parser, busy_cores, command_line, heading, publish

from xtomo.data import realdata
from xtomo.profiles import get_profile
from xtomo.specimens import crania


def extents(volume: torch.Tensor) -> tuple[int, int, int]:
    """Width, length and height in voxels of the bounding box of the voxels above 5 % of the densest."""
    bone = volume > 0.05 * volume.max()
    sides = []
    for others in ((0, 1), (0, 2), (1, 2)):  # width (x), length (y), height (z) of a [z, y, x] volume
        found = bone.any(dim=others).nonzero()[:, 0]
        sides.append(int(found.max() - found.min()) + 1)
    return tuple(sides)


def rows(individuals: int) -> list[dict]:
    size = get_profile("quick").volume_size
    skulls = {"real head": realdata.head(size), "second real head (blind)": realdata.second_head(size)}
    hominids = [s for s in crania.catalog() if s.family == "Hominidae"]
    skulls |= {f"{hominids[0].name}, individual {i}": crania.skull(hominids[0], size=size, individual_index=i)
               for i in range(individuals)}
    skulls |= {s.name: crania.skull(s, size=size) for s in hominids[1:]}
    out = []
    for name, volume in skulls.items():
        width, length, height = extents(volume)
        out.append(dict(skull=name, width=width, length=length, height=height))
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    lines = heading(f"Proportions of the real heads and the procedural humans (crania {crania.VERSION})", command,
                    busy)
    lines[-1] += " Bounding box of the bone (above 5 % of the densest voxel), in voxels of the `quick` volume."
    lines += ["", "| skull | width | length | height | width / length | height / length |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['skull']} | {r['width']} | {r['length']} | {r['height']} | {r['width'] / r['length']:.2f} "
              f"| {r['height'] / r['length']:.2f} |" for r in found]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "skull-proportions")
    parser.add_argument("--individuals", type=int, default=3, help="procedural Homo sapiens individuals (default 3)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    publish(table(rows(args.individuals), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
