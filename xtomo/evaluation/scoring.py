"""Chapter 5's protocol (Henzler et al. 2018, Sec. 5.3): every method on held-out samples.

For a seeded subset of the validation samples (held-out species only) it scores our network
with and without fusion, NN, ORACLE and, on the first few, the classical single-view method.
Both of the paper's metrics are kept per sample: the volume L2 (mean squared voxel error) and
DSSIM between iso-surface renders from the x-ray's view; PSNR and 3-D SSIM are kept too, and
how far each volume is from casting the input x-ray (``reprojection``: zero, to float rounding,
for the truth and for our fused output). The slice-count study of Sec. 5.3 is run on the same
samples. Results go to CSV files in the profile's artifacts, rewritten atomically after every
chunk, so an interrupted run resumes.

The chapters read the results through the tables here (``summary_table``, ``tests_table``,
``fusion_table``, ``beside_paper_table``, ``classical_comparison``, ``slice_table``,
``view_table``: pandas DataFrames); ``wording`` puts their paired tests into words.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from xtomo.evaluation import metrics, stats
from xtomo.files import artifacts_dir, read_csv, read_json, require_artifact, write_csv, write_json
from xtomo.imaging import fusion, render, xray
from xtomo.learning.inference import VERSION as INFERENCE
from xtomo.learning.inference import reconstruct, square
from xtomo.learning.shipped import for_profile as shipped_for
from xtomo.methods import classical
from xtomo.methods.baselines import SampleBank
from xtomo.profiles import Profile, get_profile
from xtomo.specimens import crania

__all__ = ["BANK_FILE", "METHODS", "METRIC_LABELS", "PAPER", "SLICE_COUNTS", "VIEW_CLASSES", "evaluation_indices",
           "OURS", "POLICY", "SURFACE_RUN", "evaluate", "other_networks", "fusion_of", "fused_answers", "fused_at",
           "our_volumes", "score", "reprojection", "depth_resampled", "read_results", "ours_methods", "grid_columns",
           "by_method", "summary", "paired_tests", "volumes_of", "beside_paper", "summary_table", "tests_table",
           "fusion_table", "reprojection_table", "beside_paper_table", "classical_comparison", "slice_table", "by_view",
           "view_table"]

#: Method keys in the order tables and plots show them, with their labels.
METHODS = {"ours": "ours (fused)", "ours_unfused": "ours, no fusion", "ours_surface": "ours, surface objective (fused)",
           "ours_shipped": "ours, shipped model (fused)", "ours_shipped_even": "ours, shipped model (even fusion)",
           "ours_held_out": "ours, shipped recipe without this real CT (fused)", "nn": "NN", "oracle": "ORACLE",
           "classical": "classical (WENGER-like)", "extrude": "even spread along each ray"}

#: Means reported by Henzler et al. (2018, Sec. 5.3) on their UTCT validation set.
PAPER = {"l2": {"ours": 0.051, "nn": 0.067, "oracle": 0.060},
         "dssim": {"ours": 0.097, "nn": 0.109, "oracle": 0.110}}

#: The paper's two metrics, with the labels tables and figures give them.
METRIC_LABELS = {"l2": "L2 (mean squared voxel error)", "dssim": "DSSIM of iso-surface renders"}

SLICE_COUNTS = (8, 16, 32, 64)
#: Where chapter 3 leaves the network it trains under the surface objective, inside the artifacts folder.
SURFACE_RUN = "surface"
#: The x-ray bank's cache in the artifacts, named by the crania generator that made its x-rays.
BANK_FILE = f"xray_bank_{crania.VERSION}.npy"
LEVEL = 0.1      # iso-value of the canonical renders (the paper's renders use one iso-value too)

_FIELDS = ["sample", "specimen", "species", "view", "mirrored", "azimuth", "elevation", "view_class",
           "method", "l2", "dssim", "psnr", "ssim3d", "reprojection", "seconds", "match"]
_SLICE_FIELDS = ["sample", "view_class", "slices", "dssim", "l2"]


def evaluation_indices(p: Profile, n: int) -> list[int]:
    """The seeded subset of ``p.eval_samples`` validation samples (out of ``n``) every method sees."""
    g = torch.Generator().manual_seed(p.seed + 13)
    return torch.randperm(n, generator=g)[: p.eval_samples].tolist()


def score(pred: torch.Tensor, truth: torch.Tensor, level: float = LEVEL) -> dict:
    """Every metric of one view-aligned volume ``[D, V, V]`` against its truth."""
    images = render.iso(torch.stack([pred, truth]), level=level)
    return dict(l2=float(metrics.l2(pred, truth)), dssim=float(metrics.dssim(images[0], images[1])),
                psnr=float(metrics.psnr(pred.clamp(0, 1), truth)), ssim3d=float(metrics.ssim3d(pred, truth)))


def reprojection(volume: torch.Tensor, alpha: torch.Tensor, chi: float = xray.CHI) -> float:
    """How far a view-aligned volume ``[D, V, V]`` is from casting the x-ray ``alpha [S, S]``: the
    largest difference in transparency between ``composite(volume)`` and the x-ray brought to
    ``V^2``.

    The x-ray is brought down the way a volume's lateral area average acts on its x-ray: the
    optical depth ``-ln(alpha)``, linear in the volume, is area-averaged, so a fused volume
    averaged down (``our_volumes``), or a truth made by ``make_sample``, casts exactly that image.
    Transparencies below ``fusion.alpha_floor(chi)`` count as the floor, as fusion reads them.
    """
    depth = alpha.clamp_min(fusion.alpha_floor(chi)).double().log()
    if depth.shape[-2:] != volume.shape[-2:]:
        depth = F.interpolate(depth[None, None], size=volume.shape[-2:], mode="area")[0, 0]
    return float((xray.composite(volume.double(), chi) - depth.exp()).abs().max())


def depth_resampled(volume: torch.Tensor, slices: int) -> torch.Tensor:
    """A view-aligned volume averaged down to ``slices`` along depth and linearly back up:
    what an output with only that many slices would look like (the paper's Fig. 7)."""
    low = F.interpolate(volume[None, None], size=(slices, *volume.shape[1:]), mode="area")
    return F.interpolate(low, size=volume.shape, mode="trilinear", align_corners=False)[0, 0]


def read_results(profile: Profile | str = "quick", out_dir: str | os.PathLike | None = None) -> list[dict]:
    """The per-sample results rows that ``evaluate`` (chapter 5) left in the profile's artifacts."""
    p = get_profile(profile)
    out = Path(out_dir) if out_dir else artifacts_dir(p.name)
    return read_csv(require_artifact(out / "evaluation.csv", "chapter 5 (evaluation)"))


def evaluate(profile: Profile | str = "quick", checkpoint: str | os.PathLike | None = None, k: int = 16,
             chunk: int = 25, progress: bool = True, out_dir: str | os.PathLike | None = None,
             shipped: bool | None = None) -> dict:
    """Score every method on the profile's evaluation samples; returns the CSV paths.

    Ours is ``checkpoint``'s network (default: chapter 3's); chapter 3's surface-objective network
    (``SURFACE_RUN`` beside it) is ``ours_surface`` when it is there; ``shipped`` adds the package's
    as ``ours_shipped`` (``xtomo.learning.shipped.for_profile``: None takes it if trained on ``p``'s data).

    Samples already in ``evaluation.csv`` (same profile, same checkpoint step) are kept and
    skipped, so a rerun after an interruption only does what is missing. NN and ORACLE search
    for all remaining samples at once (one pass over the bank); results are saved every
    ``chunk`` samples.
    """
    from tqdm.auto import tqdm

    from xtomo.learning.train import load_checkpoint, model_from_checkpoint, train_val_sets

    p = get_profile(profile)
    out = Path(out_dir) if out_dir else artifacts_dir(p.name)
    ck_path = Path(checkpoint) if checkpoint else require_artifact(out / "checkpoint.pt", "chapter 3 (training)")
    model = model_from_checkpoint(ck := load_checkpoint(ck_path, p))
    extra, versions = other_networks(p, out, shipped)
    train_set, val_set = train_val_sets(p)
    indices = evaluation_indices(p, len(val_set))
    paths = dict(results=out / "evaluation.csv", slices=out / "slice_count.csv", info=out / "evaluation.json")
    stamp = dict(profile=p.name, generator=crania.VERSION, inference=INFERENCE, step=ck["step"], samples=len(indices),
                 exposure=list(model.exposure) if model.exposure else None, k=k, level=LEVEL,
                 classical_samples=p.classical_samples, fields=_FIELDS, policies=POLICY, **versions)
    rows, slice_rows = _resume(paths, stamp)
    done = {int(r["sample"]) for r in rows}
    todo = [i for i in indices if i not in done]
    bank = SampleBank(train_set, progress=progress) if todo else None
    classical_left = p.classical_samples - len({r["sample"] for r in rows if r["method"] == "classical"})
    bar = tqdm(total=len(indices), initial=len(indices) - len(todo), desc="evaluation", unit="sample",
               disable=not progress)
    # One pass over the bank answers every query (ORACLE's makes NN's thumbnails); then chunk by chunk.
    items = [val_set[i] for i in todo]
    oracle = bank.oracle(torch.stack([it["volume"] for it in items]), k=k) if todo else []
    nn = bank.build(out / BANK_FILE).nn(torch.stack([it["xray"][0] for it in items]), k=k) if todo else []
    for start in range(0, len(todo), chunk):
        stop = start + chunk
        for index, item, m_nn, m_or in zip(todo[start:stop], items[start:stop], nn[start:stop], oracle[start:stop]):
            alpha, truth = item["xray"][0], item["volume"]
            size = truth.shape[-1]
            volumes = our_volumes(alpha, model, size, p.chi) | fused_answers(extra, alpha, size, p.chi)
            volumes["nn"], volumes["oracle"] = (bank.sample(m_nn)[1], 0.0), (bank.sample(m_or)[1], 0.0)
            if classical_left > 0 and not item["mirrored"]:
                volumes["classical"] = _classical(alpha, item["direction"], truth, p)
                classical_left -= 1
            base = _describe(index, item, train_set.bank)
            rows += _rows(base, item, volumes, {"nn": m_nn, "oracle": m_or}, p.chi)
            slice_rows += _slice_study(index, base["view_class"], volumes["ours_unfused"][0])
            bar.update()
        write_csv(paths["results"], rows, _FIELDS)
        write_csv(paths["slices"], slice_rows, _SLICE_FIELDS)
        write_json(paths["info"], dict(stamp, bank_bytes=bank.nbytes, full_bytes=bank.full_nbytes(),
                                       bank_samples=len(bank), thumb=bank.thumb))
    bar.close()
    return paths


def other_networks(p: Profile, out: Path | None = None, shipped: bool | None = None,
                   methods=None) -> tuple[dict, dict]:
    """Our networks beside chapter 3's L2 one (of ``methods`` only, when given): its surface-objective
    run in ``out`` (default: the profile's artifacts) and the shipped model (``shipped`` as in
    ``evaluate``; twice, as ``ours_shipped`` and ``ours_shipped_even``, which ``POLICY`` fuses evenly), as
    ``{method: network}``, and what identifies each (the surface run's step, the shipped model's sha256)
    for the results' stamp."""
    from xtomo.learning.train import load_checkpoint, model_from_checkpoint

    nets, versions = {}, {"shipped": None}
    path = (out or artifacts_dir(p.name)) / SURFACE_RUN / "checkpoint.pt"
    if path.exists() and (methods is None or "ours_surface" in methods):
        ck = load_checkpoint(path, p.replace(objective="surface"))
        nets["ours_surface"], versions["surface_step"] = model_from_checkpoint(ck), ck["step"]
    if methods is None or {"ours_shipped", "ours_shipped_even"} & set(methods):
        model, versions["shipped"] = shipped_for(p, shipped)
        nets |= {"ours_shipped": model, "ours_shipped_even": model} if model is not None else {}
    return {m: net for m, net in nets.items() if methods is None or m in methods}, versions


def fusion_of(method: str, default: str = "proportional") -> str:
    """The fusion policy (``fusion.POLICIES``) that our network ``method``'s answers are scored under:
    ``POLICY``'s, else ``default``."""
    return POLICY.get(method, default)


def _resume(paths: dict, stamp: dict) -> tuple[list[dict], list[dict]]:
    """Rows of an earlier run with the same settings, or nothing."""
    if not (paths["info"].exists() and paths["results"].exists() and paths["slices"].exists()):
        return [], []
    info = read_json(paths["info"])
    if any(info.get(key) != value for key, value in stamp.items()):
        return [], []
    return read_csv(paths["results"]), read_csv(paths["slices"])


def _timed(function, *args, **kwargs):
    began = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - began


def _rows(base: dict, item: dict, volumes: dict, matches: dict, chi: float) -> list[dict]:
    """The results rows of one sample: every method's ``(volume, seconds)`` scored against the truth."""
    alpha, truth = item["xray"][0], item["volume"]
    rows = []
    for method, (volume, seconds) in volumes.items():
        match = matches.get(method)
        rows.append(dict(base, method=method, seconds=round(seconds, 4), **score(volume, truth),
                         reprojection=reprojection(volume, alpha, chi),
                         match=f"{match.specimen}/{match.view}/{int(match.mirrored)}" if match else ""))
    return rows


def our_volumes(alpha: torch.Tensor, model, size: int, chi: float = xray.CHI, symmetry=None, level=False,
                policy: str = "proportional", beta: float = 2.0) -> dict:
    """Our reconstruction at the volume resolution, fused with the full x-ray (then averaged
    down laterally, which keeps its re-projection exact: ``reprojection``) and without fusion;
    ``symmetry`` and ``level`` as ``inference.reconstruct`` takes them, ``policy`` and ``beta`` as ``fusion.fuse``."""
    plain, t_plain = _timed(reconstruct, alpha, model, fuse=False, symmetry=symmetry, level=level)
    fused, t_fuse = _timed(fused_at, plain, alpha, size, chi, policy, beta)
    return {"ours": (fused, t_plain + t_fuse), "ours_unfused": (plain, t_plain)}


def fused_at(plain: torch.Tensor, alpha: torch.Tensor, size: int, chi: float = xray.CHI,
             policy: str = "proportional", beta: float = 2.0) -> torch.Tensor:
    """The network's answer ``plain`` fused with the full x-ray ``alpha`` by ``policy`` (``fusion.fuse``), then
    averaged down laterally to ``size``, which keeps its re-projection exact (``reprojection``)."""
    fused = fusion.fuse_upsampled(plain, square(alpha)[0, 0], chi=chi, policy=policy, beta=beta)
    return fused if fused.shape[-1] == size else F.interpolate(fused[None], size=(size, size), mode="area")[0]


def fused_answers(networks: dict, alpha: torch.Tensor, size: int, chi: float = xray.CHI) -> dict:
    """``our_volumes``' fused answer ``(volume, seconds)`` of each of ``networks`` (``{method: network}``),
    fused by its method's policy (``fusion_of``)."""
    return {m: our_volumes(alpha, net, size, chi, policy=fusion_of(m))["ours"] for m, net in networks.items()}


def _classical(alpha, direction, truth, p):
    small = F.interpolate(alpha[None, None], size=truth.shape[-2:], mode="area")[0, 0]
    return _timed(classical.solve, small, direction, size=truth.shape[-1], n_steps=truth.shape[0],
                  chi=p.chi, seed=p.seed)


def _describe(index: int, item: dict, bank) -> dict:
    az, el = xray.angles(item["direction"])
    return dict(sample=index, specimen=item["specimen"], species=bank.name(item["specimen"]),
                view=item["view"], mirrored=int(item["mirrored"]), azimuth=round(float(az), 2),
                elevation=round(float(el), 2), view_class=xray.view_class(item["direction"])[0])


def _slice_study(index: int, view: str, output: torch.Tensor) -> list[dict]:
    """DSSIM and L2 of our output re-sampled to fewer depth slices against the full output."""
    full = render.iso(output, level=LEVEL)
    rows = []
    for slices in SLICE_COUNTS:
        if slices > output.shape[0]:
            continue
        coarse = depth_resampled(output, slices)
        rows.append(dict(sample=index, view_class=view, slices=slices,
                         dssim=float(metrics.dssim(render.iso(coarse, level=LEVEL), full)),
                         l2=float(metrics.l2(coarse, output))))
    return rows


#: our networks, short
OURS = {"ours": "ours", "ours_surface": "ours, surface", "ours_shipped": "ours, shipped",
        "ours_shipped_even": "ours, shipped, even fusion", "ours_held_out": "ours, shipped recipe without it"}
#: Our networks whose answers are fused by another policy than the paper's proportional one (``fusion.POLICIES``):
#: spread evenly along each ray, the shipped model's answer gains in the picture metric (chapter 4).
POLICY = {"ours_shipped_even": "even"}


def ours_methods(rows: list[dict]) -> list[str]:
    """The keys of our networks that the rows score, fused, in ``OURS``' order."""
    present = {r["method"] for r in rows}
    return [m for m in OURS if m in present]


def grid_columns(volumes: dict, others: dict) -> dict:
    """The columns of a method grid: each of our networks that ``volumes`` hold, then ``others``."""
    return {label: volumes[m] for m, label in OURS.items() if m in volumes} | others


def by_method(rows: list[dict], metric: str) -> dict[str, dict[int, float]]:
    """``{method: {sample: value}}`` of one metric from the results rows."""
    table: dict[str, dict[int, float]] = {}
    for r in rows:
        table.setdefault(r["method"], {})[int(r["sample"])] = float(r[metric])
    return {m: table[m] for m in METHODS if m in table}


def summary(rows: list[dict], metric: str, level: float = 0.95) -> list[dict]:
    """Per method: n, mean and its confidence interval of one metric (no interval for n = 1)."""
    out = []
    for method, values in by_method(rows, metric).items():
        v = list(values.values())
        if len(v) < 2:
            out.append(dict(method=method, label=METHODS[method], n=len(v), mean=v[0], low=math.nan, high=math.nan))
            continue
        ci = stats.mean_ci(v, level=level)
        out.append(dict(method=method, label=METHODS[method], n=ci.n, mean=ci.mean, low=ci.low, high=ci.high))
    return out


def paired_tests(rows: list[dict], metric: str, against: str = "ours") -> list[dict]:
    """Paired t-tests of ``against`` versus every other method, on the samples both scored.

    ``p_less`` is the one-sided p-value of "ours has the smaller error"; ``ratio`` is the
    ratio of means on the paired samples.
    """
    table = by_method(rows, metric)
    ours = table[against]
    out = []
    for method, values in table.items():
        common = sorted(set(values) & set(ours))
        if method == against or len(common) < 2:
            continue
        a = [ours[s] for s in common]
        b = [values[s] for s in common]
        t = stats.paired_t(a, b)
        out.append(dict(method=method, label=METHODS[method], n=t.n, ours=sum(a) / len(a), other=sum(b) / len(b),
                        ratio=sum(a) / sum(b), t=t.t, p=t.p, p_less=t.p_less, result=str(t)))
    return out


def volumes_of(samples: list[int], profile: Profile | str = "quick", rows: list[dict] | None = None,
               out_dir: str | os.PathLike | None = None) -> dict:
    """For chosen evaluation samples: their x-rays and the volumes of our networks that the results
    scored (fused), NN, ORACLE and the truth, regenerated from the results (NN and ORACLE from their
    recorded matches)."""
    from xtomo.learning.train import load_checkpoint, model_from_checkpoint, train_val_sets
    from xtomo.methods.baselines import Match

    p = get_profile(profile)
    out = Path(out_dir) if out_dir else artifacts_dir(p.name)
    rows = rows if rows is not None else read_results(p, out)
    nets = {"ours": model_from_checkpoint(load_checkpoint(require_artifact(out / "checkpoint.pt",
                                                                          "chapter 3 (training)"), p))}
    train_set, val_set = train_val_sets(p)
    bank = SampleBank(train_set, progress=False)
    found = {(int(r["sample"]), r["method"]): r["match"] for r in rows}
    nets |= other_networks(p, out, True, {r["method"] for r in rows})[0]
    result = dict(xrays=[], nn=[], oracle=[], truth=[]) | {method: [] for method in nets}
    for index in samples:
        item = val_set[index]
        alpha, truth = item["xray"][0], item["volume"]
        result["xrays"].append(alpha)
        for method, (volume, _) in fused_answers(nets, alpha, truth.shape[-1], p.chi).items():
            result[method].append(volume)
        for method in ("nn", "oracle"):
            specimen, view, mirrored = (int(x) for x in found[(index, method)].split("/"))
            result[method].append(bank.sample(Match(specimen, view, bool(mirrored), 0.0))[1])
        result["truth"].append(truth)
    return result


def beside_paper(rows: list[dict], ours: str = "ours") -> list[dict]:
    """Per metric: the means of ``ours`` (a method key: ``ours``, ``ours_shipped``), NN and ORACLE,
    the ratios ours/NN and ours/ORACLE, and the same from the paper (``PAPER``): absolute values
    depend on the data, ratios less so."""
    out = []
    for metric, paper in PAPER.items():
        means = {r["method"]: r["mean"] for r in summary(rows, metric)}
        out.append({"metric": metric, "ours": means[ours], "NN": means["nn"], "ORACLE": means["oracle"],
                    "ours / NN": means[ours] / means["nn"], "ours / ORACLE": means[ours] / means["oracle"],
                    "paper: ours": paper["ours"], "paper: NN": paper["nn"], "paper: ORACLE": paper["oracle"],
                    "paper: ours / NN": paper["ours"] / paper["nn"],
                    "paper: ours / ORACLE": paper["ours"] / paper["oracle"]})
    return out


# --- The chapters' tables: results as DataFrames -------------------------------------------------

def _summary_frame(rows: list[dict], metric: str, level: float):
    return pd.DataFrame(summary(rows, metric, level)).set_index("label")[["n", "mean", "low", "high"]]


def summary_table(rows: list[dict] | dict[str, list[dict]], metrics: dict[str, str] | None = None,
                  level: float = 0.95):
    """Means with their confidence intervals per method (rows, by label) and metric (columns:
    ``metrics`` maps a metric to its label, under which n, mean, low, high stand; default
    ``METRIC_LABELS``).

    ``rows`` may be a dict of named groups of rows (e.g. per truth): each then gets an outer
    column level of its own, ``(group, metric label, statistic)``.
    """
    metrics = metrics or METRIC_LABELS
    if isinstance(rows, dict):
        return pd.concat({(group, label): _summary_frame(part, m, level)
                          for group, part in rows.items() for m, label in metrics.items()}, axis=1)
    return pd.concat({label: _summary_frame(rows, m, level) for m, label in metrics.items()}, axis=1)


def tests_table(rows: list[dict], metrics: dict[str, str] | None = None, against: str = "ours"):
    """``paired_tests`` of ``against`` (ours) versus every other method (rows, by label), per metric (columns)."""
    metrics = metrics or METRIC_LABELS
    names = {"other": "method", "ratio": "ours / method", "p_less": "p (ours smaller)"}
    return pd.concat({label: pd.DataFrame(paired_tests(rows, m, against)).set_index("label")
                      [["n", "ours", "other", "ratio", "t", "p", "p_less"]].rename(columns=names)
                      for m, label in metrics.items()}, axis=1)


def fusion_table(rows: list[dict], metrics: dict[str, str] | None = None):
    """Fusion on against off, paired on the same samples: one row per metric (by its label)."""
    metrics = metrics or METRIC_LABELS
    tests = pd.DataFrame([dict(metric=label, **{k: v for k, v in r.items() if k != "label"})
                          for m, label in metrics.items() for r in paired_tests(rows, m)
                          if r["method"] == "ours_unfused"]).set_index("metric")
    return tests[["n", "ours", "other", "ratio", "result"]].rename(
        columns={"ours": "fused", "other": "not fused", "ratio": "fused / not fused"})


def reprojection_table(rows: list[dict]):
    """How far each method's volumes are from casting their input x-ray (``reprojection``, a
    sample's largest difference in transparency): the largest and the mean over the samples."""
    frame = pd.DataFrame([dict(method=METHODS.get(r["method"], r["method"]), error=float(r["reprojection"]))
                          for r in rows if r.get("reprojection") not in (None, "")])
    return frame.groupby("method", sort=False)["error"].agg(["max", "mean"]).rename(
        columns={"max": "largest", "mean": "mean"})


def beside_paper_table(rows: list[dict], metrics: dict[str, str] | None = None, ours: str = "ours"):
    """``beside_paper`` as a table: one column per metric (by its label), means and ratios as rows."""
    return pd.DataFrame(beside_paper(rows, ours)).set_index("metric").rename(index=metrics or METRIC_LABELS).T


def classical_comparison(rows: list[dict]) -> tuple[int, float, object]:
    """Every method on the samples the classical method ran on: ``(samples, seconds, table)``,
    the mean seconds it took per sample, and a table of mean L2 and DSSIM per method label."""
    table, dssim = by_method(rows, "l2"), by_method(rows, "dssim")
    ran = sorted(table.get("classical", {}))
    frame = pd.DataFrame({METHODS[m]: {"L2": sum(table[m][s] for s in ran) / len(ran),
                                       "DSSIM": sum(dssim[m][s] for s in ran) / len(ran)}
                          for m in table if ran}).T
    seconds = sum(float(r["seconds"]) for r in rows if r["method"] == "classical") / max(len(ran), 1)
    return len(ran), seconds, frame


def slice_table(slice_rows: list[dict]):
    """The slice-count study: per number of depth slices kept, count, mean and standard error of
    the DSSIM against the full output."""
    frame = pd.DataFrame(slice_rows).astype({"slices": int, "dssim": float, "l2": float})
    return frame.groupby("slices")["dssim"].agg(["count", "mean", "sem"])


VIEW_CLASSES = ("top", "front", "side", "other")


def by_view(rows: list[dict], metric: str = "dssim", methods: Sequence[str] = ("ours", "nn", "oracle")) -> dict:
    """``{view class: {method: [values]}}`` of one metric, for ``figures.grouped_means``; view
    classes without samples are left out."""
    frame = pd.DataFrame(rows).astype({metric: float})
    groups = {}
    for view in VIEW_CLASSES:
        part = frame[frame.view_class == view]
        if len(part):
            groups[view] = {m: part[part.method == m][metric].tolist() for m in methods}
    return groups


def view_table(rows: list[dict], method: str = "ours"):
    """Count and mean of L2 and DSSIM per view class, for one method."""
    frame = pd.DataFrame(rows).astype({"l2": float, "dssim": float})
    return frame[frame.method == method].groupby("view_class")[["l2", "dssim"]].agg(["count", "mean"])
