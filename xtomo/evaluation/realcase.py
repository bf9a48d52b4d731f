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

Two acquisitions (``ACQUISITIONS``): ``"ideal"``, the Beer–Lambert x-rays the network trained on, and
``"physical"``, the skull (bone mineral, no soft tissue: a dry skull) through chapter 8's micro-CT
(``reality.scanner``: polychromatic spectrum, scatter, photon noise, detector blur), stored as an
8-bit image under display gamma 2.2 and read back as a user would: gamma undone, 1 % of the pixels taken
as air, and the beam hardening in bone undone for a usual skull radiograph's tube (70 kVp, 2.5 mm aluminium;
``xtomo reconstruct --tube 70``), which the reader takes it to come from (``acquisition.read_back``, as the
training x-rays of ``xtomo train --physical`` are read). The truth is the same CT either way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xtomo import _checks as checks
from xtomo.data import io
from xtomo.data.augment import blurred
from xtomo.data.datasets import make_sample, view_target
from xtomo.evaluation import stats
from xtomo.evaluation.reality import scanner
from xtomo.evaluation.scoring import METHODS, fusion_of, our_volumes, ours_methods, reprojection, score
from xtomo.imaging import microct, xray
from xtomo.learning.acquisition import read_back
from xtomo.methods import classical
from xtomo.profiles import Profile, get_profile

__all__ = ["ACQUISITIONS", "SYMMETRIES", "ANSWERS", "REGIONS", "acquire", "against_even_by_answers",
           "evaluate_volume", "even_spread", "SOFTENINGS", "softened", "with_line_integrals", "softened_ratios",
           "against_even", "head_regions", "error_by_region", "ratio_table", "held_out_network"]

ACQUISITIONS = ("ideal", "physical")   #: how ``evaluate_volume`` x-rays the skull
SYMMETRIES = (None, "view", "estimate")  #: how ``evaluate_volume`` makes our answers symmetric (None: not)
#: our answers as ``evaluate_volume`` makes them on request: name -> (what they are, its symmetry, its level)
ANSWERS = {"plain": ("as the network answers", None, False),
           "view": ("symmetric about the view's plane", "view", False),
           "level": ("symmetric about the view's plane, leveled", "view", True)}
#: ``error_by_region``'s parts of a head; "elsewhere" is what a view's volume holds outside the skull's cube
REGIONS = ("vault", "skull base and back", "face and jaw", "elsewhere")
SOFTENINGS = (1.0, 2.0, 3.0)           #: sigmas (voxels) of ``softened_ratios``' softened truths


def acquire(volume: torch.Tensor, direction: torch.Tensor, p: Profile, acquisition: str = "ideal",
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The x-ray ``[S, S]`` of a dry skull ``[V, V, V]`` from ``direction`` and its view-aligned
    truth, by the ideal (Beer–Lambert) or the physical acquisition (module docstring)."""
    checks.choice(acquisition, "acquisition", ACQUISITIONS, "acquire")
    if acquisition == "ideal":
        return make_sample(volume, direction, p)
    recorded = microct.expose(torch.zeros_like(volume), volume, direction, scanner(p), size=p.xray_size,
                              n_steps=p.n_steps, seed=seed)
    return read_back(recorded, p.chi), view_target(volume, direction, p)


def evaluate_volume(volume: torch.Tensor, model, profile: Profile | str = "quick", views: int = 8,
                    seed: int = 0, bank=None, name: str = "real skull", k: int = 16,
                    show: int = 0, others: dict | None = None, acquisition: str = "ideal",
                    symmetry: str | None = None, level: bool = False, policy: str = "proportional",
                    beta: float = 2.0) -> tuple[list[dict], dict]:
    """Score ours, ours unfused, the even spread, (with ``bank``, a built ``SampleBank``) NN and
    our ``others`` networks (``{method: network}``, e.g. ``ours_surface``, ``ours_shipped``), fused,
    on ``views`` seeded x-rays of ``volume`` (``[S, S, S]`` at the profile's volume size), taken by
    ``acquisition``. ``symmetry`` (``SYMMETRIES``) makes our networks' answers bilaterally symmetric
    about the plane of each view's known direction (``"view"``) or about one they estimate (``"estimate"``);
    ``level`` first turns each x-ray in its plane as ``inference.leveled`` chooses (it needs ``"view"``).
    ``policy`` and ``beta`` are fusion's (``fusion.fuse``; default the paper's), for every network but those that
    ``scoring.POLICY`` fuses its own way.

    Returns the rows and, for the first ``show`` views, ``{"xrays": [...], "truth": [...], method:
    [...]}`` of the x-rays and view-aligned volumes, for ``figures.method_grid``, and their ``"directions"``.
    """
    p = get_profile(profile)
    volume, single = checks.volume(volume, what="evaluate_volume")
    if not single:
        raise ValueError(f"evaluate_volume: expected one volume [S, S, S], got shape {tuple(volume.shape)}")
    volume = volume[0]
    views = checks.integer(views, "views", minimum=1, what="evaluate_volume")
    checks.choice(symmetry, "symmetry", SYMMETRIES, "evaluate_volume")
    if level and symmetry != "view":
        raise ValueError("evaluate_volume: level judges the turns about the plane of the known view; give "
                         "symmetry='view'")
    if volume.shape[-1] != p.volume_size:
        raise ValueError(f"evaluate_volume: volume is {tuple(volume.shape)}, but profile {p.name!r} "
                         f"works at {p.volume_size}^3; load it at that size")
    directions = xray.sample_directions(views, seed=checks.integer(seed, "seed", what="evaluate_volume"))
    samples = [acquire(volume, d, p, acquisition, seed=seed * 1_000_003 + i) for i, d in enumerate(directions)]
    matches = bank.nn(torch.stack([a for a, _ in samples]), k=k) if bank is not None else [None] * views
    rows, shown = [], {"xrays": [], "truth": [], "directions": []}
    for i, (d, (alpha, truth), match) in enumerate(zip(directions, samples, matches)):
        plane = d if symmetry == "view" else symmetry
        # fused, then averaged down: still exact
        ours = our_volumes(alpha, model, truth.shape[-1], p.chi, plane, level, policy, beta)
        found = {"ours": ours["ours"][0], "ours_unfused": ours["ours_unfused"][0],
                 "extrude": even_spread(alpha, truth.shape, p.chi)}
        found |= {m: our_volumes(alpha, net, truth.shape[-1], p.chi, plane, level, fusion_of(m, policy), beta)
                  ["ours"][0] for m, net in (others or {}).items()}
        if match is not None:
            found["nn"] = bank.sample(match)[1]
        if i < show:
            shown["xrays"].append(alpha)
            shown["truth"].append(truth)
            shown["directions"].append(d)
            for method, out in found.items():
                shown.setdefault(method, []).append(out)
        az, el = xray.angles(d)
        base = dict(sample=i, specimen=-1, species=name, acquisition=acquisition, view=i, mirrored=0,
                    azimuth=round(float(az), 2),
                    elevation=round(float(el), 2), view_class=xray.view_class(d)[0], seconds=0.0)
        for method, out in found.items():
            rows.append(dict(base, method=method, **score(out, truth), reprojection=reprojection(out, alpha, p.chi),
                             match=f"{match.specimen}/{match.view}/{int(match.mirrored)}"
                             if method == "nn" else ""))
    return rows, shown


def against_even_by_answers(volume: torch.Tensor, model, profile: Profile | str, views: int, seed: int, name: str,
                            answers=tuple(ANSWERS)) -> list[dict]:
    """``against_even``'s row of ``model`` on ``volume`` per acquisition and each of ``answers`` (keys of
    ``ANSWERS``), that row's ``answers`` field saying which."""
    out = []
    for key in answers:
        label, symmetry, level = ANSWERS[key]
        for acquisition in ACQUISITIONS:
            found, _ = evaluate_volume(volume, model, profile, views=views, seed=seed, name=name,
                                       acquisition=acquisition, symmetry=symmetry, level=level)
            out += [dict(row, answers=label) for row in against_even(found)]
    return out


def even_spread(alpha: torch.Tensor, shape, chi: float) -> torch.Tensor:
    """The x-ray's line integrals averaged down to the pixels of a view-aligned volume of ``shape`` ``[D, H, W]``
    and spread evenly along each ray: the baseline every reconstruction is scored beside (it re-projects exactly)."""
    depth = F.interpolate(classical.line_integrals(alpha, chi)[None, None], size=tuple(shape[-2:]), mode="area")[0, 0]
    return classical.extrude(torch.exp(-chi * depth), n_steps=shape[0], chi=chi)


def softened(truth: torch.Tensor, sigma: float) -> torch.Tensor:
    """A view-aligned truth ``[D, H, W]`` smoothed by a Gaussian of ``sigma`` voxels, each ray rescaled to its
    line integral as our fused answers are: an answer that knows where every wall lies but draws it softer."""
    return with_line_integrals(blurred(truth[None], torch.tensor([float(sigma)]))[0], truth.sum(0))


def with_line_integrals(volume: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
    """A view-aligned ``volume`` ``[D, H, W]`` with each ray scaled so that it sums to ``sums`` ``[H, W]`` along the
    depth (a ray that holds nothing stays empty): an answer re-projecting as the x-ray it was made for."""
    total = volume.sum(0)
    return volume * torch.where(total > 1e-6, sums / total.clamp_min(1e-6), torch.zeros(()))


def softened_ratios(volume: torch.Tensor, profile: Profile | str = "quick", sigmas=SOFTENINGS, views: int = 8,
                    seed: int = 0) -> dict[float, float]:
    """The RMSE ratio over the even spread (``against_even``'s) that the truth ``softened`` by each sigma scores
    on ``evaluate_volume``'s ideal views of ``volume``: the scale to read our ratios on (RESULTS ``depth-floor``)."""
    p = get_profile(profile)
    sigmas = [checks.number(s, "sigma", minimum=0, what="softened_ratios") for s in sigmas]
    soft, even = torch.zeros(len(sigmas), dtype=torch.float64), 0.0
    for d in xray.sample_directions(checks.integer(views, "views", minimum=1, what="softened_ratios"), seed=seed):
        alpha, truth = make_sample(volume, d, p)
        even += float(even_spread(alpha, truth.shape, p.chi).sub(truth).square().mean().sqrt())
        soft += torch.stack([softened(truth, s).sub(truth).square().mean().sqrt() for s in sigmas]).double()
    return {s: float(r) / even for s, r in zip(sigmas, soft)}


def against_even(rows: list[dict]) -> list[dict]:
    """Per acquisition and model of ours (fused), how it compares with the even spread over the
    views: mean L2, RMSE (per view, then averaged) and DSSIM of both, the ratios ours / even, and
    the one-sided paired p (t-test over views) of "ours has the smaller L2" and "... DSSIM". A ratio whose
    even spread scores 0 on every view (a volume too faint for DSSIM to see any structure) is NaN.

    A view is paired by its skull (the rows' ``species``, ``evaluate_volume``'s ``name``) and index,
    so the rows of several skulls pool into one comparison over all their views."""
    out = []
    for acquisition in dict.fromkeys(r.get("acquisition", "ideal") for r in rows):
        here = [r for r in rows if r.get("acquisition", "ideal") == acquisition]
        by = {(r["method"], (r.get("species"), int(r["view"]))): r for r in here}
        views = sorted(v for m, v in by if m == "extrude")
        for ours in ours_methods(here):
            row = dict(acquisition=acquisition, model=METHODS[ours], views=len(views))
            for metric in ("l2", "rmse", "dssim"):
                field = "l2" if metric == "rmse" else metric
                a = [float(by[ours, v][field]) ** (0.5 if metric == "rmse" else 1) for v in views]
                b = [float(by["extrude", v][field]) ** (0.5 if metric == "rmse" else 1) for v in views]
                row |= {f"{metric} ours": sum(a) / len(a), f"{metric} even": sum(b) / len(b),
                        f"{metric} ours/even": sum(a) / sum(b) if sum(b) > 0 else float("nan")}
                if metric != "rmse":
                    row[f"{metric} p"] = stats.paired_t(a, b).p_less if len(views) > 1 else float("nan")
            out.append(row)
    return out


def held_out_network(ct, others: dict, profile: Profile | str = "quick") -> dict:
    """``{"ours_held_out": network}`` where the shipped model among ``others`` (the profile's,
    ``shipped.name_for``) trained on the real CT ``ct`` (a ``realmix.RealCT``) and its recipe without that CT
    ships too (``shipped.held_out``); else ``{}``. Beside the shipped model's rows on a CT it saw, these are the
    fair ones."""
    from xtomo.learning import shipped

    name = shipped.name_for(get_profile(profile))
    fair = shipped.held_out(ct, name) if "ours_shipped" in others else None
    return {"ours_held_out": shipped.load(fair)} if fair not in (None, name) else {}


def ratio_table(compared: list[dict]) -> str:
    """``against_even``'s rows as a plain-text table: per acquisition, the L2, RMSE and DSSIM ratios and p."""
    lines = ["acquisition  L2 ratio  RMSE ratio  DSSIM ratio  p (ours has the smaller L2)"]
    lines += [f"{r['acquisition']:<11}  {r['l2 ours/even']:8.3f}  {r['rmse ours/even']:10.3f}  "
              f"{r['dssim ours/even']:11.3f}  {r['l2 p']:.2g}" for r in compared]
    return "\n".join(lines)


def head_regions(volume: torch.Tensor) -> dict[str, torch.Tensor]:
    """0/1 masks ``[S, S, S]`` of a skull's parts in the canonical frame (z up, y forward), cut at the
    centre of its bone's bounding box (``io.framing``'s: voxels above 5 % of the densest): the upper half
    is the vault, the lower half behind the centre the skull base and the back of the head, in front of it
    the face and jaw."""
    volume, single = checks.volume(volume, what="head_regions")
    if not single:
        raise ValueError(f"head_regions: expected one volume [S, S, S], got shape {tuple(volume.shape)}")
    volume = volume[0]
    (cz, cy, _), _ = io.framing(volume.cpu().numpy(), source="head_regions")   # the bone's bounding-box centre
    index = torch.arange(volume.shape[0])
    upper = (index >= cz)[:, None, None].expand_as(volume)
    front = (index >= cy)[None, :, None].expand_as(volume)
    return {"vault": upper.float(), "skull base and back": (~upper & ~front).float(),
            "face and jaw": (~upper & front).float()}


def error_by_region(volume: torch.Tensor, model, profile: Profile | str = "quick", views: int = 8,
                    seed: int = 0, policy: str = "proportional") -> list[dict]:
    """Where on a skull ``[S, S, S]`` our reconstruction (fused) goes wrong, from ``evaluate_volume``'s ideal
    x-rays: per part of ``REGIONS`` (``head_regions`` aligned to each view like the truth, so a voxel counts
    by the share of it inside the part), the part's share of the truth's bone, of our squared error and of
    the even spread's, summed over the views, and the ratio of the two errors within it. ``policy`` is fusion's."""
    p = get_profile(profile)
    _, shown = evaluate_volume(volume, model, p, views=views, seed=seed, show=views, policy=policy)
    parts = head_regions(volume)
    sums = {r: torch.zeros(3, dtype=torch.float64) for r in REGIONS}
    for d, truth, ours, even in zip(shown["directions"], shown["truth"], shown["ours"], shown["extrude"]):
        weights = {name: view_target(mask, d, p) for name, mask in parts.items()}
        weights["elsewhere"] = 1 - sum(weights.values())
        for name, w in weights.items():
            sums[name] += torch.stack([(w * truth).sum(), (w * (ours - truth).square()).sum(),
                                       (w * (even - truth).square()).sum()]).double()
    total = sum(sums.values())
    return [dict(region=name, bone=float(v[0] / total[0]), ours=float(v[1] / total[1]), even=float(v[2] / total[2]),
                 ratio=float(v[1] / v[2]) if v[2] > 0 else float("nan")) for name, v in sums.items()]
