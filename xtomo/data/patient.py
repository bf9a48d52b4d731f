"""What of a clinical CT is the patient: the bone of the body, not the table or head holder it lay on.

A clinical head CT shows what the head rested on: the table, and a head holder of plastic arcs at a
few hundred HU. A bone window keeps those as if they were skull, and the fit then frames skull and
holder together. They touch the patient only through pads and skin, so everything denser than air and
foam (``BODY_HU``), opened by a few millimetres (``PARTING_MM``) to part what only touches, leaves the
body as its largest piece; a piece of bone that lies mostly outside it is not the patient's. A dry skull
scanned in air (the paper's specimens) has no body around its bone, and is kept as it is.

A scan in its own units (not HU) keeps its skin and brain unless the reader says where bone starts; most of
such a scan's voxels share one value, its soft tissue (``soft_tissue``), which a dry skull's bone never does.
A scan whose soft tissue lies near 1024 with nothing below zero holds CT numbers stored with 1024 added
(``stored_offset``): the DICOM habit of a rescale intercept of -1024, which a raw or MetaImage copy loses.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

import xtomo._checks as checks

__all__ = ["BODY_HU", "PARTING_MM", "body", "patient_bone", "tissue_mode", "soft_tissue", "CT_OFFSET",
           "stored_offset"]

BODY_HU = -500.0
"""CT numbers above this are tissue or what the patient lies on; air, the lungs and foam pads lie below."""

PARTING_MM = 3.0
"""The opening (in mm) that parts the body from what it only touches: thicker than a thin contact, thinner
than a neck."""

CT_OFFSET = 1024.0
"""What unsigned CT data add to every CT number (air at 0 or a little above, water at 1024)."""

_OFFSET_TOLERANCE = 100.0  # soft tissue within this of water: fat at -100 HU to muscle and brain at +40
_SOFT_OVER_BONE = 2.0  # a body holds at least twice as much soft tissue as bone (a head ~4x); a dry skull ~none
_SOFT_SHARE = 0.4  # the non-air voxels in one narrow band: 0.46-0.85 with soft tissue, 0.03-0.18 dry (RESULTS)
_GROWN = 3  # the opened body is grown back by three times the opening (measured on both real heads: RESULTS)


def body(hu: np.ndarray, bone: np.ndarray, spacing=(1.0, 1.0, 1.0),
         parting_mm: float = PARTING_MM) -> np.ndarray | None:
    """Where the patient's body lies in CT numbers ``hu`` ``[z, y, x]`` (voxel ``spacing`` in mm), as a mask: the
    largest piece of the voxels above ``BODY_HU`` once opened by ``parting_mm``, grown back by three times that,
    so that thin bone the opening took off with the air around it (a nasal concha, the walls of the sinuses)
    lies in it; ``None`` where the piece holds less than twice as much soft tissue as ``bone`` (a dry skull)."""
    parting_mm = checks.number(parting_mm, "parting_mm", above=0.0, what="body")
    if len(spacing) != 3:
        raise ValueError(f"body: spacing must be three voxel sizes (z, y, x) in mm, got {spacing!r}")
    spacing = [checks.number(s, "spacing", above=0.0, what="body") for s in spacing]
    dense = hu > BODY_HU
    radii = [max(1, round(parting_mm / s)) for s in spacing]  # voxels along (z, y, x): thick slices too
    labels, n = ndimage.label(_box(dense, radii, ndimage.binary_erosion))
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    found = _box(labels == sizes.argmax(), [_GROWN * r for r in radii], ndimage.binary_dilation)
    tissue = found & dense
    soft = np.count_nonzero(tissue & ~bone)
    return found if soft >= _SOFT_OVER_BONE * np.count_nonzero(tissue & bone) else None


def _box(mask: np.ndarray, radii, morphology) -> np.ndarray:
    """``mask`` eroded or dilated (``morphology``) by a box of half-sides ``radii`` voxels, one axis at a time."""
    for axis, r in enumerate(radii):
        mask = morphology(mask, np.ones([3 if a == axis else 1 for a in range(3)], bool), iterations=r)
    return mask


def patient_bone(hu: np.ndarray, bone: np.ndarray, spacing=(1.0, 1.0, 1.0),
                 parting_mm: float = PARTING_MM) -> np.ndarray:
    """The ``bone`` mask of CT numbers ``hu`` less its pieces (26-connected) that lie mostly outside the
    patient's ``body``: the table and the head holder. Bone of a dry skull comes back unchanged."""
    if hu.shape != bone.shape or hu.ndim != 3:
        raise ValueError(f"patient_bone: expected a CT [z, y, x] and a bone mask of its shape, "
                         f"got {hu.shape} and {bone.shape}")
    inside = body(hu, bone, spacing, parting_mm)
    if inside is None:
        return bone
    labels, n = ndimage.label(bone, structure=np.ones((3, 3, 3), bool))
    share = np.bincount(labels.ravel(), weights=inside.ravel(), minlength=n + 1) / np.maximum(
        np.bincount(labels.ravel(), minlength=n + 1), 1)
    keep = share > 0.5
    keep[0] = False
    return keep[labels]


def tissue_mode(values: np.ndarray) -> tuple[float, float]:
    """The most common value of a scan's non-air voxels (those above 5 % of its range), as a fraction of the range,
    and the share of them within 5 % of the range around it; ``(0, 0)`` for fewer than 4,096 such voxels, where
    values coincide by chance (no scan of a head is that small)."""
    values = np.asarray(values)
    lowest, highest = float(values.min()), float(values.max())
    x = (values.astype(np.float32) - lowest) / max(highest - lowest, 1e-30)
    x = x[x > 0.05]
    if len(x) < 4096:
        return 0.0, 0.0
    counts, edges = np.histogram(x, bins=100, range=(0.05, 1.0))
    k = int(counts.argmax())
    return float(edges[k] + edges[k + 1]) / 2, float(counts[max(0, k - 2):k + 3].sum() / len(x))


def soft_tissue(values: np.ndarray) -> float | None:
    """The value that most of a scan's non-air voxels share (``tissue_mode``), below half its densest (a head's soft
    tissue and brain: bone attenuates two to three times as much as water), in the scan's own units; ``None`` where
    none does (a dry skull: bone spreads over its range; RESULTS `soft-tissue`)."""
    where, share = tissue_mode(values)
    if share < _SOFT_SHARE or where > 0.5:
        return None
    lowest = float(np.min(values))
    return lowest + where * (float(np.max(values)) - lowest)


def stored_offset(values: np.ndarray, level: float | None) -> float:
    """``CT_OFFSET`` where integer data hold CT numbers with it added (nothing below zero, soft tissue within
    100 of it, denser voxels beyond it), else 0: what to subtract to read them as HU. ``level``: their
    ``soft_tissue`` (None where they have none)."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu" or float(values.min()) < 0:
        return 0.0
    found = level is not None and abs(level - CT_OFFSET) <= _OFFSET_TOLERANCE
    return CT_OFFSET if found and float(values.max()) > CT_OFFSET + 3 * _OFFSET_TOLERANCE else 0.0
