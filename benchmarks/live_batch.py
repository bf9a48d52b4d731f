"""Chapter 3's live network at a fixed time budget: batch size, steps and learning rate against held-out error.

    .venv/bin/python benchmarks/live_batch.py [--run BATCH:STEPS:LR ...] [--out DIR] [--write]

Each ``--run`` trains the `quick` network from scratch (chapter 3's data, split, schedule and seed; only the batch
size, the step count and Adam's peak learning rate changed) and reports the wall time, the held-out L2 of the
run's own validation samples, and the mean L2 and DSSIM of 32 of them (chapter 3's comparison table). Runs of the
same batch size × steps see the same number of samples and take about the same time on a CPU, so the table says
how best to spend a book's few minutes of training. ``--write`` records it in RESULTS.md (section ``live-batch``).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from _common import benchmark_parser, busy_cores, command_line, heading, publish

DEFAULT_RUNS = ["8:200:1e-3", "4:400:1e-3", "4:400:2e-3"]


def measure(spec: str, out: Path, checked: list[dict], base) -> dict:
    """Train one ``BATCH:STEPS:LR`` variant into ``out`` and score it."""
    import xtomo
    from xtomo.evaluation import scoring
    from xtomo.learning import inference, train

    batch, steps, lr = spec.split(":")
    p = base.replace(batch_size=int(batch), lr=float(lr))
    began = time.perf_counter()
    run = train.train(p, steps=int(steps), out_dir=out / spec.replace(":", "-"), overwrite=True, progress=False)
    seconds = time.perf_counter() - began
    net = xtomo.load_model(run["checkpoint"])
    volumes = inference.reconstruct(torch.stack([it["xray"] for it in checked]), net, fuse=False)
    scores = [scoring.score(v, it["volume"]) for v, it in zip(volumes, checked)]
    return dict(batch=int(batch), steps=int(steps), lr=float(lr), samples=int(batch) * int(steps), seconds=seconds,
                val_l2=run["val_l2"], l2=sum(s["l2"] for s in scores) / len(scores),
                dssim=sum(s["dssim"] for s in scores) / len(scores))


def table(rows: list[dict], command: str, busy: float) -> str:
    lines = heading("Chapter 3's live network at a fixed budget: batch size, steps and learning rate (`quick`)",
                    command, busy)
    lines += ["", "Trained from scratch on chapter 3's data, in the profile's precision (float32); held-out L2: the "
              "run's 96 validation samples; mean L2 and DSSIM: 32 of them, unfused, as in chapter 3's table.", "",
              "| batch | steps | samples | Adam lr | seconds | held-out L2 | mean L2 (32) | mean DSSIM (32) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['batch']} | {r['steps']} | {r['samples']:,} | {r['lr']:g} | {r['seconds']:.0f} | "
              f"{r['val_l2']:.6f} | {r['l2']:.6f} | {r['dssim']:.4f} |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "live-batch")
    parser.add_argument("--run", action="append", default=None, metavar="BATCH:STEPS:LR",
                        help=f"a variant to train (repeatable; default {' '.join(DEFAULT_RUNS)})")
    parser.add_argument("--out", type=Path, help="folder for the runs' checkpoints (default: a temporary one)")
    args = parser.parse_args(argv)
    args.run = args.run or DEFAULT_RUNS
    import xtomo
    from xtomo.learning import train

    busy = busy_cores()
    base = xtomo.get_profile("quick")
    _, val_set = train.train_val_sets(base)
    checked = [val_set[i] for i in train.validation_indices(base, len(val_set))[:32]]
    with tempfile.TemporaryDirectory(prefix="xtomo-live-") as tmp:
        out = args.out or Path(tmp)
        rows = [measure(spec, out, checked, base) for spec in args.run]
    publish(table(rows, command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
