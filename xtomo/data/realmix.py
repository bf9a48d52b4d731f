"""Real skull CTs among the training samples (``xtomo train --ct``).

The paper trained on real CTs; our crania are procedural, and a real head in training carries over to a real head it
never saw (``benchmarks/RESULTS.md``, ``real-in-training``). Each CT is a fetched real head named by ``NAMED`` (or
``STUDIED``) or a file ``xtomo evaluate`` reads, made a dry skull and set upright as that command makes it; the CTs
together are a ``share`` of the training samples (``datasets.Mixed``), each sample stretched along its axes and
turned at random (``STRETCH``, ``POSE``) besides the profile's blur and gain, so that its views are not all one
head. What went in is recorded (``record``) in the checkpoint and the shipped model's manifest: each CT's name and
the sha256 of its file, so that a resumed run refuses other CTs and a model says what it saw.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from xtomo.data import realdata
from xtomo.data.datasets import Mixed, TensorBank, XrayDataset
from xtomo.files import sha256

__all__ = ["Fetched", "NAMED", "STUDIED", "FETCHED", "SHARE", "STRETCH", "POSE", "RealCT", "find_ct", "mixed", "record",
           "same_cts"]


class Fetched(NamedTuple):
    """A fetched real head: how the book labels it, its file in ``realdata.data_dir()``, and what reads it."""

    label: str
    file: str
    load: Callable[[int], torch.Tensor]  #: size -> the dry skull [size]^3, set upright


#: the fetched real heads the shipped model trains on, by the name ``--ct`` knows them
NAMED = {"head": Fetched("real head", realdata.HEAD["file"], realdata.head),
         "second-head": Fetched("second real head", realdata.SECOND_HEAD["file"], realdata.second_head),
         "phantom-head": Fetched("phantom head", realdata.PHANTOM_HEAD["file"], realdata.phantom_head)}
#: fetched heads that ``--ct`` knows though no shipped model trains on them (``realdata.UNSEEN_HEADS``): for studies
#: that hold out another head instead
STUDIED = {name: Fetched(name, found["file"], functools.partial(realdata.unseen_head, name))
           for name, found in realdata.UNSEEN_HEADS.items()}
FETCHED = NAMED | STUDIED  #: every fetched head ``--ct`` knows
SHARE = 0.25    #: the real CTs' default share of the training samples
STRETCH = 1.15  #: each real sample is stretched along each axis by a random factor in [1/STRETCH, STRETCH]
POSE = 10.0     #: ... and half of them turned by up to this many degrees about each axis


@dataclasses.dataclass(frozen=True)
class RealCT:
    """A CT to train on: its name as given (a ``NAMED`` head or a path), its file or folder, and their sha256."""

    name: str
    path: Path
    sha256: str

    def volume(self, size: int) -> torch.Tensor:
        """The CT as a dry skull ``[size]^3``, set upright (``xtomo.data.pose``), as ``xtomo evaluate`` reads it."""
        if self.name in FETCHED and not Path(self.name).exists():
            return FETCHED[self.name].load(size)
        from xtomo.data import io

        return io.load_volume(self.path, size=size, upright=True)


def find_ct(spec: str, what: str = "--ct") -> RealCT:
    """The CT ``spec`` names: an existing file or folder, else a fetched head of ``NAMED`` or ``STUDIED``; else an
    error that names ``spec`` as ``what`` (the option or argument it came from)."""
    given = Path(spec)
    if given.exists():
        return RealCT(spec, given, sha256(given))
    if spec in FETCHED:
        file = realdata.path(FETCHED[spec].file)  # says how to fetch it when missing
        return RealCT(spec, file, sha256(file))
    raise FileNotFoundError(f"{what} {spec!r}: no such file or folder, and not a fetched real head "
                            f"({', '.join(FETCHED)})")


def mixed(train_set, cts: Sequence[RealCT], profile, share: float = SHARE,
          stretch: float = STRETCH, pose: float = POSE) -> Mixed:
    """``train_set`` with a ``share`` of its samples taken from views of ``cts`` (augmented as the profile
    says, but stretched by up to ``stretch`` and turned by up to ``pose`` degrees)."""
    if not cts:
        raise ValueError("mixed: no real CTs given")
    bank = TensorBank([ct.volume(profile.volume_size) for ct in cts], [ct.name for ct in cts])
    real = XrayDataset(bank, list(range(len(cts))), profile.replace(stretch=stretch, pose=pose), augment=True)
    return Mixed(train_set, real, share)


def record(cts: Sequence[RealCT], share: float = SHARE) -> dict | None:
    """What a checkpoint keeps of the real CTs a run trains on (None: none): each one's name and sha256,
    their share of the samples and their augmentation."""
    if not cts:
        return None
    return dict(cts=[dict(name=ct.name, sha256=ct.sha256) for ct in cts], share=float(share),
                stretch=STRETCH, pose=POSE)


def same_cts(before: dict | None, now: dict | None, where: str) -> None:
    """Refuse to resume a run on other real CTs (or another share) than it started with, naming both."""
    if before != now:
        def told(r):
            return "none" if not r else (", ".join(f"{c['name']} (sha256 {c['sha256'][:12]}…)" for c in r["cts"])
                                         + f" as {r['share']:.0%} of the samples")

        raise ValueError(f"{where} was trained on real CTs {told(before)}, not {told(now)}: resume it with the same "
                         "--ct files and --ct-share, or start a new run")
