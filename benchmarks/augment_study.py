"""Does training on smoother specimens carry the shipped model over to a real skull? Fine-tuning with and
without the profile's blur, scored against the even spread.

    python benchmarks/augment_study.py [--steps 1200] [--blurs 0,1.2] [--species 6] [--views 8] [--write]

The real head is smoother than the procedural crania (a CT resampled to the volume's grid; at 64^3 its
bone covers 4.7 % of the voxels at a mean density of 0.33, a procedural cranium's 2-4 % at about 0.40).
For each ``--blurs`` value this fine-tunes the shipped model (``xtomo train --init shipped``) for
``--steps`` steps of the `quick` recipe at a third of its learning rate (``LR``), in bf16, with each
training specimen blurred by a Gaussian of random sigma up to that many voxels (0: plain
fine-tuning, the control), and scores it with ``benchmarks/real_skull.py``'s cases (held-out species,
training Hominidae, the real head under ideal and physical x-rays) beside the shipped model itself.
Runs are kept in ``--out`` (default ``/tmp/xtomo-augment``) and resumed. ``--write`` replaces the
``augment`` section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import RESULTS, busy_cores, heading, update_section
from real_skull import cases

from xtomo.learning import shipped, train
from xtomo.profiles import get_profile

LR = 3e-4  # fine-tuning: a third of the recipe's rate, so the shipped weights are adjusted, not replaced


def variants(steps: int, blurs: list[float], out: Path, species: int, views: int) -> list[dict]:
    """The rows of every variant: the shipped model, then each fine-tuning run."""
    rows = [dict(variant="shipped model", **r) for r in cases(species, views, model=shipped.load(), others={})]
    for blur in blurs:
        p = get_profile("quick", blur=blur, lr=LR, precision="bf16")
        folder = out / f"blur{blur:g}-{steps}"
        summary = train.train(p, resume=True, steps=steps, out_dir=folder, progress=False, init="shipped")
        model = train.load_model(summary["checkpoint"])
        label = f"+{steps} steps, blur up to {blur:g} voxels" if blur else f"+{steps} steps, no blur"
        rows += [dict(variant=label, **r) for r in cases(species, views, model=model, others={})]
    return rows


def table(rows: list[dict], command: str, busy: float) -> str:
    lines = heading("Fine-tuning the shipped model on blurred specimens: ours over the even spread", command, busy)
    lines[-1] += (f" Fine-tuning: Adam at {LR:g} cosine-decayed to a tenth, batch 8, bf16, from the shipped weights. "
                  "Ratios are ours / even spread of the mean over the views (RMSE: per view, then averaged); "
                  "p: one-sided paired t-test over views of \"ours has the smaller L2\".")
    lines += ["", "| network | case | acquisition | views | L2 ratio | RMSE ratio | DSSIM ratio | p (L2) |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['case']} | {r['acquisition']} | {r['views']} | {r['l2 ours/even']:.3f} "
                     f"| {r['rmse ours/even']:.3f} | {r['dssim ours/even']:.3f} | {r['l2 p']:.2g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200, help="fine-tuning steps (default 1200)")
    parser.add_argument("--blurs", default="0,1.2", help="largest blur sigmas, voxels, one run each (default 0,1.2)")
    parser.add_argument("--species", type=int, default=6, help="held-out species and Hominidae scored (default 6)")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/xtomo-augment"), help="where the runs are kept")
    parser.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    args = parser.parse_args(argv)
    busy = busy_cores()
    blurs = [float(b) for b in args.blurs.split(",")]
    rows = variants(args.steps, blurs, args.out, args.species, args.views)
    text = table(rows, f"python benchmarks/augment_study.py --steps {args.steps} --blurs {args.blurs} "
                       f"--species {args.species} --views {args.views}", busy)
    print(text)
    if args.write:
        update_section(RESULTS, text, name="augment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
