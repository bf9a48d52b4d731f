"""Is the real head's gap its proportions? The shipped model on the head stretched along each axis.

    python benchmarks/proportion_fit.py [--views 8] [--scales 0.7,0.85,1,1.15] [--write]

The real head (``realdata.head`` at 128^3, canonical frame: height z, length y, width x) is scaled along
one anatomical axis at a time by each factor, then along all three by ``--combined`` (trilinear
resampling), fitted into the cube again as every CT is (``io.prepare_volume`` at the `quick` volume
size) and scored by ``xtomo.evaluation.realcase`` against the even spread on seeded ideal x-rays. If the
network had learned proportions that a human skull lies outside of, a head squashed or stretched towards
the procedural crania would score clearly better than the head as it is; how much better bounds what
training on more varied proportions could gain. Rows of scale 1 are the head itself, resampled once more
than in ``real_skull.py``. ``--write`` replaces the ``proportion-fit`` section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F
from _common import EVEN_SPREAD_NOTE, RESULTS, against_even_table, busy_cores, heading, update_section

from xtomo.data import io, realdata
from xtomo.evaluation import realcase
from xtomo.learning import shipped
from xtomo.profiles import get_profile

AXES = ("height", "length", "width")  #: the canonical axes (z, y, x) of a volume [z, y, x]


def stretched(volume: torch.Tensor, factors: tuple[float, float, float], size: int) -> torch.Tensor:
    """``volume`` [z, y, x] with its contents scaled by ``factors`` (z, y, x) about the centre, refitted
    into a ``size``^3 cube."""
    fz, fy, fx = factors
    theta = torch.tensor([[1 / fx, 0, 0, 0], [0, 1 / fy, 0, 0], [0, 0, 1 / fz, 0]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, (1, 1, *volume.shape), align_corners=False)
    return io.prepare_volume(F.grid_sample(volume[None, None], grid, align_corners=False)[0, 0], size)


def rows(scales: list[float], combined: tuple[float, float, float], views: int) -> list[dict]:
    """``against_even`` of the head scaled along each axis by each of ``scales``, then by ``combined``."""
    p = get_profile("quick")
    model, head = shipped.load(), realdata.head(128)
    cases = [("none", "1", (1.0, 1.0, 1.0))]
    cases += [(name, f"{s:g}", tuple(s if i == axis else 1.0 for i in range(3)))
              for axis, name in enumerate(AXES) for s in scales if s != 1]
    cases.append(("all three", " x ".join(f"{s:g}" for s in combined), combined))
    out = []
    for name, label, factors in cases:
        found, _ = realcase.evaluate_volume(stretched(head, factors, p.volume_size), model, p, views=views,
                                            seed=p.seed, name="real head")
        out += [dict(r, axis=name, scale=label) for r in realcase.against_even(found)]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=8, help="seeded views (default 8)")
    parser.add_argument("--scales", default="0.7,0.85,1,1.15", help="factors along each axis")
    parser.add_argument("--combined", default="0.85,1,1.15", help="factors (height, length, width) together")
    parser.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    args = parser.parse_args(argv)
    busy = busy_cores()
    scales = [float(s) for s in args.scales.split(",") if s]
    combined = tuple(float(s) for s in args.combined.split(","))
    if len(combined) != 3:
        parser.error("--combined takes three factors: height,length,width")
    command = (f"python benchmarks/proportion_fit.py --views {args.views} --scales {args.scales} "
               f"--combined {args.combined}")
    lines = heading("Proportions of the real head: the shipped model on the head stretched along one axis",
                    command, busy)
    lines[-1] += " Ideal x-rays, `quick` sizes. " + EVEN_SPREAD_NOTE
    lines += [""] + against_even_table(rows(scales, combined, args.views), {"axis stretched": "axis", "scale": "scale"})
    text = "\n".join(lines)
    print(text)
    if args.write:
        update_section(RESULTS, text, name="proportion-fit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
