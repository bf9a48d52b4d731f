"""What a rebuild of the book costs: nothing changed, then a one-line edit to one chapter.

    .venv/bin/python benchmarks/book_rebuild.py [--profile quick] [--chapter 05_evaluation] [--write]

Runs ``xtomo book`` as a user does (a subprocess, its progress lines read back): once to bring the
build up to date (a full build when nothing is cached yet), again with nothing changed, then after
appending one Markdown line to ``--chapter``; then it puts the chapter back (the next build reruns
it and its readers once more). Reports each build's wall time and the chapters it reran. ``--write``
records the table in RESULTS.md (section ``book-rebuild-<profile>``).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, busy_cores, heading, update_section

ROOT = Path(__file__).resolve().parents[1]
RAN = re.compile(r"chapter \d+/\d+ (\S+): started")


def build(profile: str) -> tuple[float, list[str]]:
    """Wall seconds of one ``xtomo book`` and the chapters it reran (an error if it failed)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "xtomo", "book", "--profile", profile], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"xtomo book failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, RAN.findall(done.stdout + done.stderr)


def one_line_edit(notebook: Path) -> bytes:
    """Append one Markdown line to the notebook's last Markdown cell; returns the original bytes."""
    import nbformat

    original = notebook.read_bytes()
    nb = nbformat.reads(original.decode(), as_version=4)
    cell = [c for c in nb.cells if c.cell_type == "markdown"][-1]
    cell.source += "\n\n(A one-line edit, made by benchmarks/book_rebuild.py.)"
    notebook.write_text(nbformat.writes(nb))
    return original


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--chapter", default="05_evaluation", help="the chapter edited (default 05_evaluation)")
    ap.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    args = ap.parse_args(argv)
    notebook = ROOT / "notebooks" / f"{args.chapter}.ipynb"
    if not notebook.exists():
        ap.error(f"--chapter: no {notebook}")
    busy = busy_cores()
    steps = [("bring the build up to date", build(args.profile))]
    steps.append(("again, nothing changed", build(args.profile)))
    original = one_line_edit(notebook)
    try:
        steps.append((f"after a one-line edit to {args.chapter}", build(args.profile)))
    finally:
        notebook.write_bytes(original)
    command = f"python benchmarks/book_rebuild.py --profile {args.profile} --chapter {args.chapter}"
    lines = heading(f"Rebuilding the book (`{args.profile}`)", command, busy)
    lines += ["", "| build | seconds | chapters rerun |", "|---|---:|---|"]
    lines += [f"| {what} | {seconds:.1f} | {', '.join(ran) or 'none'} |" for what, (seconds, ran) in steps]
    text = "\n".join(lines)
    print(text)
    if args.write:
        update_section(RESULTS, text, name=f"book-rebuild-{args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
