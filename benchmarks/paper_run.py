"""One prepared device run at the paper's scale: train for a fixed wall time, score by chapter 5's
protocol on a subset, and export the network as a shipped model (float16, with its manifest).

    python benchmarks/paper_run.py OUT [--profile paper] [--minutes 8] [--steps 20000] [--samples 128]

Everything lands in ``OUT``: the training run (``OUT/run/checkpoint.pt``, ``training_log.csv``), the
evaluation (``OUT/run/evaluation.csv``), the shipped model (``OUT/<profile>.pt`` and its manifest
``OUT/<profile>.json``, under 16 MiB) and ``OUT/report.json`` with chapter 5's headline: mean L2 and
DSSIM of ours, NN and ORACLE, the ratios and the one-sided paired p. Training makes its samples on
the device where it is a GPU (``xtomo.data.pipeline``); its learning rate decays over ``--steps``
(the run stops earlier, with a checkpoint, when ``--minutes`` have passed: choose ``--steps`` near
what the device makes in that time, from ``benchmarks/gpu.py``). Rerunning the same command resumes
the training and keeps the samples already scored. ``--profile smoke`` runs it on a CPU in a minute
(``tests/test_pipeline.py``).

To ship the result: copy ``OUT/<profile>.pt`` and ``.json`` into ``xtomo/learning/pretrained/``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from xtomo.evaluation import scoring
from xtomo.files import read_csv, write_json
from xtomo.learning import shipped, train
from xtomo.profiles import get_profile


def headline(rows: list[dict]) -> dict:
    """Chapter 5's headline of ``ours`` from evaluation rows: means, ratios to NN and ORACLE, paired p."""
    out = dict(samples=len({r["sample"] for r in rows}))
    for metric in ("l2", "dssim"):
        means = {r["method"]: r["mean"] for r in scoring.summary(rows, metric)}
        tests = {r["method"]: r for r in scoring.paired_tests(rows, metric)}
        out[metric] = {m: means[m] for m in ("ours", "nn", "oracle")}
        out[metric] |= {f"ours/{m}": means["ours"] / means[m] for m in ("nn", "oracle")}
        out[metric] |= {f"p vs {m}": tests[m]["p_less"] for m in ("nn", "oracle")}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the run, its evaluation and the exported model")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--minutes", type=float, default=8.0, help="training wall time (default 8)")
    parser.add_argument("--steps", type=int, default=20_000, help="steps the learning rate decays over")
    parser.add_argument("--samples", type=int, default=128, help="held-out samples scored (default 128)")
    parser.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    args = parser.parse_args(argv)
    p = get_profile(args.profile, eval_samples=args.samples)
    run_dir = args.out / "run"
    began = time.perf_counter()
    summary = train.train(p, resume=True, steps=args.steps, minutes=args.minutes, out_dir=run_dir,
                          device=args.device, progress=sys.stderr.isatty())
    trained = time.perf_counter() - began
    paths = scoring.evaluate(p, checkpoint=run_dir / "checkpoint.pt", out_dir=run_dir, shipped=False,
                             progress=sys.stderr.isatty())
    command = (f"python benchmarks/paper_run.py OUT --profile {p.name} --minutes {args.minutes:g} "
               f"--steps {args.steps}")
    info = shipped.export(run_dir / "checkpoint.pt", name=p.name, folder=args.out, command=command)
    report = dict(profile=p.name, step=summary["step"], total_steps=summary["total_steps"],
                  samples_seen=info["samples_seen"], val_l2=summary["val_l2"], baseline_l2=summary["baseline_l2"],
                  train_seconds=round(trained, 1), seconds=round(time.perf_counter() - began, 1),
                  model=info["file"], model_bytes=info["bytes"], sha256=info["sha256"], machine=info["machine"],
                  headline=headline(read_csv(paths["results"])))
    write_json(args.out / "report.json", report)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
