"""Does training on smoother, lighter or denser specimens carry the shipped model over to a real skull?
Fine-tuning with and without the profile's blur and gain, scored against the even spread.

    python benchmarks/augment_study.py [--steps 1200] [--variants 0:1,1.2:1] [--species 6] [--views 8] [--write]

The real head is smoother and lighter than the procedural crania (a CT resampled to the volume's grid; at
64^3 its bone covers 5.8 % of the voxels at a median density of 0.25, a procedural cranium's 2-4 % at
about 0.36), and how dense a real skull comes out depends on its scanner and window. For each
``--variants`` entry ``BLUR:GAIN`` this fine-tunes the shipped model (``xtomo train --init shipped``) for
``--steps`` steps of the `quick` recipe at a third of its learning rate (``LR``), in bf16, with each
training specimen blurred by a Gaussian of random sigma up to BLUR voxels and its densities scaled by
a random factor in [1/GAIN, GAIN] (``0:1``: plain fine-tuning, the control), and scores it with
``benchmarks/real_skull.py``'s cases (held-out species, training Hominidae, the real head under ideal and
physical x-rays) beside the shipped model itself.
Runs are kept in ``--out`` (default ``/tmp/xtomo-augment``) and resumed. ``--write`` replaces the
``augment`` section of RESULTS.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

from _common import (
    benchmark_parser,
    busy_cores,
    command_line,
    even_section,
    publish,
)
from real_skull import cases

from xtomo.learning import shipped, train
from xtomo.profiles import get_profile

LR = 3e-4  # fine-tuning: a third of the recipe's rate, so the shipped weights are adjusted, not replaced


def label(steps: int, blur: float, gain: float) -> str:
    """How a fine-tuning run is named in the table."""
    changes = ([f"blur up to {blur:g} voxels"] if blur else []) + ([f"gain 1/{gain:g}..{gain:g}"] if gain != 1 else [])
    return f"+{steps} steps, " + (", ".join(changes) or "no augmentation")


def variants(steps: int, settings: list[tuple[float, float]], out: Path, species: int, views: int) -> list[dict]:
    """The rows of every variant: the shipped model, then each fine-tuning run."""
    rows = [dict(variant="shipped model", **r) for r in cases(species, views, model=shipped.load(), others={})]
    for blur, gain in settings:
        p = get_profile("quick", blur=blur, gain=gain, lr=LR, precision="bf16", batch_size=8)  # the shipped run's
        folder = out / f"blur{blur:g}-gain{gain:g}-{steps}"
        summary = train.train(p, resume=True, steps=steps, out_dir=folder, progress=False, init="shipped")
        model = train.load_model(summary["checkpoint"])
        rows += [dict(variant=label(steps, blur, gain), **r) for r in cases(species, views, model=model, others={})]
    return rows


def table(rows: list[dict], command: str, busy: float) -> str:
    return even_section("Fine-tuning the shipped model on blurred, lighter or denser specimens: ours over the even "
                        "spread", f"Fine-tuning: Adam at {LR:g} cosine-decayed to a tenth, batch 8, bf16, from the "
                        "shipped weights.", rows, {"network": "variant", "case": "case", "acquisition": "acquisition"},
                        command, busy)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "augment")
    parser.add_argument("--steps", type=int, default=1200, help="fine-tuning steps (default 1200)")
    parser.add_argument("--variants", default="0:1,1.2:1",
                        help="BLUR:GAIN pairs (largest blur sigma in voxels, largest density factor), one run each "
                             "(default 0:1,1.2:1)")
    parser.add_argument("--species", type=int, default=6, help="held-out species and Hominidae scored (default 6)")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/xtomo-augment"), help="where the runs are kept")
    args = parser.parse_args(argv)
    busy = busy_cores()
    settings = [tuple(float(x) for x in v.split(":")) for v in args.variants.split(",")]
    if any(len(s) != 2 for s in settings):
        parser.error(f"--variants: expected BLUR:GAIN pairs, got {args.variants!r}")
    rows = variants(args.steps, settings, args.out, args.species, args.views)
    publish(table(rows, command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
