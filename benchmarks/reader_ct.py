"""A clinical CT as a reader has it: the blind head with its head holder, read with and without the body.

    python benchmarks/reader_ct.py [--views 8] [--model NAME=CHECKPOINT] [--write]

The second real head's scan (``realdata.second_head_scan``) holds the head holder it lay on, two plastic arcs of
about 400 HU, as clinical head CTs hold a table or holder. ``xtomo evaluate`` reads a CT through
``io.prepare_volume``, whose bone window keeps anything above 150 HU; this compares three readings at the `quick`
size: the scan with its bone taken whole (the holder becomes skull, and the fit frames skull and holder
together), the scan with the patient's bone only (``xtomo.data.patient``, what ``prepare_volume`` does now),
and the volume whose holder was taken out by hand (``realdata.second_head``, the book's). For each, the bone's
bounding box and its mass in the cube, and each network scored against the even spread on seeded ideal and
physical x-rays. ``--write`` replaces the ``reader-ct`` section of RESULTS.md.
"""
from __future__ import annotations

import sys
from unittest import mock

from _common import add_model_option, benchmark_parser, busy_cores, command_line, even_section, networks, publish
from skull_proportions import extents

from xtomo.data import io, realdata
from xtomo.evaluation import realcase
from xtomo.profiles import get_profile


def readings(size: int) -> dict:
    """The blind head's three readings at ``size``: holder kept as bone, the patient's bone, curated."""
    hu, spacing = realdata.second_head_scan()
    with mock.patch.object(io, "patient_bone", lambda hu, bone, spacing: bone):
        whole = io.prepare_volume(hu, size, spacing=spacing)
    return {"as scanned, every voxel above 150 HU": whole,
            "as scanned, the patient's bone (io.prepare_volume)": io.prepare_volume(hu, size, spacing=spacing),
            "holder taken out by hand (the book's blind head)": realdata.second_head(size)}


def rows(models: dict, views: int) -> list[dict]:
    p = get_profile("quick")
    out = []
    for reading, volume in readings(p.volume_size).items():
        width, length, height = extents(volume)
        box = f"{width} x {length} x {height}"
        for acquisition in realcase.ACQUISITIONS:
            for network, model in models.items():
                found, _ = realcase.evaluate_volume(volume, model, p, views=views, seed=p.seed,
                                                    name="blind head", acquisition=acquisition)
                out += [dict(r, network=network, reading=reading, box=box, mass=f"{float(volume.sum()):.0f}")
                        for r in realcase.against_even(found)]
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "reader-ct")
    parser.add_argument("--views", type=int, default=8, help="seeded views (default 8)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    busy = busy_cores()
    models = networks(parser, args.model)
    publish(even_section("A clinical CT with its head holder: the blind head read three ways (`quick`)",
                         "Bone box: width x length x height in voxels (above 5 % of the densest); mass: the cube's "
                         "summed density.", rows(models, args.views),
                         {"reading": "reading", "bone box": "box", "mass": "mass", "network": "network",
                          "acquisition": "acquisition"},
                         command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
