"""Chapter 8's experiment, the paper's reality check (Sec. 5.6): mice through a micro-CT into learning.

Henzler et al. (2018) scanned 15 mice in their micro-CT, reconstructed volumes by classical
tomography, split them 12 / 3 into training and test mice, made 2,720 samples, trained the same
network and compared it with NN and ORACLE (their Fig. 16); then they re-synthesised x-rays from
the volumes and trained on those instead (Fig. 15). ``MouseStudy`` does the same with the
procedural mice of ``xtomo.specimens.mice`` and the scanner of ``xtomo.imaging.microct``, whose x-rays follow a
more physical model than the network's Beer–Lambert training model; unlike the paper it can
also score everything against the true phantoms, which a real scan never reveals.

The stages: acquisition and tomography (``MouseScans``: per mouse a phantom, a micro-CT scan, its
FBP and SART reconstructions and the x-rays of its views), then training and scoring against NN
and ORACLE (``MouseStudy``), then the analysis of the scores. Every step is cached under
``artifacts/<profile>/mice`` (a file per mouse, a checkpoint per training, a CSV of scores),
stamped with the settings that made it, so a rerun reuses what still matches and redoes only the rest.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo.data import datasets
from xtomo.evaluation import metrics, scoring, stats
from xtomo.files import artifacts_dir, atomic_path, read_csv, read_json, write_csv, write_json
from xtomo.imaging import microct, render, xray
from xtomo.learning.inference import VERSION as INFERENCE
from xtomo.learning.inference import reconstruct
from xtomo.learning.train import load_checkpoint, model_from_checkpoint
from xtomo.learning.train import train as train_network
from xtomo.profiles import Profile, get_profile
from xtomo.specimens import mice

__all__ = ["TRAININGS", "TRUTHS", "RECONSTRUCTIONS", "SCORE_FIELDS", "MouseScans", "MouseStudy", "mouse_split",
           "views", "scanner", "tissue_errors", "scan_mouse", "view_xrays", "by_truth", "training_tests"]

#: X-rays a network is trained on: acquired by the scanner, or re-synthesised (Beer–Lambert)
#: from the reconstructed volumes.
TRAININGS = ("acquired", "resynthesised")
#: What the methods are scored against: the reconstructed volumes (the paper's reference) or
#: the phantoms (the truth that only a simulation knows).
TRUTHS = ("reconstruction", "phantom")
#: Classical reconstructions kept per mouse.
RECONSTRUCTIONS = ("fbp", "sart")
#: Columns of ``scores.csv``: one row per test sample, truth and method.
SCORE_FIELDS = ["sample", "mouse", "view", "mirrored", "truth", "method", "l2", "dssim", "psnr"]

_VERSION = 2   # bump when the cached files' meaning changes


def mouse_split(p: Profile) -> tuple[list[int], list[int]]:
    """Training and test mice (the paper: 12 and 3 of 15), seeded."""
    g = torch.Generator().manual_seed(p.seed + 8)
    perm = torch.randperm(p.n_mice, generator=g).tolist()
    return sorted(perm[p.n_test_mice:]), sorted(perm[:p.n_test_mice])


def views(p: Profile) -> tuple[list[int], torch.Tensor]:
    """Mouse and direction of every view: ``mouse_samples`` (less the mirrors) spread as evenly
    as they go over the mice, directions uniform on the +z hemisphere, seeded per mouse."""
    n = p.mouse_samples // (2 if p.mirror else 1)
    counts = [n // p.n_mice + (k < n % p.n_mice) for k in range(p.n_mice)]
    specimens, directions = [], []
    for k, c in enumerate(counts):
        specimens += [k] * c
        directions.append(xray.sample_directions(c, seed=p.seed * 100_003 + 77_777 + k))
    return specimens, torch.cat(directions)


def scanner(p: Profile) -> microct.Scanner:
    """The micro-CT of the experiment (``microct.Scanner``'s defaults at the profile's chi)."""
    return microct.Scanner(chi=p.chi)


def tissue_errors(volume: torch.Tensor, truth: torch.Tensor, tissue: torch.Tensor) -> list[dict]:
    """Per tissue of the phantom (``mice.LABELS``) and over the whole mouse: voxels, mean true
    and reconstructed density, bias (mean error) and RMSE of a reconstruction."""
    rows = []
    body = tissue != mice.AIR
    masks = [(name, tissue == k) for k, name in enumerate(mice.LABELS)] + [("whole mouse", body)]
    for name, m in masks:
        if not m.any():
            continue
        e = (volume - truth)[m]
        rows.append(dict(tissue=name, voxels=int(m.sum()), truth=float(truth[m].mean()),
                         reconstructed=float(volume[m].mean()), bias=float(e.mean()),
                         rmse=float(e.square().mean().sqrt())))
    return rows


# ---------------------------------------------------------------------- acquisition and tomography

def scan_mouse(mouse: mice.Mouse, k: int, p: Profile, sc: microct.Scanner, device) -> tuple[mice.MousePhantom, dict]:
    """Mouse ``k``'s phantom at ``mouse_phantom_size``, and what a scan of it gives: the phantom at
    ``volume_size`` (``truth``, ``tissue``), the middle slice's sinogram, the FBP and SART
    reconstructions, and the ``seconds`` each stage took (SART's include the FBP it starts from)."""
    began = time.perf_counter()
    fine = mice.phantom(mouse, p.mouse_phantom_size, device=device)
    coarse = mice.downsample(fine, p.mouse_phantom_size // p.volume_size)
    t_phantom = time.perf_counter() - began
    began = time.perf_counter()
    acquisition = microct.scan(fine.soft, fine.mineral, sc, p.ct_angles, p.ct_arc, detector=p.volume_size,
                               seed=p.seed * 7_919 + k)
    t_scan = time.perf_counter() - began
    record = dict(truth=coarse.density.cpu(), tissue=coarse.tissue.cpu(), seconds=dict(phantom=t_phantom, scan=t_scan),
                  sinogram=acquisition.alpha[p.volume_size // 2].cpu())
    began = time.perf_counter()
    fbp = microct.reconstruct_scan(acquisition, "fbp")
    record["seconds"]["fbp"] = time.perf_counter() - began
    began = time.perf_counter()
    record["sart"] = microct.reconstruct_scan(acquisition, "sart", init=fbp).cpu()
    record["seconds"]["sart"] = time.perf_counter() - began + record["seconds"]["fbp"]
    record["fbp"] = fbp.cpu()
    return fine, record


def view_xrays(fine: mice.MousePhantom, directions: torch.Tensor, indices: list[int], p: Profile,
               sc: microct.Scanner) -> tuple[torch.Tensor, torch.Tensor]:
    """The x-rays ``[N, S, S]`` of a phantom from the views ``indices`` of ``directions``: acquired by
    the scanner (its noise seeded per view) and the Beer–Lambert x-rays of its density."""
    acquired, beer_lambert = [], []
    for i in indices:
        d = directions[i]
        acquired.append(microct.expose(fine.soft, fine.mineral, d, sc, size=p.xray_size,
                                           seed=p.seed * 1_000_003 + i).cpu())
        beer_lambert.append(xray.simulate(fine.density, d, chi=p.chi, n_steps=p.mouse_phantom_size,
                                          size=p.xray_size).cpu())
    return torch.stack(acquired), torch.stack(beer_lambert)


class MouseScans:
    """The acquisition and tomography of one profile's mice: per mouse a record of its phantom,
    scan, reconstructions and view x-rays, made once and cached in ``out_dir``."""

    def __init__(self, p: Profile, out_dir: Path, progress: bool = True, device: str | None = None):
        self.p, self.dir, self.progress = p, Path(out_dir), progress
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.mice = mice.population(p.n_mice, seed=p.seed)
        self.scanner = scanner(p)
        self.train_ids, self.test_ids = mouse_split(p)
        self.specimens, self.directions = views(p)
        self.records: dict[int, dict] = {}

    def stamp(self) -> dict:
        """The settings every cached file depends on."""
        keep = ("seed", "n_mice", "mouse_samples", "mirror", "mouse_phantom_size", "volume_size", "xray_size",
                "ct_angles", "ct_arc", "chi")
        return dict({k: getattr(self.p, k) for k in keep}, scanner=dataclasses.asdict(self.scanner), version=_VERSION)

    def _make_record(self, k: int) -> dict:
        """Phantom, scan, reconstructions and the x-rays of every view of mouse ``k``."""
        fine, scanned = scan_mouse(self.mice[k], k, self.p, self.scanner, self.device)
        mine = [i for i, s in enumerate(self.specimens) if s == k]
        acquired, beer_lambert = view_xrays(fine, self.directions, mine, self.p, self.scanner)
        return dict(stamp=self.stamp(), **scanned, views=mine, acquired=acquired, beer_lambert=beer_lambert)

    def record(self, k: int) -> dict:
        """Mouse ``k``'s record, from memory, from its cache file if the stamp matches, or made."""
        if k in self.records:
            return self.records[k]
        path = self.dir / f"mouse{k:02d}.pt"
        record = None
        if path.exists():
            try:
                record = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # an unreadable cache is remade, never trusted
                record = None
            if record is not None and record.get("stamp") != self.stamp():
                record = None
        if record is None:
            record = self._make_record(k)
            with atomic_path(path) as tmp:
                torch.save(record, tmp)
        self.records[k] = record
        return record

    def acquire(self) -> MouseScans:
        """Make (or load) every mouse's record, with a progress bar."""
        from tqdm.auto import tqdm

        for k in tqdm(range(self.p.n_mice), desc="mice: phantom, micro-CT, tomography, x-rays", unit="mouse",
                      disable=not self.progress):
            self.record(k)
        return self

    def xrays(self, kind: str = "acquired") -> torch.Tensor:
        """Every view's x-ray ``[N, S, S]``: "acquired" by the scanner or "beer_lambert" of the phantom."""
        checks.choice(kind, "kind", ("acquired", "beer_lambert"), what="xrays")
        out = torch.empty(len(self.specimens), self.p.xray_size, self.p.xray_size)
        for k in range(self.p.n_mice):
            r = self.record(k)
            out[r["views"]] = r[kind]
        return out

    def volumes(self, kind: str) -> list[torch.Tensor]:
        """Every mouse's canonical volume at ``volume_size``: "fbp", "sart" or "truth" (the phantom)."""
        checks.choice(kind, "kind", (*RECONSTRUCTIONS, "truth"), what="volumes")
        return [self.record(k)[kind] for k in range(self.p.n_mice)]

    def reconstruction_errors(self) -> list[dict]:
        """Every mouse's FBP and SART against its phantom, per tissue (``tissue_errors``)."""
        rows = []
        for k in range(self.p.n_mice):
            r = self.record(k)
            for method in RECONSTRUCTIONS:
                for row in tissue_errors(r[method], r["truth"], r["tissue"]):
                    rows.append(dict(mouse=k, method=method, seconds=r["seconds"][method], **row))
        return rows


# ---------------------------------------------------------------------- training and scoring

def _fresh(folder: Path, stamp: dict) -> bool:
    """Whether ``folder`` holds results of ``stamp``; if not, its old results are removed."""
    path = folder / "stamp.json"
    if path.exists() and read_json(path) == stamp:
        return True
    for name in ("checkpoint.pt", "training_log.csv", "scores.csv"):
        (folder / name).unlink(missing_ok=True)
    write_json(path, stamp)
    return False


class MouseStudy(MouseScans):
    """The mice, their scans and reconstructions (``MouseScans``), the trainings and the scores of
    one profile.

    ``reconstruction`` ("sart" or "fbp") chooses the classical volumes the network learns from
    and is scored against, as the paper used its scanner's reconstructions.
    """

    def __init__(self, profile: Profile | str = "quick", reconstruction: str = "sart",
                 out_dir: str | os.PathLike | None = None, progress: bool = True, device: str | None = None):
        self.reconstruction = checks.choice(reconstruction, "reconstruction", RECONSTRUCTIONS, what="MouseStudy")
        p = get_profile(profile)
        super().__init__(p, Path(out_dir) if out_dir else artifacts_dir(p.name) / "mice", progress, device)

    def datasets(self, training: str = "acquired", truth: str = "reconstruction") -> tuple:
        """Training and test ``ViewDataset``s: x-rays acquired (or re-synthesised from the
        reconstructions, ``training="resynthesised"``), targets from the reconstructions (or from
        the phantoms, ``truth="phantom"``). Test sets always hold the acquired x-rays."""
        checks.choice(training, "training", TRAININGS, what="datasets")
        checks.choice(truth, "truth", TRUTHS, what="datasets")
        kind = self.reconstruction if truth == "reconstruction" else "truth"
        bank = datasets.TensorBank(self.volumes(kind), [m.name for m in self.mice])
        acquired = self.xrays("acquired")
        out = []
        for ids, x in ((self.train_ids, training), (self.test_ids, "acquired")):
            rows = [i for i, s in enumerate(self.specimens) if s in ids]
            out.append(datasets.ViewDataset(bank, [self.specimens[i] for i in rows], self.directions[rows], self.p,
                                            xrays=acquired[rows] if x == "acquired" else None))
        return tuple(out)

    def counts(self) -> dict:
        """Mice, views and samples of the split, beside the paper's."""
        train, test = self.datasets()
        return dict(mice=self.p.n_mice, train_mice=len(self.train_ids), test_mice=len(self.test_ids),
                    train_samples=len(train), test_samples=len(test), samples=len(train) + len(test),
                    paper=dict(mice=15, train_mice=12, test_mice=3, samples=2_720))

    def train(self, training: str = "acquired", steps: int | None = None) -> dict:
        """Train the profile's network on the training mice (``xtomo.learning.train.train``), resuming
        a finished or interrupted run of the same settings."""
        folder = self.dir / f"train-{training}"
        steps = steps or self.p.mouse_steps
        stamp = dict(self.stamp(), training=training, reconstruction=self.reconstruction, steps=steps)
        resume = _fresh(folder, stamp)
        return train_network(self.p, resume=resume, steps=steps, out_dir=folder, progress=self.progress,
                             data=self.datasets(training), device=self.device)

    def network(self, training: str = "acquired") -> tuple:
        """The network trained on ``training`` x-rays (from its checkpoint) and the step it reached."""
        checks.choice(training, "training", TRAININGS, what="network")
        ck = load_checkpoint(self.dir / f"train-{training}" / "checkpoint.pt", self.p)
        return model_from_checkpoint(ck), ck["step"]

    def ours(self, alpha: torch.Tensor, model) -> torch.Tensor:
        """A network's fused volume of an x-ray, averaged down to ``volume_size`` if finer."""
        size = self.p.volume_size
        v = reconstruct(alpha, model, fuse=True, chi=self.p.chi)
        return F.interpolate(v[None], size=(size, size), mode="area")[0] if v.shape[-1] != size else v

    def test_indices(self, n: int) -> list[int]:
        """The seeded subset of at most ``eval_samples`` test samples every method is scored on."""
        g = torch.Generator().manual_seed(self.p.seed + 13)
        return sorted(torch.randperm(n, generator=g)[: self.p.eval_samples].tolist())

    def score(self, k: int = 4) -> list[dict]:
        """Scores of ours (trained on acquired and on re-synthesised x-rays), NN and ORACLE on the
        test samples, against the reconstructions and the phantoms; cached in ``scores.csv``."""
        models, steps = {}, {}
        for training in TRAININGS:
            models[training], steps[training] = self.network(training)
        stamp = dict(self.stamp(), reconstruction=self.reconstruction, steps=steps, k=k, inference=INFERENCE,
                     eval_samples=self.p.eval_samples)
        folder = self.dir / "scores"
        path = folder / "scores.csv"
        if _fresh(folder, stamp) and path.exists():
            return read_csv(path)
        write_csv(path, self._score_rows(models, k), SCORE_FIELDS)
        return read_csv(path)

    def _score_rows(self, models: dict, k: int) -> list[dict]:
        """Every method on every scored test sample, against both truths: a row each."""
        from tqdm.auto import tqdm

        sets = {t: self.datasets("acquired", t) for t in TRUTHS}
        train_sets, test_sets = ({t: pair[i] for t, pair in sets.items()} for i in (0, 1))
        indices = self.test_indices(len(test_sets["reconstruction"]))
        nn = _nearest_xrays(_inputs(test_sets["reconstruction"], indices), train_sets["reconstruction"])
        oracle = {t: _nearest_volumes(test_sets[t], indices, train_sets[t], k=k, progress=self.progress)
                  for t in TRUTHS}
        rows = []
        for j, index in enumerate(tqdm(indices, desc="scoring test x-rays", unit="x-ray", disable=not self.progress)):
            alpha = test_sets["reconstruction"][index]["xray"][0]
            ours = {training: self.ours(alpha, model) for training, model in models.items()}
            for t in TRUTHS:
                item = test_sets[t][index]
                volumes = {"ours": ours["acquired"], "ours_resynthesised": ours["resynthesised"],
                           "nn": train_sets[t][nn[j]]["volume"], "oracle": train_sets[t][oracle[t][j]]["volume"]}
                base = dict(sample=index, mouse=item["specimen"], view=item["view"], mirrored=int(item["mirrored"]),
                            truth=t)
                for method, s in _scores(volumes, item["volume"]).items():
                    rows.append(dict(base, method=method, **s))
        return rows

    def predict(self, index: int, training: str = "acquired") -> dict:
        """Test sample ``index``: its acquired x-ray, our (fused) volume from the network trained
        on ``training`` x-rays, and the reconstructed and the true view-aligned volumes."""
        checks.choice(training, "training", TRAININGS, what="predict")
        model = self.network(training)[0]
        item = self.datasets("acquired", "reconstruction")[1][index]
        alpha = item["xray"][0]
        return dict(xray=alpha, ours=self.ours(alpha, model), reconstruction=item["volume"],
                    phantom=self.datasets("acquired", "phantom")[1][index]["volume"], mouse=item["specimen"],
                    direction=item["direction"])

    def resynthesis(self) -> list[dict]:
        """Per test view: how far the acquired x-ray is from the Beer–Lambert x-ray of the
        phantom (the training model on the truth) and from the x-ray re-synthesised from the
        reconstruction, and how far those two are apart (``microct.difference``)."""
        rows = []
        volumes = self.volumes(self.reconstruction)
        for k in self.test_ids:
            r = self.record(k)
            for j, i in enumerate(r["views"]):
                resynthesised = datasets.make_sample(volumes[k], self.directions[i], self.p)[0]
                pairs = {"acquired vs Beer–Lambert of the phantom": (r["acquired"][j], r["beer_lambert"][j]),
                         "acquired vs re-synthesised": (r["acquired"][j], resynthesised),
                         "re-synthesised vs Beer–Lambert of the phantom": (resynthesised, r["beer_lambert"][j])}
                for name, (a, b) in pairs.items():
                    rows.append(dict(mouse=k, view=i, pair=name, **microct.difference(a, b)))
        return rows


# ---------------------------------------------------------------------- baselines and metrics

def _scores(volumes: dict, truth: torch.Tensor) -> dict:
    """Chapter 5's metrics (``scoring.score``: volume L2, DSSIM of iso-surface renders from the
    x-ray's view, PSNR) of several view-aligned volumes against one truth, rendered in one batch."""
    names = list(volumes)
    stack = torch.stack([volumes[n] for n in names])
    images = render.iso(torch.cat([stack, truth[None]]), level=scoring.LEVEL)
    truths = truth.expand_as(stack)
    l2, psnr = metrics.l2(stack, truths), metrics.psnr(stack.clamp(0, 1), truths)
    dssim = metrics.dssim(images[:-1], images[-1:].expand_as(images[:-1]))
    return {n: dict(l2=float(l2[i]), dssim=float(dssim[i]), psnr=float(psnr[i])) for i, n in enumerate(names)}


def _inputs(dataset: datasets.ViewDataset, indices: list[int]) -> torch.Tensor:
    """The x-rays ``[Q, S, S]`` of some samples of a dataset with stored x-rays (mirrored as due)."""
    out = []
    for i in indices:
        view, mirrored = dataset.locate(i)
        alpha = dataset.xrays[view].float()
        out.append(xray.mirror(alpha) if mirrored else alpha)
    return torch.stack(out)


def _nearest_xrays(queries: torch.Tensor, train_set: datasets.ViewDataset, chunk: int = 64) -> list[int]:
    """NN: per query x-ray, the index in ``train_set`` whose x-ray (mirrors included) is L2-nearest."""
    entries = train_set.xrays.float().flatten(1)
    mirrors = train_set.profile.mirror
    out = []
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        d = torch.cdist(q.flatten(1), entries)                         # [Q, N], unmirrored entries
        if mirrors:  # the distance to a mirrored entry is the mirrored query's distance to it
            d = torch.stack([d, torch.cdist(q.flip(-1).flatten(1), entries)], dim=2).flatten(1)
        out += d.argmin(1).tolist()
    return out


def _nearest_volumes(test_set: datasets.ViewDataset, indices: list[int], train_set: datasets.ViewDataset, k: int = 8,
                     coarse: int = 16, progress: bool = True) -> list[int]:
    """ORACLE: per test sample, the index in ``train_set`` whose volume is L2-nearest to the
    sample's true volume, ranked on ``coarse^3`` averages and decided among the best ``k`` at
    full size. Volumes are regenerated as needed, never all held at once."""
    from tqdm.auto import tqdm

    def small(v):
        return F.adaptive_avg_pool3d(v[None, None], coarse)[0, 0]

    mirrors = 2 if train_set.profile.mirror else 1
    entries = []
    for view in tqdm(range(len(train_set.specimens)), desc="ORACLE: training volumes", unit="view",
                     disable=not progress):
        v = small(train_set[view * mirrors]["volume"])
        entries += [v, v.flip(-1)][:mirrors]
    entries = torch.stack(entries).flatten(1)
    queries = torch.stack([small(test_set[i]["volume"]) for i in indices]).flatten(1)
    candidates = torch.cdist(queries, entries).topk(min(k, len(entries)), dim=1, largest=False).indices
    out = []
    for i, row in zip(indices, candidates.tolist()):
        truth = test_set[i]["volume"]
        errors = [float((train_set[c]["volume"] - truth).square().mean()) for c in row]
        out.append(row[min(range(len(row)), key=errors.__getitem__)])
    return out


# ---------------------------------------------------------------------- analysis

def by_truth(rows: list[dict], truth: str) -> list[dict]:
    """The rows scored against one truth, for ``scoring.summary`` and ``paired_tests``."""
    checks.choice(truth, "truth", TRUTHS, what="by_truth")
    return [r for r in rows if r["truth"] == truth]


def training_tests(rows: list[dict], metric: str) -> list[dict]:
    """Per truth: the network trained on re-synthesised x-rays against the one trained on
    acquired x-rays, both fed the acquired test x-rays (paired t-test on the same samples)."""
    out = []
    for truth in TRUTHS:
        table = {}
        for r in by_truth(rows, truth):
            table.setdefault(r["method"], {})[int(r["sample"])] = float(r[metric])
        common = sorted(set(table["ours"]) & set(table["ours_resynthesised"]))
        a = [table["ours_resynthesised"][s] for s in common]
        b = [table["ours"][s] for s in common]
        t = stats.paired_t(a, b) if len(common) > 1 else None
        out.append(dict(truth=truth, n=len(common), resynthesised=sum(a) / len(a), acquired=sum(b) / len(b),
                        ratio=sum(a) / sum(b) if sum(b) else math.nan, p=t.p if t else math.nan,
                        result=str(t) if t else ""))
    return out
