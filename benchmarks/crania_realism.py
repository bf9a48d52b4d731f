"""How far is each held-out species from its nearest training twin, and what does a skull cost?

    .venv/bin/python benchmarks/crania_realism.py                      # this checkout's crania
    .venv/bin/python benchmarks/crania_realism.py --code /tmp/old      # another checkout's crania
    .venv/bin/python benchmarks/crania_realism.py --write --label v2   # record it in RESULTS.md

The volumes are made by the ``xtomo`` of ``--code`` (a checkout of another commit: the generator
before a change) in a child process, at the `quick` profile's species, split and volume size, and
scored here by ``xtomo.specimens.morphospace.twin_distances`` (RMS density difference to the
nearest training species). It also times one 128^3 skull. ``--write`` adds or replaces the row of
``--label`` in the section between ``<!-- crania:begin -->`` and ``<!-- crania:end -->``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _common import RESULTS, busy_cores, machine_line, update_section

CHILD = """
import json, sys, time, torch
from xtomo.profiles import get_profile
from xtomo.specimens import crania
p = get_profile(sys.argv[2])
species = crania.catalog(p.n_species, seed=p.seed)
train, val = crania.split(species, p.n_val_species, seed=p.seed)
vols = torch.stack([crania.skull(s, p.volume_size, seed=p.seed) for s in species])
start = time.perf_counter()
crania.skull(species[0], 128, seed=p.seed)
seconds = time.perf_counter() - start
# the skulls chapter 1's realism check compares (xtomo.study.realism_check.realism_specimens, which
# an older checkout lacks): the first species of each order, and of each primate family
chosen, seen = {}, set()
for s in species:
    key = s.family if s.order == "Primates" else s.order
    if key not in seen:
        seen.add(key)
        chosen[s.name] = (s.order, crania.skull(s, 128, seed=p.seed))
torch.save(dict(volumes=vols, train=train, val=val, seconds=seconds, compared=chosen), sys.argv[1])
"""


def measure(code: Path | None, profile: str) -> dict:
    """Volumes made by the checkout ``code`` (or this one), scored with this checkout's morphospace."""
    from xtomo.specimens.morphospace import twin_distances

    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "volumes.pt"
        subprocess.run([sys.executable, "-c", CHILD, str(out), profile], check=True, env=env,
                       cwd=code or Path.cwd())
        data = torch.load(out)
    from xtomo.data.realdata import head
    from xtomo.study.realism_check import realism_report

    report = realism_report(head(128), data["compared"], observer_views=96, cnn_steps=150)
    d = twin_distances(data["volumes"], data["train"], data["val"])
    r = twin_distances(data["volumes"], data["train"], data["val"], relative=True)
    return dict(median=float(d.median()), min=float(d.min()), max=float(d.max()), mean=float(d.mean()),
                rel_median=float(r.median()), rel_min=float(r.min()), rel_max=float(r.max()),
                seconds=data["seconds"], n=len(d), within_primates=int(report.primates["within"].sum()),
                within_all=int(report.table["within"].sum()), statistics=len(report.table),
                outside_primates=[k for k, ok in report.primates["within"].items() if not ok],
                observer=str(report.observer), observer_accuracy=report.observer.accuracy,
                texture_observer=str(report.texture_observer),
                texture_accuracy=report.texture_observer.accuracy)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--code", type=Path, help="a checkout whose crania to measure (default: this one)")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    busy = busy_cores()
    row = measure(args.code, args.profile) | {"busy": busy}
    print(json.dumps(row))
    if args.write:
        store = RESULTS.with_name("crania_realism.json")
        rows = json.loads(store.read_text()) if store.exists() else {}
        rows[args.label] = row
        store.write_text(json.dumps(rows, indent=1))
        lines = ["## Procedural crania: nearest training twin of each held-out species", "",
                 f"Machine: {machine_line()}  ",
                 f"`benchmarks/crania_realism.py`, profile `{args.profile}`: RMS density difference between "
                 "each held-out species (individual 0) and its nearest training species, in the canonical "
                 "frame; the larger, the less a memorising baseline can find a near twin. *Relative*: "
                 "divided by the median distance to all training species (thinner bone shrinks every "
                 "difference; 1 = the nearest is no nearer than a typical species). "
                 "Seconds: one 128^3 skull (other work was using `busy` cores while it ran).", "",
                 "| generator | held-out | median | min | max | relative median | relative min | "
                 "relative max | seconds per 128^3 skull | busy cores |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {label} | {r['n']} | {r['median']:.4f} | {r['min']:.4f} | {r['max']:.4f} | "
                  f"{r['rel_median']:.3f} | {r['rel_min']:.3f} | {r['rel_max']:.3f} | "
                  f"{r['seconds']:.1f} | {r['busy']:.1f} |" for label, r in rows.items()]
        lines += ["", "Realism against the real head at 128^3 (`xtomo.study.realism_check.realism_report`, the "
                  "statistics of this checkout on each generator's skulls: one species per order and per primate "
                  "family; the CNN observers on 96 seeded directions, a quarter held out: one sees whole x-rays, "
                  "the other four patches a quarter of the side wide per x-ray, its texture):", "",
                  "| generator | statistics within the primates' range | within the range of all | outside (primates) "
                  "| observer of whole x-rays | observer of patches |", "|---|---:|---:|---|---|---|"]
        lines += [f"| {label} | {r['within_primates']} of {r['statistics']} | {r['within_all']} of {r['statistics']} | "
                  f"{', '.join(r['outside_primates'])} | {r['observer']} | "
                  f"{r.get('texture_observer', 'not measured')} |" for label, r in rows.items() if "observer" in r]
        update_section(RESULTS, "\n".join(lines), name="crania")
    return 0


if __name__ == "__main__":
    sys.exit(main())
