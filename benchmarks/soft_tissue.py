"""Does a scan in its own units hold soft tissue? The most common value of real heads, dry skulls and crania.

    python benchmarks/soft_tissue.py [--species 10] [--write]

A CT that is not in Hounsfield units keeps its values when read, so a head with its skin and brain is read as one
dense blob unless the reader gives ``bone=`` (``xtomo evaluate --bone``). ``xtomo.data.patient.soft_tissue`` names
such a scan: most of its non-air voxels share one value below half its densest. This measures that value
(``patient.tissue_mode``: where the most common value lies, as a fraction of the range, and the share of the
non-air voxels within 5 % of the range around it) for the real heads with their soft tissue (the first as stored,
the blind one and the chest CT as CT numbers + 1024, as some scanners store them), for the same heads as dry
skulls, and for ``--species`` procedural crania, and says which ``soft_tissue`` names. ``--write`` replaces the
``soft-tissue`` section of RESULTS.md.
"""
from __future__ import annotations

import sys

import numpy as np
from _common import benchmark_parser, busy_cores, command_line, heading, publish

from xtomo.data import formats, io, patient, realdata
from xtomo.specimens import crania


def scans(species: int) -> dict[str, np.ndarray]:
    """Each scan by name, in its own units."""
    blind, _ = realdata.second_head_scan()
    chest = formats.read_volume(realdata.path("cxr.nii.gz")).array
    found = {"real head, as stored (soft tissue and all)": realdata._head_values(),
             "second real head (blind), CT numbers + 1024": np.clip(blind + 1024, 0, None),
             "chest CT, CT numbers + 1024": np.clip(np.asarray(chest, np.float32) + 1024, 0, None),
             "real head, dry skull (bone above 0.45)": io.dry_skull(realdata._head_values(), 0.45),
             "second real head (blind), dry skull (150 HU and up)": np.clip(realdata.second_head_hu()[0], 150, None)
             - 150}
    step = max(1, len(crania.catalog()) // species)
    found |= {f"{s.name} (procedural)": crania.skull(s, size=96).numpy() for s in crania.catalog()[::step][:species]}
    return found


def table(found: dict[str, np.ndarray], command: str, busy: float) -> str:
    lines = heading("Soft tissue in a scan's own units: the most common value of its non-air voxels", command, busy)
    lines[-1] += (" Mode: where the most common value lies, as a fraction of the scan's range; share: the non-air "
                  "voxels (above 5 % of the range) within 5 % of the range around it; named: "
                  "`patient.soft_tissue` calls it soft tissue (share at least 0.4, mode below 0.5).")
    lines += ["", "| scan | mode | share | named |", "|---|---:|---:|---|"]
    for name, values in found.items():
        where, share = patient.tissue_mode(values)
        lines.append(f"| {name} | {where:.2f} | {share:.2f} | {'yes' if patient.soft_tissue(values) else 'no'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "soft-tissue")
    parser.add_argument("--species", type=int, default=10, help="procedural crania, spread over the catalogue")
    args = parser.parse_args(argv)
    busy = busy_cores()
    publish(table(scans(args.species), command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
