"""The picture metric from views the x-ray never had: chapter 5's held-out samples, every method's iso-surface
rendered from the x-ray's view and from turned cameras, DSSIM against the truth's render from the same camera.

    python benchmarks/novel_views.py [--samples 120] [--turns 0,0:45,0:90,0:0,60:180,0] [--write]

Chapter 5 scores the paper's DSSIM from the x-ray's own view, where fusion makes every one of our answers cast the
input exactly; NN and ORACLE return whole skulls, right or wrong from every side. The paper shows novel views
(its Fig. 17) but scores none. This renders the volumes that chapter 5 scored (``scoring.volumes_of``: its networks
of ours, each fused by its own policy, and NN's and ORACLE's recorded matches) from each turn
(``xray.turn``: azimuth, elevation in degrees) and reports per turn each method's mean DSSIM, and for each network
of ours the ratios to NN and ORACLE with the one-sided paired p of "ours is smaller" (``xtomo.evaluation.novelviews``,
which chapter 5 uses at fewer turns). Run ``xtomo run 5`` first.

``--write`` records the table in RESULTS.md (section ``novel-views``).
"""
from __future__ import annotations

import sys

from _common import benchmark_parser, busy_cores, command_line, heading, publish

from xtomo.evaluation import novelviews, scoring
from xtomo.profiles import get_profile


def turns(spec: str) -> dict[str, tuple[float, float]]:
    """``AZ,EL:AZ,EL:...`` (degrees) as ``novelviews.rows``' turns, each named by its angles."""
    out = {}
    for item in spec.split(":"):
        azimuth, elevation = (float(v) for v in item.split(","))
        out[f"{azimuth:g}°, {elevation:g}°"] = (azimuth, elevation)
    return out


def table(found: list[dict], others=("nn", "oracle"), lead: str = "") -> list[str]:
    """Per turn: mean DSSIM of each method, then each network of ours over each of ``others`` (with p); ``lead``
    names the case in a first column."""
    names = [scoring.METHODS[o] for o in others]
    header = f"| {lead + ' | ' if lead else ''}turn (azimuth, elevation) | method | cases | DSSIM | "
    lines = [header + " | ".join(f"/ {n} | p" for n in names) + " |",
             "|" + "---|" * (3 + bool(lead)) + "---:|" * (2 + 2 * len(others))]
    for case, turn in dict.fromkeys((r.get("case", ""), r["turn"]) for r in found):
        here = [r for r in found if r["turn"] == turn and r.get("case", "") == case]
        for method, s in {s["method"]: s for s in scoring.summary(here, "dssim")}.items():
            cells = ([case] if lead else []) + [turn, s["label"], str(s["n"]), f"{s['mean']:.4f}"]
            if method in scoring.OURS:
                tests = {t["method"]: t for t in scoring.paired_tests(here, "dssim", method)}
                cells += [f"{tests[o][k]:.3f}" if k == "ratio" else f"{tests[o][k]:.2g}"
                          for o in others for k in ("ratio", "p_less")]
            else:
                cells += [""] * (2 * len(others))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def real_heads(views: int, chosen: dict) -> list[dict]:
    """``novelviews.scored`` rows of each fetched head's ideal x-rays: the shipped model that held it out, NN and the
    even spread, each row named by its head (``case``)."""
    from _common import held_out_heads

    from xtomo.evaluation import realcase
    from xtomo.files import artifacts_dir
    from xtomo.learning import train
    from xtomo.methods.baselines import SampleBank

    p = get_profile("quick")
    bank = SampleBank(train.train_val_sets(p)[0], progress=False).build(artifacts_dir(p.name) / scoring.BANK_FILE)
    out = []
    for label, name, _, model, skull in held_out_heads(p.volume_size):
        _, shown = realcase.evaluate_volume(skull, model, p, views=views, seed=p.seed, bank=bank, show=views)
        found = novelviews.scored(shown, ["ours", "extrude", "nn"], chosen)
        out += [dict(r, case=f"{label} (`{name}`)") for r in found]
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "novel-views")
    parser.add_argument("--samples", type=int, default=120,
                        help="at most this many of chapter 5's samples (default 120)")
    parser.add_argument("--turns", default="0,0:45,0:90,0:0,60:180,0",
                        help="camera turns AZ,EL (degrees) separated by colons; 0,0 is the x-ray's own view")
    parser.add_argument("--heads", type=int, default=0, metavar="VIEWS",
                        help="instead: each fetched real head from VIEWS seeded ideal x-rays, the shipped model that "
                             "held it out against NN and the even spread (section novel-views-heads)")
    args = parser.parse_args(argv)
    try:
        chosen = turns(args.turns)
    except ValueError:
        parser.error(f"--turns: expected AZ,EL:AZ,EL:..., got {args.turns!r}")
    busy = busy_cores()
    if args.heads:
        args.section = "novel-views-heads" if args.section == "novel-views" else args.section
        found, title = real_heads(args.heads, chosen), "the real heads, each held out (`quick`)"
        text = table(found, ("nn", "extrude"), lead="head (model)")
    else:
        results = scoring.read_results("quick")
        samples = list(dict.fromkeys(int(r["sample"]) for r in results))[:args.samples]
        found, title = novelviews.rows(samples, "quick", results, chosen), "chapter 5's held-out samples (`quick`)"
        text = table(found)
    lines = heading(f"The picture metric from novel views: {title}", command_line(parser, args), busy)
    lines[-1] += (" Iso-surfaces at chapter 5's level rendered from each turn of the x-ray's camera; DSSIM against"
                  " the truth's render from the same camera; p: one-sided paired t-test of \"ours is smaller\".")
    publish("\n".join(lines + [""] + text), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
