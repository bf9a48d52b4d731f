"""Where on a head the shipped model goes wrong: its squared error split over the vault, the skull base and the face.

    python benchmarks/error_regions.py [--humans 8] [--views 8] [--model NAME=CHECKPOINT ...] [--write [--section S]]

On procedural humans the network comes near the even-spread bar, on the real heads it does not
(``benchmarks/RESULTS.md``, ``individuals-16``). This says where the difference lies. Each skull is cut
in its canonical frame (+z up, +y forward) at the centre of its bone's bounding box: the upper half is the
vault; the lower half behind the centre is the skull base and the back of the head, in front of it the face
and the jaw. Each region, as a 0/1 volume, is aligned to every view like the truth
(``datasets.view_target``, so a voxel counts by the share of it that lies in the region), and the squared
error of ours (fused) and of the even spread over the views is summed in it (``realcase.error_by_region``;
"elsewhere" is what a view's volume holds outside the skull's cube). Cases: new procedural humans
(individuals 20 and up, through ``io.prepare_volume`` as a reader's CT), the first real head and the blind
second head, ideal x-rays. ``--write`` replaces the ``error-regions`` section of RESULTS.md (``--section``
names another).
"""
from __future__ import annotations

import sys

from _common import heading, network_study
from real_skull import new_humans

from xtomo.data import realdata
from xtomo.evaluation import realcase
from xtomo.profiles import get_profile


def rows(models: dict, humans: int, views: int) -> list[dict]:
    """One row per network, case and region (``realcase.error_by_region``, pooled over a case's skulls)."""
    p = get_profile("quick")
    bank = new_humans(humans, p, first=20)
    cases = {f"{humans} new procedural humans": [bank.volume(k) for k in range(humans)],
             "real head": [realdata.head(p.volume_size)],
             "second real head (blind)": [realdata.second_head(p.volume_size)]}
    out = []
    for name, model in models.items():
        for case, volumes in cases.items():
            found = [realcase.error_by_region(v, model, p, views=views, seed=p.seed) for v in volumes]
            for i, region in enumerate(realcase.REGIONS):   # shares averaged over the skulls, ratio pooled
                here = [f[i] for f in found]
                out.append(dict(network=name, case=case, region=region,
                                **{k: sum(r[k] for r in here) / len(here) for k in ("bone", "ours", "even")},
                                ratio=sum(r["ratio"] * r["even"] for r in here) / sum(r["even"] for r in here)))
    return out


def table(found: list[dict], command: str, busy: float) -> str:
    lines = heading("Where the error lies: the shipped model's squared error by region of the head (`quick`)",
                    command, busy)
    lines[-1] += (" Shares are of each skull's whole, summed over its views (averaged over a case's skulls); "
                  "L2 ratio: our squared error / the even spread's within the region.")
    lines += ["", "| network | case | region | share of bone | share of our error | share of the even spread's "
              "error | L2 ratio |", "|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['network']} | {r['case']} | {r['region']} | {r['bone']:.3f} | {r['ours']:.3f} | {r['even']:.3f} "
              f"| {r['ratio']:.3f} |" for r in found]
    return "\n".join(lines)


def main(argv=None) -> int:
    return network_study(__file__, __doc__, "error-regions", rows, table, ("humans", 8, "new procedural humans"), argv)


if __name__ == "__main__":
    sys.exit(main())
