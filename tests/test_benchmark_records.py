"""The command a RESULTS.md table records is one a reader can run again (``benchmarks/_common.command_line``)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_recorded_command_keeps_positionals_in_place_and_every_option_but_write(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("_common", None)
    import _common

    parser = argparse.ArgumentParser(prog="capacity.py")
    parser.add_argument("out")
    parser.add_argument("labels", nargs="+")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(["runs/", "a=1", "b c", "--model", "x=y", "--fast", "--write"])
    line = _common.command_line(parser, args)
    assert line == "python benchmarks/capacity.py runs/ a=1 'b c' --steps 1000 --model x=y --fast"
    again = parser.parse_args(shlex.split(line)[2:])   # the same run, but for --write
    assert vars(again) == vars(args) | {"write": False}
