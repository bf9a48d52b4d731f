"""How large should a reader's CT be in the cube? The shipped model on skulls framed at several fit radii.

    python benchmarks/fit_radius.py [--radii 0.40,0.42,0.44,0.46,0.48] [--species 6] [--views 8] [--write]

The network learned from procedural skulls placed by ``crania`` (a coarse bounding sphere of each skull's
shape); a reader's CT is placed by ``io.prepare_volume`` (the enclosing sphere of its voxels above 5 % of
its densest, scaled to ``io.FIT_RADIUS``). This measures the training skulls as ``io`` measures a CT (the
radius of that sphere over the cube's side: median and range over every eighth training species), then
scores the shipped model, by ``realcase.evaluate_volume`` (ideal x-rays, `quick` sizes), against the even
spread on skulls framed by ``io.prepare_volume`` at each radius: held-out procedural species and new
procedural humans (``real_skull.human_individuals``), drawn at twice the size as a CT would be, the
real head, and the second real head (``realdata.second_head``), which nothing in the generator was fitted to.
``--write`` replaces the ``fit-radius`` section of RESULTS.md.
"""
from __future__ import annotations

import sys
from unittest import mock

import numpy as np
from _common import (
    benchmark_parser,
    busy_cores,
    command_line,
    even_section,
    publish,
)
from real_skull import human_individuals

import xtomo
from xtomo.data import io, realdata
from xtomo.evaluation import realcase
from xtomo.learning import train
from xtomo.profiles import get_profile
from xtomo.specimens import crania


def training_framing(train_set) -> list[float]:
    """The radius, over the cube's side, of the sphere ``io`` fits around every eighth training skull."""
    radii = []
    for k in sorted(set(train_set.specimens))[::8]:
        v = train_set.bank.volume(k).numpy()
        radii.append(io.framing(v)[1] / v.shape[0])
    return radii


def scored(volumes: dict, model, p, views: int) -> dict:
    """``realcase.against_even`` over all ``volumes`` (name: canonical volume), pooled."""
    rows = []
    for name, v in volumes.items():
        found, _ = realcase.evaluate_volume(v, model, p, views=views, seed=p.seed, name=name)
        rows += found
    return realcase.against_even(rows)[0]


def cases(radii: list[float], species: int, views: int) -> tuple[list[dict], list[float]]:
    """Rows per radius and case, and the training skulls' framing."""
    p = get_profile("quick")
    model = xtomo.load_model(None)
    train_set, val_set = train.train_val_sets(p)
    held_out = sorted(set(val_set.specimens))[:species]
    raw = {f"{len(held_out)} held-out species": {val_set.bank.name(k): crania.skull(
               val_set.bank.species[k], 2 * p.volume_size, seed=p.seed) for k in held_out},
           f"{species} new procedural humans": human_individuals(species, p)}
    out = []
    for radius in radii:
        with mock.patch.object(io, "FIT_RADIUS", radius):
            for case, volumes in raw.items():
                framed = {k: io.prepare_volume(v, p.volume_size, source=k) for k, v in volumes.items()}
                out.append(dict(case=case, radius=radius, **scored(framed, model, p, views)))
            for case, head in (("real head", realdata.head), ("second real head (blind)", realdata.second_head)):
                out.append(dict(case=case, radius=radius, **scored({case: head(p.volume_size)}, model, p, views)))
    return out, training_framing(train_set)


def table(rows: list[dict], framing: list[float], command: str, busy: float) -> str:
    note = (f"The training skulls, measured as `io` measures a CT, fill a radius of {np.median(framing):.3f} of the "
            f"cube (median; {min(framing):.3f} to {max(framing):.3f} over {len(framing)} species); "
            f"`io.FIT_RADIUS` is {io.FIT_RADIUS}.")
    return even_section("Framing a reader's CT: the shipped model at several fit radii (`quick`)", note,
                        sorted(rows, key=lambda r: (r["case"], r["radius"])), {"case": "case", "fit radius": "radius"},
                        command, busy)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "fit-radius")
    parser.add_argument("--radii", default="0.40,0.42,0.44,0.46,0.48", help="fit radii, comma-separated")
    parser.add_argument("--species", type=int, default=6, help="held-out species and new humans scored (default 6)")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    args = parser.parse_args(argv)
    radii = [float(r) for r in args.radii.split(",")]
    busy = busy_cores()
    rows, framing = cases(radii, args.species, args.views)
    publish(table(rows, framing, command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
