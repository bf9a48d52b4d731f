"""How long the test suite takes on this machine, file by file (the bar: `make test` within 20 minutes on 2 cores).

    python benchmarks/suite_time.py [--top 12] [--write [--section S]]

Runs the whole suite once, as ``make test`` runs it after its lint and data fetch (``python -m pytest``
in the repository, here with a JUnit report in a temporary folder), and records its wall time, how many
tests passed, failed and skipped, the files that took longest and the slowest tests (each test's time
includes its fixtures' set-up, so a module's shared training counts against its first test). Run it on
an idle machine: the chapters at the smoke profile, the book build and the browser take most of it, and
two busy cores slow them 2-3 times. ``--write`` replaces the ``test-time`` section of RESULTS.md.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from _common import benchmark_parser, busy_cores, command_line, heading, publish

REPO = Path(__file__).resolve().parent.parent


def suite(junit: Path) -> tuple[float, int]:
    """Run the whole suite with a JUnit report at ``junit``: (wall seconds, pytest's exit status)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"],
                          cwd=REPO)
    return time.perf_counter() - start, done.returncode


def cases(junit: Path) -> list[dict]:
    """Each test case of a JUnit report: file, name, seconds and outcome."""
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        found.append(dict(file=case.get("classname", "").split(".")[-1] + ".py", name=case.get("name", ""),
                          seconds=float(case.get("time", 0)), outcome=outcome))
    return found


def table(found: list[dict], wall: float, status: int, top: int, command: str, busy: float) -> str:
    lines = heading("Test suite time, file by file", command, busy)
    labels = {"passed": "passed", "failure": "failed", "error": "errors", "skipped": "skipped"}
    counts = {label: sum(c["outcome"] == o for c in found) for o, label in labels.items()}
    lines[-1] += (f" Wall time of `python -m pytest` (without `make test`'s install, lint and data fetch): "
                  f"**{wall:.0f} s** ({wall / 60:.1f} min), pytest exit status {status}; "
                  + ", ".join(f"{n} {label}" for label, n in counts.items()) + ". Seconds per test include its set-up.")
    per_file = defaultdict(lambda: [0, 0.0])
    for c in found:
        per_file[c["file"]][0] += 1
        per_file[c["file"]][1] += c["seconds"]
    total = sum(s for _, s in per_file.values()) or 1.0
    lines += ["", "| file | tests | seconds | share |", "|---|---:|---:|---:|"]
    for name, (n, seconds) in sorted(per_file.items(), key=lambda kv: -kv[1][1])[:top]:
        lines.append(f"| {name} | {n} | {seconds:.0f} | {seconds / total:.1%} |")
    rest = sorted(per_file.items(), key=lambda kv: -kv[1][1])[top:]
    if rest:
        lines.append(f"| {len(rest)} other files | {sum(n for _, (n, _) in rest)} "
                     f"| {sum(s for _, (_, s) in rest):.0f} | {sum(s for _, (_, s) in rest) / total:.1%} |")
    lines += ["", "| slowest tests | seconds |", "|---|---:|"]
    for c in sorted(found, key=lambda c: -c["seconds"])[:top]:
        lines.append(f"| {c['file']}::{c['name']} | {c['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "test-time")
    parser.add_argument("--top", type=int, default=12, help="files and tests listed (default 12)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    with tempfile.TemporaryDirectory(prefix="xtomo-suite-time-") as tmp:
        junit = Path(tmp) / "junit.xml"
        wall, status = suite(junit)
        found = cases(junit)
    publish(table(found, wall, status, args.top, command_line(parser, args), busy), args)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
