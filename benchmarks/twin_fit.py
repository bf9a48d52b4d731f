"""How near can a procedural skull come to the real head? The blurred-twin bound, and a search of the
human template's proportions.

    python benchmarks/twin_fit.py [--views 8] [--sigma 2] [--head second] [--write]
    python benchmarks/twin_fit.py --search [--start "braincase_width=0.33,orbit_drop=0"]

A network trained with L2 returns something like a blurred training skull whose densities the fusion
corrects along each ray to the x-ray's line integrals. So for a candidate skull this takes the head's
seeded views (`quick` sizes), blurs the candidate's view-aligned volume by a Gaussian of ``--sigma``
voxels, fuses it with the head's x-ray (``fusion.fuse``, as our networks' output is; rays it misses get
the even spread) and scores the RMSE against the head over the even spread's (per view, then averaged):
the *twin ratio*.
A family whose best skull cannot beat the bar (issue 16: 0.7) cannot teach a network to. The head's own
truth, blurred alike, is the floor. ``--search`` moves one proportion of the Hominidae template at a
time by the factors below while the twin ratio falls (the fit behind crania v6's human template).
``--head second`` takes the second real head (``realdata.second_head``, blind to the template's fit)
instead of the first. ``--write`` replaces the ``twin-fit`` section of RESULTS.md (``twin-fit-second``
for the second head).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import torch
from _common import RESULTS, busy_cores, heading, update_section

from xtomo.data import realdata
from xtomo.data.augment import blurred
from xtomo.data.datasets import view_target
from xtomo.imaging import fusion, xray
from xtomo.methods import classical
from xtomo.profiles import get_profile
from xtomo.specimens import crania

HEADS = {"first": realdata.head, "second": realdata.second_head}  #: the real heads, by ``--head``

#: The Hominidae template of crania v5, before the fit: what ``--search`` started from.
V5_HUMAN = dict(braincase_width=0.33, braincase_height=0.33, braincase_floor=0.5, base_drop=0.4, snout_width=0.5,
                snout_taper=0.8, jaw_depth=0.10, orbit_drop=0.0)
SEARCHED = ["braincase_width", "braincase_length", "braincase_height", "braincase_floor", "base_drop", "snout_drop",
            "snout_height", "snout_width", "snout_length", "orbit_drop", "orbit_size", "jaw_depth", "zygomatic_span",
            "braincase_wall", "snout_taper", "molar_height", "snout_wall"]
FACTORS = (0.7, 0.85, 1.15, 1.3)


class Head:
    """A real head's view-aligned truths at the `quick` sizes, and the twin ratio of a candidate."""

    def __init__(self, views: int, sigma: float, which: str = "first"):
        self.p = get_profile("quick")
        self.sigma = sigma
        self.directions = xray.sample_directions(views, seed=self.p.seed)
        head = HEADS[which](self.p.volume_size)
        self.truths = [view_target(head, d, self.p) for d in self.directions]
        self.xrays = [xray.composite(t, self.p.chi) for t in self.truths]
        self.evens = [classical.extrude(a, t.shape[0], self.p.chi) for a, t in zip(self.xrays, self.truths)]

    def blurred(self, volume: torch.Tensor) -> torch.Tensor:
        return blurred(volume[None].float(), torch.tensor([self.sigma]))[0]

    def ratios(self, volume: torch.Tensor, aligned: bool = False) -> list[float]:
        """Per view: RMSE of the blurred ``volume`` fused with the head's x-ray (as our networks' output
        is), over the even spread's."""
        out = []
        for i, (d, truth, alpha, even) in enumerate(zip(self.directions, self.truths, self.xrays, self.evens)):
            twin = self.blurred(volume[i] if aligned else view_target(volume, d, self.p))
            fused = fusion.fuse(twin, alpha, self.p.chi)
            out.append(float(((fused - truth) ** 2).mean().sqrt() / ((even - truth) ** 2).mean().sqrt()))
        return out


def human(overrides: dict) -> crania.Species:
    """The Hominidae template with ``overrides`` of its proportions."""
    t = crania.family_template("Hominidae")
    return replace(t, params=replace(t.params, **overrides))


def rows(head: Head) -> list[dict]:
    """The twin ratio of the head's own truth, both human templates, every family's template and the
    training Hominidae (best and mean of six)."""
    size = head.p.volume_size
    out = [dict(candidate="the head itself (the floor)", ratios=head.ratios(torch.stack(head.truths), aligned=True))]
    out.append(dict(candidate=f"Hominidae template, crania {crania.VERSION}", ratios=head.ratios(
        crania.skull(human({}), size))))
    out.append(dict(candidate="Hominidae template, crania v5", ratios=head.ratios(crania.skull(human(V5_HUMAN), size))))
    cat = crania.catalog()
    train, _ = crania.split(cat)
    hominids = [cat[i] for i in train if cat[i].family == "Hominidae"][:6]
    scored = [head.ratios(crania.skull(s, size)) for s in hominids]
    means = [sum(r) / len(r) for r in scored]
    out.append(dict(candidate=f"best of {len(hominids)} training Hominidae", ratios=scored[means.index(min(means))]))
    out.append(dict(candidate=f"mean of {len(hominids)} training Hominidae",
                    ratios=[sum(v) / len(v) for v in zip(*scored)]))
    for order, spec in crania.ORDERS.items():
        for family in spec["families"]:
            if family != "Hominidae":
                out.append(dict(candidate=f"{family} template ({order})",
                                ratios=head.ratios(crania.skull(crania.family_template(family), size))))
    return out


def search(head: Head, start: dict, rounds: int = 2) -> dict:
    """Coordinate search of the Hominidae template from ``start``: each proportion in turn times each of
    ``FACTORS``, a move kept when it lowers the mean twin ratio by 0.001; printed as it goes."""
    def mean_ratio(overrides):
        r = head.ratios(crania.skull(human(overrides), head.p.volume_size))
        return sum(r) / len(r)

    kept, best = dict(start), mean_ratio(start)
    print(f"start {best:.4f} {kept}", flush=True)
    for round_ in range(rounds):
        for name in SEARCHED:
            value = kept.get(name, getattr(human({}).params, name))
            for factor in FACTORS if value else ():
                trial = dict(kept, **{name: value * factor})
                ratio = mean_ratio(trial)
                if ratio < best - 1e-3:
                    best, kept = ratio, trial
                    print(f"round {round_}: {name} x {factor} -> {best:.4f}", flush=True)
    print(f"final {best:.4f} {({k: round(v, 4) for k, v in kept.items()})}")
    return kept


def table(found: list[dict], command: str, busy: float, which: str = "first") -> str:
    title = "the real head" if which == "first" else "the second real head (blind)"
    lines = heading(f"Twin ratio: how near a procedural skull comes to {title}", command, busy)
    lines[-1] += (" RMSE over the even spread's of the candidate blurred and fused with the head's x-ray "
                  "(per view, then averaged); the lower, the more a network could learn of the head.")
    n = len(found[0]["ratios"])
    lines += ["", "| candidate | twin ratio | best view | worst view |", "|---|---:|---:|---:|"]
    for r in found[:5] + sorted(found[5:], key=lambda r: sum(r["ratios"])):
        v = r["ratios"]
        lines.append(f"| {r['candidate']} | {sum(v) / n:.3f} | {min(v):.3f} | {max(v):.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=8, help="seeded views of the head (default 8)")
    parser.add_argument("--sigma", type=float, default=2.0, help="blur of the candidate, voxels (default 2)")
    parser.add_argument("--head", choices=sorted(HEADS), default="first", help="which real head (default first)")
    parser.add_argument("--search", action="store_true", help="search the Hominidae template's proportions")
    parser.add_argument("--start", default="", help="the search's start: NAME=VALUE,... over the template")
    parser.add_argument("--write", action="store_true", help=f"record the table in {RESULTS.name}")
    args = parser.parse_args(argv)
    busy = busy_cores()
    head = Head(args.views, args.sigma, args.head)
    if args.search:
        search(head, {k: float(v) for k, v in (item.split("=") for item in args.start.split(",") if item)})
        return 0
    command = f"python benchmarks/twin_fit.py --views {args.views} --sigma {args.sigma:g} --head {args.head}"
    text = table(rows(head), command, busy, args.head)
    print(text)
    if args.write:
        update_section(RESULTS, text, name="twin-fit" if args.head == "first" else "twin-fit-second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
