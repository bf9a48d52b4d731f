"""The memorising baselines of Henzler et al. (2018, Sec. 5.1): NN and ORACLE.

NN returns the training volume whose x-ray is nearest (L2) to the input; ORACLE cheats by
design and returns the training volume nearest to the ground truth, an upper bound on any
method that memorises the training set. Neither needs the training volumes stored: the bank
keeps every training x-ray as a small thumbnail, and a search ranks coarse candidates first,
then regenerates the best ``k`` at full size (``xtomo.data.datasets.make_sample``) and picks the exact
winner among them. ORACLE's coarse volumes are regenerated on the fly, specimen by specimen; they
rank less faithfully than NN's thumbnails, so ORACLE compares ``oracle_pool`` times as many.
Mirrored training samples are searched by mirroring the query instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo.data.datasets import XrayDataset, make_sample
from xtomo.files import atomic_path
from xtomo.imaging import xray

__all__ = ["Match", "SampleBank", "thumbnail"]


@dataclass(frozen=True)
class Match:
    """A training sample chosen by a baseline, and its full-size distance to the query."""

    specimen: int
    view: int
    mirrored: bool
    distance: float


def thumbnail(alpha: torch.Tensor, size: int) -> torch.Tensor:
    """X-rays ``[..., S, S]`` area-averaged to ``[..., size, size]`` (what the bank stores)."""
    lead = alpha.shape[:-2]
    x = alpha.reshape(-1, 1, *alpha.shape[-2:]).float()
    return F.interpolate(x, size=(size, size), mode="area").reshape(*lead, size, size)


def _coarse_volume(volume: torch.Tensor, size: int) -> torch.Tensor:
    """View-aligned volumes ``[..., D, H, W]`` averaged down to ``size^3``."""
    lead = volume.shape[:-3]
    v = volume.reshape(-1, 1, *volume.shape[-3:]).float()
    return F.adaptive_avg_pool3d(v, size).reshape(*lead, size, size, size)


class SampleBank:
    """Every training sample of ``dataset`` remembered as an x-ray thumbnail (float16).

    Samples are numbered specimen by specimen, view by view, unmirrored; ``thumb`` is the
    thumbnail's side. Thumbnails are made from the specimen volume averaged down to
    ``oversample * thumb`` voxels and aligned at that resolution, which is much cheaper than
    making every full-size x-ray and close enough to rank candidates: the best ``k`` are then
    compared at full size, by ORACLE the best ``oracle_pool * k``.

    Why ORACLE needs the larger pool: its coarse volumes, ``(thumb / 2)^3`` voxels resampled from
    a ``thumb^3`` copy of the specimen, keep about 45 % of the exact squared distance, and that
    share varies by 9 % (sd) from candidate to candidate, enough to reorder close candidates. At
    the quick profile's resolutions (128^2 x-rays, 64^3 volumes, the default thumbnail) and on
    banks small enough to search exhaustively (9 species, 16 and 48 views, 480 queries), up to 22
    coarse candidates ranked ahead of the exact nearest volume, so ``k = 16`` missed it for 2
    queries (by 3 %), while 32 and 64 missed none; at most 3 ranked ahead of NN's exact nearest
    x-ray. The default pool, ``2 * k`` (32 at the chapters' k), covers the worst rank seen with
    half again as much room, at ``k`` more full-size samples per query: a wider pool costs the
    quick book minutes it does not have. ``batch`` bounds how many views of one specimen the exact
    comparison regenerates in one call (memory against speed).
    """

    def __init__(self, dataset: XrayDataset, thumb: int = 32, oversample: int = 1, chunk: int = 512,
                 progress: bool = True, oracle_pool: int = 2, batch: int = 16):
        if not isinstance(dataset, XrayDataset):
            raise TypeError(f"SampleBank needs an XrayDataset, got {type(dataset).__name__}")
        thumb = checks.integer(thumb, "thumb", minimum=2, what="SampleBank")
        self.dataset, self.thumb, self.chunk, self.progress = dataset, thumb, chunk, progress
        self.oversample = oversample
        self.batch = checks.integer(batch, "batch", minimum=1, what="SampleBank")
        self.oracle_pool = checks.integer(oracle_pool, "oracle_pool", minimum=1, what="SampleBank")
        self.volume_side = max(2, thumb // 2)   # ORACLE's coarse volumes: (thumb / 2)^3 voxels
        self.profile = dataset.profile
        self.views = self.profile.n_views
        self.xrays: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.dataset.specimens) * self.views

    @property
    def nbytes(self) -> int:
        """Bytes the bank keeps: the thumbnails."""
        return len(self) * self.thumb ** 2 * 2

    def full_nbytes(self) -> int:
        """Bytes that storing every training sample at full size would take (float32, mirrors
        included): what the paper calls impractical."""
        p = self.profile
        per = 4 * (p.xray_size ** 2 + p.volume_size ** 3)
        return len(self.dataset) * per

    def locate(self, n: int) -> tuple[int, int]:
        """(specimen, view) of bank entry ``n``."""
        i, view = divmod(int(n), self.views)
        return self.dataset.specimens[i], view

    def _coarse(self, specimen: int, volumes: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Thumbnails ``[V, t, t]`` (and coarse aligned volumes ``[V, t/2, t/2, t/2]``) of one specimen."""
        t, p = self.thumb, self.profile
        fine = self.oversample * t
        canonical = self.dataset.bank.volume(specimen)
        small = F.adaptive_avg_pool3d(canonical[None, None], fine)[0, 0]
        dirs = self.dataset.directions(specimen)
        xrays, vols = [], []
        for start in range(0, len(dirs), self.chunk):
            d = dirs[start:start + self.chunk]
            aligned = xray.align(small.expand(len(d), -1, -1, -1), d, n_steps=fine, size=fine)
            xrays.append(thumbnail(xray.composite(aligned, chi=p.chi), t))
            if volumes:
                vols.append(_coarse_volume(aligned, self.volume_side))
        return torch.cat(xrays), (torch.cat(vols) if volumes else None)

    def build(self, cache: str | Path | None = None) -> SampleBank:
        """Make every thumbnail, unless ``oracle`` made them already or ``cache`` (an ``.npy`` file)
        holds them; thumbnails made in this process are saved to ``cache``."""
        from tqdm.auto import tqdm

        path = Path(cache) if cache else None
        shape = (len(self), self.thumb, self.thumb)
        if self.xrays is None and path is not None and path.exists():
            stored = np.load(path)
            if stored.shape == shape:
                self.xrays = torch.from_numpy(stored)
                return self
        if self.xrays is None:
            self.xrays = torch.cat([self._coarse(k, volumes=False)[0].half()
                                    for k in tqdm(self.dataset.specimens, desc="x-ray bank", unit="specimen",
                                                  disable=not self.progress)])
        if path is not None:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, self.xrays.numpy())
        return self

    def samples(self, specimen: int, views: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-size x-rays ``[V, S, S]`` and view-aligned volumes of one specimen's ``views``
        (unmirrored), regenerated ``batch`` views at a time, which a CPU does faster than one by one
        (``benchmarks/baseline_search.py``)."""
        volume = self.dataset.bank.volume(specimen)
        directions = self.dataset.directions(specimen)[torch.as_tensor(views, dtype=torch.long)]
        made = [make_sample(volume.expand(len(d), -1, -1, -1), d, self.profile) for d in directions.split(self.batch)]
        return torch.cat([alpha for alpha, _ in made]), torch.cat([aligned for _, aligned in made])

    def sample(self, match: Match) -> tuple[torch.Tensor, torch.Tensor]:
        """The full-size x-ray ``[S, S]`` and view-aligned volume of a bank entry, regenerated."""
        alphas, volumes = self.samples(match.specimen, [match.view])
        alpha, volume = alphas[0], volumes[0]
        return (xray.mirror(alpha), xray.mirror(volume)) if match.mirrored else (alpha, volume)

    def nn(self, alphas: torch.Tensor, k: int = 16) -> list[Match]:
        """NN for each x-ray ``[Q, S, S]``: the training sample whose x-ray is L2-nearest."""
        if self.xrays is None:
            raise RuntimeError("SampleBank.nn: call build() first")
        q = _batch(alphas, 2, "x-rays")
        small, top = thumbnail(q, self.thumb), _Top(len(q), k)
        for start in range(0, len(self), 32_768):
            top.add(_scores(small, self.xrays[start:start + 32_768].float()), start)
        return [self._refine(c, lambda a, v, i=i: (a - q[i]).square().mean()) for i, c in enumerate(top.entries())]

    def oracle(self, truths: torch.Tensor, k: int = 16) -> list[Match]:
        """ORACLE for each view-aligned truth ``[Q, D, V, V]``: the nearest training volume
        (mean squared voxel error), searched over coarse volumes regenerated per specimen; the
        best ``oracle_pool * k`` of them are compared at full size. The thumbnails come from the
        same alignments, so an unbuilt bank is built by the search (``build`` then only saves it)."""
        from tqdm.auto import tqdm

        q = _batch(truths, 3, "volumes")
        k = checks.integer(k, "k", minimum=1)
        small, top = _coarse_volume(q, self.volume_side), _Top(len(q), self.oracle_pool * k)
        thumbnails = [] if self.xrays is None else None
        for i, specimen in enumerate(tqdm(self.dataset.specimens, desc="ORACLE search", unit="specimen",
                                          disable=not self.progress)):
            xrays, volumes = self._coarse(specimen, volumes=True)
            top.add(_scores(small, volumes), i * self.views)
            if thumbnails is not None:
                thumbnails.append(xrays.half())
        if thumbnails is not None:  # the same alignments made them: the bank is built
            self.xrays = torch.cat(thumbnails)
        return [self._refine(c, lambda a, v, i=i: (v - q[i]).square().mean()) for i, c in enumerate(top.entries())]

    def _refine(self, candidates, distance) -> Match:
        """The candidate ``(entry, mirrored)`` with the smallest exact full-size distance (the
        first of equals); each (specimen, view) is made once, a specimen's views in batches."""
        located = [(*self.locate(n), mirrored) for n, mirrored in candidates]
        wanted: dict[int, dict[int, None]] = {}
        for specimen, view, _ in located:
            wanted.setdefault(specimen, {})[view] = None
        made = {}
        for specimen, views in wanted.items():
            alphas, volumes = self.samples(specimen, list(views))
            made |= {(specimen, v): pair for v, pair in zip(views, zip(alphas, volumes))}
        best = None
        for specimen, view, mirrored in located:
            alpha, volume = made[specimen, view]
            if mirrored:
                alpha, volume = xray.mirror(alpha), xray.mirror(volume)
            value = float(distance(alpha, volume))
            if best is None or value < best.distance:
                best = Match(specimen, view, mirrored, value)
        return best


def _batch(x: torch.Tensor, dims: int, what: str) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() != dims + 1:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"expected a batch of {what} with {dims + 1} dimensions, got {shape}")
    if not torch.isfinite(x).all():
        raise ValueError(f"the {what} contain NaN or inf")
    return x.float()


def _scores(queries: torch.Tensor, entries: torch.Tensor) -> torch.Tensor:
    """Mean squared distances ``[Q, 2E]`` of each query to each entry; column ``2e + 1`` holds
    the mirrored query, i.e. the distance to entry ``e``'s mirror image."""
    both = torch.stack([queries, queries.flip(-1)], 1).flatten(2)      # [Q, 2, F]
    n = both.shape[-1]
    d = torch.cdist(both.flatten(0, 1), entries.flatten(1)).square() / n  # [2Q, E]
    return d.reshape(len(queries), 2, -1).transpose(1, 2).flatten(1)


class _Top:
    """The ``k`` smallest scores seen so far per query, streamed over chunks of entries."""

    def __init__(self, queries: int, k: int):
        k = checks.integer(k, "k", minimum=1)
        self.k = k
        self.scores = torch.empty(queries, 0)
        self.index = torch.empty(queries, 0, dtype=torch.long)

    def add(self, scores: torch.Tensor, first_entry: int) -> None:
        columns = torch.arange(scores.shape[1]) + 2 * first_entry
        self.scores = torch.cat([self.scores, scores], 1)
        self.index = torch.cat([self.index, columns.expand(len(scores), -1)], 1)
        if self.scores.shape[1] > self.k:
            self.scores, keep = self.scores.topk(self.k, dim=1, largest=False)
            self.index = self.index.gather(1, keep)

    def entries(self) -> list[list[tuple[int, bool]]]:
        """Per query, the kept ``(entry, mirrored)`` pairs, best first."""
        order = self.scores.argsort(1)
        return [[(int(c) // 2, bool(c % 2)) for c in row] for row in self.index.gather(1, order)]
