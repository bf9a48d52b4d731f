"""A simulated micro-CT: x-rays with more physics than the book's training model.

The network of the book learns from Beer–Lambert x-rays of one energy (``xtomo.imaging.xray``):
``alpha = exp(-chi * integral of mu)``. A real scanner differs, and this module makes those
differences, so that chapter 8 can learn from x-rays that are not made by its own model:

* **A polychromatic spectrum.** A tube at ``kvp`` emits bremsstrahlung (Kramers' law,
  ``N(E) ~ (kvp - E) / E``), hardened by an aluminium filter; an energy-integrating detector
  weighs each photon by its energy.
* **Energy-dependent attenuation per material.** Soft tissue attenuates like water, bone like
  ICRU cortical bone (NIST mass attenuation coefficients, Hubbell & Seltzer 2004): bone's
  photo-electric absorption falls much faster with energy. A thick path filters out the soft
  photons first, so the beam hardens and the effective attenuation drops with thickness: line
  integrals, ``-ln(alpha)``, are no longer linear in density (cupping and streaks in a CT).
* **A detector.** Compton scatter as a wide, low-frequency halo (a Gaussian kernel superposed
  over every pencil beam in proportion to what it lost), photon (Poisson) noise for a given count
  per pixel of the flat field, and a Gaussian point-spread function.

Densities keep the book's units: a phantom's ``soft`` and ``mineral`` volumes add up to its
density at the **reference energy**, the one at which the spectrum's mean water attenuation is
reached (its effective energy for thin soft tissue). With a monochromatic spectrum at that
energy and no detector effects, the model is exactly Beer–Lambert (a test checks it).

Two geometries: ``expose`` looks along any view direction (``xray.align``'s camera, as the
training x-rays do), ``scan`` turns the specimen about the scanner's axis (the mouse's long axis,
+y) for classical tomography (``xtomo.imaging.tomography``), parallel beam, slice by slice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo.imaging import tomography, xray

__all__ = ["MASS_ATTENUATION", "ENERGIES", "Scanner", "Scan", "spectrum", "reference_energy",
           "relative_attenuation", "transmission", "detect", "expose", "scan", "log_transform",
           "linearize", "unharden", "RADIOGRAPH_TUBE", "reconstruct_scan", "effective_attenuation", "difference"]

#: Energies (keV) of the tabulated mass attenuation coefficients (cm^2/g, with coherent scattering)
#: of NIST's X-ray mass attenuation tables (Hubbell & Seltzer 2004).
ENERGIES = (10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0)
MASS_ATTENUATION = {
    "soft": (5.329, 1.673, 0.8096, 0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505),       # water
    "bone": (28.51, 9.032, 4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480),         # cortical bone
    "aluminium": (26.21, 7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378),
}
_ALUMINIUM_DENSITY = 2.699  # g/cm^3


@dataclass(frozen=True)
class Scanner:
    """A micro-CT's tube, filter and detector; the defaults resemble a small-animal scanner.

    ``photons``: quanta per detector pixel in the flat field (``None``: no noise); ``blur``:
    the detector PSF's sigma in pixels (0: none); ``scatter``: the scatter halo's amplitude per
    unit of lost intensity; ``scatter_width``: its sigma as a fraction of the detector width;
    ``monochromatic``: one energy only, the reference energy; ``energy``: that reference energy in
    keV (``None``: the spectrum's effective energy for water, see ``reference_energy``).
    """

    kvp: float = 50.0
    filter_mm: float = 0.5
    bins: int = 40
    photons: float | None = 20_000.0
    blur: float = 0.6
    scatter: float = 0.04
    scatter_width: float = 0.12
    chi: float = xray.CHI
    monochromatic: bool = False
    energy: float | None = None

    def __post_init__(self):
        checks.number(self.kvp, "kvp (keV, within the attenuation tables)", ENERGIES[0] + 5, ENERGIES[-1], "Scanner")
        checks.nonnegative(self.filter_mm, "filter_mm", "Scanner")
        checks.integer(self.bins, "bins", minimum=1, what="Scanner")
        if self.photons is not None:
            checks.positive(self.photons, "photons (None: no noise)", "Scanner")
        for name in ("blur", "scatter", "scatter_width"):
            checks.nonnegative(getattr(self, name), name, "Scanner")
        checks.positive(self.chi, "chi", "Scanner")
        if self.energy is not None:
            checks.number(self.energy, "energy (keV, within the tables)", ENERGIES[0], ENERGIES[-1], "Scanner")

    def ideal(self) -> Scanner:
        """The same tube and energies with a perfect detector: no noise, blur or scatter."""
        return replace(self, photons=None, blur=0.0, scatter=0.0)


def _loglog(energy: torch.Tensor, material: str) -> torch.Tensor:
    """Mass attenuation of ``material`` at ``energy`` (keV), interpolated linearly in log-log."""
    if material not in MASS_ATTENUATION:
        raise ValueError(f"unknown material {material!r}; choose one of {sorted(MASS_ATTENUATION)}")
    e = torch.log(torch.as_tensor(ENERGIES, dtype=torch.float64))
    m = torch.log(torch.as_tensor(MASS_ATTENUATION[material], dtype=torch.float64))
    x = torch.log(torch.as_tensor(energy, dtype=torch.float64)).clamp(e[0], e[-1])
    i = torch.searchsorted(e, x.contiguous()).clamp(1, len(e) - 1)
    t = (x - e[i - 1]) / (e[i] - e[i - 1])
    return torch.exp(m[i - 1] + t * (m[i] - m[i - 1]))


def _tube(scanner: Scanner) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin centres (keV) and the detected energy weights of the filtered Kramers spectrum."""
    edges = torch.linspace(ENERGIES[0], scanner.kvp, scanner.bins + 1, dtype=torch.float64)
    e = (edges[1:] + edges[:-1]) / 2
    photons = (scanner.kvp - e) / e                                                # Kramers
    photons = photons * torch.exp(-_loglog(e, "aluminium") * _ALUMINIUM_DENSITY * scanner.filter_mm / 10)
    weights = photons * e                                                          # energy-integrating
    return e, weights / weights.sum()


def reference_energy(scanner: Scanner) -> float:
    """The energy (keV) at which densities are defined: ``scanner.energy`` if set, else the
    spectrum's effective energy for water (where water's attenuation equals its spectral mean)."""
    if scanner.energy is not None:
        return float(scanner.energy)
    e, w = _tube(scanner)
    target = math.log(float((w * _loglog(e, "soft")).sum()))
    lo, hi = math.log(ENERGIES[0]), math.log(scanner.kvp)
    for _ in range(60):  # bisection: water's attenuation falls monotonically with energy
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.log(float(_loglog(math.exp(mid), "soft"))) > target else (lo, mid)
    return math.exp((lo + hi) / 2)


def spectrum(scanner: Scanner) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies (keV) and detected weights (summing to one) the scanner integrates over."""
    if scanner.monochromatic:
        return torch.tensor([reference_energy(scanner)], dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    return _tube(scanner)


def relative_attenuation(material: str, energies, scanner: Scanner) -> torch.Tensor:
    """``mu(E) / mu(E_ref)`` of ``material`` ("soft" or "bone"): how much more or less it
    attenuates at each energy than at the reference energy, where its density is defined."""
    return _loglog(energies, material) / _loglog(reference_energy(scanner), material)


def transmission(soft: torch.Tensor, mineral: torch.Tensor, scanner: Scanner) -> torch.Tensor:
    """Primary transmitted fraction for line integrals of soft-tissue and bone-mineral density
    (the book's units: density times cube lengths), summed over the spectrum."""
    e, w = spectrum(scanner)
    s = relative_attenuation("soft", e, scanner).to(soft)
    b = relative_attenuation("bone", e, scanner).to(soft)
    out = torch.zeros_like(soft)
    for k in range(len(e)):  # a loop over energy bins, each a whole-image operation
        out += float(w[k]) * torch.exp(-scanner.chi * (soft * s[k] + mineral * b[k]))
    return out


def _gaussian(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of images ``[..., H, W]`` (edges replicated)."""
    if sigma <= 0:
        return images
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    lead, (h, w) = images.shape[:-2], images.shape[-2:]
    out = images.reshape(-1, 1, h, w)
    pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)
    out = F.pad(out, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
    out = F.conv2d(out, k[radius - pad_h:radius + pad_h + 1].reshape(1, 1, -1, 1))
    out = F.conv2d(out, k[radius - pad_w:radius + pad_w + 1].reshape(1, 1, 1, -1))
    return out.reshape(*lead, h, w)


def detect(primary: torch.Tensor, scanner: Scanner, seed: int = 0) -> torch.Tensor:
    """What the detector records, normalised by the flat field: ``[..., H, W]`` images.

    Scatter: a Gaussian halo of width ``scatter_width`` of the detector, fed by every pixel in
    proportion to ``primary * -ln(primary)`` (what a thin pencil beam loses to scattering).
    Then Poisson photon counts for ``photons`` quanta per flat-field pixel, seeded, and the
    detector's blur. Values may exceed 1 where noise lands above the flat field.
    """
    primary = primary.clamp_min(1e-12)
    signal = primary
    if scanner.scatter > 0:
        width = scanner.scatter_width * primary.shape[-1]
        signal = signal + scanner.scatter * _gaussian(primary * -torch.log(primary), width)
    if scanner.photons is not None:
        g = torch.Generator(device=signal.device).manual_seed(int(seed))
        signal = torch.poisson(signal * scanner.photons, generator=g) / scanner.photons
    return _gaussian(signal, scanner.blur)


def expose(soft: torch.Tensor, mineral: torch.Tensor, direction, scanner: Scanner, size: int | None = None,
           n_steps: int | None = None, seed: int = 0) -> torch.Tensor:
    """The recorded x-ray (transparency, ``[size, size]``) of a two-material specimen along a view
    direction, in ``xray.align``'s camera; clamped to [0, 1] like any transparency image."""
    if soft.shape != mineral.shape or soft.dim() != 3:
        raise ValueError(f"expose: soft and mineral must be volumes [D, H, W] of one shape, "
                         f"got {tuple(soft.shape)} and {tuple(mineral.shape)}")
    n_steps = n_steps or soft.shape[0]
    d = torch.as_tensor(direction, dtype=torch.float32).reshape(1, 3).expand(2, 3)
    aligned = xray.align(torch.stack([soft, mineral]), d, n_steps=n_steps, size=size)
    integrals = aligned.sum(1) / n_steps                                        # [2, size, size]
    return detect(transmission(integrals[0], integrals[1], scanner), scanner, seed).clamp(0, 1)


class Scan(NamedTuple):
    """A CT acquisition: recorded transparencies ``alpha`` ``[S, A, N]`` (slice along the axis,
    angle, detector bin), the ``angles`` in degrees and the scanner that made them."""

    alpha: torch.Tensor
    angles: torch.Tensor
    scanner: Scanner


def _axial(volume: torch.Tensor) -> torch.Tensor:
    """Canonical ``[z, y, x]`` -> slices across the scanner axis (+y) ``[y, z, x]``."""
    return volume.permute(1, 0, 2)


def scan(soft: torch.Tensor, mineral: torch.Tensor, scanner: Scanner, n_angles: int, arc: float = 180.0,
         detector: int | None = None, seed: int = 0) -> Scan:
    """Turn the specimen about the scanner axis (+y): ``n_angles`` parallel projections over
    ``arc`` degrees onto a detector of ``detector`` bins per row and as many rows.

    The phantom may be finer than the detector (it should be, or the reconstruction commits the
    inverse crime of meeting its own discretisation): rows then average its slices and bins
    average the transmitted intensity of its rays, as a detector pixel integrates photons, so the
    non-linear partial-volume effect is kept.
    """
    if soft.shape != mineral.shape or soft.dim() != 3 or len(set(soft.shape)) != 1:
        raise ValueError(f"scan: soft and mineral must be cubic volumes of one shape, "
                         f"got {tuple(soft.shape)} and {tuple(mineral.shape)}")
    n = soft.shape[0]
    detector = detector or n
    if n % detector:
        raise ValueError(f"scan: the phantom's {n} voxels must be a multiple of the detector's {detector} bins")
    k = n // detector
    angles = tomography.scan_angles(n_angles, arc)
    slices = [F.avg_pool1d(_axial(v).permute(1, 2, 0).reshape(-1, 1, n), k).reshape(n, n, detector)
              .permute(2, 0, 1) for v in (soft, mineral)]                      # rows: slices averaged
    integrals = [tomography.radon(s, angles) / n for s in slices]             # cube units, [S, A, n]
    primary = transmission(integrals[0], integrals[1], scanner)
    primary = F.avg_pool1d(primary.reshape(-1, 1, n), k).reshape(detector, n_angles, detector)
    alpha = detect(primary.permute(1, 0, 2), scanner, seed).permute(1, 0, 2)    # detector images per angle
    return Scan(alpha.contiguous(), angles, scanner)


def log_transform(alpha: torch.Tensor, scanner: Scanner) -> torch.Tensor:
    """``-ln(alpha) / chi``: density line integrals (cube units) as a scanner takes them, with
    transparencies floored at half a photon (a dead-dark pixel would give infinity)."""
    floor = 0.5 / scanner.photons if scanner.photons is not None else 1e-9
    return -torch.log(alpha.clamp_min(floor)) / scanner.chi


def linearize(integrals: torch.Tensor, scanner: Scanner, material: str = "soft") -> torch.Tensor:
    """Beam-hardening correction: map each measured line integral to the line integral of ``material``
    ("soft": water, as scanners do before reconstruction, which removes soft tissue's cupping but not bone's
    streaks; "bone": a dry skull's) that would have given it, through the scanner's own curve for it."""
    if material not in ("soft", "bone"):
        raise ValueError(f"linearize: material must be 'soft' or 'bone', got {material!r}")
    lengths = torch.linspace(0, 4, 2049, dtype=torch.float64, device=integrals.device)  # cube units
    zero = torch.zeros_like(lengths)
    path = (lengths, zero) if material == "soft" else (zero, lengths)
    measured = log_transform(transmission(*path, scanner.ideal()), scanner)
    x = integrals.double().clamp(float(measured[0]), float(measured[-1])).contiguous()
    i = torch.searchsorted(measured, x).clamp(1, len(lengths) - 1)
    t = (x - measured[i - 1]) / (measured[i] - measured[i - 1]).clamp_min(1e-12)
    return (lengths[i - 1] + t * (lengths[i] - lengths[i - 1])).to(integrals.dtype)


RADIOGRAPH_TUBE = (70.0, 2.5)
"""A skull radiograph's usual tube: kVp, and mm of aluminium filter (what ``--tube`` assumes where not told)."""


def unharden(alpha: torch.Tensor, scanner: Scanner) -> torch.Tensor:
    """A dry skull's x-ray through ``scanner``'s tube (transparencies) as Beer–Lambert at the reference energy would
    have taken it: each pixel's bone line integral found on the tube's own bone curve (``linearize``). A reader who
    knows roughly how a radiograph was taken undoes the beam hardening the network never saw in training."""
    return torch.exp(-scanner.chi * linearize(log_transform(alpha, scanner), scanner, "bone"))


def reconstruct_scan(acquisition: Scan, method: str = "sart", water_correction: bool = True, sweeps: int = 2,
                window: str = "hann", init: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
    """The canonical volume ``[z, y, x]`` of a scan by classical tomography, slice by slice.

    ``method``: "fbp" (filtered back-projection with the ``window``ed ramp) or "sart" (``sweeps``
    of SART started from that FBP, or from ``init``, a canonical volume such as an FBP already
    made). Line integrals are water-corrected first if asked.
    """
    if method not in ("fbp", "sart"):
        raise ValueError(f"reconstruct_scan: method must be 'fbp' or 'sart', got {method!r}")
    p = log_transform(acquisition.alpha, acquisition.scanner)
    if water_correction:
        p = linearize(p, acquisition.scanner)
    n = p.shape[-1]
    sino = p * n                                                                # pixel units of the grid
    if init is not None and method == "sart":
        volume = init.permute(1, 0, 2).to(sino)
    else:
        volume = tomography.fbp(sino, acquisition.angles, window=window).clamp_min(0)
    if method == "sart":
        volume = tomography.sart(sino, acquisition.angles, sweeps=sweeps, init=volume, progress=progress)
    return volume.permute(1, 0, 2).contiguous()


def effective_attenuation(lengths, material: str, scanner: Scanner) -> torch.Tensor:
    """Measured line integral per unit of true line integral, ``-ln(alpha) / (chi * L)``, through
    paths of ``L`` (density times cube lengths) of one material, with an ideal detector: 1 for
    Beer–Lambert at the reference energy; below 1 and falling with ``L`` as the beam hardens."""
    if material not in ("soft", "bone"):
        raise ValueError(f"effective_attenuation: material must be 'soft' or 'bone', got {material!r}")
    L = torch.as_tensor(lengths, dtype=torch.float64)
    if not (L > 0).all():
        raise ValueError("effective_attenuation: lengths must be positive")
    zero = torch.zeros_like(L)
    t = transmission(L, zero, scanner) if material == "soft" else transmission(zero, L, scanner)
    return -torch.log(t) / (scanner.chi * L)


def difference(a: torch.Tensor, b: torch.Tensor) -> dict:
    """How far apart two x-rays (transparencies) are: mean and largest absolute difference and
    PSNR (dB, peak 1) of their opacities over the whole image, and over the pixels where both
    see the specimen (alpha < 0.99) the mean absolute difference of opacity (``mad_specimen``)
    and of line integrals ``-ln(alpha)`` relative to their mean (``relative``)."""
    a, b = a.double(), b.double()
    mse = float(((a - b) ** 2).mean())
    seen = (a < 0.99) & (b < 0.99)
    la, lb = -torch.log(a.clamp_min(1e-6)), -torch.log(b.clamp_min(1e-6))
    any_seen = bool(seen.any())
    return dict(mad=float((a - b).abs().mean()), max=float((a - b).abs().max()),
                psnr=10 * math.log10(1 / mse) if mse > 0 else math.inf,
                mad_specimen=float((a - b)[seen].abs().mean()) if any_seen else 0.0,
                relative=float((la - lb)[seen].abs().sum() / lb[seen].abs().sum()) if any_seen else 0.0)
