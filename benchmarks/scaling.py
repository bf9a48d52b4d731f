"""How much training it takes: chapter 5's ratios to NN and ORACLE against the training samples seen.

    python benchmarks/scaling.py LABEL=CHECKPOINT ... [--samples 120] [--write]

Each checkpoint (written by ``xtomo train``; ``shipped`` names the model that ships with the
package, and a ``.pt`` beside its ``.json`` manifest is a model stored as the package stores it) is
scored by chapter 5's protocol (``xtomo.evaluation.scoring.evaluate``) at the ``quick`` profile on
the same held-out samples, beside NN and ORACLE. The table gives, per checkpoint, the samples it had
seen, its training wall time, and in both metrics the mean error, the ratios ours/NN and ours/ORACLE
and the one-sided paired p of "ours has the smaller error". Checkpoints taken
part-way through one long run stand where that run's cosine schedule had brought the learning
rate, so they are not what a run of that length would give; the labels say which is which.
``--write`` replaces the ``scaling`` section of RESULTS.md and writes the rows to ``scaling.json``
(beside this script), from which chapter 5 draws its scaling figure; with ``--section NAME`` it
replaces that section instead and leaves ``scaling.json`` alone.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, atomic_write_text, busy_cores, heading, machine_line, update_section

from xtomo.evaluation import scoring
from xtomo.files import read_csv
from xtomo.learning import shipped
from xtomo.learning.train import load_checkpoint
from xtomo.profiles import get_profile
from xtomo.specimens import crania

RECORD = Path(__file__).with_name("scaling.json")   #: the rows of the last --write, for chapter 5


def evaluated(label: str, path: str, samples: int, base: Path) -> dict:
    """One checkpoint scored by chapter 5's protocol: its table row."""
    p = get_profile("quick", eval_samples=samples, classical_samples=1)
    out = base / label.replace(" ", "_")
    out.mkdir(parents=True)
    bank = base / scoring.BANK_FILE   # the x-ray bank is built once and shared
    if bank.exists():
        os.link(bank, out / scoring.BANK_FILE)
    if path == "shipped" or Path(path).with_suffix(".json").exists():  # the package's model, or one stored like it
        name, folder = (None, None) if path == "shipped" else (Path(path).stem, Path(path).parent)
        ck = shipped.checkpoint(name, folder)
        path = out / "shipped.pt"
        shutil.copy(shipped.paths(name, folder)[0], path)
    else:
        ck = load_checkpoint(path)
    rows = read_csv(scoring.evaluate(p, checkpoint=path, progress=False, out_dir=out, shipped=False)["results"])
    if not bank.exists():
        os.link(out / scoring.BANK_FILE, bank)
    made = ck.get("manifest") or dict(step=ck["step"], samples_seen=ck["step"] * ck["profile"]["batch_size"],
                                      wall_seconds=ck["history"][-1]["seconds"])  # a shipped model: all its runs
    seconds = made["wall_seconds"]
    row = dict(label=label, step=made["step"], samples_seen=made["samples_seen"],
               hours=seconds / 3600, n=len({r["sample"] for r in rows}))
    for metric in ("l2", "dssim"):
        means = {r["method"]: r["mean"] for r in scoring.summary(rows, metric)}
        tests = {r["method"]: r for r in scoring.paired_tests(rows, metric)}
        for other in ("nn", "oracle"):
            row[f"{metric}/{other}"] = means["ours"] / means[other]
            row[f"{metric} p {other}"] = tests[other]["p_less"]
        row[metric] = means["ours"]
    print(row, flush=True)
    return row


def table(rows: list[dict], command: str, busy: float,
          title: str = "How much training it takes (`quick` network, chapter 5's protocol)") -> str:
    lines = heading(title, command, busy)
    lines[-1] += (" Each checkpoint scored on the same held-out samples of the `quick` profile beside NN and "
                  "ORACLE; ratios are ours / baseline, p the one-sided paired t-test of \"ours has the smaller "
                  "error\"; hours: the checkpoint's training wall time.")
    lines += ["", "| checkpoint | steps | samples seen | hours | n | L2 | L2 / NN | p | L2 / ORACLE | p | DSSIM "
              "| DSSIM / NN | p | DSSIM / ORACLE | p |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['step']:,} | {r['samples_seen']:,} | {r['hours']:.2f} | {r['n']} "
                     f"| {r['l2']:.5f} | {r['l2/nn']:.3f} | {r['l2 p nn']:.2g} | {r['l2/oracle']:.3f} "
                     f"| {r['l2 p oracle']:.2g} | {r['dssim']:.4f} | {r['dssim/nn']:.3f} | {r['dssim p nn']:.2g} "
                     f"| {r['dssim/oracle']:.3f} | {r['dssim p oracle']:.2g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="LABEL=CHECKPOINT",
                        help="a label and an xtomo checkpoint (or 'shipped'), in the table's order")
    parser.add_argument("--samples", type=int, default=120, help="held-out samples scored (default 120)")
    parser.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    parser.add_argument("--section", default="scaling",
                        help="the RESULTS.md section --write replaces (default scaling; only that one also "
                             "writes scaling.json, chapter 5's scaling figure)")
    args = parser.parse_args(argv)
    pairs = [item.split("=", 1) for item in args.checkpoints]
    if any(len(pair) != 2 for pair in pairs):
        parser.error("each checkpoint is LABEL=PATH (or LABEL=shipped)")
    busy = busy_cores()
    with tempfile.TemporaryDirectory(prefix="xtomo-scaling-") as tmp:   # species volumes: the quick artifacts'
        rows = [evaluated(label, path, args.samples, Path(tmp)) for label, path in pairs]
    command = "python benchmarks/scaling.py " + " ".join(args.checkpoints) + f" --samples {args.samples}"
    text = table(rows, command, busy, *(() if args.section == "scaling" else (
        f"Chapter 5's protocol on the `quick` network (`{args.section}`)",)))
    print(text)
    if args.write:
        update_section(RESULTS, text, name=args.section)
    if args.write and args.section == "scaling":
        record = dict(measured=f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC", command=command,
                      machine=machine_line(), profile="quick", generator=crania.VERSION, rows=rows)
        atomic_write_text(RECORD, json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
