"""The picture metric from views the x-ray never had. The paper scores DSSIM from the x-ray's own view (Sec. 5.2),
where fusion makes our answers cast the input exactly, and shows novel views (its Fig. 17) without scoring them.
Here chapter 5's volumes (``scoring.volumes_of``) are turned (``xray.turn``), rendered as iso-surfaces at chapter 5's
level and scored by DSSIM against the truth turned the same way, so ours meets NN and ORACLE where depth shows."""
from __future__ import annotations

import pandas as pd
import torch

from xtomo import _checks as checks
from xtomo.evaluation import metrics, scoring
from xtomo.imaging import render, xray
from xtomo.profiles import Profile, get_profile

__all__ = ["TURNS", "rows", "scored", "table"]

#: Camera turns (azimuth, elevation in degrees, ``xray.turn``'s) by name; the first is the x-ray's own view.
TURNS = {"x-ray's view": (0.0, 0.0), "turned 45°": (45.0, 0.0), "turned 90°": (90.0, 0.0),
         "from above": (0.0, 60.0)}


def rows(samples: list[int], profile: Profile | str = "quick", results: list[dict] | None = None,
         turns: dict[str, tuple[float, float]] | None = None, out_dir=None, chunk: int = 10) -> list[dict]:
    """``scored`` for chapter 5's ``samples``: every method that ``results`` (default: chapter 5's
    ``evaluation.csv``) scored but the classical one and the unfused answer; volumes are regenerated
    (``scoring.volumes_of``) ``chunk`` samples at a time."""
    p = get_profile(profile)
    chunk = checks.integer(chunk, "chunk", minimum=1, what="novelviews.rows")
    results = results if results is not None else scoring.read_results(p, out_dir)
    methods = [*scoring.ours_methods(results), "nn", "oracle"]
    out = []
    for start in range(0, len(samples), chunk):
        part = samples[start:start + chunk]
        out += scored(scoring.volumes_of(part, p, results, out_dir), methods, turns, part)
    return out


def scored(volumes: dict, methods: list[str], turns: dict[str, tuple[float, float]] | None = None,
           samples: list | None = None) -> list[dict]:
    """One row per case, turn and method (``sample``, ``turn``, ``method``, ``dssim``) of view-aligned volumes
    ``{method: [volume per case], "truth": [...]}`` (``scoring.volumes_of``'s, ``realcase.evaluate_volume``'s
    shown ones), each turned and rendered beside the truth turned alike; cases are named by ``samples``
    (default 0, 1, ...)."""
    turns = TURNS if turns is None else turns
    if not turns:
        raise ValueError("novelviews.scored: no turns given")
    samples = range(len(volumes["truth"])) if samples is None else samples
    out = []
    for k, sample in enumerate(samples):
        for name, (azimuth, elevation) in turns.items():
            seen = torch.stack([xray.turn(volumes[m][k], azimuth, elevation) for m in [*methods, "truth"]])
            pictures = render.iso(seen, level=scoring.LEVEL)
            out += [dict(sample=sample, turn=name, method=m, dssim=float(metrics.dssim(picture, pictures[-1])))
                    for m, picture in zip(methods, pictures)]
    return out


def table(found: list[dict]) -> pd.DataFrame:
    """Per turn (rows) and network of ours (outer columns): its mean DSSIM over NN's and ORACLE's, with the
    one-sided paired p of "ours is smaller" (``scoring.paired_tests``)."""
    entries: dict[str, dict] = {}
    for turn in dict.fromkeys(r["turn"] for r in found):
        here = [r for r in found if r["turn"] == turn]
        for ours in scoring.ours_methods(here):
            tests = {t["method"]: t for t in scoring.paired_tests(here, "dssim", ours)}
            for other in ("nn", "oracle"):
                entries.setdefault(turn, {})[scoring.OURS[ours], f"/ {other.upper()}"] = tests[other]["ratio"]
                entries[turn][scoring.OURS[ours], f"p vs {other.upper()}"] = tests[other]["p_less"]
    return pd.DataFrame(entries).T
