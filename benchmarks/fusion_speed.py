"""High-resolution fusion on this CPU: voxels/s and peak memory of ``xtomo.imaging.fusion.fuse_to_file``.

A procedural skull (``crania.skull(catalog(5)[0], 128)``) seen from one view gives the coarse
prediction: its view-aligned 128 x 128² volume, 15% too dense (a stand-in for a network's error).
Its x-ray is simulated at 512² and upsampled bilinearly to each size, 512², 1024² and 2048²;
every (size, policy) is fused into a temporary ``.nii`` by a fresh child process, which reports its
wall time and its own peak resident memory (``VmHWM``), so sizes do not inherit each other's peaks.

    .venv/bin/python benchmarks/fusion_speed.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/fusion_speed.py --write    # also update benchmarks/RESULTS.md

``--write`` replaces only the section between ``<!-- fusion-speed:begin -->`` and
``<!-- fusion-speed:end -->`` of RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import RESULTS, busy_cores, machine_line, update_section

from xtomo.imaging import fusion, xray
from xtomo.specimens import crania

SLICES = 128
OVERESTIMATE = 1.15


def memory_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(inputs: Path, size: int, policy: str, tile: int, out: Path) -> None:
    """One measurement: fuse the stored prediction with its x-ray at ``size``² into ``out``; print JSON."""
    data = torch.load(inputs)
    alpha = F.interpolate(data["alpha"][None, None], size=(size, size), mode="bilinear",
                          align_corners=False)[0, 0].clamp(0, 1)
    before = memory_mib("VmRSS")
    start = time.perf_counter()
    fusion.fuse_to_file(data["mu"], alpha, out, tile=tile, policy=policy, progress=False)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rss_before": before, "peak": memory_mib("VmHWM"),
                      "bytes": out.stat().st_size, "threads": torch.get_num_threads()}))


def make_inputs(path: Path) -> None:
    """The coarse prediction and the 512² x-ray of one skull view, saved for the children."""
    volume = crania.skull(crania.catalog(5)[0], 128)
    view = xray.direction(30, 20)
    mu = xray.align(volume, view, n_steps=SLICES) * OVERESTIMATE
    alpha = xray.simulate(volume, view, n_steps=SLICES, size=512)
    torch.save({"mu": mu.contiguous(), "alpha": alpha}, path)


def measure(inputs: Path, size: int, policy: str, tile: int, folder: Path) -> dict:
    """Run one child, note the CPU other processes took just before, delete its output."""
    others = busy_cores(1.0)
    out = folder / f"fused_{size}_{policy}.nii"
    proc = subprocess.run([sys.executable, __file__, "--child", str(inputs), str(size), policy,
                           str(tile), str(out)], capture_output=True, text=True, check=False)
    out.unlink(missing_ok=True)
    if proc.returncode:
        raise RuntimeError(f"child for {size}² {policy} failed:\n{proc.stderr}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "size": size, "policy": policy,
            "others": others}


def render(rows: list[dict], tile: int, machine: str) -> str:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Fusion speed",
        "",
        f"Machine: {machine}  ",
        f"Measured {when} by `python benchmarks/fusion_speed.py`: `xtomo.imaging.fusion.fuse_to_file` fusing a "
        f"{SLICES}-slice 128² coarse prediction (a procedural skull view, {OVERESTIMATE:g}× too dense) "
        f"with its x-ray (simulated at 512², upsampled) into an uncompressed float32 `.nii`, "
        f"`tile={tile}` (blocks of about {tile}² pixels). One fresh process per row; *peak RSS* is "
        "its VmHWM (Python, torch and the inputs included), *before* its resident memory when "
        "fusion started; *others* the cores other processes took just before the row.",
        "",
        "| x-ray | output voxels | output | policy | seconds | Mvoxels/s | peak RSS (MiB) | before (MiB) "
        "| others |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        voxels = SLICES * r["size"] ** 2
        lines.append(f"| {r['size']}² | {voxels / 1e6:.0f} M | {r['bytes'] / 2**30:.2f} GiB | "
                     f"{r['policy']} | {r['seconds']:.1f} | {voxels / r['seconds'] / 1e6:.1f} | "
                     f"{r['peak']:.0f} | {r['rss_before']:.0f} | {r['others']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--policies", nargs="+", default=["proportional", "scaled"],
                    choices=list(fusion.POLICIES))
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--write", action="store_true", help=f"update the fusion-speed section of {RESULTS.name}")
    ap.add_argument("--child", nargs=5, metavar=("INPUTS", "SIZE", "POLICY", "TILE", "OUT"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        inputs, size, policy, tile, out = args.child
        child(Path(inputs), int(size), policy, int(tile), Path(out))
        return 0

    machine = machine_line()
    with tempfile.TemporaryDirectory(prefix="fusion_speed_") as folder:
        folder = Path(folder)
        make_inputs(folder / "inputs.pt")
        rows = []
        for size in args.sizes:
            for policy in args.policies:
                rows.append(measure(folder / "inputs.pt", size, policy, args.tile, folder))
                print(f"{size}² {policy}: {rows[-1]['seconds']:.1f} s, peak {rows[-1]['peak']:.0f} MiB",
                      file=sys.stderr)
    text = render(rows, args.tile, machine)
    print(text)
    if args.write:
        update_section(RESULTS, text, name="fusion-speed")
        print(f"updated {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
