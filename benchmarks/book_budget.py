"""Wall time of the whole book at a profile, chapter by chapter, from cold caches.

    .venv/bin/python benchmarks/book_budget.py [--profile quick] [--artifacts DIR] [--write]

Builds the book (``xtomo.publish.website.build_book``: every chapter through papermill, then the HTML) with a
fresh, empty artifacts folder, so species volumes are generated and the network is trained as on a
new machine (a temporary folder, or ``--artifacts``, an empty one that is kept for what comes next),
and reports each chapter's seconds (from ``timings.json``) against the budget: all
chapters of ``quick`` within 30 minutes on 2 cores.
``--write`` records the table in RESULTS.md (section ``book-budget-PROFILE``, with ``-fp32`` appended on a
CPU without native bf16, where chapter 3 trains in float32: the two kinds of machine keep one section each).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, busy_cores, machine_line, update_section

BUDGET_MINUTES = {"smoke": 5, "quick": 30}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--artifacts", type=Path, help="an empty (or new) folder to build into and keep "
                    "(default: a temporary one, removed afterwards)")
    ap.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    args = ap.parse_args(argv)
    from xtomo.learning.train import native_bf16
    from xtomo.publish.chapters import book_root
    from xtomo.publish.website import build_book

    idle_before = busy_cores()
    if args.artifacts is not None and args.artifacts.exists() and any(args.artifacts.iterdir()):
        ap.error(f"--artifacts {args.artifacts} is not empty: a cold build needs an empty folder")
    with tempfile.TemporaryDirectory(prefix="xtomo-budget-") as tmp:
        os.environ["XTOMO_ARTIFACTS"] = str((args.artifacts or Path(tmp) / "artifacts").resolve())
        t0 = time.perf_counter()
        build_book(args.profile)
        whole = time.perf_counter() - t0
    timings = json.loads((book_root() / "_build" / args.profile / "timings.json").read_text())
    rows = [(name, entry["seconds"]) for name, entry in sorted(timings["chapters"].items())]
    total = sum(s for _, s in rows)
    budget = BUDGET_MINUTES.get(args.profile)
    bf16 = native_bf16()
    lines = [f"## Book budget ({args.profile} profile){'' if bf16 else ' on a CPU without native bf16'}", "",
             f"Machine: {machine_line()}  ",
             f"Measured {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC by "
             f"`python benchmarks/book_budget.py --profile {args.profile}`, every chapter executed by papermill "
             f"from an empty artifacts folder (other processes kept {idle_before:.2f} cores busy at the start).",
             "", "| chapter | seconds |", "|---|---:|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in rows]
    lines += [f"| **all chapters** | **{total:.0f}** ({total / 60:.1f} min) |",
              f"| whole build, HTML included | {whole:.0f} |", ""]
    if budget:
        verdict = "within" if total <= 60 * budget else "OVER"
        lines.append(f"Budget: {budget} min for all chapters at `{args.profile}` — {verdict} it.")
    table = "\n".join(lines)
    print(table)
    if args.write:
        update_section(RESULTS, table, name=f"book-budget-{args.profile}{'' if bf16 else '-fp32'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
