"""Data-generation throughput of xtomo on this CPU: samples/s, skull generation time, peak RSS.

One sample is one x-ray plus its view-aligned volume, made exactly as the dataset makes it
(``xtomo.data.make_sample``) for a stream of random view directions. Beside it: the same through a
``DataLoader`` with two workers, a plain single-pass trilinear 3-D ``grid_sample`` baseline,
batched ``xtomo.xray.align``, and the one-off cost of a procedural skull volume.

    .venv/bin/python benchmarks/throughput.py            # full run (about 2 minutes on 2 cores)
    .venv/bin/python benchmarks/throughput.py --quick    # fewer repeats, shorter timing windows
    .venv/bin/python benchmarks/throughput.py --write    # also update benchmarks/RESULTS.md

``--write`` replaces only the section between ``<!-- throughput:begin -->`` and
``<!-- throughput:end -->`` of RESULTS.md (atomically), keeping the rest of the file.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from xtomo import anatomy, data, xray  # noqa: E402
from xtomo.profiles import get_profile  # noqa: E402

BEGIN, END = "<!-- throughput:begin -->", "<!-- throughput:end -->"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TARGET = 30.0         # samples/s at 128^3 on 2 cores, from the issue
ISSUE_BASELINE = 7.0  # what the issue quotes for plain trilinear resampling

INTRO = """# Benchmark results

Measured numbers only: every table below is written by a script in this folder, never typed.
`benchmarks/throughput.py` measures how fast the on-the-fly dataset makes training samples on a
CPU (one sample = one x-ray plus its view-aligned volume, made by `xtomo.data.make_sample` for a
random view direction), the same through a two-worker `DataLoader`, a plain trilinear 3-D
`grid_sample` baseline, batched `xtomo.xray.align`, the one-off cost of a procedural skull
volume, and the peak memory. Rerun with `.venv/bin/python benchmarks/throughput.py --write`
(add `--quick` for a 30-second check that also overwrites the section); it replaces only its own
section of this file.
"""


# --------------------------------------------------------------------------- measurement

@dataclass
class Row:
    name: str
    volume: str
    xray: str
    rates: list = field(default_factory=list)  # samples/s of each repeat
    error: str | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")


def timed_rate(step, per_call: int, min_time: float, repeats: int, warmup: int = 2) -> list[float]:
    """Samples/s of ``repeats`` windows of at least ``min_time`` s each, after ``warmup`` calls.

    ``step(i)`` makes ``per_call`` samples; ``i`` counts calls so that each one gets a new
    direction. The number of calls per window is calibrated from the warm-up.
    """
    i = 0
    t0 = time.perf_counter()
    for _ in range(warmup):
        step(i)
        i += 1
    per_step = (time.perf_counter() - t0) / warmup
    n = max(1, math.ceil(min_time / max(per_step, 1e-9)))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            step(i)
            i += 1
        elapsed = time.perf_counter() - t0
        if elapsed < min_time:  # warm-up was slower than steady state: top the window up
            while elapsed < min_time:
                step(i)
                i += 1
                n += 1
                elapsed = time.perf_counter() - t0
        rates.append(n * per_call / elapsed)
    return rates


def rotation_matrices(dirs: torch.Tensor) -> torch.Tensor:
    """Rotations ``[N, 3, 3]`` taking +z to each direction: Rz(azimuth) Ry(polar)."""
    dirs = dirs.double()
    az = torch.atan2(dirs[:, 1], dirs[:, 0])
    po = torch.acos(dirs[:, 2].clamp(-1, 1))
    ca, sa, cp, sp = az.cos(), az.sin(), po.cos(), po.sin()
    z, o = torch.zeros_like(az), torch.ones_like(az)
    rz = torch.stack([ca, -sa, z, sa, ca, z, z, z, o], 1).reshape(-1, 3, 3)
    ry = torch.stack([cp, z, sp, z, o, z, -sp, z, cp], 1).reshape(-1, 3, 3)
    return (rz @ ry).float()


def trilinear_sample(volume: torch.Tensor, rot: torch.Tensor, chi: float = xray.CHI):
    """The baseline: one trilinear 3-D grid_sample pass, then Beer-Lambert along depth."""
    n = volume.shape[-1]
    theta = torch.cat([rot, torch.zeros(3, 1)], dim=1)[None]
    grid = F.affine_grid(theta, [1, 1, n, n, n], align_corners=False)
    aligned = F.grid_sample(volume[None, None], grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)[0, 0]
    alpha = torch.exp(-chi / n * aligned.sum(dim=0))
    return alpha, aligned


def run_row(row: Row, fn) -> Row:
    t0 = time.perf_counter()
    try:
        row.rates = fn()
    except Exception as exc:  # one broken row must not hide the others
        row.error = f"{type(exc).__name__}: {exc}".replace("|", "/").replace("\n", " ")[:160]
    print(f"  {row.name:<44s} {row.volume:>5s} {row.xray:>5s}  "
          + (f"{row.median:8.1f} samples/s" if not row.error else row.error)
          + f"   ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return row


def dataloader_rates(profile, min_time: float, repeats: int, n_species: int = 4) -> list[float]:
    """Samples/s of a shuffled DataLoader(batch 16, 2 workers) over a 4-species ProceduralBank."""
    with tempfile.TemporaryDirectory(prefix="xtomo-bench-") as cache:
        bank = data.ProceduralBank(profile, cache_dir=cache)
        for k in range(n_species):  # pre-generate (and cache on disk) the canonical volumes
            bank.volume(k)
        ds = data.XrayDataset(bank, specimens=range(n_species), profile=profile)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=16, num_workers=2, shuffle=True,
            generator=torch.Generator().manual_seed(0))
        it = iter(loader)
        try:
            for _ in range(4):  # worker start-up and first batches are not throughput
                next(it)
            rates = []
            for _ in range(repeats):
                t0, n = time.perf_counter(), 0
                while time.perf_counter() - t0 < min_time:
                    n += len(next(it)["xray"])
                rates.append(n / (time.perf_counter() - t0))
            return rates
        finally:
            del it  # shut the workers down before the cache folder goes


# --------------------------------------------------------------------------- machine

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


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident set of this process and of its (reaped) children, MiB (Linux: KiB units)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 ** 2
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return own, kids


# --------------------------------------------------------------------------- report

def fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def render(rows, skulls, baseline_rate, meta) -> str:
    lines = [
        f"Machine: {meta['machine']}  ",
        f"Measured {meta['date']} by `{meta['command']}`: each row is the median of "
        f"{meta['repeats']} timing windows of at least {meta['min_time']:g} s after warm-up "
        f"(min–max in brackets).",
        "",
        "| what | volume | x-ray | samples/s | ms/sample | vs. trilinear | note |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.name} | {r.volume} | {r.xray} | failed | | | {r.error} |")
            continue
        m = r.median
        spread = f" [{fmt(min(r.rates))}–{fmt(max(r.rates))}]" if len(r.rates) > 1 else ""
        same_work = r.volume == "128³" and r.xray == "128²"  # what the baseline makes
        ratio = f"{m / baseline_rate:.1f}×" if baseline_rate == baseline_rate and same_work else ""
        lines.append(f"| {r.name} | {r.volume} | {r.xray} | {fmt(m)}{spread} | "
                     f"{fmt(1000 / m, 2)} | {ratio} | {r.note} |")
    lines += [
        "",
        "| procedural skull volume (`xtomo.anatomy.skull`) | seconds per volume "
        f"(median of {meta['skull_species']} species) | min–max |",
        "|---|---:|---:|",
    ]
    for size, times in skulls.items():
        if isinstance(times, str):
            lines.append(f"| {size}³ | failed | {times} |")
        else:
            lines.append(f"| {size}³ | {statistics.median(times):.2f} | "
                         f"{min(times):.2f}–{max(times):.2f} |")
    own, kids = meta["rss"]
    phases = ", ".join(f"{mib:,.0f} MiB after {phase}" for phase, mib in meta["rss_phases"])
    lines += ["", f"Peak RSS (`resource.getrusage(...).ru_maxrss`): {own:,.0f} MiB in the benchmark "
                  f"process ({phases}); {kids:,.0f} MiB in the largest child, a DataLoader worker, "
                  f"whose count includes the pages it shares with the parent after fork.  ",
              f"Other processes kept {meta['load'][0]:.2f} cores busy just before the run and "
              f"{meta['load'][1]:.2f} just after it (from /proc/stat over 0.5 s; near zero means "
              f"the benchmark had the CPU to itself; the brackets show the spread within the run)."]
    return "\n".join(lines)


def interpret(rows_by_key, skulls, meta) -> str:
    """A paragraph built from the measured numbers (so that it stays true on a rerun)."""
    get = lambda k: rows_by_key[k].median if k in rows_by_key and not rows_by_key[k].error else float("nan")
    r128, paper, base = get("128"), get("paper"), get("trilinear")
    batched, quick, loader = get("batched"), get("quick"), get("loader")
    cores = meta["threads"]
    parts = []
    if r128 == r128:
        verdict = "meets" if r128 >= TARGET else "misses"
        parts.append(
            f"**Target.** At 128³ (128² x-ray) `make_sample` runs at {fmt(r128)} samples/s with "
            f"{cores} torch threads, so it {verdict} the issue's target of {TARGET:g} samples/s"
            + (f"; the plain single-pass trilinear 3-D `grid_sample` makes {fmt(base)} samples/s "
               f"on the same machine (the issue quotes about {ISSUE_BASELINE:g}), so the two-pass "
               f"bilinear alignment is {r128 / base:.1f}× faster." if base == base else "."))
    if paper == paper:
        train = get_profile("paper")
        n_train = train.n_train_species * train.samples_per_species
        ratio = f", {r128 / paper:.1f}× slower than at 128²," if r128 == r128 else ""
        parts.append(
            f"**Paper profile.** It makes {fmt(paper)} samples/s{ratio} because every sample "
            f"marches 256²×128 ray points (one per depth slice of each of 256² rays) through both "
            f"bilinear passes: 4× the work of a 128² x-ray. On top of that 4× come the "
            f"Beer–Lambert sum and the area-averaging of the 256²×128 aligned stack back to the "
            f"128² target, and each intermediate stack grows from 8 MiB to 32 MiB (256²×128 "
            f"float32), so more of the work streams through memory. The CPU is bound by that "
            f"resampling volume; one pass over the profile's {n_train:,} "
            f"training samples would take about {n_train / paper / 3600:.1f} h here, which is "
            f"why the paper profile is meant for a GPU.")
    if batched == batched and r128 == r128:
        gain = batched / r128
        word = ("helps" if gain > 1.1 else "does not help" if gain < 0.9 else "makes little difference")
        parts.append(
            f"**Batching.** `xray.align` on a batch of 8 volumes at 128³ gives {fmt(batched)} "
            f"samples/s against {fmt(r128)} one at a time ({gain:.2f}×): on this CPU batching "
            f"{word}"
            + (", since one 128³ sample is already a `grid_sample` call large enough to keep "
               f"{cores} threads busy." if gain < 1.1 else "."))
    if loader == loader and quick == quick:
        parts.append(
            f"**DataLoader.** The `quick` profile through `DataLoader(batch_size=16, num_workers=2)` "
            f"delivers {fmt(loader)} samples/s against {fmt(quick)} in process "
            f"({loader / quick:.2f}×; each worker runs single-threaded, and collation and "
            f"inter-process transfer of the 64³ volumes are included).")
    s128 = skulls.get(128)
    if isinstance(s128, list):
        p = get_profile("paper")
        parts.append(
            f"**Skull volumes.** A 128³ procedural skull takes {statistics.median(s128):.1f} s, "
            f"so all {p.n_species} species cost about {p.n_species * statistics.median(s128) / 60:.0f} "
            f"min once; they are cached on disk, so this is not a per-sample cost.")
    return "\n\n".join(parts)


def update_results(path: Path, section: str) -> None:
    """Replace the text between the markers (or append the section), atomically."""
    block = f"{BEGIN}\n{section.strip()}\n{END}"
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old and old.index(BEGIN) < old.index(END):
        start, stop = old.index(BEGIN), old.index(END) + len(END)
        new = old[:start] + block + old[stop:]
    elif old.strip():
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    else:
        new = INTRO + "\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(new)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter windows, fewer repeats (< 40 s)")
    ap.add_argument("--write", action="store_true", help=f"update the throughput section of {RESULTS.name}")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the file --write updates")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="first wait up to S seconds for other processes to leave the CPU idle")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads before measuring")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    min_time, repeats, n_skull = (0.6, 2, 2) if args.quick else (3.0, 3, 3)
    deadline = time.monotonic() + args.wait_idle
    load_start = busy_cores()
    while load_start > 0.25 and time.monotonic() < deadline:
        time.sleep(5)
        load_start = busy_cores(1.0)
    started = time.perf_counter()
    rss_phases = []
    species = anatomy.catalog(20)
    dirs = xray.sample_directions(4096, seed=1)  # the random-direction stream, cycled
    print(f"{machine_line()}\nmeasuring ({'quick' if args.quick else 'full'}) ...",
          file=sys.stderr, flush=True)
    if load_start > 0.5 * (os.cpu_count() or 1):
        print(f"warning: {load_start:.2f} cores busy before starting: other processes use the CPU, "
              f"rates will be low", file=sys.stderr, flush=True)

    # 5. procedural skulls (first: the 64^3 and 128^3 ones are reused below)
    anatomy.skull(species[0], 16)  # warm-up of the SDF code paths
    skulls, volumes = {}, {}
    for size in (32, 64, 128):
        try:
            times = []
            for k in range(n_skull):
                t0 = time.perf_counter()
                vol = anatomy.skull(species[k], size)
                times.append(time.perf_counter() - t0)
                volumes.setdefault(size, vol)
            skulls[size] = times
            print(f"  skull {size}³: {statistics.median(times):.2f} s/volume", file=sys.stderr, flush=True)
        except Exception as exc:
            skulls[size] = f"{type(exc).__name__}: {exc}"[:160]
    for size in (64, 128):  # needed below even if the timing failed
        volumes.setdefault(size, anatomy.skull(species[0], size))
    rss_phases.append(("skull generation", peak_rss_mib()[0]))

    # 1. make_sample, exactly as XrayDataset makes each item
    paper = get_profile("paper")
    configs = [("64", "make_sample", 64, 64, ""),
               ("128", "make_sample", 128, 128, ""),
               ("quick", "make_sample, `quick` profile", 64, 128, "x-ray area-averaged to 64³ target"),
               ("paper", "make_sample, `paper` profile", 128, 256, "x-ray area-averaged to 128³ target")]
    rows = {}
    for key, label, vs, xs, note in configs:
        prof = paper.replace(volume_size=vs, xray_size=xs)
        vol = volumes[vs]
        step = lambda i, vol=vol, prof=prof: data.make_sample(vol, dirs[i % len(dirs)], prof)
        rows[key] = run_row(Row(label, f"{vs}³", f"{xs}²", note=note),
                            lambda step=step: timed_rate(step, 1, min_time, repeats))

    rss_phases.append(("make_sample", peak_rss_mib()[0]))

    # 2. the quick profile through a DataLoader with two workers
    quick = get_profile("quick")
    rows["loader"] = run_row(
        Row("DataLoader(XrayDataset), `quick` profile", "64³", "128²",
            note="batch 16, 2 workers, shuffled, 4 species"),
        lambda: dataloader_rates(quick, min_time, repeats))

    # 3. the baseline: one trilinear 3-D grid_sample pass
    vol128 = volumes[128]
    rots = rotation_matrices(dirs)
    rows["trilinear"] = run_row(
        Row("baseline: trilinear 3-D grid_sample", "128³", "128²",
            note="affine_grid + one grid_sample, sum, exp"),
        lambda: timed_rate(lambda i: trilinear_sample(vol128, rots[i % len(rots)]), 1, min_time, repeats))

    # 4. batched align (+ composite, so it makes what make_sample makes at 128³/128²)
    batch = vol128[None].repeat(8, 1, 1, 1).contiguous()

    def batched_step(i):
        d = dirs[torch.arange(i * 8, i * 8 + 8) % len(dirs)]
        return xray.composite(xray.align(batch, d, n_steps=128, size=128))

    rows["batched"] = run_row(
        Row("xray.align + composite, batch of 8", "128³", "128²", note="samples/s = 8 × batches/s"),
        lambda: timed_rate(batched_step, 8, min_time, repeats))

    baseline = rows["trilinear"].median if not rows["trilinear"].error else float("nan")
    order = ["64", "128", "quick", "paper", "loader", "trilinear", "batched"]
    meta = dict(machine=machine_line(), repeats=repeats, min_time=min_time,
                date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                command="python benchmarks/throughput.py" + (" --quick" if args.quick else ""),
                skull_species=n_skull, threads=torch.get_num_threads(), rss=peak_rss_mib(),
                rss_phases=rss_phases,
                load=(load_start, busy_cores()))
    table = render([rows[k] for k in order], skulls, baseline, meta)
    section = "## Throughput\n\n" + table + "\n\n" + interpret(rows, skulls, meta)
    print(section)
    print(f"\n(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)

    failed = [r.name for r in rows.values() if r.error] + [f"skull {s}³" for s, t in skulls.items()
                                                            if isinstance(t, str)]
    if failed:
        print(f"failed: {', '.join(failed)}" + ("; not writing results" if args.write else ""),
              file=sys.stderr)
        return 1
    if args.write:
        update_results(args.results, section)
        print(f"wrote the throughput section of {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
