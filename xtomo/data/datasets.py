"""The dataset of the paper, made on the fly: (x-ray, view-aligned volume) pairs.

Only canonical volumes are stored (one per specimen, cached in memory and on disk); every sample
is resampled from its specimen when asked for, deterministically from its index. At the paper's
scale that is 175 volumes instead of 466,200 samples of 128^3 voxels (about 3.9 TB).
"""
from __future__ import annotations

import math
import os
import platform
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xtomo.data.augment import CUT_TILT, Augmentation, augmented, unchanged
from xtomo.files import artifacts_dir, atomic_path, write_json
from xtomo.imaging import xray
from xtomo.profiles import Profile, get_profile
from xtomo.specimens import crania

__all__ = ["PAPER_COUNTS", "ProceduralBank", "FileBank", "TensorBank", "XrayDataset", "ViewDataset", "Kept", "Mixed",
           "make_sample", "lateral", "view_target", "aligned_truth", "counts", "simulate_collection"]

#: What Henzler et al. (2018, Sec. 3) report for their dataset.
PAPER_COUNTS = dict(species=175, val_species=20, views=1332, mirrors=2,
                    samples=466_200, val_samples=53_280)


class ProceduralBank:
    """Canonical volumes of the procedural species of a profile, generated once and cached.

    Its first ``n_species`` volumes are individual 0 of each species (the paper's one specimen per
    species), the next ``n_species`` individual 1, and so on up to the profile's ``individuals``
    (``specimen``)."""

    def __init__(self, profile: Profile | str = "quick", cache_dir: str | os.PathLike | None = "auto",
                 memory_items: int = 8):
        self.profile = get_profile(profile)
        self.species = crania.catalog(self.profile.n_species, seed=self.profile.seed)
        if cache_dir == "auto":
            cache_dir = artifacts_dir(self.profile.name) / "volumes"
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._memory: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._memory_items = memory_items

    def __len__(self) -> int:
        return len(self.species) * self.profile.individuals

    def specimen(self, k: int) -> tuple[int, int]:
        """(species, individual) of volume ``k``."""
        if not 0 <= k < len(self):
            raise IndexError(f"specimen {k} is outside the bank of {len(self)}")
        individual, species = divmod(k, len(self.species))
        return species, individual

    def index(self, species: int, individual: int = 0) -> int:
        """The volume of ``individual`` of ``species`` (the inverse of ``specimen``)."""
        return species + individual * len(self.species)

    def name(self, k: int) -> str:
        species, individual = self.specimen(k)
        return self.species[species].name + (f", individual {individual}" if individual else "")

    def _path(self, k: int) -> Path:
        p, (species, individual) = self.profile, self.specimen(k)
        which = f"_i{individual}" if individual else ""
        return self.cache_dir / f"skull{species:03d}{which}_n{p.volume_size}_s{p.seed}_{crania.VERSION}.npy"

    def volume(self, k: int) -> torch.Tensor:
        """The canonical volume of specimen ``k`` (``[D, H, W]``, float32)."""
        if k in self._memory:
            self._memory.move_to_end(k)
            return self._memory[k]
        path = self._path(k) if self.cache_dir else None
        if path is not None and path.exists():
            vol = torch.from_numpy(np.load(path))
        else:
            species, individual = self.specimen(k)
            vol = crania.skull(self.species[species], self.profile.volume_size, individual_index=individual,
                               seed=self.profile.seed)
            if path is not None:
                with atomic_path(path) as tmp:
                    with open(tmp, "wb") as fh:
                        np.save(fh, vol.numpy())
        self._memory[k] = vol
        if len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)
        return vol


class FileBank:
    """Canonical volumes read from CT files (any format ``xtomo.data.io.load_volume`` reads)."""

    def __init__(self, paths: Sequence[str | os.PathLike], size: int = 128, **load_kwargs):
        from xtomo.data import io  # local import: io pulls in the file-format readers
        self.paths = [Path(p) for p in paths]
        self._volumes = [io.load_volume(p, size=size, **load_kwargs) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, k: int) -> str:
        return self.paths[k].name

    def volume(self, k: int) -> torch.Tensor:
        return self._volumes[k]


class TensorBank:
    """Canonical volumes already in memory (e.g. reconstructed by classical tomography), named."""

    def __init__(self, volumes: Sequence[torch.Tensor], names: Sequence[str] | None = None):
        self._volumes = list(volumes)
        for k, v in enumerate(self._volumes):
            if not torch.is_tensor(v) or v.dim() != 3 or not v.is_floating_point():
                raise ValueError(f"TensorBank: volume {k} must be a floating-point tensor [D, H, W], got "
                                 f"{tuple(v.shape) if torch.is_tensor(v) else type(v).__name__}")
        self.names = list(names) if names is not None else [f"volume {k}" for k in range(len(self._volumes))]
        if len(self.names) != len(self._volumes):
            raise ValueError(f"TensorBank: {len(self.names)} names for {len(self._volumes)} volumes")

    def __len__(self) -> int:
        return len(self._volumes)

    def name(self, k: int) -> str:
        return self.names[k]

    def volume(self, k: int) -> torch.Tensor:
        return self._volumes[k]


@dataclass(frozen=True)
class Sample:
    """Where a dataset index points: which specimen, which view, mirrored or not."""

    specimen: int
    view: int
    mirrored: bool


class XrayDataset(torch.utils.data.Dataset):
    """(x-ray, view-aligned volume) pairs of the ``specimens`` of ``bank``, made per index.

    Each specimen has ``n_views`` seeded directions on the +z hemisphere, each used as is and
    mirrored. Items are dicts: ``xray`` ``[1, S, S]`` alpha, ``volume`` ``[D, V, V]``, and the
    specimen, view, mirror flag and direction. Safe with ``DataLoader`` workers. With ``augment``
    (training sets), each sample's specimen is first cut from below by a seeded random share of the
    profile's ``cut``, stretched along its axes by seeded random factors within the profile's
    ``stretch`` and fitted into the cube again, turned by seeded random angles within the profile's
    ``pose``, then smoothed by a Gaussian of a seeded random width up to the profile's ``blur`` and its
    densities scaled by a seeded random gain within the profile's ``gain`` (``augmentation``): a CT's
    field of view often cuts a head's jaw and face, a head lies tilted in a scanner, real CTs are
    smoother than the procedural crania, their bone is as dense as their scanner, window and
    extinction coefficient make it, and a human braincase is taller and narrower than the generator's.
    """

    def __init__(self, bank, specimens: Sequence[int] | None = None, profile: Profile | str = "quick",
                 augment: bool = False):
        self.bank = bank
        self.profile = get_profile(profile)
        self.augment = augment
        self.specimens = list(range(len(bank))) if specimens is None else list(specimens)
        bad = [k for k in self.specimens if not 0 <= k < len(bank)]
        if bad:
            raise ValueError(f"XrayDataset: specimen indices {bad} are outside the bank of {len(bank)}")
        p = self.profile
        if p.xray_size % p.volume_size and p.volume_size % p.xray_size:
            raise ValueError(f"profile {p.name!r}: xray_size {p.xray_size} and volume_size "
                             f"{p.volume_size} must divide one another")
        self._mirrors = 2 if p.mirror else 1
        self._directions: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.specimens) * self.profile.n_views * self._mirrors

    def locate(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        index %= len(self)
        per = self.profile.n_views * self._mirrors
        k, rest = divmod(index, per)
        view, mirrored = divmod(rest, self._mirrors)
        return Sample(self.specimens[k], view, bool(mirrored))

    def directions(self, specimen: int) -> torch.Tensor:
        """The ``n_views`` view directions of a specimen (fixed by the profile's seed), drawn once."""
        if specimen not in self._directions:
            self._directions[specimen] = xray.sample_directions(self.profile.n_views,
                                                                seed=self.profile.seed * 100_003 + specimen)
        return self._directions[specimen]

    def views(self, indices: Sequence[int]) -> tuple[list[int], torch.Tensor, torch.Tensor, None]:
        """What a batch of indices asks for: (specimens, directions ``[B, 3]``, mirrored ``[B]``,
        ``None``: the x-rays are the specimens' own), for ``xtomo.data.pipeline``."""
        found = [self.locate(i) for i in indices]
        table = {k: self.directions(k) for k in {s.specimen for s in found}}
        directions = torch.stack([table[s.specimen][s.view] for s in found])
        return [s.specimen for s in found], directions, torch.tensor([s.mirrored for s in found]), None

    def augmentation(self, indices: Sequence[int]) -> Augmentation:
        """The ``Augmentation`` of each sample's specimen, a function of the profile's seed and the index:
        the blur uniform in [0, ``blur``], the gain log-uniform in [1 / ``gain``, ``gain``], the cut 0 for
        half the samples and uniform in [0, ``cut``] for the others (whole skulls stay as common as cut
        ones), the tilt uniform within ``CUT_TILT``, the stretch along each axis log-uniform in
        [1 / ``stretch``, ``stretch``], and the turn none for half the samples, each angle uniform within
        ``pose`` degrees for the others (``truncated``); nothing changed without ``augment``."""
        p, n = self.profile, len(indices)
        if not self.augment or (p.blur == 0 and p.gain == 1 and p.cut == 0 and p.stretch == 1 and p.pose == 0):
            return unchanged(n)
        seeds = [p.seed * 1_000_003 + 17 + i % len(self) for i in indices]
        u = torch.stack([torch.rand(4, generator=torch.Generator().manual_seed(s)) for s in seeds])
        # the stretch and the turn from generators of their own, so the other draws stay what they were before
        w = torch.stack([torch.rand(3, generator=torch.Generator().manual_seed(s + 7_919)) for s in seeds])
        t = torch.stack([torch.rand(4, generator=torch.Generator().manual_seed(s + 15_485_863)) for s in seeds])
        turns = (2 * t[:, 1:] - 1) * math.radians(p.pose) * (t[:, :1] >= 0.5)
        return Augmentation(u[:, 0] * p.blur, float(p.gain) ** (2 * u[:, 1] - 1),
                            (2 * u[:, 2] - 1).clamp_min(0) * p.cut, (2 * u[:, 3] - 1) * CUT_TILT,
                            float(p.stretch) ** (2 * w - 1), turns)

    def __getitem__(self, index: int) -> dict:
        s = self.locate(index)
        d = self.directions(s.specimen)[s.view]
        specimen = augmented(self.bank.volume(s.specimen)[None], *self.augmentation([index]))[0]
        alpha, volume = make_sample(specimen, d, self.profile)
        if s.mirrored:
            alpha, volume = xray.mirror(alpha), xray.mirror(volume)
        return dict(xray=alpha[None], volume=volume, specimen=s.specimen, view=s.view,
                    mirrored=s.mirrored, direction=d)


class Kept:
    """A dataset whose items are kept once made, for samples asked for again and again (validation)."""

    def __init__(self, dataset):
        self.dataset, self.items = dataset, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if index not in self.items:
            self.items[index] = self.dataset[index]
        return self.items[index]


class Mixed(torch.utils.data.Dataset):
    """The samples of ``base`` with a ``share`` of them taken from ``extra`` instead: real CTs (an ``XrayDataset``
    of a ``FileBank``) beside the procedural crania, of which they would otherwise be a few specimens in
    thousands. Index ``i`` is ``extra``'s sample ``i mod len(extra)`` where a fixed hash of ``i`` falls under
    ``share``, else ``base``'s ``i``; an ``extra`` item's specimen ``k`` reads ``-1 - k``. Made by a
    ``DataLoader`` (``train(..., pipeline="loader")``)."""

    def __init__(self, base, extra, share: float):
        if not (isinstance(share, (int, float)) and 0 <= share <= 1):
            raise ValueError(f"Mixed: share must be a fraction in [0, 1], got {share!r}")
        if not len(extra):
            raise ValueError("Mixed: extra holds no samples")
        self.base, self.extra, self.share = base, extra, float(share)

    def __len__(self) -> int:
        return len(self.base)

    def from_extra(self, index: int) -> bool:
        """Whether sample ``index`` is one of ``extra``'s (Knuth's multiplicative hash, uniform in [0, 1))."""
        return (index % len(self) * 2_654_435_761 % 2**32) / 2**32 < self.share

    def __getitem__(self, index: int) -> dict:
        if not self.from_extra(index):
            return self.base[index]
        item = self.extra[index % len(self.extra)]
        return dict(item, specimen=-1 - int(item["specimen"]))


class ViewDataset(torch.utils.data.Dataset):
    """(x-ray, view-aligned volume) pairs at chosen views of a bank's volumes, each also mirrored
    if the profile mirrors.

    ``specimens [N]`` and ``directions [N, 3]`` list the views. The x-rays are ``xrays [N, S, S]``
    when given (acquired by another model, e.g. ``xtomo.imaging.microct``, of the same specimens) and
    the volumes' own Beer–Lambert x-rays otherwise; the targets always come from the bank's
    volumes, resampled as in ``make_sample``. Items are dicts like ``XrayDataset``'s.
    """

    def __init__(self, bank, specimens: Sequence[int], directions: torch.Tensor, profile: Profile | str = "quick",
                 xrays: torch.Tensor | None = None):
        self.bank = bank
        self.profile = get_profile(profile)
        self.specimens = [int(k) for k in specimens]
        self.directions = torch.as_tensor(directions, dtype=torch.float32).reshape(-1, 3)
        if len(self.directions) != len(self.specimens):
            raise ValueError(f"ViewDataset: {len(self.specimens)} specimens but {len(self.directions)} directions")
        bad = sorted({k for k in self.specimens if not 0 <= k < len(bank)})
        if bad:
            raise ValueError(f"ViewDataset: specimen indices {bad} are outside the bank of {len(bank)}")
        size = self.profile.xray_size
        if xrays is not None and tuple(xrays.shape) != (len(self.specimens), size, size):
            raise ValueError(f"ViewDataset: xrays must be [{len(self.specimens)}, {size}, {size}] (one per view "
                             f"at the profile's x-ray size), got {tuple(xrays.shape)}")
        self.xrays = xrays
        self._mirrors = 2 if self.profile.mirror else 1

    def __len__(self) -> int:
        return len(self.specimens) * self._mirrors

    def locate(self, index: int) -> tuple[int, bool]:
        """(view, mirrored) of a dataset index."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        view, mirrored = divmod(index % len(self), self._mirrors)
        return view, bool(mirrored)

    def views(self, indices: Sequence[int]) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What a batch of indices asks for: (specimens, directions ``[B, 3]``, mirrored ``[B]``, the
        given x-rays ``[B, S, S]`` unmirrored or ``None``), for ``xtomo.data.pipeline``."""
        found = [self.locate(i) for i in indices]
        picked = torch.tensor([view for view, _ in found], dtype=torch.long)
        return ([self.specimens[v] for v in picked.tolist()], self.directions[picked],
                torch.tensor([m for _, m in found]), None if self.xrays is None else self.xrays[picked].float())

    def augmentation(self, indices: Sequence[int]) -> Augmentation:
        """No blur, gain 1, no cut, no stretch, no turn: a view dataset's volumes are used as they are."""
        return unchanged(len(indices))

    def __getitem__(self, index: int) -> dict:
        view, mirrored = self.locate(index)
        k, d = self.specimens[view], self.directions[view]
        volume = self.bank.volume(k)
        if self.xrays is None:
            alpha, target = make_sample(volume, d, self.profile)
        else:
            alpha, target = self.xrays[view].float(), view_target(volume, d, self.profile)
        if mirrored:
            alpha, target = xray.mirror(alpha), xray.mirror(target)
        return dict(xray=alpha[None], volume=target, specimen=k, view=view, mirrored=mirrored, direction=d)


def lateral(aligned: torch.Tensor, profile: Profile) -> torch.Tensor:
    """Aligned stacks ``[..., D, S, S]`` marched at the x-ray's resolution, averaged down to the volume's."""
    if profile.xray_size != profile.volume_size:
        lead, depth = aligned.shape[:-3], aligned.shape[-3]
        side = (profile.volume_size,) * 2
        aligned = F.interpolate(aligned.reshape(-1, *aligned.shape[-3:]), size=side, mode="area")
        aligned = aligned.reshape(*lead, depth, *side)
    return aligned


def make_sample(volume: torch.Tensor, direction: torch.Tensor, profile: Profile):
    """The x-ray (``xray_size``) and the view-aligned volume (``volume_size``) of one view, or of a
    batch: volumes ``[B, D, H, W]`` with directions ``[B, 3]``, the same numbers as ``B`` calls but
    faster on a CPU (one ``xray.align`` over the batch).

    Rays are marched at the x-ray's resolution; the target volume is that aligned volume
    averaged down laterally, so both come from one resampling, as in the paper (256^2 x-rays
    of 128^3 volumes).
    """
    aligned = xray.align(volume, direction, n_steps=profile.n_steps, size=profile.xray_size)
    return xray.composite(aligned, chi=profile.chi), lateral(aligned, profile)


def view_target(volume: torch.Tensor, direction: torch.Tensor, profile: Profile) -> torch.Tensor:
    """The view-aligned volume of ``make_sample`` alone, for x-rays that come from elsewhere."""
    return lateral(xray.align(volume, direction, n_steps=profile.n_steps, size=profile.xray_size), profile)


def aligned_truth(species: crania.Species, direction: torch.Tensor, profile: Profile, size: int,
                  resolution: int, mirrored: bool = False) -> torch.Tensor:
    """Ground truth of a view at another resolution: the skull generated at ``resolution^3``,
    aligned to ``direction`` with the profile's slice count and ``size^2`` laterally.

    The procedural crania exist at any resolution, so a reconstruction can be held against a
    truth sharper than anything the network was trained on.
    """
    fine = crania.skull(species, resolution, seed=profile.seed)
    truth = xray.align(fine, direction, n_steps=profile.n_steps, size=size)
    return xray.mirror(truth) if mirrored else truth


def counts(profile: Profile | str = "quick") -> dict:
    """Species, split and sample counts of a profile, beside the paper's."""
    p = get_profile(profile)
    per = p.samples_per_species
    return dict(profile=p.name, species=p.n_species, train_species=p.n_train_species,
                val_species=p.n_val_species, views=p.n_views, mirrors=2 if p.mirror else 1,
                samples=p.n_species * per, train_samples=p.n_train_species * per,
                val_samples=p.n_val_species * per, volume_size=p.volume_size,
                xray_size=p.xray_size, paper=PAPER_COUNTS)


def simulate_collection(profile: Profile | str = "quick", progress: bool = True) -> dict:
    """Generate (or find cached) every species volume of a profile and write the manifest.

    Returns the manifest: species with taxonomy, the train/validation split and the counts.
    """
    from tqdm.auto import tqdm

    p = get_profile(profile)
    bank = ProceduralBank(p)
    train, val = crania.split(bank.species, p.n_val_species, seed=p.seed)
    for k in tqdm(range(len(bank.species)), desc=f"species volumes ({p.name}, {p.volume_size}^3)",
                  disable=not progress):
        bank.volume(k)
    manifest = dict(
        counts=counts(p), train=train, val=val,
        species=[dict(index=s.index, name=s.name, order=s.order, family=s.family,
                      split="val" if s.index in val else "train") for s in bank.species],
        volumes=str(bank.cache_dir), machine=f"{platform.machine()} {os.cpu_count()} cpu",
    )
    write_json(artifacts_dir(p.name) / "manifest.json", manifest)
    return manifest
