"""Speed of ``xtomo.imaging.render`` on this CPU: one 256² image of a 128³ procedural skull per mode.

The skull is ``crania.skull(catalog(1)[0], 128)`` seen from azimuth 30, elevation 20 (128 ray
steps). Every mode (iso with ambient occlusion and SH lighting, DVR with the bone transfer and
shading, MIP, x-ray, anaglyph) is timed from the canonical volume, camera resampling included:
the median of several repeats after one warm-up. A repeat during which other processes took
more than a quarter of a core is redone (up to three times) and the row says how busy they were.

    .venv/bin/python benchmarks/render_speed.py            # about a minute on 2 idle cores
    .venv/bin/python benchmarks/render_speed.py --quick    # fewer repeats, a quick check
    .venv/bin/python benchmarks/render_speed.py --write    # also update benchmarks/RESULTS.md

``--write`` replaces only the section between ``<!-- render-speed:begin -->`` and
``<!-- render-speed:end -->`` of RESULTS.md, and refuses rows that other processes disturbed
unless ``--force``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import sys
import time

import torch
from _common import RESULTS, busy_cores, machine_line, update_section

from xtomo.imaging import render, xray
from xtomo.specimens import crania

VOLUME, IMAGE, VIEW = 128, 256, (30.0, 20.0)
BUSY = 0.25   # cores other processes may take during a kept repeat


def modes(volume: torch.Tensor, view: torch.Tensor) -> dict:
    """What each row times: one image from the canonical volume."""
    return {
        "iso (AO + SH lighting + specular)": lambda: render.iso(volume, view, size=IMAGE),
        "iso, no AO": lambda: render.iso(volume, view, size=IMAGE, ao=0),
        "dvr (bone, shaded)": lambda: render.dvr(volume, view, "bone", size=IMAGE),
        "dvr (bone, unshaded)": lambda: render.dvr(volume, view, "bone", size=IMAGE, shading=0),
        "mip": lambda: render.mip(volume, view, size=IMAGE),
        "xray": lambda: render.radiograph(volume, view, size=IMAGE),
        "anaglyph (two iso renders)": lambda: render.anaglyph(volume, view, size=IMAGE),
    }


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median seconds of ``repeats`` calls after a warm-up, and the most other cores used by a kept one."""
    fn()
    times, others = [], []
    for _ in range(repeats):
        for attempt in range(3):
            before = busy_cores(0.2)
            start = time.perf_counter()
            fn()
            seconds = time.perf_counter() - start
            if before <= BUSY or attempt == 2:
                break
        times.append(seconds)
        others.append(before)
    return statistics.median(times), max(others)


def report(rows: list[tuple[str, float, float]], machine: str, repeats: int) -> str:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Render speed",
        "",
        f"Machine: {machine}  ",
        f"Measured {when} by `python benchmarks/render_speed.py`: one {IMAGE}² image of a {VOLUME}³ "
        f"procedural skull (`crania.skull(catalog(1)[0], {VOLUME})`) from azimuth {VIEW[0]:g}, "
        f"elevation {VIEW[1]:g}, {VOLUME} ray steps, camera resampling (`xray.align`) included; "
        f"median of {repeats} repeats after a warm-up. *Others*: the most cores other processes "
        "took just before a kept repeat.",
        "",
        "| mode | ms / image | images / s | others |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds, others in rows:
        lines.append(f"| {name} | {seconds * 1e3:.0f} | {1 / seconds:.1f} | {others:.2f} |")
    ms = {name: s * 1e3 for name, s, _ in rows}
    iso, plain = ms.get("iso (AO + SH lighting + specular)", 0), ms.get("iso, no AO", 0)
    lines += [
        "",
        f"Every mode resamples the {VOLUME}³ volume into the camera frame first ({IMAGE}² × {VOLUME} "
        f"samples; the x-ray row is little more than that). The iso-surface adds the first crossing, "
        f"normals from a blurred copy and four ambient-occlusion scales "
        f"({iso - plain:.0f} ms of its {iso:.0f} ms); "
        "DVR classifies every sample through pre-integrated transfer tables and composites with a "
        "cumulative product; the anaglyph is two iso renders.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two repeats per mode (a quick check)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--write", action="store_true", help=f"update the render-speed section of {RESULTS.name}")
    ap.add_argument("--force", action="store_true", help="write even rows that other processes disturbed")
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else args.repeats

    machine = machine_line()
    volume = crania.skull(crania.catalog(1)[0], VOLUME)
    view = xray.direction(*VIEW)
    rows = []
    with torch.inference_mode():
        for name, fn in modes(volume, view).items():
            seconds, others = timed(fn, repeats)
            rows.append((name, seconds, others))
            print(f"{name}: {seconds * 1e3:.0f} ms (others {others:.2f} cores)", file=sys.stderr)
    text = report(rows, machine, repeats)
    print(text)
    if args.write and max(r[2] for r in rows) > BUSY and not args.force:
        print(f"not written: other processes took up to {max(r[2] for r in rows):.2f} cores during "
              "kept repeats; rerun on an idle machine (or pass --force)", file=sys.stderr)
        return 1
    if args.write:
        update_section(RESULTS, text, name="render-speed")
        print(f"updated {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
