"""Training x-rays taken through physical acquisitions drawn at random, beside the Beer–Lambert ones.

The network trains on ideal x-rays, but a radiograph is made by a polychromatic tube (beam hardening),
holds scatter, photon noise and detector blur, and is stored as an 8-bit image under a display gamma
(chapter 8; ``realcase.acquire``'s ``"physical"`` x-rays). A dry skull's ideal x-ray says everything such an
acquisition needs: its line integrals of bone, ``-ln(alpha) / chi``. So a share of each training batch
(``Profile.physical``) is re-taken from those integrals by a ``microct.Scanner`` whose tube, filter, dose,
blur and scatter are drawn from ``RANGES`` (the book's scanner lies inside them), stored and read back as a
reader's radiograph is (``read_back``: the storage undone, then the beam hardening for a usual skull radiograph's
tube, as ``realcase.acquire`` reads its physical x-rays). The targets are unchanged: the same skull, seen worse.
"""
from __future__ import annotations

import math

import torch

from xtomo import _checks as checks
from xtomo.imaging import microct, xray
from xtomo.learning.inference import prepare_radiograph

__all__ = ["DISPLAY_GAMMA", "RANGES", "recorded_to_alpha", "reading_tube", "read_back", "random_scanner",
           "physical_xrays"]

DISPLAY_GAMMA = 2.2  #: the display encoding (8 bits) of a stored radiograph, undone on reading
#: (low, high) of each drawn ``microct.Scanner`` setting; ``photons`` is drawn log-uniform, the others uniform
RANGES = {"kvp": (40.0, 120.0), "filter_mm": (0.0, 2.0), "photons": (3e3, 1e5), "blur": (0.0, 1.5),
          "scatter": (0.0, 0.1), "scatter_width": (0.05, 0.25)}


def recorded_to_alpha(recorded: torch.Tensor) -> torch.Tensor:
    """A recorded x-ray ``[S, S]`` (flat-field normalised) stored as an 8-bit image under ``DISPLAY_GAMMA`` and read
    back as a reader's radiograph is: gamma undone, 1 % of the pixels taken as air (``prepare_radiograph``)."""
    stored = torch.round(xray.encode_gamma(recorded, DISPLAY_GAMMA) * 255) / 255
    return prepare_radiograph(xray.decode_gamma(stored, DISPLAY_GAMMA), air=0.01)


def reading_tube(chi: float = xray.CHI, kvp: float | None = None, filter_mm: float | None = None) -> microct.Scanner:
    """The tube a reader takes a radiograph to come from when undoing its beam hardening (``microct.unharden``,
    ``xtomo reconstruct --tube KVP[,MM]``): ``kvp`` through ``filter_mm`` of aluminium, each where not told a skull
    radiograph's usual ``microct.RADIOGRAPH_TUBE`` (70 kVp through 2.5 mm), not the tube that took it, which a
    reader would not know."""
    usual_kvp, usual_mm = microct.RADIOGRAPH_TUBE
    return microct.Scanner(kvp=usual_kvp if kvp is None else kvp,
                           filter_mm=usual_mm if filter_mm is None else filter_mm, chi=chi)


def read_back(recorded: torch.Tensor, chi: float = xray.CHI) -> torch.Tensor:
    """A recorded x-ray ``[S, S]`` of a dry skull as a reader turns it into the network's input: stored and read
    (``recorded_to_alpha``), then unhardened for the ``reading_tube``."""
    return microct.unharden(recorded_to_alpha(recorded), reading_tube(chi))


def random_scanner(generator: torch.Generator, chi: float = xray.CHI) -> microct.Scanner:
    """A ``microct.Scanner`` with each of ``RANGES``' settings drawn from ``generator``."""
    u = torch.rand(len(RANGES), generator=generator, dtype=torch.float64).tolist()
    drawn = {}
    for (name, (lo, hi)), t in zip(RANGES.items(), u):
        drawn[name] = math.exp(math.log(lo) + t * math.log(hi / lo)) if name == "photons" else lo + t * (hi - lo)
    return microct.Scanner(chi=chi, **drawn)


def physical_xrays(alpha: torch.Tensor, share: float, seed: int, chi: float = xray.CHI) -> torch.Tensor:
    """Ideal x-rays of dry skulls ``[B, 1, S, S]`` with a seeded random ``share`` of them re-taken by a scanner
    drawn for each (``random_scanner``), on the x-rays' device; the others, and all of them at share 0, as given."""
    share = checks.number(share, "share", 0.0, 1.0, "physical_xrays")
    if alpha.dim() != 4 or alpha.shape[1] != 1:
        raise ValueError(f"physical_xrays: expected x-rays [B, 1, S, S], got shape {tuple(alpha.shape)}")
    if share == 0:
        return alpha
    g = torch.Generator().manual_seed(int(seed))
    picked = (torch.rand(len(alpha), generator=g) < share).tolist()
    out = alpha.clone()
    for i in (i for i, p in enumerate(picked) if p):  # a few whole images per batch
        scanner = random_scanner(g, chi)
        bone = microct.log_transform(alpha[i, 0].detach().cpu().double(), scanner.ideal())  # no photon floor
        primary = microct.transmission(torch.zeros_like(bone), bone, scanner)
        recorded = microct.detect(primary, scanner, seed=int(seed) * 31 + i).clamp(0, 1).float()
        out[i, 0] = read_back(recorded, chi).to(out)
    return out
