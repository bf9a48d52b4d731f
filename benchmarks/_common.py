"""What every benchmark script shares: the machine line, a CPU-idleness probe, and writing one
section of RESULTS.md between its markers without touching the others."""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
INTRO = """# Benchmark results

Measured numbers only: every table below is written by a script in this folder, never typed, with
the machine it ran on. Each script replaces only its own section (between its markers); rerun one
with `.venv/bin/python benchmarks/<script>.py --write`. See `benchmarks/README.md`.
"""


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.strip().lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_line() -> str:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} logical cores "
            f"({usable} usable), torch {torch.__version__}, "
            f"torch.get_num_threads() = {torch.get_num_threads()}, Python {platform.python_version()}")


def busy_cores(window: float = 0.5) -> float:
    """Cores kept busy by everything on the machine over ``window`` s (/proc/stat), or load average.

    Called while this script is idle, it measures what other processes take from the benchmark.
    """
    def read():
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle
    try:
        t0, i0 = read()
        time.sleep(window)
        t1, i1 = read()
        return (1 - (i1 - i0) / max(t1 - t0, 1e-9)) * (os.cpu_count() or 1)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def heading(title: str, command: str, busy: float) -> list[str]:
    """A RESULTS.md section's first lines: its title, this machine, when and by which command it was
    measured and how many cores other processes kept busy (``busy_cores``) at the start."""
    import datetime

    return [f"## {title}", "", f"Machine: {machine_line()}  ",
            f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `{command}` "
            f"(other processes kept {busy:.1f} cores busy at the start)."]


EVEN_SPREAD_NOTE = ("Ratios are ours / even spread of the mean over the views (RMSE: per view, then averaged); "
                    "p: one-sided paired t-test over views of \"ours has the smaller L2\".")


def against_even_table(rows: list[dict], lead: dict[str, str]) -> list[str]:
    """A Markdown table of ``xtomo.evaluation.realcase.against_even`` rows: the ``lead`` columns (header:
    row key, left-aligned) first, then views, the L2, RMSE and DSSIM ratios and the p of L2."""
    lines = ["| " + " | ".join(lead) + " | views | L2 ratio | RMSE ratio | DSSIM ratio | p (L2) |",
             "|" + "---|" * len(lead) + "---:|---:|---:|---:|---:|"]
    for r in rows:
        first = " | ".join(f"{r[key]:g}" if isinstance(r[key], float) else str(r[key]) for key in lead.values())
        lines.append(f"| {first} | {r['views']} | {r['l2 ours/even']:.3f} | {r['rmse ours/even']:.3f} "
                     f"| {r['dssim ours/even']:.3f} | {r['l2 p']:.2g} |")
    return lines


def even_section(title: str, note: str, rows: list[dict], lead: dict[str, str], command: str, busy: float) -> str:
    """A RESULTS.md section of ``against_even_table`` rows: ``heading``, then ``note`` (what the cases are; may be
    empty) and ``EVEN_SPREAD_NOTE``, then the table."""
    lines = heading(title, command, busy)
    lines[-1] += " " + (note + " " if note else "") + EVEN_SPREAD_NOTE
    return "\n".join(lines + [""] + against_even_table(rows, lead))


def add_model_option(parser) -> None:
    """``--model NAME=CHECKPOINT`` (repeatable): networks to score beside the shipped model."""
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="another network to score beside the shipped model (repeatable)")


def networks(parser, specs: list[str]) -> dict:
    """The shipped model and each ``--model NAME=CHECKPOINT`` of ``specs``, by name (a malformed one is
    a usage error of ``parser``)."""
    from xtomo.learning import shipped, train

    if any("=" not in m for m in specs):
        parser.error("--model: expected NAME=CHECKPOINT")
    return {"shipped model": shipped.load()} | {name: train.load_model(path)
                                                for name, path in (m.split("=", 1) for m in specs)}


def held_out_heads(size: int):
    """Each fetched real head (``realmix.FETCHED``) as its label, the name of the shipped model that never saw it
    (``shipped.held_out``), its CT, that model and the CT as a volume ``[size]^3``; a head that no shipped model
    held out is an error naming it."""
    from xtomo.data import realmix
    from xtomo.learning import shipped

    for head, fetched in realmix.FETCHED.items():
        ct = realmix.find_ct(head)
        name = shipped.held_out(ct)
        if name is None:
            raise SystemExit(f"{Path(sys.argv[0]).name}: no shipped model held out the {head}")
        yield fetched.label, name, ct, shipped.load(name), ct.volume(size)


def network_study(script: str, doc: str, section: str, rows, table, skulls: tuple[str, int, str], argv=None) -> int:
    """The ``main`` of a benchmark that scores the shipped model and each ``--model`` on seeded views of skulls:
    ``--NAME`` skulls (``skulls``: the option's name, default and meaning), ``--views`` per skull, ``--write`` and
    ``--section``; it measures ``rows(models, skulls, views)`` and publishes ``table(rows, command, busy)``."""
    parser = benchmark_parser(script, doc, section)
    name, default, meaning = skulls
    parser.add_argument(f"--{name}", type=int, default=default, help=f"{meaning} (default {default})")
    parser.add_argument("--views", type=int, default=8, help="seeded views per skull (default 8)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    busy = busy_cores()
    models = networks(parser, args.model)
    publish(table(rows(models, getattr(args, name), args.views), command_line(parser, args), busy), args)
    return 0


def benchmark_parser(script: str, doc: str, section: str) -> argparse.ArgumentParser:
    """The argument parser of the benchmark ``script`` (its ``__file__``), described by its docstring's first
    line, with ``--write`` (record the table in RESULTS.md) and ``--section`` (which section it replaces,
    ``section`` by default)."""
    parser = argparse.ArgumentParser(prog=Path(script).name, description=doc.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    parser.add_argument("--section", default=section, help=f"the {RESULTS.name} section --write replaces")
    return parser


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The command that measured a table: the script, its positional arguments, and every option with the value it ran
    with (defaults included, so the record survives a change of default), without ``--write``; ``--section`` only when
    not its default."""
    words = ["python", f"benchmarks/{Path(parser.prog).name}"]
    positional = [a.dest for a in parser._actions if not a.option_strings]
    for dest in positional:
        value = getattr(args, dest)
        words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    for dest, value in vars(args).items():
        if dest in positional:
            continue
        option = "--" + dest.replace("_", "-")
        if dest == "write" or (dest == "section" and value == parser.get_default("section")):
            continue
        if isinstance(value, bool):
            words += [option] if value else []
        elif isinstance(value, list):
            words += [w for v in value for w in (option, str(v))]
        elif value is not None:
            words += [option, str(value)]
    return shlex.join(words)


def publish(text: str, args: argparse.Namespace) -> None:
    """Print a benchmark's table and, with ``--write``, replace its section of RESULTS.md."""
    print(text)
    if args.write:
        update_section(RESULTS, text, name=args.section)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so a reader never sees half of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; keep the file readable
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def update_section(path: Path, section: str, name: str = "throughput") -> None:
    """Replace the text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` (or append it), atomically."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{section.strip()}\n{end}"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old and old.index(begin) < old.index(end):
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    elif old.strip():
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    else:
        new = INTRO + "\n" + block + "\n"
    atomic_write_text(path, new)
