"""A real skull as an evaluation case: x-rays from seeded views of a real CT, reconstructed and
scored against the CT itself.

Chapter 5's held-out species are procedural; a real skull asks whether what the network learned
carries over. Each view's x-ray and truth come from ``datasets.make_sample``, the pipeline the
training samples come from, so the network sees the real skull as it saw its training data. The
methods are ours (fused and not), NN when a sample bank is given, and the even spread of each
pixel's line integral along its ray (``classical.extrude``): it re-projects exactly, like our
fused output, but knows nothing of depth, so beating it is the least a reconstruction must do.
The rows have the fields of ``scoring.evaluate``'s, so ``scoring.summary_table`` and
``scoring.tests_table`` read them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xtomo import _checks as checks
from xtomo.data.datasets import make_sample
from xtomo.evaluation.scoring import our_volumes, reprojection, score
from xtomo.imaging import xray
from xtomo.methods import classical
from xtomo.profiles import Profile, get_profile

__all__ = ["evaluate_volume"]


def evaluate_volume(volume: torch.Tensor, model, profile: Profile | str = "quick", views: int = 8,
                    seed: int = 0, bank=None, name: str = "real skull", k: int = 16,
                    show: int = 0, shipped=None) -> tuple[list[dict], dict]:
    """Score ours, ours unfused, the even spread, (with ``bank``, a built ``SampleBank``) NN and
    (with ``shipped``, a second network: the package's) ``ours_shipped`` on ``views`` seeded
    x-rays of ``volume`` (``[S, S, S]`` at the profile's volume size).

    Returns the rows and, for the first ``show`` views, ``{"xrays": [...], "truth": [...], method:
    [...]}`` of the x-rays and view-aligned volumes, for ``figures.method_grid``.
    """
    p = get_profile(profile)
    volume, single = checks.volume(volume, what="evaluate_volume")
    if not single:
        raise ValueError(f"evaluate_volume: expected one volume [S, S, S], got shape {tuple(volume.shape)}")
    volume = volume[0]
    views = checks.integer(views, "views", minimum=1, what="evaluate_volume")
    if volume.shape[-1] != p.volume_size:
        raise ValueError(f"evaluate_volume: volume is {tuple(volume.shape)}, but profile {p.name!r} "
                         f"works at {p.volume_size}^3; load it at that size")
    directions = xray.sample_directions(views, seed=checks.integer(seed, "seed", what="evaluate_volume"))
    samples = [make_sample(volume, d, p) for d in directions]
    matches = bank.nn(torch.stack([a for a, _ in samples]), k=k) if bank is not None else [None] * views
    rows, shown = [], {"xrays": [], "truth": []}
    for i, (d, (alpha, truth), match) in enumerate(zip(directions, samples, matches)):
        ours = our_volumes(alpha, model, truth.shape[-1], p.chi)  # fused, then averaged down: still exact
        # the even spread of the line integrals averaged down to the volume's pixels: exact too
        depth = F.interpolate(classical.line_integrals(alpha, p.chi)[None, None], size=truth.shape[-2:],
                              mode="area")[0, 0]
        found = {"ours": ours["ours"][0], "ours_unfused": ours["ours_unfused"][0],
                 "extrude": classical.extrude(torch.exp(-p.chi * depth), n_steps=truth.shape[0], chi=p.chi)}
        if shipped is not None:
            found["ours_shipped"] = our_volumes(alpha, shipped, truth.shape[-1], p.chi)["ours"][0]
        if match is not None:
            found["nn"] = bank.sample(match)[1]
        if i < show:
            shown["xrays"].append(alpha)
            shown["truth"].append(truth)
            for method, out in found.items():
                shown.setdefault(method, []).append(out)
        az, el = xray.angles(d)
        base = dict(sample=i, specimen=-1, species=name, view=i, mirrored=0, azimuth=round(float(az), 2),
                    elevation=round(float(el), 2), view_class=xray.view_class(d)[0], seconds=0.0)
        for method, out in found.items():
            rows.append(dict(base, method=method, **score(out, truth), reprojection=reprojection(out, alpha, p.chi),
                             match=f"{match.specimen}/{match.view}/{int(match.mirrored)}"
                             if method == "nn" else ""))
    return rows, shown
