"""A radiograph framed unlike the training x-rays: the shipped model with and without ``--fit``.

    python benchmarks/xray_framing.py [--species 4] [--views 8] [--zooms 0.6,0.8,1,1.25] [--write]

A real radiograph's specimen can fill any share of the image; the network saw specimens whose circle
(``inference.specimen_circle``) has a radius of 0.30-0.43 of the side (``inference.FRAMING``). Each
seeded ideal x-ray of a skull (held-out species and both real heads) is re-framed as a detector
would: padded with air (zoom < 1: the specimen smaller) or cropped (zoom > 1: larger, never cut),
pixels and values unchanged. Each is reconstructed as given and after ``inference.frame`` (what
``xtomo reconstruct --fit`` does), and the reconstruction is mapped back onto the skull's own cube
(lengths in pixels; densities times the ratio of the two squares' sides, so each ray keeps its
line integral) and scored against the CT beside the even spread. ``--write`` replaces the
``xray-framing`` section of RESULTS.md.
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from _common import (
    EVEN_SPREAD_NOTE,
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
from xtomo.evaluation.scoring import score
from xtomo.imaging import xray
from xtomo.learning import inference, train
from xtomo.profiles import get_profile


def back_on_cube(volume: torch.Tensor, top: float, left: float, size: int) -> torch.Tensor:
    """A view-aligned volume ``[D, s, s]`` of the square at (``top``, ``left``) of side ``s`` pixels of a
    ``size``-pixel x-ray, resampled onto that x-ray's own cube ``[D, size, size]`` (depth centred), with its
    densities scaled by ``s / size``: the same line integral along every ray."""
    side = volume.shape[-1]
    centre = torch.arange(size) + 0.5                       # the cube's pixel centres, in its pixels
    rows = 2 * (centre - top) / side - 1                    # ... in the square's normalised coordinates
    cols = 2 * (centre - left) / side - 1
    depth = 2 * ((torch.arange(volume.shape[0]) + 0.5) / volume.shape[0] * size - size / 2 + side / 2) / side - 1
    z, y, x = torch.meshgrid(depth, rows, cols, indexing="ij")
    grid = torch.stack([x, y, z], -1)[None]
    moved = F.grid_sample(volume[None, None].float(), grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)[0, 0]
    return moved * (side / size)


def reframed(alpha: torch.Tensor, zoom: float) -> tuple[torch.Tensor, int, int]:
    """The x-ray with its specimen ``zoom`` times as large in the image (padded or cropped about the centre)."""
    n = alpha.shape[-1]
    side = round(n / zoom)
    top = (n - side) // 2
    return inference.square_at(alpha, top, top, side), top, top


def scored(model, volume, p, views: int, zooms: list[float], name: str) -> list[dict]:
    """Rows (zoom, fitted, view, l2) for one skull, beside the even spread (zoom ``None``)."""
    rows = []
    for i, d in enumerate(xray.sample_directions(views, seed=p.seed)):
        alpha, truth = make_sample(volume, d, p)
        n, size = alpha.shape[-1], truth.shape[-1]
        even = realcase.even_spread(alpha, truth.shape, p.chi)
        rows.append(dict(skull=name, view=i, zoom=None, fitted=False, **score(even, truth)))
        for zoom in zooms:
            shown, top, left = reframed(alpha, zoom)
            for fitted in (False, True):
                image, at = shown, (top, left)
                if fitted:
                    box = inference.framing_box(shown)
                    image, at = inference.square_at(shown, *box), (top + box[0], left + box[1])
                out = back_on_cube(inference.reconstruct(image, model), *at, n)
                out = F.interpolate(out[None], size=(size, size), mode="area")[0]
                rows.append(dict(skull=name, view=i, zoom=zoom, fitted=fitted, **score(out, truth)))
    return rows


def summary(rows: list[dict], zooms: list[float]) -> list[dict]:
    """Per case, zoom and fitting: RMSE ratio to the even spread (per view, then averaged) and L2 ratio."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        here = [r for r in rows if r["case"] == case]
        even = {(r["skull"], r["view"]): r["l2"] for r in here if r["zoom"] is None}
        for zoom in zooms:
            for fitted in (False, True):
                mine = [r for r in here if r["zoom"] == zoom and r["fitted"] == fitted]
                ours_rmse = sum(r["l2"] ** 0.5 for r in mine)
                even_rmse = sum(even[r["skull"], r["view"]] ** 0.5 for r in mine)
                out.append(dict(case=case, zoom=zoom, fitted=fitted, views=len(mine),
                                rmse=ours_rmse / even_rmse,
                                l2=sum(r["l2"] for r in mine) / sum(even[r["skull"], r["view"]] for r in mine)))
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    lines = heading("A radiograph framed unlike the training x-rays: the shipped model with and without `--fit`",
                    command, busy)
    lines[-1] += (" Zoom: how many times larger the specimen is in the image than in the x-ray as made (its circle "
                  "then has a radius of about 0.38 times the zoom). " + EVEN_SPREAD_NOTE)
    lines += ["", "| case | zoom | `--fit` | views | L2 ratio | RMSE ratio |", "|---|---:|---|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['zoom']:g} | {'yes' if r['fitted'] else 'no'} | {r['views']} | {r['l2']:.3f} "
              f"| {r['rmse']:.3f} |" for r in found]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "xray-framing")
    parser.add_argument("--species", type=int, default=4, help="held-out species (default 4)")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    parser.add_argument("--zooms", default="0.6,0.8,1,1.25", help="specimen zooms (default 0.6,0.8,1,1.25)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    p, model = get_profile("quick"), xtomo.load_model(None)
    zooms = [float(z) for z in args.zooms.split(",") if z]
    val_set = train.train_val_sets(p)[1]
    rows = []
    for k in sorted(set(val_set.specimens))[:args.species]:
        rows += [dict(r, case=f"{args.species} held-out species")
                 for r in scored(model, val_set.bank.volume(k), p, args.views, zooms, val_set.bank.name(k))]
    for case, head in (("real head", realdata.head(p.volume_size)),
                       ("second real head (blind)", realdata.second_head(p.volume_size))):
        rows += [dict(r, case=case) for r in scored(model, head, p, args.views, zooms, case)]
    publish(table(summary(rows, zooms), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
