"""Where fusion puts the x-ray's correction, scored: the shipped model with each fusion policy on chapter 5's held-out
samples (against NN and ORACLE) and on the fetched real heads (against the even spread).

    python benchmarks/fusion_policy.py [--views 32] [--policies proportional:2,proportional:1,scaled:2,even] [--write]

Fusion (chapter 4, ``xtomo.imaging.fusion``) makes the network's answer re-project exactly to its x-ray; the x-ray
cannot say where along each ray the correction belongs. The paper spreads it in proportion to the answer's density
squared (``proportional``, beta 2); ``even`` spreads it evenly along the ray, ``scaled`` scales the ray when density
must go. Chapter 4 compares them by the volume's L2 on chapter 3's network; this scores the shipped model with each,
in both of chapter 5's metrics:

- chapter 5's held-out samples (``scoring.evaluation_indices``), ours / NN and ours / ORACLE of the mean L2 and DSSIM
  with the one-sided paired p, NN's and ORACLE's answers read from the ``evaluation.csv`` chapter 5 wrote (run
  ``xtomo run 5`` first; the samples are matched by index);
- each fetched real head with the shipped model that held it out (``shipped.held_out``), ``--views`` seeded views,
  ideal and physical, ours / even spread (``realcase.against_even``).

``--write`` records both tables in RESULTS.md (section ``fusion-policy``).
"""
from __future__ import annotations

import sys

from _common import benchmark_parser, busy_cores, command_line, even_section, heading, held_out_heads, publish

from xtomo.evaluation import realcase, scoring
from xtomo.evaluation.scoring import evaluation_indices, fused_at, score
from xtomo.files import artifacts_dir, read_csv
from xtomo.learning import shipped, train
from xtomo.learning.inference import reconstruct
from xtomo.profiles import get_profile


def policies(spec: str) -> list[tuple[str, float]]:
    """``POLICY[:BETA],...`` as (policy, beta) pairs (beta 2 where not given)."""
    out = []
    for item in spec.split(","):
        name, _, beta = item.partition(":")
        out.append((name, float(beta) if beta else 2.0))
    return out


def label(policy: str, beta: float) -> str:
    """A policy as the tables name it."""
    return f"{policy}, beta {beta:g}" if policy in ("proportional", "scaled") else policy


def held_out_species(chosen: list[tuple[str, float]]) -> list[dict]:
    """Ours / NN and ours / ORACLE per policy on chapter 5's held-out samples."""
    p = get_profile("quick")
    found = read_csv(artifacts_dir(p.name) / "evaluation.csv")
    by = {(r["method"], int(r["sample"])): r for r in found}
    _, val_set = train.train_val_sets(p)
    indices = [i for i in evaluation_indices(p, len(val_set)) if ("nn", i) in by]
    if not indices:
        raise SystemExit("fusion_policy: chapter 5's evaluation.csv holds none of its samples: run `xtomo run 5`")
    model, items = shipped.load(), [val_set[i] for i in indices]
    answers = [reconstruct(it["xray"][0], model, fuse=False) for it in items]   # once, then fused each way
    theirs = [by[m, i] for i in indices for m in ("nn", "oracle")]
    out = []
    for policy, beta in chosen:
        ours = [dict(sample=i, method="ours", **score(fused_at(a, it["xray"][0], it["volume"].shape[-1], p.chi,
                                                                policy, beta), it["volume"]))
                for i, a, it in zip(indices, answers, items)]
        row = dict(policy=label(policy, beta), samples=len(items))
        for metric in ("l2", "dssim"):
            row[f"{metric} ours"] = sum(o[metric] for o in ours) / len(ours)
            for t in scoring.paired_tests(ours + theirs, metric):      # the ratio of means and p, as chapter 5's
                row[f"{metric} ours/{t['method']}"], row[f"{metric} p ({t['method']})"] = t["ratio"], t["p_less"]
        out.append(row)
    return out


def species_table(rows: list[dict]) -> list[str]:
    """The held-out species' rows as a markdown table."""
    lines = ["| fusion | samples | L2 | L2 / NN | p | L2 / ORACLE | p | DSSIM | DSSIM / NN | p | DSSIM / ORACLE | p |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [r["policy"], str(r["samples"])]
        for metric in ("l2", "dssim"):
            cells.append(f"{r[f'{metric} ours']:.5f}" if metric == "l2" else f"{r[f'{metric} ours']:.4f}")
            for other in ("nn", "oracle"):
                cells += [f"{r[f'{metric} ours/{other}']:.3f}", f"{r[f'{metric} p ({other})']:.2g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def real_heads(chosen: list[tuple[str, float]], views: int) -> list[dict]:
    """Ours / even spread per policy on each fetched head, with the shipped model that held it out."""
    p = get_profile("quick")
    out = []
    for case, name, _, model, skull in held_out_heads(p.volume_size):
        for policy, beta in chosen:
            for acquisition in realcase.ACQUISITIONS:
                rows, _ = realcase.evaluate_volume(skull, model, p, views=views, seed=p.seed, name=case,
                                                   acquisition=acquisition, policy=policy, beta=beta)
                out += [dict(r, case=f"{case} ({name})", fusion=label(policy, beta))
                        for r in realcase.against_even(rows)]
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "fusion-policy")
    parser.add_argument("--views", type=int, default=32, help="seeded views per real head (default 32)")
    parser.add_argument("--policies", default="proportional:2,proportional:1,scaled:2,even",
                        help="fusion policies to score, POLICY[:BETA] separated by commas")
    args = parser.parse_args(argv)
    try:
        chosen = policies(args.policies)
    except ValueError:
        parser.error(f"--policies: expected POLICY[:BETA],..., got {args.policies!r}")
    busy = busy_cores()
    species = held_out_species(chosen)
    heads = real_heads(chosen, args.views)
    command = command_line(parser, args)
    lines = heading("Fusion policies: the shipped model on held-out species and held-out real heads (`quick`)",
                    command, busy)
    lines[-1] += (" Held-out species: chapter 5's samples and its NN and ORACLE answers (`evaluation.csv`), the shipped"
                  " model fused by each policy; one-sided paired p of \"ours is smaller\".")
    text = "\n".join(lines + [""] + species_table(species)) + "\n\n" + even_section(
        "Fusion policies: held-out real heads (`quick`)", f"Each fetched head with the shipped model that held it "
        f"out; {args.views} seeded views.", heads, {"head (model)": "case", "fusion": "fusion",
                                                    "acquisition": "acquisition"}, command, busy)
    publish(text, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
