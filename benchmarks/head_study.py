"""Which output head lets the `quick` network beat NN and ORACLE? Train, then score as chapter 5 does.

For each variant (output head, training steps, training arithmetic) the `quick` profile's network is trained from
scratch with the profile's recipe (batch, learning rate, schedule, seed) into its own folder and
then scored by ``xtomo.evaluation.scoring.evaluate`` on the same held-out samples, beside NN and ORACLE.
The table gives mean L2 and DSSIM and the one-sided paired p-values of "ours is better".

    python benchmarks/head_study.py --samples 120                 # a GPU machine: minutes
    python benchmarks/head_study.py --samples 120 --write         # also update RESULTS.md
    python benchmarks/head_study.py --variants linear:900:fp32,linear:900:bf16 --section precision --write
    python benchmarks/head_study.py --variants linear:900:auto:l2,linear:900:auto:surface --section objective --write

Training runs on CUDA when there is one, data loading uses ``--workers`` processes; evaluation is
CPU work. A variant's third field is the profile's ``precision`` (``fp32``, ``bf16``, ``auto``;
default ``auto``, bf16 where the device computes it natively), its fourth the training
``objective`` (``l2``, default, or ``surface``). ``--write`` replaces only the section
between ``<!-- SECTION:begin -->`` and ``<!-- SECTION:end -->`` of RESULTS.md (``--section``,
default ``head-study``). ``--out`` keeps the
runs (checkpoints and CSVs) somewhere else than a temporary folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import RESULTS, busy_cores, machine_line, update_section

from xtomo.data import datasets
from xtomo.evaluation import scoring
from xtomo.files import read_csv
from xtomo.learning import model, train
from xtomo.profiles import get_profile

VARIANTS = (("projected", 900), ("linear", 900), ("linear", 3000))
TITLES = {"head-study": "Output head of the `quick` network against NN and ORACLE",
          "objective": "Training objective (L2, or L2 with a surface term) of the `quick` network against NN "
                       "and ORACLE",
          "precision": "Training arithmetic (float32 or bf16 autocast) of the `quick` network against NN and ORACLE"}


def run(head: str, steps: int, precision: str, objective: str, samples: int, workers: int, base: Path) -> dict:
    name = f"quick-{head}"
    model.PRESETS[name] = dataclasses.replace(model.PRESETS["quick"], head=head)
    p = get_profile("quick", eval_samples=samples, classical_samples=1, workers=workers, model=name,
                    precision=precision, objective=objective, batch_size=8)  # batches of 8, as its recorded runs
    out = base / f"{head}-{steps}-{precision}-{objective}"
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    train.train(p, steps=steps, out_dir=out, progress=False, overwrite=True)
    trained = time.perf_counter() - began
    paths = scoring.evaluate(p, out_dir=out, progress=False)
    result = scored(head, steps, read_csv(paths["results"]))
    result["train_s"], result["precision"], result["objective"] = trained, precision, objective
    print(result, flush=True)
    return result


def scored(head: str, steps: int, rows: list[dict], log: list[dict] | None = None) -> dict:
    """The table row of one evaluated run."""
    result = dict(head=head, steps=steps, samples=len({r["sample"] for r in rows}),
                  train_s=float(log[-1]["seconds"]) if log else float("nan"))
    for metric in ("l2", "dssim"):
        result[metric] = {r["method"]: r["mean"] for r in scoring.summary(rows, metric)}
        tests = {r["method"]: r for r in scoring.paired_tests(rows, metric)}
        result[f"{metric}_p"] = {m: tests[m]["p_less"] for m in ("nn", "oracle")}
    return result


def table(results: list[dict], machine: str, command: str, section: str = "head-study") -> str:
    lines = [
        f"## {TITLES.get(section, section)}",
        "",
        f"Machine: {machine}  ",
        f"Measured {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}`: the `quick` recipe "
        "(batch 8, Adam 1e-3 cosine-decayed to a tenth over the run, seed 0) for the given steps, scored by "
        "chapter 5's protocol (`xtomo.evaluation.scoring.evaluate`) on the first held-out samples of the evaluation "
        "subset. p: one-sided paired t-test of \"ours (fused) has the smaller error\".",
        "",
        "| head | objective | steps | precision | samples | ours L2 | NN L2 | ORACLE L2 | p vs NN | p vs ORACLE "
        "| ours DSSIM | NN DSSIM | ORACLE DSSIM | p vs NN | p vs ORACLE | train s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['head']} | {r.get('objective', 'l2')} | {r['steps']} | {r.get('precision', 'not recorded')} "
            f"| {r['samples']} "
            f"| {r['l2']['ours']:.5f} | {r['l2']['nn']:.5f} "
            f"| {r['l2']['oracle']:.5f} | {r['l2_p']['nn']:.2g} | {r['l2_p']['oracle']:.2g} "
            f"| {r['dssim']['ours']:.4f} | {r['dssim']['nn']:.4f} | {r['dssim']['oracle']:.4f} "
            f"| {r['dssim_p']['nn']:.2g} | {r['dssim_p']['oracle']:.2g} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def chapter_rows(path: Path) -> list[dict]:
    """One table row per network of ours in chapter 5's ``evaluation.csv`` (with its ``evaluation.json``):
    each scored as ``ours`` against NN and ORACLE; steps from the stamp (the shipped model's: its manifest)."""
    from xtomo.files import read_json
    from xtomo.learning import shipped

    rows, info = read_csv(path), read_json(path.with_name("evaluation.json"))
    made = shipped.manifest(shipped.name_for(get_profile(info["profile"]))) if info.get("shipped") else {}
    steps = {"ours": info["step"], "ours_surface": info.get("surface_step"),
             "ours_shipped": made.get("step"), "ours_shipped_even": made.get("step")}
    objective = {"ours": "l2", "ours_surface": "surface", "ours_shipped": "l2 (the shipped model)",
                 "ours_shipped_even": "l2 (the shipped model, fused evenly)"}
    precision = {"ours": get_profile(info["profile"]).precision, "ours_surface": get_profile(info["profile"]).precision,
                 "ours_shipped": made.get("precision"), "ours_shipped_even": made.get("precision")}
    results = []
    for ours in scoring.ours_methods(rows):
        mine = [dict(r, method="ours") if r["method"] == ours else r for r in rows
                if r["method"] not in scoring.OURS or r["method"] == ours]
        results.append(dict(scored("linear", steps[ours], mine), objective=objective[ours], precision=precision[ours]))
    return results


def report(paths: list[Path]) -> list[dict]:
    """Rows of runs kept elsewhere: files ``HEAD-STEPS-evaluation.csv`` beside ``HEAD-STEPS-training_log.csv``,
    or chapter 5's ``evaluation.csv`` (``chapter_rows``)."""
    results = []
    for path in paths:
        if path.name == "evaluation.csv":
            results += chapter_rows(path)
            continue
        head, steps = path.name.split("-")[:2]
        log_path = path.with_name(f"{head}-{steps}-training_log.csv")
        log = read_csv(log_path) if log_path.exists() else None
        results.append(scored(head, int(steps), read_csv(path), log))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=120, help="held-out samples scored (default 120)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--variants", default=",".join(f"{h}:{s}" for h, s in VARIANTS),
                        help="HEAD:STEPS[:PRECISION[:OBJECTIVE]],... (default: %(default)s)")
    parser.add_argument("--section", default="head-study", help="RESULTS.md section --write replaces")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--report", type=Path, nargs="+", default=None, metavar="CSV",
                        help="only tabulate runs made elsewhere (HEAD-STEPS-evaluation.csv files, or chapter 5's "
                             "evaluation.csv: one row per network of ours)")
    parser.add_argument("--machine", default=None, help="with --report: where those runs were made")
    args = parser.parse_args(argv)
    if args.report:
        text = table(report(args.report), args.machine or "not recorded",
                     "python benchmarks/head_study.py --report ...", args.section)
        print(text)
        if args.write:
            update_section(RESULTS, text, args.section)
        return 0
    busy = busy_cores()
    base = args.out or Path(tempfile.mkdtemp(prefix="head-study-"))
    os.environ.setdefault("XTOMO_ARTIFACTS", str(base / "artifacts"))
    datasets.simulate_collection("quick", progress=False)          # the species volumes, once
    variants = [(v.split(":") + ["auto", "l2"][len(v.split(":")) - 2:])[:4] for v in args.variants.split(",")]
    results = [run(head, int(steps), precision, objective, args.samples, args.workers, base)
               for head, steps, precision, objective in variants]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    text = table(results, f"{machine_line()}; training on {device}; other processes kept {busy:.1f} cores busy "
                 "at the start", f"python benchmarks/head_study.py --samples {args.samples} --variants {args.variants}",
                 args.section)
    print(text)
    if args.write:
        update_section(RESULTS, text, args.section)
    if args.out is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
