"""Can the `quick` network learn a few skulls by heart? Its error on the skulls it trained on, before and after.

    python benchmarks/capacity.py OUT [--skulls 8] [--steps 1000] [--views 32] [--write]

The shipped model scores about as well on the specimens it trained on as on new ones (RESULTS
``individuals-v8-long``: 0.637 against 0.666 for new individuals and 0.658 for held-out species), about as
well as the truth blurred by 2-3 voxels (``depth-floor``). Either the network cannot draw a skull sharper
than that from one x-ray, or it has not been trained enough to. This fine-tunes the shipped model on
``--skulls`` training specimens alone (every view and mirror, no augmentation; profile ``tuned``) into
``OUT`` (resumable: a finished run is kept), then scores both networks on those skulls over ``--views``
seeded views (new directions of skulls it has seen) and on held-out species, beside the even spread.
Memorising a handful of skulls is the easiest task there is; how far below the shipped model it gets is
how much sharper this architecture can draw. ``--write`` records the table in RESULTS.md (section ``capacity``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from _common import benchmark_parser, busy_cores, command_line, even_section, publish
from real_skull import scored_views

from xtomo.data.datasets import XrayDataset
from xtomo.evaluation import realcase
from xtomo.learning import shipped, train
from xtomo.profiles import get_profile


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "capacity")
    parser.add_argument("out", type=Path, help="folder for the fine-tune")
    parser.add_argument("--skulls", type=int, default=8, help="training specimens to learn by heart (default 8)")
    parser.add_argument("--steps", type=int, default=1000, help="fine-tuning steps (default 1000)")
    parser.add_argument("--views", type=int, default=32, help="seeded views per skull (default 32)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    p = get_profile("tuned", blur=0.0, gain=1.0)
    procedural, val = train.train_val_sets(p)
    seen = sorted(set(procedural.specimens))
    picked = seen[:: max(1, len(seen) // args.skulls)][:args.skulls]   # spread over the catalogue's orders
    train.train(p, resume=True, steps=args.steps, out_dir=args.out, init="shipped", pipeline="loader",
                data=(XrayDataset(procedural.bank, picked, p), val), progress=sys.stderr.isatty())
    models = {"shipped model": shipped.load(), f"on {len(picked)} skulls alone (+{args.steps:,} steps)":
              train.load_model(args.out / "checkpoint.pt")}
    cases = {f"the {len(picked)} skulls (seen)": (procedural.bank, picked),
             f"{len(picked)} held-out species": (val.bank, sorted(set(val.specimens))[:len(picked)])}
    rows = []
    for name, model in models.items():
        for case, (bank, specimens) in cases.items():
            found = realcase.against_even(scored_views(bank, specimens, model, {}, get_profile("quick"), args.views))
            rows += [dict(r, network=name, case=case) for r in found]
    note = (f"The second network: the shipped model fine-tuned on {len(picked)} training specimens alone (profile "
            f"`tuned` without blur or gain), every view and mirror; {args.views} seeded views per skull.")
    publish(even_section("Learning skulls by heart: the `quick` network on the skulls it trained on", note, rows,
                         {"network": "network", "case": "case", "acquisition": "acquisition"},
                         command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
