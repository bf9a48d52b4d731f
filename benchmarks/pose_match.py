"""How sure ``xtomo.data.pose`` is of a pose: its match and margin on skulls, on skulls cut or turned, and on shapes
that are not skulls.

    python benchmarks/pose_match.py [--species 10] [--write [--section pose-match]]

Each volume (at the pose's 64^3) goes through ``pose.find``: the family whose template it resembles most once set
upright, that correlation (match), and how far the best turn stands above the median turn tried (margin; under
``pose.SURE_MARGIN`` ``io.prepare_volume`` keeps a volume as scanned). Skulls: ``--species`` procedural species
(every 17th of the catalogue, all orders) as made, cut from below by 35 % (``augment.truncated``) and turned by
a seeded random rotation; the two real heads as scanned. Not skulls: the chest CT of chapter 1, a ball, a shell,
an ellipsoid, a box and a blob of smoothed noise. The table this rule rests on: ``SURE_MARGIN`` lies between the
smallest skull's margin and the largest of the rest.
"""
from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F
from _common import benchmark_parser, busy_cores, command_line, heading, publish

from xtomo.data import augment, io, pose, realdata
from xtomo.specimens import crania


def skulls(species: int) -> dict[str, torch.Tensor]:
    out = {}
    for k, s in enumerate(crania.catalog(175)[::17][:species]):
        v = crania.skull(s, size=pose.TEMPLATE_SIZE)
        out[f"{s.name} ({s.family})"] = v
        out[f"{s.name}, cut 35 % from below"] = augment.truncated(v[None], torch.tensor([0.35]), torch.zeros(1))[0]
        out[f"{s.name}, turned at random"] = pose.rotated(v, pose.random_rotation(2000 + k))
    out["real head, as scanned"] = realdata.head(pose.TEMPLATE_SIZE, upright=False)
    out["second real head (blind), as scanned"] = realdata.second_head(pose.TEMPLATE_SIZE, upright=False)
    return out


def shapes() -> dict[str, torch.Tensor]:
    z, y, x = torch.meshgrid(*[torch.linspace(-1, 1, pose.TEMPLATE_SIZE)] * 3, indexing="ij")
    r2 = z * z + y * y + x * x
    noise = torch.rand(1, 1, *z.shape, generator=torch.Generator().manual_seed(0))
    blob = F.avg_pool3d(noise, 9, 1, 4)[0, 0] > 0.52
    return {"chest CT (chapter 1)": io.load_volume(realdata.path("cxr.nii.gz"), pose.TEMPLATE_SIZE),
            "ball": (r2 < 0.5).float(), "shell": ((r2 < 0.5) & (r2 > 0.4)).float(),
            "ellipsoid": (z * z / 0.5 + y * y / 0.8 + x * x / 0.3 < 1).float(),
            "box": ((z.abs() < 0.5) & (y.abs() < 0.3) & (x.abs() < 0.6)).float(),
            "smoothed noise in a ball": (blob & (r2 < 0.6)).float()}


def rows(species: int) -> list[dict]:
    out = []
    for kind, volumes in (("skull", skulls(species)), ("not a skull", shapes())):
        for name, v in volumes.items():
            start = time.perf_counter()
            found = pose.find(v)
            out.append(dict(kind=kind, volume=name, family=found.family, match=found.match, margin=found.margin,
                            turn=pose.turn_angle(found.rotation), seconds=time.perf_counter() - start))
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    lines = heading("How sure the pose is: match and margin of `pose.find`", command, busy)
    lines[-1] += (f" Nearest template: the family whose template the upright volume resembles most (not a "
                  f"classification: the templates are family means); match: that correlation; margin: the best turn's "
                  f"correlation less the median turn's; `io.prepare_volume(upright=True)` turns a volume only when "
                  f"its margin is at least `pose.SURE_MARGIN` = {pose.SURE_MARGIN}. Turn: degrees the fit would turn "
                  "it; seconds: one fit (templates built before).")
    lines += ["", "| kind | volume | nearest template | match | margin | turn | set upright | seconds |",
              "|---|---|---|---:|---:|---:|---|---:|"]
    for r in found:
        lines.append(f"| {r['kind']} | {r['volume']} | {r['family']} | {r['match']:.3f} | {r['margin']:.3f} "
                     f"| {r['turn']:.0f} | {'yes' if r['margin'] >= pose.SURE_MARGIN else 'no'} | {r['seconds']:.1f} |")
    least = min(r["margin"] for r in found if r["kind"] == "skull")
    most = max(r["margin"] for r in found if r["kind"] != "skull")
    lines += ["", f"Smallest margin of a skull: {least:.3f}; largest of the rest: {most:.3f}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "pose-match")
    parser.add_argument("--species", type=int, default=10, help="procedural species (default 10)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    pose.find(realdata.head(pose.TEMPLATE_SIZE, upright=False))  # builds the templates outside the timing
    publish(table(rows(args.species), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
