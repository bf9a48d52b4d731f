"""Training throughput at a profile's scale on one device: samples/s of the device pipeline alone, of
training alone (synthetic batches) and of the two together, peak memory and utilisation.

    python benchmarks/gpu.py [--profile paper] [--species 24] [--seconds 20] [--compile] [--write]

Beside them, today's path for comparison: a ``DataLoader`` over the
dataset with the profile's workers. On a GPU this is issue 19's measurement (goal: 1,500 training
samples/s end to end at the paper's 256^2 -> 128^3); on a CPU it reports the CPU's figures, and
``--profile smoke --seconds 1`` is the CI-sized check that the script runs (``tests/test_pipeline.py``). The pipeline is
``xtomo.data.pipeline.DevicePipeline`` over the first ``--species`` specimens of the profile's
training split (its speed does not depend on how many are held; the memory row gives what the
whole split takes); training is ``xtomo.learning.train``'s own step (the profile's objective and
precision, channels-last, optionally ``torch.compile``d). Each phase is timed over ``--seconds``
after warm-up steps, with the device synchronised at both ends. The bound is the slower of the
two parts alone. ``--write`` replaces the ``gpu`` section of RESULTS.md (``gpu-on-cpu`` for a CPU's figures).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import threading
import time

import torch
from _common import RESULTS, busy_cores, heading, update_section

from xtomo.data.datasets import ProceduralBank, XrayDataset
from xtomo.data.pipeline import DevicePipeline
from xtomo.learning import train
from xtomo.profiles import get_profile
from xtomo.specimens import crania

WARMUP = 3  # steps before each timing: autotuning, allocator and (with --compile) the compilation


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(work, batch: int, seconds: float, device: torch.device) -> float:
    """Samples/s of ``work()`` (one batch of ``batch`` per call) over at least ``seconds``, after warm-up."""
    for _ in range(WARMUP):
        work()
    _sync(device)
    began, calls = time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - began < seconds:
        work()
        calls += 1
        if device.type == "cuda" and calls % 8 == 0:
            _sync(device)  # keep the host within a few steps of the device, so the clock means something
    _sync(device)
    return calls * batch / (time.perf_counter() - began)


class Utilisation:
    """Mean GPU utilisation (nvidia-smi, sampled twice a second) or, on a CPU, this process's CPU
    time over wall time, in cores, between ``start`` and ``stop``."""

    def __init__(self, device: torch.device):
        self.device, self.samples, self._stop = device, [], threading.Event()

    def _poll(self) -> None:
        index = self.device.index or 0
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
                self.samples.append(float(out.stdout.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return

    def __enter__(self):
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        if self.device.type == "cuda":
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.cpu_cores = (time.process_time() - self._cpu) / (time.perf_counter() - self._wall)

    def text(self) -> str:
        if self.device.type == "cuda":
            return f"GPU {sum(self.samples) / len(self.samples):.0f} %" if self.samples else "GPU n/a (no nvidia-smi)"
        return f"{self.cpu_cores:.1f} CPU cores"


def measure(profile: str, species: int, seconds: float, compile_model: bool, device: torch.device) -> dict:
    """The figures of one device: rates of the three phases, memory, utilisation, what bounds it."""
    p = get_profile(profile)
    bank = ProceduralBank(p)
    train_ids = crania.split(bank.species, p.n_val_species, seed=p.seed)[0]
    dataset = XrayDataset(bank, train_ids[:species], p)
    pipe = DevicePipeline(dataset, device)
    run = train._start(p, p.steps, 0, 1, device, None)
    net = torch.compile(run.model) if compile_model else run.model
    autocast = train.mixed_precision(device, p.precision)
    steps = iter(range(10**9))
    indices = lambda: train.step_indices(p.seed, next(steps), p.batch_size, len(pipe))  # noqa: E731
    synthetic = pipe.batch(indices())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loader = iter(torch.utils.data.DataLoader(dataset, batch_sampler=train._Steps(p.seed, 0, 10**9, p.batch_size,
                                                                                 len(dataset)), num_workers=p.workers))
    out = dict(loader=rate(lambda: next(loader)["volume"].to(device), p.batch_size, seconds, device),
               pipeline=rate(lambda: pipe.batch(indices()), p.batch_size, seconds, device),
               training=rate(lambda: train._step(run, net, synthetic, autocast), p.batch_size, seconds, device))
    with Utilisation(device) as use:
        out["together"] = rate(lambda: train._step(run, net, pipe.batch(indices()), autocast),
                               p.batch_size, seconds, device)
    out["bound"] = "the sample pipeline" if out["pipeline"] < out["training"] else "the network's step"
    out["utilisation"] = use.text()
    out["peak"] = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                   else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30
    out["split_gib"] = len(train_ids) * pipe.volumes[0].numel() * pipe.volumes.element_size() / 2**30
    out |= dict(profile=p.name, batch=p.batch_size, precision=p.precision, sizes=f"{p.xray_size}² → {p.volume_size}³",
                species=species, compiled=compile_model, device=device.type if device.type == "cpu"
                else torch.cuda.get_device_name(device))
    return out


def table(r: dict, command: str, busy: float) -> str:
    lines = heading(f"Training throughput on one device (`{r['profile']}` profile)", command, busy)
    lines[-1] += (f" Device: {r['device']}. Samples/s over the timing window after {WARMUP} warm-up steps; "
                  "the DataLoader is today's CPU path (`XrayDataset`, the profile's workers, moved to the device), "
                  "the pipeline is `xtomo.data.pipeline.DevicePipeline`, training is `xtomo.learning.train`'s "
                  "step on synthetic batches. Memory: peak allocated on the GPU (on a CPU: peak RSS).")
    lines += ["", "| sizes | batch | precision | compiled | DataLoader alone | pipeline alone | training alone "
              "| together | bound by | utilisation (together) | peak memory GiB | training split on device GiB |",
              "|---|---:|---|---|---:|---:|---:|---:|---|---|---:|---:|",
              f"| {r['sizes']} | {r['batch']} | {r['precision']} | {'yes' if r['compiled'] else 'no'} "
              f"| {r['loader']:.1f} | {r['pipeline']:.1f} | {r['training']:.1f} | {r['together']:.1f} | {r['bound']} "
              f"| {r['utilisation']} "
              f"| {r['peak']:.2f} | {r['split_gib']:.2f} |"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", help="the profile whose scale is measured (default paper)")
    parser.add_argument("--species", type=int, default=24, help="specimens held by the pipeline (default 24)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timing window per phase (default 20)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network first")
    parser.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    parser.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    busy = busy_cores()
    r = measure(args.profile, args.species, args.seconds, args.compile, device)
    command = (f"python benchmarks/gpu.py --profile {args.profile} --species {args.species} "
               f"--seconds {args.seconds:g}{' --compile' if args.compile else ''}")
    text = table(r, command, busy)
    print(text)
    if args.write:
        update_section(RESULTS, text, name="gpu" if device.type == "cuda" else "gpu-on-cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
