"""Realism: statistics that hold a procedural cranium against a real skull, computed the same way on any volume.

Every statistic is dimensionless, so a real CT and a procedural skull compare at any resolution
and size: lengths are divided by the skull's **extent** (the largest side of the bounding box of
its bone iso-surface), areas and volumes enter as ratios, frequencies are counted in cycles per
image. ``volume_stats`` measures the bone of a density volume, ``xray_stats`` the opacity of its
x-rays, and ``realism_table`` says, statistic by statistic, whether a real value lies within the
range of the procedural ones. ``STATISTICS`` describes each compared statistic in a line.

Bone is every voxel at or above ``level`` (default ``LEVEL`` = 0.25 of the [0, 1] density scale:
above soft tissue and partial-volume haze, below cancellous bone, 0.34 in the procedural crania).
The statistics run on the CPU with numpy, scipy and scikit-image; inputs on another device are
copied.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import ndimage as ndi
from scipy import sparse
from scipy.spatial import ConvexHull
from skimage import measure

from xtomo import _checks as checks

__all__ = ["LEVEL", "FLOOR", "BAND", "EDGE", "SMOOTHING", "COHERENCE_SCALE", "HISTOGRAM_BINS", "STATISTICS",
           "bone_mesh", "mesh_volume", "ridge_thickness", "surface_roughness", "volume_stats", "power_spectrum",
           "edge_stats", "xray_stats", "realism_table"]

LEVEL = 0.25            #: bone threshold, a fraction of the [0, 1] density scale
FLOOR = 0.02            #: density (volumes) or opacity (x-rays) below which a voxel or pixel is empty
BAND = (4.0, 24.0)      #: frequency band of the spectrum fit, cycles per image (needs images of >= 48 px)
EDGE = 25.0             #: edge threshold on the opacity gradient, opacity per image width
SMOOTHING = 0.05        #: relief wavelength the roughness measure smooths away, a fraction of the extent
COHERENCE_SCALE = 0.02  #: integration scale of edge straightness, a fraction of the image width
HISTOGRAM_BINS = 50     #: fixed bins over [0, 1] of the density and opacity histograms

#: The compared statistics, each described in a line (what ``realism_table`` lists).
STATISTICS = {
    "bone_fraction": "bone volume / volume of its convex hull",
    "thickness_mean": "mean shell thickness 2 V / S, / extent",
    "thickness_p10": "10th percentile of local thickness (chords through the medial ridge), / extent",
    "thickness_p50": "median local thickness, / extent",
    "thickness_p90": "90th percentile of local thickness, / extent",
    "surface_to_volume": "bone surface area / bone volume, x extent",
    "roughness": "iso-surface area / area with relief finer than 5 % of the extent smoothed away",
    "density_p10": "10th percentile of bone density",
    "density_p50": "median bone density",
    "density_p90": "90th percentile of bone density",
    "spectrum_slope": "log-log slope of the radial power spectrum of opacity, 4-24 cycles per image",
    "gradient_mean": "mean opacity gradient over the specimen, opacity per image width",
    "edge_density": "share of the specimen's pixels with a gradient above EDGE",
    "edge_straightness": "orientation coherence of edges (1: ruler-straight)",
    "opacity_mean": "mean opacity over the specimen",
    "opacity_std": "standard deviation of opacity over the specimen",
    "opacity_spread": "90th minus 10th percentile of opacity over the specimen",
}


# ----------------------------------------------------------------------------- volumes

def _array(x, name: str, ndim: int, what: str) -> np.ndarray:
    """``x`` (tensor or array) as a float64 numpy array of ``ndim`` dimensions, or a ValueError naming it."""
    x = checks.tensor(torch.as_tensor(x) if isinstance(x, (list, tuple)) else x, name, what)
    if x.ndim != ndim:
        raise ValueError(f"{what}: {name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    return x.detach().cpu().double().numpy()


def _bone(volume, level: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The volume ``[D, H, W]`` as an array and its bone mask; empty bone is an error."""
    v = _array(volume, "volume", 3, what)
    level = checks.number(level, "level", above=0, what=what)
    mask = v >= level
    if not mask.any():
        raise ValueError(f"{what}: volume has no bone: no voxel at or above level {level} "
                         f"(densities in [{v.min():.3g}, {v.max():.3g}])")
    return v, mask


def _crop(v: np.ndarray, mask: np.ndarray, margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The bone's bounding box with ``margin`` empty voxels on every side (zero padding), and its
    offset in ``v``: the statistics are translation-invariant, and the box is smaller than the cube."""
    where = np.argwhere(mask)
    low, high = where.min(0), where.max(0) + 1
    box = v[tuple(slice(a, b) for a, b in zip(low, high))]
    return np.pad(box, margin), low - margin


def bone_mesh(volume, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The bone's iso-surface at ``level`` by marching cubes: vertices ``[V, 3]`` in voxels, faces ``[F, 3]``.

    The bone's box is padded with empty voxels, so bone touching the border still gives a closed
    surface, whose enclosed volume and area are then well defined.
    """
    v, mask = _bone(volume, level, "realism.bone_mesh")
    box, offset = _crop(v, mask, margin=1)
    verts, faces, _, _ = measure.marching_cubes(box, level)
    return verts + offset, faces


def mesh_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed triangle mesh (divergence theorem: signed tetrahedra from the origin)."""
    tri = np.asarray(verts, dtype=np.float64)[np.asarray(faces)]
    tri = tri - tri.reshape(-1, 3).mean(0)  # about the centroid, for precision
    return float(abs(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()) / 6.0)


def _chords(box: np.ndarray, level: float, start: np.ndarray, u: np.ndarray, reach: np.ndarray,
            samples: int = 32) -> np.ndarray:
    """Distance from each ``start`` (inside bone) along ``u`` to where the density first falls below
    ``level``, linearly interpolated between ``samples`` steps up to ``reach`` (``reach`` if never)."""
    s = reach[:, None] * np.linspace(0.0, 1.0, samples + 1)[None, :]
    points = start[:, None, :] + s[..., None] * u[:, None, :]
    values = ndi.map_coordinates(box, points.reshape(-1, 3).T, order=1, mode="constant", cval=0.0)
    values = values.reshape(s.shape)
    below = values < level
    k = np.maximum(below.argmax(1), 1)
    rows = np.arange(len(s))
    before, after = values[rows, k - 1], values[rows, k]
    fraction = (before - level) / np.maximum(before - after, 1e-12)
    cross = s[rows, k - 1] + np.clip(fraction, 0, 1) * (s[rows, k] - s[rows, k - 1])
    return np.where(below.any(1), cross, reach)


def ridge_thickness(volume, level: float = LEVEL) -> np.ndarray:
    """Local thickness of the bone, in voxels, at each voxel of its medial ridge.

    The ridge is where the Euclidean distance transform of the bone mask (EDT) is a maximum of its
    3x3x3 neighbourhood. Through each ridge voxel a chord runs along the surface normal (the
    density gradient at the nearest empty voxel) to the iso-surface at ``level`` on both sides,
    located to sub-voxel precision by linear interpolation as marching cubes does; its length is
    the thickness. (Twice the EDT alone moves in whole-voxel steps, too coarse for shells about
    two voxels thick.)
    """
    v, mask = _bone(volume, level, "realism.ridge_thickness")
    box, _ = _crop(v, mask)
    inside = box >= level
    edt, nearest = ndi.distance_transform_edt(inside, return_indices=True)
    ridge = inside & (edt >= ndi.maximum_filter(edt, size=3))
    p = np.argwhere(ridge).astype(np.float64)
    b = nearest[:, ridge].T
    g = np.stack([d[tuple(b.T)] for d in np.gradient(box)], 1)
    toward = p - b
    g = np.where((np.linalg.norm(g, axis=1) > 1e-9)[:, None], g, toward)
    g *= np.where((g * toward).sum(1) < 0, -1.0, 1.0)[:, None]
    u = g / np.linalg.norm(g, axis=1)[:, None]
    reach = 2.0 * edt[ridge] + 2.0
    return _chords(box, level, p, u, reach) + _chords(box, level, p, -u, reach)


def surface_roughness(verts: np.ndarray, faces: np.ndarray, length: float) -> float:
    """Area of a mesh over its area once relief of wavelengths below ``length`` (voxels) is smoothed away.

    Fine relief (noise, pits, ridges) adds area that the smoothing takes away, so the ratio is 1
    for a smooth surface and grows with fine relief. The smoothing is Taubin's (1995) pair of steps
    with ``mu = -lambda = -1/2`` on the uniform mesh Laplacian: a low-pass ``(1 - k^2 / 4)`` per
    pair that neither shrinks nor inflates the surface to first order. Repeating it
    ``44 (length / (2 pi e))^4`` times (``e`` the rms edge) halves the amplitude of relief of
    wavelength ``length``; detail below that goes, larger shapes stay.
    """
    length = checks.positive(length, "length", what="realism.surface_roughness")
    verts, faces = np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    adjacency = sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(len(verts), len(verts)))
    mean = sparse.diags(1.0 / np.maximum(adjacency.sum(1).A1, 1.0)) @ adjacency
    edge = np.sqrt(((verts[i] - verts[j]) ** 2).sum(1).mean())
    passes = int(np.clip(np.ceil(44 * (length / (2 * np.pi * edge)) ** 4), 1, 10_000))
    smooth = verts.copy()
    for _ in range(passes):
        for step in (0.5, -0.5):
            smooth += step * (mean @ smooth - smooth)
    return float(measure.mesh_surface_area(verts, faces) / measure.mesh_surface_area(smooth, faces))


def _histogram(values: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each of ``HISTOGRAM_BINS`` equal bins over [0, 1]; values above 1 count in the last."""
    bins = np.minimum((values * HISTOGRAM_BINS).astype(np.int64), HISTOGRAM_BINS - 1)
    counts = np.bincount(np.maximum(bins, 0), minlength=HISTOGRAM_BINS).astype(np.float64)
    return counts / max(1.0, counts.sum())


def volume_stats(volume, level: float = LEVEL, smoothing: float = SMOOTHING) -> dict:
    """Statistics of the bone (voxels at or above ``level``) of a density volume ``[D, H, W]``.

    Compared (``STATISTICS``): ``bone_fraction``, ``thickness_mean`` and ``thickness_p10/p50/p90``,
    ``surface_to_volume``, ``roughness``, ``density_p10/p50/p90``. Also in voxel units, for checks
    and not compared: ``extent``, ``surface``, ``bone_volume``, ``voxel_count``; and for plots,
    ``density_bins`` (bin edges over [0, 1]) with ``density_histogram`` (the share of voxels denser
    than ``FLOOR`` in each bin). Surface and volume come from the marching-cubes mesh at ``level``,
    so they agree with each other to sub-voxel precision.
    """
    what = "realism.volume_stats"
    smoothing = checks.positive(smoothing, "smoothing", what=what)
    v, mask = _bone(volume, level, what)
    verts, faces = bone_mesh(v, level)
    area, enclosed = float(measure.mesh_surface_area(verts, faces)), mesh_volume(verts, faces)
    extent = float((verts.max(0) - verts.min(0)).max())
    if enclosed <= 0 or extent <= 0:
        raise ValueError(f"{what}: the bone at level {level} encloses no volume (a sliver of voxels)")
    hull = ConvexHull(verts).volume if len(verts) >= 4 else enclosed
    thick = np.percentile(ridge_thickness(v, level), [10, 50, 90]) / extent
    dens = np.percentile(v[mask], [10, 50, 90])
    return {
        "bone_fraction": enclosed / hull,
        "thickness_mean": 2.0 * enclosed / area / extent,
        "thickness_p10": float(thick[0]), "thickness_p50": float(thick[1]), "thickness_p90": float(thick[2]),
        "surface_to_volume": area / enclosed * extent,
        "roughness": surface_roughness(verts, faces, smoothing * extent),
        "density_p10": float(dens[0]), "density_p50": float(dens[1]), "density_p90": float(dens[2]),
        "extent": extent, "surface": area, "bone_volume": enclosed, "voxel_count": int(mask.sum()),
        "density_bins": np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1),
        "density_histogram": _histogram(v[v > FLOOR]),
    }


# ----------------------------------------------------------------------------- x-rays

def _opacity(alphas, what: str) -> np.ndarray:
    """Opacity ``1 - alpha`` of x-rays ``[B, H, W]`` (or one ``[H, W]``) as float64 ``[B, H, W]``."""
    a = checks.alpha(alphas, what)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] == 0 or min(a.shape[1:]) < 8:
        raise ValueError(f"{what}: alphas must be x-rays [B, H, W] or one [H, W] of at least 8 x 8 pixels, "
                         f"got shape {tuple(a.shape)}")
    return 1.0 - a.detach().cpu().double().numpy()


def power_spectrum(images, band: tuple[float, float] = BAND) -> tuple[np.ndarray, np.ndarray, float]:
    """Radially averaged power spectrum of images ``[B, H, W]`` (mean removed), averaged over the batch.

    Returns the frequencies (rings 1 .. N/2 cycles per image wide, N the shorter side; each at its
    mean radius), the power at each
    (``|FFT|^2 / (H W)^2``, so it sums to the variance) and the slope of a least-squares line
    through log power against log frequency within ``band``. A ``1/f^beta`` power law has slope
    ``-beta``. X-rays fall to zero at the border (the specimen lies inside the cube's inscribed
    sphere), so the periodic FFT needs no window.
    """
    x = np.asarray(images, dtype=np.float64)
    x = x[None] if x.ndim == 2 else x
    n = min(x.shape[1:])
    low, high = (checks.positive(b, "band", what="realism.power_spectrum") for b in band)
    if not low < high <= n // 2:
        raise ValueError(f"realism.power_spectrum: band must satisfy 0 < low < high <= {n // 2} (half of {n} px), "
                         f"got {tuple(band)}")
    power = (np.abs(np.fft.fft2(x - x.mean((1, 2), keepdims=True))) ** 2).mean(0) / (x.shape[1] * x.shape[2]) ** 2
    fy, fx = np.fft.fftfreq(x.shape[1])[:, None], np.fft.fftfreq(x.shape[2])[None, :]
    radius = np.sqrt(fx**2 + fy**2).ravel() * n
    k = np.rint(radius).astype(np.int64)
    ring = slice(1, n // 2 + 1)
    counts = np.bincount(k, minlength=n // 2 + 1)[ring]
    radial = np.bincount(k, weights=power.ravel(), minlength=n // 2 + 1)[ring] / counts
    freq = np.bincount(k, weights=radius, minlength=n // 2 + 1)[ring] / counts
    fit = (freq >= low) & (freq <= high) & (radial > 0)
    slope = np.polyfit(np.log(freq[fit]), np.log(radial[fit]), 1)[0] if fit.sum() >= 2 else np.nan
    return freq, radial, float(slope)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    return ndi.gaussian_filter(x, sigma=(0, sigma, sigma), mode="nearest")


def edge_stats(opacity: np.ndarray, footprint: np.ndarray, edge: float = EDGE,
               scale: float = COHERENCE_SCALE) -> dict[str, np.ndarray]:
    """Per-image edge statistics of opacity ``[B, H, W]`` over the boolean ``footprint`` (the specimen).

    Gradients (Sobel) are in opacity per image width. ``gradient_mean``: their mean magnitude;
    ``edge_density``: the share of pixels above ``edge``; ``edge_straightness``: the coherence
    ``(l1 - l2) / (l1 + l2)`` of the structure tensor (gradient outer products smoothed over
    ``scale`` of the image width), summed over edge pixels before the ratio. It is 1 where all
    edges run straight at that scale and falls as they wiggle, bend or cross (0 for an image without
    edges).
    """
    n = min(opacity.shape[1:])
    gy, gx = ndi.sobel(opacity, axis=1) / 8 * n, ndi.sobel(opacity, axis=2) / 8 * n
    magnitude = np.hypot(gx, gy)
    sigma = scale * n
    jxx, jyy, jxy = _smooth(gx * gx, sigma), _smooth(gy * gy, sigma), _smooth(gx * gy, sigma)
    edges = (magnitude >= edge) & footprint
    aniso = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    area = footprint.sum((1, 2))
    return {
        "gradient_mean": (magnitude * footprint).sum((1, 2)) / area,
        "edge_density": edges.sum((1, 2)) / area,
        "edge_straightness": (aniso * edges).sum((1, 2)) / np.maximum((jxx + jyy) * edges, 1e-300).sum((1, 2)),
    }


def xray_stats(alphas, band: tuple[float, float] = BAND, edge: float = EDGE,
               scale: float = COHERENCE_SCALE) -> dict:
    """Statistics of the opacity ``1 - alpha`` of x-rays ``[B, H, W]`` (or one ``[H, W]``), averaged over views.

    Compared (``STATISTICS``): ``spectrum_slope`` (of the view-averaged spectrum, ``power_spectrum``),
    ``gradient_mean``, ``edge_density``, ``edge_straightness`` (``edge_stats``), ``opacity_mean``,
    ``opacity_std`` and ``opacity_spread`` over the specimen (pixels with opacity above ``FLOOR``).
    Also ``coverage`` (the specimen's share of the image) and, for plots, ``spectrum_frequency``
    with ``spectrum_power``, and ``opacity_bins`` with ``opacity_histogram``.
    """
    what = "realism.xray_stats"
    o = _opacity(alphas, what)
    foot = o > FLOOR
    empty = np.flatnonzero(~foot.any((1, 2)))
    if len(empty):
        raise ValueError(f"{what}: alphas: view(s) {empty.tolist()} show no specimen (no opacity above {FLOOR})")
    edge = checks.positive(edge, "edge", what=what)
    scale = checks.positive(scale, "scale", what=what)
    freq, power, slope = power_spectrum(o, band)
    edges = edge_stats(o, foot, edge, scale)
    inside = np.where(foot, o, np.nan)
    p10, p90 = np.nanpercentile(inside, [10, 90], axis=(1, 2))
    out = {"spectrum_slope": slope}
    out.update({k: float(v.mean()) for k, v in edges.items()})
    out.update({
        "opacity_mean": float(np.nanmean(inside, (1, 2)).mean()),
        "opacity_std": float(np.nanstd(inside, (1, 2)).mean()),
        "opacity_spread": float((p90 - p10).mean()),
        "coverage": float(foot.mean()),
        "spectrum_frequency": freq, "spectrum_power": power,
        "opacity_bins": np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1),
        "opacity_histogram": _histogram(o[foot]),
    })
    return out


# ----------------------------------------------------------------------------- the comparison

def _scalar(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def realism_table(real: dict, procedural: dict[str, dict], statistics=None) -> pd.DataFrame:
    """One row per statistic: the real value, the procedural minimum, median and maximum, and
    whether the real value lies within the procedural range (``within``, inclusive).

    ``real`` and each of ``procedural`` (name: statistics) are ``volume_stats`` and/or
    ``xray_stats`` dictionaries (merge both with ``|``). ``statistics`` picks rows; by default
    every statistic of ``STATISTICS`` that ``real`` holds. ``position`` places the real value on
    the procedural range (0 at the minimum, 1 at the maximum; outside [0, 1] when outside it).
    """
    what = "realism.realism_table"
    if not isinstance(real, dict):
        raise ValueError(f"{what}: real must be a dict of statistics, got {type(real).__name__}")
    if not isinstance(procedural, dict) or not procedural or not all(isinstance(p, dict) for p in procedural.values()):
        raise ValueError(f"{what}: procedural must be a non-empty dict of name: statistics dict")
    keys = [k for k in STATISTICS if k in real] if statistics is None else list(statistics)
    if not keys:
        raise ValueError(f"{what}: real holds none of the statistics {list(STATISTICS)}")
    rows = []
    for key in keys:
        missing = [name for name, p in procedural.items() if not _scalar(p.get(key))]
        if not _scalar(real.get(key)) or missing:
            raise ValueError(f"{what}: statistic {key!r} must be a number in real and in every procedural dict; "
                             f"missing or not a number in {'real' if not _scalar(real.get(key)) else missing}")
        values = np.array([float(p[key]) for p in procedural.values()])
        lo, hi, value = values.min(), values.max(), float(real[key])
        position = (value - lo) / (hi - lo) if hi > lo else 0.5 if value == lo else np.copysign(np.inf, value - lo)
        rows.append({"statistic": key, "description": STATISTICS.get(key, ""), "real": value,
                     "procedural_min": lo, "procedural_median": float(np.median(values)), "procedural_max": hi,
                     "within": bool(lo <= value <= hi),
                     "position": position})
    return pd.DataFrame(rows).set_index("statistic")
